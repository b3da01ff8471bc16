package loader

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"unsafe"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/fanout"
	"github.com/bunshard/bunshard/internal/pgxscan"
)

// Conns gives the handle statements on one shard run on. [Shards] is the
// plain one; package session's gives a unit of work's transactions.
type Conns interface {
	// Conn returns the handle for shard id (a shard's database, or a
	// transaction on it) and the context to run its statements with. An
	// error fails the load with a *ShardError naming id.
	Conn(ctx context.Context, id identity.ShardID) (context.Context, bun.IDB, error)
}

// Shards is a [Conns] of plain shard handles, one per shard; a *bun.DB and
// a bun.Tx both fit. Conn fails for a shard the map does not hold.
type Shards map[identity.ShardID]bun.IDB

// Conn returns the handle of shard id, or an error naming the shard when
// the map has none.
func (s Shards) Conn(ctx context.Context, id identity.ShardID) (context.Context, bun.IDB, error) {
	db, ok := s[id]
	if !ok {
		return ctx, nil, fmt.Errorf("loader: unknown shard %q", id)
	}
	return ctx, db, nil
}

var _ Conns = Shards(nil)

// Router says where the relation query for the parents of one shard runs.
// Without one ([WithRouter]), [Load] sends each group to its parents' own
// shard ([ParentShard]).
type Router interface {
	// Route returns where the relation query of table's rows for the
	// parents of shard from runs. from is "" for parents whose shard is
	// unknown (no Token, or one never set); pinned says the parents were
	// loaded by a pinned statement ([identity.Token.PinShard]). An error
	// fails the load before any statement is sent.
	Route(ctx context.Context, table *schema.Table, from identity.ShardID, pinned bool) (Route, error)
}

// RouterFunc adapts a function to a [Router].
type RouterFunc func(ctx context.Context, table *schema.Table, from identity.ShardID, pinned bool) (Route, error)

// Route calls f.
func (f RouterFunc) Route(ctx context.Context, table *schema.Table, from identity.ShardID, pinned bool) (Route, error) {
	return f(ctx, table, from, pinned)
}

// ParentsRouter is a [Router] that is told the parents themselves: [Load]
// calls RouteParents instead of Route when its Router is one. parents are
// the group's parents (addressable structs of the parents' model, all of
// shard from), which a router must not modify: Django's instance hint.
type ParentsRouter interface {
	Router
	RouteParents(ctx context.Context, table *schema.Table, from identity.ShardID, pinned bool, parents []reflect.Value) (Route, error)
}

// ParentShard is the default [Router]: each relation lives on its parents'
// shard, and the pin of pinned parents propagates to what they load. It
// fails for parents whose shard is unknown.
var ParentShard Router = RouterFunc(parentShard)

func parentShard(_ context.Context, table *schema.Table, from identity.ShardID, pinned bool) (Route, error) {
	if from == "" {
		return Route{}, fmt.Errorf("the parents have no shard on their Token (their model %s has no identity.Token, or it was never set), and no Router says where %s lives",
			table.TypeName, table.TypeName)
	}
	return Route{Shards: []identity.ShardID{from}, Pinned: pinned}, nil
}

// Option is an optional setting of [Load].
type Option func(*config)

type config struct {
	router      Router
	tracker     Tracker
	concurrency int
}

// WithRouter makes [Load] ask r where each group of parents' relation
// lives, instead of [ParentShard].
func WithRouter(r Router) Option { return func(c *config) { c.router = r } }

// WithTracker makes [Load] merge loaded objects into t, a unit of work's
// identity map, and take belongs-to targets t already holds from it without
// a statement.
func WithTracker(t Tracker) Option { return func(c *config) { c.tracker = t } }

// WithConcurrency bounds how many shard queries of one [Load] run at once;
// n < 1 (the default) means no bound.
func WithConcurrency(n int) Option { return func(c *config) { c.concurrency = n } }

// Route is where one group of relation loads runs.
type Route struct {
	Shards []identity.ShardID
	// Pinned says the route is a pin (SetShardID, a Using view, or the
	// parent's propagated pin): the objects loaded are pinned too.
	Pinned bool
	// Shared says the route does not depend on the parents' shard (a pin
	// of the statement or of the context): the parents of every shard are
	// then loaded together, with one statement per shard of the route.
	Shared bool
}

