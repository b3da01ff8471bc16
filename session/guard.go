package session

import (
	"context"
	"fmt"
	"sync/atomic"
)

// unitOp names an exported UnitOfWork method, for the concurrent-use error.
type unitOp uint32

const (
	opNone unitOp = iota
	opAdd
	opDelete
	opExpunge
	opGet
	opSelect
	opLoadRelation
	opRefresh
	opFlush
	opCommit
	opRollback
	opDB
	opExec
	opIdentityKey
	opExpire
)

var opNames = [...]string{
	opNone:         "another call",
	opAdd:          "Add",
	opDelete:       "Delete",
	opExpunge:      "Expunge",
	opGet:          "Get",
	opSelect:       "a select's Scan",
	opLoadRelation: "LoadRelation",
	opRefresh:      "Refresh",
	opFlush:        "Flush",
	opCommit:       "Commit",
	opRollback:     "Rollback",
	opDB:           "DB",
	opExec:         "a statement's Exec",
	opIdentityKey:  "IdentityKey",
	opExpire:       "ExpireAll",
}

func (op unitOp) String() string {
	if int(op) < len(opNames) {
		return opNames[op]
	}
	return opNames[opNone]
}

// guard detects a UnitOfWork used by two goroutines at once, as Go's
// sync.WaitGroup and pgx's busy connection do: every exported method
// enters it first and leaves it last. It costs two atomic adds per call.
//
// Why a counter and not a flag: a late caller increments it too before it
// gives up, so a call that enters while the late caller is still on its
// way out (the holder's next call, say its Commit) sees the count above
// one and fails as well; and a call that enters after the late caller has
// left sees the poison the late caller stored before leaving. Either way
// nothing commits once an overlap has happened.
type guard struct {
	busy   atomic.Int32
	op     atomic.Uint32         // the method holding the unit, for the message
	misuse atomic.Pointer[error] // the first overlap seen; poisons the unit
}

// enter starts an exported method: it fails with [ErrConcurrentUse] while
// another method runs (and poisons the unit), with the error that ended
// the unit once it has ended, and rolls the unit back (ending it) on the
// first call after an overlap. On success the caller must defer leave.
// Nothing but the guard's atomics is touched before the unit is held, so
// a late caller does not race with the holder.
func (u *UnitOfWork) enter(op unitOp) error {
	if u.g.busy.Add(1) != 1 {
		held := unitOp(u.g.op.Load())
		err := fmt.Errorf("%w: UnitOfWork used by two goroutines at once: %s while %s was running; a unit of work is "+
			"for one goroutine (begin one unit per goroutine, or serialize the calls); the unit is now unusable and "+
			"its Commit rolls back", ErrConcurrentUse, op, held)
		u.g.misuse.CompareAndSwap(nil, &err) // keep the first overlap
		u.g.busy.Add(-1)
		return err
	}
	u.g.op.Store(uint32(op))
	if p := u.g.misuse.Load(); p != nil && u.done == nil {
		// Why roll back here: the overlap already happened, and whatever
		// the two calls did to the unit's state may be torn. Nothing of
		// it may be committed.
		u.done = fmt.Errorf("%w: it was rolled back because %w", ErrUnitDone, *p)
		_ = u.abort(context.Background()) // the done error says why; a rollback failure adds nothing the caller can act on
	}
	if u.done != nil {
		u.leave()
		return u.done
	}
	if u.pending != nil && op != opRollback {
		u.leave()
		return u.pending
	}
	return nil
}

// leave ends an exported method started by enter. It leaves op as it is:
// a late caller that arrives while the holder is leaving still names it.
// On a nil unit (holdExec outside a unit) it does nothing.
func (u *UnitOfWork) leave() {
	if u != nil {
		u.g.busy.Add(-1)
	}
}

// holdExec starts a statement's Exec on s: inside a unit of work it enters
// the unit (opExec) and returns it, outside one it returns nil. Either way
// the caller must defer leave on what it returns.
func (s *Session) holdExec() (*UnitOfWork, error) {
	u := s.at.unitOf()
	if u == nil {
		return nil, nil
	}
	if err := u.enter(opExec); err != nil {
		return nil, err
	}
	return u, nil
}
