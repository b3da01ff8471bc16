package chooser

import (
	"context"

	"github.com/bunshard/bunshard/identity"
)

// All is a chooser that sends every Get and every statement to every shard,
// except relation loads (Key.LoadedFrom or Statement.LoadedFrom set), which
// it keeps on the parent's shard, as SQLAlchemy's example choosers do with
// lazy_loaded_from: related rows live with their parent unless a chooser
// says otherwise. It is an [IdentityChooser] and an [ExecuteChooser]; it
// cannot place new objects. It is safe for concurrent use.
var All allShards

type allShards struct{}

var (
	_ IdentityChooser = allShards{}
	_ ExecuteChooser  = allShards{}
)

// ChooseIdentity returns the parent's shard for a relation load, else
// [AllShards].
func (allShards) ChooseIdentity(_ context.Context, key Key) (Target, error) {
	return loadedFrom(key.LoadedFrom), nil
}

// ChooseExecute returns the parent's shard for a relation load, else
// [AllShards].
func (allShards) ChooseExecute(_ context.Context, stmt *Statement) (Target, error) {
	return loadedFrom(stmt.LoadedFrom), nil
}

// loadedFrom is the answer of the ready-made choosers when they know nothing
// better: the parent's shard for a relation load, else every shard.
func loadedFrom(id identity.ShardID) Target {
	if id != "" {
		return Shards(id)
	}
	return AllShards()
}

// String returns "chooser.All".
func (allShards) String() string { return "chooser.All" }
