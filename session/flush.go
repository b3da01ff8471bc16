package session

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// Flush writes the unit's changes to their shards, each inside that shard's
// transaction, and leaves the transactions open:
//
//   - new objects (Add, and the objects they reach through has-one and
//     has-many relations, or through a belongs-to relation to an unplaced
//     object with a Token) are inserted with one INSERT per shard per
//     model, parents before children, after their zero foreign keys have
//     been filled from the parent objects they point to or belong to;
//   - the objects a new object's many-to-many relations hold are inserted
//     on its shard unless they are stored already (tracked as stored, or
//     placed on their Token), and after every insert the join rows linking
//     them are inserted on that shard too, one INSERT per join table per
//     shard (a link to an object on another shard is refused as any
//     relation is, with [ErrRelationDenied]);
//   - the many-to-many relations of stored objects are compared with what
//     they held when loaded: an object appended gets its join row (and is
//     inserted first, on the holder's shard, when it is new), an object
//     removed, or the field cleared, loses its join row, with one DELETE on
//     the holder's shard per relation, as SQLAlchemy's collections do; a
//     relation never loaded held nothing, so clearing it deletes nothing;
//   - tracked objects that changed since they were loaded or last flushed
//     are updated, each UPDATE setting only the changed columns (objects of
//     one model and shard that changed the same columns share one
//     statement);
//   - objects marked with Delete are deleted, children before parents, one
//     DELETE per shard per model.
//
// The order between models comes from Bun's relation metadata: a model
// that belongs to another (it holds the other's key) is inserted after it
// and deleted before it. Shards are written in parallel.
//
// Errors found before sending anything (a chooser failure, an unknown
// shard, a link between objects on different shards without
// [AllowCrossShard] or a RelationRouter that allows it, decided as
// Session.Insert decides it ([ErrRelationDenied]),
// a changed primary key, an object removed from a many-to-many relation
// whose linked model has a composite key ([ErrInvalidArgument]))
// leave the unit as it was. An error from a shard rolls back every shard's
// transaction, as a failed flush does in SQLAlchemy: the writes of the
// unit's transaction are gone, the Tokens of objects it had placed are
// cleared, the identity map is updated as by Rollback, and the unit refuses
// work with [ErrRollbackPending] until Rollback is called.
func (u *UnitOfWork) Flush(ctx context.Context) error {
	if err := u.enter(opFlush); err != nil {
		return err
	}
	defer u.leave()
	return u.flush(ctx)
}

// work is what one flush writes.
type work struct {
	order   []*modelInfo // parents first
	inserts map[*modelInfo]map[ShardID][]*entry
	updates map[ShardID][]*updateGroup
	deletes map[*modelInfo]map[ShardID][]*entry
	ins     []*entry
	upd     []*entry
	del     []*entry
	links   map[ShardID][]link // many-to-many join rows to insert (m2m.go)
	stored  []link             // of those, the links of stored objects (planned before placement)
	unlinks map[ShardID][]unlink
	relink  []*entry // stored objects whose many-to-many relations changed
	rehome  []*entry // stored objects whose has-one or has-many relations changed (hasmany.go)
}

// updateGroup is one UPDATE: objects of one model on one shard that
// changed the same columns.
type updateGroup struct {
	mi      *modelInfo
	cols    []*schema.Field
	entries []*entry
}

// flush writes the unit's changes.
func (u *UnitOfWork) flush(ctx context.Context) error {
	u.depth.Add(1) // the flush's own statements do not autoflush
	defer u.depth.Add(-1)
	w, err := u.plan(ctx)
	if err != nil {
		u.unplace()
		return err
	}
	if len(w.ins)+len(w.upd)+len(w.del)+len(w.relink) == 0 {
		return nil
	}
	if err := u.execute(ctx, w); err != nil {
		err = fmt.Errorf("session: flush: %w (every shard of the unit of work was rolled back)", err)
		u.fail(ctx, err)
		return err
	}
	u.settle(w)
	return nil
}

