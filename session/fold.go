package session

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/internal/fanout"
	"github.com/bunshard/bunshard/internal/planner"
)

// Folding: shards that share a server, a database and every connection
// setting that decides what a statement's text reads (search_path, user,
// and the settings that change how values are written) are sent one
// statement for all of them, a UNION ALL of each shard's own statement
// (rendered on that shard's *bun.DB, so its named arguments, such as a
// table prefix, apply), each branch tagged with its shard's index; the rows
// are split back by tag and merged as if each shard had answered alone.
// See docs/folding.md.

// WithFolding makes fan-out selects (into slices of the model, no Bun
// Relation), counts, GroupBy/Aggregate selects and LoadRelation's has-many,
// has-one and belongs-to loads (foldload.go) send one statement per group
// of shards that share a server and a database, instead of one per shard.
// The session learns the groups by asking each shard once (on the first
// fan-out that could fold; a shard that cannot be asked runs alone that
// time and is asked again later): shards fold together only when their
// connections report the same server (system identifier, address and
// port), database, search_path, user, TimeZone, DateStyle,
// IntervalStyle, extra_float_digits and bytea_output, so that each shard's
// statement text reads, on the group's connection, exactly the tables and
// values it would read on its own. Shards of the table-per-shard layout
// fold; schema-per-shard shards (each with its own search_path) do not,
// unless their models name the schema through a named argument.
//
// Folding assumes every connection of a shard's *bun.DB reaches the
// server its first one did (no load balancer between them), and leaves
// alone: shards with replicas, shards given as a transaction, a unit of
// work's statements, selects with Apply, Bun Relation or a
// BeforeSelect/AfterSelect model hook, m2m loads and loads of a model with
// such a hook, and Counts with Column,
// ColumnExpr or ExcludeColumn. Those run one statement per shard, as
// without the option. A folded statement runs on the group's first shard
// (in the route's order): Bun query hooks and an Observer see one statement
// there, and a failure fails every shard of the group (a *ShardError
// naming the first; under AllowPartial, one error per shard of the group).
//
// A unit of work's shards of one group share one transaction (each
// statement still its own shard's, rendered and hooked on its *bun.DB), so
// its Commit sends one COMMIT, or one PREPARE TRANSACTION and one COMMIT
// PREPARED, per group; a statement that fails on one of them breaks the
// group's transaction, so Commit refuses, naming that shard. A shard that
// cannot fold has its own transaction, as without the option. See
// docs/folding.md.
func WithFolding() Option {
	return func(c *config) { c.fold = true }
}

// foldCache holds what each shard's connection reported: the identity
// shards fold on. Shared by a session's views.
type foldCache struct {
	mu   sync.Mutex
	keys map[ShardID]string
}

// foldColumn names the branch tag of a folded statement. Bun skips unknown
// columns whose name starts with _, so a model never sees it.
const foldColumn = "_bunshard_shard"

// foldProbe is what a shard's connection reports about itself; two shards
// fold only if every column is equal.
const foldProbe = `SELECT concat_ws(':', (SELECT system_identifier FROM pg_control_system()), inet_server_addr(), inet_server_port()),
	current_database(), current_setting('search_path'), current_user, current_setting('TimeZone'), current_setting('DateStyle'),
	current_setting('IntervalStyle'), current_setting('extra_float_digits'), current_setting('bytea_output')`

// foldable reports whether shard id may join a folded statement at the
// session's place: a plain *bun.DB with no replicas, outside a unit.
func (s *Session) foldable(id ShardID) bool {
	if _, ok := s.shards[id].(*bun.DB); !ok {
		return false
	}
	return s.replicas == nil || s.replicas.byShard[id] == nil
}

