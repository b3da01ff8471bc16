package identity

import (
	"reflect"
	"unsafe"
)

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

var tokenType = reflect.TypeFor[Token]()

// TokenFunc returns the function that finds the Token a model embeds, given
// an addressable struct of type t, or nil when t embeds no Token (t is the
// struct type, not a pointer to it). The function returns nil for a struct
// whose way to its Token goes through a nil embedded pointer. Working out
// where the Token sits is the costly part: call TokenFunc once per type and
// keep the function, which is safe for concurrent use.
func TokenFunc(t reflect.Type) func(v reflect.Value) *Token {
	if t.Kind() != reflect.Struct {
		return nil
	}
	var idx []int
	for _, f := range reflect.VisibleFields(t) {
		if f.Anonymous && f.Type == tokenType {
			idx = f.Index
			break
		}
	}
	if idx == nil {
		return nil
	}
	off, cur := uintptr(0), t
	for _, i := range idx {
		if cur.Kind() != reflect.Struct {
			// An embedded pointer on the way: follow it on every call.
			return func(v reflect.Value) *Token {
				f, err := v.FieldByIndexErr(idx)
				if err != nil { // a nil embedded pointer: no token
					return nil
				}
				return f.Addr().Interface().(*Token)
			}
		}
		sf := cur.Field(i)
		off += sf.Offset
		cur = sf.Type
	}
	return func(v reflect.Value) *Token {
		// UnsafeAddr, not Addr: Addr looks up the pointer type on every call.
		return (*Token)(unsafe.Add(unsafe.Pointer(v.UnsafeAddr()), off))
	}
}