// plan finds what to write and where, sending nothing.
func (u *UnitOfWork) plan(ctx context.Context) (*work, error) {
	u.dedupe()
	u.cascade()
	// A view's pin that cannot place objects (a view of several shards) is
	// an error only for a flush that has objects to write: an empty unit's
	// autoflush before a select on that view must not fail.
	pin, pinErr := u.view.pinned(ctx, &stmtOptions{pinWins: u.cfg.pinWins}, "flush")
	w := &work{
		inserts: map[*modelInfo]map[ShardID][]*entry{},
		updates: map[ShardID][]*updateGroup{},
		deletes: map[*modelInfo]map[ShardID][]*entry{},
		ins:     make([]*entry, 0, len(u.tracked)),
	}
	var types []*modelInfo
	seen := map[*modelInfo]bool{}
	addType := func(mi *modelInfo) {
		if !seen[mi] {
			seen[mi] = true
			types = append(types, mi)
		}
	}
	// Children appended to or removed from stored parents get their new
	// foreign keys before any object's changes are compared.
	var err error
	if w.rehome, err = u.adoptChildren(ctx); err != nil {
		return nil, err
	}
	if err := u.orphanChildren(); err != nil {
		return nil, err
	}
	changed := map[*entry][]*schema.Field{}
	var last *modelInfo // most flushes hold one model: skip the map then
	for _, e := range u.tracked {
		switch e.state {
		case statePending:
			w.ins = append(w.ins, e)
		case stateDeleted:
			w.del = append(w.del, e)
		case statePersistent:
			if e.st == nil || e.st.snap == nil {
				continue
			}
			relinked, err := u.storedLinks(e, w)
			if err != nil {
				return nil, err
			}
			if relinked {
				w.relink = append(w.relink, e)
			}
			cols, pkChanged := u.changes(e)
			if pkChanged {
				return nil, fmt.Errorf("%w: flush: the primary key of a tracked %s (%v on shard %s) changed; rows are not re-keyed: "+
					"delete the object and add a new one", ErrInvalidArgument, e.mi.table.TypeName, e.st.key, e.shard)
			}
			if len(cols) == 0 {
				continue
			}
			changed[e] = cols
			w.upd = append(w.upd, e)
		default:
			continue
		}
		if e.mi != last {
			addType(e.mi)
			last = e.mi
		}
	}
	if pinErr != nil {
		if len(w.ins)+len(w.upd)+len(w.del)+len(w.relink)+len(w.rehome) > 0 {
			return nil, pinErr
		}
		return w, nil
	}
	w.order = typeOrder(types)
	// Parents are placed first, so that a child's ShardChooser (FollowParent)
	// and its owner rule see their shard: w.ins is reordered model by model
	// in insert order, keeping the order of addition within a model.
	if len(w.order) > 1 {
		byType := make(map[*modelInfo][]*entry, len(w.order))
		for _, e := range w.ins {
			byType[e.mi] = append(byType[e.mi], e)
		}
		w.ins = w.ins[:0]
		for _, mi := range w.order {
			w.ins = append(w.ins, byType[mi]...)
		}
	}
	// One pass per new object: place it, check its links, group it.
	var byShard map[ShardID][]*entry
	last = nil
	for _, e := range w.ins {
		chosen, err := u.place(ctx, e, pin)
		if err != nil {
			return nil, err
		}
		var rechoose func() (ShardID, error)
		if chosen {
			rechoose = func() (ShardID, error) {
				// place wrote the shard on the Token, which placeObject (and
				// many choosers) would take as the answer: ask without it.
				if tok := e.mi.token(e.val()); tok != nil {
					tok.SetShard("")
					defer tok.SetShard(e.shard)
				}
				return u.s.placeObject(ctx, "insert", e.mi, e.val(), writePin{}, -1)
			}
		}
		if err := u.s.beforeInsert(ctx, "flush: insert", e.mi, e.val(), e.shard, -1, rechoose); err != nil {
			return nil, err
		}
		if err := u.checkLinks(ctx, e); err != nil {
			return nil, err
		}
		if e.mi != last {
			if byShard = w.inserts[e.mi]; byShard == nil {
				byShard = map[ShardID][]*entry{}
				w.inserts[e.mi] = byShard
			}
			last = e.mi
		}
		byShard[e.shard] = append(byShard[e.shard], e)
	}
	// After every placement: a link's two ends must both be placed.
	if err := u.planLinks(ctx, w); err != nil {
		return nil, err
	}
	for _, e := range w.del {
		if e.shard == "" {
			id, err := u.view.placeObject(ctx, "delete", e.mi, e.val(), pin, -1)
			if err != nil {
				return nil, err
			}
			e.shard = id
		} else if err := u.s.vetWrite(ctx, "flush: delete", e.mi, e.val(), e.shard, "its Token", false, -1); err != nil {
			return nil, err
		}
		// A unit on a Using view deletes nothing outside it: refused here,
		// before anything is sent (conn's own check comes mid-flush).
		if err := u.outside([]ShardID{e.shard}, "its Token", "flush: delete "+describe(e.mi, e.val(), -1)); err != nil {
			return nil, err
		}
		byShard := w.deletes[e.mi]
		if byShard == nil {
			byShard = map[ShardID][]*entry{}
			w.deletes[e.mi] = byShard
		}
		byShard[e.shard] = append(byShard[e.shard], e)
	}
	groups := map[string]*updateGroup{}
	for _, e := range w.upd {
		if err := u.s.vetWrite(ctx, "flush: update", e.mi, e.val(), e.shard, "its Token", false, -1); err != nil {
			return nil, err
		}
		if err := u.checkLinks(ctx, e); err != nil {
			return nil, err
		}
		cols := changed[e]
		names := make([]string, len(cols))
		for i, c := range cols {
			names[i] = c.Name
		}
		if !pin.wins {
			if err := u.s.keyMoved(ctx, "flush: update "+describe(e.mi, e.val(), -1), e.mi, e.val(), e.shard, names); err != nil {
				return nil, err
			}
		}
		k := string(e.shard) + "\x00" + e.mi.typ.String() + "\x00" + strings.Join(names, ",")
		g, ok := groups[k]
		if !ok {
			g = &updateGroup{mi: e.mi, cols: cols}
			groups[k] = g
			w.updates[e.shard] = append(w.updates[e.shard], g)
		}
		g.entries = append(g.entries, e)
	}
	return w, nil
}

