package bench

import (
	"fmt"
	"testing"

	"github.com/uptrace/bun"
	"golang.org/x/sync/errgroup"

	"github.com/bunshard/bunshard/internal/weather"
)

func init() { workloads = append(workloads, wMany, wManyBun) }

func BenchmarkWMany(b *testing.B)    { benchPair(b, wMany) }
func BenchmarkWManyBun(b *testing.B) { benchPair(b, wManyBun) }

// WMany: W1's 1,000 keys in one GetMany (one statement per shard) against
// 1,000 Gets through bunshard: the ratio issue 13 wants at most 0.1.
var wMany = workload{name: "WMany", reps: 5, a: "getmany", b: "gets", setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, knownShard)
	var byMany, byOther []*weather.Location
	many := func() error {
		var locs []*weather.Location
		if err := s.GetMany(ctx, &locs, getIDs); err != nil {
			return err
		}
		byMany = locs
		return checkMany(locs)
	}
	gets := func() error {
		locs := make([]*weather.Location, len(getIDs))
		for i, id := range getIDs {
			locs[i] = new(weather.Location)
			if err := s.Get(ctx, locs[i], id); err != nil {
				return err
			}
		}
		byOther = locs
		return checkMany(locs)
	}
	return side{run: many, digest: manyDigest(&byMany)}, side{run: gets, digest: manyDigest(&byOther)}
}}

// WManyBun: the same GetMany against hand-written Bun doing what a Bun user
// writes for it: group the keys by shard, one WHERE id IN (...) per shard
// at once, the rows put back in the order of the keys.
var wManyBun = workload{name: "WManyBun", reps: 5, setup: func(b testing.TB, e *env) (side, side) {
	s := e.session(b, knownShard)
	var byMany, byOther []*weather.Location
	many := func() error {
		var locs []*weather.Location
		if err := s.GetMany(ctx, &locs, getIDs); err != nil {
			return err
		}
		byMany = locs
		return checkMany(locs)
	}
	hand := func() error {
		perShard := make([][]int64, len(e.dbs))
		for _, id := range getIDs {
			i := shardOfLocation(id)
			perShard[i] = append(perShard[i], id)
		}
		parts := make([][]*weather.Location, len(e.dbs))
		g, ctx := errgroup.WithContext(ctx)
		for i, db := range e.dbs {
			if len(perShard[i]) == 0 {
				continue
			}
			g.Go(func() error {
				return db.NewSelect().Model(&parts[i]).Where("id IN (?)", bun.List(perShard[i])).Scan(ctx)
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
		byOther = locs
		return checkMany(locs)
	}
	return side{run: many, digest: manyDigest(&byMany)}, side{run: hand, digest: manyDigest(&byOther)}
}}

// manyDigest digests the locations a run kept in *locs, in the order of
// the keys.
func manyDigest(locs *[]*weather.Location) func() (uint64, error) {
	return func() (uint64, error) { return ordered(*locs, encLocation), nil }
}

func checkMany(locs []*weather.Location) error {
	if len(locs) != len(getIDs) {
		return fmt.Errorf("got %d locations; want %d", len(locs), len(getIDs))
	}
	for i, l := range locs {
		if l.ID != getIDs[i] {
			return fmt.Errorf("location %d is %d; want %d", i, l.ID, getIDs[i])
		}
	}
	return nil
}
