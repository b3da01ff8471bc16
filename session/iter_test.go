package session_test

import (
	"cmp"
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

func TestIterMatchesUnsharded(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(40, 6, 13))

	var want []*weather.Report
	if err := f.single.NewSelect().Model(&want).Relation("Location").
		Order("temperature DESC", "id").Offset(17).Limit(50).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(want) != 50 {
		t.Fatalf("the unsharded database gave %d rows; want 50 of the 240 seeded", len(want))
	}
	var got []*weather.Report
	q := s.NewSelect().Model((*weather.Report)(nil)).Relation("Location").Order("temperature DESC", "id").Offset(17).Limit(50)
	for r, err := range session.Iter[weather.Report](ctx, q) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, r)
	}
	if g, w := reportIDs(got), reportIDs(want); !slices.Equal(g, w) {
		t.Errorf("Iter ids = %v\nunsharded = %v", g, w)
	}
	for _, r := range got {
		rs, _ := r.Shard()
		if r.Location == nil || r.Location.ID != r.LocationID || rs != weather.ShardOfContinent[r.Location.Continent] {
			t.Fatalf("report %d: location %+v, shard %q", r.ID, r.Location, rs)
		}
	}

	// Unordered: every row once.
	n := 0
	for _, err := range session.Iter[weather.Report](ctx, s.NewSelect().Model((*weather.Report)(nil))) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != 240 {
		t.Errorf("unordered Iter gave %d rows; want 240", n)
	}

	// Has-many relations cannot stream: exactly one yield, carrying the error
	// (an assertion inside the loop alone would pass on zero yields).
	yields := 0
	for _, err := range session.Iter[weather.Location](ctx, s.NewSelect().Model((*weather.Location)(nil)).Relation("Reports")) {
		yields++
		if !errors.Is(err, session.ErrUnsupported) {
			t.Errorf("Iter with has-many = %v; want ErrUnsupported", err)
		}
	}
	if yields != 1 {
		t.Errorf("Iter with has-many yielded %d times; want once, with ErrUnsupported", yields)
	}
}

// TestIterStopsEarly fills the shards with half a million rows each and
// shows that a limit, or a consumer that stops, reads only a few rows from
// each shard and leaves nothing running (goleak in TestMain checks the
// goroutines).
func TestIterStopsEarly(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := newFixture(t)
	s := f.session(t)
	const perShard = 500_000
	start := time.Now()
	var g errgroup.Group
	for i, id := range weather.Shards {
		db := f.shards[id]
		g.Go(func() error {
			if _, err := db.NewInsert().Model(&weather.Location{ID: int64(i + 1), Continent: weather.Continents[i], City: "X"}).Exec(ctx); err != nil {
				return err
			}
			// Bulk load: no index or foreign-key upkeep row by row, and in
			// chunks, so that no statement nears the driver's 10 s read
			// timeout on a loaded machine (it did, under -race).
			if _, err := db.ExecContext(ctx, `DROP INDEX weather_reports_location_id;
				ALTER TABLE weather_reports DROP CONSTRAINT weather_reports_location_id_fkey`); err != nil {
				return err
			}
			const chunk = 50_000
			for lo := int64(i)*perShard + 1; lo <= int64(i+1)*perShard; lo += chunk {
				if _, err := db.ExecContext(ctx, `INSERT INTO weather_reports (id, location_id, temperature, report_time)
					SELECT g, ?, (g * 7919) % 100003 / 100.0, now() FROM generate_series(?::bigint, ?::bigint) g`,
					i+1, lo, lo+chunk-1); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	t.Logf("loaded %d rows per shard in %v", perShard, time.Since(start))

	var top []float64
	var st session.Stats
	q := s.NewSelect().Model((*weather.Report)(nil)).Order("temperature DESC", "id").Limit(10).
		Options(session.CollectStats(&st))
	for r, err := range session.Iter[weather.Report](ctx, q) {
		if err != nil {
			t.Fatal(err)
		}
		top = append(top, r.Temperature)
	}
	if len(top) != 10 || !slices.IsSortedFunc(top, func(a, b float64) int { return cmp.Compare(b, a) }) || top[0] != 1000.02 {
		t.Errorf("top 10 = %v; want 10 rows from 1000.02 down", top)
	}
	if len(st.RowsRead()) != len(weather.Shards) {
		t.Errorf("stats of the Iter name %v; want every one of the %d shards", st.RowsRead(), len(weather.Shards))
	}
	for id, n := range st.RowsRead() {
		if n > 10 {
			t.Errorf("LIMIT 10 read %d rows from %s; want at most 10 of its %d", n, id, perShard)
		}
	}

	t.Logf("LIMIT 10 done at %v", time.Since(start))
	// No LIMIT in SQL: the consumer breaks after 10 rows.
	var st2 session.Stats
	q = s.NewSelect().Model((*weather.Report)(nil)).Order("temperature DESC", "id").Options(session.CollectStats(&st2))
	n := 0
	for _, err := range session.Iter[weather.Report](ctx, q) {
		if err != nil {
			t.Fatal(err)
		}
		if n++; n == 10 {
			break
		}
	}
	if n != 10 { // the per-shard bounds below hold for an Iter that yields nothing too
		t.Errorf("Iter gave %d rows before the break; want 10", n)
	}
	t.Logf("break done at %v", time.Since(start))
	read := st2.RowsRead()
	if len(read) != 4 {
		t.Fatalf("rows read per shard = %v; want all 4 shards", read)
	}
	for id, n := range read {
		if n > 11 {
			t.Errorf("a break after 10 rows read %d rows from %s; want at most 11 of %d", n, id, perShard)
		}
	}
	// The shards are idle again: nothing of ours is still running there. A
	// cancel reaches a backend asynchronously (pg_cancel_backend only signals
	// it), so the check allows the server a bounded while to act on it; the
	// rows-read counts above are what show the queries stopped early.
	for id, db := range f.shards {
		var active int
		var err error
		for try := 0; try < 50; try++ {
			err = db.NewRaw("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND state = 'active' AND pid <> pg_backend_pid()").Scan(ctx, &active)
			if err != nil || active == 0 {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		if err != nil || active != 0 {
			t.Errorf("%s has %d active queries 5 s after the stop (err %v)", id, active, err)
		}
	}
}