// place decides the shard of a new object: a pin, else its Token, else its
// owner's shard, else the ShardChooser's answer. It records the shard on
// the object's Token (undone by unplace if the flush does not happen).
// chosen says that the ShardChooser decided.
func (u *UnitOfWork) place(ctx context.Context, e *entry, pin writePin) (chosen bool, err error) {
	v := e.val()
	tok := e.mi.token(v)
	var have ShardID
	if tok != nil {
		have, _ = tok.Shard()
	}
	var id ShardID
	by := "its Token"
	switch {
	case pin.id != "":
		if id, err = u.view.placeObject(ctx, "insert", e.mi, v, pin, -1); err != nil {
			return false, err
		}
	case have != "":
		if _, ok := u.s.shards[have]; !ok {
			return false, u.s.unknown(have, "insert "+e.mi.table.TypeName+" (the object's token)")
		}
		if !pin.wins { // a struct copy of a loaded object carries its Token
			if err := u.s.keyMoved(ctx, "flush: insert "+describe(e.mi, v, -1), e.mi, v, have, nil); err != nil {
				return false, err
			}
		}
		id = have
	case e.owner != nil && e.owner.shard != "":
		id, by = e.owner.shard, "its parent "+e.owner.mi.table.TypeName
	case u.heldShard(e) != "":
		id, by = u.heldShard(e), "the child it holds"
	default:
		if id, err = u.s.placeObject(ctx, "insert", e.mi, v, writePin{}, -1); err != nil {
			return false, err
		}
		chosen = true
	}
	if pin.id == "" && !chosen {
		if err := u.s.vetWrite(ctx, "flush: insert", e.mi, v, id, by, false, -1); err != nil {
			return false, err
		}
	}
	e.shard = id
	if tok != nil && have != id {
		u.s.setShard(tok, id)
		e.placed = true
	}
	return chosen, nil
}

// heldShard returns the shard of a stored object that the new object e
// holds in a has-one relation, or "": a new parent is placed with the
// stored child it holds, as a new child follows the stored parent it
// belongs to (SQLAlchemy's shard_chooser recursing through the relation).
// A second child on another shard is refused later by checkLinks.
func (u *UnitOfWork) heldShard(e *entry) ShardID {
	v := e.val()
	for _, rel := range e.mi.unit(u.s).owned {
		if rel.Type != schema.HasOneRelation {
			continue
		}
		var id ShardID
		related(v, rel, func(p reflect.Value) {
			if c, ok := u.lookup(p.Interface()); ok && c.state == statePending {
				return // a new child follows its parent, not the reverse
			}
			if id == "" {
				id = u.shardOf(p)
			}
		})
		if id != "" {
			return id
		}
	}
	return ""
}

