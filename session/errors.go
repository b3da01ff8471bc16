package session

import (
	"errors"
	"fmt"

	"github.com/bunshard/bunshard/loader"
)

// The sentinel errors of package session. Every error the session returns
// names the model, shard, column or option at fault; these sentinels let
// callers branch with errors.Is.
var (
	// ErrUnknownShard is returned when a statement option, the context, a
	// Using view or a chooser names a shard the session was not built with.
	// It is never turned into a silent fan-out.
	ErrUnknownShard = errors.New("session: unknown shard")

	// ErrNoShard is returned when a chooser answered chooser.None, or a
	// ShardChooser returned an empty shard id: the statement would go nowhere.
	ErrNoShard = errors.New("session: chooser chose no shard")

	// ErrAmbiguous is returned when a Get finds its primary key on more than
	// one candidate shard, or a single-row select matches rows on several
	// shards with no order to pick one. Pin a shard to disambiguate.
	ErrAmbiguous = errors.New("session: found on more than one shard")

	// ErrInvalidArgument is returned for programmer errors the session can
	// detect before sending anything: a nil or non-pointer destination, a
	// primary key of the wrong arity, an unknown column.
	ErrInvalidArgument = errors.New("session: invalid argument")

	// ErrRelationDenied is returned by Insert and Update, before anything is
	// sent, when the session's chooser.RelationRouter denies a relation
	// between an object and an object held in one of its relation fields
	// (by default: the two live on different shards).
	ErrRelationDenied = errors.New("session: relation not allowed")

	// ErrUnsupported is returned for statements the session cannot answer
	// correctly across several shards (for example Count with GROUP BY over
	// several shards, or ORDER BY an expression it cannot compare). It is
	// never answered wrongly instead.
	ErrUnsupported = errors.New("session: not supported across shards")

	// ErrScatter is returned when a statement would run on every shard while
	// the scatter guard ([WithScatterGuard], [DenyScatter]) forbids it.
	ErrScatter = errors.New("session: statement would run on every shard")
)

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

// ShardError is an error that happened on one shard; see [loader.ShardError].
// Use errors.As (or errors.AsType[*session.ShardError]) to learn the shard.
type ShardError = loader.ShardError
