package session

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
)

// RawQuery is a SQL statement written by hand (Bun's NewRaw), routed like
// the session's builders: a pin (statement option, Using view, context)
// sends it there; otherwise the ExecuteChooser decides, from the shard keys
// the caller declares with [RawQuery.ShardKey] (the SQL itself is opaque to
// it). Under [WithScatterGuard] a raw statement that would run on every
// shard needs [AllowScatter]. It runs on the shards' primaries (a raw
// statement may write), or in the unit's transactions for
// [UnitOfWork.NewRaw]. Not safe for concurrent use while being built.
type RawQuery struct {
	s        *Session
	query    string
	args     []any
	mi       *modelInfo
	criteria []chooser.Criterion
	opts     []StatementOption
	subs     []subquery
	err      error
	inRef    bool // a reference table's write, already inside its two-phase unit (reference.go)
}

// NewRaw starts a raw statement: query with Bun's placeholders (?, ?0,
// ?TableName of a declared model ...) and args, as bun.DB.NewRaw takes
// them. It autocommits on each shard.
func (s *Session) NewRaw(query string, args ...any) *RawQuery {
	return &RawQuery{s: s, query: query, args: args, subs: subqueriesIn(nil, "NewRaw", args)}
}

// NewRaw starts a raw statement (see [Session.NewRaw]) that runs inside the
// unit's transactions. Every shard it runs on counts as written, Scan's
// included (a raw statement may write, with RETURNING), so Commit commits
// what it did.
func (u *UnitOfWork) NewRaw(query string, args ...any) *RawQuery {
	return u.view.NewRaw(query, args...)
}

// ShardKey declares to the ExecuteChooser that the statement only touches
// rows of model (a (*T)(nil)) whose column is one of values, as
// [SelectQuery.WhereShardKey] does, but adds nothing to the SQL: the query
// must say so itself. The values are converted to the column's type as for
// WhereShardKey; a column the model lacks, or a second model, is
// [ErrInvalidArgument] at Scan or Exec. Calls on one column intersect, as
// for WhereShardKey; an empty intersection runs nowhere.
func (q *RawQuery) ShardKey(model any, column string, values ...any) *RawQuery {
	mi, err := q.s.modelOf(model)
	switch {
	case err != nil:
		q.fail(fmt.Errorf("session: raw ShardKey: %w", err))
	case q.mi != nil && q.mi != mi:
		q.fail(fmt.Errorf("%w: raw ShardKey(%s.%s): the statement already declared keys of %s; declare one model",
			ErrInvalidArgument, mi.table.TypeName, column, q.mi.table.TypeName))
	case len(values) == 0:
		q.fail(fmt.Errorf("%w: raw ShardKey(%s.%s) needs at least one value", ErrInvalidArgument, mi.table.TypeName, column))
	default:
		q.mi = mi
		q.criteria = append(q.criteria, chooser.Criterion{Column: column, Values: values})
	}
	return q
}

func (q *RawQuery) fail(err error) {
	if q.err == nil {
		q.err = err
	}
}

// Options adds statement options: SetShardID, SetShardIDs, AllowScatter, ...
func (q *RawQuery) Options(opts ...StatementOption) *RawQuery {
	q.opts = append(q.opts, opts...)
	return q
}

// Route resolves where the statement would run, without running it. op is
// chooser.OpSelect for Scan and chooser.OpUpdate for Exec, as they ask the
// ExecuteChooser.
func (q *RawQuery) Route(ctx context.Context, op chooser.Op) (Route, error) {
	if q.err != nil {
		return Route{}, q.err
	}
	var r Route
	if q.mi != nil {
		p, err := q.s.plan(ctx, op, q.mi, q.criteria, q.opts)
		if err != nil {
			return Route{}, err
		}
		r = p.Route
	} else {
		o := options(q.opts)
		var err error
		r, err = q.s.route(ctx, &o, "raw "+op.String(), func() (chooser.Target, error) {
			return q.s.executeChooser.ChooseExecute(ctx, &chooser.Statement{Op: op})
		})
		if err != nil {
			return Route{}, err
		}
		q.s.routed(ctx, r)
	}
	if err := q.s.vetSubqueries(q.subs, r.Shards, "raw "+op.String()); err != nil {
		return Route{}, err
	}
	return r, nil
}

