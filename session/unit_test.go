package session_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

var zero4 = []int{0, 0, 0, 0}

func TestUnitGetIdentityMapHitRunsNoStatement(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 2, 11))
	uow := s.Begin()
	defer uow.Rollback(ctx)

	var first *weather.Location
	if err := uow.Get(ctx, &first, 2); err != nil {
		t.Fatalf("Get(2) = %v", err)
	}
	if sh, _ := first.Shard(); sh != "asia" {
		t.Errorf("Get(2) loaded from %q; want asia", sh)
	}
	f.reset()
	var again *weather.Location
	if err := uow.Get(ctx, &again, int32(2)); err != nil {
		t.Fatalf("second Get(2) = %v", err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("identity-map hit ran %v statements; want %v", c, zero4)
	}
	if again != first {
		t.Errorf("second Get(2) = %p; want the tracked object %p", again, first)
	}

	// A select returns the tracked object for a tracked row, and keeps its
	// unflushed change (the tracked object wins).
	first.City = "changed in memory"
	var locs []*weather.Location
	if err := uow.NewSelect().Model(&locs).Order("id").Scan(ctx); err != nil {
		t.Fatalf("select = %v", err)
	}
	if len(locs) != 8 || locs[1] != first || locs[1].City != "changed in memory" {
		t.Fatalf("select row 2 = %p %q; want the tracked object %p with its change", locs[1], locs[1].City, first)
	}
	// Rows the select loaded are now hits too.
	f.reset()
	var third *weather.Location
	if err := uow.Get(ctx, &third, 3); err != nil || third != locs[2] {
		t.Fatalf("Get(3) after select = %p, %v; want %p", third, err, locs[2])
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("Get of a selected row ran %v statements; want %v", c, zero4)
	}

	// A miss is sql.ErrNoRows; a *T is refused with a message saying why.
	var missing *weather.Location
	if err := uow.Get(ctx, &missing, 999); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("Get(999) = %v; want sql.ErrNoRows", err)
	}
	var plain weather.Location
	err := uow.Get(ctx, &plain, 2)
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("Get into a *T = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "**T")
}

func TestUnitSameKeyOnTwoShardsIsTwoObjects(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	tokyo := &weather.Location{ID: 1, Continent: "Asia", City: "Tokyo"}
	oslo := &weather.Location{ID: 1, Continent: "Europe", City: "Oslo"}
	if err := s.Insert(ctx, tokyo); err != nil {
		t.Fatal(err)
	}
	if err := s.Insert(ctx, oslo); err != nil {
		t.Fatal(err)
	}
	uow := s.Begin()
	var locs []*weather.Location
	if err := uow.NewSelect().Model(&locs).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(locs) != 2 || locs[0] == locs[1] {
		t.Fatalf("select of the two id-1 rows = %v; want two distinct objects", locs)
	}
	f.reset()
	var a, e *weather.Location
	if err := uow.Get(session.WithShardID(ctx, "asia"), &a, 1); err != nil {
		t.Fatal(err)
	}
	if err := uow.Get(session.WithShardID(ctx, "europe"), &e, 1); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("Gets of tracked keys ran %v statements; want %v", c, zero4)
	}
	if a == e || a.City != "Tokyo" || e.City != "Oslo" {
		t.Fatalf("Get(1)@asia = %q, Get(1)@europe = %q (same object: %v); want Tokyo and Oslo, two objects", a.City, e.City, a == e)
	}
	a.City, e.City = "Kyoto", "Bergen"
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	for id, want := range map[session.ShardID]string{"asia": "Kyoto", "europe": "Bergen"} {
		var city string
		if err := f.shards[id].NewSelect().Table("weather_locations").Column("city").Where("id = 1").Scan(ctx, &city); err != nil || city != want {
			t.Errorf("city of id 1 on %s = %q, %v; want %q", id, city, err, want)
		}
	}
}

