package session

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// InsertQuery is an INSERT of objects, routed per object as
// [Session.Insert] routes them, with Bun's InsertQuery builder calls:
// On("CONFLICT ...") upserts, Ignore, Returning, Column, Value. Like the
// session's other builders it records the calls and replays them on a
// fresh Bun query per shard. Start one with [Session.NewInsert] (it
// autocommits per shard) or [UnitOfWork.NewInsert] (it runs in the unit's
// transactions). Not safe for concurrent use while being built.
type InsertQuery struct {
	s     *Session
	model any
	ops   []func(*bun.InsertQuery) *bun.InsertQuery
	opts  []StatementOption
	subs  []subquery

	columns  []string // Column, for the shard-key check
	excluded []string // ExcludeColumn, likewise
	values   []string // Value, likewise
	on       bool     // On or Ignore was called
	skips    bool     // the conflict clause may skip rows (DO NOTHING, Ignore, a WHERE)
	conflict []string // the On texts, for the unit's identity map (unitinsert.go)
	returns  []string // the Returning texts, likewise
	applied  bool     // an Apply function is among ops: vet probes what it writes, and a unit does not track its objects
	err      error
}

// NewInsert starts an INSERT of objects (see [InsertQuery]). Its Exec
// autocommits on each shard it writes on, as [Session.Insert] does.
func (s *Session) NewInsert() *InsertQuery { return &InsertQuery{s: s} }

// NewInsert starts an INSERT of objects that runs inside the unit's
// transactions: a rollback undoes it. Once it succeeded, the objects it
// wrote join the unit's identity map on their shards, as objects Add
// and a flush inserted do: a later Get of one returns that object, and a
// flush writes the changes made to it since. The unit tracks only what it
// can be sure of (see [InsertQuery.Exec] for the rules): an object whose
// row a conflict clause skipped is not tracked (the row is not its), nor an
// object whose row may hold another primary key than the object. An INSERT
// with any builder call but Model and Options (On, Returning, Column,
// Value, ...) may leave the row different from the object, so its objects
// are tracked expired: the next Get reloads the row into the same object,
// one SELECT on its shard. Relations are not written by the INSERT: the
// unit records the object as holding none, so the next flush writes the
// children and links it holds, as it would for an added object. Objects of
// a reference table are not tracked (a unit tracks none).
func (u *UnitOfWork) NewInsert() *InsertQuery { return u.view.NewInsert() }

func (q *InsertQuery) op(fn func(*bun.InsertQuery) *bun.InsertQuery) *InsertQuery {
	q.ops = append(q.ops, fn)
	return q
}

// Model names the objects to insert: a pointer to a model struct, or to a
// slice of them (*[]T or *[]*T). Values the database returns land in them.
func (q *InsertQuery) Model(model any) *InsertQuery { q.model = model; return q }

// Column limits the INSERT to the named columns, as bun.InsertQuery.Column
// does. Leaving out the column the ShardChooser places objects by is an
// error at Exec: the row would hold another key than the one it was
// placed by.
func (q *InsertQuery) Column(columns ...string) *InsertQuery {
	q.columns = append(q.columns, columns...)
	return q.op(func(b *bun.InsertQuery) *bun.InsertQuery { return b.Column(columns...) })
}

// ExcludeColumn leaves columns out of the INSERT, as
// bun.InsertQuery.ExcludeColumn does; the shard-key column cannot be left
// out (see Column).
func (q *InsertQuery) ExcludeColumn(columns ...string) *InsertQuery {
	q.excluded = append(q.excluded, columns...)
	return q.op(func(b *bun.InsertQuery) *bun.InsertQuery { return b.ExcludeColumn(columns...) })
}

// Value overrides the value of column with a SQL expression, as
// bun.InsertQuery.Value does. Overriding the column the ShardChooser
// places objects by is an error at Exec, as for Column: the row would hold
// another key than the one it was placed by.
func (q *InsertQuery) Value(column string, expr string, args ...any) *InsertQuery {
	q.values = append(q.values, column)
	q.subs = subqueriesIn(q.subs, "Value", args)
	return q.op(func(b *bun.InsertQuery) *bun.InsertQuery { return b.Value(column, expr, args...) })
}

