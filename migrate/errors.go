package migrate

import "errors"

// The sentinel errors of package migrate. Every error names the shard,
// migration, model or option at fault; these let callers branch with
// errors.Is.
var (
	// ErrInvalidArgument is returned by [New] for a bad input it can see
	// before running anything: no shards, a shard handle that is not a
	// *bun.DB, no migrations, a scope naming an unknown migration or shard,
	// a non-model in [ForModels].
	ErrInvalidArgument = errors.New("migrate: invalid argument")

	// ErrUnknownShard is returned when a shard id is not one of the
	// Migrator's shards.
	ErrUnknownShard = errors.New("migrate: unknown shard")

	// ErrAmbiguous is returned for a shard on which a migration limited with
	// [ForModels] to several models may run for some of them and not for
	// others: whether to run it there is not decided by guessing. The
	// migration fails on that shard and is not recorded; split it into one
	// migration per set of models that live together.
	ErrAmbiguous = errors.New("migrate: migration applies to some of its models on a shard, not all")
)
