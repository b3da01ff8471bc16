package identity

import "iter"

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
// use, like the unit of work that owns it.
type Map[V any] struct {
	m map[Key]V
}

// Get returns the value tracked under k, and false if there is none.
func (m *Map[V]) Get(k Key) (V, bool) {
	v, ok := m.m[k]
	return v, ok
}

// Add tracks v under k unless k is already tracked. It returns the value
// tracked under k afterwards and whether it is v: (v, true) when v was
// added, (tracked, false) when another value was there first, which is
// kept (see the merge policy above).
func (m *Map[V]) Add(k Key, v V) (V, bool) {
	if old, ok := m.m[k]; ok {
		return old, false
	}
	if m.m == nil {
		m.m = make(map[Key]V)
	}
	m.m[k] = v
	return v, true
}

// Delete stops tracking k; it does nothing if k is not tracked.
func (m *Map[V]) Delete(k Key) { delete(m.m, k) }

// Len returns the number of tracked keys.
func (m *Map[V]) Len() int { return len(m.m) }

// All returns every tracked key and value, in no particular order. The map
// must not be modified during the iteration.
func (m *Map[V]) All() iter.Seq2[Key, V] {
	return func(yield func(Key, V) bool) {
		for k, v := range m.m {
			if !yield(k, v) {
				return
			}
		}
	}
}

// Clear stops tracking every key.
func (m *Map[V]) Clear() { clear(m.m) }
