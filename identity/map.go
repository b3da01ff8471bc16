package identity

import (
	"iter"
	"reflect"
)

// Map is an identity map: it holds at most one value per [Key], so that
// within one unit of work a row of one shard is one object. The same
// primary key on two shards is two keys, so two objects.
//
// # Merge policy
//
// When a row that is already tracked is loaded again (by a select, a
// relation load or a Get that had to ask the database), the tracked object
// wins: [Map.Add] keeps it and returns it, and the freshly loaded copy is
// dropped. Changes made in memory and not yet flushed therefore survive a
// re-load, as in SQLAlchemy, which keeps the tracked object unless the
// query asks for populate_existing. To read the database's current values,
// refresh the object explicitly (the session's UnitOfWork.Refresh).
//
// The zero Map is empty and ready to use. A Map is not safe for concurrent
// use, like the unit of work that owns it, except that Get and Len may be
// called from several goroutines at once while nothing modifies it.
type Map[V any] struct {
	// Keys are held per (model, shard) part, and in a part by their
	// canonical primary key: an int64 one in ints, any other in other. A
	// unit of work that inserts 10,000 objects of one model adds 10,000
	// keys to a few parts, and an int64 key hashes and compares as one
	// word where a whole Key is two interfaces, an integer and a string.
	parts map[mapPart]*bucket[V]
	last  *bucket[V] // the part used last: consecutive keys are mostly in one
	n     int
}

type mapPart struct {
	typ   reflect.Type
	shard ShardID
}

type bucket[V any] struct {
	key   mapPart
	ints  map[int64]V
	other map[any]V
	hint  int // Grow's size for the first map made
}

// bucket returns the part of (t, shard), made if create is set, else nil
// when there is none.
func (m *Map[V]) bucket(t reflect.Type, shard ShardID, create bool) *bucket[V] {
	if b := m.last; b != nil && b.key.typ == t && b.key.shard == shard {
		return b
	}
	p := mapPart{t, shard}
	b := m.parts[p]
	if !create {
		// Get and Delete only read: lookups may run in parallel (a unit's
		// relation load probes the map from its fan-out goroutines), so
		// they leave last alone.
		return b
	}
	if b == nil {
		if m.parts == nil {
			m.parts = make(map[mapPart]*bucket[V])
		}
		b = &bucket[V]{key: p}
		m.parts[p] = b
	}
	m.last = b
	return b
}

// Get returns the value tracked under k, and false if there is none.
func (m *Map[V]) Get(k Key) (V, bool) {
	var v V
	var ok bool
	if b := m.bucket(k.typ, k.shard, false); b != nil {
		if k.isInt() {
			v, ok = b.ints[k.id]
		} else {
			v, ok = b.other[k.pk]
		}
	}
	return v, ok
}

// Add tracks v under k unless k is already tracked. It returns the value
// tracked under k afterwards and whether it is v: (v, true) when v was
// added, (tracked, false) when another value was there first, which is
// kept (see the merge policy above).
func (m *Map[V]) Add(k Key, v V) (V, bool) {
	b := m.bucket(k.typ, k.shard, true)
	if k.isInt() {
		if old, ok := b.ints[k.id]; ok {
			return old, false
		}
		if b.ints == nil {
			b.ints = make(map[int64]V, b.hint)
		}
		b.ints[k.id] = v
	} else {
		if old, ok := b.other[k.pk]; ok {
			return old, false
		}
		if b.other == nil {
			b.other = make(map[any]V, b.hint)
		}
		b.other[k.pk] = v
	}
	m.n++
	return v, true
}

// Grow makes room for n more keys of model type t on shard, so that adding
// them does not grow the map step by step. It only sizes a mapPart that holds
// no key yet; it never fails.
func (m *Map[V]) Grow(t reflect.Type, shard ShardID, n int) {
	b := m.bucket(t, shard, true)
	if len(b.ints) == 0 && len(b.other) == 0 {
		b.ints, b.other, b.hint = nil, nil, n
	}
}

// Delete stops tracking k; it does nothing if k is not tracked.
func (m *Map[V]) Delete(k Key) {
	b := m.bucket(k.typ, k.shard, false)
	if b == nil {
		return
	}
	if k.isInt() {
		if _, ok := b.ints[k.id]; ok {
			delete(b.ints, k.id)
			m.n--
		}
	} else if _, ok := b.other[k.pk]; ok {
		delete(b.other, k.pk)
		m.n--
	}
}

// Len returns the number of tracked keys.
func (m *Map[V]) Len() int { return m.n }

// All returns every tracked key and value, in no particular order. The map
// must not be modified during the iteration.
func (m *Map[V]) All() iter.Seq2[Key, V] {
	return func(yield func(Key, V) bool) {
		for p, b := range m.parts {
			for id, v := range b.ints {
				if !yield(Key{typ: p.typ, pk: intPK{}, id: id, shard: p.shard}, v) {
					return
				}
			}
			for pk, v := range b.other {
				if !yield(Key{typ: p.typ, pk: pk, shard: p.shard}, v) {
					return
				}
			}
		}
	}
}

// Clear stops tracking every key.
func (m *Map[V]) Clear() {
	clear(m.parts)
	m.last, m.n = nil, 0
}
