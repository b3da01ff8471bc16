package bench

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/uptrace/bun"
	"golang.org/x/sync/errgroup"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
)

// W1: 1,000 gets by primary key, the shard known to the chooser.
func BenchmarkW1(b *testing.B) {
	e := load(b)
	ctx := context.Background()
	b.Run("bunshard", func(b *testing.B) {
		s := e.session(b, knownShard)
		for b.Loop() {
			for _, id := range getIDs {
				var loc weather.Location
				if err := s.Get(ctx, &loc, id); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("bun", func(b *testing.B) {
		for b.Loop() {
			for _, id := range getIDs {
				loc := weather.Location{ID: id}
				if err := e.dbs[shardOfLocation(id)].NewSelect().Model(&loc).WherePK().Scan(ctx); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

// W2: 1,000 gets by primary key, shard unknown: every shard is asked.
func BenchmarkW2(b *testing.B) {
	e := load(b)
	ctx := context.Background()
	b.Run("bunshard", func(b *testing.B) {
		s := e.session(b, chooser.All)
		for b.Loop() {
			for _, id := range getIDs {
				var loc weather.Location
				if err := s.Get(ctx, &loc, id); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
	b.Run("bun", func(b *testing.B) {
		for b.Loop() {
			for _, id := range getIDs {
				if _, err := handGet(ctx, e.dbs, id); err != nil {
					b.Fatal(err)
				}
			}
		}
	})
}

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

// W3: select all 100k reports across the shards, materialised as structs.
func BenchmarkW3(b *testing.B) {
	e := load(b)
	ctx := context.Background()
	b.Run("bunshard", func(b *testing.B) {
		s := e.session(b, chooser.All)
		for b.Loop() {
			var reps []weather.Report
			if err := s.NewSelect().Model(&reps).Scan(ctx); err != nil {
				b.Fatal(err)
			}
			if len(reps) != nLocations*perLoc {
				b.Fatalf("got %d reports", len(reps))
			}
		}
	})
	b.Run("bun", func(b *testing.B) {
		for b.Loop() {
			parts := make([][]weather.Report, len(e.dbs))
			g, ctx := errgroup.WithContext(ctx)
			for i, db := range e.dbs {
				g.Go(func() error { return db.NewSelect().Model(&parts[i]).Scan(ctx) })
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			total := 0
			for _, p := range parts {
				total += len(p)
			}
			reps := make([]weather.Report, 0, total)
			for _, p := range parts {
				reps = append(reps, p...)
			}
			if len(reps) != nLocations*perLoc {
				b.Fatalf("got %d reports", len(reps))
			}
		}
	})
}

// W7: count(*) of reports across the shards.
func BenchmarkW7(b *testing.B) {
	e := load(b)
	ctx := context.Background()
	b.Run("bunshard", func(b *testing.B) {
		s := e.session(b, chooser.All)
		for b.Loop() {
			n, err := s.NewSelect().Model((*weather.Report)(nil)).Count(ctx)
			if err != nil || n != nLocations*perLoc {
				b.Fatal(n, err)
			}
		}
	})
	b.Run("bun", func(b *testing.B) {
		for b.Loop() {
			counts := make([]int64, len(e.dbs))
			g, ctx := errgroup.WithContext(ctx)
			for i, db := range e.dbs {
				g.Go(func() (err error) {
					counts[i], err = db.NewSelect().Model((*weather.Report)(nil)).Count(ctx)
					return err
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			var n int64
			for _, c := range counts {
				n += c
			}
			if n != nLocations*perLoc {
				b.Fatal(n)
			}
		}
	})
}
