package session

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
)

// reference reports whether mi's model is a reference table, copied to
// every shard: the ShardChooser or the ExecuteChooser says so through
// chooser.ReferenceTables (a chooser.Scheme's Reference declarations).
func (s *Session) reference(mi *modelInfo) bool {
	for _, c := range []any{s.shardChooser, s.executeChooser} {
		if rt, ok := c.(chooser.ReferenceTables); ok && rt.IsReference(mi.table) {
			return true
		}
	}
	return false
}

// referenceWrite runs a write of a reference table on every shard, all or
// none: outside a unit of work in a two-phase unit of its own, inside one
// in the unit's transactions, which must be two-phase. A pin (statement
// option, Using view, context) is refused before anything is sent: writing
// one copy would leave the copies different, and a reference table has no
// shard of its own to route to. fn runs the write on a session whose
// statements go into the unit.
func (s *Session) referenceWrite(ctx context.Context, o *stmtOptions, what string, fn func(ctx context.Context, v *Session) error) error {
	ids, by, err := s.pinOf(ctx, o, what)
	if err != nil {
		return err
	}
	if ids != nil {
		return fmt.Errorf("%w: %s: a reference table is written on every shard, but the %s pins the statement to %v; "+
			"write reference tables without a pin (a context pin too: use a context without WithShardID)",
			ErrInvalidArgument, what, pinName(by), ids)
	}
	if s.at.unitOf() == nil {
		return s.RunInTx(ctx, []UnitOption{TwoPhase()}, func(ctx context.Context, u *UnitOfWork) error {
			return fn(ctx, u.view)
		})
	}
	if !s.at.unitOf().cfg.twoPhase {
		return fmt.Errorf("%w: %s: a reference table is written on every shard, all or none, and this unit of work "+
			"commits each shard on its own; begin it with TwoPhase()", ErrInvalidArgument, what)
	}
	return fn(ctx, s)
}

// writeReference writes objs, objects of a reference table, on every shard
// (see referenceWrite). Their primary keys must be set: each shard would
// generate its own. The caller's objects take the first shard's RETURNING
// values (and its id on their Token); the other shards write copies, so that no two shards scan into
// one struct at once. An object that matches no row on some shard (an
// update or delete of a row that one copy lacks) fails the whole write.
func (s *Session) writeReference(ctx context.Context, op string, mi *modelInfo, objs []reflect.Value, o *stmtOptions, run writeFunc) error {
	what := op + " " + mi.table.TypeName
	for i, obj := range objs {
		for _, f := range mi.table.PKs {
			if f.HasZeroValue(obj) {
				return fmt.Errorf("%w: %s: %s (element %d) has no %s; a reference table's rows need their primary key "+
					"set before they are written, or each shard would generate its own", ErrInvalidArgument, what,
					mi.table.TypeName, i, f.Name)
			}
		}
	}
	// Copies made here, not in the fan-out's goroutines, which must not
	// read the caller's objects while the first shard scans into them.
	copies := make([][]reflect.Value, len(s.order))
	for i := range copies {
		if i == 0 {
			copies[i] = objs
			continue
		}
		copies[i] = make([]reflect.Value, len(objs))
		for j, obj := range objs {
			c := reflect.New(mi.typ).Elem()
			c.Set(obj)
			copies[i][j] = c
		}
	}
	return s.referenceWrite(ctx, o, what, func(ctx context.Context, v *Session) error {
		err := v.each(ctx, v.order, op, func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
			mine := copies[i]
			miss, err := run(ctx, db, groupModel(mi, mine, reflect.Value.Addr), mi, mine)
			if err != nil {
				return err
			}
			if len(miss) > 0 {
				return fmt.Errorf("%s: %d of %d objects matched no row on shard %s, whose copy of the reference table "+
					"differs; nothing is written on any shard: %w", what, len(miss), len(objs), id, sql.ErrNoRows)
			}
			v.wrote(ctx, id, db)
			v.at.unitOf().wrote(id) // v is a unit's view: Commit commits this shard
			return nil
		})
		if err != nil {
			return err
		}
		for _, obj := range objs { // read back from the first shard, as a select would
			if tok := mi.token(obj); tok != nil {
				tok.SetShard(v.order[0])
			}
		}
		return nil
	})
}