// newLocations returns n locations per continent (ids from base), each
// with per reports in its Reports relation only (no Location pointer, no
// LocationID): the unit must place and key them.
func newLocations(n, per int, base int64) []*weather.Location {
	var locs []*weather.Location
	rid := base * 100
	for i := range n * len(weather.Continents) {
		loc := &weather.Location{ID: base + int64(i), Continent: weather.Continents[i%len(weather.Continents)], City: "New"}
		for range per {
			rid++
			loc.Reports = append(loc.Reports, &weather.Report{ID: rid, Temperature: float64(rid % 40), ReportTime: time.Unix(rid, 0).UTC()})
		}
		locs = append(locs, loc)
	}
	return locs
}

func TestUnitFlushPlacesChildrenWithParentsOneInsertPerShardPerTable(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)

	t.Run("children in the parent's has-many", func(t *testing.T) {
		locs := newLocations(3, 4, 1000) // interleaved over the 4 shards
		uow := s.Begin()
		if err := uow.Add(&locs); err != nil {
			t.Fatal(err)
		}
		f.reset()
		if err := uow.Flush(ctx); err != nil {
			t.Fatalf("Flush = %v", err)
		}
		if c := f.statementsLike("INSERT"); !slices.Equal(c, []int{2, 2, 2, 2}) {
			t.Errorf("flush ran %v INSERTs; want one per shard per table, [2 2 2 2]", c)
		}
		for _, id := range weather.Shards {
			ins := f.sqlOn(id, "INSERT")
			if len(ins) == 2 && !(strings.Contains(ins[0], "weather_locations") && strings.Contains(ins[1], "weather_reports")) {
				t.Errorf("on %s the INSERTs were %.40q then %.40q; want locations before reports", id, ins[0], ins[1])
			}
		}
		if err := uow.Commit(ctx); err != nil {
			t.Fatalf("Commit = %v", err)
		}
		checkColocated(t, f, locs)
	})

	t.Run("children pointing to parents added after them", func(t *testing.T) {
		s := f.followSession(t)
		var locs []*weather.Location
		var reps []*weather.Report
		for i, l := range newLocations(2, 3, 2000) {
			locs = append(locs, l)
			for _, r := range l.Reports {
				r.Location = l // belongs-to: FollowParent places the report
				reps = append(reps, r)
			}
			locs[i].Reports = nil
		}
		uow := s.Begin()
		if err := uow.Add(&reps); err != nil { // children first
			t.Fatal(err)
		}
		if err := uow.Add(&locs); err != nil {
			t.Fatal(err)
		}
		f.reset()
		if err := uow.Commit(ctx); err != nil {
			t.Fatalf("Commit = %v", err)
		}
		if c := f.statementsLike("INSERT"); !slices.Equal(c, []int{2, 2, 2, 2}) {
			t.Errorf("commit ran %v INSERTs; want [2 2 2 2]", c)
		}
		for _, l := range locs {
			for _, r := range reps {
				if r.Location == l {
					l.Reports = append(l.Reports, r)
				}
			}
		}
		checkColocated(t, f, locs)
	})
}

// checkColocated checks that every location and each of its reports are
// stored on the location's continent's shard, with the report's key filled
// and both Tokens naming that shard.
func checkColocated(t *testing.T, f *fixture, locs []*weather.Location) {
	t.Helper()
	for _, l := range locs {
		want := weather.ShardOfContinent[l.Continent]
		if sh, _ := l.Shard(); sh != want {
			t.Errorf("token of location %d = %q; want %q", l.ID, sh, want)
		}
		if !slices.Contains(f.rowsOn(t, want, "weather_locations"), l.ID) {
			t.Errorf("location %d is not on %s", l.ID, want)
		}
		onShard := f.rowsOn(t, want, "weather_reports")
		for _, r := range l.Reports {
			if sh, _ := r.Shard(); sh != want || r.LocationID != l.ID || !slices.Contains(onShard, r.ID) {
				t.Errorf("report %d: token %q, location_id %d, on %s: %v; want token %q, location_id %d, stored there",
					r.ID, sh, r.LocationID, want, slices.Contains(onShard, r.ID), want, l.ID)
			}
		}
	}
}

