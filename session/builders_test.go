package session_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// noPanic runs fn and turns a panic into a test failure, so that a bug that
// used to panic fails its subtest instead of the whole test binary.
func noPanic(t *testing.T, what string, fn func() error) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Errorf("%s panicked: %v", what, r)
			err = fmt.Errorf("panic: %v", r)
		}
	}()
	return fn()
}

func locIDs(ls []weather.Location) []int64 {
	ids := make([]int64, len(ls))
	for i, l := range ls {
		ids[i] = l.ID
	}
	slices.Sort(ids)
	return ids
}

// victimAlive reports whether the table victim (made by makeVictim) still
// exists on shard id.
func victimAlive(t *testing.T, f *fixture, id session.ShardID) bool {
	t.Helper()
	var n int
	err := f.shards[id].NewRaw("SELECT count(*) FROM pg_catalog.pg_tables WHERE tablename = 'victim'").Scan(context.Background(), &n)
	if err != nil {
		t.Fatal(err)
	}
	return n == 1
}

func makeVictim(t *testing.T, f *fixture, id session.ShardID) {
	t.Helper()
	if _, err := f.shards[id].ExecContext(context.Background(), "CREATE TABLE IF NOT EXISTS victim (x int)"); err != nil {
		t.Fatal(err)
	}
}

