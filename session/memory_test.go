package session_test

import (
	"context"
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// memRows is the number of reports the memory tests stream, over the four
// shards: BUNSHARD_MEM_ROWS, 200,000 unless set (the run is
// BUNSHARD_MEM_ROWS=4000000).
func memRows(t *testing.T) int {
	n := 200_000
	if v := os.Getenv("BUNSHARD_MEM_ROWS"); v != "" {
		var err error
		if n, err = strconv.Atoi(v); err != nil || n < 4 {
			t.Fatalf("BUNSHARD_MEM_ROWS=%q: want a number of rows >= 4", v)
		}
	}
	return n
}

// loadReports writes n reports, n/4 on each shard, server-side.
func loadReports(t *testing.T, f *fixture, n int) {
	t.Helper()
	ctx := context.Background()
	per := int64(n / len(weather.Shards))
	var g errgroup.Group
	for i, id := range weather.Shards {
		db := f.shards[id]
		g.Go(func() error {
			if _, err := db.NewInsert().Model(&weather.Location{ID: int64(i + 1), Continent: weather.Continents[i], City: "X"}).Exec(ctx); err != nil {
				return err
			}
			if _, err := db.ExecContext(ctx, `DROP INDEX weather_reports_location_id;
				ALTER TABLE weather_reports DROP CONSTRAINT weather_reports_location_id_fkey`); err != nil {
				return err
			}
			const chunk = 50_000 // no statement near the driver's read timeout
			for lo := int64(i)*per + 1; lo <= int64(i+1)*per; lo += chunk {
				hi := min(lo+chunk-1, int64(i+1)*per)
				if _, err := db.ExecContext(ctx, `INSERT INTO weather_reports (id, location_id, temperature, report_time)
					SELECT g, ?, (g * 7919) % 100003 / 100.0, now() FROM generate_series(?::bigint, ?::bigint) g`,
					i+1, lo, hi); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}
}

// peakHeap runs fn while a goroutine samples the heap's object bytes
// (runtime/metrics, every 200 µs), and returns the highest sample above
// the heap in use, after a GC, when fn started. Garbage counts until the
// GC collects it, so a consumer that keeps nothing sees about the GC's
// minimum heap; one that keeps rows sees them.
func peakHeap(fn func()) (peak, base uint64) {
	sample := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	read := func() uint64 {
		s := []metrics.Sample{sample[0]}
		metrics.Read(s)
		return s[0].Value.Uint64()
	}
	// A low GOGC for the measurement: the heap may grow by GOGC% of what
	// is live before a collection, so at the default 100 the rest of the
	// test process (fixtures, earlier tests) would set the peak.
	defer debug.SetGCPercent(debug.SetGCPercent(10))
	runtime.GC()
	base = read()
	var top atomic.Uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(200 * time.Microsecond)
		defer tick.Stop()
		for {
			if v := read(); v > top.Load() {
				top.Store(v)
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	})
	fn()
	close(stop)
	wg.Wait()
	if v := read(); v > top.Load() {
		top.Store(v)
	}
	if top.Load() < base {
		return 0, base
	}
	return top.Load() - base, base
}

// The bound of the memory tests: per shard stream, a driver's read buffer,
// a row, a connection's state, generously; plus a constant for the GC's
// minimum heap (4 MiB x GOGC/100) and what accumulates while it marks.
const (
	perStreamBound = 1 << 20
	constBound     = 6 << 20
)

// TestIterBoundedMemory: Iter over BUNSHARD_MEM_ROWS reports on four
// shards, with a consumer that keeps nothing, peaks under shards x a
// stream's buffer + a constant, whatever the row count; so does the same
// stream merged in global order (ORDER BY), and a global ORDER BY ... LIMIT
// 100, by Iter and by Scan. A consumer that keeps 200,000 rows (the check
// that the test can fail) goes over.
func TestIterBoundedMemory(t *testing.T) {
	n := memRows(t)
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	loadReports(t, f, n)
	bound := uint64(len(weather.Shards)*perStreamBound + constBound)

	for _, c := range []struct {
		name  string
		q     func() *session.SelectQuery
		want  int
		keep  bool
		scan  bool
		under bool
	}{
		{name: "Iter, shard after shard", q: func() *session.SelectQuery { return s.NewSelect().Model((*weather.Report)(nil)) }, want: n, under: true},
		{name: "Iter, ORDER BY temperature, id", q: func() *session.SelectQuery {
			return s.NewSelect().Model((*weather.Report)(nil)).Order("temperature DESC", "id")
		}, want: n, under: true},
		{name: "Iter, ORDER BY ... LIMIT 100", q: func() *session.SelectQuery {
			return s.NewSelect().Model((*weather.Report)(nil)).Order("temperature DESC", "id").Limit(100)
		}, want: 100, under: true},
		{name: "Scan, ORDER BY ... LIMIT 100", want: 100, scan: true, under: true},
		// The check that the bound can fail: keeping 200,000 rows (or all,
		// if fewer) exceeds it, at any BUNSHARD_MEM_ROWS.
		{name: "Iter, a consumer that keeps 200,000 rows", q: func() *session.SelectQuery { return s.NewSelect().Model((*weather.Report)(nil)) }, want: min(n, keepRows), keep: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			rows := 0
			var kept []*weather.Report
			var err error
			peak, base := peakHeap(func() {
				if c.scan {
					var top []weather.Report
					err = s.NewSelect().Model(&top).Order("temperature DESC", "id").Limit(100).Scan(ctx)
					rows = len(top)
					return
				}
				for r, e := range session.Iter[weather.Report](ctx, c.q()) {
					if e != nil {
						err = e
						return
					}
					rows++
					if c.keep {
						if kept = append(kept, r); len(kept) == keepRows {
							break
						}
					}
				}
			})
			if err != nil {
				t.Fatal(err)
			}
			if rows != c.want {
				t.Fatalf("%d rows; want %d", rows, c.want)
			}
			t.Logf("%d rows: peak heap %.1f MiB above %.1f MiB (bound %.1f MiB)", n, mib(peak), mib(base), mib(bound))
			if c.under && peak > bound {
				t.Errorf("peak heap %.1f MiB above the start over %d rows; want under %d shards x %.1f MiB + %.1f MiB = %.1f MiB",
					mib(peak), n, len(weather.Shards), mib(perStreamBound), mib(constBound), mib(bound))
			}
			if !c.under && peak <= bound {
				t.Errorf("a consumer keeping %d rows peaked at %.1f MiB, under the bound %.1f MiB: the bound proves nothing at this row count",
					len(kept), mib(peak), mib(bound))
			}
			runtime.KeepAlive(kept)
		})
	}
}

const keepRows = 200_000

func mib(b uint64) float64 { return float64(b) / (1 << 20) }
