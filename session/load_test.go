package session_test

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// seedTags gives every location tags stored on its shard (and in the
// unsharded database): tag ids are global, each location has tags
// (id mod 3) + 1 of the three tags of its continent.
func seedTags(t *testing.T, f *fixture, s *session.Session, d weather.Data) {
	t.Helper()
	ctx := context.Background()
	var tags []*weather.Tag
	for i, c := range weather.Continents {
		for j := range 3 {
			tag := &weather.Tag{ID: int64(10*i + j + 1), Name: c + " tag"}
			tag.SetShard(weather.Shards[i])
			tags = append(tags, tag)
		}
	}
	var links []*weather.LocationTag
	for _, l := range d.Locations {
		ci := slices.Index(weather.Continents, l.Continent)
		for j := range int(l.ID%3) + 1 {
			links = append(links, &weather.LocationTag{LocationID: l.ID, Location: l, TagID: int64(10*ci + j + 1)})
		}
	}
	if err := s.Insert(ctx, &tags); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, &links); err != nil {
		t.Fatal(err)
	}
	if _, err := f.single.NewInsert().Model(&tags).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.single.NewInsert().Model(&links).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	f.reset()
}

// truth loads every location with its reports and tags from the unsharded
// database, by id.
func truth(t *testing.T, f *fixture) map[int64]weather.Location {
	t.Helper()
	var locs []weather.Location
	err := f.single.NewSelect().Model(&locs).Relation("Reports", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("id") }).
		Relation("Tags", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("id") }).Scan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := map[int64]weather.Location{}
	for _, l := range locs {
		out[l.ID] = l
	}
	return out
}

func reportIDsSorted(rs []*weather.Report) []int64 {
	var ids []int64
	for _, r := range rs {
		ids = append(ids, r.ID)
	}
	slices.Sort(ids)
	return ids
}

func tagIDs(ts []weather.Tag) []int64 {
	var ids []int64
	for _, tg := range ts {
		ids = append(ids, tg.ID)
	}
	slices.Sort(ids)
	return ids
}

func TestLoadRelationOneStatementPerShardPerRelation(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	d := weather.Generate(20, 3, 21)
	f.seed(t, s, d)
	seedTags(t, f, s, d)
	want := truth(t, f)

	var locs []*weather.Location
	if err := s.NewSelect().Model(&locs).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(locs) != len(d.Locations) || len(want) != len(d.Locations) {
		t.Fatalf("read %d locations (%d unsharded); want the %d seeded", len(locs), len(want), len(d.Locations))
	}
	for _, rel := range []string{"Reports", "Tags"} {
		f.reset()
		if err := s.LoadRelation(ctx, &locs, rel); err != nil {
			t.Fatalf("LoadRelation(%s) = %v", rel, err)
		}
		if c := f.perShard(); !slices.Equal(c, []int{1, 1, 1, 1}) {
			t.Errorf("LoadRelation(%s) ran %v statements; want one per shard", rel, c)
		}
	}
	for _, l := range locs {
		home, _ := l.Shard()
		if got, w := reportIDsSorted(l.Reports), reportIDsSorted(want[l.ID].Reports); !slices.Equal(got, w) {
			t.Errorf("location %d reports = %v; want %v", l.ID, got, w)
		}
		if got, w := tagIDs(l.Tags), tagIDs(want[l.ID].Tags); !slices.Equal(got, w) {
			t.Errorf("location %d tags = %v; want %v", l.ID, got, w)
		}
		for _, r := range l.Reports {
			if sh, _ := r.Shard(); sh != home {
				t.Errorf("report %d token = %q; want its location's shard %q", r.ID, sh, home)
			}
		}
		for _, tg := range l.Tags {
			if sh, _ := tg.Shard(); sh != home {
				t.Errorf("tag %d of location %d token = %q; want %q", tg.ID, l.ID, sh, home)
			}
		}
	}

	// Belongs-to, from reports loaded as values ([]T): one statement per
	// shard, and reports of one location share one Location object.
	var reps []weather.Report
	if err := s.NewSelect().Model(&reps).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	f.reset()
	if err := s.LoadRelation(ctx, &reps, "Location"); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{1, 1, 1, 1}) {
		t.Errorf("LoadRelation(Location) ran %v statements; want one per shard", c)
	}
	if len(reps) != len(d.Reports) {
		t.Fatalf("read %d reports; want the %d seeded", len(reps), len(d.Reports))
	}
	byLoc := map[int64]*weather.Location{}
	for _, r := range reps {
		if r.Location == nil || r.Location.ID != r.LocationID {
			t.Fatalf("report %d location = %v; want location %d", r.ID, r.Location, r.LocationID)
		}
		if prev, ok := byLoc[r.LocationID]; ok && prev != r.Location {
			t.Errorf("reports of location %d hold different Location objects", r.LocationID)
		}
		byLoc[r.LocationID] = r.Location
	}

	// A path: two relations, one statement per shard each.
	var some []weather.Location
	if err := s.NewSelect().Model(&some).Where("id <= 8").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	f.reset()
	if err := s.LoadRelation(ctx, &some, "Reports.Location"); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{2, 2, 2, 2}) {
		t.Errorf("LoadRelation(Reports.Location) ran %v statements; want [2 2 2 2]", c)
	}
	if len(some) != 8 {
		t.Fatalf("read %d locations with id <= 8; want 8", len(some))
	}
	for _, l := range some {
		if len(l.Reports) != 3 {
			t.Errorf("location %d has %d reports loaded; want its 3", l.ID, len(l.Reports))
		}
		for _, r := range l.Reports {
			if r.Location == nil || r.Location.City != l.City {
				t.Errorf("report %d of %s: Location = %v", r.ID, l.City, r.Location)
			}
		}
	}
}