func TestUnitUpdateSendsOnlyChangedColumns(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 4, 12))
	uow := s.Begin()
	var reps []*weather.Report
	if err := uow.NewSelect().Model(&reps).Where("location_id = ?", 2).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(reps) != 4 {
		t.Fatalf("loaded %d reports; want 4", len(reps))
	}

	// Nothing changed: nothing sent.
	f.reset()
	if err := uow.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("flush with no changes ran %v statements; want none", c)
	}

	reps[0].Temperature = 99.5
	f.reset()
	if err := uow.Flush(ctx); err != nil {
		t.Fatalf("Flush = %v", err)
	}
	ups := f.sqlOn("asia", "UPDATE")
	if c := f.perShard(); !slices.Equal(c, []int{0, 1, 0, 0}) || len(ups) != 1 {
		t.Fatalf("flush of one change ran %v statements, UPDATEs %q; want one UPDATE on asia", c, ups)
	}
	checkSet(t, ups[0], "temperature")

	// Three objects changing the same column share one UPDATE.
	for _, r := range reps[1:] {
		r.Temperature = -1
	}
	f.reset()
	if err := uow.Flush(ctx); err != nil {
		t.Fatalf("Flush = %v", err)
	}
	ups = f.sqlOn("asia", "")
	if len(ups) != 1 || !strings.Contains(ups[0], "UPDATE") {
		t.Fatalf("flush of three changes ran %q; want one UPDATE", ups)
	}
	checkSet(t, ups[0], "temperature")

	// A change of two columns sets both, and only them.
	reps[0].Temperature, reps[0].ReportTime = 1, time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	f.reset()
	if err := uow.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	ups = f.sqlOn("asia", "UPDATE")
	if len(ups) != 1 {
		t.Fatalf("UPDATEs = %q; want one", ups)
	}
	checkSet(t, ups[0], "temperature", "report_time")

	if err := uow.Commit(ctx); err != nil {
		t.Fatal(err)
	}
	var temps []float64
	if err := f.shards["asia"].NewSelect().Table("weather_reports").Column("temperature").Where("location_id = 2").Order("id").Scan(ctx, &temps); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(temps, []float64{1, -1, -1, -1}) {
		t.Errorf("temperatures after commit = %v; want [1 -1 -1 -1]", temps)
	}
}

// checkSet checks that an UPDATE sets exactly cols among the report columns.
func checkSet(t *testing.T, sql string, cols ...string) {
	t.Helper()
	set := sql[strings.Index(sql, " SET ")+5:]
	if i := strings.Index(set, " WHERE "); i >= 0 {
		set = set[:i]
	}
	if i := strings.Index(set, " FROM "); i >= 0 {
		set = set[:i]
	}
	for _, c := range []string{"temperature", "report_time", "location_id", `"id"`} {
		want := slices.Contains(cols, c)
		if got := strings.Contains(set, c); got != want {
			t.Errorf("SET clause %q mentions %s: %v; want %v", set, c, got, want)
		}
	}
}

func TestUnitDeleteChildrenBeforeParents(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(4, 3, 13))
	uow := s.Begin()
	var locs []*weather.Location
	if err := uow.NewSelect().Model(&locs).Relation("Reports").Where("id = ?", 2).Scan(ctx); err != nil || len(locs) != 1 {
		t.Fatalf("select = %v, %v", locs, err)
	}
	loc := locs[0]
	// The parent is marked first: the flush still deletes its children first
	// (the foreign key would refuse the other order).
	if err := uow.Delete(loc, &loc.Reports); err != nil {
		t.Fatal(err)
	}
	f.reset()
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit = %v", err)
	}
	dels := f.sqlOn("asia", "DELETE")
	if len(dels) != 2 || !strings.Contains(dels[0], "weather_reports") || !strings.Contains(dels[1], "weather_locations") {
		t.Errorf("DELETEs on asia = %q; want reports, then locations", dels)
	}
	if ids := f.rowsOn(t, "asia", "weather_locations"); slices.Contains(ids, 2) {
		t.Errorf("location 2 still on asia: %v", ids)
	}
}

