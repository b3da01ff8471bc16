package session_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// totalRows counts the rows of table on every shard.
func (f *fixture) totalRows(t *testing.T, table string) int {
	t.Helper()
	n := 0
	for _, id := range weather.Shards {
		n += len(f.rowsOn(t, id, table))
	}
	return n
}

// TestUnitConcurrentUseIsNamedAndCommitsNothing holds a Flush inside its
// ShardChooser while another goroutine calls Add: the late Add fails with
// ErrConcurrentUse naming both calls, and the unit is poisoned, so Commit
// fails and no row reaches any shard.
func TestUnitConcurrentUseIsNamedAndCommitsNothing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	entered, release := make(chan struct{}), make(chan struct{})
	var once sync.Once
	sc := chooser.ShardChooserFunc(func(ctx context.Context, tb *schema.Table, obj any) (identity.ShardID, error) {
		once.Do(func() {
			close(entered)
			<-release
		})
		return weather.ShardChooser(ctx, tb, obj)
	})
	s, err := session.New(f.shards, sc, chooser.All, weather.ByContinent, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	uow := s.Begin()
	defer uow.Rollback(ctx)
	if err := uow.Add(&weather.Location{ID: 1, Continent: "Asia", City: "Tokyo"}); err != nil {
		t.Fatal(err)
	}
	flushed := make(chan error, 1)
	go func() { flushed <- uow.Flush(ctx) }()
	<-entered // the Flush is inside the unit, in its ShardChooser
	lateErr := uow.Add(&weather.Location{ID: 2, Continent: "Europe", City: "Oslo"})
	close(release)
	ferr := <-flushed
	if !errors.Is(lateErr, session.ErrConcurrentUse) {
		t.Fatalf("Add during a Flush = %v; want ErrConcurrentUse", lateErr)
	}
	wantIn(t, lateErr, "two goroutines", "Add", "Flush")
	if ferr != nil {
		t.Logf("Flush = %v", ferr)
	}
	cerr := uow.Commit(ctx)
	if !errors.Is(cerr, session.ErrConcurrentUse) {
		t.Fatalf("Commit of a unit used by two goroutines = %v; want ErrConcurrentUse", cerr)
	}
	if n := f.totalRows(t, "weather_locations"); n != 0 {
		t.Errorf("%d locations committed by a unit used by two goroutines; want 0", n)
	}
	// The unit stays refused.
	if err := uow.Add(&weather.Location{ID: 3, Continent: "Asia", City: "Osaka"}); !errors.Is(err, session.ErrConcurrentUse) && !errors.Is(err, session.ErrUnitDone) {
		t.Errorf("Add after the misuse = %v; want ErrConcurrentUse or ErrUnitDone", err)
	}
}

// TestUnitConcurrentAddNeverLosesObjects has 8 goroutines add distinct
// objects to one unit, then commits. Whatever the interleaving, either
// every object is committed, or an Add and the Commit fail with
// ErrConcurrentUse and nothing is committed: never a nil Commit with
// objects missing (the old code lost thousands and returned nil, or
// panicked).
func TestUnitConcurrentAddNeverLosesObjects(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	const (
		rounds     = 6
		goroutines = 8
		per        = 150
	)
	misuses := 0
	for round := range rounds {
		uow := s.Begin()
		errs := make([]error, goroutines*per)
		var wg sync.WaitGroup
		for g := range goroutines {
			wg.Go(func() {
				for i := range per {
					n := g*per + i
					id := int64(round*goroutines*per + n + 1)
					errs[n] = uow.Add(&weather.Location{ID: id, Continent: weather.Continents[n%4], City: fmt.Sprint("c", id)})
				}
			})
		}
		wg.Wait()
		var addErr error
		for _, err := range errs {
			if err != nil {
				if !errors.Is(err, session.ErrConcurrentUse) {
					t.Fatalf("round %d: concurrent Add = %v; want nil or ErrConcurrentUse", round, err)
				}
				addErr = err
			}
		}
		before := f.totalRows(t, "weather_locations")
		cerr := uow.Commit(ctx)
		got := f.totalRows(t, "weather_locations") - before
		switch {
		case addErr == nil && cerr == nil:
			if got != goroutines*per {
				t.Fatalf("round %d: every Add and Commit returned nil but %d of %d objects were committed", round, got, goroutines*per)
			}
		case addErr != nil:
			misuses++
			if !errors.Is(cerr, session.ErrConcurrentUse) {
				t.Fatalf("round %d: an Add failed with %v, and Commit = %v; want ErrConcurrentUse", round, addErr, cerr)
			}
			if got != 0 {
				t.Fatalf("round %d: a unit used by two goroutines committed %d objects; want 0", round, got)
			}
		default:
			t.Fatalf("round %d: Commit = %v after Adds that all succeeded", round, cerr)
		}
	}
	t.Logf("%d of %d rounds caught the concurrent use", misuses, rounds)
}
