package chooser

import (
	"context"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// ReadRouter names the shards that reads of a model go to: selects, and Gets
// (asked as a select whose criteria are the primary-key columns with the
// key's values). Any answer but [None] is final, [AllShards] included.
type ReadRouter interface {
	RouteRead(ctx context.Context, stmt *Statement) (Target, error)
}

// ReadRouterFunc adapts a function to [ReadRouter].
type ReadRouterFunc func(ctx context.Context, stmt *Statement) (Target, error)

// RouteRead calls f.
func (f ReadRouterFunc) RouteRead(ctx context.Context, stmt *Statement) (Target, error) {
	return f(ctx, stmt)
}

// Write is what a [WriteRouter] is asked about: an object being written
// (Obj set), or a statement-form UPDATE or DELETE (Stmt set).
type Write struct {
	// Table describes the model.
	Table *schema.Table
	// Obj is a pointer to the model struct being inserted, updated or
	// deleted, or nil for a statement.
	Obj any
	// Stmt is the UPDATE or DELETE statement, or nil for an object.
	Stmt *Statement
	// Shard is, for an object, the shard it is written on when that is
	// already decided: the shard its Token records (it was loaded from or
	// written to there: Django's sticky instance._state.db), or the shard the
	// write is pinned to. It is "" when the router is asked to place a new
	// object.
	Shard identity.ShardID
}

// WriteRouter names the shards that writes of a model go to. For an object
// (w.Obj set) the answer must name exactly one shard; for a statement it may
// name any shards, or [AllShards]. Any answer but [None] is final.
//
// The session asks about every object it writes. For an object whose shard
// is decided (w.Shard set) the answer must be [None] or that shard: a row is
// never moved, so another shard is an error naming both. A router refuses a
// write (a shard in read-only maintenance, say) by returning an error; the
// session then sends nothing for the statement and returns the error, which
// wraps [ErrRefused] and names the router when asked through [Routers].
type WriteRouter interface {
	RouteWrite(ctx context.Context, w *Write) (Target, error)
}

// WriteRouterFunc adapts a function to [WriteRouter].
type WriteRouterFunc func(ctx context.Context, w *Write) (Target, error)

// RouteWrite calls f.
func (f WriteRouterFunc) RouteWrite(ctx context.Context, w *Write) (Target, error) {
	return f(ctx, w)
}

// Object is one side of a relation a [RelationRouter] is asked about.
type Object struct {
	// Table describes the object's model.
	Table *schema.Table
	// Obj is a pointer to the model struct.
	Obj any
	// Shard is the shard the object lives on or is being written to, and ""
	// when it has not been placed yet.
	Shard identity.ShardID
}

// RelationRouter says whether two objects may be related, one referring to
// the other through a Bun relation (Django's allow_relation). The session
// asks before it writes an object whose relation fields hold other objects.
type RelationRouter interface {
	AllowRelation(ctx context.Context, a, b Object) Verdict
}

// SameShard is the default answer to whether a and b may be related, the
// one every bunshard path falls back on ([Routers] and [Scheme] when no
// router decides, the session when its ShardChooser is no RelationRouter
// or abstains): [Allow] when both are on one shard or either has not been
// placed yet (Shard ""), [Deny] for two different shards. It never
// abstains.
func SameShard(a, b Object) Verdict {
	return VerdictOf(a.Shard == "" || b.Shard == "" || a.Shard == b.Shard)
}

// RelationRouterFunc adapts a function to [RelationRouter].
type RelationRouterFunc func(ctx context.Context, a, b Object) Verdict

// AllowRelation calls f.
func (f RelationRouterFunc) AllowRelation(ctx context.Context, a, b Object) Verdict {
	return f(ctx, a, b)
}

// MigrateRouter says whether a model's table may exist on a shard (Django's
// allow_migrate). Placement creates and drops tables by its answers.
type MigrateRouter interface {
	AllowMigrate(ctx context.Context, shard identity.ShardID, table *schema.Table) Verdict
}

// MigrateRouterFunc adapts a function to [MigrateRouter].
type MigrateRouterFunc func(ctx context.Context, shard identity.ShardID, table *schema.Table) Verdict

// AllowMigrate calls f.
func (f MigrateRouterFunc) AllowMigrate(ctx context.Context, shard identity.ShardID, table *schema.Table) Verdict {
	return f(ctx, shard, table)
}

// Verdict is a router's answer to a yes/no question. The zero Verdict is
// [Abstain].
type Verdict int8

const (
	// Abstain means no opinion: the next router is asked.
	Abstain Verdict = iota
	// Allow says yes.
	Allow
	// Deny says no.
	Deny
)

// String returns "abstain", "allow" or "deny".
func (v Verdict) String() string {
	switch v {
	case Abstain:
		return "abstain"
	case Allow:
		return "allow"
	case Deny:
		return "deny"
	}
	return "verdict(?)"
}

// VerdictOf turns a bool into [Allow] or [Deny], for routers written as
// predicates.
func VerdictOf(ok bool) Verdict {
	if ok {
		return Allow
	}
	return Deny
}
