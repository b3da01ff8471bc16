package session

import (
	"cmp"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/bunshard/bunshard/identity"
)

// The sentinel errors of package session. Every error the session returns
// names the model, shard, column or option at fault; these sentinels let
// callers branch with errors.Is.
var (
	// ErrUnknownShard is returned when a statement option, the context, a
	// Using view or a chooser names a shard the session was not built with,
	// or a chooser.Splitter puts values on a shard outside the statement's
	// route. It is never turned into a silent fan-out.
	ErrUnknownShard = errors.New("session: unknown shard")

	// ErrNoShard is returned when a chooser answered chooser.None, or a
	// ShardChooser returned an empty shard id: the statement would go nowhere;
	// also when a chooser.Splitter puts a declared value on no shard, which
	// would lose its rows.
	ErrNoShard = errors.New("session: chooser chose no shard")

	// ErrPinConflict is returned by Insert, Update and Delete of objects,
	// and by a unit of work's Flush and Commit, before anything is sent, when
	// a statement is pinned to one shard (a statement option, a Using view or
	// the context) but the ShardChooser places an object on another: the pin
	// would write the row where its own shard's reads never look. The error
	// names the model, the object, the pinned shard and what pinned it, and
	// the chooser's shard. [PinWins] (for a unit, [UnitPinWins]) lets the pin
	// place it anyway.
	ErrPinConflict = errors.New("session: the pinned shard is not the object's shard")

	// ErrWouldMove is returned by Insert, Update and Delete of objects, and
	// by a unit of work's Flush and Commit, before anything is sent, when the
	// session's ShardChooser is a chooser.WriteRouter (a chooser.Routers
	// chain) that routes an object whose shard is already decided (by its
	// Token: it was loaded from or written to there; or by a pin) to another
	// shard. A router never moves a row: the error names both shards and the
	// router.
	ErrWouldMove = errors.New("session: a router routes a placed object to another shard")

	// ErrAmbiguous is returned when a Get finds its primary key on more than
	// one candidate shard, or a single-row select matches rows on several
	// shards with no order to pick one. Pin a shard to disambiguate. A
	// chooser.Splitter that puts one value on two shards gets it too.
	ErrAmbiguous = errors.New("session: found on more than one shard")

	// ErrInvalidArgument is returned for programmer errors the session can
	// detect before sending anything: a nil or non-pointer destination, a
	// primary key of the wrong arity, an unknown column.
	ErrInvalidArgument = errors.New("session: invalid argument")

	// ErrRelationDenied is returned by Insert and Update, and by a unit of
	// work's Flush and Commit, before anything is sent, when a relation
	// between an object and an object held in one of its relation fields is
	// denied: by the session's chooser.RelationRouter, or, when it abstains
	// or there is none, by the one default, chooser.SameShard (the two are
	// placed on different shards), which a unit begun with AllowCrossShard
	// waives. Session.AllowRelation gives the same answer.
	ErrRelationDenied = errors.New("session: relation not allowed")

	// ErrUnsupported is returned for statements the session cannot answer
	// correctly across several shards (for example Count with GROUP BY over
	// several shards, or ORDER BY an expression it cannot compare). It is
	// never answered wrongly instead.
	ErrUnsupported = errors.New("session: not supported across shards")

	// ErrScatter is returned when a statement would run on every shard while
	// the scatter guard ([WithScatterGuard], [DenyScatter]) forbids it.
	ErrScatter = errors.New("session: statement would run on every shard")

	// ErrUnitDone is returned by a UnitOfWork that two goroutines used at
	// once (see [ErrConcurrentUse]): it rolled every shard back and is
	// unusable. Begin a new unit. (Commit and Rollback do not end a unit:
	// its next statement begins new transactions.)
	ErrUnitDone = errors.New("session: the unit of work has ended")

	// ErrRollbackPending is returned by every UnitOfWork method but
	// Rollback after a Flush or Commit of the unit failed once it had sent
	// something: every shard was rolled back, and the unit refuses work
	// until Rollback acknowledges it, as SQLAlchemy's Session raises
	// PendingRollbackError, so that later statements never commit without
	// the writes that were lost. The error wraps the failure's.
	ErrRollbackPending = errors.New("session: the unit of work's transaction was rolled back by a failure; call Rollback")

	// ErrShardKeyChanged is returned by Update of objects ([Session.Update],
	// an UPDATE of objects, a unit of work's flush of a changed object),
	// before anything is sent, when the object's shard-key column (the one a
	// chooser declares: a chooser.Scheme's Distributed key, a one-column
	// chooser's Column) now routes to another shard than the one its Token
	// records (or an Insert or a unit's Add of an object its Token places:
	// a struct copy of a loaded object carries it): the row would be written
	// where key-routed reads of its key never look. It is also returned by a
	// statement-form UPDATE whose
	// Set assigns that column. The error names the model, the column, the
	// old and the new shard. To move a row, delete it and insert it with
	// the new key in one unit of work. With a chooser that declares no
	// column (a ShardChooserFunc, RoundRobin) the Token wins, as in
	// SQLAlchemy.
	ErrShardKeyChanged = errors.New("session: the shard key changed")

	// ErrConcurrentUse is returned by a UnitOfWork method called while
	// another of its methods is running in another goroutine: a unit is for
	// one goroutine. The unit is then unusable: its Flush and Commit fail
	// with this error and roll every shard back, so nothing it holds is
	// committed in part.
	ErrConcurrentUse = errors.New("session: unit of work used concurrently")

	// ErrNotTracked is returned by UnitOfWork methods given an object the
	// unit does not track (Expunge, Refresh).
	ErrNotTracked = errors.New("session: object not tracked by the unit of work")

	// ErrInDoubt is returned (inside a *CommitError) by a two-phase Commit
	// whose coordinator's COMMIT (the decision) failed and could not be
	// checked: the outcome is decided by the next Session.Recover, all
	// shards alike.
	ErrInDoubt = errors.New("session: two-phase commit in doubt until Recover")

	// ErrAborted is returned (inside a *CommitError) by a two-phase Commit
	// whose coordinator did not commit: its COMMIT failed (a lost
	// connection, a terminated backend) and asking the coordinator showed
	// the decision was never committed. Every shard rolled back.
	ErrAborted = errors.New("session: two-phase commit aborted: the coordinator did not commit")
)