// foldGroups returns the fan-out's tasks for ids: lists of indices into
// ids, a group of shards that fold together (in ids' order, the first
// leading) or one shard alone. It returns nil when nothing folds (the
// option is off, a unit of work, fewer than two shards, no two alike), and
// the caller runs one statement per shard as without folding.
func (s *Session) foldGroups(ctx context.Context, ids []ShardID) [][]int {
	fc := s.cfg.folds
	if fc == nil || len(ids) < 2 || s.at.unitOf() != nil {
		return nil
	}
	keys := make([]string, len(ids))
	var ask []int
	fc.mu.Lock()
	for i, id := range ids {
		if !s.foldable(id) {
			continue
		}
		if k, ok := fc.keys[id]; ok {
			keys[i] = k
		} else {
			ask = append(ask, i)
		}
	}
	fc.mu.Unlock()
	if len(ask) > 0 {
		got := make([]string, len(ask))
		_, _ = fanout.Run(ctx, len(ask), fanout.Policy{Limit: s.cfg.concurrency}, func(ctx context.Context, j int) error {
			var cols [9]string
			dest := make([]any, len(cols))
			for c := range cols {
				dest[c] = &cols[c]
			}
			if err := s.shards[ids[ask[j]]].QueryRowContext(ctx, foldProbe).Scan(dest...); err != nil {
				return err // the shard runs alone this time; asked again next time
			}
			got[j] = strings.Join(cols[:], "\x00")
			return nil
		})
		fc.mu.Lock()
		for j, i := range ask {
			if got[j] != "" {
				fc.keys[ids[i]] = got[j]
				keys[i] = got[j]
			}
		}
		fc.mu.Unlock()
	}
	return groupByKey(len(ids), func(i int) string { return keys[i] })
}

// groupByKey groups the indexes 0..n-1 by key(i), in order of first
// appearance; an empty key is a group of its own. It returns nil when no
// two indexes share a key (nothing folds).
func groupByKey(n int, key func(i int) string) [][]int {
	var groups [][]int
	at := map[string]int{} // key -> its group
	folded := false
	for i := range n {
		k := key(i)
		if k == "" {
			groups = append(groups, []int{i})
			continue
		}
		if g, ok := at[k]; ok {
			groups[g] = append(groups[g], i)
			folded = true
			continue
		}
		at[k] = len(groups)
		groups = append(groups, []int{i})
	}
	if !folded {
		return nil
	}
	return groups
}

// foldedFunc runs a folded statement for the shards ids[members...] on db,
// the first member's handle.
type foldedFunc func(ctx context.Context, db bun.IDB, members []int) error

// fanOutFolded runs a read over ids as fanOutPolicy does, except that the
// shards of each group of groups (see foldGroups) run as one statement,
// folded; a group of one runs one as fanOutPolicy would.
func (s *Session) fanOutFolded(ctx context.Context, ids []ShardID, op string, partial bool, groups [][]int,
	one shardFunc, folded foldedFunc,
) error {
	read := s.at.read(one)
	errs, first := fanout.Run(ctx, len(groups), fanout.Policy{Limit: s.cfg.concurrency, FailFast: !partial},
		func(ctx context.Context, g int) error {
			members := groups[g]
			lead := members[0]
			if len(members) == 1 {
				return s.run(ctx, lead, ids[lead], read)
			}
			return s.run(ctx, lead, ids[lead], func(ctx context.Context, _ int, _ ShardID, db bun.IDB) error {
				return folded(ctx, db, members)
			})
		})
	if first < 0 {
		return nil
	}
	opOf := func(g int) string {
		if len(groups[g]) == 1 {
			return op
		}
		names := make([]string, len(groups[g]))
		for j, i := range groups[g] {
			names[j] = string(ids[i])
		}
		return op + " (folded: one statement for shards " + strings.Join(names, ", ") + ")"
	}
	if !partial {
		return &ShardError{Shard: ids[groups[first][0]], Op: opOf(first), Err: errs[first]}
	}
	var failed []error
	var ok []ShardID
	bad := make([]bool, len(ids))
	for g, err := range errs {
		if err == nil {
			continue
		}
		for _, i := range groups[g] {
			bad[i] = true
			failed = append(failed, &ShardError{Shard: ids[i], Op: opOf(g), Err: err})
		}
	}
	for i, id := range ids {
		if !bad[i] {
			ok = append(ok, id)
		}
	}
	if len(ok) == 0 {
		return joinSorted(failed)
	}
	return &PartialError{Errors: failed, Shards: ok}
}

