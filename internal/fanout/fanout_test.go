package fanout_test

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"

	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/internal/fanout"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// gauge tracks how many tasks run at once, and the most ever.
type gauge struct{ now, max atomic.Int64 }

func (g *gauge) enter() {
	n := g.now.Add(1)
	for {
		m := g.max.Load()
		if n <= m || g.max.CompareAndSwap(m, n) {
			return
		}
	}
}

func (g *gauge) leave() { g.now.Add(-1) }

// TestLimit: at most Limit tasks run at once, and with enough tasks exactly
// Limit do (each task waits until Limit are in, or all n have started), for
// every policy.
func TestLimit(t *testing.T) {
	for _, p := range []fanout.Policy{{}, {FailFast: true}, {FailFast: true, Wait: true}, {Detach: true}} {
		for _, limit := range []int{1, 2, 3} {
			const n = 7
			var g gauge
			var started atomic.Int64
			var mu sync.Mutex
			cond := sync.NewCond(&mu)
			p.Limit = limit
			errs, first := fanout.Run(context.Background(), n, p, func(context.Context, int) error {
				g.enter()
				defer g.leave()
				s := started.Add(1)
				mu.Lock()
				cond.Broadcast()
				// Wait until limit tasks are in together (or the last
				// round, which may be smaller, has started).
				for g.now.Load() < int64(limit) && started.Load() < n && s <= n-int64(n%limit) {
					cond.Wait()
				}
				mu.Unlock()
				return nil
			})
			if first != -1 || errors.Join(errs...) != nil {
				t.Fatalf("%+v: Run = %v, %d; want no error", p, errs, first)
			}
			if got := g.max.Load(); got != int64(limit) {
				t.Errorf("%+v: %d tasks ran at once at most; want %d", p, got, limit)
			}
		}
	}
}

// TestFailFastReturnsAtFirstFailure: a fail-fast Run that does not wait
// returns at a failure while another task hangs; the hung task saw its
// context cancelled, and tasks not started are never called.
func TestFailFastReturnsAtFirstFailure(t *testing.T) {
	release := make(chan struct{})
	var calls atomic.Int64
	boom := errors.New("boom")
	hung := make(chan error, 1)
	in := make(chan struct{})
	errs, first := fanout.Run(context.Background(), 5, fanout.Policy{Limit: 2, FailFast: true}, func(ctx context.Context, i int) error {
		calls.Add(1)
		switch i {
		case 0:
			close(in)
			<-release // hangs until the test lets it go, after Run returned
			hung <- ctx.Err()
			return ctx.Err()
		case 1:
			<-in // fail only once task 0 is under way
			return boom
		}
		return nil
	})
	close(release)
	if first != 1 || !errors.Is(errs[1], boom) {
		t.Fatalf("Run = %v, first %d; want boom from task 1", errs, first)
	}
	if !errors.Is(errs[0], fanout.ErrNoAnswer) {
		t.Errorf("errs[0] = %v; want ErrNoAnswer for the hung task", errs[0])
	}
	if err := <-hung; !errors.Is(err, context.Canceled) {
		t.Errorf("the hung task's context: %v; want cancelled", err)
	}
	if n := calls.Load(); n > 2+1 {
		t.Errorf("%d tasks called; want at most 3 (2 under way, maybe one started before the cancel)", n)
	}
}

// TestFailFastWaits: with Wait, Run returns only once the task under way
// has answered.
func TestFailFastWaits(t *testing.T) {
	var answered atomic.Bool
	in := make(chan struct{})
	errs, first := fanout.Run(context.Background(), 2, fanout.Policy{FailFast: true, Wait: true}, func(ctx context.Context, i int) error {
		if i == 1 {
			<-in // fail only once task 0 is under way
			return errors.New("boom")
		}
		close(in)
		<-ctx.Done() // ends only when cancelled by task 1's failure
		answered.Store(true)
		return ctx.Err()
	})
	if !answered.Load() {
		t.Fatal("Run returned before task 0 answered; want it to wait")
	}
	if first != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Errorf("Run = %v, first %d; want task 1 first and task 0 cancelled", errs, first)
	}
}

// TestDetach: a Detach Run returns at ctx's end with ErrNoAnswer for the
// task that has not answered, which goes on and finishes; with a limit, a
// task not started yet still runs.
func TestDetach(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	release := make(chan struct{})
	var done sync.WaitGroup
	done.Add(3)
	var ran [3]atomic.Bool
	returned := make(chan struct{})
	go func() { <-release; cancel() }()
	errs, first := fanout.Run(ctx, 3, fanout.Policy{Limit: 2, Detach: true}, func(tctx context.Context, i int) error {
		defer done.Done()
		if i == 0 {
			close(release) // ctx ends while this task runs
			<-returned     // and it answers only after Run has returned
		}
		if tctx.Err() != nil {
			t.Errorf("task %d: its context ended; a Detach task's never does", i)
		}
		ran[i].Store(true)
		return nil
	})
	close(returned)
	done.Wait()
	for i := range ran {
		if !ran[i].Load() {
			t.Errorf("task %d never ran; want every task run even after ctx ended", i)
		}
	}
	if first != 0 || !errors.Is(errs[0], fanout.ErrNoAnswer) || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("Run = %v, first %d; want task 0 without an answer (ErrNoAnswer, context.Canceled)", errs, first)
	}
	for i, err := range errs {
		if err != nil && !errors.Is(err, fanout.ErrNoAnswer) && !errors.Is(err, context.Canceled) {
			t.Errorf("errs[%d] = %v; want nil or ErrNoAnswer with the cause", i, err)
		}
	}
}

// TestSingleInline: one task runs under the caller's own context (no
// goroutine, no derived context); with Detach it does not.
func TestSingleInline(t *testing.T) {
	ctx := context.WithValue(context.Background(), ctxKey{}, 1)
	var got context.Context
	fanout.Run(ctx, 1, fanout.Policy{FailFast: true}, func(c context.Context, _ int) error { got = c; return nil })
	if got != ctx {
		t.Error("a single task got a derived context; want the caller's, inline")
	}
	fanout.Run(ctx, 1, fanout.Policy{Detach: true}, func(c context.Context, _ int) error { got = c; return nil })
	if got == ctx {
		t.Error("a single Detach task got the caller's context; want one without its cancellation, on a goroutine")
	}
}

type ctxKey struct{}
