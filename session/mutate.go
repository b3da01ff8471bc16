package session

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
)

// Result reports what a fanned-out UPDATE or DELETE did: the rows affected
// in total and on each shard it ran on.
type Result struct {
	RowsAffected int64
	ByShard      map[ShardID]int64
}

// UpdateQuery is an UPDATE ... WHERE statement that fans out through the
// ExecuteChooser (or a pin), as SQLAlchemy's bulk update does. Like
// SelectQuery it records builder calls and replays them per shard. Not safe
// for concurrent use while being built.
type UpdateQuery struct {
	mutation
	ops  []func(*bun.UpdateQuery) *bun.UpdateQuery
	objs *objectUpdate // Model of objects: update_objects.go
}

// DeleteQuery is a DELETE ... WHERE statement that fans out through the
// ExecuteChooser (or a pin). Not safe for concurrent use while being built.
type DeleteQuery struct {
	mutation
	ops []func(*bun.DeleteQuery) *bun.DeleteQuery
}

// mutation is what UpdateQuery and DeleteQuery share.
type mutation struct {
	s        *Session
	mi       *modelInfo
	criteria []chooser.Criterion
	opts     []StatementOption
	subs     []subquery // Bun queries among the arguments: vetted against the route
	err      error
	inUnit   bool         // a reference table's statement, already inside its two-phase unit
	wk       whereScope   // plain Wheres on the shard key (wherekey.go)
	clauses  []clause     // what SyncEvaluate reads (synchronize.go)
	local    perShardText // a fragment answered per shard (rawsql.go)
}

// NewUpdate starts a statement-form UPDATE. To update loaded objects by
// primary key use [Session.Update].
func (s *Session) NewUpdate() *UpdateQuery { return &UpdateQuery{mutation: mutation{s: s}} }

// NewDelete starts a statement-form DELETE. To delete loaded objects by
// primary key use [Session.Delete].
func (s *Session) NewDelete() *DeleteQuery { return &DeleteQuery{mutation: mutation{s: s}} }

func (m *mutation) model(model any) {
	mi, kind, err := m.s.dest(model)
	switch {
	case err != nil:
		m.fail(err)
	case kind != destTable:
		m.fail(fmt.Errorf("%w: a statement-form UPDATE/DELETE takes Model((*%s)(nil)); to write objects use Session.Update or Session.Delete",
			ErrInvalidArgument, mi.typ.Name()))
	default:
		m.mi = mi
	}
}

// where records a Where or WhereOr (kind) about to be builder call n: the
// clause SyncEvaluate reads, its subqueries, and for a Where what it says
// of the shard key; a WhereOr leaves the shard key to the declared
// criteria (wherekey.go).
func (m *mutation) where(kind string, n int, query string, args []any) {
	m.clauses = append(m.clauses, clause{kind, query, args})
	m.subs = subqueriesIn(m.subs, kind, args)
	m.local.note(kind, query)
	switch {
	case kind == "WhereOr":
		m.wk.opaque = true
	case m.mi != nil:
		m.wk.note(m.mi.table, n, query, args)
	}
}

// applied records an Apply: opaque to the shard-key reading and to
// SyncEvaluate.
func (m *mutation) applied() {
	m.wk.opaque = true
	m.clauses = append(m.clauses, clause{kind: "Apply"})
}

func (m *mutation) fail(err error) {
	if m.err == nil {
		m.err = err
	}
}

func (m *mutation) shardKey(column string, values []any) {
	if len(values) == 0 {
		m.fail(fmt.Errorf("%w: WhereShardKey(%q) needs at least one value", ErrInvalidArgument, column))
		return
	}
	m.criteria = append(m.criteria, chooser.Criterion{Column: column, Values: values})
}

// exec plans the statement and runs it on every shard of the route, without
// cancelling the others when one fails (a half-sent write must not be cut
// short); the error joins every failing shard's *ShardError.
func (m *mutation) exec(ctx context.Context, op chooser.Op, run func(ctx context.Context, db bun.IDB, p *plan, id ShardID) (int64, error)) (Result, error) {
	if m.s.cfg.observer != nil {
		ctx, rec := m.s.observe(ctx, op.String(), m.mi)
		res, err := m.execute(ctx, op, run)
		rec.end(res.RowsAffected, err)
		return res, err
	}
	return m.execute(ctx, op, run)
}

