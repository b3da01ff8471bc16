package session

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/fanout"
)

// Commit flushes the unit, then commits the transaction of every shard it
// wrote on, and ends the unit. Shards it only read from are rolled back
// (there is nothing to commit there).
//
// Without [TwoPhase], each shard commits on its own, in parallel: if one
// fails, the others may already have committed, and a partial commit is
// possible. The error is then a *[CommitError] naming the shards that
// committed and those that did not. SQLAlchemy's ShardedSession behaves the
// same way without twophase=True (it commits the shards one after another
// and gives no account of which did).
//
// With TwoPhase, Commit is all or nothing, and does better than
// SQLAlchemy's twophase=True, which prepares and commits but leaves no
// record to recover from. The coordinator shard ([WithCoordinator]) holds
// the decision; its transaction is the unit's own when the unit wrote
// there, else one begun for the decision alone:
//
//  1. the coordinator's transaction inserts the decision record into its
//     bunshard_decisions table (not yet visible), with synchronous_commit
//     raised to on for that transaction if the server has it off;
//  2. every other shard the unit wrote on runs PREPARE TRANSACTION (in
//     parallel); if any fails, every shard rolls back and Commit returns a
//     *CommitError with Decision "";
//  3. the coordinator COMMITs, in one phase: that commit is the decision,
//     and returns only once its WAL is flushed;
//  4. each other shard runs COMMIT PREPARED (in parallel), and the
//     decision record is deleted.
//
// A failure in step 4 (a shard stopped, a connection lost) leaves that
// shard's transaction prepared: Commit returns a *CommitError with Decision
// "commit" listing it as Pending, and [Session.Recover] commits it later.
// When the coordinator's COMMIT fails in step 3, Commit asks the
// coordinator whether it happened: if not, every shard rolls back
// ([ErrAborted], Decision "abort"); if the coordinator cannot be asked,
// every shard is Pending and in doubt ([ErrInDoubt]) until Recover, which
// decides the same way. A crash of the process at any point is resolved by
// Recover. On a *bun.DB shard, a two-phase unit's transaction runs on a
// connection the unit holds (no COMMIT follows PREPARE TRANSACTION); see
// [UnitOfWork.DB].
//
// Every statement runs under ctx, and Commit returns by ctx's end (its
// deadline, or its cancellation for the statements whose answer Commit
// waits for without handing ctx to the driver: the COMMIT, COMMIT PREPARED
// and ROLLBACK PREPARED statements go on in the background once sent, and
// end when the shard answers). What a shard that does not answer in time
// (a frozen server, a lost network) does to the outcome depends on the
// phase; the error names the shard and matches ctx's error
// (context.DeadlineExceeded):
//   - before the decision (BEGIN, flush, the record, PREPARE): nothing
//     commits. Every shard is rolled back; one that cannot be reached may
//     keep its transaction prepared, listed as Pending, and Recover rolls
//     it back (no decision was committed). A ctx that ends before step 3
//     sends no decision.
//   - the decision (step 3): a coordinator that does not answer its COMMIT
//     leaves the outcome unknown: [ErrInDoubt], every shard Pending, and
//     Recover follows what the coordinator did.
//   - after the decision (step 4): the unit is committed; a shard that has
//     not answered its COMMIT PREPARED is Pending, Decision "commit", and
//     Recover commits it. A decision record left by a ctx that ended is
//     deleted by the next Recover.
//
// A flush error, or a shard whose transaction failed earlier in the unit
// (PostgreSQL aborted it, so it cannot commit), rolls back every shard and
// commits nothing.
//
// The unit lives on after a Commit that succeeded: its next statement on a
// shard begins a new transaction there, and its identity map is kept, its
// objects expired unless [ExpireOnCommit](false) was given. A Commit that
// failed leaves no transaction open (each shard is committed, rolled back,
// or prepared for Recover, as the error says), expunges every object (what
// the shards hold of them is uncertain), and makes the unit refuse work
// with [ErrRollbackPending] until Rollback is called.
func (u *UnitOfWork) Commit(ctx context.Context) error {
	if err := u.enter(opCommit); err != nil {
		return err
	}
	defer u.leave()
	err := u.commit(ctx)
	if err != nil {
		// Why not fail's abort when nothing is open: a partial commit ended
		// every transaction, and the Tokens of the objects inserted on the
		// shards that committed must stay (commitOnePhase cleared the
		// others').
		open := false
		for _, st := range u.txs {
			open = open || st.open
		}
		if open {
			_ = u.abort(ctx) // err says why; the rollback's own errors add nothing the caller can act on
		}
		if u.pending == nil {
			u.pending = fmt.Errorf("%w: %w", ErrRollbackPending, err)
		}
		u.expungeAll()
		u.inserted = nil
		u.closeTxs()
		return err
	}
	u.closeTxs()
	u.committed()
	return nil
}

