package session

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/fanout"
)

// shardFunc runs one shard's part of a statement. i is the shard's index in
// the route, so results go to slot i with no locking.
type shardFunc func(ctx context.Context, i int, id ShardID, db bun.IDB) error

// fanOut runs fn, a read, on every shard of ids at the session's place
// (replicas may serve it; a write uses fanOutWrites or each), fail-fast: the
// first error cancels the others (through ctx) and is returned as a
// *ShardError at once, without waiting for them unless the place says so (a
// unit of work; see failFast). A single shard runs
// inline, with no goroutine, which keeps single-shard statements as cheap as
// plain Bun. The ctx each call sees is pinned to its shard, so Bun hooks and
// relation queries know where they run.
func (s *Session) fanOut(ctx context.Context, ids []ShardID, op string, fn shardFunc) error {
	return s.fanOutPolicy(ctx, ids, op, false, fn)
}

// fanOutPolicy is fanOut with a failure policy: with partial set, every
// shard runs to the end and, when some (not all) fail, the error is a
// *PartialError naming them while the others' results stand.
func (s *Session) fanOutPolicy(ctx context.Context, ids []ShardID, op string, partial bool, fn shardFunc) error {
	if len(ids) == 0 { // criteria that match no row (mergeCriteria): nothing to run
		return nil
	}
	return s.scatter(ctx, ids, op, partial, s.at.read(fn)) // a read: replicas may serve it
}

// fanOutWrites runs a write on every shard of ids, fail-fast as fanOut, on
// the shards themselves or a unit's transactions: a write never takes the
// read path (place.read), so it never reaches a replica.
func (s *Session) fanOutWrites(ctx context.Context, ids []ShardID, op string, fn shardFunc) error {
	if len(ids) == 0 {
		return nil
	}
	return s.scatter(ctx, ids, op, false, fn)
}

// scatter runs fn on every shard of ids (at least one) as fanOutPolicy
// says, fn being already what runs at the session's place.
func (s *Session) scatter(ctx context.Context, ids []ShardID, op string, partial bool, fn shardFunc) error {
	if u := s.at.unitOf(); u != nil {
		end, err := u.statement(ctx) // autoflush.go
		if err != nil {
			return err
		}
		defer end()
	}
	if partial && len(ids) > 1 {
		err := s.each(ctx, ids, op, fn)
		if err == nil {
			return nil
		}
		var failed []error
		var ok []ShardID
		for _, id := range ids {
			e := shardErr(err, id)
			if e != nil {
				failed = append(failed, e)
			} else {
				ok = append(ok, id)
			}
		}
		if len(ok) == 0 {
			return err
		}
		return &PartialError{Errors: failed, Shards: ok}
	}
	if len(ids) == 1 {
		id := ids[0]
		if err := s.run(ctx, 0, id, fn); err != nil {
			return &ShardError{Shard: id, Op: op, Err: err}
		}
		return nil
	}
	return s.failFast(ctx, ids, op, fn)
}

// failFast runs fn on the shards of ids (more than one) concurrently, at
// most s.cfg.concurrency at a time (0: all at once), and returns the first
// error as soon as it happens, cancelling the rest; shards not started by
// then are not started.
//
// Why it does not wait for the cancelled shards: a shard that hangs (a
// frozen server, a network that drops packets) may never notice the
// cancellation. pgdriver interrupts a statement at its context's deadline
// only, never at a cancel, so waiting would make the fan-out as slow as the
// hung shard's driver timeout, or hang it for good with timeouts off. The
// shards left behind are cancelled and end when their driver call does;
// they write only into their own result slot, which the caller does not
// read after an error. That holds for reads, not for a unit of work's
// statements: those share the unit's transactions and write into its
// objects (keys returned by an INSERT), which must not change after Flush
// or Commit has returned. A unit's fan-outs therefore wait for every shard
// (place.waits); each statement still ends at its context's deadline.
//
// Every shard runs on a goroutine of its own, the first one included
// (fanout.Run): running one inline would tie the caller to that shard if
// it hangs.
func (s *Session) failFast(ctx context.Context, ids []ShardID, op string, fn shardFunc) error {
	if u := s.at.unitOf(); u != nil {
		if tasks := u.foldTasks(ctx, ids); tasks != nil { // shards sharing a transaction run one after another
			errs, first := s.runTasks(ctx, ids, tasks, true, fn)
			if first < 0 {
				return nil
			}
			return &ShardError{Shard: ids[first], Op: op, Err: errs[first]}
		}
	}
	errs, first := fanout.Run(ctx, len(ids), fanout.Policy{Limit: s.cfg.concurrency, FailFast: true, Wait: s.at.waits()},
		func(ctx context.Context, i int) error { return s.run(ctx, i, ids[i], fn) })
	if first < 0 {
		return nil
	}
	// Never nil: a shard not started because ctx ended is missing its part.
	return &ShardError{Shard: ids[first], Op: op, Err: errs[first]}
}