// TestOrderIsNoSQL guards issue #8 item 1: Order takes a column of the model
// and keywords, never SQL. Before, an unparsable term was passed on as raw
// SQL, and on a single-shard route Order("id; DROP TABLE victim; --")
// dropped the table.
func TestOrderIsNoSQL(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(12, 3, 21))
	makeVictim(t, f, "asia")
	bad := []string{
		"id; DROP TABLE victim; --",
		"id DESC; DROP TABLE victim; --",
		"id DESC LIMIT 1",
		"id ASC ASC",
		"id NULLS",
		"id NULLS FIRST DESC",
		`id COLLATE "de_DE"`,
		"id COLLATE C",
		"lower(city)",
		"location.city",
		`"id"`,
		"ID",
		"nope",
		"",
		"(SELECT 1)",
		"id, temperature",
		"1",
	}
	for _, term := range bad {
		t.Run(term, func(t *testing.T) {
			f.reset()
			var reps []weather.Report
			err := s.NewSelect().Model(&reps).Order(term).Options(session.SetShardID("asia")).Scan(ctx)
			if n := len(f.counts["asia"].statements()); n > 0 {
				t.Errorf("Order(%q) sent %d statement(s); want none", term, n)
			}
			if !errors.Is(err, session.ErrInvalidArgument) {
				t.Fatalf("Order(%q) on one shard = %v; want ErrInvalidArgument", term, err)
			}
			wantIn(t, err, "Report", fmt.Sprintf("%q", term), "OrderExpr")
			if !victimAlive(t, f, "asia") {
				t.Fatalf("Order(%q) dropped the table victim", term)
			}
			// Over several shards too, and on a grouped select.
			err = s.NewSelect().Model(&reps).Order(term).Scan(ctx)
			if !errors.Is(err, session.ErrInvalidArgument) {
				t.Errorf("Order(%q) over shards = %v; want ErrInvalidArgument", term, err)
			}
			var rows []map[string]any
			err = s.NewSelect().Model((*weather.Report)(nil)).GroupBy("location_id").Order(term).Scan(ctx, &rows)
			if !errors.Is(err, session.ErrInvalidArgument) && !errors.Is(err, session.ErrUnsupported) {
				t.Errorf("grouped Order(%q) = %v; want ErrInvalidArgument or ErrUnsupported", term, err)
			}
		})
	}
	// The grammar: case-insensitive keywords, COLLATE "C" / "POSIX", any
	// whitespace. Each is checked against the unsharded database.
	good := []struct{ term, sql string }{
		{"temperature desc nulls last", "temperature DESC NULLS LAST"},
		{"Temperature", ""}, // not a column: Bun names are lower case
		{"temperature\tASC\nNULLS  FIRST", "temperature ASC NULLS FIRST"},
		{"location_id DESC", "location_id DESC"},
	}
	for _, g := range good {
		var got, want []*weather.Report
		err := s.NewSelect().Model(&got).Order(g.term, "id").Scan(ctx)
		if g.sql == "" {
			if !errors.Is(err, session.ErrInvalidArgument) {
				t.Errorf("Order(%q) = %v; want ErrInvalidArgument", g.term, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("Order(%q) = %v", g.term, err)
			continue
		}
		if err := f.single.NewSelect().Model(&want).OrderExpr(g.sql + ", id").Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(reportIDs(got), reportIDs(want)) {
			t.Errorf("Order(%q) = %v; unsharded says %v", g.term, reportIDs(got), reportIDs(want))
		}
	}
	var locs, want []weather.Location
	if err := s.NewSelect().Model(&locs).Order(`city collate "POSIX" desc`).Scan(ctx); err != nil {
		t.Fatalf(`Order("city collate \"POSIX\" desc") = %v`, err)
	}
	if err := f.single.NewSelect().Model(&want).OrderExpr(`city COLLATE "C" DESC`).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range min(len(locs), len(want)) {
		if locs[i].ID != want[i].ID || len(locs) != len(want) {
			t.Fatalf("Order(city COLLATE POSIX DESC) gave location %d at %d; unsharded says %d", locs[i].ID, i, want[i].ID)
		}
	}
	// OrderExpr stays the raw path, with placeholders.
	var reps []weather.Report
	if err := s.NewSelect().Model(&reps).OrderExpr("? DESC", 1).Options(session.SetShardID("asia")).Scan(ctx); err != nil {
		t.Errorf("OrderExpr on one shard = %v", err)
	}
	if !victimAlive(t, f, "asia") {
		t.Fatal("the table victim is gone")
	}
}

// TestColumnNamesAreIdentifiers guards issue #8 item 1 for Column,
// ExcludeColumn and Group: Bun quotes their names, except that it writes
// '*' and '.' as they are, so "id*id" became the expression "id"*"id".
func TestColumnNamesAreIdentifiers(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 2, 22))
	makeVictim(t, f, "asia")
	asia := session.SetShardID("asia")
	bad := []string{"id*id", "*id", "id.", ".id", "a..b", "location.*.id", "a.b.c.d", ""}
	for _, name := range bad {
		t.Run(name, func(t *testing.T) {
			var out []int64
			for what, q := range map[string]*session.SelectQuery{
				"Column":        s.NewSelect().Model((*weather.Report)(nil)).Column(name),
				"ExcludeColumn": s.NewSelect().Model((*weather.Report)(nil)).ExcludeColumn(name),
				"Group":         s.NewSelect().Model((*weather.Report)(nil)).Column("location_id").Group(name),
			} {
				err := q.Options(asia).Scan(ctx, &out)
				if !errors.Is(err, session.ErrInvalidArgument) {
					t.Errorf("%s(%q) = %v (%v); want ErrInvalidArgument", what, name, err, out)
					continue
				}
				wantIn(t, err, what, fmt.Sprintf("%q", name))
			}
		})
	}
	// Names that are not columns reach SQL quoted: an error from the
	// server, and the table stays.
	var out []int64
	err := s.NewSelect().Model((*weather.Report)(nil)).Column("id; DROP TABLE victim; --").Options(asia).Scan(ctx, &out)
	if err == nil || !victimAlive(t, f, "asia") {
		t.Fatalf("Column(injection) = %v; victim alive %v", err, victimAlive(t, f, "asia"))
	}
	// Model columns, qualified names and * still work.
	var reps []weather.Report
	if err := s.NewSelect().Model(&reps).Column("id", "report.location_id").Options(asia).Scan(ctx); err != nil {
		t.Errorf("Column(id, report.location_id) = %v", err)
	}
	if err := s.NewSelect().Model(&reps).Column("report.*").Options(asia).Scan(ctx); err != nil {
		t.Errorf("Column(report.*) = %v", err)
	}
	if err := s.NewSelect().Model(&reps).ExcludeColumn("temperature").Options(asia).Scan(ctx); err != nil {
		t.Errorf("ExcludeColumn(temperature) = %v", err)
	}
}