// Tracker is the identity map of a unit of work, as the loader sees it.
type Tracker interface {
	// Lookup returns the tracked object (a pointer) whose primary key is pk
	// on one of the shards a belongs-to target of a parent of shard from may
	// live on, and false when none is tracked.
	Lookup(ctx context.Context, table *schema.Table, from identity.ShardID, pk []any) (reflect.Value, bool, error)
	// Adopt returns the object to keep for obj (a pointer to a struct of
	// table's model) loaded from shard: the tracked one when its key is
	// already tracked, else obj, which is tracked from now on. Load calls
	// it from one goroutine at a time, after every statement has returned.
	Adopt(table *schema.Table, shard identity.ShardID, obj reflect.Value) reflect.Value
}

// ParentTracker is a [Tracker] that is told the parent whose belongs-to
// target it looks up: [Load] calls LookupParent instead of Lookup when its
// Tracker is one. parent is an addressable struct the tracker must not
// modify.
type ParentTracker interface {
	Tracker
	LookupParent(ctx context.Context, table *schema.Table, from identity.ShardID, pk []any, parent reflect.Value) (reflect.Value, bool, error)
}

// Load loads the relation named rel (a Go field name of a has-one,
// belongs-to, has-many or m2m relation of table's model) of parents,
// addressable structs of that model already in memory. Its [Loaded] result
// gives the objects it loaded, so that a nested relation can be loaded from
// them.
//
// Statements run on the handles conns gives. Parents are grouped by the
// shard on their [identity.Token]; each group's query runs where the
// [Router] says (by default the parents' own shard), with the keys of all the group's parents in one IN list: one
// statement per parent shard and target shard, never one per parent. Each
// loaded object's Token records the shard it came from. Has-many and m2m
// fields are replaced by what was found (an empty, non-nil slice when
// nothing was); has-one and belongs-to fields are set to the first match in
// route order, or to their zero value.
//
// Queries on several shards run concurrently; the first failure cancels the
// others and is returned as a *ShardError. On error the parents are left
// untouched.
func Load(ctx context.Context, conns Conns, table *schema.Table, parents []reflect.Value, rel string, opts ...Option) (*Loaded, error) {
	r, ok := table.Relations[rel]
	if !ok {
		names := make([]string, 0, len(table.Relations))
		for name := range table.Relations {
			names = append(names, name)
		}
		slices.Sort(names)
		return nil, fmt.Errorf("loader: model %s has no relation %q (its relations: %s)", table.TypeName, rel, strings.Join(names, ", "))
	}
	if err := checkField(table, r); err != nil {
		return nil, err
	}
	l := &load{conns: conns, cfg: config{router: ParentShard}, table: table, rel: r, parents: parents}
	for _, o := range opts {
		o(&l.cfg)
	}
	if err := l.plan(ctx); err != nil {
		return nil, err
	}
	if err := l.run(ctx); err != nil {
		return nil, err
	}
	l.adopt()
	l.assign()
	return &Loaded{l: l}, nil
}

// Loaded is the result of a [Load].
type Loaded struct {
	l *load
}

// Table returns the model of the loaded objects.
func (r *Loaded) Table() *schema.Table { return r.l.rel.JoinTable }

// Objects returns the loaded objects as they now sit in the parents'
// relation fields (addressable structs; values copied into []T or T fields
// are those copies), each once. It is worked out on demand: a load that is
// not followed by a nested one does not pay for it.
func (r *Loaded) Objects() []reflect.Value { return r.l.collect() }

// checkField checks that the relation's field has a shape Load can fill:
// a slice ([]*T or []T) for has-many and m2m, a pointer or a struct for
// has-one and belongs-to.
func checkField(table *schema.Table, r *schema.Relation) error {
	t := r.Field.StructField.Type
	jt := r.JoinTable.Type
	var ok bool
	switch r.Type {
	case schema.HasManyRelation, schema.ManyToManyRelation:
		ok = t.Kind() == reflect.Slice && (t.Elem() == jt || t.Elem() == reflect.PointerTo(jt))
	case schema.HasOneRelation, schema.BelongsToRelation:
		ok = t == jt || t == reflect.PointerTo(jt)
	}
	if !ok {
		return fmt.Errorf("loader: %s.%s has type %s; Load fills []*%s or []%s for has-many and m2m, *%[4]s or %[4]s for has-one and belongs-to",
			table.TypeName, r.Field.GoName, t, jt.Name(), jt.Name())
	}
	return nil
}