func (u *UnitOfWork) commit(ctx context.Context) error {
	if err := u.flush(ctx); err != nil {
		return fmt.Errorf("session: commit: %w", err)
	}
	writers, readers := u.partition()
	// Readers too: a write statement that failed on a shard it had not
	// written on before leaves that shard a reader, and committing the
	// shards where the same statement succeeded would keep half of it
	// (one database rolls a failed statement back whole).
	for _, id := range slices.Concat(writers, readers) {
		if st := u.txs[id]; st.broken != nil {
			return &CommitError{TwoPhase: u.cfg.twoPhase, Failed: writers, Err: fmt.Errorf(
				"the unit's transaction on shard %s failed earlier (PostgreSQL has aborted it), so every shard was rolled back: %w",
				id, st.broken)}
		}
	}
	if u.folds() {
		return u.commitFoldedUnit(ctx, writers, readers) // foldtx.go
	}
	u.release(readers)
	if !u.cfg.twoPhase || len(writers) < 2 {
		return u.commitOnePhase(ctx, writers)
	}
	if u.s.cfg.observer == nil {
		return u.commitTwoPhase(ctx, writers)
	}
	ctx, end := u.s.observeTwoPhase(ctx, writers)
	err := u.commitTwoPhase(ctx, writers)
	end(err)
	return err
}

// partition splits the shards whose transaction is open into those the
// unit wrote on and those it only read from, each in shard order.
func (u *UnitOfWork) partition() (writers, readers []ShardID) {
	for _, id := range u.s.order {
		st := u.txs[id]
		switch {
		case !st.open:
		case st.wrote:
			writers = append(writers, id)
		default:
			readers = append(readers, id)
		}
	}
	return writers, readers
}

// release rolls back the transactions of shards the unit only read from.
// Their errors are ignored: nothing the unit did there needs keeping.
func (u *UnitOfWork) release(ids []ShardID) {
	for _, id := range ids {
		_ = u.txs[id].rollback(context.Background())
	}
}

// commitOnePhase commits each shard's transaction on its own, in parallel,
// under ctx: a ctx that has ended sends nothing and rolls every shard back,
// and a shard that does not answer by the end of ctx is reported, its
// outcome unknown, without waiting for it (see endTxs). A read-your-writes
// context (WithReadYourWrites) learns of each commit.
func (u *UnitOfWork) commitOnePhase(ctx context.Context, writers []ShardID) error {
	if err := ctx.Err(); err != nil {
		_ = u.abort(context.WithoutCancel(ctx))
		return &CommitError{Failed: writers, Err: fmt.Errorf("nothing was committed, every shard rolled back: %w", context.Cause(ctx))}
	}
	ends := make([]func() error, len(writers))
	for i, id := range writers {
		ends[i] = u.txs[id].ender(ctx, true)
	}
	errs := endTxs(ctx, u.s.cfg.concurrency, ends, true)
	var ok, failed []ShardID
	for i, id := range writers {
		u.txs[id].open = false
		if errs[i] == nil {
			ok = append(ok, id)
			u.s.wrote(ctx, id, u.s.shards[id])
		} else {
			failed = append(failed, id)
			errs[i] = &ShardError{Shard: id, Op: "commit", Err: errs[i]}
		}
	}
	if len(failed) == 0 {
		return nil
	}
	u.forgetInserts(failed)
	return &CommitError{Committed: ok, Failed: failed, Err: errors.Join(errs...)}
}

// gidPrefix starts the global id of every prepared transaction bunshard
// makes; Recover resolves only those.
const gidPrefix = "bunshard_"

