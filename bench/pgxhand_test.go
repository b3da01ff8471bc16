package bench

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"golang.org/x/sync/errgroup"

	"github.com/bunshard/bunshard/internal/pgxscan"
	"github.com/bunshard/bunshard/internal/weather"
)

// pgx by hand: W1, W3, W6 and WMany written straight on pgx (a pgxpool per shard,
// its default exec mode: parameterised statements, the statement cache,
// binary results), the baseline of BENCH.md's "pgx by hand" column. Each
// is paired with bunshard over each driver: W1.pgxhand.pgdriver,
// W3.pgxhand.pgx, W6.pgxhand.pgxsimple, ... (a = bunshard over that driver,
// b = pgx by hand; WManyBun.pgxhand.pgx: bunshard's GetMany against pgx
// by hand). BenchmarkRatios runs them when BUNSHARD_RATIOS names
// them.
var pgxHandWorkloads = func() []workload {
	var out []workload
	names := []string{"pgdriver"}
	for _, d := range drivers {
		names = append(names, d.name)
	}
	for _, d := range names {
		for _, w := range []struct {
			base workload
			hand func(testing.TB, *env) side
		}{{w1, pgxW1}, {w3, pgxW3}, {w6, pgxW6}, {wManyBun, pgxWMany}} {
			out = append(out, vsPgxHand(w.base, d, w.hand))
		}
	}
	return out
}()

// vsPgxHand pairs bunshard's side of w, over driver d, with pgx by hand.
func vsPgxHand(w workload, d string, hand func(testing.TB, *env) side) workload {
	return workload{
		name: w.name + ".pgxhand." + d, reps: w.reps, a: "bunshard/" + d, b: "pgx/hand",
		setup: func(b testing.TB, e *env) (side, side) {
			ee := e
			for _, dd := range drivers {
				if dd.name == d {
					ee = e.overPgx(b, dd.name, dd.mode)
				}
			}
			ours, _ := w.setup(b, ee)
			return ours, hand(b, e)
		},
		finish: w.finish,
	}
}

var (
	poolsMu sync.Mutex
	pools   []*pgxpool.Pool // in weather.Shards order
)

// pgxPools opens (once per process) a pgxpool per shard, 8 connections
// each, as the Bun handles have.
func (e *env) pgxPools(b testing.TB) []*pgxpool.Pool {
	poolsMu.Lock()
	defer poolsMu.Unlock()
	if pools != nil {
		return pools
	}
	for _, dsn := range e.dsns {
		cfg, err := pgxpool.ParseConfig(dsn)
		if err != nil {
			b.Fatal(fmt.Errorf("pgxpool.ParseConfig(%s): %w", dsn, err))
		}
		cfg.MaxConns = 8
		p, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			b.Fatal(err)
		}
		pools = append(pools, p)
	}
	return pools
}

func pgxW1(b testing.TB, e *env) side {
	ps := e.pgxPools(b)
	want := make([]weather.Location, len(getIDs))
	run := func() error {
		for i, id := range getIDs {
			l := &want[i]
			*l = weather.Location{}
			err := ps[shardOfLocation(id)].QueryRow(ctx,
				"SELECT id, continent, city FROM weather_locations WHERE id = $1", id).Scan(&l.ID, &l.Continent, &l.City)
			if err != nil {
				return err
			}
		}
		return nil
	}
	return side{run: run, digest: locationsDigest(want)}
}

