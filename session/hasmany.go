package session

import (
	"context"
	"fmt"
	"maps"
	"reflect"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// Has-one and has-many writes of stored parents, as SQLAlchemy's
// collections and Django's related managers make them: a snapshot records
// the children a parent's relation held when it was loaded (heldSet, by
// the child's own key), and a flush compares.
//
//   - A stored child appended to (or set as) a stored parent's relation
//     gets the parent's key in its foreign key, so the flush updates it on
//     their shard, which must be the parent's (a child is not moved
//     between shards: ErrRelationDenied). A new child is placed with the
//     parent as before (cascade).
//   - A child removed from the relation (or the field cleared: nil) whose
//     foreign key still holds the parent's key and that is not deleted is
//     orphaned: SQLAlchemy's default cascade sets its foreign key to NULL,
//     and so does the flush, when the field can hold NULL (a pointer, or
//     the nullzero tag) and the column is not NOT NULL. Otherwise the flush
//     is refused before anything is sent (ErrInvalidArgument), as Django
//     offers remove() only on a nullable foreign key: delete the child with
//     Delete, or append it to another parent. (Bun has no delete-orphan
//     cascade to declare.)
//   - A child the unit no longer tracks (Expunge) is left alone.

// heldSet is the objects a relation holds, by their key (without shard),
// counted: what a snapshot records of a has-one, has-many or many-to-many
// relation (snapshot.owned, snapshot.links).
type heldSet map[identity.Key]int

// held returns the keys of the objects v's relation rel holds; nil when it
// holds none.
func held(v reflect.Value, rel *schema.Relation) heldSet {
	var out heldSet
	related(v, rel, func(p reflect.Value) {
		if out == nil {
			out = heldSet{}
		}
		out[heldKey(p, rel)]++
	})
	return out
}

// heldSets returns what each relation of rels holds in v; nil when rels is
// empty.
func heldSets(v reflect.Value, rels []*schema.Relation) []heldSet {
	if len(rels) == 0 {
		return nil
	}
	out := make([]heldSet, len(rels))
	for i, rel := range rels {
		out[i] = held(v, rel)
	}
	return out
}

// heldKey is the key (without shard) of p, an object relation rel holds:
// of the linked model's join columns for a many-to-many relation, of the
// child's primary key otherwise.
func heldKey(p reflect.Value, rel *schema.Relation) identity.Key {
	fields := rel.JoinTable.PKs
	if rel.Type == schema.ManyToManyRelation {
		fields = rel.JoinPKs
	}
	pk := make([]any, len(fields))
	for i, f := range fields {
		if fv := fieldOf(p.Elem(), f); fv.IsValid() {
			pk[i] = fv.Interface()
		}
	}
	return identity.NewKey(rel.JoinTable.Type, "", pk...)
}

// heldChanges compares what each relation of rels holds in v with sets,
// the snapshot's record of them (a missing entry held nothing). For each
// relation that changed it calls added with every object it holds beyond
// what the snapshot recorded, then removed (when not nil) with the keys the
// snapshot recorded that it no longer holds (counted; keys with a count
// <= 0 are not gone). It reports whether any relation changed, and stops
// at the first error added or removed returns.
func heldChanges(v reflect.Value, rels []*schema.Relation, sets []heldSet,
	added func(rel *schema.Relation, p reflect.Value) error, removed func(rel *schema.Relation, left heldSet) error,
) (bool, error) {
	changed := false
	for i, rel := range rels {
		var was heldSet
		if i < len(sets) {
			was = sets[i]
		}
		if maps.Equal(held(v, rel), was) {
			continue
		}
		changed = true
		left := maps.Clone(was)
		var err error
		related(v, rel, func(p reflect.Value) {
			k := heldKey(p, rel)
			if left[k] > 0 {
				left[k]--
				return
			}
			if err == nil {
				err = added(rel, p)
			}
		})
		if err == nil && removed != nil {
			err = removed(rel, left)
		}
		if err != nil {
			return changed, err
		}
	}
	return changed, nil
}

// snapOwned records in sn what the has-one and has-many relations of v
// hold.
func (u *UnitOfWork) snapOwned(sn *snapshot, mi *modelInfo, v reflect.Value) {
	sn.owned = heldSets(v, mi.unit(u.s).owned)
}

// resnapRel records again what relation rel (has-one, has-many or
// many-to-many) of the tracked e holds, after the unit loaded it into e (a
// select's Relation filling it, or LoadRelation): what was loaded is
// stored, not a change.
func (u *UnitOfWork) resnapRel(e *entry, rel *schema.Relation) {
	if e.st == nil || e.st.snap == nil {
		return
	}
	um := e.mi.unit(u.s)
	sets, rels := e.st.snap.owned, um.owned
	if rel.Type == schema.ManyToManyRelation {
		sets, rels = e.st.snap.links, um.m2m
	}
	for i, r := range rels {
		if r == rel && i < len(sets) {
			sets[i] = held(e.val(), rel)
		}
	}
}

// adoptChildren is the first pass over the stored parents of a flush: a
// stored child appended to a parent's has-one or has-many relation gets
// the parent's key. It runs before any object's changes are compared, so
// the children's updates carry their new foreign keys, and before
// orphanChildren, so that a child moved to another parent is no orphan.
// It returns the parents whose relations changed (resnapped by settle).
func (u *UnitOfWork) adoptChildren(ctx context.Context) ([]*entry, error) {
	var out []*entry
	for _, e := range u.tracked {
		if e.state != statePersistent || e.st == nil || e.st.snap == nil {
			continue
		}
		changed, err := heldChanges(e.val(), e.mi.unit(u.s).owned, e.st.snap.owned,
			func(rel *schema.Relation, p reflect.Value) error { return u.adoptChild(e, rel, p) }, nil)
		if err != nil {
			return nil, err
		}
		if changed {
			out = append(out, e)
		}
	}
	return out, nil
}

// adoptChild gives the stored child p, appended to the stored parent e's
// relation rel, e's key. A new child is the cascade's (placed with e).
func (u *UnitOfWork) adoptChild(e *entry, rel *schema.Relation, p reflect.Value) error {
	c, ok := u.lookup(p.Interface())
	switch {
	case ok && c.state == statePending:
		return nil // a new child: placed with e, its key filled at insert
	case ok && c.state == statePersistent:
	case ok:
		return nil // deleted: nothing to re-parent
	default:
		if id, stored := identity.ShardOf(p.Interface()); !stored || id == "" {
			return nil // a new child, cascaded
		}
		return fmt.Errorf("%w: flush: a stored %s (%v) was appended to %s.%s of a stored %s (%v), but the unit does not "+
			"track it, so it cannot update it; load it in the unit (Get) before appending it",
			ErrInvalidArgument, rel.JoinTable.TypeName, heldKey(p, rel).PK(), e.mi.table.TypeName, rel.Field.GoName,
			e.mi.table.TypeName, e.st.key)
	}
	if c.shard != e.shard {
		return fmt.Errorf("%w: flush: the %s %v on shard %s was appended to %s.%s of %s %v on shard %s; a child's row "+
			"is not moved between shards: delete it and add a new one with the parent",
			ErrRelationDenied, c.mi.table.TypeName, c.st.key.PK(), c.shard, e.mi.table.TypeName, rel.Field.GoName,
			e.mi.table.TypeName, e.st.key.PK(), e.shard)
	}
	for i, f := range rel.JoinPKs {
		if i < len(rel.BasePKs) {
			if to, from := fieldOf(c.val(), f), fieldOf(e.val(), rel.BasePKs[i]); to.IsValid() && to.CanSet() && from.IsValid() {
				assignValue(to, from)
			}
		}
	}
	return nil
}

// orphanChildren is the second pass: a stored child removed from a stored
// parent's relation whose foreign key still holds the parent's key gets a
// NULL foreign key, or the flush is refused (see the top of this file).
func (u *UnitOfWork) orphanChildren() error {
	type orphan struct {
		c  *entry
		fk []*schema.Field
	}
	var orphans []orphan // zeroed once none is refused
	for _, e := range u.tracked {
		if e.state != statePersistent || e.st == nil || e.st.snap == nil {
			continue
		}
		sn := e.st.snap
		for i, rel := range e.mi.unit(u.s).owned {
			if i >= len(sn.owned) || len(sn.owned[i]) == 0 {
				continue
			}
			now := held(e.val(), rel)
			for k, n := range sn.owned[i] {
				if n <= now[k] {
					continue
				}
				c, ok := u.ids.Get(identity.NewKey(k.Type(), e.shard, k.PK()))
				if !ok || c.state != statePersistent || !holdsKey(c.val(), rel.JoinPKs, e.val(), rel.BasePKs) {
					continue // expunged, deleted, or moved to another parent
				}
				for _, f := range rel.JoinPKs {
					if err := nullable(f); err != nil {
						return fmt.Errorf("%w: flush: the %s %v was removed from %s.%s of %s %v, which would orphan it, "+
							"but %s; delete it with Delete, or append it to another parent",
							ErrInvalidArgument, c.mi.table.TypeName, c.st.key.PK(), e.mi.table.TypeName, rel.Field.GoName,
							e.mi.table.TypeName, e.st.key.PK(), err)
					}
				}
				orphans = append(orphans, orphan{c, rel.JoinPKs})
			}
		}
	}
	for _, o := range orphans {
		for _, f := range o.fk {
			fieldOf(o.c.val(), f).SetZero()
		}
	}
	return nil
}

// holdsKey reports whether the child cv's foreign key fields fk hold the
// parent pv's key fields pk.
func holdsKey(cv reflect.Value, fk []*schema.Field, pv reflect.Value, pk []*schema.Field) bool {
	for i, f := range fk {
		if i >= len(pk) {
			return false
		}
		a, b := fieldOf(cv, f), fieldOf(pv, pk[i])
		if !a.IsValid() || !b.IsValid() {
			return false
		}
		if a.Kind() == reflect.Pointer {
			if a.IsNil() {
				return false
			}
			a = a.Elem()
		}
		if !a.Equal(b) && !(a.CanConvert(b.Type()) && a.Convert(b.Type()).Equal(b)) {
			return false
		}
	}
	return true
}

// nullable fails when foreign-key field f cannot be written as NULL: a NOT
// NULL (or primary-key) column, or a Go field whose zero value Bun writes
// as a value (a plain int without the nullzero tag).
func nullable(f *schema.Field) error {
	switch {
	case f.IsPK:
		return fmt.Errorf("its column %s is part of its primary key", f.Name)
	case f.NotNull:
		return fmt.Errorf("its column %s is NOT NULL", f.Name)
	case f.NullZero:
		return nil
	}
	switch f.StructField.Type.Kind() {
	case reflect.Pointer, reflect.Interface, reflect.Map, reflect.Slice:
		return nil
	}
	return fmt.Errorf("its field %s (%s) cannot hold NULL: make it a pointer or tag it nullzero", f.GoName, f.StructField.Type)
}
