package loader

import (
	"cmp"
	"errors"
	"fmt"
	"slices"

	"github.com/bunshard/bunshard/identity"
)

// ShardError is an error that happened on one shard. Op names the operation
// ("get", "select", "insert", ...). It unwraps to the underlying error, so
// errors.Is(err, sql.ErrNoRows) and driver error checks see through it.
type ShardError struct {
	Shard identity.ShardID
	Op    string
	Err   error
}

// Error returns "shard <id>: <op>: <err>".
func (e *ShardError) Error() string {
	return fmt.Sprintf("shard %s: %s: %v", e.Shard, e.Op, e.Err)
}

// Unwrap returns the underlying error.
func (e *ShardError) Unwrap() error { return e.Err }

// JoinSorted joins errs (nils are dropped) after sorting the *ShardError ones
// by shard, so that messages are stable from run to run. It returns nil when
// every error is nil.
func JoinSorted(errs []error) error {
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

func shardOf(err error) identity.ShardID {
	if se, ok := errors.AsType[*ShardError](err); ok {
		return se.Shard
	}
	return ""
}
