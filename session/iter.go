package session

import (
	"context"
	"database/sql"
	"fmt"
	"iter"
	"reflect"
	"slices"
	"sync"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/internal/planner"
	"github.com/bunshard/bunshard/merge"
)

// Iter streams the rows of q (a select of model T) from every shard of its
// route without buffering them: in global order when q's Order names plain
// columns (a streaming k-way merge), else shard after shard. Limit and
// Offset apply to the whole stream.
//
// Every shard's query is started at once, each on a connection of its own;
// memory stays at a row per shard plus what the driver buffers. When the
// consumer stops (break), the limit is reached or a shard fails, Iter stops
// every shard query not read to its end before it returns: PostgreSQL is
// told to cancel it (pg_cancel_backend, from another connection of the
// shard's pool), and the connection, which the cancel breaks, is dropped.
// So no shard is read to the end for nothing, and nothing of the query is
// left running. Inside a unit of work (or on a shard that is a bun.Tx) a
// cancel would abort the transaction, so there the rest of each result is
// read and dropped instead. An error is yielded once, with a nil row, and
// ends the stream.
//
// Streaming scans rows one at a time, so it cannot load has-many or m2m
// relations (Bun loads those after the parent rows); belongs-to and has-one
// relations, which are joins, work. Each row's Token records its shard.
func Iter[T any](ctx context.Context, q *SelectQuery) iter.Seq2[*T, error] {
	if q.s.cfg.observer == nil {
		return iterate[T](ctx, q)
	}
	return func(yield func(*T, error) bool) {
		ctx, rec := q.s.observe(ctx, "select", q.mi)
		var rows int64
		var last error
		for row, err := range iterate[T](ctx, q) {
			if err != nil {
				last = err
			} else {
				rows++
			}
			if !yield(row, err) {
				break
			}
		}
		rec.end(rows, last)
	}
}