// unplace undoes the placements of a flush that did not happen: pending
// objects get their Tokens back as they were.
func (u *UnitOfWork) unplace() {
	for _, e := range u.tracked {
		if e.state != statePending {
			continue
		}
		if e.placed {
			if tok := e.mi.token(e.val()); tok != nil {
				tok.SetShard("")
			}
			e.placed = false
		}
		e.shard = ""
	}
}

// adoptHeld makes the object p (a pointer), held by e's relation, a new
// object that e owns (ownerRel: the index of the relation in e's owned
// relations, or -1 for a many-to-many relation, which decides only
// placement), unless it is stored already: tracked but not new, or placed
// on a shard by its Token. A tracked new object that no parent owns yet
// gets e as its owner. An object whose model has no primary key (Bun
// refuses such relations, so only what is not a model at all) is left out.
func (u *UnitOfWork) adoptHeld(e *entry, p reflect.Value, ownerRel int32) {
	if c, ok := u.lookup(p.Interface()); ok {
		if c.state == statePending && c.owner == nil {
			c.owner, c.ownerRel = e, ownerRel
		}
		return
	}
	mi, err := u.s.info(p.Type().Elem())
	if err != nil || len(mi.table.PKs) == 0 {
		return
	}
	if tok := mi.token(p.Elem()); tok != nil {
		if _, stored := tok.Shard(); stored {
			return
		}
	}
	c := u.add(p, mi)
	c.owner, c.ownerRel = e, ownerRel
}

// cascade tracks, as new objects, the untracked objects that tracked ones
// reach: children in has-one and has-many relations that have no shard on
// their Token (or no Token), which are then owned by their parent; and
// parents in belongs-to relations that carry an unplaced Token (so they were
// never stored). Objects placed on a shard are stored rows, not new ones.
func (u *UnitOfWork) cascade() {
	for i := 0; i < len(u.tracked); i++ { // grows while we walk it
		e := u.tracked[i]
		if e.state != statePending && e.state != statePersistent {
			continue
		}
		um := e.mi.unit(u.s)
		if len(um.owned) == 0 && len(um.belongsTo) == 0 && len(um.m2m) == 0 {
			continue
		}
		v := e.val()
		u.cascadeM2M(e, um) // a stored object's too: an object appended to its relation is placed with it
		for ri, rel := range um.owned {
			related(v, rel, func(p reflect.Value) { u.adoptHeld(e, p, int32(ri)) })
		}
		for i, rel := range um.belongsTo {
			mi := um.parentInfo[i]
			if mi == nil || mi.tokenOf == nil || len(mi.table.PKs) == 0 {
				continue // no Token: nothing says whether the row exists
			}
			related(v, rel, func(p reflect.Value) {
				// The Token first: a placed parent is a stored row, and most
				// parents are (no map lookup for them).
				tok := mi.token(p.Elem())
				if tok == nil {
					return
				}
				if _, stored := tok.Shard(); stored {
					return
				}
				if _, ok := u.lookup(p.Interface()); !ok {
					u.add(p, mi)
				}
			})
		}
	}
}

// related calls fn with a pointer to each object v's relation rel holds: a
// non-nil pointer (even to a zero struct), a non-zero struct held by value
// (a by-value field has no nil, so its zero value holds nothing), or each
// element of a slice. It is the session's one relation walker: a unit's
// cascades, links and m2m writes, and Session.Insert's and Update's
// RelationRouter checks all see the same objects.
func related(v reflect.Value, rel *schema.Relation, fn func(p reflect.Value)) {
	f := fieldOf(v, rel.Field)
	if !f.IsValid() {
		return
	}
	switch f.Kind() {
	case reflect.Pointer:
		if !f.IsNil() {
			fn(f)
		}
	case reflect.Struct:
		if f.CanAddr() && !f.IsZero() {
			fn(f.Addr())
		}
	case reflect.Slice:
		for i := range f.Len() {
			el := f.Index(i)
			if el.Kind() == reflect.Pointer {
				if !el.IsNil() {
					fn(el)
				}
			} else {
				fn(el.Addr())
			}
		}
	}
}

