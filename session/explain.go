package session

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/bunshard/bunshard/chooser"
)

// Explanation says how a statement would run, without running it: the
// shards and why (the Route: "option", "using", "context", "token",
// "placement", "chooser" or "criteria"), the chooser asked, the shard-key
// values each shard's statement carries, and how the shards' results are
// put together. It is computed by the code that routes the statement when it
// runs (the same plan, the same chooser calls, in the same order), so it is
// the decision the statement would execute at that moment; a chooser whose
// answers change (round robin, a Lookup directory being edited) may decide
// otherwise the next time.
type Explanation struct {
	// Op is "get", "select", "insert", "update", "delete" or "raw".
	Op string
	// Model is the model's Go type name, "" for a raw statement without one.
	Model string
	Route
	// Chooser names the chooser that routed the statement (its String, else
	// its type) when Route.By is "chooser" or "placement", and "" otherwise.
	Chooser string
	// Keys holds, per shard, the shard-key values its statement carries:
	// the declared criteria (the shard's own share of a split IN list), the
	// primary key of a Get, or, for an insert, the objects it receives (one
	// Criterion per primary-key column, its values in object order).
	Keys map[ShardID][]chooser.Criterion
	// Merge says how the shards' results are combined: "one shard", an
	// ordered merge on columns, a concatenation, an aggregate re-merge,
	// with the LIMIT/OFFSET window where one applies.
	Merge string
}

// String renders the explanation on several lines:
//
//	select Location: [a b] by chooser (<the chooser's String>)
//	  a: continent IN (asia)
//	  b: continent IN (europe)
//	  merge: ordered merge on id ASC
func (e Explanation) String() string {
	var b strings.Builder
	b.WriteString(e.Op)
	if e.Model != "" {
		b.WriteString(" " + e.Model)
	}
	fmt.Fprintf(&b, ": %v by %s", e.Shards, e.By)
	if e.Chooser != "" {
		fmt.Fprintf(&b, " (%s)", e.Chooser)
	}
	for _, id := range e.Shards {
		keys := e.Keys[id]
		if len(keys) == 0 {
			continue
		}
		parts := make([]string, len(keys))
		for i, c := range keys {
			vals := make([]string, len(c.Values))
			for j, v := range c.Values {
				vals[j] = fmt.Sprint(v)
			}
			parts[i] = c.Column + " IN (" + strings.Join(vals, ", ") + ")"
		}
		fmt.Fprintf(&b, "\n  %s: %s", id, strings.Join(parts, " AND "))
	}
	if e.Merge != "" {
		b.WriteString("\n  merge: " + e.Merge)
	}
	return b.String()
}

func (s *Session) chooserName(by string, c any) string {
	if by != "chooser" && by != "placement" {
		return ""
	}
	if str, ok := c.(fmt.Stringer); ok {
		return str.String()
	}
	return fmt.Sprintf("%T", c)
}

func (s *Session) explainPlan(op string, mi *modelInfo, p *plan) Explanation {
	e := Explanation{Op: op, Route: p.Route, Chooser: s.chooserName(p.By, s.executeChooser)}
	if mi != nil {
		e.Model = mi.table.TypeName
	}
	for _, id := range p.Shards {
		if k := p.keys(id); len(k) > 0 {
			if e.Keys == nil {
				e.Keys = map[ShardID][]chooser.Criterion{}
			}
			e.Keys[id] = k
		}
	}
	if len(p.Shards) == 0 {
		e.Merge = "nothing sent: the declared criteria share no value"
	}
	return e
}

// Explain says where the select would run and how its rows would be merged
// (see [Explanation]), without sending anything. It fails as Scan would
// before sending (a builder error, a chooser's error, the scatter guard).
func (q *SelectQuery) Explain(ctx context.Context) (Explanation, error) {
	p, err := q.plan(ctx)
	if err != nil {
		return Explanation{}, err
	}
	e := q.s.explainPlan("select", q.mi, &p)
	if n := len(p.Shards); n > 0 {
		e.Merge = q.mergePlan(n)
	}
	return e, nil
}

