// Command shard_demo is SQLAlchemy's sharding example (weather locations
// sharded by continent over four databases, with their reports) written
// with bunshard.
//
// With no configuration it starts four temporary local PostgreSQL servers
// itself and removes them at the end:
//
//	go run ./examples/shard_demo
//
// To use servers of your own, name four existing databases, one per shard
// (north_america, asia, europe, south_america), in BUNSHARD_DEMO_DSNS:
//
//	BUNSHARD_DEMO_DSNS=postgres://postgres@host1/weather?sslmode=disable,... go run ./examples/shard_demo
//
// BUNSHARD_DEMO_DRIVER picks the database/sql driver under every shard's
// *bun.DB: pgdriver (Bun's own, the default), pgx (pgx's stdlib driver in
// its default exec mode) or pgx-simple (pgx with
// QueryExecModeSimpleProtocol); see docs/drivers.md for which is faster
// for what:
//
//	BUNSHARD_DEMO_DRIVER=pgx go run ./examples/shard_demo
//
// The demo drops and recreates its two tables there. Its two-phase commit
// needs max_prepared_transactions > 0 on those servers; without it the demo
// says so and commits in one phase.
package main

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io"
	"log"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/session"
	"github.com/bunshard/bunshard/shardtest"
)

// WeatherLocation is a city; its continent decides its shard.
type WeatherLocation struct {
	bun.BaseModel `bun:"table:weather_locations"`
	session.Token // remembers the shard the row lives on

	ID        int64     `bun:",pk"`
	Continent string    `bun:",notnull"`
	City      string    `bun:",notnull"`
	Reports   []*Report `bun:"rel:has-many,join:id=location_id"`
}

// Report is a temperature reading, stored on its location's shard.
type Report struct {
	bun.BaseModel `bun:"table:weather_reports"`
	session.Token

	ID          int64            `bun:",pk"`
	LocationID  int64            `bun:",notnull"`
	Temperature float64          `bun:",notnull"`
	ReportTime  time.Time        `bun:",notnull,default:current_timestamp"`
	Location    *WeatherLocation `bun:"rel:belongs-to,join:location_id=id"`
}

var shardIDs = []session.ShardID{"north_america", "asia", "europe", "south_america"}

var shardLookup = map[string]session.ShardID{
	"North America": "north_america",
	"Asia":          "asia",
	"Europe":        "europe",
	"South America": "south_america",
}

// byContinent routes statements that declare the continent (and splits IN
// lists per shard); other statements go to every shard.
var byContinent = chooser.NewValueMap("continent", shardLookup)

// placeRow is the ShardChooser: a location by its continent, a report by
// its location (SQLAlchemy's shard_chooser recursing to the parent).
var placeRow = chooser.ShardChooserFunc(func(ctx context.Context, t *schema.Table, obj any) (session.ShardID, error) {
	switch o := obj.(type) {
	case *WeatherLocation:
		return byContinent.ChooseShard(ctx, t, o)
	case *Report:
		if o.Location == nil {
			return "", errors.New("report has no location")
		}
		if id, ok := o.Location.Shard(); ok {
			return id, nil
		}
		return shardLookup[o.Location.Continent], nil
	}
	return "", fmt.Errorf("no shard rule for %s", t.TypeName)
})

