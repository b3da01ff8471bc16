package session

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/fanout"
)

// RunInTx runs fn in a new unit of work (begun with opts, as [Session.Begin]
// takes them) and always ends the unit, as Bun's RunInTx and pgx's BeginFunc
// end their transaction: when fn returns nil, RunInTx commits the unit
// (Commit flushes it first) and returns Commit's error; when fn returns an
// error, RunInTx rolls the unit back and returns fn's error (joined with the
// rollback's, if that failed too); when fn panics (or calls runtime.Goexit),
// RunInTx rolls the unit back and lets the panic go on. fn must not keep the
// unit, or objects' pending changes, past its return; if it commits the
// unit itself, the Commit that follows commits what fn did after that.
//
// Only what fn runs through uow is inside the unit: statements run on s
// itself (s.Insert, s.NewUpdate, ...) or on s.DB(id) autocommit and stay
// written when the unit rolls back, as a statement on the *bun.DB does
// inside Bun's RunInTx.
//
// A nil fn is [ErrInvalidArgument], and nothing is begun.
//
// The rollback runs even when ctx has ended (it is what frees the shards'
// connections): it ignores ctx's cancellation.
func (s *Session) RunInTx(ctx context.Context, opts []UnitOption, fn func(ctx context.Context, uow *UnitOfWork) error) error {
	if fn == nil {
		return fmt.Errorf("%w: RunInTx: fn is nil; pass the function to run in the unit of work", ErrInvalidArgument)
	}
	u := s.Begin(opts...)
	ended := false
	defer func() {
		if !ended { // fn panicked or called runtime.Goexit
			_ = u.Rollback(context.WithoutCancel(ctx))
		}
	}()
	err := fn(ctx, u)
	ended = true
	if err != nil {
		if rerr := u.Rollback(context.WithoutCancel(ctx)); rerr != nil {
			return errors.Join(err, rerr)
		}
		return err
	}
	return u.Commit(ctx)
}

// OpenUnits returns how many units of work begun on the session (or on any
// of its views) hold transactions: they have begun one on some shard and
// have not yet committed or rolled it back (a failed Flush rolls back). Each holds one
// connection per shard it touched, and keeps it until it ends.
//
// A unit that is dropped without Commit or Rollback is never ended: the
// garbage collector does not roll it back, because a transaction the
// program still holds through [UnitOfWork.DB] could be rolled back under
// it. Its connections stay taken for the life of the process. OpenUnits is
// how to notice that: under a steady load it should go back to zero between
// requests (a test or a metrics gauge can check). [Session.RunInTx], or a
// `defer uow.Rollback(ctx)` right after Begin, makes it impossible.
func (s *Session) OpenUnits() int { return int(s.units.Load()) }

// beginTx begins a transaction on db and returns it, or returns ctx's error
// as soon as ctx ends, whichever comes first; a ctx that has ended already
// sends nothing.
//
// Why a goroutine and WithoutCancel: the transaction belongs to a unit of
// work and must outlive the statement that began it, whose context may end
// with it (a fan-out's, or one request step's), but database/sql rolls a
// transaction back when the context given to BeginTx ends. So BeginTx gets
// a context that never ends, and the wait for its answer is bounded by ctx
// here instead: a BEGIN on a shard that hangs returns at ctx's deadline (or
// cancellation) like any other statement. The goroutine left behind then
// rolls back the transaction if it is begun after all, and ends when the
// driver call does.
func beginTx(ctx context.Context, db bun.IDB, opts *sql.TxOptions) (bun.Tx, error) {
	if err := ctx.Err(); err != nil {
		return bun.Tx{}, context.Cause(ctx)
	}
	type result struct {
		tx  bun.Tx
		err error
	}
	ch := make(chan result, 1)
	go func() {
		tx, err := db.BeginTx(context.WithoutCancel(ctx), opts)
		ch <- result{tx, err}
	}()
	select {
	case r := <-ch:
		return r.tx, r.err
	case <-ctx.Done():
		go func() {
			if r := <-ch; r.err == nil {
				_ = r.tx.Rollback()
			}
		}()
		return bun.Tx{}, context.Cause(ctx)
	}
}

// endTxs runs ends, the calls that commit (commit set) or roll back the
// transactions (see shardTx.ender), in parallel, at most limit at a time
// (< 1: no bound), and returns each one's error, in order. It returns when
// every shard has answered or when ctx ends, whichever comes first; a shard
// that has not answered by then gets an error wrapping ctx's that says its
// outcome is unknown (the COMMIT was sent, or will be: the calls not
// started yet still run). The caller checks ctx before: endTxs sends even
// when ctx has ended.
//
// Why not database/sql's Commit alone: it takes no context (pgdriver sends
// COMMIT with context.Background), so a shard that hangs would hold the
// caller until the driver's read timeout, or for good with timeouts off.
// The calls of shards that had not answered end when their driver call
// does (fanout.Policy.Detach).
func endTxs(ctx context.Context, limit int, ends []func() error, commit bool) []error {
	op := "ROLLBACK"
	if commit {
		op = "COMMIT"
	}
	errs, _ := fanout.Run(ctx, len(ends), fanout.Policy{Limit: limit, Detach: true}, func(_ context.Context, i int) error {
		return ends[i]()
	})
	for i, err := range errs {
		if errors.Is(err, fanout.ErrNoAnswer) {
			errs[i] = fmt.Errorf("%s sent, no answer before the context ended, outcome unknown: %w", op, context.Cause(ctx))
		}
	}
	return errs
}
