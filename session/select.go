package session

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgxscan"
	"github.com/bunshard/bunshard/internal/planner"
	"github.com/bunshard/bunshard/merge"
)

// SelectQuery is a SELECT that runs on one or many shards. It records the
// builder calls (Bun queries are single-use and cannot be shared between
// goroutines) and replays them onto a fresh Bun query per shard, each with a
// fresh destination.
//
// A SelectQuery is not safe for concurrent use while it is being built; once
// built, running it (Scan, Count, ...) from several goroutines at once is
// safe, since each run builds its own Bun queries.
type SelectQuery struct {
	s     *Session
	model any
	mi    *modelInfo
	kind  destKind

	ops      []func(*bun.SelectQuery) *bun.SelectQuery
	rels     relTree
	criteria []chooser.Criterion
	order    []planner.Key
	limit    int
	offset   int
	grouped  bool // Group, Having or Distinct: per-shard groups, not merged
	// projected: Column, ColumnExpr or ExcludeColumn, on the statement or
	// in a Relation's apply, so objects may lack columns; a unit of work
	// does not track them (UnitOfWork.NewSelect)
	projected bool
	// GroupBy/Aggregate: merged across shards (aggregate.go)
	aggregating bool
	groupBy     []string
	aggs        []Aggregate
	having      []planner.Having
	applied     bool // Apply: the statement does not fold (fold.go)
	opts        []StatementOption
	subs        []subquery   // Bun queries among the arguments: vetted against the route
	wk          whereScope   // plain Wheres on the shard key (wherekey.go)
	joined      []rawJoined  // WhereShardKey on a joined relation's column (joinkey.go)
	local       perShardText // a fragment answered per shard (rawsql.go)
	err         error
}

// rawJoined is a WhereShardKey("relation.column", values...) as called;
// plan resolves it once the relations are known.
type rawJoined struct {
	name   string
	values []any
}

// NewSelect starts a select. Give it a model with Model.
func (s *Session) NewSelect() *SelectQuery { return &SelectQuery{s: s} }

// Model sets the destination and the model: &objs (a slice, filled with the
// rows of every shard), &obj (one row), or (*Model)(nil) to name the model for
// Count, Exists and Scan(ctx, dest...).
func (q *SelectQuery) Model(model any) *SelectQuery {
	mi, kind, err := q.s.dest(model)
	if err != nil {
		return q.fail(fmt.Errorf("session: select: %w", err))
	}
	q.model, q.mi, q.kind = model, mi, kind
	return q
}

func (q *SelectQuery) fail(err error) *SelectQuery {
	if q.err == nil {
		q.err = err
	}
	return q
}

func (q *SelectQuery) op(fn func(*bun.SelectQuery) *bun.SelectQuery) *SelectQuery {
	q.ops = append(q.ops, fn)
	return q
}

// Column selects columns, as bun.SelectQuery.Column does: each name is
// written as a quoted identifier. A name is a column, optionally qualified
// (table.column), or * or table.*; anything else (an expression such as
// "a*b", an empty part) fails the statement with ErrInvalidArgument. Write
// expressions with ColumnExpr and placeholders.
func (q *SelectQuery) Column(columns ...string) *SelectQuery {
	if err := q.names("Column", columns, true); err != nil {
		return q.fail(err)
	}
	q.projected = true
	return q.op(func(b *bun.SelectQuery) *bun.SelectQuery { return b.Column(columns...) })
}

// ColumnExpr adds a column expression, as bun.SelectQuery.ColumnExpr does.
func (q *SelectQuery) ColumnExpr(query string, args ...any) *SelectQuery {
	q.projected = true
	q.subs = subqueriesIn(q.subs, "ColumnExpr", args)
	q.local.note("ColumnExpr", query)
	return q.op(func(b *bun.SelectQuery) *bun.SelectQuery { return b.ColumnExpr(query, q.s.bindArgs(b.DB(), args)...) })
}

// ExcludeColumn leaves columns out, as bun.SelectQuery.ExcludeColumn does.
// The names follow Column's rules (ErrInvalidArgument otherwise).
func (q *SelectQuery) ExcludeColumn(columns ...string) *SelectQuery {
	if err := q.names("ExcludeColumn", columns, true); err != nil {
		return q.fail(err)
	}
	q.projected = true
	return q.op(func(b *bun.SelectQuery) *bun.SelectQuery { return b.ExcludeColumn(columns...) })
}

// Where adds a condition, as bun.SelectQuery.Where does. Two forms on the
// model's shard-key column (the one the ExecuteChooser names, such as a
// chooser.Scheme's key column) route the statement as WhereShardKey does,
// when every top-level condition is ANDed: Where("col = ?", v) and
// Where("col IN (?)", bun.List(vs)); see docs/routing.md for the forms that
// do and do not. Call Model first. Choosers cannot see any other condition.
func (q *SelectQuery) Where(query string, args ...any) *SelectQuery {
	q.subs = subqueriesIn(q.subs, "Where", args)
	q.local.note("Where", query)
	if q.mi != nil {
		q.wk.note(q.mi.table, len(q.ops), query, args)
	}
	return q.op(func(b *bun.SelectQuery) *bun.SelectQuery { return b.Where(query, q.s.bindArgs(b.DB(), args)...) })
}

