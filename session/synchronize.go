package session

import (
	"context"
	"fmt"
	"math"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/planner"
)

// SyncMode says how a statement-form UPDATE or DELETE run inside a unit of
// work brings the objects the unit tracks in line with what it changed,
// SQLAlchemy's synchronize_session. Pass it with [Synchronize].
type SyncMode uint8

const (
	// SyncAuto evaluates the statement when SyncEvaluate can, else fetches
	// (SyncFetch). It is the default inside a unit, as SQLAlchemy's
	// "auto" is.
	SyncAuto SyncMode = iota
	// SyncEvaluate evaluates the statement's criteria against the tracked
	// objects of its model on the shards it ran on, in Go, with no extra
	// statement: a DELETE expunges those that match, an UPDATE sets its SET
	// values on them. Only criteria whose result Go can compute exactly are
	// taken: WhereShardKey, and Where clauses of the form "col = ?",
	// "col <> ?" (or !=) with one value, and "col < ?", "<=", ">", ">=" on
	// an integer column with an integer value, optionally with the table
	// alias; SET clauses of the form "col = ?" with one value. Anything else
	// (WhereOr, Apply, other SQL, a subquery, a NULL) fails before the
	// statement is sent, with [ErrUnsupported] naming the clause.
	SyncEvaluate
	// SyncFetch adds RETURNING to the statement, on each shard, and uses
	// the rows it returns, with no extra statement: a DELETE expunges the
	// tracked objects whose keys came back from that shard; an UPDATE loads
	// the returned row into the tracked object, except the columns changed
	// in memory and not yet flushed, which are kept (as SQLAlchemy keeps
	// modified attributes).
	SyncFetch
	// SyncNone leaves tracked objects as they are: a deleted row's object
	// stays in the identity map, and Get returns it with no statement.
	SyncNone
)

// String names the mode.
func (m SyncMode) String() string {
	switch m {
	case SyncAuto:
		return "auto"
	case SyncEvaluate:
		return "evaluate"
	case SyncFetch:
		return "fetch"
	case SyncNone:
		return "none"
	}
	return fmt.Sprintf("SyncMode(%d)", m)
}

// Synchronize sets how a statement-form UPDATE or DELETE inside a unit of
// work updates the unit's tracked objects (see [SyncMode]). Outside a unit
// it does nothing.
func Synchronize(mode SyncMode) StatementOption {
	return func(o *stmtOptions) { o.sync = mode }
}

// clause is one recorded builder call of a statement-form UPDATE or
// DELETE, kept so that SyncEvaluate can read it.
type clause struct {
	kind  string // "Where", "WhereOr", "Set" or "Apply"
	query string
	args  []any
}

// syncer synchronizes a unit's tracked objects with one statement-form
// UPDATE or DELETE; a nil syncer does nothing.
type syncer struct {
	u     *UnitOfWork
	mi    *modelInfo
	op    chooser.Op
	mode  SyncMode // SyncEvaluate or SyncFetch
	conds []evalCond
	sets  []evalSet

	mu      sync.Mutex
	crit    map[ShardID][]evalCond // per shard: the declared shard-key criteria, with that shard's values
	fetched map[ShardID]reflect.Value
}

type evalCond struct {
	f    *schema.Field
	op   string // "=", "<>", "<", "<=", ">", ">=" or "in"
	vals []any
}

type evalSet struct {
	f  *schema.Field
	v  reflect.Value // converted to the field's type; the operand when arith is set
	op byte          // 0 for "col = ?"; '+' or '-' for "col = col + ?" and "col = col - ?"
}

var (
	reCond = regexp.MustCompile(`^\s*(?:\?TableAlias\.|\w+\.)?"?(\w+)"?\s*(=|<>|!=|<=|>=|<|>)\s*\?\s*$`)
	reSet  = regexp.MustCompile(`^\s*"?(\w+)"?\s*=\s*\?\s*$`)
	// reSetArith is "col = col + ?" and "col = col - ?".
	reSetArith = regexp.MustCompile(`^\s*"?(\w+)"?\s*=\s*"?(\w+)"?\s*([+-])\s*\?\s*$`)
)

// newSyncer returns the syncer of m's statement, or nil when it runs
// outside a unit or with SyncNone. SyncEvaluate fails on a clause it
// cannot evaluate; SyncAuto turns into SyncFetch then.
func (m *mutation) newSyncer(op chooser.Op, clauses []clause) (*syncer, error) {
	u := m.s.at.unitOf()
	if u == nil || m.mi == nil || m.err != nil || m.inUnit {
		return nil, nil
	}
	mode := options(m.opts).sync
	if mode == SyncNone {
		return nil, nil
	}
	sy := &syncer{u: u, mi: m.mi, op: op, mode: mode}
	if mode == SyncFetch {
		return sy, nil
	}
	if err := sy.compile(clauses); err != nil {
		if mode == SyncEvaluate {
			return nil, fmt.Errorf("%w: %s %s with Synchronize(SyncEvaluate): %w; use SyncFetch", ErrUnsupported, op, m.mi.table.TypeName, err)
		}
		sy.mode = SyncFetch
		sy.conds, sy.sets = nil, nil
		return sy, nil
	}
	sy.mode = SyncEvaluate
	return sy, nil
}

