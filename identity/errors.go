package identity

import "fmt"

// ShardError is an error that happened on one shard. Op names the operation
// ("get", "select", "insert", "commit", ...). It unwraps to the underlying
// error, so errors.Is(err, sql.ErrNoRows) and driver error checks see
// through it, and errors.As (or errors.AsType[*ShardError]) finds the shard.
//
// It is declared here, in the leaf package that names shards, so that every
// bunshard package can return it; package session re-exports it as
// session.ShardError, and package loader as loader.ShardError.
type ShardError struct {
	Shard ShardID
	Op    string
	Err   error
}

// Error returns "shard <id>: <op>: <err>".
func (e *ShardError) Error() string {
	return fmt.Sprintf("shard %s: %s: %v", e.Shard, e.Op, e.Err)
}

// Unwrap returns the underlying error.
func (e *ShardError) Unwrap() error { return e.Err }