// WhereOr adds an OR condition, as bun.SelectQuery.WhereOr does.
func (q *SelectQuery) WhereOr(query string, args ...any) *SelectQuery {
	q.subs = subqueriesIn(q.subs, "WhereOr", args)
	q.local.note("WhereOr", query)
	q.wk.opaque = true // an OR at the top level: no Where routes
	return q.op(func(b *bun.SelectQuery) *bun.SelectQuery { return b.WhereOr(query, q.s.bindArgs(b.DB(), args)...) })
}

// WhereGroup adds a parenthesised group of conditions, as
// bun.SelectQuery.WhereGroup does.
func (q *SelectQuery) WhereGroup(sep string, fn func(*bun.SelectQuery) *bun.SelectQuery) *SelectQuery {
	if strings.Contains(strings.ToUpper(sep), "OR") {
		q.wk.opaque = true
	}
	return q.op(func(b *bun.SelectQuery) *bun.SelectQuery { return b.WhereGroup(sep, fn) })
}

// WhereShardKey adds "column = value" (one value) or "column IN (values)"
// and declares it to the ExecuteChooser, which can then send the statement
// only to the shards that own those values. If the chooser is a
// chooser.Splitter for column, each shard receives only its own values.
// Each value is first converted to the column's Go type (see "Key values"
// in the package documentation); a value that cannot convert without loss
// fails the statement with ErrInvalidArgument.
//
// column may name a column of a joined relation, "location.continent" (the
// relation's Go field name or its snake-case alias, nested with dots, each
// a has-one or belongs-to relation the select loads with Relation): the
// ExecuteChooser is asked about the relation's model with those values,
// and the select runs only on the shards it names (a join runs inside each
// shard, so no other shard can return a row), each shard with its own
// values when the chooser splits them. A relation the select does not join,
// or a has-many one, fails with ErrInvalidArgument.
//
// Calls compose as SQL's AND: calls on one column intersect (values equal
// once converted to the column's type count once), and calls on
// different columns all apply. When a column's intersection is empty the
// statement matches no row and sends nothing: Scan gives no rows
// (sql.ErrNoRows for a single-row model), Count 0, and an update or delete
// affects nothing. column must be a column of the model, and a Splitter's
// answer must put each value on exactly one shard of the route; otherwise
// the statement fails (ErrInvalidArgument, ErrUnknownShard, ErrNoShard or
// ErrAmbiguous, naming the column, value and the Splitter's answer).
func (q *SelectQuery) WhereShardKey(column string, values ...any) *SelectQuery {
	if len(values) == 0 {
		return q.fail(fmt.Errorf("%w: WhereShardKey(%q) needs at least one value", ErrInvalidArgument, column))
	}
	if strings.Contains(column, ".") {
		q.joined = append(q.joined, rawJoined{name: column, values: values})
		return q
	}
	q.criteria = append(q.criteria, chooser.Criterion{Column: column, Values: values})
	return q
}

// Join adds a join, as bun.SelectQuery.Join does. Joins run inside each
// shard: rows of other shards are not visible to them.
func (q *SelectQuery) Join(join string, args ...any) *SelectQuery {
	q.subs = subqueriesIn(q.subs, "Join", args)
	q.local.note("Join", join)
	q.wk.joins = true
	return q.op(func(b *bun.SelectQuery) *bun.SelectQuery { return b.Join(join, q.s.bindArgs(b.DB(), args)...) })
}

// JoinOn adds a join condition, as bun.SelectQuery.JoinOn does.
func (q *SelectQuery) JoinOn(cond string, args ...any) *SelectQuery {
	q.subs = subqueriesIn(q.subs, "JoinOn", args)
	q.local.note("JoinOn", cond)
	return q.op(func(b *bun.SelectQuery) *bun.SelectQuery { return b.JoinOn(cond, q.s.bindArgs(b.DB(), args)...) })
}

// Relation loads a relation (has-one, belongs-to, has-many, m2m; nested with
// dots, "Reports.Location"), as bun.SelectQuery.Relation does. Relation
// queries run on the shard of their parent rows, and the objects they load
// record that shard.
func (q *SelectQuery) Relation(name string, apply ...func(*bun.SelectQuery) *bun.SelectQuery) *SelectQuery {
	if q.rels == nil {
		q.rels = relTree{}
	}
	q.rels.add(name)
	if q.mi == nil || joinsApply(q.mi.table, name) {
		q.wk.joins = true // a has-one or belongs-to relation is joined into the main query
	}
	if len(apply) > 0 && q.s.narrows(q.mi, name, apply) {
		q.projected = true
	}
	if len(apply) > 0 && (q.mi == nil || joinsApply(q.mi.table, name)) {
		q.wk.opaque = true // Bun runs a joined relation's apply on the main query
	}
	return q.op(func(b *bun.SelectQuery) *bun.SelectQuery { return b.Relation(name, apply...) })
}

// Group adds GROUP BY columns, as bun.SelectQuery.Group does. Each shard
// groups its own rows, so a Group statement runs on one shard only (over
// several it fails with ErrUnsupported); use GroupBy and Aggregate to merge
// groups across shards. The names follow Column's rules, without *
// (ErrInvalidArgument otherwise); write expressions with Apply and
// GroupExpr.
func (q *SelectQuery) Group(columns ...string) *SelectQuery {
	if err := q.names("Group", columns, false); err != nil {
		return q.fail(err)
	}
	q.grouped = true
	return q.op(func(b *bun.SelectQuery) *bun.SelectQuery { return b.Group(columns...) })
}