// On adds an ON clause, as bun.InsertQuery.On does: On("CONFLICT (id) DO
// UPDATE") upserts (with Set, or Bun's SET col = EXCLUDED.col for every
// column), On("CONFLICT DO NOTHING") skips rows that conflict. The
// conflict is decided on the shard each object goes to, which holds the
// rows of its shard key: a unique key that does not include the shard key
// is unique per shard only. An upsert whose SET writes the shard-key column
// with anything but EXCLUDED.<column> fails at Exec (see
// [InsertQuery.Exec]).
func (q *InsertQuery) On(s string, args ...any) *InsertQuery {
	q.on = true
	q.conflict = append(q.conflict, s)
	up := strings.ToUpper(s)
	if strings.Contains(up, "DO NOTHING") || strings.Contains(up, "WHERE") {
		q.skips = true
	}
	q.subs = subqueriesIn(q.subs, "On", args)
	return q.op(func(b *bun.InsertQuery) *bun.InsertQuery { return b.On(s, args...) })
}

// Ignore skips rows that conflict (ON CONFLICT DO NOTHING), as
// bun.InsertQuery.Ignore does on PostgreSQL.
func (q *InsertQuery) Ignore() *InsertQuery {
	q.on, q.skips = true, true
	q.conflict = append(q.conflict, "CONFLICT DO NOTHING")
	return q.op(func(b *bun.InsertQuery) *bun.InsertQuery { return b.Ignore() })
}

// Set adds an assignment to the upsert's DO UPDATE branch, as
// bun.InsertQuery.Set does.
func (q *InsertQuery) Set(query string, args ...any) *InsertQuery {
	q.subs = subqueriesIn(q.subs, "Set", args)
	return q.op(func(b *bun.InsertQuery) *bun.InsertQuery { return b.Set(query, args...) })
}

// Where adds a condition to the upsert's DO UPDATE branch, as
// bun.InsertQuery.Where does: a conflicting row that fails it is skipped.
func (q *InsertQuery) Where(query string, args ...any) *InsertQuery {
	q.skips = true
	q.subs = subqueriesIn(q.subs, "Where", args)
	return q.op(func(b *bun.InsertQuery) *bun.InsertQuery { return b.Where(query, args...) })
}

// Returning sets the RETURNING clause, as bun.InsertQuery.Returning does:
// the returned columns are scanned into the objects. Returning("NULL")
// suppresses Bun's own RETURNING of generated columns.
func (q *InsertQuery) Returning(query string, args ...any) *InsertQuery {
	q.returns = append(q.returns, query)
	q.subs = subqueriesIn(q.subs, "Returning", args)
	return q.op(func(b *bun.InsertQuery) *bun.InsertQuery { return b.Returning(query, args...) })
}

// Apply calls fn on every per-shard Bun query.
// Inside a unit of work the objects of an INSERT with Apply are not
// tracked: the unit cannot tell what fn changed.
func (q *InsertQuery) Apply(fn func(*bun.InsertQuery) *bun.InsertQuery) *InsertQuery {
	q.applied = true
	return q.op(fn)
}

// Options adds statement options: SetShardID, PinWins, ...
func (q *InsertQuery) Options(opts ...StatementOption) *InsertQuery {
	q.opts = append(q.opts, opts...)
	return q
}