// foldBranches renders each member's statement on its own shard's handle
// into one UNION ALL.
func (s *Session) foldBranches(ids []ShardID, members []int, wrap string, build func(db bun.IDB, i int) *bun.SelectQuery) (string, error) {
	var out []byte
	for j, i := range members {
		if j > 0 {
			out = append(out, " UNION ALL "...)
		}
		out = append(out, "SELECT "...)
		out = strconv.AppendInt(out, int64(i), 10)
		out = append(out, ` AS "`+foldColumn+`", `...)
		out = append(out, wrap...)
		out = append(out, ` FROM (`...)
		q := build(s.shards[ids[i]], i)
		var err error
		if out, err = q.AppendQuery(q.DB().QueryGen(), out); err != nil {
			return "", fmt.Errorf("render the statement of shard %s: %w", ids[i], err)
		}
		out = append(out, `) AS "_b"`...)
	}
	return string(out), nil
}

// foldedRows runs the folded statement query on db and reads its rows: for
// each, the shard tag and the columns next returns pointers to (scanned in
// that order), then got with the index of the shard the tag names. It stops
// at the first failure: the query's, a scan's, or a tag that names no
// member.
func foldedRows(ctx context.Context, db bun.IDB, query string, members []int, next func() []any, got func(i int)) error {
	rows, err := db.QueryContext(ctx, query)
	if err != nil {
		return err
	}
	defer rows.Close()
	var tag int64
	dest := []any{&tag}
	for rows.Next() {
		dest = append(dest[:1], next()...)
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		i, err := member(tag, members)
		if err != nil {
			return err
		}
		got(i)
	}
	return rows.Err()
}

// member returns the index the tag of a folded row names, checked against
// the group.
func member(tag int64, members []int) (int, error) {
	for _, i := range members {
		if int64(i) == tag {
			return i, nil
		}
	}
	return 0, fmt.Errorf("a folded row carries shard tag %d, which names no shard of the statement", tag)
}

// selectFolds reports whether a select into a slice of the model may fold:
// every row is the model's own columns, scanned as Bun scans them, with no
// relation query after it and no hook that sees the query.
func (q *SelectQuery) selectFolds() bool {
	if q.applied || len(q.rels) > 0 || q.grouped {
		return false
	}
	ptr := reflect.PointerTo(q.mi.typ)
	return !ptr.Implements(reflect.TypeFor[bun.BeforeSelectHook]()) && !ptr.Implements(reflect.TypeFor[bun.AfterSelectHook]())
}

// modelColumn scans one column into the row model m, as Bun's own row scan
// does.
type modelColumn struct {
	m    bun.TableModel
	name string
}

func (c *modelColumn) Scan(src any) error { return c.m.ScanColumn(c.name, src) }

// scanPartsFolded is scanParts with the shards of groups folded.
func (q *SelectQuery) scanPartsFolded(ctx context.Context, p *plan, typ reflect.Type, groups [][]int) ([]reflect.Value, error) {
	parts := make([]reflect.Value, len(p.Shards))
	kind := destSlice
	ptrs := typ.Elem().Kind() == reflect.Pointer
	if ptrs {
		kind = destSlicePtr
	}
	n := len(p.Shards)
	one := func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		return q.scanPart(ctx, db, p, i, id, typ, kind, parts)
	}
	folded := func(ctx context.Context, db bun.IDB, members []int) error {
		query, err := q.s.foldBranches(p.Shards, members, `"_b".*`, func(db bun.IDB, i int) *bun.SelectQuery {
			return q.build(db, p, p.Shards[i], reflect.New(typ).Interface(), n, true)
		})
		if err != nil {
			return err
		}
		mine := make([]reflect.Value, len(members))
		for j := range members {
			mine[j] = reflect.New(typ).Elem()
		}
		row := reflect.New(q.mi.typ)
		m, ok := db.NewSelect().Model(row.Interface()).GetModel().(bun.TableModel)
		if !ok {
			return fmt.Errorf("%w: select %s: Bun gave no table model for a folded scan", ErrUnsupported, q.mi.table.TypeName)
		}
		rows, err := db.QueryContext(ctx, query)
		if err != nil {
			return err
		}
		defer rows.Close()
		cols, err := rows.Columns()
		if err != nil {
			return err
		}
		if len(cols) == 0 || cols[0] != foldColumn {
			return fmt.Errorf("%w: select %s: a folded statement's first column is %v, not its shard tag", ErrUnsupported, q.mi.table.TypeName, cols)
		}
		var tag int64
		dest := make([]any, len(cols))
		dest[0] = &tag
		for c := 1; c < len(cols); c++ {
			dest[c] = &modelColumn{m: m, name: cols[c]}
		}
		at := make(map[int]int, len(members)) // shard index -> its slot in mine
		for j, i := range members {
			at[i] = j
		}
		elem := row.Elem()
		for rows.Next() {
			elem.SetZero() // no pointer or slice of one row is shared with the next
			if err := m.BeforeScanRow(ctx); err != nil {
				return err
			}
			if err := rows.Scan(dest...); err != nil {
				return err
			}
			if err := m.AfterScanRow(ctx); err != nil {
				return err
			}
			i, err := member(tag, members)
			if err != nil {
				return err
			}
			slot := at[i]
			if ptrs {
				v := reflect.New(q.mi.typ)
				v.Elem().Set(elem)
				mine[slot] = reflect.Append(mine[slot], v)
			} else {
				mine[slot] = reflect.Append(mine[slot], elem)
			}
		}
		if err := rows.Err(); err != nil {
			return err
		}
		total := 0
		for j, i := range members {
			id := p.Shards[i]
			part := mine[j]
			pv := reflect.New(typ)
			pv.Elem().Set(part)
			q.s.stampAll(pv, kind, q.mi, q.rels, p.mark(id))
			parts[i] = pv.Elem()
			p.stats.add(id, int64(part.Len()))
			total += part.Len()
		}
		q.s.readRows(ctx, int64(total))
		return nil
	}
	err := q.s.fanOutFolded(ctx, p.Shards, "select", p.partial, groups, one, folded)
	return parts, err
}