// load is one call of Load.
type load struct {
	conns   Conns
	cfg     config
	table   *schema.Table
	rel     *schema.Relation
	parents []reflect.Value

	groups []*group
	tasks  []*task
	// hits are belongs-to targets found in the tracker: parent index ->
	// the tracked object (a pointer).
	hits map[int]reflect.Value
}

// group is the parents of one shard (and pin state).
type group struct {
	from    identity.ShardID
	pinned  bool
	parents []int     // indexes into load.parents
	route   Route     // where the group's query runs
	byKey   *keyIndex // key -> parents
	results []found   // per target shard, in route order
}

// task is one statement: a group's keys on one target shard.
type task struct {
	g      *group
	slot   int // index into g.results
	target identity.ShardID
}

// found is what one task's statement returned: the related objects and,
// row by row, the key that matches each to its parents. Objects are kept
// as raw pointers (to structs of the related model), not reflect.Values:
// a relation load handles tens of thousands of rows, and they are written
// into []*T fields as they are.
type found struct {
	objs []unsafe.Pointer
	ints []int64 // the rows' keys, when the index is on one integer column
	anys []any   // the rows' keys otherwise
}

func (l *load) plan(ctx context.Context) error {
	tok := identity.TokenFunc(l.table.Type)
	index := map[[2]any]*group{}
	for i, p := range l.parents {
		var from identity.ShardID
		var pinned bool
		if tok != nil {
			if t := tok(p); t != nil {
				from, _ = t.Shard()
				pinned = t.Pinned() && from != ""
			}
		}
		k := [2]any{from, pinned}
		g, ok := index[k]
		if !ok {
			g = &group{from: from, pinned: pinned}
			index[k] = g
			l.groups = append(l.groups, g)
		}
		g.parents = append(g.parents, i)
	}
	for _, g := range l.groups {
		if err := l.probe(ctx, g); err != nil {
			return err
		}
		if len(g.parents) == 0 {
			continue
		}
		var r Route
		var err error
		if pr, ok := l.cfg.router.(ParentsRouter); ok {
			parents := make([]reflect.Value, len(g.parents))
			for j, i := range g.parents {
				parents[j] = l.parents[i]
			}
			r, err = pr.RouteParents(ctx, l.rel.JoinTable, g.from, g.pinned, parents)
		} else {
			r, err = l.cfg.router.Route(ctx, l.rel.JoinTable, g.from, g.pinned)
		}
		if err != nil {
			return fmt.Errorf("loader: %s.%s: %w", l.table.TypeName, l.rel.Field.GoName, err)
		}
		g.route = r
	}
	l.mergeShared()
	for _, g := range l.groups {
		g.byKey = newKeyIndex(l.rel.BasePKs, l.childKeyFields(), l.parents, g.parents)
		if len(g.byKey.members()) == 0 {
			continue
		}
		g.results = make([]found, len(g.route.Shards))
		for slot, id := range g.route.Shards {
			l.tasks = append(l.tasks, &task{g: g, slot: slot, target: id})
		}
	}
	return nil
}

// mergeShared merges the groups whose routes are shared and equal: their
// keys go to the same shards in one statement per shard.
func (l *load) mergeShared() {
	var out []*group
	shared := map[string]*group{}
	for _, g := range l.groups {
		if !g.route.Shared {
			out = append(out, g)
			continue
		}
		k := fmt.Sprint(g.route.Shards, g.route.Pinned)
		if m, ok := shared[k]; ok {
			m.parents = append(m.parents, g.parents...)
			continue
		}
		shared[k] = g
		out = append(out, g)
	}
	l.groups = out
}

// childKeyFields are the fields of a loaded row (the m2m join model's for
// m2m) that hold the key of its parents.
func (l *load) childKeyFields() []*schema.Field {
	if l.rel.Type == schema.ManyToManyRelation {
		return l.rel.M2MBasePKs
	}
	return l.rel.JoinPKs
}