// Exec inserts the objects and records on each one's [Token] the shard it
// went to, routed as [Session.Insert] routes (a pin, the Token, the
// ShardChooser; pin conflicts are refused the same way): a slice is split
// by shard, one INSERT per shard, the shards in parallel. It reports the
// rows inserted (or, for an upsert, inserted or updated), summed and per
// shard. An object whose row was skipped by a conflict clause still gets
// the Token of the shard that holds the conflicting row.
//
// What would be silently wrong is refused before anything is sent, with
// [ErrInvalidArgument] naming the model and the column or clause:
//   - a Column list without, or an ExcludeColumn or a Value with, the
//     column the ShardChooser places by (when the chooser names it: a
//     chooser with a KeyColumn(table) or Column() method);
//   - an upsert whose SET writes that column with anything but
//     EXCLUDED.<column> alone (not an expression of it), the value the row
//     was placed by, or names it in a row assignment ((a, col) = (...)):
//     the row would keep living on a shard its new key does not route to. (A WHERE in
//     the ON text that compares the column is refused too; put it in
//     Where.) With a chooser that names no column this is not checked:
//     leave the shard key out of Set;
//   - a conflict clause that may skip rows (DO NOTHING, Ignore, a Where)
//     in an INSERT of several objects that returns values
//     (an explicit Returning, or Bun's own RETURNING of generated columns
//     such as a zero primary key): skipped rows return nothing and Bun
//     fills the objects in order, so values would land in the wrong
//     objects. Insert such objects one per statement, or add
//     Returning("NULL").
//
// When a shard fails, the others' inserts stand (outside a unit); the
// error joins a *ShardError per failing shard and says which committed.
//
// Inside a unit of work ([UnitOfWork.NewInsert]) the objects join the
// unit's identity map once the statement succeeded, shard by shard, when
// the unit can be sure which row each one is:
//   - a shard's objects are tracked only if its rows affected equal its
//     objects: a conflict clause that skipped some (DO NOTHING, Ignore, a
//     Where) leaves the objects of that shard untracked, since which ones
//     were skipped is not known (for one object: it was skipped), and the
//     skipped row is another object's;
//   - an upsert that may update an existing row (On without DO NOTHING)
//     is tracked only if its conflict target is the primary key
//     (On("CONFLICT (id) DO UPDATE")) or its Returning names every
//     primary-key column (or *): otherwise the updated row may have
//     another key than the object;
//   - a Column list without, or an ExcludeColumn or Value with, a primary
//     key column is tracked only if Returning names every primary-key
//     column (or *), and an INSERT with Apply is not tracked;
//   - an object with a zero primary-key field is not tracked (no key came
//     back: Returning("NULL"), say);
//   - an object the unit tracks already stays tracked as it was, expired
//     (the statement may have written its row); an object whose key the
//     unit tracks under another pointer is left untracked, and the tracked
//     one is expired, so that the next load shows the row as written.
//
// A plain INSERT (Model and Options only) tracks its objects as a flush
// does: a Get returns one with no statement. Any other builder call may
// leave the row different from the object (a default the RETURNING did
// not bring back, an upsert's SET), so its objects are tracked expired.
func (q *InsertQuery) Exec(ctx context.Context) (Result, error) {
	if q.err != nil {
		return Result{}, q.err
	}
	u, err := q.s.holdExec()
	if err != nil {
		return Result{}, err
	}
	defer u.leave()
	mi, kind, err := q.s.dest(q.model)
	if err != nil {
		return Result{}, fmt.Errorf("session: insert: %w", err)
	}
	if kind == destTable {
		return Result{}, fmt.Errorf("%w: insert %s: Model takes the objects to insert (&obj or &objs), not (*%s)(nil)",
			ErrInvalidArgument, mi.table.TypeName, mi.table.TypeName)
	}
	if err := q.vet(mi, kind); err != nil {
		return Result{}, err
	}
	if err := q.s.vetObjectSubqueries(ctx, q.subs, q.opts, "insert "+mi.table.TypeName,
		"an INSERT does not render subqueries per shard: use a Bun query on the shard's handle, with the insert pinned there"); err != nil {
		return Result{}, err
	}
	var mu sync.Mutex
	res := Result{ByShard: map[ShardID]int64{}}
	var wrote map[ShardID][]reflect.Value // in a unit: each shard's objects, to track (unitinsert.go)
	track := u != nil && !q.s.reference(mi)
	if track {
		wrote = map[ShardID][]reflect.Value{}
	}
	err = q.s.write(ctx, "insert", q.model, q.opts, func(ctx context.Context, db bun.IDB, m any, _ *modelInfo, objs []reflect.Value) ([]int, error) {
		id, _ := contextPin(ctx) // Session.run pins each shard's ctx to its shard
		b := db.NewInsert().Model(m)
		for _, fn := range q.ops {
			b = fn(b)
		}
		n, err := affected(b.Exec(ctx))
		if err == nil {
			mu.Lock()
			res.ByShard[id] = n
			res.RowsAffected += n
			if track {
				wrote[id] = objs
			}
			mu.Unlock()
		}
		return nil, err
	})
	if err == nil && track {
		u.trackInserted(q, mi, wrote, res.ByShard)
	}
	return res, err
}