// mergePlan describes how scan combines n shards' rows, by the branches
// scan takes.
func (q *SelectQuery) mergePlan(n int) string {
	window := func() string {
		switch {
		case q.limit > 0:
			return fmt.Sprintf("; each shard returns its first %d rows, then OFFSET %d LIMIT %d over the merged rows",
				q.offset+q.limit, q.offset, q.limit)
		case q.offset > 0:
			return fmt.Sprintf("; each shard returns every row, then OFFSET %d over the merged rows", q.offset)
		}
		return ""
	}
	switch {
	case q.aggregating:
		if n == 1 {
			return "aggregate on one shard"
		}
		return fmt.Sprintf("aggregate re-merge: each of %d shards returns its partial aggregates per group, combined per group", n)
	case n == 1:
		return "one shard: ORDER BY, LIMIT and OFFSET run there as written"
	case q.grouped:
		return "refused: Group, Having or Distinct over several shards (ErrUnsupported); use GroupBy and Aggregate"
	case q.kind == destStruct && len(q.order) > 0:
		return "one row: the first by the merge order on " + orderText(q) + window()
	case q.kind == destStruct:
		return "one row: ErrAmbiguous if several shards return one (no Order says which is first)"
	case len(q.order) > 0:
		return "ordered merge on " + orderText(q) + window()
	}
	return "concatenation in route order" + window()
}

func orderText(q *SelectQuery) string {
	parts := make([]string, len(q.order))
	for i, k := range q.order {
		name := k.Name
		if k.Field != nil {
			name = k.Field.Name
		}
		if k.Raw {
			name = k.Expr
		}
		dir := "ASC"
		if k.Desc {
			dir = "DESC"
		}
		parts[i] = name + " " + dir
	}
	return strings.Join(parts, ", ")
}

// Explain says where the statement-form UPDATE would run (see
// [Explanation]), without sending anything; statements on objects
// (Model(&objs)) are explained by [Session.ExplainWrite]. A reference
// table's statement runs on every shard in one two-phase unit.
func (q *UpdateQuery) Explain(ctx context.Context) (Explanation, error) {
	return q.explain(ctx, chooser.OpUpdate)
}

// Explain says where the statement-form DELETE would run (see
// [Explanation]), without sending anything.
func (q *DeleteQuery) Explain(ctx context.Context) (Explanation, error) {
	return q.explain(ctx, chooser.OpDelete)
}

func (m *mutation) explain(ctx context.Context, op chooser.Op) (Explanation, error) {
	if m.err != nil {
		return Explanation{}, m.err
	}
	if m.mi == nil {
		return Explanation{}, fmt.Errorf("%w: %s has no model; call Model((*Model)(nil))", ErrInvalidArgument, op)
	}
	if m.s.reference(m.mi) && !m.inUnit {
		return Explanation{Op: op.String(), Model: m.mi.table.TypeName, Route: Route{Shards: m.s.order, By: "reference"},
			Merge: "rows affected per shard, one two-phase unit over every shard"}, nil
	}
	p, err := m.planned(ctx, op)
	if err != nil {
		return Explanation{}, err
	}
	e := m.s.explainPlan(op.String(), m.mi, &p)
	if len(p.Shards) > 0 {
		e.Merge = "rows affected summed over the shards (Result.ByShard per shard); no cancelling"
	}
	return e, nil
}

// Explain says where the raw statement would run (see [Explanation]): op
// is chooser.OpSelect for Scan, chooser.OpUpdate for Exec.
func (q *RawQuery) Explain(ctx context.Context, op chooser.Op) (Explanation, error) {
	r, err := q.Route(ctx, op)
	if err != nil {
		return Explanation{}, err
	}
	e := Explanation{Op: "raw", Route: r, Chooser: q.s.chooserName(r.By, q.s.executeChooser)}
	if q.mi != nil {
		e.Model = q.mi.table.TypeName
		if len(q.criteria) > 0 {
			e.Keys = map[ShardID][]chooser.Criterion{}
			for _, id := range r.Shards {
				e.Keys[id] = q.criteria
			}
		}
	}
	switch {
	case len(r.Shards) == 0:
		e.Merge = "nothing sent: the declared keys share no value"
	case len(r.Shards) == 1:
		e.Merge = "one shard: the SQL runs as written"
	case op == chooser.OpSelect:
		e.Merge = "concatenation in route order; the SQL's ORDER BY and LIMIT hold per shard only"
	default:
		e.Merge = "rows affected summed over the shards"
	}
	return e, nil
}