// probe takes belongs-to targets the tracker already holds out of the query.
func (l *load) probe(ctx context.Context, g *group) error {
	if l.cfg.tracker == nil || l.rel.Type != schema.BelongsToRelation || g.from == "" {
		return nil
	}
	kept := g.parents[:0]
	for _, i := range g.parents {
		pk, ok := values(l.rel.BasePKs, l.parents[i])
		if !ok {
			kept = append(kept, i)
			continue
		}
		var obj reflect.Value
		var found bool
		var err error
		if pt, ok := l.cfg.tracker.(ParentTracker); ok {
			obj, found, err = pt.LookupParent(ctx, l.rel.JoinTable, g.from, pk, l.parents[i])
		} else {
			obj, found, err = l.cfg.tracker.Lookup(ctx, l.rel.JoinTable, g.from, pk)
		}
		if err != nil {
			return fmt.Errorf("loader: %s.%s: %w", l.table.TypeName, l.rel.Field.GoName, err)
		}
		if !found {
			kept = append(kept, i)
			continue
		}
		if l.hits == nil {
			l.hits = map[int]reflect.Value{}
		}
		l.hits[i] = obj
	}
	g.parents = kept
	return nil
}

// run runs the tasks, fail-fast: the first failure cancels the others, and
// is returned once they have ended (they write into the parents' groups,
// which must not change after Load has returned).
func (l *load) run(ctx context.Context) error {
	targets, units := l.units(ctx) // fold.go
	errs, first := fanout.Run(ctx, len(units), fanout.Policy{Limit: l.cfg.concurrency, FailFast: true, Wait: true},
		func(ctx context.Context, u int) error {
			if len(units[u]) == 1 {
				return l.exec(ctx, l.tasks[units[u][0]])
			}
			return l.execFolded(ctx, targets, units[u])
		})
	if first < 0 {
		return nil
	}
	if _, ok := errs[first].(*ShardError); !ok { // not started: the context ended
		return &ShardError{Shard: l.tasks[units[first][0]].target, Op: "load " + l.table.TypeName + "." + l.rel.Field.GoName, Err: errs[first]}
	}
	return errs[first]
}

// exec runs one task's statement and records what it found in its slot
// (each task owns its slot: no locking).
func (l *load) exec(ctx context.Context, t *task) error {
	op := "load " + l.table.TypeName + "." + l.rel.Field.GoName
	ctx, db, err := l.conns.Conn(ctx, t.target)
	if err != nil {
		return &ShardError{Shard: t.target, Op: op, Err: err}
	}
	var res found
	if l.rel.Type == schema.ManyToManyRelation {
		res, err = l.queryM2M(ctx, db, t)
	} else {
		res, err = l.query(ctx, db, t)
	}
	if err != nil {
		return &ShardError{Shard: t.target, Op: op, Err: err}
	}
	t.g.results[t.slot] = res
	return nil
}

// query loads the rows of the related table whose JoinPKs are among the
// group's keys (has-one, has-many, belongs-to).
func (l *load) query(ctx context.Context, db bun.IDB, t *task) (found, error) {
	dst := reflect.New(reflect.SliceOf(reflect.PointerTo(l.rel.JoinTable.Type)))
	q := l.relSelect(db, t, dst.Interface())
	if err := pgxscan.Scan(ctx, db, q); err != nil {
		return found{}, err
	}
	rows := dst.Elem()
	// The scanned []*T, seen as the pointers it holds (same layout).
	return l.found(t, unsafe.Slice((*unsafe.Pointer)(rows.UnsafePointer()), rows.Len())), nil
}

// relSelect is the statement of task t (has-one, has-many, belongs-to),
// built on db, scanning into model.
func (l *load) relSelect(db bun.IDB, t *task, model any) *bun.SelectQuery {
	q := db.NewSelect().Model(model)
	q = whereIn(q, l.rel.JoinPKs, t.g.byKey)
	for _, cond := range l.rel.Condition {
		q = q.Where(cond)
	}
	if pf := l.rel.PolymorphicField; pf != nil {
		q = q.Where("?TableAlias.? = ?", bun.Safe(pf.SQLName), l.rel.PolymorphicValue)
	}
	return q
}

// found keys and stamps objs, the rows task t's statement returned
// (pointers to structs of the related model), replacing each by the object
// to keep.
func (l *load) found(t *task, objs []unsafe.Pointer) found {
	jt := l.rel.JoinTable
	res := found{objs: objs}
	ki := t.g.byKey
	if ki.ints {
		res.ints = make([]int64, len(objs))
	} else {
		res.anys = make([]any, len(objs))
	}
	stamp := l.stamper(jt, t)
	for i, p := range objs {
		if ki.ints {
			res.ints[i] = ki.childInt(jt.Type, p)
		} else {
			res.anys[i] = ki.keyOf(l.rel.JoinPKs, reflect.NewAt(jt.Type, p).Elem()).v
		}
		objs[i] = stamp(p)
	}
	return res
}

