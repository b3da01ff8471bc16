package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestNewRaw guards issue 11 item 2's raw SQL: routed by pin or by the
// ExecuteChooser from declared shard keys, Scan concatenating the shards'
// rows in route order, Exec summing rows affected per shard, each checked
// against the unsharded database.
func TestNewRaw(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(20, 3, 17))

	// Every shard, concatenated in shard order.
	var ids []int64
	if err := s.NewRaw("SELECT id FROM weather_locations").Scan(ctx, &ids); err != nil {
		t.Fatal(err)
	}
	if got := f.statementsLike("SELECT"); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Errorf("SELECT statements per shard = %v; want one on each", got)
	}
	var want []int64
	for _, id := range weather.Shards {
		want = append(want, f.rowsOn(t, id, "weather_locations")...)
	}
	if !slices.Equal(slices.Sorted(slices.Values(ids)), slices.Sorted(slices.Values(want))) {
		t.Errorf("raw Scan = %v; want the shards' rows %v", ids, want)
	}
	// With PerShard, each shard's ordered answer, in shard order.
	ids = nil
	if err := s.NewRaw("SELECT id FROM weather_locations ORDER BY id").Options(session.PerShard()).Scan(ctx, &ids); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(ids, want) {
		t.Errorf("raw Scan with PerShard = %v; want the shards' rows concatenated in shard order %v", ids, want)
	}
	var truth []int64
	if err := f.single.NewRaw("SELECT id FROM weather_locations ORDER BY id").Scan(ctx, &truth); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(slices.Sorted(slices.Values(ids)), truth) {
		t.Errorf("raw Scan holds %v; the unsharded database %v", ids, truth)
	}

	// Declared keys: one shard, and the unsharded database's rows.
	f.reset()
	var asia []weather.Location
	err := s.NewRaw("SELECT * FROM weather_locations WHERE continent = ? ORDER BY id", "Asia").
		ShardKey((*weather.Location)(nil), "continent", "Asia").Scan(ctx, &asia)
	if err != nil {
		t.Fatal(err)
	}
	if got := f.perShard(); !slices.Equal(got, []int{0, 1, 0, 0}) {
		t.Errorf("ShardKey(Asia) ran %v statements per shard; want one on asia", got)
	}
	var asiaTruth []weather.Location
	if err := f.single.NewRaw("SELECT * FROM weather_locations WHERE continent = ? ORDER BY id", "Asia").Scan(ctx, &asiaTruth); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(locIDs(asia), locIDs(asiaTruth)) || len(asia) == 0 {
		t.Errorf("ShardKey(Asia) rows %v; the unsharded database has %v", locIDs(asia), locIDs(asiaTruth))
	}

	// Exec sums rows affected, per shard.
	f.reset()
	res, err := s.NewRaw("UPDATE weather_reports SET temperature = temperature + 1 WHERE temperature > ?", 10.0).Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wres, err := f.single.NewRaw("UPDATE weather_reports SET temperature = temperature + 1 WHERE temperature > ?", 10.0).Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := wres.RowsAffected(); res.RowsAffected != n || n == 0 {
		t.Errorf("raw Exec affected %d; the unsharded database says %d", res.RowsAffected, n)
	}
	var sum int64
	for _, n := range res.ByShard {
		sum += n
	}
	if sum != res.RowsAffected || len(res.ByShard) != 4 {
		t.Errorf("ByShard = %v; want 4 shards summing to %d", res.ByShard, res.RowsAffected)
	}
	if got := f.statementsLike("UPDATE"); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Errorf("UPDATE statements per shard = %v; want one on each", got)
	}

	// Exec with RETURNING into dest: concatenated, the unsharded set.
	var gone, goneTruth []int64
	res, err = s.NewRaw("DELETE FROM weather_reports WHERE temperature < ? RETURNING id", -10.0).Exec(ctx, &gone)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.single.NewRaw("DELETE FROM weather_reports WHERE temperature < ? RETURNING id", -10.0).Scan(ctx, &goneTruth); err != nil {
		t.Fatal(err)
	}
	slices.Sort(gone)
	slices.Sort(goneTruth)
	if !slices.Equal(gone, goneTruth) || len(gone) == 0 || res.RowsAffected != int64(len(gone)) {
		t.Errorf("DELETE RETURNING = %v (%d rows); the unsharded database returned %v", gone, res.RowsAffected, goneTruth)
	}

	// A pin routes it; a non-slice dest over several shards is refused
	// before anything is sent.
	f.reset()
	var n int
	if err := s.NewRaw("SELECT count(*) FROM weather_locations").Options(session.SetShardID("europe")).Scan(ctx, &n); err != nil || n != 5 {
		t.Errorf("pinned count = %d, %v; want 5", n, err)
	}
	if got := f.perShard(); !slices.Equal(got, []int{0, 0, 1, 0}) {
		t.Errorf("pinned raw ran %v statements per shard; want one on europe", got)
	}
	f.reset()
	err = s.NewRaw("SELECT count(*) FROM weather_locations").Scan(ctx, &n)
	if !errors.Is(err, session.ErrUnsupported) {
		t.Errorf("count into an int over 4 shards = %v; want ErrUnsupported", err)
	}
	wantIn(t, err, "*int", "4 shards")
	if got := f.perShard(); !slices.Equal(got, zero4) {
		t.Errorf("refused raw ran %v statements per shard; want none", got)
	}
	// An empty intersection of declared keys runs nowhere.
	ids = nil
	if err := s.NewRaw("SELECT id FROM weather_locations").ShardKey((*weather.Location)(nil), "continent", "Asia").
		ShardKey((*weather.Location)(nil), "continent", "Europe").Scan(ctx, &ids); err != nil || len(ids) != 0 {
		t.Errorf("empty ShardKey intersection = %v, %v; want no rows, no error", ids, err)
	}
	if got := f.perShard(); !slices.Equal(got, zero4) {
		t.Errorf("empty intersection ran %v statements per shard; want none", got)
	}
	_, err = s.NewRaw("SELECT 1").ShardKey((*weather.Location)(nil), "nope", 1).Exec(ctx)
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("ShardKey on a missing column = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "Location", "nope")
}