// gid is the prepared-transaction id of the unit txid on shard id. The
// shard is part of it because ids are unique per PostgreSQL server, which
// may hold several shards' databases.
func gid(txid string, id ShardID) string { return gidPrefix + txid + "_" + string(id) }

// newTxID returns 32 hex digits naming one two-phase commit decided on
// the coordinator coord: 24 random ones, then coord's tag.
func newTxID(coord ShardID) string {
	var b [12]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails (Go 1.24+)
	return hex.EncodeToString(b[:]) + coordTag(coord)
}

// coordTag is the 8 hex digits that end the txid of every two-phase commit
// decided on the coordinator coord.
func coordTag(coord ShardID) string {
	return fmt.Sprintf("%08x", uint32(xxhash.Sum64String(string(coord))))
}

// commitTwoPhase commits the writers atomically; see Commit, and the
// protocol in decision.go.
func (u *UnitOfWork) commitTwoPhase(ctx context.Context, writers []ShardID) error {
	s := u.s
	coord := s.cfg.coordinator
	refuse := func(err error) error {
		_ = u.abort(ctx)
		return &CommitError{TwoPhase: true, Failed: writers, Err: err}
	}
	for _, id := range append(slices.Clone(writers), coord) {
		if _, ok := s.shards[id].(bun.Tx); ok {
			return refuse(fmt.Errorf("%w: TwoPhase needs each shard's handle to be a *bun.DB, but shard %s is a bun.Tx "+
				"(COMMIT PREPARED cannot run inside a transaction)", ErrInvalidArgument, id))
		}
	}
	if err := s.decisions.ensure(ctx, s); err != nil {
		return refuse(err)
	}
	txid := newTxID(coord)
	for _, id := range writers {
		if g := gid(txid, id); len(g) > 199 {
			return refuse(fmt.Errorf("%w: shard id %q makes the prepared-transaction id %d bytes long; PostgreSQL allows 199",
				ErrInvalidArgument, id, len(g)))
		}
	}
	u.hook("txid", ShardID(txid))
	ctx = s.phase(ctx, PhasePrepare)

	// The coordinator's transaction: the unit's own when it wrote there,
	// else one that holds only the decision record.
	local := slices.Contains(writers, coord)
	others := slices.DeleteFunc(slices.Clone(writers), func(id ShardID) bool { return id == coord })
	ct := u.txs[coord]
	if !local {
		ct = &shardTx{}
		if err := ct.begin(WithShardID(ctx, coord), coord, s.shards[coord], nil, true); err != nil {
			return refuse(&ShardError{Shard: coord, Op: "begin", Err: withCtxErr(ctx, err)})
		}
	}
	fail := func(err error) error {
		_ = ct.end(ctx, false)
		return refuse(err)
	}

	// Step 1: the record, inside the coordinator's transaction.
	if err := s.decisions.record(WithShardID(ctx, coord), ct.db(), txid, writers); err != nil {
		return fail(&ShardError{Shard: coord, Op: "record decision", Err: withCtxErr(ctx, err)})
	}

	// Step 2: PREPARE TRANSACTION on the other shards, in parallel, each
	// under ctx: a shard that does not answer by ctx's deadline fails the
	// commit, which is not decided yet.
	errs, _ := fanout.Run(ctx, len(others), fanout.Policy{Limit: s.cfg.concurrency}, func(ctx context.Context, i int) error {
		id := others[i]
		if err := u.txs[id].prepare(WithShardID(ctx, id), gid(txid, id)); err != nil {
			return &ShardError{Shard: id, Op: "prepare", Err: withCtxErr(ctx, err)}
		}
		return nil
	})
	if err := errors.Join(errs...); err != nil || ctx.Err() != nil {
		if err == nil { // every shard prepared, but ctx ended: no decision is sent
			err = fmt.Errorf("the context ended before the decision: %w", context.Cause(ctx))
		}
		// Why under ctx: the commit has failed and its caller must hear so
		// by ctx's end. The rollbacks are sent even when ctx has ended, and
		// those not answered by then finish on their own (see endTxs); a
		// shard that cannot answer (frozen, unreachable) keeps its
		// transaction prepared, listed as Pending, and Recover rolls it back,
		// since no decision was committed.
		_ = ct.end(ctx, false) // the record goes with it: no commit is possible
		// A PREPARE that PostgreSQL answered with an error left nothing
		// prepared; one whose connection broke or timed out may have.
		var maybe []ShardID
		for i, id := range others {
			if errs[i] == nil || sqlState(errs[i]) == "" {
				maybe = append(maybe, id)
			}
		}
		left := u.rollbackPrepared(ctx, txid, maybe)
		_ = u.abort(ctx)
		return &CommitError{TwoPhase: true, Failed: writers, Pending: left, Err: fmt.Errorf(
			"no decision was made, every shard rolled back (Recover rolls back those still prepared): %w", err)}
	}
	u.hook("prepared", "")
	ctx = s.phase(ctx, PhaseDecide)

	// Step 3: the decision is the coordinator's COMMIT, bounded by ctx: a
	// coordinator that does not answer by then leaves the outcome unknown,
	// and Commit returns at once, in doubt, instead of waiting for it
	// (the COMMIT, once sent, goes on in the background; see endTxs).
	if err := ct.end(ctx, true); err != nil {
		err = &ShardError{Shard: coord, Op: "commit decision", Err: err}
		if ctx.Err() != nil { // no time left to ask the coordinator
			return &CommitError{TwoPhase: true, Pending: writers, Err: fmt.Errorf(
				"%w: the coordinator %s did not answer its COMMIT (the decision) in time: %w", ErrInDoubt, coord, err)}
		}
		// Whatever the error says, the COMMIT may have happened (a
		// connection can break, or a backend be terminated, after the
		// commit record): the probe tells, once the transaction has ended.
		d, perr := s.decisions.probe(ctx, s, []string{txid})
		if perr != nil {
			return &CommitError{TwoPhase: true, Pending: writers, Err: fmt.Errorf("%w: %w",
				ErrInDoubt, errors.Join(err, perr))}
		}
		if d[txid] != decisionCommit {
			left := u.rollbackPrepared(ctx, txid, others)
			u.unplace()
			u.forgetInserts(writers)
			return &CommitError{TwoPhase: true, Failed: writers, Pending: left, Decision: decisionAbort, Err: fmt.Errorf(
				"%w: the coordinator %s did not commit, so every shard rolled back: %w", ErrAborted, coord, err)}
		}
	}
	u.hook("decided", "")
	ctx = s.phase(ctx, PhaseCommitPrepared)
	if local {
		s.wrote(ctx, coord, s.shards[coord]) // a read-your-writes context learns of it
	}

	// Step 4: COMMIT PREPARED on the other shards, in parallel, bounded by
	// ctx. The unit is committed; a shard that does not answer by ctx's end
	// is reported Pending, and Recover commits it (the COMMIT PREPARED
	// already sent may well do it first).
	ends := make([]func() error, len(others))
	for i, id := range others {
		bg := WithShardID(context.WithoutCancel(ctx), id)
		ends[i] = func() error {
			u.hook("commit", id)
			// false, nil: a concurrent Recover committed it, following the
			// decision.
			_, err := finishPrepared(bg, s.shards[id], "COMMIT PREPARED", gid(txid, id))
			return err
		}
	}
	cerrs := endTxs(ctx, u.s.cfg.concurrency, ends, true)
	var committed, pending []ShardID
	for _, id := range writers {
		i := slices.Index(others, id)
		switch {
		case i >= 0 && cerrs[i] != nil:
			pending = append(pending, id)
			cerrs[i] = &ShardError{Shard: id, Op: "commit prepared", Err: cerrs[i]}
		case i >= 0:
			s.wrote(ctx, id, s.shards[id])
			fallthrough
		default:
			committed = append(committed, id)
		}
	}
	if len(pending) > 0 {
		return &CommitError{TwoPhase: true, Committed: committed, Pending: pending, Decision: decisionCommit,
			Err: fmt.Errorf("the decision is commit and Session.Recover will commit the rest: %w", errors.Join(cerrs...))}
	}
	// The record has done its job; one left behind (this fails, or ctx has
	// ended) is removed by the next Recover.
	_ = s.decisions.forget(ctx, s, txid)
	return nil
}