// TestShardKeyCriteriaCompose guards issue #8 item 3: WhereShardKey calls
// on one column intersect and on different columns AND, for select, count,
// exists, aggregates, update and delete. Before, the second call on a
// column replaced the first's per-shard values: continent = Asia AND
// continent IN (Asia, Europe) returned the European rows too, and a delete
// deleted them.
func TestShardKeyCriteriaCompose(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	// Oceania lives on the asia shard too, so that one shard owns two
	// values of the column (as a1 and a2 of the issue).
	owners := maps.Clone(weather.ShardOfContinent)
	owners["Oceania"] = "asia"
	s, err := session.New(f.shards, weather.ShardChooser, chooser.All, chooser.NewValueMap("continent", owners),
		session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	data := weather.Generate(16, 0, 23) // no reports, so locations can be deleted
	reseed := func(t *testing.T) {
		for _, db := range append(slices.Collect(maps.Values(f.shards)), f.single) {
			if _, err := db.NewDelete().Model((*weather.Location)(nil)).Where("TRUE").Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		f.seed(t, s, data)
		oceania := []weather.Location{{ID: 101, Continent: "Oceania", City: "Perth"}, {ID: 102, Continent: "Oceania", City: "Suva"}}
		for _, db := range []bun.IDB{f.shards["asia"], f.single} {
			if _, err := db.NewInsert().Model(&oceania).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		f.reset()
	}
	type crit struct {
		col  string
		vals []any
	}
	cases := []struct {
		name  string
		crits []crit
		where string
		none  bool // provably no rows: nothing may be sent
	}{
		{"same column intersects", []crit{{"continent", []any{"Asia"}}, {"continent", []any{"Asia", "Oceania"}}},
			"continent = 'Asia' AND continent IN ('Asia', 'Oceania')", false},
		{"same column, other order", []crit{{"continent", []any{"Oceania", "Asia", "Europe"}}, {"continent", []any{"Asia"}}},
			"continent IN ('Oceania', 'Asia', 'Europe') AND continent = 'Asia'", false},
		{"lists intersect", []crit{{"continent", []any{"Asia", "Europe", "South America"}}, {"continent", []any{"Europe", "Oceania", "Asia", "North America"}}},
			"continent IN ('Asia', 'Europe', 'South America') AND continent IN ('Europe', 'Oceania', 'Asia', 'North America')", false},
		{"different columns AND", []crit{{"continent", []any{"Asia", "Europe", "Oceania"}}, {"id", []any{2, 3, 4, 5, 6, 101}}},
			"continent IN ('Asia', 'Europe', 'Oceania') AND id IN (2, 3, 4, 5, 6, 101)", false},
		{"typed equal values", []crit{{"id", []any{int32(2), int64(3)}}, {"id", []any{int64(2), uint8(7)}}, {"continent", []any{"Asia", "Europe"}}},
			"id IN (2, 3) AND id IN (2, 7) AND continent IN ('Asia', 'Europe')", false},
		{"empty intersection", []crit{{"continent", []any{"Asia"}}, {"continent", []any{"Oceania"}}},
			"continent = 'Asia' AND continent = 'Oceania'", true},
		{"empty across columns", []crit{{"continent", []any{"Asia", "Europe"}}, {"id", []any{1}}},
			"continent IN ('Asia', 'Europe') AND id = 1", false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			reseed(t)
			sel := func() *session.SelectQuery {
				q := s.NewSelect().Model((*weather.Location)(nil))
				for _, c := range tc.crits {
					q = q.WhereShardKey(c.col, c.vals...)
				}
				return q
			}
			var want []weather.Location
			if err := f.single.NewSelect().Model(&want).Where(tc.where).Scan(ctx); err != nil {
				t.Fatal(err)
			}
			var got []weather.Location
			q := s.NewSelect().Model(&got)
			for _, c := range tc.crits {
				q = q.WhereShardKey(c.col, c.vals...)
			}
			if err := noPanic(t, "Scan", func() error { return q.Scan(ctx) }); err != nil {
				t.Fatalf("Scan = %v", err)
			}
			if !slices.Equal(locIDs(got), locIDs(want)) {
				t.Errorf("Scan = %v; unsharded says %v", locIDs(got), locIDs(want))
			}
			n, err := sel().Count(ctx)
			if err != nil || n != len(want) {
				t.Errorf("Count = %d, %v; want %d", n, err, len(want))
			}
			ok, err := sel().Exists(ctx)
			if err != nil || ok != (len(want) > 0) {
				t.Errorf("Exists = %v, %v; want %v", ok, err, len(want) > 0)
			}
			var agg []map[string]any
			if err := noPanic(t, "Aggregate", func() error { return sel().Aggregate(session.CountAll()).Scan(ctx, &agg) }); err != nil {
				t.Fatalf("Aggregate = %v", err)
			}
			if len(agg) != 1 || agg[0]["count"] != int64(len(want)) {
				t.Errorf("Aggregate(CountAll) = %v; want count %d", agg, len(want))
			}
			if tc.none {
				var one weather.Location
				q := s.NewSelect().Model(&one)
				for _, c := range tc.crits {
					q = q.WhereShardKey(c.col, c.vals...)
				}
				err := noPanic(t, "Scan one", func() error { return q.Scan(ctx) })
				if !errors.Is(err, sql.ErrNoRows) {
					t.Errorf("single-row Scan of no rows = %v; want sql.ErrNoRows", err)
				}
				n := 0
				for _, err := range session.Iter[weather.Location](ctx, sel().Order("id")) {
					if err != nil {
						t.Errorf("Iter = %v", err)
					}
					n++
				}
				if n != 0 {
					t.Errorf("Iter gave %d rows; want 0", n)
				}
				var page []weather.Location
				pq := s.NewSelect().Model(&page).Order("id").Limit(5)
				for _, c := range tc.crits {
					pq = pq.WhereShardKey(c.col, c.vals...)
				}
				if next, err := pq.ScanPage(ctx, ""); err != nil || next != "" || len(page) != 0 {
					t.Errorf("ScanPage = %d rows, next %q, %v; want none", len(page), next, err)
				}
				u := s.Begin()
				var tracked []*weather.Location
				uq := u.NewSelect().Model(&tracked)
				for _, c := range tc.crits {
					uq = uq.WhereShardKey(c.col, c.vals...)
				}
				if err := noPanic(t, "unit Scan", func() error { return uq.Scan(ctx) }); err != nil || len(tracked) != 0 {
					t.Errorf("unit of work Scan = %d rows, %v; want none", len(tracked), err)
				}
				if err := u.Rollback(ctx); err != nil {
					t.Error(err)
				}
				r, err := sel().Route(ctx)
				if err != nil || len(r.Shards) != 0 {
					t.Errorf("Route = %v, %v; want no shard", r, err)
				}
				if got := f.perShard(); slices.Max(got) != 0 {
					t.Errorf("an empty intersection sent statements %v; want none", got)
				}
			}
			upd := s.NewUpdate().Model((*weather.Location)(nil)).Set("city = city || '+'")
			for _, c := range tc.crits {
				upd = upd.WhereShardKey(c.col, c.vals...)
			}
			res, err := upd.Exec(ctx)
			if err != nil || res.RowsAffected != int64(len(want)) {
				t.Errorf("Update = %d rows, %v; want %d", res.RowsAffected, err, len(want))
			}
			if _, err := f.single.NewUpdate().Model((*weather.Location)(nil)).Set("city = city || '+'").Where(tc.where).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			del := s.NewDelete().Model((*weather.Location)(nil))
			for _, c := range tc.crits {
				del = del.WhereShardKey(c.col, c.vals...)
			}
			res, err = del.Exec(ctx)
			if err != nil || res.RowsAffected != int64(len(want)) {
				t.Errorf("Delete = %d rows, %v; want %d", res.RowsAffected, err, len(want))
			}
			if _, err := f.single.NewDelete().Model((*weather.Location)(nil)).Where(tc.where).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			// What is left is what one database holding every row has left.
			var left, wantLeft []weather.Location
			if err := s.NewSelect().Model(&left).Scan(ctx); err != nil {
				t.Fatal(err)
			}
			if err := f.single.NewSelect().Model(&wantLeft).Scan(ctx); err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(locIDs(left), locIDs(wantLeft)) {
				t.Errorf("rows left %v; unsharded has %v", locIDs(left), locIDs(wantLeft))
			}
			f.reset()
		})
	}
}

// badSplitter routes every statement on continent by ByContinent, and
// splits IN lists with split, a deliberately wrong answer.
type badSplitter struct {
	split func(values []any) map[identity.ShardID][]any
}

func (b badSplitter) ChooseExecute(ctx context.Context, stmt *chooser.Statement) (chooser.Target, error) {
	return weather.ByContinent.ChooseExecute(ctx, stmt)
}

func (b badSplitter) SplitValues(_ context.Context, _ *schema.Table, column string, values []any) (map[identity.ShardID][]any, error) {
	if column != "continent" {
		return nil, nil
	}
	return b.split(values), nil
}

// TestSplitterAnswersChecked guards issue #8 item 6: a Splitter answer that
// drops a value, names a shard that is unknown or outside the route, puts a
// value on two shards or invents one is an error. Before, a dropped value
// silently lost its rows (1 of 3 locations came back).
func TestSplitterAnswersChecked(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(3, 0, 24)) // one location in North America, Asia, Europe
	vals := []any{"North America", "Asia", "Europe"}
	cases := []struct {
		name  string
		split func([]any) map[identity.ShardID][]any
		is    error
		words []string
	}{
		{"drops a value", func(v []any) map[identity.ShardID][]any {
			return map[identity.ShardID][]any{"north_america": {v[0]}}
		}, session.ErrNoShard, []string{"continent", `"Asia"`, "Location"}},
		{"unknown shard", func(v []any) map[identity.ShardID][]any {
			return map[identity.ShardID][]any{"north_america": {v[0]}, "asia": {v[1]}, "mars": {v[2]}}
		}, session.ErrUnknownShard, []string{"mars", "continent", `"Europe"`}},
		{"shard outside the route", func(v []any) map[identity.ShardID][]any {
			return map[identity.ShardID][]any{"north_america": {v[0]}, "asia": {v[1]}, "south_america": {v[2]}}
		}, session.ErrUnknownShard, []string{"south_america", "route", `"Europe"`}},
		{"value on two shards", func(v []any) map[identity.ShardID][]any {
			return map[identity.ShardID][]any{"north_america": {v[0], v[1]}, "asia": {v[1]}, "europe": {v[2]}}
		}, session.ErrAmbiguous, []string{"continent", `"Asia"`, "asia", "north_america"}},
		{"invented value", func(v []any) map[identity.ShardID][]any {
			return map[identity.ShardID][]any{"north_america": {v[0]}, "asia": {v[1], "Atlantis"}, "europe": {v[2]}}
		}, session.ErrInvalidArgument, []string{"continent", `"Atlantis"`, "asia"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			bs, err := session.New(f.shards, weather.ShardChooser, chooser.All, badSplitter{tc.split}, session.WithShardOrder(weather.Shards...))
			if err != nil {
				t.Fatal(err)
			}
			var got []weather.Location
			err = bs.NewSelect().Model(&got).WhereShardKey("continent", vals...).Scan(ctx)
			if !errors.Is(err, tc.is) {
				t.Fatalf("Scan = %v (%d rows); want %v", err, len(got), tc.is)
			}
			wantIn(t, err, tc.words...)
			res, err := bs.NewDelete().Model((*weather.Location)(nil)).WhereShardKey("continent", vals...).Exec(ctx)
			if !errors.Is(err, tc.is) || res.RowsAffected != 0 {
				t.Errorf("Delete = %d rows, %v; want %v", res.RowsAffected, err, tc.is)
			}
		})
	}
	// A right answer still works.
	good := badSplitter{func(v []any) map[identity.ShardID][]any {
		return map[identity.ShardID][]any{"north_america": {v[0]}, "asia": {v[1]}, "europe": {v[2]}}
	}}
	gs, err := session.New(f.shards, weather.ShardChooser, chooser.All, good, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	var got []weather.Location
	if err := gs.NewSelect().Model(&got).WhereShardKey("continent", vals...).Scan(ctx); err != nil || len(got) != 3 {
		t.Errorf("Scan with a right split = %d rows, %v; want 3", len(got), err)
	}
}

// TestWindowsAndFiltersChecked guards issue #8 item 7. Before, Offset(-1)
// panicked on a fan-out and on a GroupBy, Limit(-5) returned every row,
// HavingAgg with nil panicked, and a value of the wrong type kept all the
// groups or none.
func TestWindowsAndFiltersChecked(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 3, 25))
	report := func() *session.SelectQuery { return s.NewSelect().Model((*weather.Report)(nil)) }
	grouped := func() *session.SelectQuery {
		return report().GroupBy("location_id").Aggregate(session.CountAll(), session.Max("report_time").As("last"), session.Avg("temperature"))
	}
	cases := []struct {
		name  string
		run   func() error
		words []string
	}{
		{"Offset(-1) fan-out", func() error {
			var reps []weather.Report
			return s.NewSelect().Model(&reps).Order("id").Offset(-1).Scan(ctx)
		}, []string{"Offset(-1)"}},
		{"Offset(-1) unordered", func() error {
			var reps []weather.Report
			return s.NewSelect().Model(&reps).Offset(-1).Scan(ctx)
		}, []string{"Offset(-1)"}},
		{"Offset(-1) GroupBy", func() error {
			var rows []map[string]any
			return grouped().Offset(-1).Scan(ctx, &rows)
		}, []string{"Offset(-1)"}},
		{"Limit(-5)", func() error {
			var reps []weather.Report
			return s.NewSelect().Model(&reps).Order("id").Limit(-5).Scan(ctx)
		}, []string{"Limit(-5)"}},
		{"Limit(-5) one shard", func() error {
			var reps []weather.Report
			return s.NewSelect().Model(&reps).Limit(-5).Options(session.SetShardID("asia")).Scan(ctx)
		}, []string{"Limit(-5)"}},
		{"HavingAgg nil", func() error {
			var rows []map[string]any
			return grouped().HavingAgg("count", ">", nil).Scan(ctx, &rows)
		}, []string{"HavingAgg", "count", "nil"}},
		{"HavingAgg typed nil", func() error {
			var rows []map[string]any
			return grouped().HavingAgg("count", ">", (*int)(nil)).Scan(ctx, &rows)
		}, []string{"HavingAgg", "count"}},
		{"HavingAgg string on count", func() error {
			var rows []map[string]any
			return grouped().HavingAgg("count", ">", "2").Scan(ctx, &rows)
		}, []string{"HavingAgg", "count", "string"}},
		{"HavingAgg time on count", func() error {
			var rows []map[string]any
			return grouped().HavingAgg("count", "<", time.Now()).Scan(ctx, &rows)
		}, []string{"HavingAgg", "count", "time.Time"}},
		{"HavingAgg int on a time", func() error {
			var rows []map[string]any
			return grouped().HavingAgg("last", "<", 5).Scan(ctx, &rows)
		}, []string{"HavingAgg", "last", "int"}},
		{"HavingAgg string on avg", func() error {
			var rows []map[string]any
			return grouped().HavingAgg("avg_temperature", ">", "1.5").Scan(ctx, &rows)
		}, []string{"HavingAgg", "avg_temperature", "string"}},
		{"HavingAgg bool on a group column", func() error {
			var rows []map[string]any
			return grouped().HavingAgg("location_id", "=", true).Scan(ctx, &rows)
		}, []string{"HavingAgg", "location_id", "bool"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := noPanic(t, tc.name, tc.run)
			if !errors.Is(err, session.ErrInvalidArgument) {
				t.Fatalf("err = %v; want ErrInvalidArgument", err)
			}
			wantIn(t, err, tc.words...)
		})
	}
	// Values of the right type filter as SQL's HAVING does.
	type hv struct {
		name, op string
		value    any
		sql      string
	}
	for _, h := range []hv{
		{"count", ">=", uint8(3), "count(*) >= 3"},
		{"count", "<", uint64(1) << 63, "true"},
		{"count", ">", 2.5, "count(*) > 2.5"},
		{"avg_temperature", ">", 10, "avg(temperature) > 10"},
		{"last", "<", time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC), "max(report_time) < '2026-01-01 12:00:00+00'"},
		{"location_id", "<>", int16(3), "location_id <> 3"},
	} {
		var rows []map[string]any
		if err := grouped().HavingAgg(h.name, h.op, h.value).Scan(ctx, &rows); err != nil {
			t.Errorf("HavingAgg(%q, %q, %v) = %v", h.name, h.op, h.value, err)
			continue
		}
		var want []int64
		if err := f.single.NewRaw("SELECT location_id FROM weather_reports GROUP BY location_id HAVING "+h.sql).Scan(ctx, &want); err != nil {
			t.Fatal(err)
		}
		var got []int64
		for _, r := range rows {
			got = append(got, r["location_id"].(int64))
		}
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("HavingAgg(%q, %q, %v) kept %v; unsharded HAVING %s keeps %v", h.name, h.op, h.value, got, h.sql, want)
		}
	}
}

