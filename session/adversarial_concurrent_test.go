package session_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestSessionSharedByGoroutines: one Session used at once by eight
// goroutines, each doing a seeded random mix of Insert, Update, Delete,
// Get, key-routed and pinned selects, a refused shard-key change and
// RunInTx units on its own ids. Every answer each goroutine gets matches
// what it wrote, and at the end every shard holds exactly the rows the
// goroutines' models say, on the shard of their continent (run with -race).
func TestSessionSharedByGoroutines(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	seed := uint64(time.Now().UnixNano())
	t.Logf("seed %d", seed)

	const workers, steps = 8, 40
	type row struct{ continent, city string }
	models := make([]map[int64]row, workers)
	var wg sync.WaitGroup
	errs := make([]error, workers)
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r := rand.New(rand.NewPCG(seed, uint64(w)))
			mine := map[int64]row{}
			models[w] = mine
			fail := func(format string, args ...any) {
				if errs[w] == nil {
					errs[w] = fmt.Errorf("seed %d worker %d: "+format, append([]any{seed, w}, args...)...)
				}
			}
			next := int64(w*1000 + 1)
			for step := 0; step < steps && errs[w] == nil; step++ {
				ids := slices.Sorted(maps.Keys(mine))
				pick := func() int64 { return ids[r.IntN(len(ids))] }
				switch op := r.IntN(7); {
				case op == 0 || len(ids) == 0:
					n := 1 + r.IntN(4)
					var ls []*weather.Location
					for range n {
						c := weather.Continents[r.IntN(len(weather.Continents))]
						ls = append(ls, &weather.Location{ID: next, Continent: c, City: fmt.Sprintf("w%d-%d", w, next)})
						mine[next] = row{c, ls[len(ls)-1].City}
						next++
					}
					if err := s.Insert(ctx, &ls); err != nil {
						fail("Insert: %v", err)
					}
				case op == 1:
					id := pick()
					var l weather.Location
					if err := s.Get(ctx, &l, id); err != nil || l.Continent != mine[id].continent || l.City != mine[id].city {
						fail("Get(%d) = %+v, %v; want %v", id, l, err, mine[id])
					}
				case op == 2:
					id := pick()
					var l weather.Location
					if err := s.Get(ctx, &l, id); err != nil {
						fail("Get(%d): %v", id, err)
						break
					}
					l.City = fmt.Sprintf("w%d-%d-s%d", w, id, step)
					if err := s.Update(ctx, &l); err != nil {
						fail("Update(%d): %v", id, err)
					}
					mine[id] = row{l.Continent, l.City}
				case op == 3:
					id := pick()
					var l weather.Location
					if err := s.Get(ctx, &l, id); err != nil {
						fail("Get(%d): %v", id, err)
						break
					}
					if err := s.Delete(ctx, &l); err != nil {
						fail("Delete(%d): %v", id, err)
					}
					delete(mine, id)
				case op == 4:
					c := weather.Continents[r.IntN(len(weather.Continents))]
					var ls []*weather.Location
					err := s.NewSelect().Model(&ls).WhereShardKey("continent", c).
						Where("id BETWEEN ? AND ?", w*1000, w*1000+999).Order("id").Scan(ctx)
					var want []int64
					for _, id := range ids {
						if mine[id].continent == c {
							want = append(want, id)
						}
					}
					var got []int64
					for _, l := range ls {
						got = append(got, l.ID)
					}
					if err != nil || !slices.Equal(got, want) {
						fail("select continent %s = %v, %v; want %v", c, got, err, want)
					}
				case op == 5:
					id := pick()
					var l weather.Location
					if err := s.Get(ctx, &l, id); err != nil {
						fail("Get(%d): %v", id, err)
						break
					}
					other := weather.Continents[(slices.Index(weather.Continents, l.Continent)+1)%len(weather.Continents)]
					l.Continent = other
					if err := s.Update(ctx, &l); !errors.Is(err, session.ErrShardKeyChanged) {
						fail("Update(%d) to continent %s = %v; want ErrShardKeyChanged", id, other, err)
					}
				default:
					id := pick()
					err := s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
						var l *weather.Location
						if err := u.Get(ctx, &l, id); err != nil {
							return err
						}
						l.City = fmt.Sprintf("w%d-%d-u%d", w, id, step)
						return nil
					})
					if err != nil {
						fail("RunInTx(%d): %v", id, err)
					}
					mine[id] = row{mine[id].continent, fmt.Sprintf("w%d-%d-u%d", w, id, step)}
				}
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	for i, id := range weather.Shards {
		var ls []*weather.Location
		if err := f.shards[id].NewSelect().Model(&ls).Order("id").Scan(ctx); err != nil {
			t.Fatal(err)
		}
		got := map[int64]row{}
		for _, l := range ls {
			got[l.ID] = row{l.Continent, l.City}
		}
		want := map[int64]row{}
		for _, m := range models {
			for k, v := range m {
				if v.continent == weather.Continents[i] {
					want[k] = v
				}
			}
		}
		if !maps.Equal(got, want) {
			t.Errorf("seed %d: shard %s holds %v; want %v", seed, id, got, want)
		}
	}
}
