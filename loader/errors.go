package loader

import "github.com/bunshard/bunshard/identity"

// ShardError is the error of one shard's relation query: Shard names the
// shard, Op the relation ("load Location.Reports"), and it unwraps to the
// driver's error. It is [identity.ShardError], the one error type of
// bunshard, so that session.ShardError, loader.ShardError and
// identity.ShardError are the same type for errors.As.
type ShardError = identity.ShardError