func iterate[T any](ctx context.Context, q *SelectQuery) iter.Seq2[*T, error] {
	return func(yield func(*T, error) bool) {
		p, err := q.streamPlan(ctx, reflect.TypeFor[T]())
		if err != nil {
			yield(nil, err)
			return
		}
		ctx, cancel := context.WithCancel(ctx)
		defer cancel() // ends every shard query still running when we return

		inputs, closeAll, err := q.openStreams(ctx, &p, func(v reflect.Value) any { return v.Interface().(*T) })
		if err != nil {
			yield(nil, err)
			return
		}
		defer closeAll() // stops every shard query not read to its end
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
				return planner.CompareRows(q.order, reflect.ValueOf(a).Elem(), reflect.ValueOf(b).Elem())
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
// shard that scans a fresh model per row with the shard's Token set, and a
// function that stops every shard's query not read to its end. Iter calls
// it on return, so a break, an error or the limit stops them all, those of
// inputs never pulled (a concatenation stopped early) included.
func (q *SelectQuery) openStreams(ctx context.Context, p *plan, conv func(reflect.Value) any) ([]iter.Seq2[any, error], func(), error) {
	n := len(p.Shards)
	var (
		mu        sync.Mutex
		streams   = make([]*stream, n)
		abandoned bool // opening failed: a stream opened later closes itself
	)
	closeAll := func() {
		mu.Lock()
		abandoned = true
		open := slices.Clone(streams)
		mu.Unlock()
		var wg sync.WaitGroup
		for _, st := range open {
			if st != nil {
				wg.Go(st.close)
			}
		}
		wg.Wait()
	}
	if u := q.s.at.unitOf(); u != nil {
		if err := u.streamable(ctx, p.Shards); err != nil {
			return nil, nil, err
		}
	}
	model := q.tableModel()
	err := q.s.fanOut(ctx, p.Shards, "select", func(fctx context.Context, i int, id ShardID, db bun.IDB) error {
		st, err := openStream(WithShardID(ctx, id), fctx, db, func(db bun.IDB) *bun.SelectQuery {
			return q.build(db, p, id, model, n, true)
		})
		if err != nil {
			return err
		}
		mu.Lock()
		defer mu.Unlock()
		if abandoned { // the fan-out has returned (another shard failed)
			go st.close()
			return nil
		}
		streams[i] = st
		return nil
	})
	if err != nil {
		closeAll()
		return nil, nil, err
	}
	inputs := make([]iter.Seq2[any, error], n)
	for i, st := range streams {
		id := p.Shards[i]
		inputs[i] = func(yield func(any, error) bool) {
			var read int64
			defer func() { p.stats.add(id, read) }()
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
				return
			}
			st.finished()
			st.close() // its connection is free now
		}
	}
	return inputs, closeAll, nil
}

// stream is one shard's running query of an Iter.
type stream struct {
	rows   *sql.Rows
	db     *bun.DB // the Bun handle that scans rows
	cancel context.CancelFunc

	// For a query on a connection of its own (a shard's *bun.DB, or a
	// replica's): the connection, the pool it came from and its server
	// process, so that close can cancel the query there.
	conn *sql.Conn
	pool *sql.DB
	pid  int64

	mu     sync.Mutex
	done   bool // read to the end: nothing to stop
	closed bool
}

// openStream starts the query build makes on db. On a *bun.DB the query
// runs on a connection of its own, whose server process id it asks first.
//
// Why: closing the rows of a query not read to its end does not stop it.
// pgdriver's Rows.Close reads the rest of the result, and ignores a
// cancelled context; a break after one row of a large result read it all,
// and the queries of a concatenation's inputs never pulled went on being
// read in the background after Iter returned. PostgreSQL stops a query
// only when told to (a cancel request, which pgdriver does not send): close
// tells it with pg_cancel_backend, from another connection of the pool, and
// for that needs the process id. That costs one round trip per shard when
// the stream opens. In a transaction (a unit of work's, or a shard that is
// a bun.Tx) a cancel would abort the transaction, so there the rest of the
// result is read and dropped.
//
// The query gets a context of its own, derived from ctx (Iter's) and not
// from fctx, the fan-out's, which ends when the fan-out returns; but while
// the stream opens, fctx ending (another shard failed) cancels it too.
func openStream(ctx, fctx context.Context, db bun.IDB, build func(bun.IDB) *bun.SelectQuery) (*stream, error) {
	sctx, cancel := context.WithCancel(ctx)
	opening := context.AfterFunc(fctx, cancel)
	defer opening()
	st := &stream{cancel: cancel}
	on := db
	if pool, ok := db.(*bun.DB); ok {
		conn, err := pool.Conn(sctx)
		if err != nil {
			cancel()
			return nil, err
		}
		// On the *sql.Conn, not through Bun: plumbing, not the user's
		// statement, so query hooks do not see it.
		if err := conn.Conn.QueryRowContext(sctx, "SELECT pg_backend_pid()").Scan(&st.pid); err != nil {
			conn.Close()
			cancel()
			return nil, err
		}
		st.conn, st.pool, on = conn.Conn, pool.DB, conn
	}
	b := build(on)
	rows, err := b.Rows(sctx)
	if err != nil {
		st.done = true
		st.close()
		return nil, err
	}
	st.rows, st.db = rows, b.DB()
	return st, nil
}

// finished notes that the stream was read to its end: close has nothing to
// stop.
func (st *stream) finished() {
	st.mu.Lock()
	st.done = true
	st.mu.Unlock()
}

// close stops the stream's query if it was not read to its end (see
// openStream), closes its rows and returns its connection to the pool (or,
// when the cancel broke it, lets database/sql discard it). Only its first
// call does anything.
func (st *stream) close() {
	st.mu.Lock()
	if st.closed {
		st.mu.Unlock()
		return
	}
	st.closed = true
	stop := !st.done && st.pool != nil && st.rows != nil
	st.mu.Unlock()
	if stop {
		// Why not the caller's context: this is the cleanup that runs when
		// it has ended, too. Bounded, so a shard that does not answer
		// cannot hold the return for long; without the cancel, Close reads
		// the rest of the result.
		ctx, cancel := context.WithTimeout(context.Background(), cancelTimeout)
		_, _ = st.pool.ExecContext(ctx, "SELECT pg_cancel_backend($1)", st.pid)
		cancel()
	}
	st.cancel()
	if st.rows != nil {
		_ = st.rows.Close()
	}
	if st.conn != nil {
		_ = st.conn.Close()
	}
}

// cancelTimeout bounds the pg_cancel_backend that stops a stream.
const cancelTimeout = 5 * time.Second

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
