package session

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"reflect"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/merge"
)

// Iter streams the rows of q (a select of model T) from every shard of its
// route without buffering them: in global order when q's Order names plain
// columns (a streaming k-way merge), else shard after shard. Limit and
// Offset apply to the whole stream.
//
// Every shard's query is started at once; memory stays at a row per shard
// plus what the driver buffers. When the consumer stops (break), the limit
// is reached or a shard fails, every shard's query is cancelled and its rows
// closed, so no shard is read to the end for nothing. An error is yielded
// once, with a nil row, and ends the stream.
//
// Streaming scans rows one at a time, so it cannot load has-many or m2m
// relations (Bun loads those after the parent rows); belongs-to and has-one
// relations, which are joins, work. Each row's Token records its shard.
func Iter[T any](ctx context.Context, q *SelectQuery) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		p, err := q.streamPlan(ctx, reflect.TypeFor[T]())
		if err != nil {
			yield(nil, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // ends every shard query still running when we return

		inputs, err := q.openStreams(ctx, &p, func(v reflect.Value) any { return v.Interface().(*T) })
		if err != nil {
			yield(nil, err)
			return
		}
		limit := -1
		if q.limit > 0 {
			limit = q.limit
		}
		typed := make([]iter.Seq2[*T, error], len(inputs))
		for i, in := range inputs {
			typed[i] = func(yield func(*T, error) bool) {
				for v, err := range in {
					var row *T
					if v != nil {
						row = v.(*T)
					}
					if !yield(row, err) {
						return
					}
				}
			}
		}
		var rows iter.Seq2[*T, error]
		if len(q.order) > 0 && len(p.Shards) > 1 {
			cmp := func(a, b *T) int {
				return compareRows(q.order, reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem())
			}
			rows = merge.Sorted(typed, cmp, q.offset, limit)
		} else {
			offset := q.offset
			if len(p.Shards) == 1 {
				offset, limit = 0, -1 // passed through to PostgreSQL
			}
			rows = concat(typed, offset, limit)
		}
		for row, err := range rows {
			if !yield(row, err) || err != nil {
				return
			}
		}
	}
}

func (q *SelectQuery) streamPlan(ctx context.Context, t reflect.Type) (plan, error) {
	p, err := q.plan(ctx)
	if err != nil {
		return plan{}, err
	}
	if q.mi.typ != t {
		return plan{}, fmt.Errorf("%w: Iter[%s] over a select of %s", ErrInvalidArgument, t, q.mi.typ)
	}
	if len(p.Shards) > 1 && len(q.order) > 0 {
		if err := mergeable(q.order); err != nil {
			return plan{}, err
		}
	}
	for name := range q.rels {
		if rel := q.mi.table.Relations[name]; rel != nil &&
			(rel.Type == schema.HasManyRelation || rel.Type == schema.ManyToManyRelation) {
			return plan{}, fmt.Errorf("%w: Iter cannot load the has-many/m2m relation %s.%s row by row; use Scan, "+
				"or load it afterwards", ErrUnsupported, q.mi.table.TypeName, name)
		}
	}
	return p, nil
}

// openStreams starts the query on every shard of p concurrently (so the
// shards work in parallel from the start) and returns one lazy input per
// shard that scans a fresh model per row with the shard's Token set.
func (q *SelectQuery) openStreams(ctx context.Context, p *plan, conv func(reflect.Value) any) ([]iter.Seq2[any, error], error) {
	n := len(p.Shards)
	type stream struct {
		rows   *sql.Rows
		db     *bun.DB
		cancel context.CancelFunc
	}
	streams := make([]stream, n)
	model := q.tableModel()
	// Each shard query gets its own context, derived from ctx and not from
	// the fan-out's (which ends when the fan-out returns), so that stopping
	// one stream cancels its query at once instead of draining it, and the
	// caller's cancel ends them all.
	err := q.s.fanOut(ctx, p.Shards, "select", func(_ context.Context, i int, id ShardID, db bun.IDB) error {
		sctx, cancel := context.WithCancel(WithShardID(ctx, id))
		b := q.build(db, p, id, model, n, true)
		rows, err := b.Rows(sctx)
		if err != nil {
			cancel()
			return err
		}
		streams[i] = stream{rows: rows, db: b.DB(), cancel: cancel}
		return nil
	})
	if err != nil {
		for _, st := range streams {
			if st.rows != nil {
				st.cancel()
				st.rows.Close()
			}
		}
		return nil, err
	}
	inputs := make([]iter.Seq2[any, error], n)
	for i, st := range streams {
		id := p.Shards[i]
		inputs[i] = func(yield func(any, error) bool) {
			var read int64
			defer func() { p.stats.add(id, read) }()
			defer st.rows.Close()
			defer st.cancel() // cancel first (deferred last), so Close does not drain
			for st.rows.Next() {
				v := reflect.New(q.mi.typ)
				if err := st.db.ScanRow(WithShardID(ctx, id), st.rows, v.Interface()); err != nil {
					yield(nil, &ShardError{Shard: id, Op: "select", Err: err})
					return
				}
				read++
				q.s.stamp(v.Elem(), q.mi, q.rels, p.mark(id))
				if !yield(conv(v), nil) {
					return
				}
			}
			if err := st.rows.Err(); err != nil {
				yield(nil, &ShardError{Shard: id, Op: "select", Err: err})
			}
		}
	}
	return inputs, nil
}

// concat streams inputs one after another with a global offset and limit
// (limit < 0: none), stopping every input it does not need.
func concat[T any](inputs []iter.Seq2[T, error], offset, limit int) iter.Seq2[T, error] {
	return func(yield func(T, error) bool) {
		if limit == 0 {
			return
		}
		skipped, sent := 0, 0
		for _, in := range inputs {
			for v, err := range in {
				if err != nil {
					yield(v, err)
					return
				}
				if skipped < offset {
					skipped++
					continue
				}
				if !yield(v, nil) {
					return
				}
				if sent++; limit > 0 && sent == limit {
					return
				}
			}
		}
	}
}