// vet refuses, before anything is sent, the inserts Exec's doc lists.
func (q *InsertQuery) vet(mi *modelInfo, kind destKind) error {
	t := mi.table
	key := q.s.keyColumn(t)
	if key != "" {
		if len(q.columns) > 0 && !slices.Contains(q.columns, key) {
			return fmt.Errorf("%w: insert %s: Column(%s) leaves out %s, the column the ShardChooser places %s by: "+
				"the row would hold another key than the one it was placed by; add it to Column",
				ErrInvalidArgument, t.TypeName, strings.Join(q.columns, ", "), key, t.TypeName)
		}
		if slices.Contains(q.values, key) {
			return fmt.Errorf("%w: insert %s: Value(%q, ...) overrides %s, the column the ShardChooser places %s by: "+
				"the row would hold another key than the one it was placed by; set the field on the object instead",
				ErrInvalidArgument, t.TypeName, key, key, t.TypeName)
		}
		if slices.Contains(q.excluded, key) {
			return fmt.Errorf("%w: insert %s: ExcludeColumn(%s) leaves out %s, the column the ShardChooser places %s by: "+
				"the row would hold another key than the one it was placed by",
				ErrInvalidArgument, t.TypeName, strings.Join(q.excluded, ", "), key, t.TypeName)
		}
	}
	if key != "" && q.applied {
		b := q.s.shards[q.s.order[0]].NewInsert().Model(q.model)
		for _, fn := range q.ops {
			if b = fn(b); b == nil {
				return fmt.Errorf("%w: insert %s: an Apply function returned a nil *bun.InsertQuery", ErrInvalidArgument, t.TypeName)
			}
		}
		p, ok := probe(b)
		switch {
		case !ok:
			return fmt.Errorf("%w: insert %s: Apply cannot be checked for what it does to %s, the column the ShardChooser "+
				"places %s by, with this Bun version; use the session's InsertQuery methods", ErrUnsupported, t.TypeName, key, t.TypeName)
		case slices.Contains(p.values, key):
			return fmt.Errorf("%w: insert %s: an Apply function's Value(%q, ...) overrides %s, the column the ShardChooser "+
				"places %s by: the row would hold another key than the one it was placed by; set the field on the object instead",
				ErrInvalidArgument, t.TypeName, key, key, t.TypeName)
		case len(p.columns) > 0 && !slices.Contains(p.columns, key):
			return fmt.Errorf("%w: insert %s: an Apply function's Column or ExcludeColumn leaves out %s, the column the "+
				"ShardChooser places %s by: the row would hold another key than the one it was placed by",
				ErrInvalidArgument, t.TypeName, key, t.TypeName)
		}
	}
	if !q.on {
		return nil
	}
	v := reflect.ValueOf(q.model).Elem()
	objs, _ := objectsOf(v, kind)
	if len(objs) == 0 {
		return nil
	}
	if key != "" {
		sql, err := q.render(objs[0].Addr().Interface())
		if err != nil {
			return fmt.Errorf("session: insert %s: %w", t.TypeName, err)
		}
		if setsColumn(conflictTail(sql), key) {
			return fmt.Errorf("%w: insert %s: the upsert's ON CONFLICT ... SET writes %s, the column the ShardChooser "+
				"places %s by, with something other than EXCLUDED.%s: the row would stay on a shard its new key does "+
				"not route to; leave %s out of Set (to move a row, delete it and insert it on its new shard)",
				ErrInvalidArgument, t.TypeName, key, t.TypeName, key, key)
		}
	}
	if len(objs) > 1 {
		sql, err := q.render(q.model)
		if err != nil {
			return fmt.Errorf("session: insert %s: %w", t.TypeName, err)
		}
		// The rendered clause, not only the On text: DO and NOTHING may
		// be apart by any whitespace, or come from a placeholder.
		tail := " " + strings.Join(strings.Fields(strings.ToUpper(conflictTail(sql))), " ") + " "
		skips := q.skips || strings.Contains(tail, " DO NOTHING ") || strings.Contains(tail, " WHERE ")
		if skips && strings.Contains(tail, " RETURNING ") {
			return fmt.Errorf("%w: insert %s: %d objects with a conflict clause that may skip rows (DO NOTHING, Ignore, "+
				"Where) and a RETURNING clause: a skipped row returns nothing and Bun fills the objects in order, so "+
				"returned values would land in the wrong objects; insert them one per statement, or add Returning(\"NULL\")",
				ErrInvalidArgument, t.TypeName, len(objs))
		}
	}
	return nil
}