// Having adds a HAVING condition, as bun.SelectQuery.Having does. Like Group
// it works on one shard only; see HavingAgg.
func (q *SelectQuery) Having(having string, args ...any) *SelectQuery {
	q.subs = subqueriesIn(q.subs, "Having", args)
	q.grouped = true
	return q.op(func(b *bun.SelectQuery) *bun.SelectQuery { return b.Having(having, q.s.bindArgs(b.DB(), args)...) })
}

// Distinct makes the select DISTINCT, on one shard only (over several it
// fails with ErrUnsupported); GroupBy without aggregates gives distinct
// values across shards.
func (q *SelectQuery) Distinct() *SelectQuery {
	q.grouped = true
	return q.op(func(b *bun.SelectQuery) *bun.SelectQuery { return b.Distinct() })
}

// Order adds ORDER BY terms, each a column of the model and keywords:
//
//	<column> [COLLATE "C" | COLLATE "POSIX"] [ASC | DESC] [NULLS FIRST | NULLS LAST]
//
// with keywords in any case, such as "temperature DESC" or
// `city COLLATE "C"`. The column is written as a quoted identifier and the
// keywords by the session, so no text of the term reaches SQL as it is.
// The terms are merged across shards into one global order, compared as
// PostgreSQL compares the column's SQL type (see the package doc,
// "Merging"); columns the merge cannot compare exactly work on a single
// shard only (over several they fail with ErrUnsupported naming the
// column). On a GroupBy select the column may also be an output column (an
// aggregate's name).
//
// A term that does not follow the grammar, or names no column of the model
// (nor an output column of a grouped select), fails the statement with
// ErrInvalidArgument; Order before Model does too. Write other terms
// (expressions, a ColumnExpr's alias) with OrderExpr and placeholders.
func (q *SelectQuery) Order(orders ...string) *SelectQuery {
	if q.mi == nil {
		return q.fail(fmt.Errorf("%w: call Model before Order", ErrInvalidArgument))
	}
	for _, o := range orders {
		k, err := planner.ParseOrder(q.mi.table, o)
		if err != nil {
			return q.fail(fromPlan(err))
		}
		q.order = append(q.order, k)
	}
	return q
}

// OrderExpr adds an ORDER BY expression, passed to Bun's OrderExpr with its
// placeholders: the raw SQL path. It cannot be merged across shards: a
// statement with one runs on a single shard or fails with ErrUnsupported.
func (q *SelectQuery) OrderExpr(query string, args ...any) *SelectQuery {
	q.subs = subqueriesIn(q.subs, "OrderExpr", args)
	q.order = append(q.order, planner.Key{Expr: query, Args: args, Raw: true})
	return q
}

// Limit limits the number of rows of the whole result, across shards; 0
// means no limit. A negative n fails the statement with ErrInvalidArgument.
func (q *SelectQuery) Limit(n int) *SelectQuery {
	if n < 0 {
		return q.fail(fmt.Errorf("%w: Limit(%d)%s: the limit must be 0 (none) or more", ErrInvalidArgument, n, q.on()))
	}
	q.limit = n
	return q
}

// Offset skips rows of the whole result, across shards. Each shard then has
// to return offset+limit rows: deep offsets are slow. A negative n fails
// the statement with ErrInvalidArgument.
func (q *SelectQuery) Offset(n int) *SelectQuery {
	if n < 0 {
		return q.fail(fmt.Errorf("%w: Offset(%d)%s: the offset must be 0 or more", ErrInvalidArgument, n, q.on()))
	}
	q.offset = n
	return q
}

// on names the model in builder errors: " on Report", or "" before Model.
func (q *SelectQuery) on() string {
	if q.mi == nil {
		return ""
	}
	return " on " + q.mi.table.TypeName
}

// names checks the column names given to method: each is written by Bun
// as a quoted identifier, except '*' and '.', which Bun writes as they
// are, so a name is one to three dot-separated parts, none empty nor
// holding '*', except that the last part may be * alone (when star).
func (q *SelectQuery) names(method string, columns []string, star bool) error {
	for _, c := range columns {
		if badName(c, star) {
			want := "a column, optionally qualified (table.column)"
			if star {
				want += ", or * or table.*"
			}
			return fmt.Errorf("%w: %s(%q)%s: want %s; write expressions with ColumnExpr, GroupExpr or OrderExpr and placeholders",
				ErrInvalidArgument, method, c, q.on(), want)
		}
	}
	return nil
}

func badName(name string, star bool) bool {
	parts := strings.Split(name, ".")
	if len(parts) > 3 {
		return true
	}
	for i, p := range parts {
		switch {
		case p == "*" && star && i == len(parts)-1:
		case p == "" || strings.IndexByte(p, '*') >= 0:
			return true
		}
	}
	return false
}

// Apply calls fn on every per-shard Bun query, for builder calls the session
// does not wrap. fn must not set ORDER BY, LIMIT or OFFSET (use the
// session's, which are merged across shards).
func (q *SelectQuery) Apply(fn func(*bun.SelectQuery) *bun.SelectQuery) *SelectQuery {
	q.wk.opaque = true // its conditions are not seen
	q.applied = true   // nor anything else it does: the statement does not fold (fold.go)
	return q.op(fn)
}

// Options adds statement options such as SetShardID.
func (q *SelectQuery) Options(opts ...StatementOption) *SelectQuery {
	q.opts = append(q.opts, opts...)
	return q
}