// TestNewRawScatterGuard guards issue 11 item 2: under WithScatterGuard a
// raw statement with no pin and no declared key, which the chooser sends to
// every shard, is refused (ErrScatter), sending nothing; AllowScatter, a pin
// or a declared key lets it run.
func TestNewRawScatterGuard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t, session.WithScatterGuard())
	f.seed(t, s, weather.Generate(8, 0, 3))
	var ids []int64
	f.reset()
	if err := s.NewRaw("SELECT id FROM weather_locations").Scan(ctx, &ids); !errors.Is(err, session.ErrScatter) {
		t.Errorf("raw Scan to every shard under the guard = %v; want ErrScatter", err)
	}
	if _, err := s.NewRaw("DELETE FROM weather_locations").Exec(ctx); !errors.Is(err, session.ErrScatter) {
		t.Errorf("raw Exec to every shard under the guard = %v; want ErrScatter", err)
	}
	if got := f.perShard(); !slices.Equal(got, zero4) {
		t.Errorf("refused raw statements ran %v statements per shard; want none", got)
	}
	if err := s.NewRaw("SELECT id FROM weather_locations").Options(session.AllowScatter()).Scan(ctx, &ids); err != nil || len(ids) != 8 {
		t.Errorf("AllowScatter = %v, %v; want 8 ids", ids, err)
	}
	ids = nil
	if err := s.NewRaw("SELECT id FROM weather_locations").Scan(session.WithShardID(ctx, "asia"), &ids); err != nil || len(ids) != 2 {
		t.Errorf("context pin = %v, %v; want 2 ids", ids, err)
	}
	ids = nil
	if err := s.NewRaw("SELECT id FROM weather_locations WHERE continent IN ('Asia', 'Europe')").
		ShardKey((*weather.Location)(nil), "continent", "Asia", "Europe").Scan(ctx, &ids); err != nil || len(ids) != 4 {
		t.Errorf("declared keys = %v, %v; want 4 ids", ids, err)
	}
}

// TestUnitNewRaw guards issue 11 item 1 for raw SQL: a unit's raw Exec is
// rolled back with it, and a raw Scan that writes (UPDATE ... RETURNING) is
// committed with it (a shard a raw statement ran on counts as written).
func TestUnitNewRaw(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 2, 5))
	before := temps(t, f)
	boom := errors.New("boom")
	err := s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		if _, err := u.NewRaw("UPDATE weather_reports SET temperature = 99").Exec(ctx); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	if after := temps(t, f); !mapsEqual(after, before) {
		t.Errorf("a rolled-back unit's raw UPDATE stayed: %v", after)
	}
	err = s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		var ids []int64
		return u.NewRaw("UPDATE weather_reports SET temperature = 77 RETURNING id").Scan(ctx, &ids)
	})
	if err != nil {
		t.Fatal(err)
	}
	for id, rows := range temps(t, f) {
		for rid, temp := range rows {
			if temp != 77 {
				t.Errorf("report %d on %s = %v after the unit's committed UPDATE ... RETURNING; want 77", rid, id, temp)
			}
		}
	}
	u := s.Using("asia").Begin()
	defer u.Rollback(ctx)
	f.reset()
	_, err = u.NewRaw("DELETE FROM weather_reports").Options(session.SetShardID("europe")).Exec(ctx)
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("raw pinned to europe in an asia unit = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "europe", "[asia]")
	if got := f.perShard(); !slices.Equal(got, zero4) {
		t.Errorf("refused raw ran %v statements per shard; want none", got)
	}
}

