package chooser

import (
	"context"

	"github.com/bunshard/bunshard/identity"
)

type pinKey struct{}

// WithPin returns a context for a [ShardChooser.ChooseShard] call that checks
// a write pinned to shard id (by a statement option, a view or the request
// context): the session asks where the object belongs, and refuses the write
// if the answer is another shard, so that a pin never moves a row off its
// own shard. A chooser whose answer does not follow from the object (such as
// [RoundRobin], which places by turn) abstains when [PinOf] reports a pin:
// it answers "" or an error wrapping [ErrNoOpinion], and the pin places the
// object.
func WithPin(ctx context.Context, id identity.ShardID) context.Context {
	return context.WithValue(ctx, pinKey{}, id)
}

// PinOf returns the shard a ChooseShard call is checking a pin against (see
// [WithPin]), and false when the call places an object that is not pinned.
func PinOf(ctx context.Context) (identity.ShardID, bool) {
	id, ok := ctx.Value(pinKey{}).(identity.ShardID)
	return id, ok && id != ""
}
