// Package fanout is bunshard's one fan-out primitive: it runs one task per
// shard (or per anything) concurrently, at most a given number at a time,
// with the failure policies the library needs. Package session runs every
// statement fan-out, every commit phase and the replica checks through it,
// package loader its relation queries, package migrate its per-shard
// migrations (bounded by its WithConcurrency) and cmd/bunshard its
// per-shard checks.
//
// It is internal: what it runs and the errors it returns are its callers'
// business; it knows nothing of shards, Bun or PostgreSQL.
package fanout

import (
	"context"
	"errors"

	"golang.org/x/sync/errgroup"
)

// ErrNoAnswer fills the error slot of a task that had not answered when
// [Run] returned: a fail-fast Run that did not wait returned at another
// task's failure, or a Detach Run returned at its context's end. It is
// joined with the context's cause.
var ErrNoAnswer = errors.New("no answer")

// Policy says how [Run] runs its tasks and when it returns.
type Policy struct {
	// Limit bounds how many tasks run at once; < 1 means no bound.
	Limit int
	// FailFast cancels the context the other tasks run under at the first
	// failure, and starts no more tasks: those get their context's cause as
	// their error without being called.
	FailFast bool
	// Wait, with FailFast, waits for the tasks under way after a failure
	// (they share state with the caller that must not change once Run has
	// returned). Without it a fail-fast Run returns at the first failure,
	// and the tasks left behind end on their own, writing nothing the
	// caller sees.
	Wait bool
	// Detach returns when ctx ends even though tasks are still under way;
	// those end on their own (a COMMIT, once sent, is not taken back), and
	// the tasks not started yet still start. The tasks get ctx without its
	// cancellation (context.WithoutCancel), since they may run past its end.
	Detach bool
}

type result struct {
	i   int
	err error
}

// Run runs task(ctx, i) for every i in [0, n), as p says, and returns each
// task's error in its slot, and the index of the first task that failed (in
// time order), or -1 when none did. A task whose error slot is filled by Run
// (not started after a failure; no answer) counts as failed.
//
// One task runs inline, with no goroutine, unless p.Detach: a
// single-shard statement is then as cheap as plain Bun. Several tasks each
// run on a goroutine of their own, the first included: running one inline
// would tie the caller to it if it hangs, past a sibling's fast failure (a
// fail-fast Run returns at that failure) or past ctx's end (a Detach Run
// returns then). Results come back on a buffered channel and only Run's own
// goroutine writes the slots, so a task left behind never blocks and never
// races with the caller.
func Run(ctx context.Context, n int, p Policy, task func(ctx context.Context, i int) error) (errs []error, first int) {
	errs = make([]error, n)
	first = -1
	if n == 0 {
		return errs, first
	}
	if n == 1 && !p.Detach {
		if errs[0] = task(ctx, 0); errs[0] != nil {
			first = 0
		}
		return errs, first
	}
	tctx, cancel := ctx, context.CancelFunc(func() {})
	if p.FailFast {
		tctx, cancel = context.WithCancel(ctx)
	}
	defer cancel() // a fail-fast Run that returns early stops what is left
	if p.Detach {
		tctx = context.WithoutCancel(ctx)
	}
	ch := make(chan result, n) // buffered: a task left behind never blocks
	start := func(i int) {
		growStack()
		if p.FailFast && tctx.Err() != nil { // a task failed, or ctx ended: start no more
			ch <- result{i, context.Cause(tctx)}
			return
		}
		err := task(tctx, i)
		if err != nil && p.FailFast {
			// Cancel here, before this task's limit slot frees, so the
			// launcher's next task sees it and does not start; the
			// receiving loop cancels too, but only after the slot is free.
			cancel()
		}
		ch <- result{i, err}
	}
	if p.Limit <= 0 || p.Limit >= n {
		// No bound to wait at: each task starts on its own goroutine, from
		// here. (A launcher goroutine and an errgroup, as below, cost a
		// goroutine more per fan-out: a Get asking every shard paid it.)
		for i := range n {
			go start(i)
		}
	} else {
		var g errgroup.Group
		g.SetLimit(p.Limit)
		// Why a goroutine starts the tasks: Go blocks at the limit, and
		// Run must be free to return at a failure or at ctx's end
		// meanwhile.
		go func() {
			for i := range n {
				g.Go(func() error { start(i); return nil })
			}
			_ = g.Wait() // errors travel on ch
		}()
	}
	answered := make([]bool, n)
	var done <-chan struct{}
	if p.Detach {
		done = ctx.Done()
	}
	for got := 0; got < n; got++ {
		var r result
		if done == nil { // a plain receive: a select costs more, per answer
			r = <-ch
		} else {
			select {
			case r = <-ch:
			case <-done:
				for ; got < n; got++ { // take the answers that are in
					select {
					case r := <-ch:
						errs[r.i], answered[r.i] = r.err, true
						if r.err != nil && first < 0 {
							first = r.i
						}
						continue
					default:
					}
					break
				}
				errs = noAnswer(ctx, errs, answered)
				if first < 0 {
					for i, ok := range answered {
						if !ok {
							first = i
							break
						}
					}
				}
				return errs, first
			}
		}
		errs[r.i], answered[r.i] = r.err, true
		if r.err == nil || first >= 0 {
			continue
		}
		first = r.i
		if p.FailFast {
			cancel()
			if !p.Wait {
				return noAnswer(ctx, errs, answered), first
			}
		}
	}
	return errs, first
}

// noAnswer fills the slots of the tasks that have not answered with
// ErrNoAnswer and ctx's cause (nil while ctx is live).
func noAnswer(ctx context.Context, errs []error, answered []bool) []error {
	for i, ok := range answered {
		if !ok {
			if cause := context.Cause(ctx); cause != nil {
				errs[i] = errors.Join(ErrNoAnswer, cause)
			} else {
				errs[i] = ErrNoAnswer
			}
		}
	}
	return errs
}

// growStack grows the calling goroutine's stack to at least 8 KiB while it
// is shallow. A task (a Bun statement through database/sql and the driver)
// needs more than the 4 KiB a goroutine starts with, and a stack that grows
// when deep costs a copy that walks every frame on it (about 40,000
// instructions for a Get's probe, measured with callgrind); grown here it
// copies one frame. CockroachDB's util/growstack does the same.
//
//go:noinline
func growStack() {
	var buf [4 << 10]byte
	use(buf[:])
}

//go:noinline
func use(b []byte) {}
