package session

import (
	"fmt"
	"slices"
)

// NewUpdate starts a statement-form UPDATE (see [Session.NewUpdate]) that
// runs inside the unit's transactions: a shard it changes rows on counts
// as written, so Commit commits the change and Rollback undoes it. On a
// unit begun on a
// [Session.Using] view a statement that routes (by a [SetShardID] option)
// to a shard outside the view fails before anything is sent. The unit
// autoflushes before it (see [Autoflush]), and synchronizes the objects it
// tracks with what it changed as the [Synchronize] option says (default
// [SyncAuto]: tracked objects show the new values).
func (u *UnitOfWork) NewUpdate() *UpdateQuery { return u.view.NewUpdate() }

// NewDelete starts a statement-form DELETE (see [Session.NewDelete]) that
// runs inside the unit's transactions, as [UnitOfWork.NewUpdate] does.
// The objects of the rows it deleted are expunged as the [Synchronize]
// option says (default [SyncAuto]), so Get no longer returns them.
func (u *UnitOfWork) NewDelete() *DeleteQuery { return u.view.NewDelete() }

// scoped reports the shards a unit begun on a Using view keeps to (nil:
// any shard of the session).
func (u *UnitOfWork) scoped() []ShardID {
	if len(u.s.at.pinned()) == 0 {
		return nil
	}
	return u.s.at.pinned()
}

// outside fails when a statement of a unit begun on a Using view (what,
// naming the statement and its model or object) routes to shard id outside
// the view's shards (by says what routed it there): the unit's
// transactions keep the view's routing, as SQLAlchemy's session bound to
// one shard does, and nothing is sent.
func (u *UnitOfWork) outside(ids []ShardID, by, what string) error {
	scope := u.scoped()
	if scope == nil {
		return nil
	}
	for _, id := range ids {
		if !slices.Contains(scope, id) {
			return fmt.Errorf("%w: %s: routed to shard %s by %s, but the unit of work was begun on a Using view of %v "+
				"and its statements stay on those shards; nothing was sent (begin the unit on the session, or on a view "+
				"that holds %s)", ErrInvalidArgument, what, id, pinName(by), scope, id)
		}
	}
	return nil
}
