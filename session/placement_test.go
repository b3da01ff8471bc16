package session_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/session"
)

// Models for the layout tests. Their table names start with the ?(prefix)
// placeholder: each shard's bun.DB defines the named argument prefix, empty
// except in the table-per-shard layout, where it is the shard's prefix.

type plLocation struct {
	bun.BaseModel `bun:"table:?(prefix)locations,alias:location"`
	session.Token

	ID      int64       `bun:",pk"`
	Region  string      `bun:",notnull"`
	City    string      `bun:",notnull"`
	Reports []*plReport `bun:"rel:has-many,join:id=location_id"`
	Tags    []plTag     `bun:"m2m:?(prefix)location_tags,join:Location=Tag"`
	Station *plStation  `bun:"rel:has-one,join:id=location_id"`
}

type plReport struct {
	bun.BaseModel `bun:"table:?(prefix)reports,alias:report"`
	session.Token

	ID          int64       `bun:",pk"`
	LocationID  int64       `bun:",notnull"`
	Temperature float64     `bun:",notnull"`
	Location    *plLocation `bun:"rel:belongs-to,join:location_id=id"`
}

type plStation struct {
	bun.BaseModel `bun:"table:?(prefix)stations,alias:station"`
	session.Token

	ID         int64  `bun:",pk"`
	LocationID int64  `bun:",notnull,unique"`
	Name       string `bun:",notnull"`
}

type plTag struct {
	bun.BaseModel `bun:"table:?(prefix)tags,alias:tag"`
	session.Token

	ID   int64  `bun:",pk"`
	Name string `bun:",notnull"`
}

type plLocationTag struct {
	bun.BaseModel `bun:"table:?(prefix)location_tags,alias:location_tag"`

	LocationID int64       `bun:",pk"`
	Location   *plLocation `bun:"rel:belongs-to,join:location_id=id"`
	TagID      int64       `bun:",pk"`
	Tag        *plTag      `bun:"rel:belongs-to,join:tag_id=id"`
}

// plSetting lives on the first shard only.
type plSetting struct {
	bun.BaseModel `bun:"table:?(prefix)settings,alias:setting"`
	session.Token

	Name  string `bun:",pk"`
	Value string `bun:",notnull"`
}

// plModels in creation order: referenced tables first.
var plModels = []any{(*plLocation)(nil), (*plReport)(nil), (*plStation)(nil), (*plTag)(nil), (*plLocationTag)(nil), (*plSetting)(nil)}

var plShards = []session.ShardID{"a", "b", "c", "d"}

// plRouter keeps settings on the first shard: reads, writes and its table.
type plRouter struct{}

func (plRouter) isSetting(t *schema.Table) bool { return t.Type == reflect.TypeFor[plSetting]() }

func (r plRouter) RouteRead(_ context.Context, stmt *chooser.Statement) (chooser.Target, error) {
	if r.isSetting(stmt.Table) {
		return chooser.Shards(plShards[0]), nil
	}
	return chooser.None(), nil
}

func (r plRouter) RouteWrite(_ context.Context, w *chooser.Write) (chooser.Target, error) {
	if r.isSetting(w.Table) {
		return chooser.Shards(plShards[0]), nil
	}
	return chooser.None(), nil
}

func (r plRouter) AllowMigrate(_ context.Context, shard session.ShardID, t *schema.Table) chooser.Verdict {
	if r.isSetting(t) {
		return chooser.VerdictOf(shard == plShards[0])
	}
	return chooser.Abstain
}

// plPlace places locations by region (the region is the shard id) and their
// reports, stations and tag links on their location's shard.
var plPlace = chooser.ShardChooserFunc(func(_ context.Context, t *schema.Table, obj any) (session.ShardID, error) {
	loc := func(l *plLocation) (session.ShardID, error) {
		if l == nil {
			return "", fmt.Errorf("%s has no Location set", t.TypeName)
		}
		if id, ok := l.Shard(); ok {
			return id, nil
		}
		return session.ShardID(l.Region), nil
	}
	switch o := obj.(type) {
	case *plLocation:
		return loc(o)
	case *plReport:
		return loc(o.Location)
	case *plLocationTag:
		return loc(o.Location)
	}
	return "", fmt.Errorf("no placement rule for %s", t.TypeName)
})

func plRouters() *chooser.Routers {
	return chooser.NewRouters(chooser.First(plPlace, chooser.NewValueMap("region", map[string]session.ShardID{
		"a": "a", "b": "b", "c": "c", "d": "d",
	})), plRouter{})
}

// layout opens the four shards of one layout. prefix and schema say where
// each shard's tables are expected.
type layout struct {
	name   string
	open   func(t *testing.T, d *pgdialect.Dialect) map[session.ShardID]bun.IDB
	prefix func(id session.ShardID) string
	schema func(id session.ShardID) string
}