// CommitError reports a Commit that did not commit on every shard the unit
// wrote on. It says, shard by shard, where the unit's writes stand.
//
// Without TwoPhase, a Commit commits each shard's transaction on its own,
// so a partial commit is possible: Committed shards keep the unit's writes
// and Failed ones lose them (when a connection breaks during COMMIT, that
// shard's outcome is unknown; it is listed as Failed). With TwoPhase, the
// outcome is all or nothing: Decision tells which, Pending lists the shards
// still holding a prepared transaction, which Session.Recover resolves the
// same way as the others.
type CommitError struct {
	TwoPhase  bool
	Committed []ShardID // the unit's writes are committed there
	Failed    []ShardID // the unit's writes are not committed there (rolled back)
	Pending   []ShardID // two-phase: prepared, to be resolved by Recover
	// Decision is the two-phase outcome: "commit" (Pending shards will
	// commit), "abort" (every shard rolls back), or "" (none recorded: in
	// doubt, or failed before deciding).
	Decision string
	Err      error
}

// Error says which shards committed, which did not and which wait for
// Recover, and why.
func (e *CommitError) Error() string {
	var b strings.Builder
	b.WriteString("session: commit")
	if e.TwoPhase {
		b.WriteString(" (two-phase")
		if e.Decision != "" {
			b.WriteString(", decision " + e.Decision)
		}
		b.WriteString(")")
	}
	fmt.Fprintf(&b, ": committed on %v, not committed on %v", e.Committed, e.Failed)
	if len(e.Pending) > 0 {
		fmt.Fprintf(&b, ", prepared and left to Session.Recover on %v", e.Pending)
	}
	if !e.TwoPhase && len(e.Committed) > 0 {
		b.WriteString(" (a partial commit: without TwoPhase each shard commits on its own)")
	}
	fmt.Fprintf(&b, ": %v", e.Err)
	return b.String()
}

// Unwrap returns the cause.
func (e *CommitError) Unwrap() error { return e.Err }

// PartialError is returned, with results, by a select run with
// [AllowPartial] when some of its shards failed. Errors holds one
// *ShardError per failed shard, sorted by shard; Shards lists the shards
// whose rows the results hold.
type PartialError struct {
	Errors []error
	Shards []ShardID
}

// Error says which shards failed and which answered.
func (e *PartialError) Error() string {
	return fmt.Sprintf("session: partial results from shards %v; %d shard(s) failed: %v",
		e.Shards, len(e.Errors), errors.Join(e.Errors...))
}

// Unwrap returns the per-shard errors, for errors.Is and errors.As.
func (e *PartialError) Unwrap() []error { return e.Errors }

// ShardError is an error that happened on one shard; see [identity.ShardError].
// Use errors.As (or errors.AsType[*session.ShardError]) to learn the shard.
type ShardError = identity.ShardError

// joinSorted joins errs (nils are dropped) after sorting the *ShardError ones
// by shard, so that messages are stable from run to run. It returns nil when
// every error is nil.
func joinSorted(errs []error) error {
	var out []error
	for _, err := range errs {
		if err != nil {
			out = append(out, err)
		}
	}
	slices.SortStableFunc(out, func(a, b error) int {
		return cmp.Compare(shardOf(a), shardOf(b))
	})
	return errors.Join(out...)
}

// shardOf is the shard of err's *ShardError, or "" when it has none.
func shardOf(err error) ShardID {
	if se, ok := errors.AsType[*ShardError](err); ok {
		return se.Shard
	}
	return ""
}

// NotFoundError is the error of [Session.GetMany] and [UnitOfWork.GetMany]
// when some keys are on none of the shards asked. It satisfies
// errors.Is(err, sql.ErrNoRows), as a Get of a missing key does.
type NotFoundError struct {
	// Model is the model's type name.
	Model string
	// Keys are the keys not found, as the caller gave them (a value, or
	// a []any for a composite key), each once, in the order asked.
	Keys []any
	// Shards are the shards that were asked for them, sorted.
	Shards []ShardID
}

// Error names the model, the keys not found and the shards asked.
func (e *NotFoundError) Error() string {
	return fmt.Sprintf("session: GetMany %s: %d key(s) not found on shards %v: %v: %v",
		e.Model, len(e.Keys), e.Shards, e.Keys, sql.ErrNoRows)
}

// Is reports whether target is sql.ErrNoRows.
func (e *NotFoundError) Is(target error) bool { return target == sql.ErrNoRows }