// pgxWMany is W1's keys read as a pgx user would batch them: grouped by
// shard, one "id = ANY($1)" per shard at once, put back in the order of
// the keys.
func pgxWMany(b testing.TB, e *env) side {
	ps := e.pgxPools(b)
	var byHand []*weather.Location
	run := func() error {
		perShard := make([][]int64, len(ps))
		for _, id := range getIDs {
			i := shardOfLocation(id)
			perShard[i] = append(perShard[i], id)
		}
		parts := make([][]*weather.Location, len(ps))
		g, ctx := errgroup.WithContext(ctx)
		for i, p := range ps {
			if len(perShard[i]) == 0 {
				continue
			}
			g.Go(func() (err error) {
				parts[i], err = pgxScan(ctx, p, "SELECT id, continent, city FROM weather_locations WHERE id = ANY($1)",
					[]any{perShard[i]}, func(rows pgx.Rows) (*weather.Location, error) {
						l := &weather.Location{}
						return l, rows.Scan(&l.ID, &l.Continent, &l.City)
					})
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		byID := make(map[int64]*weather.Location, len(getIDs))
		for _, p := range parts {
			for _, l := range p {
				byID[l.ID] = l
			}
		}
		locs := make([]*weather.Location, len(getIDs))
		for i, id := range getIDs {
			if locs[i] = byID[id]; locs[i] == nil {
				return fmt.Errorf("location %d not found", id)
			}
		}
		byHand = locs
		return checkMany(locs)
	}
	return side{run: run, digest: manyDigest(&byHand)}
}

func pgxW3(b testing.TB, e *env) side {
	ps := e.pgxPools(b)
	var want []weather.Report
	run := func() error {
		parts := make([][]weather.Report, len(ps))
		g, ctx := errgroup.WithContext(ctx)
		for i, p := range ps {
			g.Go(func() error {
				rows, err := p.Query(ctx, "SELECT id, location_id, temperature, report_time FROM weather_reports")
				if err != nil {
					return err
				}
				defer rows.Close()
				var out []weather.Report
				for rows.Next() {
					out = append(out, weather.Report{})
					r := &out[len(out)-1]
					if err := rows.Scan(&r.ID, &r.LocationID, &r.Temperature, &r.ReportTime); err != nil {
						return err
					}
				}
				parts[i] = out
				return rows.Err()
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		total := 0
		for _, p := range parts {
			total += len(p)
		}
		reps := make([]weather.Report, 0, total)
		for _, p := range parts {
			reps = append(reps, p...)
		}
		want = reps
		return wantLen("reports", len(reps), nLocations*perLoc)
	}
	return side{run: run, digest: func() (uint64, error) { return unordered(ptrs(want), encReport), nil }}
}

func pgxW6(b testing.TB, e *env) side {
	ps := e.pgxPools(b)
	var byHand []*weather.Location
	run := func() error {
		parts := make([][]*weather.Location, len(ps))
		g, ctx := errgroup.WithContext(ctx)
		for i, p := range ps {
			g.Go(func() error {
				locs, err := pgxScan(ctx, p, "SELECT id, continent, city FROM weather_locations WHERE id <= $1",
					[]any{500}, func(rows pgx.Rows) (*weather.Location, error) {
						l := &weather.Location{}
						return l, rows.Scan(&l.ID, &l.Continent, &l.City)
					})
				if err != nil {
					return err
				}
				ids := make([]int64, len(locs))
				byID := make(map[int64]*weather.Location, len(locs))
				for j, l := range locs {
					ids[j] = l.ID
					byID[l.ID] = l
				}
				reps, err := pgxScan(ctx, p, "SELECT id, location_id, temperature, report_time FROM weather_reports WHERE location_id = ANY($1)",
					[]any{ids}, func(rows pgx.Rows) (*weather.Report, error) {
						r := &weather.Report{}
						return r, rows.Scan(&r.ID, &r.LocationID, &r.Temperature, &r.ReportTime)
					})
				if err != nil {
					return err
				}
				for _, r := range reps {
					l := byID[r.LocationID]
					l.Reports = append(l.Reports, r)
				}
				parts[i] = locs
				return nil
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		var locs []*weather.Location
		for _, p := range parts {
			locs = append(locs, p...)
		}
		byHand = locs
		return wantLen("reports", countReports(locs)+len(locs)-500, 500*perLoc)
	}
	return side{run: run, digest: func() (uint64, error) { return unordered(byHand, encLocationTree), nil }}
}

func pgxScan[T any](ctx context.Context, p *pgxpool.Pool, sql string, args []any, scan func(pgx.Rows) (T, error)) ([]T, error) {
	rows, err := p.Query(ctx, sql, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}

// scanWorkloads measure the fast path itself: bunshard over pgx with it
// (a, "fast") against the same with every scan through Bun's
// (b, "bunscan"), on the driverBases, in each exec mode: W3.pgxscan.pgx,
// W6.pgxscan.pgxsimple, ... Run by BenchmarkRatios when named, and by
// BenchmarkDrivers for profiles:
//
//	go test -run '^$' -bench 'Drivers/W3.pgxscan.pgx$/fast' -cpuprofile cpu.out ./bench
var scanWorkloads = func() []workload {
	var out []workload
	for _, d := range drivers {
		for _, w := range driverBases {
			out = append(out, withoutFastPath(w, d.name, d.mode))
		}
	}
	return out
}()

func withoutFastPath(w workload, name string, mode pgx.QueryExecMode) workload {
	return workload{
		name: w.name + ".pgxscan." + name, reps: w.reps, a: "fast", b: "bunscan",
		setup: func(b testing.TB, e *env) (side, side) {
			fast, _ := w.setup(b, e.overPgx(b, name, mode))
			slow, _ := w.setup(b, e.overPgx(b, name, mode))
			off := func(p func()) func() {
				return func() {
					pgxscan.Disabled.Store(true)
					if p != nil {
						p()
					}
				}
			}
			on := func(c func()) func() {
				return func() {
					if c != nil {
						c()
					}
					pgxscan.Disabled.Store(false)
				}
			}
			// the flag is flipped untimed, around the run; the digest
			// reads memory only
			slow.prep, slow.clean = off(slow.prep), on(slow.clean)
			fastPrep := fast.prep
			fast.prep = func() {
				pgxscan.Disabled.Store(false)
				if fastPrep != nil {
					fastPrep()
				}
			}
			return fast, slow
		},
		finish: func(tb testing.TB, e *env) {
			pgxscan.Disabled.Store(false)
			if w.finish != nil {
				w.finish(tb, e)
			}
		},
	}
}