func plOpen(t *testing.T, d *pgdialect.Dialect, dsn, searchPath, prefix string) bun.IDB {
	t.Helper()
	opts := []pgdriver.Option{pgdriver.WithDSN(dsn)}
	if searchPath != "" {
		opts = append(opts, pgdriver.WithConnParams(map[string]any{"search_path": searchPath}))
	}
	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(opts...)), d).WithNamedArg("prefix", bun.Safe(prefix))
	t.Cleanup(func() { db.Close() })
	return db
}

func currentDatabase(t *testing.T, db bun.IDB) string {
	var name string
	if err := db.NewRaw("SELECT current_database()").Scan(context.Background(), &name); err != nil {
		t.Fatal(err)
	}
	return name
}

func layouts() []layout {
	none := func(session.ShardID) string { return "" }
	public := func(session.ShardID) string { return "public" }
	perShard := func(id session.ShardID) string { return "shard_" + string(id) }
	return []layout{
		{
			name: "database per shard",
			open: func(t *testing.T, d *pgdialect.Dialect) map[session.ShardID]bun.IDB {
				dsns := pgtest.Shared().NewDatabases(context.Background(), t, "layout_db")
				out := map[session.ShardID]bun.IDB{}
				for i, id := range plShards {
					out[id] = plOpen(t, d, dsns[i], "", "")
				}
				return out
			},
			prefix: none, schema: public,
		},
		{
			name: "schema per shard",
			open: func(t *testing.T, d *pgdialect.Dialect) map[session.ShardID]bun.IDB {
				dsn := pgtest.Shared().NewDatabases(context.Background(), t, "layout_schema")[0]
				out := map[session.ShardID]bun.IDB{}
				for _, id := range plShards {
					out[id] = plOpen(t, d, dsn, "shard_"+string(id), "")
				}
				return out
			},
			prefix: none, schema: perShard,
		},
		{
			name: "mixed",
			open: func(t *testing.T, d *pgdialect.Dialect) map[session.ShardID]bun.IDB {
				dsns := pgtest.Shared().NewDatabases(context.Background(), t, "layout_mixed")
				return map[session.ShardID]bun.IDB{
					"a": plOpen(t, d, dsns[0], "shard_a", ""), // a and b share a database, a schema each
					"b": plOpen(t, d, dsns[0], "shard_b", ""),
					"c": plOpen(t, d, dsns[1], "", ""), // c and d have a database each, on other servers
					"d": plOpen(t, d, dsns[2], "", ""),
				}
			},
			prefix: none,
			schema: func(id session.ShardID) string {
				if id == "a" || id == "b" {
					return "shard_" + string(id)
				}
				return "public"
			},
		},
		{
			name: "table per shard",
			open: func(t *testing.T, d *pgdialect.Dialect) map[session.ShardID]bun.IDB {
				dsn := pgtest.Shared().NewDatabases(context.Background(), t, "layout_table")[0]
				out := map[session.ShardID]bun.IDB{}
				for _, id := range plShards {
					out[id] = plOpen(t, d, dsn, "", string(id)+"_")
				}
				return out
			},
			prefix: func(id session.ShardID) string { return string(id) + "_" },
			schema: public,
		},
	}
}

