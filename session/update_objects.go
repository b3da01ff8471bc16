package session

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"

	"github.com/uptrace/bun"
)

// objectUpdate is what an UpdateQuery of objects (Model(&obj) or
// Model(&objs)) holds beside the statement form's fields.
type objectUpdate struct {
	model   any
	bulk    bool
	slice   bool
	columns []string
	// keyListed: an Apply function adds a shard-key column to the
	// Column list; keyMoved must check it (shardkey.go appliedKey)
	keyListed bool
}

// objectModel takes model as the objects to update when it is a pointer to
// a model struct or to a slice of them, and reports whether it did.
func (q *UpdateQuery) objectModel(model any) bool {
	mi, kind, err := q.s.dest(model)
	if err != nil || kind == destTable {
		return false
	}
	q.mi = mi
	q.objs = &objectUpdate{model: model, slice: kind != destStruct}
	return true
}

// Column limits an UPDATE of objects to the named columns, as
// bun.UpdateQuery.Column does: only they are written, the others keep what
// the rows hold. A name that is no column of the model is
// [ErrInvalidArgument] at Exec, and so is Column on a statement-form
// UPDATE (use Set there).
func (q *UpdateQuery) Column(columns ...string) *UpdateQuery {
	if q.objs == nil {
		q.fail(fmt.Errorf("%w: UpdateQuery.Column(%s) applies to an UPDATE of objects (Model(&obj) or Model(&objs)); "+
			"a statement-form UPDATE writes what Set says", ErrInvalidArgument, strings.Join(columns, ", ")))
		return q
	}
	q.objs.columns = append(q.objs.columns, columns...)
	return q
}

// Bulk makes an UPDATE of a slice of objects one statement per shard, as
// bun.UpdateQuery.Bulk does (UPDATE ... FROM (VALUES ...) of that shard's
// objects); without it an UPDATE of a slice is [ErrInvalidArgument] at
// Exec, as Bun refuses it. Bulk of one object, or of a statement-form
// UPDATE, is [ErrInvalidArgument] too.
func (q *UpdateQuery) Bulk() *UpdateQuery {
	if q.objs == nil || !q.objs.slice {
		q.fail(fmt.Errorf("%w: UpdateQuery.Bulk needs Model(&objs), a slice of objects", ErrInvalidArgument))
		return q
	}
	q.objs.bulk = true
	return q
}

// execObjects updates the objects by primary key, each on its own shard,
// routed as [Session.Update] routes (the Token, then a pin, then the
// ShardChooser; a Token that names another shard than the pin is an
// error), one statement per shard; rows affected are the objects written.
// Objects that match no row make a *[WriteError] (errors.Is
// sql.ErrNoRows) listing those written and those not.
func (q *UpdateQuery) execObjects(ctx context.Context) (Result, error) {
	if q.err != nil {
		return Result{}, q.err
	}
	u, err := q.s.holdExec()
	if err != nil {
		return Result{}, err
	}
	defer u.leave()
	t := q.mi.table
	ob := q.objs
	switch {
	case len(q.criteria) > 0:
		return Result{}, fmt.Errorf("%w: update %s: WhereShardKey does not apply to an UPDATE of objects, which goes to "+
			"each object's own shard", ErrInvalidArgument, t.TypeName)
	case ob.slice && !ob.bulk:
		return Result{}, fmt.Errorf("%w: update %s: an UPDATE of a slice of objects needs Bulk() (one UPDATE ... FROM "+
			"(VALUES ...) per shard), as Bun's does", ErrInvalidArgument, t.TypeName)
	}
	for _, c := range ob.columns {
		if t.FieldMap[c] == nil {
			return Result{}, fmt.Errorf("%w: update %s: Column(%q): the model has no such column", ErrInvalidArgument, t.TypeName, c)
		}
	}
	if err := q.s.vetObjectSubqueries(ctx, q.subs, q.opts, "update "+t.TypeName,
		"an UPDATE of objects does not render subqueries per shard: use the statement form, or pin it"); err != nil {
		return Result{}, err
	}
	var mu sync.Mutex
	res := Result{ByShard: map[ShardID]int64{}}
	opts := q.opts
	if len(ob.columns) > 0 && !ob.keyListed {
		opts = append(slices.Clip(opts), func(o *stmtOptions) { o.written = ob.columns })
	}
	err = q.s.write(ctx, "update", ob.model, opts, func(ctx context.Context, db bun.IDB, m any, mi *modelInfo, objs []reflect.Value) ([]int, error) {
		id, _ := contextPin(ctx) // Session.run pins each shard's ctx to its shard
		b := db.NewUpdate().Model(m)
		if len(ob.columns) > 0 {
			b = b.Column(ob.columns...) // before Bulk, which reads the columns
		}
		for _, fn := range q.ops {
			b = fn(b)
		}
		var miss []int
		var err error
		if len(objs) == 1 {
			miss, err = missingOne(b.WherePK().Exec(ctx))
		} else {
			miss, err = missingOf(ctx, mi, objs, b.Bulk().Returning("?TablePKs"))
		}
		if err == nil {
			mu.Lock()
			res.ByShard[id] = int64(len(objs) - len(miss))
			res.RowsAffected += int64(len(objs) - len(miss))
			mu.Unlock()
		}
		return miss, err
	})
	return res, err
}
