package bench

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/uptrace/bun"
	"golang.org/x/sync/errgroup"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/merge"
	"github.com/bunshard/bunshard/session"
)

// workloads are BENCH.md's, each beside hand-written Bun doing the same
// work (one *bun.DB per shard, an errgroup fan-out, results merged by hand),
// plus a GROUP BY and page 500 by OFFSET against keyset.
var workloads = []workload{w1, w2, w2IDs, w3, w4, w5, w5p, w6, w7, wGroup, page500}

func BenchmarkW1(b *testing.B)      { benchPair(b, w1) }
func BenchmarkW2(b *testing.B)      { benchPair(b, w2) }
func BenchmarkW2IDs(b *testing.B)   { benchPair(b, w2IDs) }
func BenchmarkW3(b *testing.B)      { benchPair(b, w3) }
func BenchmarkW4(b *testing.B)      { benchPair(b, w4) }
func BenchmarkW5(b *testing.B)      { benchPair(b, w5) }
func BenchmarkW5p(b *testing.B)     { benchPair(b, w5p) }
func BenchmarkW6(b *testing.B)      { benchPair(b, w6) }
func BenchmarkW7(b *testing.B)      { benchPair(b, w7) }
func BenchmarkWGroup(b *testing.B)  { benchPair(b, wGroup) }
func BenchmarkPage500(b *testing.B) { benchPair(b, page500) }

var ctx = context.Background()

// W1: 1,000 gets by primary key, the shard known to the chooser.
var w1 = workload{name: "W1", setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, knownShard)
	ours := func() error {
		for _, id := range getIDs {
			var loc weather.Location
			if err := s.Get(ctx, &loc, id); err != nil {
				return err
			}
		}
		return nil
	}
	hand := func() error {
		for _, id := range getIDs {
			loc := weather.Location{ID: id}
			if err := e.dbs[shardOfLocation(id)].NewSelect().Model(&loc).WherePK().Scan(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	return side{run: ours}, side{run: hand}
}}

// W2: 1,000 gets by primary key, shard unknown: every shard is asked.
var w2 = workload{name: "W2", setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, chooser.All)
	ours := func() error {
		for _, id := range getIDs {
			var loc weather.Location
			if err := s.Get(ctx, &loc, id); err != nil {
				return err
			}
		}
		return nil
	}
	hand := func() error {
		for _, id := range getIDs {
			if _, err := handGet(ctx, e.dbs, id); err != nil {
				return err
			}
		}
		return nil
	}
	return side{run: ours}, side{run: hand}
}}