// TestLayouts places the tables on each layout, checks where they went,
// writes through the session and reads back with fan-out, relation loads and
// Get, then drops the tables.
func TestLayouts(t *testing.T) {
	for _, l := range layouts() {
		t.Run(l.name, func(t *testing.T) {
			ctx := context.Background()
			d := pgdialect.New()
			d.Tables().Register((*plLocationTag)(nil))
			shards := l.open(t, d)
			routers := plRouters()
			s, err := session.New(shards, routers, routers, routers, session.WithShardOrder(plShards...))
			if err != nil {
				t.Fatal(err)
			}

			// Placement: every table on every shard, settings on a only.
			if err := s.CreateTables(ctx, plModels, session.WithForeignKeys()); err != nil {
				t.Fatalf("CreateTables = %v", err)
			}
			if err := s.CreateTables(ctx, plModels, session.IfNotExists(), session.WithForeignKeys()); err != nil {
				t.Fatalf("CreateTables again with IfNotExists = %v", err)
			}
			got, err := s.Tables(ctx, plModels...)
			if err != nil {
				t.Fatalf("Tables = %v", err)
			}
			for _, id := range plShards {
				want := []string{"locations", "reports", "stations", "tags", "location_tags"}
				if id == plShards[0] {
					want = append(want, "settings")
				}
				db := currentDatabase(t, shards[id])
				var gotNames []string
				for _, pt := range got[id] {
					gotNames = append(gotNames, pt.String())
				}
				var wantNames []string
				for _, w := range want {
					wantNames = append(wantNames, session.PlacedTable{Database: db, Schema: l.schema(id), Name: l.prefix(id) + w}.String())
				}
				if !slices.Equal(gotNames, wantNames) {
					t.Errorf("tables on %s = %v; want %v", id, gotNames, wantNames)
				}
			}

			// Foreign keys were made with each shard's own table names: a report
			// of a location missing on its shard is refused.
			_, err = shards["c"].NewInsert().Model(&plReport{ID: 999, LocationID: 12345}).Exec(ctx)
			if err == nil || !strings.Contains(err.Error(), "23503") {
				t.Errorf("insert of an orphan report on c = %v; want a foreign-key violation (SQLSTATE 23503)", err)
			}

			// Data: two locations per shard, each with two reports, a station and its shard's tag.
			var locs []*plLocation
			var reps []*plReport
			var stations []*plStation
			var links []*plLocationTag
			for i := range 8 {
				id := plShards[i%len(plShards)]
				loc := &plLocation{ID: int64(i + 1), Region: string(id), City: fmt.Sprintf("city %d", i+1)}
				locs = append(locs, loc)
				for j := range 2 {
					reps = append(reps, &plReport{ID: int64(10*(i+1) + j), LocationID: loc.ID, Temperature: float64(i*2 + j), Location: loc})
				}
				stations = append(stations, &plStation{ID: int64(100 + i), LocationID: loc.ID, Name: "st " + loc.City})
				links = append(links, &plLocationTag{LocationID: loc.ID, TagID: int64(1000 + i%len(plShards)), Location: loc})
			}
			if err := s.Insert(ctx, &locs); err != nil {
				t.Fatalf("Insert locations = %v", err)
			}
			if err := s.Insert(ctx, &reps); err != nil {
				t.Fatalf("Insert reports = %v", err)
			}
			for i, id := range plShards {
				tag := &plTag{ID: int64(1000 + i), Name: "tag of " + string(id)}
				if err := s.Using(id).Insert(ctx, tag); err != nil {
					t.Fatalf("Insert tag on %s = %v", id, err)
				}
			}
			for i, st := range stations {
				if err := s.Using(plShards[i%len(plShards)]).Insert(ctx, st); err != nil {
					t.Fatalf("Insert station = %v", err)
				}
			}
			if err := s.Insert(ctx, &links); err != nil {
				t.Fatalf("Insert location tags = %v", err)
			}
			if err := s.Insert(ctx, &plSetting{Name: "motd", Value: "hello"}); err != nil {
				t.Fatalf("Insert setting = %v", err)
			}

			// Each shard holds its own rows only.
			for i, id := range plShards {
				n, err := s.NewSelect().Model((*plLocation)(nil)).Options(session.SetShardID(id)).Count(ctx)
				if err != nil || n != 2 {
					t.Errorf("locations on %s = %d, %v; want 2", id, n, err)
				}
				var cities []string
				if err := s.NewSelect().Model((*plLocation)(nil)).Column("city").Order("id").Options(session.SetShardID(id)).Scan(ctx, &cities); err != nil {
					t.Fatal(err)
				}
				if want := []string{fmt.Sprintf("city %d", i+1), fmt.Sprintf("city %d", i+5)}; !slices.Equal(cities, want) {
					t.Errorf("cities on %s = %v; want %v", id, cities, want)
				}
			}

			// Fan-out select with has-many, has-one and m2m relations.
			var all []*plLocation
			if err := s.NewSelect().Model(&all).Relation("Reports").Relation("Station").Relation("Tags").Order("id").Scan(ctx); err != nil {
				t.Fatalf("select locations with relations = %v", err)
			}
			if len(all) != 8 {
				t.Fatalf("select locations = %d rows; want 8", len(all))
			}
			for i, loc := range all {
				id := plShards[i%len(plShards)]
				if sh, _ := loc.Shard(); sh != id || loc.ID != int64(i+1) {
					t.Errorf("location %d from shard %q; want id %d from %s", loc.ID, sh, i+1, id)
				}
				if len(loc.Reports) != 2 || loc.Reports[0].LocationID != loc.ID || loc.Reports[1].LocationID != loc.ID {
					t.Errorf("location %d reports = %+v; want its 2 reports", loc.ID, loc.Reports)
				}
				for _, r := range loc.Reports {
					if sh, _ := r.Shard(); sh != id {
						t.Errorf("report %d token = %q; want %s", r.ID, sh, id)
					}
				}
				if loc.Station == nil || loc.Station.ID != int64(100+i) {
					t.Errorf("location %d station = %+v; want station %d", loc.ID, loc.Station, 100+i)
				}
				if len(loc.Tags) != 1 || loc.Tags[0].Name != "tag of "+string(id) {
					t.Errorf("location %d tags = %+v; want the tag of %s", loc.ID, loc.Tags, id)
				}
			}

			// Belongs-to, merged across shards in global order.
			var rs []*plReport
			if err := s.NewSelect().Model(&rs).Relation("Location").Order("temperature DESC").Limit(3).Scan(ctx); err != nil {
				t.Fatalf("select reports with their location = %v", err)
			}
			if len(rs) != 3 || rs[0].ID != 81 || rs[1].ID != 80 || rs[2].ID != 71 {
				t.Fatalf("top 3 reports = %v; want 81 80 71", rs)
			}
			for _, r := range rs {
				if r.Location == nil || r.Location.ID != r.LocationID {
					t.Errorf("report %d location = %+v; want location %d", r.ID, r.Location, r.LocationID)
				}
			}

			// Get probes every shard and finds the one holding the key.
			var loc plLocation
			if err := s.Get(ctx, &loc, 7); err != nil {
				t.Fatalf("Get(7) = %v", err)
			}
			if sh, _ := loc.Shard(); sh != "c" || loc.City != "city 7" {
				t.Errorf("Get(7) = %q from %q; want city 7 from c", loc.City, sh)
			}
			var setting plSetting
			if err := s.Get(ctx, &setting, "motd"); err != nil || setting.Value != "hello" {
				t.Errorf("Get(setting motd) = %+v, %v; want hello", setting, err)
			}

			// Drop: every table gone, on every shard.
			if err := s.DropTables(ctx, plModels); err != nil {
				t.Fatalf("DropTables = %v", err)
			}
			if got, err := s.Tables(ctx, plModels...); err != nil || len(got) != 0 {
				t.Errorf("Tables after DropTables = %v, %v; want none", got, err)
			}
			if err := s.DropTables(ctx, plModels, session.IfExists()); err != nil {
				t.Errorf("DropTables again with IfExists = %v", err)
			}
		})
	}
}

