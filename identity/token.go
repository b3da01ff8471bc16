package identity

import (
	"reflect"
	"sync"
	"sync/atomic"
	"unsafe"
)

// ShardID names one shard. It is the key of the session's shard map and the
// identity token of every object loaded from or written to that shard.
type ShardID string

// Token records the shard an object belongs to. Embed it (by value) in a Bun
// model to make objects of that model remember their shard; the zero Token
// means "not yet placed". Token is one pointer (8 bytes on 64-bit
// platforms) to an interned [Placement]: the shard is recorded by its id,
// so a Token means the same shard in every session that has a shard of
// that id, and nothing in a session that has none (which refuses it with
// an error naming the id). Token is not safe for concurrent mutation, like
// the struct that embeds it.
type Token struct {
	p *Placement
}

// Shard returns the shard the object was loaded from or written to, and false
// if it has not been placed yet.
func (t *Token) Shard() (ShardID, bool) {
	if t.p == nil {
		return "", false
	}
	return t.p.shard, t.p.shard != ""
}

// SetShard records id as the object's shard and clears the pin (see
// [Token.PinShard]); the empty id unplaces the object. The session calls
// it; user code rarely needs to, except to move an object between shards by
// hand.
func (t *Token) SetShard(id ShardID) {
	if id == "" {
		t.p = nil
		return
	}
	t.p = Place(id, false)
}

// PinShard records id as the object's shard and marks the object as loaded
// by a statement pinned to its shard (SetShardID, or a Using view). Relation
// loads of a pinned object then stay on its shard without asking a chooser,
// as SQLAlchemy's set_shard_id propagates to lazy loaders; the objects those
// loads return are pinned too.
func (t *Token) PinShard(id ShardID) { t.p = Place(id, true) }

// Pinned reports whether the object was loaded by a pinned statement (see
// [Token.PinShard]).
func (t *Token) Pinned() bool { return t.p != nil && t.p.pinned }

// SetPlacement records p's shard and pin on the token, as SetShard or
// PinShard would; a nil p unplaces the object. It is what the session uses
// to stamp many objects with one Placement found once.
func (t *Token) SetPlacement(p *Placement) { t.p = p }

// Placement is where a [Token] says its object lives: a shard id and
// whether the object was loaded by a pinned statement. Placements are
// immutable and interned by [Place], so Tokens share them.
type Placement struct {
	shard  ShardID
	pinned bool
}

// Shard returns the placement's shard id.
func (p *Placement) Shard() ShardID { return p.shard }

// Pinned reports whether the placement is pinned (see [Token.PinShard]).
func (p *Placement) Pinned() bool { return p.pinned }

// maxPlacements bounds the intern table: past it, Place allocates a fresh
// Placement each time (correct, only not shared). A process uses one or
// two per shard id.
const maxPlacements = 1 << 14

type placeKey struct {
	shard  ShardID
	pinned bool
}

var (
	placements sync.Map // placeKey -> *Placement
	nPlaced    atomic.Int64
)

// Place returns the interned Placement of (id, pinned): the same pointer for
// the same pair, for the first 16,384 pairs a process asks for. It is safe
// for concurrent use and allocates nothing once the pair is interned.
func Place(id ShardID, pinned bool) *Placement {
	k := placeKey{id, pinned}
	if p, ok := placements.Load(k); ok {
		return p.(*Placement)
	}
	p := &Placement{shard: id, pinned: pinned}
	if nPlaced.Load() >= maxPlacements {
		return p
	}
	got, loaded := placements.LoadOrStore(k, p)
	if !loaded {
		nPlaced.Add(1)
	}
	return got.(*Placement)
}

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