// Scan runs the statement as a read (the ExecuteChooser sees
// chooser.OpSelect) and scans its rows into dest, as bun.RawQuery.Scan
// does. On one shard dest is filled as Bun fills it. On several, every
// dest must point to a slice: each shard's rows are appended in route
// order (the chooser's order, or the session's shard order), concatenated
// and not merged. SQL that each shard would apply to its own rows only
// (ORDER BY, LIMIT, OFFSET, DISTINCT, GROUP BY, an aggregate or window,
// UNION, INTERSECT, EXCEPT, at any depth) is [ErrUnsupported] over several
// shards before anything is sent, unless the statement carries
// [PerShard]: for a global order, limit or aggregate use
// [Session.NewSelect]. Any other dest over several shards is
// [ErrUnsupported] too. Every shard runs to
// its end; the error joins a *ShardError per failing shard, and dest is
// left as it was. A route of no shard (an empty ShardKey intersection)
// sends nothing and leaves dest as it is.
//
// A Scan that declares a reference table's key ([RawQuery.ShardKey]) and
// whose SQL writes (INSERT, UPDATE, DELETE, MERGE, TRUNCATE, also in a
// CTE; a locking FOR UPDATE counts too) runs as [RawQuery.Exec] with dest
// does: every copy, all or none, RETURNING rows from the first copy.
// Reading one copy while writing it would leave the copies different.
func (q *RawQuery) Scan(ctx context.Context, dest ...any) error {
	op := chooser.OpSelect
	if q.err == nil && q.mi != nil && q.s.reference(q.mi) && writesSQL(q.query) {
		op = chooser.OpUpdate
	}
	_, err := q.run(ctx, op, dest, true)
	return err
}

// Exec runs the statement as a write (the ExecuteChooser sees
// chooser.OpUpdate, so a chooser.Routers' WriteRouters decide) and reports
// rows affected, summed and per shard. With dest it scans the returned rows
// (RETURNING) into dest, concatenated in route order as Scan does. A shard
// that fails does not stop the others (a half-sent write is not cut
// short): the error joins a *ShardError per failing shard, and Result
// counts the shards that succeeded. The SQL is checked as Scan's is (a
// LIMIT in a subquery would pick rows per shard).
//
// A statement that declares a reference table's key ([RawQuery.ShardKey]
// of a model the choosers call a reference table) writes every shard's
// copy all or none, as the builders' reference writes do: outside a unit
// of work in a two-phase unit of its own, inside one in the unit's
// transactions, which must be [TwoPhase] (else [ErrInvalidArgument] before
// anything is sent). If one shard fails, no shard keeps the change. A pin
// is [ErrInvalidArgument] before anything is sent (one copy would differ
// from the others). RETURNING rows are scanned from the first shard's copy
// only, as one database holding the table would return them.
func (q *RawQuery) Exec(ctx context.Context, dest ...any) (Result, error) {
	return q.run(ctx, chooser.OpUpdate, dest, len(dest) > 0)
}

func (q *RawQuery) run(ctx context.Context, op chooser.Op, dest []any, scan bool) (Result, error) {
	if q.s.cfg.observer != nil {
		ctx, rec := q.s.observe(ctx, "raw", q.mi)
		res, err := q.runRaw(ctx, op, dest, scan)
		rec.end(res.RowsAffected, err)
		return res, err
	}
	return q.runRaw(ctx, op, dest, scan)
}

