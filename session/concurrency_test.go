package session_test

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// phaseGauge is a Bun query hook that counts, per commit phase (the first
// words of the statement), how many statements run at once and the most
// that ever did. With a barrier of n, a statement of a phase waits before it
// is sent until n of its phase are in flight, or every statement the phase
// will have has arrived (so that a limit of n is reached when the code
// allows it, whatever the scheduling); a safety wait keeps a broken limit
// from hanging the test.
type phaseGauge struct {
	mu       sync.Mutex
	barrier  int
	total    map[string]int // statements of each phase the unit will run
	arrived  map[string]int
	inflight map[string]int
	max      map[string]int
}

func newPhaseGauge() *phaseGauge {
	g := &phaseGauge{}
	g.reset(0, nil)
	return g
}

func (g *phaseGauge) reset(barrier int, total map[string]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.barrier, g.total = barrier, total
	g.arrived, g.inflight, g.max = map[string]int{}, map[string]int{}, map[string]int{}
}

func commitPhase(query string) string {
	q := strings.ToUpper(strings.TrimSpace(query))
	for _, p := range []string{"PREPARE TRANSACTION", "COMMIT PREPARED", "ROLLBACK PREPARED"} {
		if strings.HasPrefix(q, p) {
			return p
		}
	}
	if q == "COMMIT" || q == "ROLLBACK" {
		return q
	}
	return ""
}

func (g *phaseGauge) BeforeQuery(ctx context.Context, e *bun.QueryEvent) context.Context {
	ph := commitPhase(e.Query)
	if ph == "" {
		return ctx
	}
	g.mu.Lock()
	g.arrived[ph]++
	g.inflight[ph]++
	g.max[ph] = max(g.max[ph], g.inflight[ph])
	safety := time.Now().Add(20 * time.Second) // not an assertion: a broken limit fails below
	for g.barrier > 1 && g.inflight[ph] < g.barrier && g.arrived[ph] < g.total[ph] && time.Now().Before(safety) {
		g.mu.Unlock()
		time.Sleep(time.Millisecond)
		g.mu.Lock()
	}
	g.mu.Unlock()
	return ctx
}

func (g *phaseGauge) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	if ph := commitPhase(e.Query); ph != "" {
		g.mu.Lock()
		g.inflight[ph]--
		g.mu.Unlock()
	}
}

func (g *phaseGauge) snapshot() (arrived, most map[string]int) {
	g.mu.Lock()
	defer g.mu.Unlock()
	arrived, most = map[string]int{}, map[string]int{}
	for k, v := range g.arrived {
		arrived[k] = v
	}
	for k, v := range g.max {
		most[k] = v
	}
	return arrived, most
}

// TestCommitPhasesHonourConcurrency: every commit phase of a unit of work
// that wrote on all four shards (one-phase COMMIT, ROLLBACK; two-phase
// PREPARE TRANSACTION, COMMIT PREPARED, ROLLBACK) runs at most
// WithConcurrency(n) statements at once, and n when it has that many.
func TestCommitPhasesHonourConcurrency(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	g := newPhaseGauge()
	shards := map[session.ShardID]bun.IDB{}
	for id, db := range f.shards {
		shards[id] = db.(*bun.DB).WithQueryHook(g)
	}
	next := int64(1000)
	// unit writes one location on every shard, then commits (or rolls back).
	unit := func(t *testing.T, s *session.Session, twoPhase, commit bool) {
		t.Helper()
		var opts []session.UnitOption
		if twoPhase {
			opts = append(opts, session.TwoPhase())
		}
		u := s.Begin(opts...)
		for _, c := range weather.Continents {
			next++
			if err := u.Add(&weather.Location{ID: next, Continent: c, City: "x"}); err != nil {
				t.Fatal(err)
			}
		}
		if err := u.Flush(ctx); err != nil {
			t.Fatal(err)
		}
		var err error
		if commit {
			err = u.Commit(ctx)
		} else {
			err = u.Rollback(ctx)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	for _, limit := range []int{1, 2} {
		s, err := session.New(shards, weather.ShardChooser, chooser.All, weather.ByContinent,
			session.WithShardOrder(weather.Shards...), session.WithConcurrency(limit))
		if err != nil {
			t.Fatal(err)
		}
		for _, c := range []struct{ twoPhase, commit bool }{{false, true}, {false, false}, {true, true}, {true, false}} {
			t.Run(fmt.Sprintf("WithConcurrency(%d)/twoPhase=%v/commit=%v", limit, c.twoPhase, c.commit), func(t *testing.T) {
				g.reset(0, nil)
				unit(t, s, c.twoPhase, c.commit) // warm-up (the decision table), and the phases' sizes
				g.reset(0, nil)
				unit(t, s, c.twoPhase, c.commit)
				total, _ := g.snapshot()
				g.reset(limit, total)
				unit(t, s, c.twoPhase, c.commit)
				arrived, most := g.snapshot()
				if len(arrived) == 0 {
					t.Fatal("no commit-phase statement seen; the hook sees nothing")
				}
				for ph, n := range arrived {
					want := min(limit, n)
					if ph == "COMMIT" && c.twoPhase {
						want = 1 // the coordinator's decision: one statement
					}
					if most[ph] != want {
						t.Errorf("%s: %d of %d statements ran at once at most; want %d", ph, most[ph], n, want)
					}
				}
				t.Logf("phases (statements, most at once): %v %v", arrived, most)
			})
		}
	}
}