// handGet is what a Bun user writes for a get with an unknown shard: ask
// every shard at once, keep the one that has the row.
func handGet(ctx context.Context, dbs []*bun.DB, id int64) (*weather.Location, error) {
	found := make([]*weather.Location, len(dbs))
	g, ctx := errgroup.WithContext(ctx)
	for i, db := range dbs {
		g.Go(func() error {
			loc := &weather.Location{ID: id}
			err := db.NewSelect().Model(loc).WherePK().Scan(ctx)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			found[i] = loc
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	for _, loc := range found {
		if loc != nil {
			return loc, nil
		}
	}
	return nil, fmt.Errorf("location %d: %w", id, sql.ErrNoRows)
}

// W2IDs: W2 with shard-encoded ids: the FromID chooser reads the shard from
// the id, so each Get is one statement. Compared with hand-written Bun that
// knows each row's shard (W1's baseline), as issue 5 asks.
var w2IDs = workload{name: "W2IDs", setup: func(b testing.TB, e *env) (side, side) {
	ee := loadEnc(b, e)
	s := e.session(b, ee.byID)
	ours := func() error {
		for _, id := range ee.ids {
			var loc EncLocation
			if err := s.Get(ctx, &loc, id); err != nil {
				return err
			}
		}
		return nil
	}
	hand := func() error {
		for i, id := range ee.ids {
			loc := EncLocation{ID: id}
			if err := e.dbs[ee.home[i]].NewSelect().Model(&loc).WherePK().Scan(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	return side{run: ours}, side{run: hand}
}}

// W3: select all 100k reports across the shards, materialised as structs.
var w3 = workload{name: "W3", setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, chooser.All)
	ours := func() error {
		var reps []weather.Report
		if err := s.NewSelect().Model(&reps).Scan(ctx); err != nil {
			return err
		}
		return wantLen("reports", len(reps), nLocations*perLoc)
	}
	hand := func() error {
		parts := make([][]weather.Report, len(e.dbs))
		g, ctx := errgroup.WithContext(ctx)
		for i, db := range e.dbs {
			g.Go(func() error { return db.NewSelect().Model(&parts[i]).Scan(ctx) })
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
		return wantLen("reports", len(reps), nLocations*perLoc)
	}
	return side{run: ours}, side{run: hand}
}}

// W4: the global top 100 reports by temperature, in the right order.
var w4 = workload{name: "W4", reps: 20, setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, chooser.All)
	ours := func() error {
		var top []weather.Report
		if err := s.NewSelect().Model(&top).Order("temperature DESC").Limit(100).Scan(ctx); err != nil {
			return err
		}
		return wantLen("reports", len(top), 100)
	}
	hand := func() error {
		parts := make([][]weather.Report, len(e.dbs))
		g, ctx := errgroup.WithContext(ctx)
		for i, db := range e.dbs {
			g.Go(func() error {
				return db.NewSelect().Model(&parts[i]).OrderExpr("temperature DESC").Limit(100).Scan(ctx)
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		top := merge.Slices(parts, func(a, b weather.Report) int { return cmp.Compare(b.Temperature, a.Temperature) }, 0, 100)
		return wantLen("reports", len(top), 100)
	}
	return side{run: ours}, side{run: hand}
}}

// W7: count(*) of reports across the shards.
var w7 = workload{name: "W7", reps: 40, setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, chooser.All)
	ours := func() error {
		n, err := s.NewSelect().Model((*weather.Report)(nil)).Count(ctx)
		if err != nil {
			return err
		}
		return wantLen("count", n, nLocations*perLoc)
	}
	hand := func() error {
		counts := make([]int64, len(e.dbs))
		g, ctx := errgroup.WithContext(ctx)
		for i, db := range e.dbs {
			g.Go(func() (err error) {
				counts[i], err = db.NewSelect().Model((*weather.Report)(nil)).Count(ctx)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		var n int64
		for _, c := range counts {
			n += c
		}
		return wantLen("count", int(n), nLocations*perLoc)
	}
	return side{run: ours}, side{run: hand}
}}

type tempByLocation struct {
	LocationID int64
	N          int64
	Mean       float64
}

// WGroup: reports per location with their mean temperature (a GROUP BY
// over the 100k reports), merged across shards. By hand each shard groups
// its own rows and, since a location lives on one shard, the groups are
// just concatenated; the library does not assume that, and merges.
var wGroup = workload{name: "WGroup", reps: 10, setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, chooser.All)
	ours := func() error {
		var rows []tempByLocation
		err := s.NewSelect().Model((*weather.Report)(nil)).GroupBy("location_id").
			Aggregate(session.CountAll().As("n"), session.Avg("temperature").As("mean")).Scan(ctx, &rows)
		if err != nil {
			return err
		}
		return wantLen("groups", len(rows), nLocations)
	}
	hand := func() error {
		parts := make([][]tempByLocation, len(e.dbs))
		g, ctx := errgroup.WithContext(ctx)
		for i, db := range e.dbs {
			g.Go(func() error {
				return db.NewSelect().Model((*weather.Report)(nil)).
					ColumnExpr("location_id, count(*) AS n, avg(temperature) AS mean").
					Group("location_id").Scan(ctx, &parts[i])
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		var rows []tempByLocation
		for _, p := range parts {
			rows = append(rows, p...)
		}
		return wantLen("groups", len(rows), nLocations)
	}
	return side{run: ours}, side{run: hand}
}}

// Page500: page 500 (100 rows a page) of the reports ordered by
// temperature, by keyset cursor (a) and by OFFSET (b).
var page500 = workload{name: "Page500", reps: 5, a: "keyset", b: "offset", setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, chooser.All)
	const size, page = 100, 500
	cursor := "" // the cursor of page 499, made once
	for range page - 1 {
		var rows []weather.Report
		next, err := s.NewSelect().Model(&rows).Order("temperature DESC").Limit(size).ScanPage(ctx, cursor)
		if err != nil {
			b.Fatal(err)
		}
		cursor = next
	}
	keyset := func() error {
		var rows []weather.Report
		if _, err := s.NewSelect().Model(&rows).Order("temperature DESC").Limit(size).ScanPage(ctx, cursor); err != nil {
			return err
		}
		return wantLen("rows", len(rows), size)
	}
	offset := func() error {
		var rows []weather.Report
		if err := s.NewSelect().Model(&rows).Order("temperature DESC", "id").
			Offset((page - 1) * size).Limit(size).Scan(ctx); err != nil {
			return err
		}
		return wantLen("rows", len(rows), size)
	}
	return side{run: keyset}, side{run: offset}
}}

func wantLen(what string, got, want int) error {
	if got != want {
		return fmt.Errorf("got %d %s; want %d", got, what, want)
	}
	return nil
}