// render returns the SQL of the INSERT of model, built on the first
// shard's handle; it sends nothing.
func (q *InsertQuery) render(model any) (string, error) {
	b := q.s.shards[q.s.order[0]].NewInsert().Model(model)
	for _, fn := range q.ops {
		b = fn(b)
	}
	out, err := b.AppendQuery(b.DB().QueryGen(), nil)
	return string(out), err
}

// conflictTail returns the part of an INSERT's SQL from its last ON
// CONFLICT on: the conflict clause, its SET and WHERE, and RETURNING (the
// values, which could hold any text, come before it).
func conflictTail(sql string) string {
	if i := strings.LastIndex(strings.ToUpper(sql), " ON CONFLICT"); i >= 0 {
		return sql[i:]
	}
	return ""
}

// setsColumn reports whether the SQL text assigns col (col = ..., bare or
// double-quoted, any case) with anything but EXCLUDED.col alone (an
// expression of it, EXCLUDED.col || 'x', counts), or names col in a
// row assignment ((a, col) = (...), whatever the values). It errs on the
// side of yes: a comparison col = x anywhere in text counts.
func setsColumn(text, col string) bool {
	name := `(?:"` + regexp.QuoteMeta(col) + `"|` + regexp.QuoteMeta(col) + `)`
	re := regexp.MustCompile(`(?i)(?:^|[^\w."])` + name + `\s*=([^=]|$)`)
	// EXCLUDED.col and nothing more: then the next assignment, the
	// update's WHERE, RETURNING, or the end.
	ex := regexp.MustCompile(`(?i)^\s*excluded\s*\.\s*` + name + `\s*(?:,|$|(?:where|returning)(?:[^\w"]|$))`)
	for _, m := range re.FindAllStringSubmatchIndex(text, -1) {
		rhs := text[m[2]:] // from the character after '='
		if !ex.MatchString(rhs) {
			return true
		}
	}
	row := regexp.MustCompile(`\(([^()]*)\)\s*=([^=]|$)`)
	in := regexp.MustCompile(`(?i)(?:^|[^\w."])` + name + `(?:[^\w"]|$)`)
	for _, m := range row.FindAllStringSubmatch(text, -1) {
		if in.MatchString(m[1]) {
			return true
		}
	}
	return false
}

// keyColumn returns the column the session's ShardChooser places objects
// of t by, when it says (see chooserKeyColumn), and "" otherwise.
func (s *Session) keyColumn(t *schema.Table) string { return chooserKeyColumn(s.shardChooser, t) }

// chooserKeyColumn returns the column chooser c routes t by when it says so
// (a chooser.Scheme's KeyColumn, or a one-column chooser's Column if t has
// that column), and "" otherwise.
func chooserKeyColumn(c any, t *schema.Table) string {
	switch c := c.(type) {
	case interface {
		KeyColumn(*schema.Table) (string, bool)
	}:
		if col, ok := c.KeyColumn(t); ok {
			return col
		}
	case interface{ Column() string }:
		if col := c.Column(); t.FieldMap[col] != nil {
			return col
		}
	}
	return ""
}
