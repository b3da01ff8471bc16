package chooser

import (
	"strings"

	"github.com/bunshard/bunshard/identity"
)

// Target is where a statement goes: every shard, no shard, or a list of
// shards in order. The zero Target is [None]. Targets are immutable values,
// safe to copy and share.
type Target struct {
	all    bool
	shards []identity.ShardID
}

// AllShards returns the Target that means every shard of the session, in the
// session's shard order.
func AllShards() Target { return Target{all: true} }

// None returns the Target that means no shard at all. A session refuses to
// run a statement whose chooser answered None (it is an error, not an empty
// result), because "nowhere" is almost always a routing bug.
func None() Target { return Target{} }

// Shards returns the Target that means exactly ids, in this order. Shards()
// with no ids is [None]. The slice is copied.
func Shards(ids ...identity.ShardID) Target {
	if len(ids) == 0 {
		return Target{}
	}
	return Target{shards: append([]identity.ShardID(nil), ids...)}
}

// IsAll reports whether t means every shard.
func (t Target) IsAll() bool { return t.all }

// IsNone reports whether t means no shard.
func (t Target) IsNone() bool { return !t.all && len(t.shards) == 0 }

// List returns the shards of a Target built by [Shards], in order, and nil for
// [AllShards] and [None]. The caller must not modify the result.
func (t Target) List() []identity.ShardID { return t.shards }

// String renders t as "all", "none" or "[asia europe]", for logs and errors.
func (t Target) String() string {
	switch {
	case t.all:
		return "all"
	case len(t.shards) == 0:
		return "none"
	}
	var b strings.Builder
	b.WriteByte('[')
	for i, id := range t.shards {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(string(id))
	}
	b.WriteByte(']')
	return b.String()
}