// compile reads the clauses SyncEvaluate can evaluate exactly.
func (sy *syncer) compile(clauses []clause) error {
	t := sy.mi.table
	field := func(kind, q, name string) (*schema.Field, error) {
		f, ok := t.FieldMap[name]
		if !ok {
			return nil, fmt.Errorf("%s(%q): %s has no column %s", kind, q, t.TypeName, name)
		}
		return f, nil
	}
	for _, c := range clauses {
		switch c.kind {
		case "Where":
			mt := reCond.FindStringSubmatch(c.query)
			if mt == nil || len(c.args) != 1 {
				return fmt.Errorf("cannot evaluate Where(%q) in Go (only col = ?, col <> ?, and comparisons of integer "+
					"and double precision columns)", c.query)
			}
			f, err := field(c.kind, c.query, mt[1])
			if err != nil {
				return err
			}
			op := mt[2]
			if op == "!=" {
				op = "<>"
			}
			arg := c.args[0]
			if !comparable(f, op, arg) {
				return fmt.Errorf("cannot evaluate Where(%q) with %s in Go exactly against column %s (%s)", c.query, describeValue(arg), f.Name, f.StructField.Type)
			}
			sy.conds = append(sy.conds, evalCond{f: f, op: op, vals: []any{arg}})
		case "Set":
			if mt := reSetArith.FindStringSubmatch(c.query); mt != nil && mt[1] == mt[2] && len(c.args) == 1 {
				f, err := field(c.kind, c.query, mt[1])
				if err != nil {
					return err
				}
				v, ok := floatArg(f, c.args[0])
				if !ok {
					return fmt.Errorf("cannot evaluate Set(%q) with %s in Go exactly for column %s (%s %s; only a float64 "+
						"double precision column takes col = col + ?)", c.query, describeValue(c.args[0]), f.Name, f.StructField.Type, f.DiscoveredSQLType)
				}
				sy.sets = append(sy.sets, evalSet{f: f, v: reflect.ValueOf(v), op: mt[3][0]})
				continue
			}
			mt := reSet.FindStringSubmatch(c.query)
			if mt == nil || len(c.args) != 1 {
				return fmt.Errorf("cannot evaluate Set(%q) in Go (only col = ?, and col = col + ? or col = col - ? "+
					"on a double precision column)", c.query)
			}
			f, err := field(c.kind, c.query, mt[1])
			if err != nil {
				return err
			}
			v, ok := convertTo(reflect.ValueOf(c.args[0]), f.StructField.Type)
			if !ok {
				return fmt.Errorf("cannot evaluate Set(%q) with %s for column %s (%s)", c.query, describeValue(c.args[0]), f.Name, f.StructField.Type)
			}
			sy.sets = append(sy.sets, evalSet{f: f, v: v})
		default:
			return fmt.Errorf("cannot evaluate %s(%q) in Go", c.kind, c.query)
		}
	}
	return nil
}

// comparable reports whether cond "col op arg" can be computed in Go as
// PostgreSQL computes it.
func comparable(f *schema.Field, op string, arg any) bool {
	if arg == nil {
		return false // NULL: unknown in SQL, never true
	}
	if _, isQ := arg.(schema.QueryAppender); isQ {
		return false
	}
	if _, ok := floatArg(f, arg); ok {
		return true // every operator, compared as PostgreSQL compares float8
	}
	t := f.StructField.Type
	a := reflect.ValueOf(arg)
	switch op {
	case "=", "<>":
		switch {
		case intKind(t.Kind()) && intKind(a.Kind()), t.Kind() == reflect.String && a.Kind() == reflect.String,
			t.Kind() == reflect.Bool && a.Kind() == reflect.Bool:
			return true
		}
		return false
	}
	return intKind(t.Kind()) && intKind(a.Kind())
}

// isFloat8 reports whether f is a float64 (or *float64) field of a double
// precision column, whose comparisons and additions Go computes exactly as
// PostgreSQL does (IEEE 754 binary64; NaN ordered as PostgreSQL orders it).
func isFloat8(f *schema.Field) bool {
	if f.IndirectType.Kind() != reflect.Float64 {
		return false
	}
	switch strings.ToLower(strings.TrimSpace(f.DiscoveredSQLType)) {
	case "double precision", "float8", "float":
		return true
	}
	return false
}