func main() {
	if err := run(context.Background(), os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, w io.Writer) error {
	dsns, cleanup, err := shardDSNs(w)
	if err != nil {
		return err
	}
	defer cleanup()

	dialect := pgdialect.New() // one dialect instance shared by every shard
	shards := map[session.ShardID]bun.IDB{}
	for i, id := range shardIDs {
		sqldb, err := openDB(os.Getenv("BUNSHARD_DEMO_DRIVER"), dsns[i])
		if err != nil {
			return err
		}
		shards[id] = bun.NewDB(sqldb, dialect)
	}
	sess, err := session.New(shards, placeRow, chooser.All, byContinent, session.WithShardOrder(shardIDs...))
	if err != nil {
		return err
	}
	defer sess.Close()
	if err := sess.Ping(ctx); err != nil {
		return err
	}
	for _, id := range shardIDs {
		db, _ := sess.DB(id)
		if err := createTables(ctx, db); err != nil {
			return fmt.Errorf("create tables on %s: %w", id, err)
		}
	}

	// Ids are global: a plain counter here; see chooser and identity for
	// shard-encoded ids generated without coordination.
	nextID := int64(0)
	newLoc := func(continent, city string) *WeatherLocation {
		nextID++
		return &WeatherLocation{ID: nextID, Continent: continent, City: city}
	}
	tokyo := newLoc("Asia", "Tokyo")
	newyork := newLoc("North America", "New York")
	toronto := newLoc("North America", "Toronto")
	london := newLoc("Europe", "London")
	dublin := newLoc("Europe", "Dublin")
	brasilia := newLoc("South America", "Brasilia")
	quito := newLoc("South America", "Quito")
	locations := []*WeatherLocation{tokyo, newyork, toronto, london, dublin, brasilia, quito}

	section(w, "insert: the ShardChooser places each location (one INSERT per shard)")
	if err := sess.Insert(ctx, &locations); err != nil {
		return err
	}
	for _, l := range locations {
		id, _ := l.Shard()
		fmt.Fprintf(w, "  %-10s %-14s -> %s\n", l.City, l.Continent, id)
	}
	reports := []*Report{
		{ID: 1, LocationID: tokyo.ID, Temperature: 80.0, Location: tokyo},
		{ID: 2, LocationID: newyork.ID, Temperature: 75, Location: newyork},
		{ID: 3, LocationID: quito.ID, Temperature: 85, Location: quito},
		{ID: 4, LocationID: london.ID, Temperature: 58.5, Location: london},
		{ID: 5, LocationID: toronto.ID, Temperature: 61, Location: toronto},
	}
	if err := sess.Insert(ctx, &reports); err != nil {
		return err
	}
	for _, r := range reports {
		id, _ := r.Shard()
		fmt.Fprintf(w, "  report %d (%.1f at %s) -> %s\n", r.ID, r.Temperature, r.Location.City, id)
	}

	section(w, "rows per shard")
	counts, err := sess.NewSelect().Model((*WeatherLocation)(nil)).CountByShard(ctx)
	if err != nil {
		return err
	}
	for _, id := range shardIDs {
		fmt.Fprintf(w, "  %-14s %d locations\n", id, counts[id])
	}

	section(w, "get by primary key: every shard is asked, one has it")
	var t WeatherLocation
	if err := sess.Get(ctx, &t, tokyo.ID); err != nil {
		return err
	}
	home, _ := t.Shard()
	fmt.Fprintf(w, "  Get(%d) = %s, from %s\n", tokyo.ID, t.City, home)

	section(w, "fan-out query: continent IN (Europe, Asia) goes to those two shards only")
	var eu []WeatherLocation
	q := sess.NewSelect().Model(&eu).WhereShardKey("continent", "Europe", "Asia").Order("id")
	route, err := q.Route(ctx)
	if err != nil {
		return err
	}
	if err := q.Scan(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "  route: %v\n  cities: %s\n", route, cities(eu))

	section(w, "pinned query: city LIKE 'T%' on north_america only (Tokyo is in asia)")
	var ts []WeatherLocation
	if err := sess.NewSelect().Model(&ts).Where("city LIKE ?", "T%").
		Options(session.SetShardID("north_america")).Scan(ctx); err != nil {
		return err
	}
	fmt.Fprintf(w, "  cities: %s\n", cities(ts))

	section(w, "relation load: locations with their reports, each on its own shard")
	var withReports []*WeatherLocation
	if err := sess.NewSelect().Model(&withReports).Relation("Reports").Order("id").Scan(ctx); err != nil {
		return err
	}
	for _, l := range withReports {
		lid, _ := l.Shard()
		for _, r := range l.Reports {
			rid, _ := r.Shard()
			fmt.Fprintf(w, "  %-9s (%s): report %d = %.1f, loaded from %s\n", l.City, lid, r.ID, r.Temperature, rid)
		}
	}

	section(w, "global order: the two warmest reports across all shards")
	var top []Report
	if err := sess.NewSelect().Model(&top).Relation("Location").Order("temperature DESC").Limit(2).Scan(ctx); err != nil {
		return err
	}
	for _, r := range top {
		fmt.Fprintf(w, "  %.1f at %s\n", r.Temperature, r.Location.City)
	}

	section(w, "aggregates merged across shards: reports and mean temperature per location")
	type perLocation struct {
		LocationID int64
		N          int64
		Mean       float64
	}
	var stats []perLocation
	if err := sess.NewSelect().Model((*Report)(nil)).GroupBy("location_id").
		Aggregate(session.CountAll().As("n"), session.Avg("temperature").As("mean")).
		Order("location_id").Scan(ctx, &stats); err != nil {
		return err
	}
	for _, st := range stats {
		fmt.Fprintf(w, "  location %d: %d report(s), mean %.1f\n", st.LocationID, st.N, st.Mean)
	}
	total, err := sess.NewSelect().Model((*Report)(nil)).Count(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "  count(*) over all shards: %d\n", total)

	section(w, "unit of work with two-phase commit: new reports for Dublin and Quito, all or nothing")
	newReports := func() []*Report {
		return []*Report{
			{ID: 6, LocationID: dublin.ID, Temperature: 55, Location: dublin},
			{ID: 7, LocationID: quito.ID, Temperature: 77, Location: quito},
		}
	}
	more := newReports()
	err = commitUnit(ctx, sess, more, session.TwoPhase())
	if err != nil && strings.Contains(err.Error(), "prepared transactions are disabled") {
		// Servers of your own may run with max_prepared_transactions = 0.
		fmt.Fprintln(w, "  (these servers have max_prepared_transactions = 0: committing in one phase instead)")
		more = newReports()
		err = commitUnit(ctx, sess, more)
	}
	if err != nil {
		return err
	}
	for _, r := range more {
		id, _ := r.Shard()
		fmt.Fprintf(w, "  report %d committed on %s\n", r.ID, id)
	}

	section(w, "update after the shard key changed: refused, the row would be lost to key-routed reads")
	tokyo.Continent = "Europe"
	err = sess.Update(ctx, tokyo)
	if !errors.Is(err, session.ErrShardKeyChanged) {
		return fmt.Errorf("update of Tokyo with continent Europe = %v; want ErrShardKeyChanged", err)
	}
	id, _ := tokyo.Shard()
	fmt.Fprintf(w, "  Tokyo (on %s) with continent Europe: ErrShardKeyChanged; move a row by delete + insert in one unit\n", id)
	tokyo.Continent = "Asia"
	return nil
}

// commitUnit adds reps to a new unit of work and commits it.
func commitUnit(ctx context.Context, sess *session.Session, reps []*Report, opts ...session.UnitOption) error {
	uow := sess.Begin(opts...)
	if err := uow.Add(&reps); err != nil {
		return err
	}
	return uow.Commit(ctx)
}

func createTables(ctx context.Context, db bun.IDB) error {
	for _, m := range []any{(*Report)(nil), (*WeatherLocation)(nil)} {
		if _, err := db.NewDropTable().Model(m).IfExists().Cascade().Exec(ctx); err != nil {
			return err
		}
	}
	for _, m := range []any{(*WeatherLocation)(nil), (*Report)(nil)} {
		if _, err := db.NewCreateTable().Model(m).WithForeignKeys().Exec(ctx); err != nil {
			return err
		}
	}
	return nil
}

// openDB opens dsn with the driver BUNSHARD_DEMO_DRIVER names ("" is
// pgdriver). It dials nothing; an unknown driver name is an error.
func openDB(driver, dsn string) (*sql.DB, error) {
	switch driver {
	case "", "pgdriver":
		return sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), nil
	case "pgx", "pgx-simple":
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("BUNSHARD_DEMO_DRIVER=%s: %w", driver, err)
		}
		if driver == "pgx-simple" {
			cfg.DefaultQueryExecMode = pgx.QueryExecModeSimpleProtocol
		}
		return stdlib.OpenDB(*cfg), nil
	}
	return nil, fmt.Errorf("BUNSHARD_DEMO_DRIVER=%q: want pgdriver, pgx or pgx-simple", driver)
}