func TestUnitRefusesLinksAcrossShards(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(4, 0, 14))
	uow := s.Begin()
	var tokyo *weather.Location
	if err := uow.Get(ctx, &tokyo, 2); err != nil {
		t.Fatal(err)
	}
	stray := &weather.Report{ID: 77, LocationID: 2, Location: tokyo, Temperature: 1, ReportTime: time.Now()}
	stray.SetShard("europe") // placed elsewhere by hand
	if err := uow.Add(stray); err != nil {
		t.Fatal(err)
	}
	f.reset()
	err := uow.Flush(ctx)
	if !errors.Is(err, session.ErrRelationDenied) {
		t.Fatalf("Flush = %v; want ErrRelationDenied", err)
	}
	wantIn(t, err, "Report", "europe", "Location", "asia")
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("refused flush sent %v statements; want none", c)
	}
	// The unit is still usable: fix the object and flush.
	stray.SetShard("")
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit after the fix = %v", err)
	}
	if sh, _ := stray.Shard(); sh != "asia" || !slices.Contains(f.rowsOn(t, "asia", "weather_reports"), 77) {
		t.Errorf("report 77 placed on %q; want asia, with its location", sh)
	}
}

func TestUnitRefreshExpungeRollback(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(4, 0, 15))
	uow := s.Begin()
	var loc *weather.Location
	if err := uow.Get(ctx, &loc, 3); err != nil { // europe
		t.Fatal(err)
	}
	city := loc.City
	loc.City = "scribbled"
	f.reset()
	if err := uow.Refresh(ctx, loc); err != nil {
		t.Fatalf("Refresh = %v", err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{0, 0, 1, 0}) || loc.City != city {
		t.Errorf("Refresh ran %v statements, city %q; want one on europe and %q", c, loc.City, city)
	}
	f.reset()
	if err := uow.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, zero4) {
		t.Errorf("flush after Refresh ran %v statements; want none", c)
	}

	if err := uow.Expunge(loc); err != nil {
		t.Fatal(err)
	}
	var again *weather.Location
	if err := uow.Get(ctx, &again, 3); err != nil || again == loc {
		t.Errorf("Get after Expunge = %p, %v; want a fresh object, not %p", again, err, loc)
	}
	if err := uow.Expunge(loc); !errors.Is(err, session.ErrNotTracked) {
		t.Errorf("second Expunge = %v; want ErrNotTracked", err)
	}

	fresh := &weather.Location{ID: 500, Continent: "Asia", City: "Temporary"}
	if err := uow.Add(fresh); err != nil {
		t.Fatal(err)
	}
	if err := uow.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	if err := uow.Rollback(ctx); err != nil {
		t.Fatalf("Rollback = %v", err)
	}
	if slices.Contains(f.rowsOn(t, "asia", "weather_locations"), 500) {
		t.Error("location 500 survived Rollback")
	}
	if sh, ok := fresh.Shard(); ok {
		t.Errorf("token of a rolled-back insert = %q; want none", sh)
	}
	// The unit lives on after Rollback (it ended there before issue 11):
	// the rolled-back insert was expunged, so it can be added again.
	if err := uow.Add(fresh); err != nil {
		t.Errorf("Add after Rollback = %v; want nil", err)
	}
	if err := uow.Rollback(ctx); err != nil {
		t.Errorf("second Rollback = %v; want nil", err)
	}
}

