package session

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/uptrace/bun/schema"
)

var loadHookType = reflect.TypeFor[LoadHook]()

// loads fires LoadHook.OnLoad on the objects one statement loaded: the
// objects of root (a pointer to a struct, or a slice of structs or of
// pointers to them) of model mi, unless skipRoot, and those held by the
// relations rels, depth first in result order, the relations of an object
// in field order, each object once. Within a unit only the objects the
// statement made are fired on (fresh: not the tracked objects a row merged
// into). single is the shard the statement ran on when it ran on one,
// for models without a Token. Nothing is walked when no model on the way
// implements LoadHook.
type loads struct {
	s      *Session
	u      *UnitOfWork
	single ShardID
	seen   map[any]bool
	err    error
	ctx    context.Context
}

// fireLoads runs loads over root; see loads.
func (s *Session) fireLoads(ctx context.Context, u *UnitOfWork, root reflect.Value, mi *modelInfo, rels relTree, skipRoot bool, single ShardID) error {
	if mi == nil || !s.hooked(mi.table, rels) {
		if u != nil {
			u.fresh = nil
		}
		return nil
	}
	l := &loads{s: s, u: u, single: single, seen: map[any]bool{}, ctx: ctx}
	l.walk(root, mi.table, rels, !skipRoot, u == nil)
	if u != nil {
		u.fresh = nil
	}
	return l.err
}

// hooked reports whether t or a model along rels implements LoadHook.
func (s *Session) hooked(t *schema.Table, rels relTree) bool {
	if reflect.PointerTo(t.Type).Implements(loadHookType) {
		return true
	}
	for name, sub := range rels {
		if rel, ok := t.Relations[name]; ok && s.hooked(rel.JoinTable, sub) {
			return true
		}
	}
	return false
}

// walk visits v (a struct, a pointer to one, or a slice of either) of
// table t. fire says whether v's objects are to be fired on (skipRoot);
// fresh says that they were made by the statement, so that the objects
// they hold by value are too.
func (l *loads) walk(v reflect.Value, t *schema.Table, rels relTree, fire, fresh bool) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return
		}
		l.one(v, t, rels, fire, fresh)
	case reflect.Struct:
		if v.CanAddr() {
			l.one(v.Addr(), t, rels, fire, fresh)
		}
	case reflect.Slice:
		for i := range v.Len() {
			l.walk(v.Index(i), t, rels, fire, fresh)
		}
	}
}

func (l *loads) one(p reflect.Value, t *schema.Table, rels relTree, fire, fresh bool) {
	if l.err != nil {
		return
	}
	ptr := p.Interface()
	if l.seen[ptr] {
		return
	}
	l.seen[ptr] = true
	if l.u != nil {
		// Within a unit: the objects the statement made, and those a
		// fresh object (or a relation the statement filled) holds by value
		// and the unit does not track.
		_, tracked := l.u.lookup(ptr)
		fresh = l.u.fresh[ptr] || fresh && !tracked
	}
	if fire && fresh {
		if h, ok := ptr.(LoadHook); ok {
			id, err := l.shardOf(p, t)
			if err != nil {
				l.err = err
				return
			}
			h.OnLoad(WithShardID(l.ctx, id), id)
		}
	}
	names := make([]string, 0, len(rels))
	for name := range rels {
		if _, ok := t.Relations[name]; ok {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, func(a, b string) int {
		return slices.Compare(t.Relations[a].Field.Index, t.Relations[b].Field.Index)
	})
	if !fire {
		fresh = true // a skipped root (LoadRelation's parents): what its relations hold was just loaded
	}
	for _, name := range names {
		rel := t.Relations[name]
		f := fieldOf(p.Elem(), rel.Field)
		if f.IsValid() {
			l.walk(f, rel.JoinTable, rels[name], true, fresh)
		}
	}
}

// shardOf is the shard the object p was loaded from: its Token's, else
// the statement's single shard.
func (l *loads) shardOf(p reflect.Value, t *schema.Table) (ShardID, error) {
	if mi, err := l.s.info(t.Type); err == nil {
		if id := shardOfLoaded(mi, p.Elem()); id != "" {
			return id, nil
		}
	}
	if l.single != "" {
		return l.single, nil
	}
	return "", fmt.Errorf("%w: model %s implements LoadHook, but it has no Token and the statement read several shards, "+
		"so the shard of each object is unknown; embed session.Token in it", ErrInvalidArgument, t.TypeName)
}

// markFresh records that the unit's current statement made the object ptr.
func (u *UnitOfWork) markFresh(ptr any) {
	if u.fresh == nil {
		u.fresh = map[any]bool{}
	}
	u.fresh[ptr] = true
}

// pathTree is the relTree of one dotted relation path.
func pathTree(path string) relTree {
	t := relTree{}
	cur := t
	for _, name := range strings.Split(path, ".") {
		next := relTree{}
		cur[name] = next
		cur = next
	}
	return t
}

// markHeld marks fresh the objects the relation field f (just set from a
// loaded row) holds that the unit does not track: objects held by value,
// or by pointer in a partial select.
func (u *UnitOfWork) markHeld(f reflect.Value, rel *schema.Relation) {
	visit := func(p reflect.Value) {
		if _, ok := u.lookup(p.Interface()); !ok {
			u.markFresh(p.Interface())
		}
	}
	switch f.Kind() {
	case reflect.Pointer:
		if !f.IsNil() {
			visit(f)
		}
	case reflect.Slice:
		for i := range f.Len() {
			el := f.Index(i)
			switch {
			case el.Kind() == reflect.Pointer && !el.IsNil():
				visit(el)
			case el.Kind() == reflect.Struct:
				visit(el.Addr())
			}
		}
	}
	_ = rel
}

// fireRelationLoads fires OnLoad on the objects LoadRelation loaded along
// the dotted path relation, under the parents (which it does not fire on:
// they were loaded before).
func (s *Session) fireRelationLoads(ctx context.Context, u *UnitOfWork, parents any, relation string) error {
	mi, kind, err := s.dest(parents)
	if err != nil || kind == destTable {
		return nil
	}
	return s.fireLoads(ctx, u, reflect.ValueOf(parents).Elem(), mi, pathTree(relation), true, "")
}