// plan is a resolved statement: where it goes and each shard's share of the
// declared shard-key values.
type plan struct {
	Route
	partial bool
	stats   *Stats
	values  map[ShardID]map[string][]any // shard -> column -> its values
	// skip holds the ops (by index) of plain Wheres that became criteria
	// (wherekey.go): where renders them instead, with each shard's values.
	skip map[int]bool
	// joined are the WhereShardKey criteria on joined relations
	// (joinkey.go); whereJoined renders them.
	joined []joinedKey
	// criteria are the declared criteria with typed values (keys.go), one
	// per column (mergeCriteria); where renders them.
	criteria []chooser.Criterion
}

// Route resolves where the statement would run, without running it.
func (q *SelectQuery) Route(ctx context.Context) (Route, error) {
	p, err := q.plan(ctx)
	return p.Route, err
}

func (q *SelectQuery) plan(ctx context.Context) (plan, error) {
	if q.err != nil {
		return plan{}, q.err
	}
	if q.mi == nil {
		return plan{}, fmt.Errorf("%w: select has no model; call Model(&objs) or Model((*Model)(nil))", ErrInvalidArgument)
	}
	if !q.aggregating {
		for _, k := range q.order {
			if !k.Raw && k.Field == nil {
				return plan{}, fmt.Errorf("%w: Order(%q): model %s has no column %q; order by a column of the model, "+
					"or write the term with OrderExpr and placeholders", ErrInvalidArgument, k.Expr, q.mi.table.TypeName, k.Name)
			}
		}
	}
	criteria, skip := q.s.whereCriteria(q.mi, &q.wk, q.criteria)
	var p plan
	var err error
	if len(q.joined) > 0 {
		p, err = q.planJoined(ctx, criteria, skip)
	} else {
		p, err = q.s.plan(ctx, chooser.OpSelect, q.mi, criteria, q.opts)
		p.skip = skip
		if err == nil {
			err = q.s.vetSubqueries(q.subs, p.Shards, "select "+q.mi.table.TypeName)
		}
	}
	if err == nil {
		err = q.local.vet(q.s, "select "+q.mi.table.TypeName, q.mi, p.Shards, q.opts)
	}
	return p, err
}

// plan routes a statement and splits declared IN lists by shard when the
// chooser can.
func (s *Session) plan(ctx context.Context, op chooser.Op, mi *modelInfo, criteria []chooser.Criterion, opts []StatementOption) (plan, error) {
	for _, c := range criteria {
		if _, ok := mi.table.FieldMap[c.Column]; !ok {
			return plan{}, fmt.Errorf("%w: WhereShardKey: model %s has no column %q", ErrInvalidArgument, mi.table.TypeName, c.Column)
		}
		for _, v := range c.Values {
			// Bun writes such a string as an error marker inside the SQL
			// rather than failing; PostgreSQL text cannot hold NUL.
			if rv := reflect.ValueOf(v); rv.Kind() == reflect.String && strings.IndexByte(rv.String(), 0) >= 0 {
				return plan{}, fmt.Errorf("%w: WhereShardKey(%q) on %s: the value %q holds a NUL byte, which PostgreSQL text cannot hold",
					ErrInvalidArgument, c.Column, mi.table.TypeName, v)
			}
		}
	}
	criteria, err := typedCriteria(op, mi.table, criteria) // keys.go: choosers and SQL see the column's type
	if err != nil {
		return plan{}, err
	}
	o := options(opts)
	criteria, none := mergeCriteria(criteria)
	if none {
		// Why no statement is sent: the criteria on one column share no
		// value, so one database holding every row would return none.
		s.routed(ctx, Route{By: "criteria"})
		return plan{Route: Route{By: "criteria"}, partial: o.partial, stats: o.stats, criteria: criteria}, nil
	}
	stmt := &chooser.Statement{Op: op, Table: mi.table, Criteria: criteria}
	r, err := s.route(ctx, &o, op.String()+" "+mi.table.TypeName, func() (chooser.Target, error) {
		return s.executeChooser.ChooseExecute(ctx, stmt)
	})
	if err != nil {
		return plan{}, err
	}
	if r.By != "chooser" && len(criteria) > 0 && !o.pinWins {
		if err := s.pinMissesKeys(ctx, stmt, r, op.String()+" "+mi.table.TypeName); err != nil {
			return plan{}, err
		}
	}
	p := plan{Route: r, partial: o.partial, stats: o.stats, criteria: criteria}
	sp, ok := s.executeChooser.(chooser.Splitter)
	if !ok || r.By != "chooser" {
		s.routed(ctx, r)
		return p, nil
	}
	for _, c := range criteria {
		if len(c.Values) < 2 {
			continue
		}
		parts, err := sp.SplitValues(ctx, mi.table, c.Column, c.Values)
		if err != nil {
			return plan{}, fmt.Errorf("session: %s %s: %w", op, mi.table.TypeName, err)
		}
		if parts == nil {
			continue
		}
		if err := s.checkSplit(op, mi, c, r.Shards, parts); err != nil {
			return plan{}, err
		}
		if p.values == nil {
			p.values = map[ShardID]map[string][]any{}
		}
		kept := p.Shards[:0:0]
		for _, id := range p.Shards {
			if vals, ok := parts[id]; ok {
				if p.values[id] == nil {
					p.values[id] = map[string][]any{}
				}
				p.values[id][c.Column] = vals
				kept = append(kept, id)
			}
		}
		p.Shards = kept
	}
	if len(p.Shards) == 0 {
		return plan{}, fmt.Errorf("%w: %s %s: no shard owns the declared key values", ErrNoShard, op, mi.table.TypeName)
	}
	s.routed(ctx, p.Route)
	return p, nil
}

