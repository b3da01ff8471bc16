package session

import (
	"context"

	"github.com/uptrace/bun"
)

// place is where a Session's statements run: the seam between the fan-out
// and what it runs on. A Session made by New runs them on the shards' own
// databases, reads possibly on replicas (rootPlace); a Using view runs them
// on its shards, otherwise as the session it was made from (usingPlace); a
// unit of work's view runs every statement, reads included, in the unit's
// transactions (*UnitOfWork). The fan-out asks its place and never whether it
// runs in a unit; a Session carries exactly one place and no other mode.
//
// Reads and writes take different paths through a place: a read's shardFunc
// goes through read, which may send it to a replica; a write's never does
// (fanOutWrites, each), so no write can reach a replica, whatever handle it
// would be given.
type place interface {
	// conn returns the handle statements on shard id run on.
	conn(ctx context.Context, id ShardID) (bun.IDB, error)
	// read returns fn, a read of one shard, as it runs at this place: on a
	// replica when one may serve it, else as fn.
	read(fn shardFunc) shardFunc
	// failed notes that a statement on shard id failed with err.
	failed(id ShardID, err error)
	// written notes that a write on shard id, run on db, has returned: for
	// read-your-writes outside a unit, for a unit's Commit inside one.
	written(ctx context.Context, id ShardID, db bun.IDB)
	// waits reports whether a fail-fast fan-out waits for every shard after
	// a failure, because the statements share state that must not change
	// once it has returned (see failFast).
	waits() bool
	// pinned returns the shards a Using view pins: nil when none does,
	// empty for Using() (an error when a statement runs).
	pinned() []ShardID
	// unitOf returns the unit of work whose transactions the statements run
	// in, nil outside one.
	unitOf() *UnitOfWork
	// root returns the place of the Session New made, under every view.
	root() place
}

// rootPlace is the place of a Session made by New: each shard's own
// database, with reads on replicas when WithReplicas configured some.
type rootPlace struct{ s *Session }

func (p rootPlace) conn(_ context.Context, id ShardID) (bun.IDB, error) { return p.s.shards[id], nil }
func (p rootPlace) read(fn shardFunc) shardFunc                         { return p.s.replicaRead(fn) }
func (rootPlace) failed(ShardID, error)                                 {}
func (p rootPlace) written(ctx context.Context, id ShardID, db bun.IDB) {
	p.s.replicaWrote(ctx, id, db)
}
func (rootPlace) waits() bool         { return false }
func (rootPlace) pinned() []ShardID   { return nil }
func (rootPlace) unitOf() *UnitOfWork { return nil }
func (p rootPlace) root() place       { return p }

// usingPlace is a Using view's place: its shards pin every statement, and
// the statements run as they do at the place the view was made from.
type usingPlace struct {
	place
	ids []ShardID // non-nil
}

func (p usingPlace) pinned() []ShardID { return p.ids }

// A unit of work is the place of its view: every statement runs in its
// transactions (begun on first use), never on a replica, and its fan-outs
// wait for every shard. A unit begun on a Using view keeps the view's pin.

func (u *UnitOfWork) read(fn shardFunc) shardFunc { return fn }

// written records that the unit wrote on shard id: its Commit must commit
// the shard.
func (u *UnitOfWork) written(_ context.Context, id ShardID, _ bun.IDB) { u.wrote(id) }

func (u *UnitOfWork) waits() bool         { return true }
func (u *UnitOfWork) pinned() []ShardID   { return u.s.at.pinned() }
func (u *UnitOfWork) unitOf() *UnitOfWork { return u }
func (u *UnitOfWork) root() place         { return u.s.at.root() }

var (
	_ place = rootPlace{}
	_ place = usingPlace{}
	_ place = (*UnitOfWork)(nil)
)