type pfxThing struct {
	bun.BaseModel `bun:"table:?(prefix)things,alias:thing"`
	ID            int64 `bun:",pk"`
}

// TestTablePrefixChecked guards issue #8 item 1 for table-name prefixes:
// Bun writes a table name inside double quotes and a bun.Safe named
// argument as it is, so a prefix holding a double quote ended the
// identifier and the rest of it ran as SQL.
func TestTablePrefixChecked(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	makeVictim(t, f, "asia")
	shards := map[session.ShardID]bun.IDB{}
	for id, db := range f.shards {
		prefix := "p_"
		if id == "asia" {
			prefix = `weather_locations" AS "thing"; DROP TABLE victim; --`
		}
		shards[id] = db.(*bun.DB).WithNamedArg("prefix", bun.Safe(prefix))
	}
	s, err := session.New(shards, weather.ShardChooser, chooser.All, chooser.All, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	var things []pfxThing
	err = noPanic(t, "Scan", func() error { return s.NewSelect().Model(&things).Options(session.SetShardID("asia")).Scan(ctx) })
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("Scan = %v; want ErrInvalidArgument", err)
	}
	if !victimAlive(t, f, "asia") {
		t.Fatal("a table-name prefix dropped the table victim")
	}
	wantIn(t, err, "PfxThing", "asia", "double quote")
	err = noPanic(t, "CreateTables", func() error { return s.CreateTables(ctx, []any{(*pfxThing)(nil)}) })
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("CreateTables = %v; want ErrInvalidArgument", err)
	}
	if !victimAlive(t, f, "asia") {
		t.Fatal("a table-name prefix dropped the table victim")
	}
}

// TestAggregateNamesDistinct: two aggregates with one output name made
// HavingAgg and Order pick the first silently.
func TestAggregateNamesDistinct(t *testing.T) {
	s := offlineSession(t)
	_, err := s.NewSelect().Model((*weather.Report)(nil)).GroupBy("location_id").
		Aggregate(session.Max("temperature").As("t"), session.Min("temperature").As("t")).HavingAgg("t", ">", 1).
		String(context.Background(), "a")
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Fatalf("two aggregates named t = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, `"t"`, "As")
}