// latestLocation is a location with a has-one relation to a report.
type latestLocation struct {
	bun.BaseModel `bun:"table:weather_locations"`
	session.Token

	ID        int64 `bun:",pk"`
	Continent string
	City      string
	Only      *weather.Report `bun:"rel:has-one,join:id=location_id"`
}

func TestLoadRelationHasOne(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 1, 22))
	var locs []latestLocation
	if err := s.NewSelect().Model(&locs).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	f.reset()
	if err := s.LoadRelation(ctx, &locs, "Only"); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{1, 1, 1, 1}) {
		t.Errorf("has-one load ran %v statements; want one per shard", c)
	}
	if len(locs) != 8 {
		t.Fatalf("read %d locations; want the 8 seeded", len(locs))
	}
	for _, l := range locs {
		if l.Only == nil || l.Only.LocationID != l.ID {
			t.Errorf("location %d: Only = %v; want its report", l.ID, l.Only)
		}
	}
}

// recordingChooser is an ExecuteChooser that records what it is asked and
// answers with answer.
type recordingChooser struct {
	mu     sync.Mutex
	from   []session.ShardID
	answer func(stmt *chooser.Statement) chooser.Target
}

func (c *recordingChooser) ChooseExecute(_ context.Context, stmt *chooser.Statement) (chooser.Target, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if stmt.LoadedFrom != "" {
		c.from = append(c.from, stmt.LoadedFrom)
	}
	return c.answer(stmt), nil
}

func (c *recordingChooser) asked() []session.ShardID {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := slices.Clone(c.from)
	slices.Sort(out)
	return out
}