// shardOf returns the shard of a related object (a pointer): its Token
// (which the unit keeps equal to its own record), else the unit's record
// of it; "" when unknown.
func (u *UnitOfWork) shardOf(p reflect.Value) ShardID {
	if id, ok := identity.ShardOf(p.Interface()); ok {
		return id
	}
	if e, ok := u.lookup(p.Interface()); ok {
		return e.shard
	}
	return ""
}

// checkLinks refuses an object related to an object the rules deny: the
// session's one decision, mayRelate (its RelationRouter, asked about every
// related object, placed or not, as Session.Insert asks; else the default,
// which denies objects on two different shards unless the unit allows it
// with AllowCrossShard).
func (u *UnitOfWork) checkLinks(ctx context.Context, e *entry) error {
	um := e.mi.unit(u.s)
	v := e.val()
	for _, rels := range [][]*schema.Relation{um.belongsTo, um.owned} {
		for _, rel := range rels {
			var err error
			related(v, rel, func(p reflect.Value) {
				if err == nil {
					err = u.linkErr(ctx, e, rel, p)
				}
			})
			if err != nil {
				return err
			}
		}
	}
	return nil
}

// linkErr applies checkLinks' rules to one related object p (a pointer)
// that e holds in its relation rel.
func (u *UnitOfWork) linkErr(ctx context.Context, e *entry, rel *schema.Relation, p reflect.Value) error {
	other := u.shardOf(p)
	if u.s.relRouter == nil && (u.cfg.crossShard || e.shard == "" || other == "" || e.shard == other) {
		return nil // what mayRelate answers without a RelationRouter, without building its Objects
	}
	self := chooser.Object{Table: e.mi.table, Obj: e.ptr, Shard: e.shard}
	them := chooser.Object{Table: rel.JoinTable, Obj: p.Interface(), Shard: other}
	ok, by := u.s.mayRelate(ctx, self, them, u.cfg.crossShard)
	if ok {
		return nil
	}
	where := "no shard yet"
	if other != "" {
		where = "shard " + string(other)
	}
	return fmt.Errorf("%w: flush: a %s on shard %s is linked through %s.%s to a %s on %s; %s",
		ErrRelationDenied, e.mi.table.TypeName, e.shard, e.mi.table.TypeName, rel.Field.GoName,
		rel.JoinTable.TypeName, where, by)
}

// typeOrder orders models so that a model comes after the models it
// belongs to (whose key it holds): the insert order; deletes use the
// reverse. Ties, and cycles, keep the order in which the models were met.
func typeOrder(types []*modelInfo) []*modelInfo {
	n := len(types)
	if n < 2 {
		return types
	}
	index := make(map[reflect.Type]int, n)
	for i, mi := range types {
		index[mi.typ] = i
	}
	after := make([][]int, n) // after[i]: the models i must follow
	for i, mi := range types {
		for _, rel := range mi.table.Relations {
			j, ok := index[rel.JoinTable.Type]
			if !ok || j == i {
				continue
			}
			switch rel.Type {
			case schema.BelongsToRelation:
				after[i] = append(after[i], j)
			case schema.HasOneRelation, schema.HasManyRelation:
				after[j] = append(after[j], i)
			}
		}
	}
	out := make([]*modelInfo, 0, n)
	done := make([]bool, n)
	for len(out) < n {
		pick := -1
		for i := range n {
			if done[i] {
				continue
			}
			ready := true
			for _, j := range after[i] {
				ready = ready && done[j]
			}
			if ready {
				pick = i
				break
			}
		}
		if pick < 0 { // a cycle: take the first model left
			for i := range n {
				if !done[i] {
					pick = i
					break
				}
			}
		}
		done[pick] = true
		out = append(out, types[pick])
	}
	return out
}