// replay starts shard id's statement b: the recorded builder calls ops
// that p keeps for the shard (p.skip drops the plain shard-key Wheres it
// replaces), then p's declared criteria for the shard. Every fan-out
// statement (select, aggregate, UPDATE, DELETE) starts here.
func replay[Q interface{ Where(string, ...any) Q }](b Q, ops []func(Q) Q, p *plan, id ShardID) Q {
	for i, fn := range ops {
		if !p.skip[i] {
			b = fn(b)
		}
	}
	p.where(id, func(s string, args ...any) { b = b.Where(s, args...) })
	return b
}

// keys returns the declared criteria as shard id's statement carries them:
// each column's values, the shard's own share where the chooser split them.
func (p *plan) keys(id ShardID) []chooser.Criterion {
	if len(p.criteria) == 0 {
		return nil
	}
	out := make([]chooser.Criterion, len(p.criteria))
	for i, c := range p.criteria {
		out[i] = c
		if v, ok := p.values[id][c.Column]; ok {
			out[i].Values = v
		}
	}
	return out
}

// where renders the declared criteria for shard id.
func (p *plan) where(id ShardID, add func(string, ...any)) {
	for _, c := range p.keys(id) {
		if len(c.Values) == 1 {
			add("?TableAlias.? = ?", bun.Ident(c.Column), c.Values[0])
		} else {
			add("?TableAlias.? IN (?)", bun.Ident(c.Column), bun.List(c.Values))
		}
	}
}

// build replays the recorded calls onto a fresh query on db. n is the number
// of shards the statement runs on: with one, LIMIT and OFFSET pass through
// untouched; with several, each shard returns its first offset+limit rows
// and the merge applies the global window.
func (q *SelectQuery) build(db bun.IDB, p *plan, id ShardID, model any, n int, paging bool) *bun.SelectQuery {
	b := replay(db.NewSelect().Model(model), q.ops, p, id)
	p.whereJoined(id, func(s string, args ...any) { b = b.Where(s, args...) })
	if !paging {
		return b
	}
	for _, k := range q.order {
		b = applyOrder(b, k)
	}
	switch {
	case n == 1:
		if q.limit > 0 {
			b = b.Limit(int64(q.limit))
		}
		if q.offset > 0 {
			b = b.Offset(int64(q.offset))
		}
	case q.limit > 0:
		b = b.Limit(int64(q.offset + q.limit))
	}
	return b
}

// String returns the SQL the statement sends to shard id (after routing and
// IN-list splitting), for debugging; for a GroupBy/Aggregate select, the
// statement of the shard's partial aggregates. It sends nothing. It fails
// as the statement would (a builder error, an unknown shard, Bun's error
// rendering the query).
func (q *SelectQuery) String(ctx context.Context, id ShardID) (string, error) {
	p, err := q.plan(ctx)
	if err != nil {
		return "", err
	}
	db, err := q.s.DB(id)
	if err != nil {
		return "", err
	}
	b := q.build(db, &p, id, q.model, len(p.Shards), true)
	if q.aggregating {
		gp, err := q.groupPlan()
		if err != nil {
			return "", err
		}
		b = q.buildAggregate(db, &p, id, gp)
	}
	sql, err := b.AppendQuery(b.DB().QueryGen(), nil)
	if err != nil {
		return "", fmt.Errorf("session: select %s on shard %s: %w", q.mi.table.TypeName, id, err)
	}
	return string(sql), nil
}

// Scan runs the statement and fills the model given to Model, or dest if
// given (as bun.SelectQuery.Scan does).
//
// With a slice model, rows of every shard are returned: in global order when
// Order names plain columns (a k-way merge), else concatenated in route
// order; Limit and Offset apply to the whole result. With a struct model one
// row is returned: sql.ErrNoRows when no shard has one, and ErrAmbiguous when
// rows come from several shards and no Order says which is first.
//
// The first failing shard cancels the others; the error is a *ShardError.
//
// On a unit of work's select (UnitOfWork.NewSelect) the rows run inside
// the unit's transactions and are merged into its identity map.
func (q *SelectQuery) Scan(ctx context.Context, dest ...any) error {
	if q.s.cfg.observer != nil {
		ctx, rec := q.s.observe(ctx, "select", q.mi)
		err := q.scanAny(ctx, dest...)
		if len(dest) == 0 {
			rec.endScan(err, q.model)
		} else {
			rec.endScan(err, dest...)
		}
		return err
	}
	return q.scanAny(ctx, dest...)
}

func (q *SelectQuery) scanAny(ctx context.Context, dest ...any) error {
	if u := q.s.at.unitOf(); u != nil && len(dest) == 0 && !q.aggregating {
		return u.scan(ctx, q)
	}
	err := q.scan(ctx, dest...)
	if err == nil && len(dest) == 0 && !q.aggregating && q.mi != nil && q.s.at.unitOf() == nil && q.s.hooked(q.mi.table, q.rels) {
		var single ShardID
		if r, rerr := q.Route(ctx); rerr == nil && len(r.Shards) == 1 {
			single = r.Shards[0]
		}
		err = q.s.fireLoads(ctx, nil, reflect.ValueOf(q.model).Elem(), q.mi, q.rels, false, single) // loadhook.go
	}
	return err
}

