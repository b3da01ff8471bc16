package session

import (
	"context"
	"fmt"
	"slices"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
)

// A session select used as an argument of another session statement
// (Where("location_id IN (?)", sess.NewSelect().Model((*Location)(nil)).
// Column("id").WhereShardKey("continent", "Asia"))) is a subquery that
// runs on each shard the outer statement runs on, reading that shard's
// rows: each shard's Bun query gets the select built for that shard (its
// declared shard-key criteria, with that shard's own IN values). One
// database holding every row gives the same answer when the rows the
// subquery relates live on one shard with the outer rows (co-located, as a
// relation's are). Refused before anything is sent, naming the subquery's
// model: a pin of the subquery (SetShardID, a Using view) that leaves out
// a shard the outer statement runs on (it would read the outer shard's rows
// instead), Limit or Offset (they would apply per shard, not to the
// whole), GroupBy/Aggregate (merged only at the top), and a subquery with a
// builder error.

var _ schema.QueryAppender = (*SelectQuery)(nil)

// AppendQuery makes a session select a schema.QueryAppender, so that Bun
// inlines it; used directly, outside a statement of the session (in a plain
// Bun query), no shard is known and it renders an error, which fails that
// statement. (It used to render as {}.)
func (q *SelectQuery) AppendQuery(_ schema.QueryGen, b []byte) ([]byte, error) {
	name := "a select"
	if q.mi != nil {
		name = "select " + q.mi.table.TypeName
	}
	return b, fmt.Errorf("%w: a session %s used as a subquery where no shard is known (in a plain Bun query); "+
		"pass it to the session's own statements, which render it on each shard", ErrInvalidArgument, name)
}

// bindArgs returns args with each session select among them replaced by
// its Bun query on db, the handle of the shard the outer query is built
// for. It returns args itself when there is none.
func (s *Session) bindArgs(db *bun.DB, args []any) []any {
	var out []any
	for i, a := range args {
		sq, ok := a.(*SelectQuery)
		if !ok {
			continue
		}
		if out == nil {
			out = slices.Clone(args)
		}
		out[i] = s.bindSelect(db, sq)
	}
	if out == nil {
		return args
	}
	return out
}

// bindSelect builds sq for the shard whose handle db is; a failure is a
// Bun query carrying the error, which fails the outer statement (vetting
// has refused what it can before anything is sent).
func (s *Session) bindSelect(db *bun.DB, sq *SelectQuery) *bun.SelectQuery {
	id, err := s.shardOfHandle(db)
	if err != nil {
		return db.NewSelect().Err(fmt.Errorf("session: subquery: %v", err))
	}
	p, err := sq.subPlan(id)
	if err != nil {
		return db.NewSelect().Err(err)
	}
	return sq.build(db, &p, id, sq.tableModel(), 1, false)
}

// subPlan plans sq as a subquery of a statement on shard id.
func (sq *SelectQuery) subPlan(id ShardID) (plan, error) {
	what := "a subquery"
	if sq.mi != nil {
		what = "subquery select " + sq.mi.table.TypeName
	}
	switch {
	case sq.err != nil:
		return plan{}, fmt.Errorf("session: %s: %w", what, sq.err)
	case sq.mi == nil:
		return plan{}, fmt.Errorf("%w: %s has no model; call Model((*Model)(nil))", ErrInvalidArgument, what)
	case sq.limit > 0 || sq.offset > 0:
		return plan{}, fmt.Errorf("%w: %s has Limit or Offset, which would apply to each shard's rows, not to the whole",
			ErrUnsupported, what)
	case sq.aggregating:
		return plan{}, fmt.Errorf("%w: %s is a GroupBy/Aggregate select, which is merged only as a statement of its own",
			ErrUnsupported, what)
	}
	// The subquery's route only says whether it may run on id: the scatter
	// guard belongs to the outer statement.
	criteria, skip := sq.s.whereCriteria(sq.mi, &sq.wk, sq.criteria)
	p, err := sq.s.plan(context.Background(), chooser.OpSelect, sq.mi, criteria, append(slices.Clone(sq.opts), AllowScatter()))
	if err != nil {
		return plan{}, fmt.Errorf("session: %s: %w", what, err)
	}
	p.skip = skip
	if err := sq.s.vetSubqueries(sq.subs, []ShardID{id}, what); err != nil {
		return plan{}, err
	}
	if p.pinned() && !slices.Contains(p.Shards, id) {
		return plan{}, fmt.Errorf("%w: %s is pinned to %v by %s, but the outer statement runs on shard %s, where it would "+
			"read %s's rows instead; pin the outer statement the same way, or drop the subquery's pin",
			ErrInvalidArgument, what, p.Shards, pinName(p.By), id, id)
	}
	return p, nil
}