// shardDSNs returns the four shard DSNs: from BUNSHARD_DEMO_DSNS, or from
// four temporary local servers started here (removed by cleanup).
func shardDSNs(w io.Writer) (dsns []string, cleanup func(), err error) {
	if v := os.Getenv("BUNSHARD_DEMO_DSNS"); v != "" {
		dsns = strings.Split(v, ",")
		if len(dsns) != len(shardIDs) {
			return nil, nil, fmt.Errorf("BUNSHARD_DEMO_DSNS names %d databases; want %d (%v)", len(dsns), len(shardIDs), shardIDs)
		}
		fmt.Fprintln(w, "using the databases in BUNSHARD_DEMO_DSNS")
		return dsns, func() {}, nil
	}
	fmt.Fprintln(w, "starting 4 temporary PostgreSQL servers (set BUNSHARD_DEMO_DSNS to use your own)")
	set, err := shardtest.Start(len(shardIDs))
	if err != nil {
		return nil, nil, err
	}
	for i := range shardIDs {
		dsns = append(dsns, set.Server(i).DSN("postgres"))
	}
	return dsns, func() {
		if err := set.Close(); err != nil {
			log.Printf("stopping the temporary servers: %v", err)
		}
	}, nil
}

func section(w io.Writer, title string) { fmt.Fprintf(w, "\n== %s\n", title) }

func cities(ls []WeatherLocation) string {
	names := make([]string, len(ls))
	for i, l := range ls {
		names[i] = l.City
	}
	return strings.Join(names, ", ")
}