// TestPlacementRefusesSharedTables: two shards on one database and schema
// without a prefix would share their tables.
func TestPlacementRefusesSharedTables(t *testing.T) {
	ctx := context.Background()
	d := pgdialect.New()
	d.Tables().Register((*plLocationTag)(nil))
	dsns := pgtest.Shared().NewDatabases(ctx, t, "layout_shared")
	shards := map[session.ShardID]bun.IDB{
		"a": plOpen(t, d, dsns[0], "", ""),
		"b": plOpen(t, d, dsns[1], "", ""),
		"c": plOpen(t, d, dsns[0], "shard_c", ""),
		"d": plOpen(t, d, dsns[0], "", ""), // the same database and schema as a
	}
	routers := plRouters()
	s, err := session.New(shards, routers, routers, routers, session.WithShardOrder(plShards...))
	if err != nil {
		t.Fatal(err)
	}
	err = s.CreateTables(ctx, plModels)
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Fatalf("CreateTables = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "shards a and d would both hold table", "locations")
	if got, err := s.Tables(ctx, plModels...); err != nil || len(got) != 0 {
		t.Errorf("Tables after the refused CreateTables = %v, %v; want none created", got, err)
	}
	// Settings live on a only: a model allowed on one of the two is fine.
	if err := s.CreateTables(ctx, []any{(*plSetting)(nil)}); err != nil {
		t.Errorf("CreateTables(settings, on a only) = %v", err)
	}
}

func TestPlacementBadInput(t *testing.T) {
	ctx := context.Background()
	d := pgdialect.New()
	d.Tables().Register((*plLocationTag)(nil))
	dsns := pgtest.Shared().NewDatabases(ctx, t, "layout_bad")
	missing := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsns[1]))), d) // no prefix named argument
	t.Cleanup(func() { missing.Close() })
	s, err := session.New(map[session.ShardID]bun.IDB{"a": plOpen(t, d, dsns[0], "", ""), "b": missing}, plPlace, chooser.All, chooser.All)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Placement(ctx, (*plTag)(nil))
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Fatalf("Placement with a shard lacking the named argument = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "shard b", "WithNamedArg")
	if _, err := s.Placement(ctx, 42); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("Placement(42) = %v; want ErrInvalidArgument", err)
	}
	if ok, err := s.AllowMigrate(ctx, "zz", (*plTag)(nil)); ok || !errors.Is(err, session.ErrUnknownShard) {
		t.Errorf("AllowMigrate(unknown shard) = %v, %v; want ErrUnknownShard", ok, err)
	}
	// Without a MigrateRouter every table goes everywhere.
	if ok, err := s.AllowMigrate(ctx, "a", (*plSetting)(nil)); !ok || err != nil {
		t.Errorf("AllowMigrate without routers = %v, %v; want true", ok, err)
	}
}