func (q *SelectQuery) scan(ctx context.Context, dest ...any) error {
	p, err := q.plan(ctx)
	if err != nil {
		return err
	}
	n := len(p.Shards)
	if n > 1 && len(q.order) > 0 && !q.aggregating {
		if err := mergeable(q.order); err != nil {
			return err
		}
	}
	if q.aggregating {
		if len(dest) != 1 {
			return fmt.Errorf("%w: a grouped select scans into one destination: Scan(ctx, &rows)", ErrInvalidArgument)
		}
		return q.scanAggregate(ctx, &p, dest[0])
	}
	if q.grouped && n > 1 {
		return fmt.Errorf("%w: Group, Having or Distinct over %d shards would return each shard's groups unmerged; "+
			"use GroupBy and Aggregate (merged across shards) or pin one shard", ErrUnsupported, n)
	}
	if len(dest) > 0 {
		return q.scanDest(ctx, &p, dest)
	}
	switch q.kind {
	case destTable:
		return fmt.Errorf("%w: select %s: nothing to scan into; pass Model(&objs) or Scan(ctx, &dest)", ErrInvalidArgument, q.mi.table.TypeName)
	case destStruct:
		return q.scanOne(ctx, &p)
	}
	dst := reflect.ValueOf(q.model).Elem()
	if n == 1 {
		id := p.Shards[0]
		return q.s.fanOut(ctx, p.Shards, "select", func(ctx context.Context, _ int, _ ShardID, db bun.IDB) error {
			if err := pgxscan.Scan(ctx, db, q.build(db, &p, id, q.model, 1, true)); err != nil {
				return err
			}
			q.s.readRows(ctx, int64(dst.Len()))
			q.s.stampAll(reflect.ValueOf(q.model), q.kind, q.mi, q.rels, p.mark(id))
			return nil
		})
	}
	parts, err := q.scanParts(ctx, &p, dst.Type())
	if err != nil && !isPartial(err) {
		return err
	}
	m := q.s.startMerge(ctx, len(parts))
	out, cerr := q.combine(parts, p.Shards, dst.Type())
	endMerge(m, lenOf(out), cerr)
	if cerr != nil {
		return cerr
	}
	dst.Set(out)
	return err
}

func isPartial(err error) bool {
	_, ok := err.(*PartialError)
	return ok
}

// scanParts runs the statement on every shard of p into fresh slices of type
// typ, one per shard, and stamps what they loaded.
func (q *SelectQuery) scanParts(ctx context.Context, p *plan, typ reflect.Type) ([]reflect.Value, error) {
	if q.selectFolds() {
		if groups := q.s.foldGroups(ctx, p.Shards); groups != nil {
			return q.scanPartsFolded(ctx, p, typ, groups)
		}
	}
	parts := make([]reflect.Value, len(p.Shards))
	kind := destSlice
	if typ.Elem().Kind() == reflect.Pointer {
		kind = destSlicePtr
	}
	err := q.s.fanOutPolicy(ctx, p.Shards, "select", p.partial, func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		return q.scanPart(ctx, db, p, i, id, typ, kind, parts)
	})
	return parts, err
}

// scanPart runs the statement on p's i-th shard, id, into a fresh slice of
// type typ, stamps what it loaded, and stores it in parts[i]: one shard's
// part of scanParts, folded or not.
func (q *SelectQuery) scanPart(ctx context.Context, db bun.IDB, p *plan, i int, id ShardID, typ reflect.Type, kind destKind, parts []reflect.Value) error {
	part := reflect.New(typ)
	if err := pgxscan.Scan(ctx, db, q.build(db, p, id, part.Interface(), len(p.Shards), true)); err != nil {
		return err
	}
	q.s.stampAll(part, kind, q.mi, q.rels, p.mark(id))
	parts[i] = part.Elem()
	p.stats.add(id, int64(parts[i].Len()))
	q.s.readRows(ctx, int64(parts[i].Len()))
	return nil
}

// combine merges per-shard slices into one of type typ: a k-way merge when
// the statement is ordered, else a concatenation; then the global window.
//
// Each shard's rows are checked against the merge order first: a shard that
// returns rows the Go comparison orders differently (a NULL scanned into a
// non-pointer field, say) fails the statement instead of corrupting the
// merge.
func (q *SelectQuery) combine(parts []reflect.Value, ids []ShardID, typ reflect.Type) (reflect.Value, error) {
	limit := -1
	if q.limit > 0 {
		limit = q.limit
	}
	if len(q.order) > 0 {
		cmp := rowOrder(q.order)
		var rows [][]reflect.Value
		for i, part := range parts {
			if !part.IsValid() { // a failed shard, under AllowPartial
				continue
			}
			r := make([]reflect.Value, part.Len())
			for j := range r {
				r[j] = reflect.Indirect(part.Index(j))
				if j > 0 && cmp(r[j-1], r[j]) > 0 {
					return reflect.Value{}, fmt.Errorf("%w: shard %s returned row %d before row %d, but the merge orders them "+
						"the other way: is a NULL column scanned into a non-pointer field? (use a pointer field)",
						ErrUnsupported, ids[i], j-1, j)
				}
			}
			rows = append(rows, r)
		}
		merged := merge.Slices(rows, cmp, q.offset, limit)
		out := reflect.MakeSlice(typ, len(merged), len(merged))
		ptrs := typ.Elem().Kind() == reflect.Pointer
		for i, v := range merged {
			if ptrs {
				out.Index(i).Set(v.Addr())
			} else {
				out.Index(i).Set(v)
			}
		}
		return out, nil
	}
	parts = slices.DeleteFunc(slices.Clone(parts), func(v reflect.Value) bool { return !v.IsValid() })
	total := 0
	for _, part := range parts {
		total += part.Len()
	}
	out := reflect.MakeSlice(typ, 0, total)
	for _, part := range parts {
		out = reflect.AppendSlice(out, part)
	}
	lo := min(q.offset, out.Len())
	hi := out.Len()
	if limit >= 0 {
		hi = min(hi, lo+limit)
	}
	return out.Slice(lo, hi), nil
}

