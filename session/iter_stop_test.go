package session_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"golang.org/x/sync/errgroup"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestIterBreakStopsShardQueries breaks out of Iter after its first row,
// ordered (a k-way merge that has pulled a row from every shard) and
// unordered (a concatenation that has not pulled from three shards yet),
// and shows on the servers that every shard's query stopped: each row a
// shard produces passes iter_tick(), which counts it in a sequence and
// takes a millisecond, so a full read of a shard's 2000 rows takes two
// seconds and leaves the count at 2000. After the break, no query of the
// test's is active on any shard (pg_stat_activity), and each shard counted
// far fewer rows than it holds (a drain, or a query left running, counts
// them all); Iter itself scanned at most one row per shard (CollectStats).
// The sessions read the shards with enable_sort off, so that ORDER BY id
// streams from the primary key's index instead of sorting every row first.
func TestIterBreakStopsShardQueries(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	f := newFixture(t)
	const perShard = 2000
	dialect := pgdialect.New()
	shards := map[session.ShardID]bun.IDB{}
	var g errgroup.Group
	for i, id := range weather.Shards {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(f.dsns[i]),
			pgdriver.WithConnParams(map[string]any{"enable_sort": "off"}))), dialect)
		t.Cleanup(func() { db.Close() })
		weather.Register(db)
		shards[id] = db
		g.Go(func() error {
			_, err := db.ExecContext(ctx, `
				CREATE SEQUENCE iter_ticks;
				CREATE FUNCTION iter_tick() RETURNS boolean LANGUAGE plpgsql VOLATILE AS
					$$ BEGIN PERFORM nextval('iter_ticks'); PERFORM pg_sleep(0.001); RETURN true; END $$;
				INSERT INTO weather_locations (id, continent, city) VALUES (?, ?, 'X');
				INSERT INTO weather_reports (id, location_id, temperature, report_time)
				SELECT g * 4 + ?, ?, g, now() FROM generate_series(1, ?) g;
				ANALYZE weather_reports`,
				i+1, weather.Continents[i], i, i+1, perShard)
			return err
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
	s, err := session.New(shards, weather.ShardChooser, chooser.All, weather.ByContinent,
		session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}

	for _, ordered := range []bool{true, false} {
		name := map[bool]string{true: "ordered", false: "unordered"}[ordered]
		t.Run(name, func(t *testing.T) {
			for _, db := range shards {
				if _, err := db.ExecContext(ctx, "SELECT setval('iter_ticks', 1, false)"); err != nil {
					t.Fatal(err)
				}
			}
			var st session.Stats
			q := s.NewSelect().Model((*weather.Report)(nil)).Where("iter_tick()").Options(session.CollectStats(&st))
			if ordered {
				q = q.Order("id")
			}
			n := 0
			for _, err := range session.Iter[weather.Report](ctx, q) {
				if err != nil {
					t.Fatal(err)
				}
				n++
				break
			}
			if n != 1 {
				t.Fatalf("Iter gave %d rows before the break; want 1", n)
			}
			for _, id := range weather.Shards {
				var active int
				err := shards[id].NewRaw(`SELECT count(*) FROM pg_stat_activity
					WHERE datname = current_database() AND state = 'active' AND query LIKE '%iter_tick%' AND pid <> pg_backend_pid()`).Scan(ctx, &active)
				if err != nil || active != 0 {
					t.Errorf("%s: %d queries still active after Iter returned (err %v); want none", id, active, err)
				}
			}
			// Ordered, the merge reads one row of every shard before the
			// first; unordered, the first shard in route order gives it.
			if wantShards := map[bool]int{true: len(weather.Shards), false: 1}[ordered]; len(st.RowsRead()) != wantShards {
				t.Errorf("stats of the Iter name %v; want %d shards", st.RowsRead(), wantShards)
			}
			for id, read := range st.RowsRead() {
				if read > 1 {
					t.Errorf("%s: Iter scanned %d rows; want at most 1", id, read)
				}
			}
			// Wait for anything left running to end, then count what each
			// shard produced.
			for _, id := range weather.Shards {
				for range 300 {
					var active int
					_ = shards[id].NewRaw(`SELECT count(*) FROM pg_stat_activity
						WHERE datname = current_database() AND state = 'active' AND query LIKE '%iter_tick%' AND pid <> pg_backend_pid()`).Scan(ctx, &active)
					if active == 0 {
						break
					}
					time.Sleep(100 * time.Millisecond)
				}
				var ticks int64
				if err := shards[id].NewRaw("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM iter_ticks").Scan(ctx, &ticks); err != nil {
					t.Fatal(err)
				}
				t.Logf("%s produced %d of its %d rows", id, ticks, perShard)
				if ticks >= perShard/2 {
					t.Errorf("%s produced %d of its %d rows after a break at the first row; want its query stopped early", id, ticks, perShard)
				}
			}
		})
	}
}