func mapsEqual(a, b map[session.ShardID]map[int64]float64) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		w, ok := b[k]
		if !ok || len(v) != len(w) {
			return false
		}
		for i, x := range v {
			if y, ok := w[i]; !ok || x != y {
				return false
			}
		}
	}
	return true
}

// TestNewRawRefusesPerShardClauses: a raw statement on several shards
// whose SQL holds a clause each shard applies to its own rows only (ORDER
// BY, LIMIT, an aggregate, DISTINCT, GROUP BY, a LIMIT inside a CTE or a
// write's subquery) is ErrUnsupported naming the clause and the shards,
// and sends nothing: the concatenated answers would not be one database's
// (LIMIT 3 would return up to 12 rows, count(*) four counts). Pinned to one
// shard, or with PerShard, it runs. Before, each shard's answer was
// concatenated silently.
func TestNewRawRefusesPerShardClauses(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(20, 3, 17))
	refused := []struct{ sql, clause string }{
		{"SELECT id FROM weather_locations ORDER BY id LIMIT 3", "ORDER BY"},
		{"SELECT id FROM weather_locations LIMIT 3", "LIMIT"},
		{"SELECT count(*) FROM weather_locations", "count()"},
		{"SELECT DISTINCT continent FROM weather_locations", "DISTINCT"},
		{"SELECT continent FROM weather_locations GROUP BY continent", "GROUP BY"},
		{"WITH few AS (SELECT id FROM weather_locations LIMIT 2) SELECT id FROM few", "LIMIT"},
	}
	for _, c := range refused {
		f.reset()
		var got []int64
		err := s.NewRaw(c.sql).Scan(ctx, &got)
		if !errors.Is(err, session.ErrUnsupported) {
			t.Errorf("raw Scan %q on 4 shards = %v (%d rows); want ErrUnsupported", c.sql, err, len(got))
			continue
		}
		wantIn(t, err, c.clause, "4 shards", "PerShard")
		if n := f.perShard(); !slices.Equal(n, zero4) {
			t.Errorf("refused %q ran %v statements per shard; want none", c.sql, n)
		}
	}
	f.reset()
	_, err := s.NewRaw("UPDATE weather_reports SET temperature = 0 WHERE id IN (SELECT id FROM weather_reports ORDER BY id LIMIT 5)").Exec(ctx)
	if !errors.Is(err, session.ErrUnsupported) {
		t.Errorf("raw Exec with a LIMIT subquery on 4 shards = %v; want ErrUnsupported", err)
	}
	if n := f.perShard(); !slices.Equal(n, zero4) {
		t.Errorf("refused raw Exec ran %v statements per shard; want none", n)
	}

	// One shard: the clause is that database's own answer.
	var three []int64
	if err := s.NewRaw("SELECT id FROM weather_locations ORDER BY id LIMIT 3").Options(session.SetShardID("europe")).Scan(ctx, &three); err != nil || len(three) != 3 {
		t.Errorf("pinned LIMIT 3 = %v, %v; want 3 rows", three, err)
	}
	// PerShard: one count per shard, in shard order, summing to the
	// unsharded count.
	var counts []int64
	if err := s.NewRaw("SELECT count(*) FROM weather_locations").Options(session.PerShard()).Scan(ctx, &counts); err != nil {
		t.Fatal(err)
	}
	var total, truth int64
	for i, id := range weather.Shards {
		if n := int64(len(f.rowsOn(t, id, "weather_locations"))); i >= len(counts) || counts[i] != n {
			t.Errorf("PerShard counts = %v; want %d on %s", counts, n, id)
		}
	}
	for _, n := range counts {
		total += n
	}
	must(t, f.single.NewRaw("SELECT count(*) FROM weather_locations").Scan(ctx, &truth))
	if len(counts) != 4 || total != truth {
		t.Errorf("PerShard counts = %v (sum %d); want 4 counts summing to the unsharded %d", counts, total, truth)
	}
}