func (m *mutation) execute(ctx context.Context, op chooser.Op, run func(ctx context.Context, db bun.IDB, p *plan, id ShardID) (int64, error)) (Result, error) {
	if m.err != nil {
		return Result{}, m.err
	}
	if !m.inUnit { // inUnit: the outer exec of a reference write holds the unit
		u, err := m.s.holdExec()
		if err != nil {
			return Result{}, err
		}
		defer u.leave()
	}
	if m.mi == nil {
		return Result{}, fmt.Errorf("%w: %s has no model; call Model((*Model)(nil))", ErrInvalidArgument, op)
	}
	if m.s.reference(m.mi) && !m.inUnit {
		// reference.go: every shard, in one two-phase unit (or the caller's)
		var res Result
		o := options(m.opts)
		err := m.s.referenceWrite(ctx, &o, op.String()+" "+m.mi.table.TypeName, func(ctx context.Context, v *Session) error {
			r := *m
			// Every shard is the point of a reference write: the scatter
			// guard does not apply.
			r.s, r.inUnit, r.opts = v, true, append(slices.Clone(m.opts), AllowScatter())
			var err error
			res, err = r.exec(ctx, op, run)
			return err
		})
		return res, err
	}
	p, err := m.planned(ctx, op)
	if err != nil {
		return Result{}, err
	}
	rows := make([]int64, len(p.Shards))
	err = m.s.each(ctx, p.Shards, op.String(), func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		n, err := run(ctx, db, &p, id)
		rows[i] = n
		if err == nil {
			m.s.wrote(ctx, id, db)
			if m.s.at.unitOf() != nil { // a write in the unit's transaction: Commit must commit it
				m.s.at.unitOf().wrote(id)
			}
		}
		return err
	})
	res := Result{ByShard: make(map[ShardID]int64, len(rows))}
	for i, n := range rows {
		res.RowsAffected += n
		res.ByShard[p.Shards[i]] = n
	}
	return res, err
}

// planned routes the statement: where it runs and each shard's key
// values. Exec and Explain both call it.
func (m *mutation) planned(ctx context.Context, op chooser.Op) (plan, error) {
	criteria, skip := m.s.whereCriteria(m.mi, &m.wk, m.criteria)
	p, err := m.s.plan(ctx, op, m.mi, criteria, m.opts)
	if err != nil {
		return plan{}, err
	}
	p.skip = skip
	if m.inUnit && len(p.Shards) > 0 && !slices.Equal(p.Shards, m.s.order) {
		return plan{}, fmt.Errorf("%w: %s %s: a reference table is written on every shard %v, but the ExecuteChooser "+
			"sends the statement to %v", ErrInvalidArgument, op, m.mi.table.TypeName, m.s.order, p.Shards)
	}
	if err := m.s.vetSubqueries(m.subs, p.Shards, op.String()+" "+m.mi.table.TypeName); err != nil {
		return plan{}, err
	}
	if err := m.local.vet(m.s, op.String()+" "+m.mi.table.TypeName, m.mi, p.Shards, m.opts); err != nil {
		return plan{}, err
	}
	return p, nil
}