// rollbackPrepared rolls back the unit's prepared transactions on ids, in
// parallel, and returns the shards where that failed or had no answer by
// ctx's end (Recover rolls them back later). The ROLLBACK PREPAREDs are
// sent even when ctx has ended, and finish in the background (see endTxs).
func (u *UnitOfWork) rollbackPrepared(ctx context.Context, txid string, ids []ShardID) []ShardID {
	ctx = u.s.phase(ctx, PhaseRollbackPrepared)
	ends := make([]func() error, len(ids))
	for i, id := range ids {
		bg := WithShardID(context.WithoutCancel(ctx), id)
		ends[i] = func() error {
			_, err := finishPrepared(bg, u.s.shards[id], "ROLLBACK PREPARED", gid(txid, id))
			return err
		}
	}
	errs := endTxs(ctx, u.s.cfg.concurrency, ends, false)
	var left []ShardID
	for i, id := range ids {
		if errs[i] != nil {
			left = append(left, id)
		}
	}
	return left
}

// hook calls the test hook, if any, at a stage of a two-phase commit.
func (u *UnitOfWork) hook(stage string, id ShardID) {
	if h := u.s.cfg.hook; h != nil {
		h(stage, id)
	}
}

// Rollback rolls back the transaction of every shard the unit touched,
// and the unit lives on: its next statement begins new transactions.
// Objects it inserted in the rolled-back transaction lose the shard on
// their Token (their rows are gone); they, the objects added and not yet
// flushed, and the objects on shards the transaction wrote on are
// expunged; the other tracked objects are expired, their unflushed changes
// discarded (see [UnitOfWork.ExpireAll]), and pending Deletes are
// cancelled, as SQLAlchemy's rollback does. Rollback with no transaction
// open (nothing ran since the last Commit) only drops the objects added
// since and returns nil, so `defer uow.Rollback(ctx)` is safe after a
// Commit and leaves the identity map as Commit left it; after a failure (see [ErrRollbackPending]) it
// only makes the unit usable again: the shards were rolled back then.
// Failures to roll back (a shard unreachable: PostgreSQL rolls back on its
// own when the connection dies) are reported as *ShardError values, joined.
func (u *UnitOfWork) Rollback(ctx context.Context) error {
	if err := u.enter(opRollback); err != nil {
		if errors.Is(err, ErrUnitDone) {
			return nil
		}
		return err
	}
	defer u.leave()
	if u.pending != nil {
		u.pending = nil
		return nil
	}
	return u.abort(ctx)
}