// execute sends the work: inserts model by model (parents first), then
// updates, then deletes model by model (children first). Within a step the
// shards run in parallel, each in its transaction; the first failure stops
// the flush.
func (u *UnitOfWork) execute(ctx context.Context, w *work) error {
	for _, mi := range w.order {
		groups := w.inserts[mi]
		if len(groups) == 0 {
			continue
		}
		// Why here and not in plan: a parent's key may be generated by its
		// INSERT (RETURNING), which ran in the previous step.
		for _, es := range groups {
			u.syncKeys(es)
		}
		err := u.phase(ctx, "insert "+mi.table.TypeName, groups, func(ctx context.Context, db bun.IDB, es []*entry) error {
			_, err := db.NewInsert().Model(models(mi, es)).Exec(ctx)
			return err
		})
		if err != nil {
			return err
		}
	}
	// Join rows after every insert: they hold keys that an INSERT may
	// have generated (RETURNING).
	if err := u.insertLinks(ctx, w); err != nil {
		return err
	}
	if err := u.deleteLinks(ctx, w); err != nil {
		return err
	}
	if len(w.updates) > 0 {
		ids := sortedKeys(w.updates)
		err := u.view.fanOutWrites(ctx, ids, "update", func(ctx context.Context, _ int, id ShardID, db bun.IDB) error {
			u.wrote(id)
			for _, g := range w.updates[id] {
				if err := update(ctx, db, g); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for i := len(w.order) - 1; i >= 0; i-- {
		mi := w.order[i]
		groups := w.deletes[mi]
		if len(groups) == 0 {
			continue
		}
		err := u.phase(ctx, "delete "+mi.table.TypeName, groups, func(ctx context.Context, db bun.IDB, es []*entry) error {
			err := expectRows(db.NewDelete().Model(models(mi, es)).WherePK().Exec(ctx))(len(es))
			if err != nil {
				return fmt.Errorf("delete %s: %w", mi.table.TypeName, err)
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return nil
}

// phase runs fn on the objects of each shard of groups, the shards in
// parallel.
func (u *UnitOfWork) phase(ctx context.Context, op string, groups map[ShardID][]*entry,
	fn func(ctx context.Context, db bun.IDB, es []*entry) error,
) error {
	return u.view.fanOutWrites(ctx, sortedKeys(groups), op, func(ctx context.Context, _ int, id ShardID, db bun.IDB) error {
		u.wrote(id)
		return fn(ctx, db, groups[id])
	})
}

func sortedKeys[V any](m map[ShardID]V) []ShardID {
	ids := make([]ShardID, 0, len(m))
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// models returns the Bun model for es: the object itself, or a *[]*T of
// them (so values the database returns land in the caller's objects).
func models(mi *modelInfo, es []*entry) any {
	return groupModel(mi, es, func(e *entry) reflect.Value { return reflect.ValueOf(e.ptr) })
}

// groupModel is the Model argument of one statement on objs, objects of
// model mi whose pointers ptr gives: the one object's pointer, or a
// pointer to a []*T of them (what Bun takes for a bulk statement).
func groupModel[E any](mi *modelInfo, objs []E, ptr func(E) reflect.Value) any {
	if len(objs) == 1 {
		return ptr(objs[0]).Interface()
	}
	ptrs := reflect.MakeSlice(reflect.SliceOf(reflect.PointerTo(mi.typ)), len(objs), len(objs))
	for i, o := range objs {
		ptrs.Index(i).Set(ptr(o))
	}
	p := reflect.New(ptrs.Type())
	p.Elem().Set(ptrs)
	return p.Interface()
}

// update sends one UPDATE that sets only the group's columns: by primary
// key for one object, and for several through a VALUES list joined on the
// primary key (Bun's bulk update, restricted to those columns).
func update(ctx context.Context, db bun.IDB, g *updateGroup) error {
	names := make([]string, len(g.cols))
	for i, c := range g.cols {
		names[i] = c.Name
	}
	n := len(g.entries)
	var err error
	if n == 1 {
		err = expectRows(db.NewUpdate().Model(g.entries[0].ptr).Column(names...).WherePK().Exec(ctx))(1)
	} else {
		t := g.mi.table
		m := models(g.mi, g.entries)
		cols := make([]string, 0, len(t.PKs)+len(names))
		var where, set strings.Builder
		for i, pk := range t.PKs {
			cols = append(cols, pk.Name)
			if i > 0 {
				where.WriteString(" AND ")
			}
			fmt.Fprintf(&where, "%s.%s = _data.%s", t.SQLAlias, pk.SQLName, pk.SQLName)
		}
		for i, c := range g.cols {
			cols = append(cols, c.Name)
			if i > 0 {
				set.WriteString(", ")
			}
			fmt.Fprintf(&set, "%s = _data.%s", c.SQLName, c.SQLName)
		}
		values := db.NewValues(m).Column(cols...)
		q := db.NewUpdate().With("_data", values).Model(m).TableExpr("_data").
			Set(set.String()).Where(where.String())
		err = expectRows(q.Exec(ctx))(n)
	}
	if err != nil {
		return fmt.Errorf("update %s (%s): %w", g.mi.table.TypeName, strings.Join(names, ", "), err)
	}
	return nil
}

// syncKeys fills the zero foreign keys of new objects from the objects they
// are linked to: an owned child gets its owner's key, and an object gets
// the key of each parent its belongs-to relations point to.
func (u *UnitOfWork) syncKeys(es []*entry) {
	for _, e := range es {
		v := e.val()
		if o := e.owner; o != nil && o.state != stateDetached && e.ownerRel >= 0 {
			rel := o.mi.unit(u.s).owned[e.ownerRel]
			copyKeys(v, rel.JoinPKs, o.val(), rel.BasePKs)
		}
		for _, rel := range e.mi.unit(u.s).belongsTo {
			related(v, rel, func(p reflect.Value) {
				copyKeys(v, rel.BasePKs, p.Elem(), rel.JoinPKs)
			})
		}
	}
}

// copyKeys sets each zero field dst[i] of the struct dv to the value of
// src[i] of the struct sv, when that is not zero.
func copyKeys(dv reflect.Value, dst []*schema.Field, sv reflect.Value, src []*schema.Field) {
	for i := range dst {
		if i >= len(src) {
			return
		}
		from := fieldOf(sv, src[i])
		if !from.IsValid() || from.IsZero() {
			continue
		}
		to := dst[i].Value(dv)
		if !to.IsZero() {
			continue
		}
		assignValue(to, from)
	}
}

// assignValue sets to from from, following or making pointers and
// converting between numeric types.
func assignValue(to, from reflect.Value) {
	for from.Kind() == reflect.Pointer && to.Kind() != reflect.Pointer {
		if from.IsNil() {
			return
		}
		from = from.Elem()
	}
	switch {
	case from.Type().AssignableTo(to.Type()):
		to.Set(from)
	case to.Kind() == reflect.Pointer && from.Type().AssignableTo(to.Type().Elem()):
		p := reflect.New(to.Type().Elem())
		p.Elem().Set(from)
		to.Set(p)
	case from.Type().ConvertibleTo(to.Type()) && convertible(from.Kind(), to.Kind()):
		to.Set(from.Convert(to.Type()))
	}
}

// settle records what a successful flush did.
func (u *UnitOfWork) settle(w *work) {
	u.snapshots(w.ins)
	// The identity map gets the new objects model by model and shard by
	// shard (w.inserts holds every entry of w.ins), each part sized once,
	// not grown step by step through ten thousand adds.
	for mi, byShard := range w.inserts {
		for id, es := range byShard {
			u.ids.Grow(mi.typ, id, len(es))
			for _, e := range es {
				if _, added := u.ids.Add(e.st.key, e); !added {
					// Only a row deleted by an earlier flush of this unit can
					// have left its key behind; the new object is the one to
					// track.
					u.ids.Delete(e.st.key)
					u.ids.Add(e.st.key, e)
				}
			}
		}
	}
	u.inserted = slices.Grow(u.inserted, len(w.ins))
	for _, e := range w.ins {
		e.state = statePersistent
		e.placed = false
		u.inserted = append(u.inserted, e)
	}
	for _, e := range w.upd {
		e.st.snap = u.snapshot(e.mi, e.val())
	}
	for _, e := range w.relink {
		u.snapLinks(e.st.snap, e.mi, e.val())
	}
	for _, e := range w.rehome {
		if e.st != nil && e.st.snap != nil {
			u.snapOwned(e.st.snap, e.mi, e.val())
		}
	}
	for _, e := range w.del {
		u.detach(e)
	}
	u.tracked = slices.DeleteFunc(u.tracked, func(e *entry) bool { return e.state == stateDetached })
}