// scanOne fills a single-struct model.
func (q *SelectQuery) scanOne(ctx context.Context, p *plan) error {
	dst := reflect.ValueOf(q.model).Elem()
	sliceType := reflect.SliceOf(q.mi.typ)
	if len(p.Shards) == 1 {
		id := p.Shards[0]
		return q.s.fanOut(ctx, p.Shards, "select", func(ctx context.Context, _ int, _ ShardID, db bun.IDB) error {
			if err := pgxscan.Scan(ctx, db, q.build(db, p, id, q.model, 1, true)); err != nil {
				return err
			}
			q.s.readRows(ctx, 1)
			q.s.stampAll(reflect.ValueOf(q.model), destStruct, q.mi, q.rels, p.mark(id))
			return nil
		})
	}
	one := *q // each shard returns at most the rows needed to pick one
	one.limit = 1
	if len(q.order) == 0 {
		one.offset = 0
	}
	parts, err := one.scanParts(ctx, p, sliceType)
	if err != nil {
		return err
	}
	var from []ShardID
	for i, part := range parts {
		if part.Len() > 0 {
			from = append(from, p.Shards[i])
		}
	}
	switch {
	case len(from) == 0:
		return fmt.Errorf("session: select %s on shards %v: %w", q.mi.table.TypeName, p.Shards, sql.ErrNoRows)
	case len(from) > 1 && len(q.order) == 0:
		return fmt.Errorf("%w: select %s: rows on shards %v and no Order to pick the first; add Order or pin a shard",
			ErrAmbiguous, q.mi.table.TypeName, from)
	}
	m := q.s.startMerge(ctx, len(parts))
	rows, err := one.combine(parts, p.Shards, sliceType)
	endMerge(m, lenOf(rows), err)
	if err != nil {
		return err
	}
	if rows.Len() == 0 {
		return fmt.Errorf("session: select %s on shards %v: %w", q.mi.table.TypeName, p.Shards, sql.ErrNoRows)
	}
	dst.Set(rows.Index(0))
	return nil
}

// scanDest scans into caller-supplied destinations: pointers to slices are
// filled from every shard (concatenated); other destinations need a single
// shard.
func (q *SelectQuery) scanDest(ctx context.Context, p *plan, dest []any) error {
	n := len(p.Shards)
	if n == 0 && slices.ContainsFunc(dest, func(d any) bool { return !isSlicePtr(d) }) {
		return fmt.Errorf("%w: select %s: the WhereShardKey criteria match no row, so no shard runs the statement, "+
			"and a destination that holds one value cannot be filled; scan into a slice", ErrUnsupported, q.mi.table.TypeName)
	}
	if n == 1 {
		id := p.Shards[0]
		return q.s.fanOut(ctx, p.Shards, "select", func(ctx context.Context, _ int, _ ShardID, db bun.IDB) error {
			return q.build(db, p, id, q.model, 1, true).Scan(ctx, dest...)
		})
	}
	if n > 1 && len(q.order) > 0 {
		return fmt.Errorf("%w: select %s: an ordered Scan into separate destinations over %d shards; scan into Model(&objs) to merge the order",
			ErrUnsupported, q.mi.table.TypeName, n)
	}
	for i, d := range dest {
		if !isSlicePtr(d) {
			return fmt.Errorf("%w: select %s: destination %d (%T) holds one value but the statement runs on %d shards %v; "+
				"scan into a slice, use Count, or pin one shard", ErrUnsupported, q.mi.table.TypeName, i, d, n, p.Shards)
		}
	}
	parts := make([][]reflect.Value, n)
	err := q.s.fanOut(ctx, p.Shards, "select", func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		mine := make([]any, len(dest))
		parts[i] = make([]reflect.Value, len(dest))
		for j, d := range dest {
			v := reflect.New(reflect.TypeOf(d).Elem())
			mine[j], parts[i][j] = v.Interface(), v
		}
		return q.build(db, p, id, q.model, n, true).Scan(ctx, mine...)
	})
	if err != nil {
		return err
	}
	for j, d := range dest {
		out := reflect.ValueOf(d).Elem()
		out.SetLen(0)
		for i := range parts {
			out.Set(reflect.AppendSlice(out, parts[i][j].Elem()))
		}
		lo := min(q.offset, out.Len())
		hi := out.Len()
		if q.limit > 0 {
			hi = min(hi, lo+q.limit)
		}
		out.Set(out.Slice(lo, hi))
	}
	return nil
}