func affected(res interface{ RowsAffected() (int64, error) }, err error) (int64, error) {
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// Model names the model: Model((*Report)(nil)).
//
// Model(&obj) or Model(&objs) updates those objects by primary key instead,
// each on its own shard (see [UpdateQuery.Bulk] and [UpdateQuery.Column]).
func (q *UpdateQuery) Model(model any) *UpdateQuery {
	if !q.objectModel(model) {
		q.model(model)
	}
	return q
}

// Set adds a SET clause, as bun.UpdateQuery.Set does.
func (q *UpdateQuery) Set(query string, args ...any) *UpdateQuery {
	q.clauses = append(q.clauses, clause{"Set", query, args})
	q.subs = subqueriesIn(q.subs, "Set", args)
	q.local.note("Set", query)
	q.ops = append(q.ops, func(b *bun.UpdateQuery) *bun.UpdateQuery { return b.Set(query, q.s.bindArgs(b.DB(), args)...) })
	return q
}

// Where adds a condition, as bun.UpdateQuery.Where does.
func (q *UpdateQuery) Where(query string, args ...any) *UpdateQuery {
	q.where("Where", len(q.ops), query, args)
	q.ops = append(q.ops, func(b *bun.UpdateQuery) *bun.UpdateQuery { return b.Where(query, q.s.bindArgs(b.DB(), args)...) })
	return q
}

// WhereOr adds an OR condition, as bun.UpdateQuery.WhereOr does.
func (q *UpdateQuery) WhereOr(query string, args ...any) *UpdateQuery {
	q.where("WhereOr", len(q.ops), query, args)
	q.ops = append(q.ops, func(b *bun.UpdateQuery) *bun.UpdateQuery { return b.WhereOr(query, q.s.bindArgs(b.DB(), args)...) })
	return q
}

// WhereShardKey adds and declares a shard-key condition, as
// [SelectQuery.WhereShardKey] does.
func (q *UpdateQuery) WhereShardKey(column string, values ...any) *UpdateQuery {
	q.shardKey(column, values)
	return q
}

// Apply calls fn on every per-shard Bun query.
func (q *UpdateQuery) Apply(fn func(*bun.UpdateQuery) *bun.UpdateQuery) *UpdateQuery {
	q.applied()
	q.ops = append(q.ops, fn)
	return q
}

// Options adds statement options such as SetShardID.
func (q *UpdateQuery) Options(opts ...StatementOption) *UpdateQuery {
	q.opts = append(q.opts, opts...)
	return q
}

// Exec runs the UPDATE on its shards and reports rows affected, summed and
// per shard. When some shards fail, the others' updates stand: the error
// joins a *ShardError per failing shard and Result counts what succeeded.
//
// Inside a unit of work the unit's tracked objects are synchronized with
// what it did, as the [Synchronize] option says (default [SyncAuto]).
func (q *UpdateQuery) Exec(ctx context.Context) (Result, error) {
	if q.err == nil && q.mi != nil {
		for _, c := range q.clauses {
			if col := q.s.setKey(q.mi.table, c.query); c.kind == "Set" && col != "" {
				return Result{}, fmt.Errorf("%w: update %s: Set(%q) assigns %s, the shard key of %s: the rows would stay on "+
					"shards their new key does not route to, where reads by that key miss them; to move a row, delete it and "+
					"insert it with the new key in one unit of work", ErrShardKeyChanged, q.mi.table.TypeName, c.query, col, q.mi.table.TypeName)
			}
		}
	}
	if q.err == nil && q.mi != nil {
		col, listed, err := q.appliedKey()
		if err != nil {
			return Result{}, err
		}
		if listed != "" && q.objs == nil {
			col = listed // a statement form writes its nil model's value
		}
		switch {
		case col != "":
			return Result{}, fmt.Errorf("%w: update %s: an Apply function assigns %s, the shard key of %s: the rows would "+
				"stay on shards their new key does not route to, where reads by that key miss them; to move a row, delete it "+
				"and insert it with the new key in one unit of work", ErrShardKeyChanged, q.mi.table.TypeName, col, q.mi.table.TypeName)
		case listed != "" && len(q.objs.columns) > 0:
			q.objs.keyListed = true // Column(key) by Apply: keyMoved checks the key as if Column had named it
		}
	}
	if q.objs != nil {
		return q.execObjects(ctx)
	}
	sy, err := q.newSyncer(chooser.OpUpdate, q.clauses)
	if err != nil {
		return Result{}, err
	}
	res, err := q.exec(ctx, chooser.OpUpdate, func(ctx context.Context, db bun.IDB, p *plan, id ShardID) (int64, error) {
		b := replay(db.NewUpdate().Model(reflect.Zero(reflect.PointerTo(q.mi.typ)).Interface()), q.ops, p, id)
		return sy.run(ctx, id, p, execUpdate{b})
	})
	sy.apply()
	return res, err
}

// Model names the model: Model((*Report)(nil)).
func (q *DeleteQuery) Model(model any) *DeleteQuery { q.model(model); return q }

// Where adds a condition, as bun.DeleteQuery.Where does.
func (q *DeleteQuery) Where(query string, args ...any) *DeleteQuery {
	q.where("Where", len(q.ops), query, args)
	q.ops = append(q.ops, func(b *bun.DeleteQuery) *bun.DeleteQuery { return b.Where(query, q.s.bindArgs(b.DB(), args)...) })
	return q
}

// WhereOr adds an OR condition, as bun.DeleteQuery.WhereOr does.
func (q *DeleteQuery) WhereOr(query string, args ...any) *DeleteQuery {
	q.where("WhereOr", len(q.ops), query, args)
	q.ops = append(q.ops, func(b *bun.DeleteQuery) *bun.DeleteQuery { return b.WhereOr(query, q.s.bindArgs(b.DB(), args)...) })
	return q
}

// WhereShardKey adds and declares a shard-key condition, as
// [SelectQuery.WhereShardKey] does.
func (q *DeleteQuery) WhereShardKey(column string, values ...any) *DeleteQuery {
	q.shardKey(column, values)
	return q
}

// Apply calls fn on every per-shard Bun query.
func (q *DeleteQuery) Apply(fn func(*bun.DeleteQuery) *bun.DeleteQuery) *DeleteQuery {
	q.applied()
	q.ops = append(q.ops, fn)
	return q
}

// Options adds statement options such as SetShardID.
func (q *DeleteQuery) Options(opts ...StatementOption) *DeleteQuery {
	q.opts = append(q.opts, opts...)
	return q
}

// Exec runs the DELETE on its shards and reports rows affected, summed and
// per shard, as [UpdateQuery.Exec] does.
func (q *DeleteQuery) Exec(ctx context.Context) (Result, error) {
	sy, err := q.newSyncer(chooser.OpDelete, q.clauses)
	if err != nil {
		return Result{}, err
	}
	res, err := q.exec(ctx, chooser.OpDelete, func(ctx context.Context, db bun.IDB, p *plan, id ShardID) (int64, error) {
		b := replay(db.NewDelete().Model(reflect.Zero(reflect.PointerTo(q.mi.typ)).Interface()), q.ops, p, id)
		return sy.run(ctx, id, p, execDelete{b})
	})
	sy.apply()
	return res, err
}