// countFolds reports whether a count may fold: its statement selects the
// model's columns only, so counting its rows is what Bun's count(*) counts.
func (q *SelectQuery) countFolds() bool {
	return !q.applied && !q.projected && !q.grouped
}

// countsFolded fills counts for the shards of p, folding groups.
func (q *SelectQuery) countsFolded(ctx context.Context, p *plan, counts []int64, groups [][]int) error {
	n := len(p.Shards)
	one := func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		c, err := q.build(db, p, id, q.tableModel(), n, false).Count(ctx)
		counts[i] = int64(c)
		return err
	}
	folded := func(ctx context.Context, db bun.IDB, members []int) error {
		query, err := q.s.foldBranches(p.Shards, members, `count(*)`, func(db bun.IDB, i int) *bun.SelectQuery {
			return q.build(db, p, p.Shards[i], q.tableModel(), n, false)
		})
		if err != nil {
			return err
		}
		got := make(map[int]int64, len(members))
		var c int64
		err = foldedRows(ctx, db, query, members, func() []any { return []any{&c} }, func(i int) { got[i] = c })
		if err != nil {
			return err
		}
		for _, i := range members {
			c, ok := got[i]
			if !ok {
				return fmt.Errorf("a folded count returned no row for shard %s", p.Shards[i])
			}
			counts[i] = c
		}
		return nil
	}
	return q.s.fanOutFolded(ctx, p.Shards, "count", p.partial, groups, one, folded)
}

// aggregateFolds reports whether a GroupBy/Aggregate select may fold.
func (q *SelectQuery) aggregateFolds() bool { return !q.applied }

// aggregatePartsFolded fills parts with each shard's partial aggregates,
// folding groups.
func (q *SelectQuery) aggregatePartsFolded(ctx context.Context, p *plan, gp *planner.Grouped, parts [][][]any,
	groups [][]int, one shardFunc,
) error {
	width := len(gp.Partials)
	folded := func(ctx context.Context, db bun.IDB, members []int) error {
		query, err := q.s.foldBranches(p.Shards, members, `"_b".*`, func(db bun.IDB, i int) *bun.SelectQuery {
			return q.buildAggregate(db, p, p.Shards[i], gp)
		})
		if err != nil {
			return err
		}
		var row []any
		ptrs := make([]any, width)
		next := func() []any {
			row = make([]any, width)
			for j := range row {
				ptrs[j] = &row[j]
			}
			return ptrs
		}
		total := 0
		err = foldedRows(ctx, db, query, members, next, func(i int) {
			parts[i] = append(parts[i], row)
			total++
		})
		q.s.readRows(ctx, int64(total))
		return err
	}
	return q.s.fanOutFolded(ctx, p.Shards, "select", p.partial, groups, one, folded)
}