// queryM2M loads the join model's rows for the group's keys together with
// the related object (a belongs-to of the join model, joined in the same
// statement).
func (l *load) queryM2M(ctx context.Context, db bun.IDB, t *task) (found, error) {
	m2m := l.rel.M2MTable
	target, err := m2mTarget(l.rel)
	if err != nil {
		return found{}, err
	}
	dst := reflect.New(reflect.SliceOf(reflect.PointerTo(m2m.Type)))
	q := db.NewSelect().Model(dst.Interface()).Relation(target.Field.GoName)
	q = whereIn(q, l.rel.M2MBasePKs, t.g.byKey)
	for _, cond := range l.rel.Condition {
		q = q.Where(cond)
	}
	if err := q.Scan(ctx); err != nil {
		return found{}, err
	}
	jt := l.rel.JoinTable
	stamp := l.stamper(jt, t)
	rows := dst.Elem()
	ki := t.g.byKey
	var res found
	seen := map[any]unsafe.Pointer{} // one object per related row
	for i := range rows.Len() {
		row := rows.Index(i).Elem()
		obj := row.FieldByIndex(target.Field.Index)
		if obj.Kind() != reflect.Pointer {
			obj = obj.Addr()
		}
		if obj.IsNil() {
			continue
		}
		pk, ok := values(jt.PKs, obj.Elem())
		if !ok {
			continue // a join row whose related row is missing
		}
		id := identity.Canonical(pk...)
		kept, dup := seen[id]
		if !dup {
			kept = stamp(obj.UnsafePointer())
			seen[id] = kept
		}
		k := ki.keyOf(l.rel.M2MBasePKs, row)
		res.objs = append(res.objs, kept)
		if ki.ints {
			res.ints = append(res.ints, k.n)
		} else {
			res.anys = append(res.anys, k.v)
		}
	}
	return res, nil
}

// m2mTarget finds the belongs-to relation of the m2m join model that points
// to the related model (Bun's "join:Location=Tag" names it, but keeps only
// its columns).
func m2mTarget(rel *schema.Relation) (*schema.Relation, error) {
	var names []string
	for _, f := range rel.M2MJoinPKs {
		names = append(names, f.Name)
	}
	for _, r := range rel.M2MTable.Relations {
		if r.Type != schema.BelongsToRelation || r.JoinTable != rel.JoinTable || len(r.BasePKs) != len(names) {
			continue
		}
		same := true
		for i, f := range r.BasePKs {
			same = same && f.Name == names[i]
		}
		if same {
			return r, nil
		}
	}
	return nil, fmt.Errorf("m2m join model %s has no belongs-to relation to %s on %v",
		rel.M2MTable.TypeName, rel.JoinTable.TypeName, names)
}

// stamper returns what is done to each loaded object of the task (a
// pointer to a struct of jt's model): its Token records the target shard
// (pinned when the route is a pin). It returns the object to keep.
func (l *load) stamper(jt *schema.Table, t *task) func(p unsafe.Pointer) unsafe.Pointer {
	tok := identity.TokenFunc(jt.Type)
	place := identity.Place(t.target, t.g.route.Pinned) // once, not per object
	return func(p unsafe.Pointer) unsafe.Pointer {
		if tok == nil {
			return p
		}
		if tk := tok(reflect.NewAt(jt.Type, p).Elem()); tk != nil {
			tk.SetPlacement(place)
		}
		return p
	}
}

// adopt merges what the tasks found into the tracker and keeps what it
// returns, one task after another once they have all ended: the tasks run
// concurrently, and a Tracker (a unit of work's identity map) is not safe
// for concurrent use.
func (l *load) adopt() {
	tr := l.cfg.tracker
	if tr == nil {
		return
	}
	jt := l.rel.JoinTable
	for _, t := range l.tasks {
		objs := t.g.results[t.slot].objs
		for i, p := range objs {
			objs[i] = tr.Adopt(jt, t.target, reflect.NewAt(jt.Type, p)).UnsafePointer()
		}
	}
}

