package session

import (
	"bytes"
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// unitModel is what a unit of work needs to know about a model, worked out
// once per model.
type unitModel struct {
	cols      []unitCol          // every column, primary keys first
	belongsTo []*schema.Relation // parents: this model holds their key
	owned     []*schema.Relation // has-one and has-many: children hold this model's key
	m2m       []*schema.Relation // many-to-many: join rows hold both keys (m2m.go)

	// parentInfo[i] is the model of belongsTo[i] (nil if it is not a
	// model), so that a flush reads a parent's Token without a lookup.
	parentInfo []*modelInfo
}

// unitCol is one column and how its snapshot is compared.
type unitCol struct {
	f *schema.Field
	// byValue: the Go value holds no references (numbers, strings, times,
	// arrays and structs of those), so a struct copy is a faithful snapshot
	// and == compares it. Other columns (pointers, slices, maps, JSON) are
	// snapshot as the SQL Bun would send for them.
	byValue bool
}

// unit returns what a unit of work needs to know about mi's model. s is
// the session whose model cache holds mi.
func (mi *modelInfo) unit(s *Session) *unitModel {
	mi.unitOnce.Do(func() {
		um := &unitModel{}
		for _, f := range mi.table.Fields {
			um.cols = append(um.cols, unitCol{f: f, byValue: byValue(f.StructField.Type)})
		}
		for _, rel := range mi.table.Relations {
			switch rel.Type {
			case schema.BelongsToRelation:
				um.belongsTo = append(um.belongsTo, rel)
			case schema.HasOneRelation, schema.HasManyRelation:
				um.owned = append(um.owned, rel)
			case schema.ManyToManyRelation:
				um.m2m = append(um.m2m, rel)
			}
		}
		// Map order is random: field order keeps flushes reproducible.
		byField := func(a, b *schema.Relation) int { return slices.Compare(a.Field.Index, b.Field.Index) }
		slices.SortFunc(um.belongsTo, byField)
		slices.SortFunc(um.owned, byField)
		slices.SortFunc(um.m2m, byField)
		um.parentInfo = make([]*modelInfo, len(um.belongsTo))
		for i, rel := range um.belongsTo {
			um.parentInfo[i], _ = s.info(rel.JoinTable.Type)
		}
		mi.unitInfo = um
	})
	return mi.unitInfo
}

func byValue(t reflect.Type) bool {
	switch t.Kind() {
	case reflect.Bool, reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr,
		reflect.Float32, reflect.Float64, reflect.Complex64, reflect.Complex128, reflect.String:
		return true
	case reflect.Array:
		return byValue(t.Elem())
	case reflect.Struct:
		if t == reflect.TypeFor[time.Time]() { // its *Location is immutable
			return true
		}
		for i := range t.NumField() {
			if !byValue(t.Field(i).Type) {
				return false
			}
		}
		return true
	}
	return false
}

// snapshot is an object's columns as of its load or last flush.
type snapshot struct {
	copy  reflect.Value // a copy of the struct (for byValue columns)
	enc   [][]byte      // per column: the SQL of a reference column, nil for byValue ones
	links []heldSet     // per many-to-many relation (unitModel.m2m): the objects it held
	owned []heldSet     // per has-one and has-many relation (unitModel.owned): the children it held (hasmany.go)
}

func (u *UnitOfWork) snapshot(mi *modelInfo, v reflect.Value) *snapshot {
	sn := &snapshot{}
	u.snapshotInto(sn, mi, v, reflect.New(mi.typ).Elem())
	return sn
}

// snapshotInto takes the snapshot of v, an object of mi's model, into sn,
// with cp (a settable zero value of the model's struct) as its copy.
func (u *UnitOfWork) snapshotInto(sn *snapshot, mi *modelInfo, v, cp reflect.Value) {
	cp.Set(v)
	sn.copy = cp
	cols := mi.unit(u.s).cols
	var gen schema.QueryGen
	for i, c := range cols {
		if c.byValue {
			continue
		}
		if sn.enc == nil {
			sn.enc = make([][]byte, len(cols))
			gen = u.gen()
		}
		sn.enc[i] = c.f.AppendValue(gen, nil, v)
	}
	u.snapLinks(sn, mi, v)
	u.snapOwned(sn, mi, v)
}

// snapshots takes the snapshots of the objects of es, which a flush has
// just inserted, and gives each its stored part (identity key and
// snapshot): one allocation for the stored parts, one for the snapshots
// and one per model for the copies, not three per object. A Commit keeps
// every object it inserted (W5: 10,000 of them), and took about 50,000
// allocations for this alone. The slabs live as long as the last of their
// objects is tracked.
func (u *UnitOfWork) snapshots(es []*entry) {
	if len(es) == 0 {
		return
	}
	type slab struct {
		s reflect.Value // a []T of the model's struct
		n int
	}
	var one *modelInfo // the model of every entry so far: most flushes insert one
	var slabs map[*modelInfo]*slab
	for _, e := range es {
		if one == nil {
			one = e.mi
		}
		if e.mi != one && slabs == nil {
			slabs = map[*modelInfo]*slab{}
		}
	}
	if slabs != nil {
		for _, e := range es {
			sl := slabs[e.mi]
			if sl == nil {
				sl = &slab{}
				slabs[e.mi] = sl
			}
			sl.n++
		}
	} else {
		slabs = map[*modelInfo]*slab{one: {n: len(es)}}
	}
	for mi, sl := range slabs {
		sl.s, sl.n = reflect.MakeSlice(reflect.SliceOf(mi.typ), sl.n, sl.n), 0
	}
	sts := make([]stored, len(es))
	sns := make([]snapshot, len(es))
	for i, e := range es {
		v := e.val()
		sl := slabs[e.mi]
		u.snapshotInto(&sns[i], e.mi, v, sl.s.Index(sl.n))
		sl.n++
		sts[i] = stored{key: keyOf(e.mi, e.shard, v), snap: &sns[i]}
		e.st = &sts[i]
	}
}

// keyOf returns the identity key of v, an object of mi's model, on shard.
func keyOf(mi *modelInfo, shard ShardID, v reflect.Value) identity.Key {
	if pks := mi.table.PKs; len(pks) == 1 { // no []any to allocate
		if mi.intPK { // nor a boxed int64
			return identity.NewIntKey(mi.typ, shard, pks[0].Value(v).Int())
		}
		return identity.NewKey(mi.typ, shard, pks[0].Value(v).Interface())
	}
	return identity.NewKey(mi.typ, shard, pkOf(mi, v)...)
}

func (u *UnitOfWork) gen() schema.QueryGen { return schema.NewQueryGen(u.s.dialect) }

// changes returns the columns of e that differ from its snapshot, and
// whether a primary-key column is among them.
func (u *UnitOfWork) changes(e *entry) (cols []*schema.Field, pkChanged bool) {
	gen := u.gen()
	v, snap := e.val(), e.st.snap
	for i, c := range e.mi.unit(u.s).cols {
		if c.f.SkipUpdate() && !c.f.IsPK {
			continue
		}
		var same bool
		if c.byValue {
			cur, old := fieldOf(v, c.f), fieldOf(snap.copy, c.f)
			// == first; values that differ in Go but not in SQL (NaN, a time
			// in another zone) are compared as the SQL Bun would send.
			same = cur.Equal(old) || bytes.Equal(c.f.AppendValue(gen, nil, v), c.f.AppendValue(gen, nil, snap.copy))
		} else {
			same = bytes.Equal(c.f.AppendValue(gen, nil, v), snap.enc[i])
		}
		if !same {
			if c.f.IsPK {
				pkChanged = true
			}
			cols = append(cols, c.f)
		}
	}
	return cols, pkChanged
}

// fieldOf returns the field f of the struct v without allocating nil
// embedded pointers (a zero Value when one is nil).
func fieldOf(v reflect.Value, f *schema.Field) reflect.Value {
	fv, err := v.FieldByIndexErr(f.Index)
	if err != nil {
		return reflect.Value{}
	}
	return fv
}

// adopt merges a loaded object p (a pointer to a struct of mi's model) into
// the identity map and returns the object to hand out: the tracked one when
// its key is tracked (the tracked object wins; relations it has not loaded
// are filled from p), else p, now tracked. shard is where p was loaded
// from, or "" to read it from p's Token. The related objects loaded with p
// through rels and held by pointer are adopted too. An object whose shard
// is unknown is returned untracked.
func (u *UnitOfWork) adopt(mi *modelInfo, p reflect.Value, shard ShardID, rels relTree) reflect.Value {
	v := p.Elem()
	if shard == "" {
		shard = shardOfLoaded(mi, v)
		if shard == "" {
			u.markFresh(p.Interface()) // returned untracked
			return p
		}
	}
	if _, ok := u.lookup(p.Interface()); ok { // the very object is tracked already
		u.adoptRelations(mi, v, rels)
		return p
	}
	key := keyOf(mi, shard, v)
	if e, ok := u.ids.Get(key); ok {
		if e.expired && e.state == statePersistent {
			u.merge(e, v) // the loaded row wins over the expired object's columns
		}
		u.fill(e, v, rels)
		return reflect.ValueOf(e.ptr)
	}
	e := &entry{ptr: p.Interface(), mi: mi, state: statePersistent, shard: shard,
		st: &stored{key: key, snap: u.snapshot(mi, v)}}
	u.markFresh(e.ptr)
	u.track(e)
	u.ids.Add(key, e)
	u.adoptRelations(mi, v, rels)
	return p
}

// adoptRelations adopts the objects held by pointer in v's relations rels.
func (u *UnitOfWork) adoptRelations(mi *modelInfo, v reflect.Value, rels relTree) {
	for name, sub := range rels {
		rel, ok := mi.table.Relations[name]
		if !ok {
			continue
		}
		child, err := u.s.info(rel.JoinTable.Type)
		if err != nil {
			continue
		}
		f := fieldOf(v, rel.Field)
		switch {
		case !f.IsValid():
		case f.Kind() == reflect.Pointer:
			if !f.IsNil() {
				f.Set(u.adopt(child, f, "", sub))
			}
		case f.Kind() == reflect.Slice && f.Type().Elem().Kind() == reflect.Pointer:
			for i := range f.Len() {
				if el := f.Index(i); !el.IsNil() {
					el.Set(u.adopt(child, el, "", sub))
				}
			}
		}
		// Values held by value (T, []T) are part of their parent's copy and
		// are not tracked on their own.
	}
}

// fill sets the relations of the tracked e that e has not loaded (a nil
// pointer or slice) from the freshly loaded struct v; relations e has
// loaded are kept, like its columns.
func (u *UnitOfWork) fill(e *entry, v reflect.Value, rels relTree) {
	for name, sub := range rels {
		rel, ok := e.mi.table.Relations[name]
		if !ok {
			continue
		}
		mine, theirs := fieldOf(e.val(), rel.Field), fieldOf(v, rel.Field)
		if !mine.IsValid() || !theirs.IsValid() {
			continue
		}
		switch mine.Kind() {
		case reflect.Pointer, reflect.Slice:
			if !mine.IsNil() || theirs.IsNil() {
				continue
			}
		default:
			continue
		}
		u.adoptRelations(e.mi, v, relTree{name: sub})
		mine.Set(theirs)
		u.markHeld(mine, rel)
		u.resnapRel(e, rel)
	}
}

// scan runs a unit's select into its *[]*T model and merges the rows into
// the identity map.
func (u *UnitOfWork) scan(ctx context.Context, q *SelectQuery) error {
	if err := u.enter(opSelect); err != nil {
		return err
	}
	defer u.leave()
	if q.err != nil {
		return q.err
	}
	if q.mi != nil && q.kind != destSlicePtr {
		return fmt.Errorf("%w: a unit of work's select scans into a *[]*%s, so that rows already tracked come back as "+
			"the tracked objects; got %T (use UnitOfWork.Get for one row)", ErrInvalidArgument, q.mi.typ.Name(), q.model)
	}
	var from ShardID
	if q.mi != nil && q.mi.tokenOf == nil {
		r, err := q.Route(ctx)
		if err != nil {
			return err
		}
		if len(r.Shards) > 1 {
			return fmt.Errorf("%w: model %s has no Token, so rows it loads from %d shards cannot be told apart; "+
				"embed session.Token in it, or pin one shard", ErrInvalidArgument, q.mi.table.TypeName, len(r.Shards))
		}
		if len(r.Shards) == 1 { // no shard: WhereShardKey criteria that match no row
			from = r.Shards[0]
		}
	}
	u.fresh = nil
	err := q.scan(ctx)
	if err != nil && !isPartial(err) {
		return err
	}
	rows := reflect.ValueOf(q.model).Elem()
	for i := range rows.Len() {
		el := rows.Index(i)
		switch {
		case el.IsNil():
		case q.projected:
			el.Set(u.tracked1(q.mi, el, from, q.rels))
		default:
			el.Set(u.adopt(q.mi, el, from, q.rels))
		}
	}
	if err == nil {
		err = q.s.fireLoads(ctx, u, rows, q.mi, q.rels, false, from) // loadhook.go
	}
	return err
}

// tracked1 returns the tracked object of a row a partial select loaded (p:
// a pointer to a struct of mi's model, which may lack columns), else p,
// untracked; p too when its primary key is zero, which may mean that the
// select left the key out. Why not track it: its snapshot and the object the identity
// map hands out would miss the columns the select left out, so a later Get
// would return them empty with no statement, a flush would compare against
// zero values, and full selects would keep returning the incomplete
// object. Untracked, it costs a later Get or full select one statement.
// The objects it holds through relations are not tracked either; a tracked
// object returned instead gets them in the relations rels that it has not
// loaded (a nil pointer or slice), untracked.
func (u *UnitOfWork) tracked1(mi *modelInfo, p reflect.Value, shard ShardID, rels relTree) reflect.Value {
	v := p.Elem()
	if shard == "" {
		if shard = shardOfLoaded(mi, v); shard == "" {
			u.markFresh(p.Interface()) // returned untracked
			return p
		}
	}
	pk := pkOf(mi, v)
	for _, f := range mi.table.PKs {
		// A zero key may be a key the select left out (Column("city")):
		// it does not say which row this is.
		if f.Value(v).IsZero() {
			u.markFresh(p.Interface()) // returned untracked
			return p
		}
	}
	e, ok := u.ids.Get(identity.NewKey(mi.typ, shard, pk...))
	if !ok {
		u.markFresh(p.Interface()) // returned untracked
		return p
	}
	for name := range rels {
		rel, ok := mi.table.Relations[name]
		if !ok {
			continue
		}
		mine, theirs := fieldOf(e.val(), rel.Field), fieldOf(v, rel.Field)
		if !mine.IsValid() || !theirs.IsValid() || (mine.Kind() != reflect.Pointer && mine.Kind() != reflect.Slice) ||
			!mine.IsNil() || theirs.IsNil() {
			continue
		}
		mine.Set(theirs)
		u.markHeld(mine, rel)
		u.resnapRel(e, rel)
	}
	return reflect.ValueOf(e.ptr)
}

// narrows reports whether the apply functions of a Relation(path) call
// on mi's model choose the related rows' columns (Column, ColumnExpr,
// ExcludeColumn), so that the related objects may lack columns. Bun keeps
// a query's columns to itself, so the test compares the column list of a
// probe SELECT of the related model with and without them: any difference
// counts, so an apply that rewrites the list at all makes the select
// partial. No statement is sent.
func (s *Session) narrows(mi *modelInfo, path string, apply []func(*bun.SelectQuery) *bun.SelectQuery) bool {
	if mi == nil || len(s.order) == 0 {
		return true // the model is not known yet: assume the worst
	}
	t := mi.table
	for _, name := range strings.Split(path, ".") {
		rel, ok := t.Relations[name]
		if !ok {
			return false // Bun refuses the unknown relation when the select runs
		}
		t = rel.JoinTable
	}
	db := s.shards[s.order[0]]
	probe := func(apply []func(*bun.SelectQuery) *bun.SelectQuery) string {
		q := db.NewSelect().Model(reflect.New(t.Type).Interface())
		for _, fn := range apply {
			if fn != nil {
				q = fn(q)
			}
		}
		sql := q.String()
		if i := strings.Index(sql, " FROM "); i >= 0 {
			return sql[:i]
		}
		return sql
	}
	return probe(apply) != probe(nil)
}
