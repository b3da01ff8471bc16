package bench

import (
	"cmp"
	"context"
	"testing"

	"golang.org/x/sync/errgroup"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/merge"
	"github.com/bunshard/bunshard/session"
)

// W4: the global top 100 reports by temperature, in the right order.
func BenchmarkW4(b *testing.B) {
	e := load(b)
	ctx := context.Background()
	b.Run("bunshard", func(b *testing.B) {
		s := e.session(b, chooser.All)
		for b.Loop() {
			var top []weather.Report
			if err := s.NewSelect().Model(&top).Order("temperature DESC").Limit(100).Scan(ctx); err != nil || len(top) != 100 {
				b.Fatal(len(top), err)
			}
		}
	})
	b.Run("bun", func(b *testing.B) {
		for b.Loop() {
			parts := make([][]weather.Report, len(e.dbs))
			g, ctx := errgroup.WithContext(ctx)
			for i, db := range e.dbs {
				g.Go(func() error {
					return db.NewSelect().Model(&parts[i]).OrderExpr("temperature DESC").Limit(100).Scan(ctx)
				})
			}
			if err := g.Wait(); err != nil {
				b.Fatal(err)
			}
			top := merge.Slices(parts, func(a, b weather.Report) int { return cmp.Compare(b.Temperature, a.Temperature) }, 0, 100)
			if len(top) != 100 {
				b.Fatal(len(top))
			}
		}
	})
}

type tempByLocation struct {
	LocationID int64
	N          int64
	Mean       float64
}

// WGroup: reports per location with their mean temperature (a GROUP BY
// over the 100k reports), merged across shards.
func BenchmarkWGroup(b *testing.B) {
	e := load(b)
	ctx := context.Background()
	b.Run("bunshard", func(b *testing.B) {
		s := e.session(b, chooser.All)
		for b.Loop() {
			var rows []tempByLocation
			err := s.NewSelect().Model((*weather.Report)(nil)).GroupBy("location_id").
				Aggregate(session.CountAll().As("n"), session.Avg("temperature").As("mean")).Scan(ctx, &rows)
			if err != nil || len(rows) != nLocations {
				b.Fatal(len(rows), err)
			}
		}
	})
	b.Run("bun", func(b *testing.B) {
		// By hand: each shard groups its own rows; a location lives on one
		// shard, so the groups do not overlap and concatenation is enough
		// (the library does not assume that, and merges).
		for b.Loop() {
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
				b.Fatal(err)
			}
			var rows []tempByLocation
			for _, p := range parts {
				rows = append(rows, p...)
			}
			if len(rows) != nLocations {
				b.Fatal(len(rows))
			}
		}
	})
}

// BenchmarkPage500 reads page 500 (100 rows a page) of the reports ordered
// by temperature: with OFFSET, and with a keyset cursor.
func BenchmarkPage500(b *testing.B) {
	e := load(b)
	ctx := context.Background()
	s := e.session(b, chooser.All)
	const size, page = 100, 500
	// The cursor of page 499, made once.
	cursor := ""
	for range page - 1 {
		var rows []weather.Report
		next, err := s.NewSelect().Model(&rows).Order("temperature DESC").Limit(size).ScanPage(ctx, cursor)
		if err != nil {
			b.Fatal(err)
		}
		cursor = next
	}
	b.Run("offset", func(b *testing.B) {
		for b.Loop() {
			var rows []weather.Report
			if err := s.NewSelect().Model(&rows).Order("temperature DESC", "id").
				Offset((page - 1) * size).Limit(size).Scan(ctx); err != nil || len(rows) != size {
				b.Fatal(len(rows), err)
			}
		}
	})
	b.Run("keyset", func(b *testing.B) {
		for b.Loop() {
			var rows []weather.Report
			if _, err := s.NewSelect().Model(&rows).Order("temperature DESC").Limit(size).ScanPage(ctx, cursor); err != nil || len(rows) != size {
				b.Fatal(len(rows), err)
			}
		}
	})
}
