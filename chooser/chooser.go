package chooser

import (
	"context"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// ShardChooser places an object that has no shard yet: it returns the one
// shard the object's INSERT goes to. table describes obj's model; obj is a
// pointer to a struct of that model. An error aborts the write before any
// statement is sent.
//
// ShardChooser is an interface, not a func type, so that a chooser can carry
// state (a lookup directory, a cache) and extra abilities found by type
// assertion. New methods will never be added to it.
type ShardChooser interface {
	ChooseShard(ctx context.Context, table *schema.Table, obj any) (identity.ShardID, error)
}

// ShardChooserFunc adapts a function to [ShardChooser].
type ShardChooserFunc func(ctx context.Context, table *schema.Table, obj any) (identity.ShardID, error)

// ChooseShard calls f.
func (f ShardChooserFunc) ChooseShard(ctx context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	return f(ctx, table, obj)
}

// Key is what an [IdentityChooser] is asked about: a model and a primary key.
type Key struct {
	// Table describes the model.
	Table *schema.Table
	// PK holds the primary-key values in the order of Table.PKs, each of
	// its column's Go type when the session asks.
	PK []any
	// LoadedFrom is the shard of the parent object when the key is looked up
	// to load a relation of that parent (SQLAlchemy's lazy_loaded_from), and
	// "" for a plain Get. A chooser that keeps relations with their parent
	// answers Shards(LoadedFrom), as the ready-made ones do; one that knows
	// the related rows live elsewhere by design routes there.
	LoadedFrom identity.ShardID
	// Parent is the object (a pointer to a model struct) whose belongs-to or
	// has-one relation the key is looked up for, and nil for a plain Get:
	// Django's instance hint. A chooser must not modify it.
	Parent any
}

// IdentityChooser returns the shards that may hold a primary key, in the
// order a Get should probe them. [AllShards] means "ask every shard".
// Returning [None] is an error for the caller, never a silent miss.
type IdentityChooser interface {
	ChooseIdentity(ctx context.Context, key Key) (Target, error)
}

// IdentityChooserFunc adapts a function to [IdentityChooser].
type IdentityChooserFunc func(ctx context.Context, key Key) (Target, error)

// ChooseIdentity calls f.
func (f IdentityChooserFunc) ChooseIdentity(ctx context.Context, key Key) (Target, error) {
	return f(ctx, key)
}

// ExecuteChooser returns the shards a statement runs on. It sees a
// [Statement] descriptor, not SQL: Bun's WHERE clauses are opaque, so the
// criteria a chooser can reason about are the ones the caller declared with
// the builder's shard-key methods.
type ExecuteChooser interface {
	ChooseExecute(ctx context.Context, stmt *Statement) (Target, error)
}

// ExecuteChooserFunc adapts a function to [ExecuteChooser].
type ExecuteChooserFunc func(ctx context.Context, stmt *Statement) (Target, error)

// ChooseExecute calls f.
func (f ExecuteChooserFunc) ChooseExecute(ctx context.Context, stmt *Statement) (Target, error) {
	return f(ctx, stmt)
}

// Splitter is an optional ability of an [ExecuteChooser], found by type
// assertion: given the values of a declared IN criterion on column, it says
// which shard owns each value, so that each shard receives only its own keys.
// It returns nil, nil when column is not the key it routes on.
type Splitter interface {
	SplitValues(ctx context.Context, table *schema.Table, column string, values []any) (map[identity.ShardID][]any, error)
}