// floatArg returns arg as the float8 PostgreSQL makes of it against the
// double precision column f: a float64 (Bun writes it so that it reads back
// the same) or an integer (converted to the nearest float8, as
// PostgreSQL's int-to-float8 cast does). A float32, whose shortest text
// PostgreSQL reads as another float8, and anything else is refused.
func floatArg(f *schema.Field, arg any) (float64, bool) {
	if !isFloat8(f) || arg == nil {
		return 0, false
	}
	a := reflect.ValueOf(arg)
	switch {
	case a.Kind() == reflect.Float64:
		return a.Float(), true
	case a.CanInt():
		return float64(a.Int()), true
	case intKind(a.Kind()):
		return float64(a.Uint()), true
	}
	return 0, false
}

func intKind(k reflect.Kind) bool {
	switch k {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32:
		return true
	}
	return false
}

// convertTo converts v to type t when that loses nothing.
func convertTo(v reflect.Value, t reflect.Type) (reflect.Value, bool) {
	if !v.IsValid() {
		return reflect.Value{}, false
	}
	if v.Type() == t {
		return v, true
	}
	if v.Type().ConvertibleTo(t) && convertible(v.Kind(), t.Kind()) {
		c := v.Convert(t)
		if c.Type().ConvertibleTo(v.Type()) && c.Convert(v.Type()).Equal(v) {
			return c, true
		}
	}
	return reflect.Value{}, false
}

// run executes one shard's statement b (an *bun.UpdateQuery or
// *bun.DeleteQuery), adding RETURNING for SyncFetch, and records what the
// sync needs. A nil syncer just runs it.
func (sy *syncer) run(ctx context.Context, id ShardID, p *plan, b interface {
	Exec(context.Context, ...any) (interface{ RowsAffected() (int64, error) }, error)
}) (int64, error) {
	if sy == nil || sy.mode != SyncFetch {
		n, err := affected(b.Exec(ctx))
		if err == nil && sy != nil {
			sy.ranOn(id, p)
		}
		return n, err
	}
	rows := reflect.New(reflect.SliceOf(reflect.PointerTo(sy.mi.typ)))
	n, err := affected(b.Exec(ctx, rows.Interface()))
	if err == nil {
		sy.mu.Lock()
		if sy.fetched == nil {
			sy.fetched = map[ShardID]reflect.Value{}
		}
		sy.fetched[id] = rows.Elem()
		sy.mu.Unlock()
	}
	return n, err
}

func (sy *syncer) ranOn(id ShardID, p *plan) {
	var cs []evalCond
	for _, c := range p.criteria {
		f, ok := sy.mi.table.FieldMap[c.Column]
		vals := c.Values
		if v, ok := p.values[id][c.Column]; ok {
			vals = v
		}
		if !ok {
			f = nil
		}
		cs = append(cs, evalCond{f: f, op: "in", vals: vals})
	}
	sy.mu.Lock()
	if sy.crit == nil {
		sy.crit = map[ShardID][]evalCond{}
	}
	sy.crit[id] = cs
	sy.mu.Unlock()
}

// apply brings the unit's tracked objects in line with what the statement
// did on the shards where it succeeded.
func (sy *syncer) apply() {
	if sy == nil {
		return
	}
	u := sy.u
	if sy.mode == SyncFetch {
		for id, rows := range sy.fetched {
			for i := range rows.Len() {
				row := rows.Index(i)
				if row.IsNil() {
					continue
				}
				e, ok := u.ids.Get(identity.NewKey(sy.mi.typ, id, pkOf(sy.mi, row.Elem())...))
				if !ok || e.state == stateDetached {
					continue
				}
				if sy.op == chooser.OpDelete {
					u.detach(e)
				} else {
					u.merge(e, row.Elem())
				}
			}
		}
		u.compact()
		return
	}
	for _, e := range u.tracked {
		if e.mi != sy.mi || e.state != statePersistent && e.state != stateDeleted || e.expired || e.st == nil || e.st.snap == nil {
			continue
		}
		crit, ran := sy.crit[e.shard]
		if !ran || !sy.matches(e.val(), crit) {
			continue
		}
		if sy.op == chooser.OpDelete {
			u.detach(e)
			continue
		}
		sy.set(e)
	}
	u.compact()
}

// matches evaluates the statement's criteria on the struct v.
func (sy *syncer) matches(v reflect.Value, crit []evalCond) bool {
	for _, cs := range [][]evalCond{sy.conds, crit} {
		for _, c := range cs {
			if c.f == nil || !c.eval(v) {
				return false
			}
		}
	}
	return true
}

