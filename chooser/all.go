package chooser

import "context"

// All is a chooser that sends every Get and every statement to every shard.
// It is an [IdentityChooser] and an [ExecuteChooser]; it cannot place new
// objects. It is safe for concurrent use.
var All allShards

type allShards struct{}

var (
	_ IdentityChooser = allShards{}
	_ ExecuteChooser  = allShards{}
)

// ChooseIdentity returns [AllShards].
func (allShards) ChooseIdentity(context.Context, Key) (Target, error) { return AllShards(), nil }

// ChooseExecute returns [AllShards].
func (allShards) ChooseExecute(context.Context, *Statement) (Target, error) { return AllShards(), nil }

// String returns "chooser.All".
func (allShards) String() string { return "chooser.All" }
