package bench

import (
	"cmp"
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
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
	got, want := make([]weather.Location, len(getIDs)), make([]weather.Location, len(getIDs))
	ours := func() error {
		for i, id := range getIDs {
			got[i] = weather.Location{}
			if err := s.Get(ctx, &got[i], id); err != nil {
				return err
			}
		}
		return nil
	}
	hand := func() error {
		for i, id := range getIDs {
			want[i] = weather.Location{ID: id}
			if err := e.dbs[shardOfLocation(id)].NewSelect().Model(&want[i]).WherePK().Scan(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	return side{run: ours, digest: locationsDigest(got)}, side{run: hand, digest: locationsDigest(want)}
}}

// W2: 1,000 gets by primary key, shard unknown: every shard is asked.
var w2 = workload{name: "W2", setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, chooser.All)
	got, want := make([]weather.Location, len(getIDs)), make([]weather.Location, len(getIDs))
	ours := func() error {
		for i, id := range getIDs {
			got[i] = weather.Location{}
			if err := s.Get(ctx, &got[i], id); err != nil {
				return err
			}
		}
		return nil
	}
	hand := func() error {
		for i, id := range getIDs {
			loc, err := handGet(ctx, e.dbs, id)
			if err != nil {
				return err
			}
			want[i] = *loc
		}
		return nil
	}
	return side{run: ours, digest: locationsDigest(got)}, side{run: hand, digest: locationsDigest(want)}
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
	got, want := make([]EncLocation, len(ee.ids)), make([]EncLocation, len(ee.ids))
	ours := func() error {
		for i, id := range ee.ids {
			got[i] = EncLocation{}
			if err := s.Get(ctx, &got[i], id); err != nil {
				return err
			}
		}
		return nil
	}
	hand := func() error {
		for i, id := range ee.ids {
			want[i] = EncLocation{ID: id}
			if err := e.dbs[ee.home[i]].NewSelect().Model(&want[i]).WherePK().Scan(ctx); err != nil {
				return err
			}
		}
		return nil
	}
	enc := func(b []byte, l *EncLocation) []byte {
		return encLocation(b, &weather.Location{ID: l.ID, Continent: l.Continent, City: l.City})
	}
	return side{run: ours, digest: func() (uint64, error) { return ordered(ptrs(got), enc), nil }},
		side{run: hand, digest: func() (uint64, error) { return ordered(ptrs(want), enc), nil }}
}}

// W3: select all 100k reports across the shards, materialised as structs.
var w3 = workload{name: "W3", setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, chooser.All)
	var got, want []weather.Report
	ours := func() error {
		var reps []weather.Report
		if err := s.NewSelect().Model(&reps).Scan(ctx); err != nil {
			return err
		}
		got = reps
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
		want = reps
		return wantLen("reports", len(reps), nLocations*perLoc)
	}
	// No ORDER BY: the rows in any order, as a multiset.
	return side{run: ours, digest: func() (uint64, error) { return unordered(ptrs(got), encReport), nil }},
		side{run: hand, digest: func() (uint64, error) { return unordered(ptrs(want), encReport), nil }}
}}

// W4: the global top 100 reports by temperature, in the right order.
var w4 = workload{name: "W4", reps: 20, setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, chooser.All)
	var got, want []weather.Report
	ours := func() error {
		var top []weather.Report
		if err := s.NewSelect().Model(&top).Order("temperature DESC", "id").Limit(100).Scan(ctx); err != nil {
			return err
		}
		got = top
		return wantLen("reports", len(top), 100)
	}
	hand := func() error {
		parts := make([][]weather.Report, len(e.dbs))
		g, ctx := errgroup.WithContext(ctx)
		for i, db := range e.dbs {
			g.Go(func() error {
				return db.NewSelect().Model(&parts[i]).OrderExpr("temperature DESC, id").Limit(100).Scan(ctx)
			})
		}
		if err := g.Wait(); err != nil {
			return err
		}
		top := merge.Slices(parts, func(a, b weather.Report) int {
			if c := cmp.Compare(b.Temperature, a.Temperature); c != 0 {
				return c
			}
			return cmp.Compare(a.ID, b.ID)
		}, 0, 100)
		want = top
		return wantLen("reports", len(top), 100)
	}
	// Why the id: temperatures tie (one decimal), so by temperature alone
	// the 100th row is any of several, and the two sides' rows may differ.
	return side{run: ours, digest: func() (uint64, error) { return ordered(ptrs(got), encReport), nil }},
		side{run: hand, digest: func() (uint64, error) { return ordered(ptrs(want), encReport), nil }}
}}

// W7: count(*) of reports across the shards.
var w7 = workload{name: "W7", reps: 40, setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, chooser.All)
	var got, want int
	ours := func() error {
		n, err := s.NewSelect().Model((*weather.Report)(nil)).Count(ctx)
		if err != nil {
			return err
		}
		got = n
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
		want = int(n)
		return wantLen("count", int(n), nLocations*perLoc)
	}
	return side{run: ours, digest: func() (uint64, error) { return uint64(got), nil }},
		side{run: hand, digest: func() (uint64, error) { return uint64(want), nil }}
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
	var got, want []tempByLocation
	ours := func() error {
		var rows []tempByLocation
		err := s.NewSelect().Model((*weather.Report)(nil)).GroupBy("location_id").
			Aggregate(session.CountAll().As("n"), session.Avg("temperature").As("mean")).Scan(ctx, &rows)
		if err != nil {
			return err
		}
		got = rows
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
		want = rows
		return wantLen("groups", len(rows), nLocations)
	}
	// No ORDER BY: the groups as a multiset. The mean is a float average,
	// which PostgreSQL and the merge compute by different steps, so it is
	// digested to 9 significant digits.
	enc := func(b []byte, r *tempByLocation) []byte {
		b = appendInt(appendInt(b, r.LocationID), r.N)
		return appendString(b, strconv.FormatFloat(r.Mean, 'g', 9, 64))
	}
	return side{run: ours, digest: func() (uint64, error) { return unordered(ptrs(got), enc), nil }},
		side{run: hand, digest: func() (uint64, error) { return unordered(ptrs(want), enc), nil }}
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
	var byKeyset, byOffset []weather.Report
	keyset := func() error {
		var rows []weather.Report
		if _, err := s.NewSelect().Model(&rows).Order("temperature DESC").Limit(size).ScanPage(ctx, cursor); err != nil {
			return err
		}
		byKeyset = rows
		return wantLen("rows", len(rows), size)
	}
	offset := func() error {
		var rows []weather.Report
		if err := s.NewSelect().Model(&rows).Order("temperature DESC", "id").
			Offset((page - 1) * size).Limit(size).Scan(ctx); err != nil {
			return err
		}
		byOffset = rows
		return wantLen("rows", len(rows), size)
	}
	// ScanPage completes the order with the primary key: the same order.
	return side{run: keyset, digest: func() (uint64, error) { return ordered(ptrs(byKeyset), encReport), nil }},
		side{run: offset, digest: func() (uint64, error) { return ordered(ptrs(byOffset), encReport), nil }}
}}

// locationsDigest digests locs, the locations a run fetched, in order.
func locationsDigest(locs []weather.Location) func() (uint64, error) {
	return func() (uint64, error) { return ordered(ptrs(locs), encLocation), nil }
}

func wantLen(what string, got, want int) error {
	if got != want {
		return fmt.Errorf("got %d %s; want %d", got, what, want)
	}
	return nil
}