func (c evalCond) eval(v reflect.Value) bool {
	fv := fieldOf(v, c.f)
	if !fv.IsValid() {
		return false
	}
	for fv.Kind() == reflect.Pointer {
		if fv.IsNil() {
			return false // NULL matches nothing
		}
		fv = fv.Elem()
	}
	if x, ok := floatArg(c.f, firstOf(c.vals)); ok && c.op != "in" {
		n := planner.CompareFloat(fv.Float(), x)
		switch c.op {
		case "=":
			return n == 0
		case "<>":
			return n != 0
		case "<":
			return n < 0
		case "<=":
			return n <= 0
		case ">":
			return n > 0
		case ">=":
			return n >= 0
		}
		return false
	}
	cur := identity.Canonical(fv.Interface())
	switch c.op {
	case "in":
		return slices.ContainsFunc(c.vals, func(x any) bool { return identity.Canonical(x) == cur })
	case "=":
		return identity.Canonical(c.vals[0]) == cur
	case "<>":
		return identity.Canonical(c.vals[0]) != cur
	}
	a, b := toInt64(fv), toInt64(reflect.ValueOf(c.vals[0]))
	switch c.op {
	case "<":
		return a < b
	case "<=":
		return a <= b
	case ">":
		return a > b
	case ">=":
		return a >= b
	}
	return false
}

func firstOf(vals []any) any {
	if len(vals) == 0 {
		return nil
	}
	return vals[0]
}

func toInt64(v reflect.Value) int64 {
	if v.CanInt() {
		return v.Int()
	}
	return int64(v.Uint())
}

// set writes the UPDATE's SET values into e and its snapshot, except on the
// columns changed in memory since the snapshot (kept, as SQLAlchemy keeps
// modified attributes): the row now holds those values, so the next flush
// writes nothing for them.
func (sy *syncer) set(e *entry) {
	changed, _ := sy.u.changes(e)
	gen := sy.u.gen()
	v, snap := e.val(), e.st.snap
	cols := e.mi.unit(sy.u.s).cols
	for _, s := range sy.sets {
		if slices.Contains(changed, s.f) {
			continue
		}
		nv := s.v
		if s.op != 0 {
			// col = col +/- x, from the value the row held (the snapshot's:
			// the column is unchanged in memory). A NULL stays NULL. A
			// result PostgreSQL could not have produced (an overflow to
			// infinity, which it refuses) means the object is stale: it is
			// expired, so that its next load reads the row.
			sv := fieldOf(snap.copy, s.f)
			for sv.IsValid() && sv.Kind() == reflect.Pointer {
				if sv.IsNil() {
					sv = reflect.Value{}
					break
				}
				sv = sv.Elem()
			}
			if !sv.IsValid() {
				continue
			}
			old, x := sv.Float(), s.v.Float()
			r := old + x
			if s.op == '-' {
				r = old - x
			}
			if math.IsInf(r, 0) && !math.IsInf(old, 0) && !math.IsInf(x, 0) {
				sy.u.expire(e)
				return
			}
			nv = reflect.New(sv.Type()).Elem()
			nv.SetFloat(r)
			setIndirect(fieldOf(v, s.f), nv)
			setIndirect(fieldOf(snap.copy, s.f), nv)
		} else {
			if fv := fieldOf(v, s.f); fv.IsValid() {
				fv.Set(nv)
			}
			if sv := fieldOf(snap.copy, s.f); sv.IsValid() {
				sv.Set(nv)
			}
		}
		for i, c := range cols {
			if c.f == s.f && snap.enc != nil && snap.enc[i] != nil {
				snap.enc[i] = c.f.AppendValue(gen, nil, v)
			}
		}
	}
}

// setIndirect sets fv, or what the non-nil pointer fv points to, to v.
func setIndirect(fv, v reflect.Value) {
	for fv.IsValid() && fv.Kind() == reflect.Pointer {
		if fv.IsNil() {
			return
		}
		fv = fv.Elem()
	}
	if fv.IsValid() {
		fv.Set(v)
	}
}

// compact drops detached entries from the unit's list.
func (u *UnitOfWork) compact() {
	u.tracked = slices.DeleteFunc(u.tracked, func(e *entry) bool { return e.state == stateDetached })
}

// Why the Exec adapters: bun's UpdateQuery and DeleteQuery return
// sql.Result; syncer.run takes either.
type execUpdate struct{ q *bun.UpdateQuery }

func (x execUpdate) Exec(ctx context.Context, dest ...any) (interface{ RowsAffected() (int64, error) }, error) {
	if len(dest) > 0 {
		x.q = x.q.Returning("?TableAlias.*") // the model's columns only, even with a FROM
	}
	return x.q.Exec(ctx, dest...)
}

type execDelete struct{ q *bun.DeleteQuery }

func (x execDelete) Exec(ctx context.Context, dest ...any) (interface{ RowsAffected() (int64, error) }, error) {
	if len(dest) > 0 {
		x.q = x.q.Returning("?TableAlias.*")
	}
	return x.q.Exec(ctx, dest...)
}