// abort rolls back every open transaction, undoes the placements and
// insert Tokens of the unit, and updates its identity map (rolledBack).
func (u *UnitOfWork) abort(ctx context.Context) error {
	u.unplace()
	u.forgetInserts(nil)
	var open []ShardID
	written := map[ShardID]bool{}
	for _, id := range u.s.order {
		if st := u.txs[id]; st.open {
			open = append(open, id)
			if st.wrote {
				written[id] = true
			}
		}
	}
	if len(open) == 0 && len(u.inserted) == 0 {
		// Nothing was begun since the last Commit (a deferred Rollback after
		// it): stored objects stay as they are; added ones are dropped.
		for _, e := range u.tracked {
			if e.state == statePending {
				u.detach(e)
			}
		}
		u.compact()
		u.closeTxs()
		return nil
	}
	errs, _ := fanout.Run(ctx, len(open), fanout.Policy{Limit: u.s.cfg.concurrency}, func(ctx context.Context, i int) error {
		id := open[i]
		if err := u.txs[id].rollback(ctx); err != nil {
			return &ShardError{Shard: id, Op: "rollback", Err: err}
		}
		return nil
	})
	u.rolledBack(written)
	u.closeTxs()
	return errors.Join(errs...)
}

// forgetInserts clears the Token of the objects the unit inserted on the
// given shards (all shards when ids is nil), whose rows are gone.
func (u *UnitOfWork) forgetInserts(ids []ShardID) {
	for _, e := range u.inserted {
		if ids != nil && !slices.Contains(ids, e.shard) {
			continue
		}
		if tok := e.mi.token(e.val()); tok != nil {
			tok.SetShard("")
		}
	}
}