// ExplainGet says where Get(ctx, dst, pk...) would look (see
// [Explanation]): the candidate shards in probe order and why. It sends
// nothing and leaves dst as it is.
func (s *Session) ExplainGet(ctx context.Context, dst any, pk ...any) (Explanation, error) {
	mi, kind, err := s.dest(dst)
	if err != nil {
		return Explanation{}, fmt.Errorf("session: ExplainGet: %w", err)
	}
	if kind != destStruct && kind != destTable {
		return Explanation{}, fmt.Errorf("%w: ExplainGet: dst must be a pointer to a model struct, got %T", ErrInvalidArgument, dst)
	}
	if pk, err = typedPK(mi, pk); err != nil {
		return Explanation{}, err
	}
	o := stmtOptions{}
	r, err := s.getRoute(ctx, &o, mi, pk)
	if err != nil {
		return Explanation{}, err
	}
	e := Explanation{Op: "get", Model: mi.table.TypeName, Route: r, Chooser: s.chooserName(r.By, s.identityChooser),
		Keys: map[ShardID][]chooser.Criterion{}}
	for _, id := range r.Shards {
		for i, f := range mi.table.PKs {
			e.Keys[id] = append(e.Keys[id], chooser.Criterion{Column: f.Name, Values: pk[i : i+1 : i+1]})
		}
	}
	if len(r.Shards) == 1 {
		e.Merge = "one shard"
	} else {
		e.Merge = fmt.Sprintf("the one row among %d candidate shards; sql.ErrNoRows if none has it, ErrAmbiguous if several do", len(r.Shards))
	}
	return e, nil
}

// ExplainWrite says where Insert, Update or Delete (op "insert", "update"
// or "delete") of model (a *T, *[]T or *[]*T) would write each object (see
// [Explanation]): the shards, by pin, Token or the ShardChooser's placement,
// each with the primary keys of its objects. It decides each object's shard
// with the code the write runs, asking the same choosers and routers
// (BeforeShardInsert hooks are not run), and sends nothing.
func (s *Session) ExplainWrite(ctx context.Context, op string, model any, opts ...StatementOption) (Explanation, error) {
	if op != "insert" && op != "update" && op != "delete" {
		return Explanation{}, fmt.Errorf("%w: ExplainWrite(%q): want insert, update or delete", ErrInvalidArgument, op)
	}
	mi, kind, err := s.dest(model)
	if err != nil {
		return Explanation{}, fmt.Errorf("session: ExplainWrite: %w", err)
	}
	if kind == destTable {
		return Explanation{}, fmt.Errorf("%w: ExplainWrite: the model %T is a nil pointer; pass the objects", ErrInvalidArgument, model)
	}
	e := Explanation{Op: op, Model: mi.table.TypeName, Keys: map[ShardID][]chooser.Criterion{}}
	objs, nilAt := objectsOf(reflect.ValueOf(model).Elem(), kind)
	if nilAt >= 0 {
		return Explanation{}, fmt.Errorf("%w: %s %s: element %d of the slice is nil", ErrInvalidArgument, op, mi.table.TypeName, nilAt)
	}
	if s.reference(mi) {
		e.Route = Route{Shards: s.order, By: "reference"}
		e.Merge = "every object on every shard, in one two-phase unit"
		return e, nil
	}
	o := options(opts)
	pin, err := s.pinned(ctx, &o, op+" "+mi.table.TypeName)
	if err != nil {
		return Explanation{}, err
	}
	e.By = pin.by
	if e.By == "" {
		e.By = "placement"
		e.Chooser = s.chooserName(e.By, s.shardChooser)
	}
	for i, obj := range objs {
		at := i
		if kind == destStruct {
			at = -1
		}
		id, err := s.placeObject(ctx, op, mi, obj, pin, at)
		if err != nil {
			return Explanation{}, err
		}
		if !slices.Contains(e.Shards, id) {
			e.Shards = append(e.Shards, id)
			for _, f := range mi.table.PKs {
				e.Keys[id] = append(e.Keys[id], chooser.Criterion{Column: f.Name})
			}
		}
		pk := pkOf(mi, obj)
		for j := range mi.table.PKs {
			e.Keys[id][j].Values = append(e.Keys[id][j].Values, pk[j])
		}
	}
	slices.Sort(e.Shards)
	e.Merge = "one statement per shard with its objects"
	return e, nil
}