// isSlicePtr reports whether d is a non-nil pointer to a slice.
func isSlicePtr(d any) bool {
	t := reflect.TypeOf(d)
	return t != nil && t.Kind() == reflect.Pointer && t.Elem().Kind() == reflect.Slice && !reflect.ValueOf(d).IsNil()
}

// Count returns the number of rows the statement matches, summed over its
// shards. Count with GROUP BY or DISTINCT over several shards is
// ErrUnsupported: groups that span shards would be counted twice.
func (q *SelectQuery) Count(ctx context.Context) (int, error) {
	by, err := q.CountByShard(ctx)
	total := 0
	for _, n := range by {
		total += n
	}
	return total, err
}

// CountByShard returns the count of each shard the statement runs on.
func (q *SelectQuery) CountByShard(ctx context.Context) (map[ShardID]int, error) {
	if q.s.cfg.observer != nil {
		ctx, rec := q.s.observe(ctx, "count", q.mi)
		out, err := q.countByShard(ctx)
		rec.end(-1, err)
		return out, err
	}
	return q.countByShard(ctx)
}

func (q *SelectQuery) countByShard(ctx context.Context) (map[ShardID]int, error) {
	p, err := q.plan(ctx)
	if err != nil {
		return nil, err
	}
	if q.aggregating {
		return nil, fmt.Errorf("%w: Count of a GroupBy/Aggregate select; Scan it and count the rows", ErrInvalidArgument)
	}
	if q.grouped && len(p.Shards) > 1 {
		return nil, fmt.Errorf("%w: Count of %s with GROUP BY or DISTINCT over %d shards would count groups that span shards more than once",
			ErrUnsupported, q.mi.table.TypeName, len(p.Shards))
	}
	counts := make([]int64, len(p.Shards))
	var groups [][]int
	if q.countFolds() {
		groups = q.s.foldGroups(ctx, p.Shards)
	}
	if groups != nil {
		err = q.countsFolded(ctx, &p, counts, groups)
	} else {
		err = q.s.fanOutPolicy(ctx, p.Shards, "count", p.partial, func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
			n, err := q.build(db, &p, id, q.tableModel(), len(p.Shards), false).Count(ctx)
			counts[i] = int64(n)
			return err
		})
	}
	if err != nil && !isPartial(err) {
		return nil, err
	}
	out := make(map[ShardID]int, len(counts))
	for i, n := range counts {
		if err == nil || shardErr(err, p.Shards[i]) == nil {
			out[p.Shards[i]] = int(n)
		}
	}
	return out, err
}

// Exists reports whether any shard has a matching row.
func (q *SelectQuery) Exists(ctx context.Context) (bool, error) {
	if q.s.cfg.observer != nil {
		ctx, rec := q.s.observe(ctx, "exists", q.mi)
		ok, err := q.exists(ctx)
		rec.end(-1, err)
		return ok, err
	}
	return q.exists(ctx)
}

func (q *SelectQuery) exists(ctx context.Context) (bool, error) {
	p, err := q.plan(ctx)
	if err != nil {
		return false, err
	}
	found := make([]bool, len(p.Shards))
	err = q.s.fanOutPolicy(ctx, p.Shards, "exists", p.partial, func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		ok, err := q.build(db, &p, id, q.tableModel(), len(p.Shards), false).Exists(ctx)
		found[i] = ok
		return err
	})
	if err != nil && !isPartial(err) {
		return false, err
	}
	return slices.Contains(found, true), err
}

// tableModel returns a typed nil pointer naming the model, so that Count
// and Exists do not scan into (or race on) the caller's destination.
func (q *SelectQuery) tableModel() any {
	return reflect.Zero(reflect.PointerTo(q.mi.typ)).Interface()
}

// ScanByShard runs q on each of its shards and returns each shard's rows
// separately, unmerged. q's model names the model, e.g. Model((*T)(nil)).
func ScanByShard[T any](ctx context.Context, q *SelectQuery) (map[ShardID][]T, error) {
	if q.s.cfg.observer != nil {
		ctx, rec := q.s.observe(ctx, "select", q.mi)
		out, err := scanByShard[T](ctx, q)
		n := 0
		for _, rows := range out {
			n += len(rows)
		}
		rec.end(int64(n), err)
		return out, err
	}
	return scanByShard[T](ctx, q)
}

func scanByShard[T any](ctx context.Context, q *SelectQuery) (map[ShardID][]T, error) {
	p, err := q.plan(ctx)
	if err != nil {
		return nil, err
	}
	if q.mi.typ != reflect.TypeFor[T]() {
		return nil, fmt.Errorf("%w: ScanByShard[%s] on a select of %s", ErrInvalidArgument, reflect.TypeFor[T](), q.mi.typ)
	}
	parts := make([][]T, len(p.Shards))
	err = q.s.fanOut(ctx, p.Shards, "select", func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		var rows []T
		if err := q.build(db, &p, id, &rows, 1, true).Scan(ctx); err != nil {
			return err
		}
		q.s.stampAll(reflect.ValueOf(&rows), destSlice, q.mi, q.rels, p.mark(id))
		q.s.readRows(ctx, int64(len(rows)))
		parts[i] = rows
		return nil
	})
	if err != nil {
		return nil, err
	}
	out := make(map[ShardID][]T, len(parts))
	for i, rows := range parts {
		out[p.Shards[i]] = rows
	}
	return out, nil
}