func TestLoadRelationRouting(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	base := f.session(t)
	f.seed(t, base, weather.Generate(8, 2, 23))
	everywhere := &recordingChooser{answer: func(*chooser.Statement) chooser.Target { return chooser.AllShards() }}
	s, err := session.New(f.shards, weather.ShardChooser, chooser.All, everywhere, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	load := func(t *testing.T, opts ...session.StatementOption) []*weather.Location {
		t.Helper()
		var locs []*weather.Location
		if err := s.NewSelect().Model(&locs).Options(opts...).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		everywhere.mu.Lock()
		everywhere.from = nil
		everywhere.mu.Unlock()
		f.reset()
		return locs
	}

	t.Run("chooser told the parent's shard", func(t *testing.T) {
		locs := load(t)
		if err := s.LoadRelation(ctx, &locs, "Reports"); err != nil {
			t.Fatal(err)
		}
		if got := everywhere.asked(); !slices.Equal(got, []session.ShardID{"asia", "europe", "north_america", "south_america"}) {
			t.Errorf("LoadedFrom values asked = %v; want each parent shard once", got)
		}
		// This chooser ignores LoadedFrom: each parent shard's keys go to
		// every shard, as SQLAlchemy's selectin loading does.
		if c := f.perShard(); !slices.Equal(c, []int{4, 4, 4, 4}) {
			t.Errorf("statements = %v; want [4 4 4 4] from a chooser that answers all shards", c)
		}
	})

	t.Run("statement pin", func(t *testing.T) {
		locs := load(t)
		if err := s.LoadRelation(ctx, &locs, "Reports", session.SetShardID("asia")); err != nil {
			t.Fatal(err)
		}
		if c := f.perShard(); !slices.Equal(c, []int{0, 1, 0, 0}) || len(everywhere.asked()) != 0 {
			t.Errorf("pinned load ran %v statements and asked the chooser %v; want [0 1 0 0] and never", c, everywhere.asked())
		}
		for _, l := range locs {
			if (l.Continent == "Asia") != (len(l.Reports) > 0) {
				t.Errorf("pinned to asia, location %d (%s) got %d reports", l.ID, l.Continent, len(l.Reports))
			}
		}
	})

	t.Run("pin propagates from the parents' select", func(t *testing.T) {
		locs := load(t, session.SetShardID("europe"))
		if err := s.LoadRelation(ctx, &locs, "Reports.Location"); err != nil {
			t.Fatal(err)
		}
		if c := f.perShard(); !slices.Equal(c, []int{0, 0, 2, 0}) || len(everywhere.asked()) != 0 {
			t.Errorf("load of pinned parents ran %v statements and asked the chooser %v; want [0 0 2 0] and never", c, everywhere.asked())
		}
		if len(locs) != 2 || len(locs[0].Reports) != 2 || !locs[0].Reports[0].Pinned() {
			t.Errorf("pinned parents %v: reports not loaded or not pinned", locs)
		}
	})

	t.Run("a relation that lives elsewhere by design", func(t *testing.T) {
		// Asia's archived reports live on europe; the chooser knows.
		archive := &recordingChooser{answer: func(stmt *chooser.Statement) chooser.Target {
			if stmt.LoadedFrom == "asia" {
				return chooser.Shards("europe")
			}
			return chooser.Shards(stmt.LoadedFrom)
		}}
		s2, err := session.New(f.shards, weather.ShardChooser, chooser.All, archive, session.WithShardOrder(weather.Shards...))
		if err != nil {
			t.Fatal(err)
		}
		shadow := &weather.Location{ID: 2, Continent: "Asia", City: "shadow of 2"}
		// PinWins: the shadow is placed off its own shard on purpose.
		if err := s2.Insert(ctx, shadow, session.SetShardID("europe"), session.PinWins()); err != nil {
			t.Fatal(err)
		}
		old := &weather.Report{ID: 9001, LocationID: 2, Temperature: -5, ReportTime: time.Unix(9001, 0).UTC()}
		if err := s2.Insert(ctx, old, session.SetShardID("europe")); err != nil {
			t.Fatal(err)
		}
		var tokyo weather.Location
		if err := s2.Get(session.WithShardID(ctx, "asia"), &tokyo, 2); err != nil {
			t.Fatal(err)
		}
		f.reset()
		if err := s2.LoadRelation(ctx, &tokyo, "Reports"); err != nil {
			t.Fatal(err)
		}
		if c := f.perShard(); !slices.Equal(c, []int{0, 0, 1, 0}) {
			t.Errorf("statements = %v; want one on europe", c)
		}
		if len(tokyo.Reports) != 1 || tokyo.Reports[0].ID != 9001 {
			t.Fatalf("asia's location 2 reports = %v; want the archived report 9001", tokyo.Reports)
		}
		if sh, _ := tokyo.Reports[0].Shard(); sh != "europe" {
			t.Errorf("archived report token = %q; want europe, where it came from", sh)
		}
	})

	t.Run("parents without a shard", func(t *testing.T) {
		loose := []*weather.Location{{ID: 2}}
		err := s.LoadRelation(ctx, &loose, "Reports")
		wantIn(t, err, "no shard", "SetShardID")
		if err := s.LoadRelation(ctx, &loose, "Reports", session.SetShardID("asia")); err != nil || len(loose[0].Reports) != 2 {
			t.Errorf("pinned load of a loose parent = %v, %d reports; want 2", err, len(loose[0].Reports))
		}
		err = s.LoadRelation(ctx, &loose, "Nope")
		wantIn(t, err, `no relation "Nope"`, "Reports")
	})
}

func TestUnitLoadRelationUsesIdentityMap(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 3, 24))
	uow := s.Begin()
	defer uow.Rollback(ctx)
	var locs, reloaded []*weather.Location
	if err := uow.NewSelect().Model(&locs).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	var reps []*weather.Report
	if err := uow.NewSelect().Model(&reps).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	// Belongs-to targets that are tracked cost nothing (SQLAlchemy's
	// many-to-one "use_get" identity-map probe).
	f.reset()
	if err := uow.LoadRelation(ctx, &reps, "Location"); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("belongs-to load of tracked parents ran %v statements; want none", c)
	}
	if len(reps) != 24 || len(locs) != 8 {
		t.Fatalf("the unit read %d locations and %d reports; want the 8 and 24 seeded", len(locs), len(reps))
	}
	for _, r := range reps {
		if r.Location == nil || !slices.Contains(locs, r.Location) {
			t.Fatalf("report %d location %p is not the tracked object", r.ID, r.Location)
		}
	}
	// Has-many returns the tracked reports.
	if err := uow.LoadRelation(ctx, &locs, "Reports"); err != nil {
		t.Fatal(err)
	}
	loaded := 0 // a load that filled nothing must not pass
	for _, l := range locs {
		for _, r := range l.Reports {
			loaded++
			if !slices.Contains(reps, r) {
				t.Errorf("report %d of location %d is not the tracked object", r.ID, l.ID)
			}
		}
	}
	if loaded != len(reps) {
		t.Errorf("has-many load filled %d reports; want the %d tracked", loaded, len(reps))
	}
	// A select with Relation fills a relation the tracked object has not
	// loaded... and keeps the one it has.
	// (Without autoflush: a flush would take the nil as a clear, which
	// orphans the reports.)
	locs[0].Reports = nil
	keep := locs[1].Reports
	if err := uow.NoAutoflush(func() error {
		return uow.NewSelect().Model(&reloaded).Relation("Reports").Scan(ctx)
	}); err != nil {
		t.Fatal(err)
	}
	if reloaded[0] != locs[0] || len(locs[0].Reports) != 3 || !slices.Contains(reps, locs[0].Reports[0]) {
		t.Errorf("select with Relation: object %p, %d reports; want the tracked %p with its 3 tracked reports",
			reloaded[0], len(locs[0].Reports), locs[0])
	}
	if &locs[1].Reports[0] != &keep[0] {
		t.Error("select with Relation replaced a relation the tracked object had loaded")
	}
}