func (q *RawQuery) runRaw(ctx context.Context, op chooser.Op, dest []any, scan bool) (Result, error) {
	if !q.inRef { // inRef: the outer run of a reference write holds the unit
		u, err := q.s.holdExec()
		if err != nil {
			return Result{}, err
		}
		defer u.leave()
	}
	if q.err == nil && !q.inRef && op != chooser.OpSelect && q.mi != nil && q.s.reference(q.mi) {
		// reference.go: every shard, in one two-phase unit (or the caller's)
		var res Result
		o := options(q.opts)
		err := q.s.referenceWrite(ctx, &o, "raw "+op.String()+" "+q.mi.table.TypeName, func(ctx context.Context, v *Session) error {
			r := *q
			// Every shard is the point of a reference write: the scatter
			// guard does not apply.
			r.s, r.inRef, r.opts = v, true, append(slices.Clone(q.opts), AllowScatter())
			var err error
			res, err = r.runRaw(ctx, op, dest, scan)
			return err
		})
		return res, err
	}
	r, err := q.Route(ctx, op)
	if err != nil {
		return Result{}, err
	}
	if q.inRef && !slices.Equal(r.Shards, q.s.order) {
		return Result{}, fmt.Errorf("%w: raw %s of %s: a reference table is written on every shard %v, but the "+
			"ExecuteChooser sends the statement to %v", ErrInvalidArgument, op, q.mi.table.TypeName, q.s.order, r.Shards)
	}
	n := len(r.Shards)
	if scan && n > 1 && !q.inRef {
		for i, d := range dest {
			if v := reflect.ValueOf(d); v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Slice {
				return Result{}, fmt.Errorf("%w: raw %s on %d shards %v: dest %d is %T; rows of several shards can only "+
					"be concatenated into slices: scan into a *[]T, or pin one shard", ErrUnsupported, op, n, r.Shards, i+1, d)
			}
		}
	}
	// A reference table's rows are alike on every shard, and so are its
	// per-shard answers.
	if o := options(q.opts); n > 1 && !o.perShard && (q.mi == nil || !q.s.reference(q.mi)) {
		if clause := perShardClause(q.query); clause != "" {
			return Result{}, fmt.Errorf("%w: raw %s on %d shards %v: the SQL holds %s, which each shard applies to its own "+
				"rows only, so the shards' answers together are not what one database holding every row returns; use "+
				"NewSelect (it merges ORDER BY, LIMIT, GroupBy and aggregates across shards), pin one shard, or add "+
				"the PerShard() option to concatenate each shard's own answer", ErrUnsupported, op, n, r.Shards, clause)
		}
	}
	// parts[i][j] is dest j's fresh slice for shard i (when n > 1).
	parts := make([][]reflect.Value, n)
	rows := make([]int64, n)
	err = q.s.each(ctx, r.Shards, "raw "+op.String(), func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		b := db.NewRaw(q.query, q.s.bindArgs(db.NewSelect().DB(), q.args)...)
		var res interface{ RowsAffected() (int64, error) }
		var err error
		switch {
		case !scan:
			res, err = b.Exec(ctx)
		case n == 1, q.inRef && i == 0:
			// A reference table's copies return the same rows: the first
			// shard's are the statement's, as one database would return
			// them (the others scan into nothing).
			res, err = b.Exec(ctx, dest...)
		case q.inRef:
			res, err = b.Exec(ctx)
		default:
			fresh := make([]any, len(dest))
			parts[i] = make([]reflect.Value, len(dest))
			for j, d := range dest {
				p := reflect.New(reflect.TypeOf(d).Elem())
				parts[i][j], fresh[j] = p, p.Interface()
			}
			res, err = b.Exec(ctx, fresh...)
		}
		if rows[i], err = affected(res, err); err != nil {
			return err
		}
		q.s.readRows(ctx, rows[i])
		if op != chooser.OpSelect || q.s.at.unitOf() != nil {
			q.s.wrote(ctx, id, db) // in a unit, Commit must commit it (a Scan too: it may have written)
		}
		return nil
	})
	out := Result{ByShard: make(map[ShardID]int64, n)}
	for i, id := range r.Shards {
		out.RowsAffected += rows[i]
		out.ByShard[id] = rows[i]
	}
	if err != nil {
		return out, err
	}
	if scan && n > 1 && !q.inRef {
		for j, d := range dest {
			dv := reflect.ValueOf(d).Elem()
			all := reflect.MakeSlice(dv.Type(), 0, 0)
			for i := range n {
				all = reflect.AppendSlice(all, parts[i][j].Elem())
			}
			dv.Set(all)
		}
	}
	return out, nil
}