// assign writes what the tasks found into the parents' relation fields.
func (l *load) assign() {
	for i, obj := range l.hits {
		setOne(l.rel.Field.Value(l.parents[i]), obj)
	}
	var m *manyState
	if l.rel.Type == schema.HasManyRelation || l.rel.Type == schema.ManyToManyRelation {
		m = &manyState{
			count:  make([]int, len(l.parents)),
			next:   make([]int, len(l.parents)),
			fields: make([]reflect.Value, len(l.parents)),
		}
	}
	jt := l.rel.JoinTable.Type
	for _, g := range l.groups {
		if m != nil {
			l.assignMany(g, m)
			continue
		}
		done := make(map[int]bool, len(g.parents))
		for _, res := range g.results {
			for r, p := range res.objs {
				for _, i := range g.byKey.parentsOfRow(&res, r) {
					if !done[i] {
						done[i] = true
						setOne(l.rel.Field.Value(l.parents[i]), reflect.NewAt(jt, p))
					}
				}
			}
		}
		for _, i := range g.parents {
			if !done[i] {
				f := l.rel.Field.Value(l.parents[i])
				f.Set(reflect.Zero(f.Type()))
			}
		}
	}
}

// assignMany sets the has-many or m2m field of g's parents to what was
// found for each, in route order (an empty, non-nil slice when nothing
// was). It counts first, so that each parent's slice is made once, at its
// final length.
func (l *load) assignMany(g *group, m *manyState) {
	count, next, fields := m.count, m.next, m.fields
	for _, res := range g.results {
		for r := range res.objs {
			for _, i := range g.byKey.parentsOfRow(&res, r) {
				count[i]++
			}
		}
	}
	jt := l.rel.JoinTable.Type
	// checkField made sure the field is a []*T or a []T.
	ptrs := l.rel.Field.StructField.Type.Elem().Kind() == reflect.Pointer
	var raw [][]unsafe.Pointer
	if ptrs {
		raw = make([][]unsafe.Pointer, len(l.parents))
	}
	for _, i := range g.parents {
		f := l.rel.Field.Value(l.parents[i])
		fields[i] = f
		if ptrs {
			// A []*T field is written as the []unsafe.Pointer it is laid
			// out as, without a reflect call per element.
			raw[i] = make([]unsafe.Pointer, count[i])
			*(*[]unsafe.Pointer)(f.Addr().UnsafePointer()) = raw[i]
		} else {
			f.Set(reflect.MakeSlice(f.Type(), count[i], count[i]))
		}
	}
	for _, res := range g.results {
		for r, p := range res.objs {
			for _, i := range g.byKey.parentsOfRow(&res, r) {
				if ptrs {
					raw[i][next[i]] = p
				} else {
					fields[i].Index(next[i]).Set(reflect.NewAt(jt, p).Elem())
				}
				next[i]++
			}
		}
	}
}

// manyState is assignMany's scratch space, indexed like load.parents.
type manyState struct {
	count, next []int
	fields      []reflect.Value
}

// collect returns the related objects in the parents' fields, each once.
func (l *load) collect() []reflect.Value {
	var loaded []reflect.Value
	seen := map[unsafe.Pointer]bool{}
	add := func(v reflect.Value) { // v: an addressable struct
		p := v.Addr().UnsafePointer()
		if !seen[p] {
			seen[p] = true
			loaded = append(loaded, v)
		}
	}
	for _, p := range l.parents {
		f := l.rel.Field.Value(p)
		switch f.Kind() {
		case reflect.Pointer:
			if !f.IsNil() {
				add(f.Elem())
			}
		case reflect.Struct:
			if !f.IsZero() {
				add(f)
			}
		case reflect.Slice:
			for j := range f.Len() {
				e := f.Index(j)
				if e.Kind() == reflect.Pointer {
					if !e.IsNil() {
						add(e.Elem())
					}
				} else {
					add(e)
				}
			}
		}
	}
	return loaded
}

// setOne sets a has-one or belongs-to field (a pointer or a struct) to obj,
// a pointer.
func setOne(f, obj reflect.Value) {
	if f.Kind() == reflect.Pointer {
		f.Set(obj)
	} else {
		f.Set(obj.Elem())
	}
}

// values reads fields of the struct v, following pointers; false when one
// is NULL (a nil pointer).
func values(fields []*schema.Field, v reflect.Value) ([]any, bool) {
	out := make([]any, len(fields))
	for i, f := range fields {
		fv, err := v.FieldByIndexErr(f.Index)
		if err != nil {
			return nil, false
		}
		for fv.Kind() == reflect.Pointer {
			if fv.IsNil() {
				return nil, false
			}
			fv = fv.Elem()
		}
		out[i] = fv.Interface()
	}
	return out, true
}
