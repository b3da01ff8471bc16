package session

import (
	"context"

	"github.com/bunshard/bunshard/identity"
)

// ShardID names one shard; see [identity.ShardID].
type ShardID = identity.ShardID

// Token is embedded in models to make objects remember their shard; see
// [identity.Token].
type Token = identity.Token

type ctxKey struct{}

// WithShardID returns a context that pins every statement run with it (and
// every relation query those statements make) to shard id, unless a
// statement option or a Using view names other shards. It is the
// per-request routing of multi-tenant apps: middleware puts the tenant's
// shard in the request context once. The id is checked when a statement
// runs: an unknown id fails with [ErrUnknownShard], and the empty id, which
// names no shard, fails every statement run under the context with
// [ErrInvalidArgument] (it is never read as "no pin", which would let the
// statement fan out).
func WithShardID(ctx context.Context, id ShardID) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// ShardIDFromContext returns the shard pinned by [WithShardID], and false if
// none is (or the pin is the empty id). Inside Bun hooks of a statement run
// by the session it returns the shard the statement is running on.
func ShardIDFromContext(ctx context.Context) (ShardID, bool) {
	id, ok := ctx.Value(ctxKey{}).(ShardID)
	return id, ok && id != ""
}

// contextPin returns the shard WithShardID put in ctx, and whether it put
// one: the empty id too, which the router refuses.
func contextPin(ctx context.Context) (ShardID, bool) {
	id, ok := ctx.Value(ctxKey{}).(ShardID)
	return id, ok
}

// ShardOf returns the shard recorded on obj (a pointer to a model that embeds
// [Token]), and false if obj has none.
func ShardOf(obj any) (ShardID, bool) { return identity.ShardOf(obj) }
