package identity

// ShardID names one shard. It is the key of the session's shard map and the
// identity token of every object loaded from or written to that shard.
type ShardID string

// Token records the shard an object belongs to. Embed it (by value) in a Bun
// model to make objects of that model remember their shard; the zero Token
// means "not yet placed". Token is not safe for concurrent mutation, like the
// struct that embeds it.
type Token struct {
	shard  ShardID
	pinned bool
}

// Shard returns the shard the object was loaded from or written to, and false
// if it has not been placed yet.
func (t *Token) Shard() (ShardID, bool) { return t.shard, t.shard != "" }

// SetShard records id as the object's shard and clears the pin (see
// [Token.PinShard]). The session calls it; user code rarely needs to, except
// to move an object between shards by hand.
func (t *Token) SetShard(id ShardID) { t.shard, t.pinned = id, false }

// PinShard records id as the object's shard and marks the object as loaded
// by a statement pinned to its shard (SetShardID, or a Using view). Relation
// loads of a pinned object then stay on its shard without asking a chooser,
// as SQLAlchemy's set_shard_id propagates to lazy loaders; the objects those
// loads return are pinned too.
func (t *Token) PinShard(id ShardID) { t.shard, t.pinned = id, true }

// Pinned reports whether the object was loaded by a pinned statement (see
// [Token.PinShard]).
func (t *Token) Pinned() bool { return t.pinned }

// Tokened is implemented by models that embed a [Token] (through the promoted
// pointer methods), i.e. by *M for every model M that embeds Token.
type Tokened interface {
	Shard() (ShardID, bool)
	SetShard(id ShardID)
}

var _ Tokened = (*Token)(nil)

// ShardOf returns the shard recorded on obj if obj carries a [Token], and
// false if it does not or has not been placed.
func ShardOf(obj any) (ShardID, bool) {
	if t, ok := obj.(Tokened); ok {
		return t.Shard()
	}
	return "", false
}