// run runs one shard's part of a statement on the shard's handle (a unit of
// work's transaction for a unit's view), with ctx pinned to the shard. A
// unit of work notes the failure: its transaction on that shard may be
// aborted.
func (s *Session) run(ctx context.Context, i int, id ShardID, fn shardFunc) error {
	var end func(error)
	if s.cfg.observer != nil {
		ctx, end = s.startShard(ctx, id)
	}
	db, err := s.conn(ctx, id)
	if err == nil {
		err = fn(WithShardID(ctx, id), i, id, db)
	}
	if err != nil {
		err = withCtxErr(ctx, err)
	}
	if end != nil {
		end(err)
	}
	if err != nil {
		s.at.failed(id, err)
	}
	return err
}

// withCtxErr adds to err, the error of a statement run under ctx, that ctx
// has ended, if it has and err does not say so: a driver that stops a
// statement at ctx's deadline may say only "i/o timeout" (pgdriver does),
// and errors.Is(err, context.DeadlineExceeded) should hold. A deadline that
// has passed counts even before ctx's own timer has fired: the driver's
// socket deadline, set to the same instant, may fire first.
func withCtxErr(ctx context.Context, err error) error {
	cerr := ctx.Err()
	if cerr != nil {
		cerr = context.Cause(ctx)
	} else if d, ok := ctx.Deadline(); ok && !time.Now().Before(d) {
		cerr = context.DeadlineExceeded
	}
	if cerr == nil || errors.Is(err, cerr) {
		return err
	}
	return fmt.Errorf("%w: %w", cerr, err)
}

// conn returns the handle statements on shard id run on: the shard's
// database, or for a unit of work's view the unit's transaction on it
// (begun on first use).
func (s *Session) conn(ctx context.Context, id ShardID) (bun.IDB, error) {
	return s.at.conn(ctx, id)
}

// each runs fn on every shard of ids without cancelling on failure (writes
// must not be cut off half-way, and Ping wants every answer) and returns all
// errors joined, sorted by shard.
func (s *Session) each(ctx context.Context, ids []ShardID, op string, fn shardFunc) error {
	if len(ids) == 0 {
		return nil
	}
	if u := s.at.unitOf(); u != nil {
		end, err := u.statement(ctx) // autoflush.go
		if err != nil {
			return err
		}
		defer end()
	}
	var errs []error
	if tasks := s.unitFoldTasks(ctx, ids); tasks != nil { // shards sharing a transaction run one after another
		errs, _ = s.runTasks(ctx, ids, tasks, false, fn)
		for i, err := range errs {
			if err != nil {
				errs[i] = &ShardError{Shard: ids[i], Op: op, Err: err}
			}
		}
	} else {
		errs, _ = fanout.Run(ctx, len(ids), fanout.Policy{Limit: s.cfg.concurrency}, func(ctx context.Context, i int) error {
			if err := s.run(ctx, i, ids[i], fn); err != nil {
				return &ShardError{Shard: ids[i], Op: op, Err: err}
			}
			return nil
		})
	}
	if len(ids) == 1 {
		return errs[0]
	}
	return joinSorted(errs)
}

// shardErr finds the *ShardError of shard id inside a joined error.
func shardErr(err error, id ShardID) error {
	for _, e := range err.(interface{ Unwrap() []error }).Unwrap() {
		if se, ok := e.(*ShardError); ok && se.Shard == id {
			return se
		}
	}
	return nil
}