func TestUnitCommitRefusesShardWhoseTransactionFailed(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	uow := s.Begin()
	if err := uow.Add(&weather.Location{ID: 1, Continent: "Asia", City: "Tokyo"}, &weather.Location{ID: 2, Continent: "Europe", City: "Oslo"}); err != nil {
		t.Fatal(err)
	}
	if err := uow.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	var none []*weather.Location
	err := uow.NewSelect().Model(&none).Where("no_such_column = 1").Options(session.SetShardID("asia")).Scan(ctx)
	if err == nil {
		t.Fatal("select of a missing column succeeded")
	}
	err = uow.Commit(ctx)
	if _, ok := errors.AsType[*session.CommitError](err); !ok {
		t.Fatalf("Commit = %v; want a *CommitError", err)
	}
	wantIn(t, err, "asia", "failed earlier")
	for _, id := range []session.ShardID{"asia", "europe"} {
		if ids := f.rowsOn(t, id, "weather_locations"); len(ids) != 0 {
			t.Errorf("rows on %s after a refused commit = %v; want none", id, ids)
		}
	}
}

// TestWorkloadStatementCounts asserts the statement counts BENCH.md quotes
// for W5 and W6: SQLAlchemy's ShardedSession needs 7,468 statements to
// flush 10,000 reports interleaved over 4 shards (it loses batching) and
// 20 to load 500 locations with their reports (selectin sends each shard's
// keys to every shard); bunshard needs 4 and 8.
func TestWorkloadStatementCounts(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.followSession(t)
	d := weather.Generate(500, 2, 16)
	f.seed(t, s, d)

	for _, twoPhase := range []bool{false, true} {
		var opts []session.UnitOption
		if twoPhase {
			opts = append(opts, session.TwoPhase())
		}
		reps := make([]*weather.Report, 10000)
		for i := range reps {
			loc := d.Locations[i%len(d.Locations)] // interleaved over the shards
			reps[i] = &weather.Report{ID: int64(100000 + i + 20000*btoi(twoPhase)), LocationID: loc.ID, Location: loc,
				Temperature: 20, ReportTime: time.Unix(int64(i), 0).UTC()}
		}
		uow := s.Begin(opts...)
		if err := uow.Add(&reps); err != nil {
			t.Fatal(err)
		}
		f.reset()
		if err := uow.Commit(ctx); err != nil {
			t.Fatalf("Commit (two-phase %v) = %v", twoPhase, err)
		}
		var ins []int
		for _, id := range weather.Shards {
			ins = append(ins, len(slices.DeleteFunc(f.sqlOn(id, "INSERT"), func(q string) bool { return strings.Contains(q, "bunshard_decisions") })))
		}
		if !slices.Equal(ins, []int{1, 1, 1, 1}) {
			t.Errorf("W5 (two-phase %v): %v INSERT statements per shard; want [1 1 1 1], 4 in all", twoPhase, ins)
		}
	}

	var locs []*weather.Location
	f.reset()
	if err := s.NewSelect().Model(&locs).Where("id <= ?", 500).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.LoadRelation(ctx, &locs, "Reports"); err != nil {
		t.Fatal(err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{2, 2, 2, 2}) {
		t.Errorf("W6: %v statements per shard; want [2 2 2 2], 8 in all", c)
	}
	n := 0
	for _, l := range locs {
		n += len(l.Reports)
	}
	if len(locs) != 500 || n != 500*2+10000+10000 {
		t.Errorf("W6 loaded %d locations and %d reports; want 500 and %d", len(locs), n, 500*2+20000)
	}
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

type author struct {
	bun.BaseModel `bun:"table:authors"`
	session.Token

	ID    int64   `bun:",pk,autoincrement"`
	Name  string  `bun:",notnull"`
	Books []*book `bun:"rel:has-many,join:id=author_id"`
}

type book struct {
	bun.BaseModel `bun:"table:books"`
	session.Token

	ID       int64   `bun:",pk,autoincrement"`
	AuthorID int64   `bun:",notnull"`
	Title    string  `bun:",notnull"`
	Author   *author `bun:"rel:belongs-to,join:author_id=id"`
}

func TestUnitFillsGeneratedKeys(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	for id, db := range f.shards {
		for _, m := range []any{(*author)(nil), (*book)(nil)} {
			if _, err := db.NewCreateTable().Model(m).WithForeignKeys().Exec(ctx); err != nil {
				t.Fatalf("create table on %s: %v", id, err)
			}
		}
	}
	uow := s.Begin()
	// A book whose author is new and not added: the author has a Token but
	// no shard, so it was never stored, and the flush inserts it first.
	orphan := &book{Title: "Kokoro", Author: &author{Name: "Soseki"}}
	tolstoy := &author{Name: "Tolstoy", Books: []*book{{Title: "War and Peace"}, {Title: "Anna Karenina"}}}
	if err := uow.Add(orphan, tolstoy); err != nil {
		t.Fatal(err)
	}
	if err := uow.Commit(session.WithShardID(ctx, "europe")); err != nil { // the context pins the unit's placement
		t.Fatalf("Commit = %v", err)
	}
	if orphan.Author.ID == 0 || orphan.AuthorID != orphan.Author.ID {
		t.Errorf("orphan book: author id %d, author_id %d; want the generated id in both", orphan.Author.ID, orphan.AuthorID)
	}
	for _, b := range tolstoy.Books {
		if tolstoy.ID == 0 || b.AuthorID != tolstoy.ID {
			t.Errorf("book %q: author_id %d; want Tolstoy's generated id %d", b.Title, b.AuthorID, tolstoy.ID)
		}
		if sh, _ := b.Shard(); sh != "europe" {
			t.Errorf("book %q on %q; want europe", b.Title, sh)
		}
	}
	if n, _ := f.shards["europe"].NewSelect().Model((*book)(nil)).Count(ctx); n != 3 {
		t.Errorf("books on europe = %d; want 3", n)
	}
}

func TestUnitRelationRouterDecidesLinks(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	base := f.session(t)
	f.seed(t, base, weather.Generate(4, 0, 17))
	// Location 2 (asia) also exists on europe, so that a report there may
	// keep a foreign key to it: the archive of asia's reports, by design.
	if err := base.Insert(ctx, &weather.Location{ID: 2, Continent: "Asia", City: "archive of 2"},
		session.SetShardID("europe"), session.PinWins()); err != nil {
		t.Fatal(err)
	}
	archive := chooser.RelationRouterFunc(func(_ context.Context, a, b chooser.Object) chooser.Verdict {
		if a.Table.TypeName == "Report" && a.Shard == "europe" && b.Shard == "asia" {
			return chooser.Allow
		}
		return chooser.Abstain // the chain's default: same shard only
	})
	routers := chooser.NewRouters(weather.ShardChooser, archive)
	s, err := session.New(f.shards, routers, chooser.All, weather.ByContinent, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	newReport := func(id int64, loc *weather.Location, shard session.ShardID) *weather.Report {
		r := &weather.Report{ID: id, LocationID: loc.ID, Location: loc, Temperature: 1, ReportTime: time.Unix(id, 0).UTC()}
		r.SetShard(shard)
		return r
	}

	uow := s.Begin()
	var tokyo *weather.Location
	if err := uow.Get(session.WithShardID(ctx, "asia"), &tokyo, 2); err != nil {
		t.Fatal(err)
	}
	if err := uow.Add(newReport(900, tokyo, "europe")); err != nil {
		t.Fatal(err)
	}
	if err := uow.Commit(ctx); err != nil {
		t.Fatalf("Commit of a link the router allows = %v", err)
	}
	if !slices.Contains(f.rowsOn(t, "europe", "weather_reports"), 900) {
		t.Error("report 900 is not on europe")
	}

	// The router's default denies another cross-shard link, even with
	// AllowCrossShard: a RelationRouter decides every link.
	uow = s.Begin(session.AllowCrossShard())
	if err := uow.Get(session.WithShardID(ctx, "asia"), &tokyo, 2); err != nil {
		t.Fatal(err)
	}
	if err := uow.Add(newReport(901, tokyo, "north_america")); err != nil {
		t.Fatal(err)
	}
	err = uow.Flush(ctx)
	if !errors.Is(err, session.ErrRelationDenied) {
		t.Fatalf("Flush of a denied link = %v; want ErrRelationDenied", err)
	}
	wantIn(t, err, "north_america", "asia", "denies")
	_ = uow.Rollback(ctx)
}