// Models keyed by a string and by a composite key, for the loader's
// general key path.
type country struct {
	bun.BaseModel `bun:"table:countries"`
	session.Token

	Code   string  `bun:",pk"`
	Name   string  `bun:",notnull"`
	Cities []*city `bun:"rel:has-many,join:code=country_code"`
}

type city struct {
	bun.BaseModel `bun:"table:cities"`
	session.Token

	ID          int64    `bun:",pk"`
	CountryCode string   `bun:",notnull"`
	Country     *country `bun:"rel:belongs-to,join:country_code=code"`
}

type batch struct {
	bun.BaseModel `bun:"table:batches"`
	session.Token

	Plant string `bun:",pk"`
	No    int64  `bun:",pk"`
	Items []item `bun:"rel:has-many,join:plant=plant,join:no=batch_no"`
}

type item struct {
	bun.BaseModel `bun:"table:items"`
	session.Token

	ID      int64  `bun:",pk"`
	Plant   string `bun:",notnull"`
	BatchNo int64  `bun:",notnull"`
}

func TestLoadRelationStringAndCompositeKeys(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	for id, db := range f.shards {
		for _, m := range []any{(*country)(nil), (*city)(nil), (*batch)(nil), (*item)(nil)} {
			if _, err := db.NewCreateTable().Model(m).Exec(ctx); err != nil {
				t.Fatalf("create table on %s: %v", id, err)
			}
		}
	}
	put := func(id session.ShardID, objs any) {
		t.Helper()
		if err := s.Insert(ctx, objs, session.SetShardID(id)); err != nil {
			t.Fatal(err)
		}
	}
	// XX exists on two shards, with different cities.
	put("asia", &[]*country{{Code: "JP", Name: "Japan"}, {Code: "XX", Name: "X in Asia"}})
	put("europe", &[]*country{{Code: "NO", Name: "Norway"}, {Code: "XX", Name: "X in Europe"}})
	put("asia", &[]*city{{ID: 1, CountryCode: "JP"}, {ID: 2, CountryCode: "JP"}, {ID: 3, CountryCode: "XX"}})
	put("europe", &[]*city{{ID: 4, CountryCode: "NO"}, {ID: 5, CountryCode: "XX"}, {ID: 6, CountryCode: "XX"}})
	put("asia", &[]*batch{{Plant: "osaka", No: 1}, {Plant: "osaka", No: 2}})
	put("asia", &[]*item{{ID: 1, Plant: "osaka", BatchNo: 1}, {ID: 2, Plant: "osaka", BatchNo: 2}, {ID: 3, Plant: "osaka", BatchNo: 2}, {ID: 4, Plant: "kobe", BatchNo: 1}})

	var countries []*country
	if err := s.NewSelect().Model(&countries).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	f.reset()
	if err := s.LoadRelation(ctx, &countries, "Cities"); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{0, 1, 1, 0}) {
		t.Errorf("statements = %v; want one on asia and one on europe", c)
	}
	for _, c := range countries {
		home, _ := c.Shard()
		var ids []int64
		for _, ct := range c.Cities {
			ids = append(ids, ct.ID)
		}
		slices.Sort(ids)
		want := map[string][]int64{"JP@asia": {1, 2}, "XX@asia": {3}, "NO@europe": {4}, "XX@europe": {5, 6}}[c.Code+"@"+string(home)]
		if !slices.Equal(ids, want) {
			t.Errorf("cities of %s on %s = %v; want %v", c.Code, home, ids, want)
		}
	}

	var cities []city
	if err := s.NewSelect().Model(&cities).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.LoadRelation(ctx, &cities, "Country"); err != nil {
		t.Fatal(err)
	}
	for _, ct := range cities {
		home, _ := ct.Shard()
		if ct.Country == nil || ct.Country.Code != ct.CountryCode {
			t.Fatalf("city %d: Country = %v; want %s", ct.ID, ct.Country, ct.CountryCode)
		}
		if sh, _ := ct.Country.Shard(); sh != home {
			t.Errorf("city %d on %s got country %s from %s", ct.ID, home, ct.Country.Name, sh)
		}
	}

	var batches []*batch
	if err := s.NewSelect().Model(&batches).Order("no").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	f.reset()
	if err := s.LoadRelation(ctx, &batches, "Items"); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{0, 1, 0, 0}) {
		t.Errorf("statements = %v; want one on asia", c)
	}
	if len(batches) != 2 || len(batches[0].Items) != 1 || len(batches[1].Items) != 2 || batches[0].Items[0].ID != 1 {
		t.Errorf("items of osaka 1 and 2 = %+v, %+v; want [1] and [2 3] (kobe 1 belongs to neither)", batches[0].Items, batches[1].Items)
	}
	if sh, _ := batches[1].Items[0].Shard(); sh != "asia" {
		t.Errorf("item token = %q; want asia", sh)
	}
}
