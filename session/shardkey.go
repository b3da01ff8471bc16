package session

import (
	"context"
	"fmt"
	"reflect"
	"regexp"
	"slices"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
)

// keyMoved fails an UPDATE of obj on shard have, its Token's shard (or an
// INSERT placed there by the Token), with
// ErrShardKeyChanged when obj's declared shard-key column now routes
// elsewhere: the ShardChooser's key column (chooser.Scheme's KeyColumn, a
// one-column chooser's Column) places it on another shard, or the
// ExecuteChooser's key column routes a read of its value to shards that
// do not include have. Key-routed reads of the new value would miss the
// row. written are the columns the UPDATE writes (nil: every column); an
// UPDATE that leaves the key column out changes nothing there.
//
// A chooser that cannot answer (an error, a NULL key, an empty or unknown
// shard, every shard) proves nothing, and the Token wins, as it does for
// a chooser that declares no column.
func (s *Session) keyMoved(ctx context.Context, what string, mi *modelInfo, obj reflect.Value, have ShardID, written []string) error {
	t := mi.table
	writes := func(col string) bool { return written == nil || slices.Contains(written, col) }
	if col := s.keyColumn(t); col != "" && writes(col) {
		if v, ok := keyValue(t, col, obj); ok {
			id, err := s.shardChooser.ChooseShard(ctx, t, obj.Addr().Interface())
			if _, known := s.shards[id]; err == nil && known && id != have {
				return s.keyChanged(what, t, col, v, have, []ShardID{id}, "the ShardChooser")
			}
		}
	}
	if col := s.execKeyColumn(t); col != "" && writes(col) {
		if v, ok := keyValue(t, col, obj); ok {
			crit, err := typedCriteria(chooser.OpSelect, t, []chooser.Criterion{{Column: col, Values: []any{v}}})
			if err != nil {
				return nil
			}
			tg, err := s.executeChooser.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: t, Criteria: crit})
			if err != nil || tg.IsAll() || tg.IsNone() {
				return nil
			}
			ids := tg.List()
			for _, id := range ids {
				if _, ok := s.shards[id]; !ok {
					return nil
				}
			}
			if !slices.Contains(ids, have) {
				return s.keyChanged(what, t, col, v, have, ids, "the ExecuteChooser")
			}
		}
	}
	return nil
}

// keyChanged is the ErrShardKeyChanged of keyMoved.
func (s *Session) keyChanged(what string, t *schema.Table, col string, v any, have ShardID, to []ShardID, by string) error {
	if str, ok := chooserOf(by, s).(fmt.Stringer); ok {
		by += " " + str.String()
	}
	return fmt.Errorf("%w: %s: column %s, the shard key of %s, is now %v, which %s routes to %v, but the object's Token "+
		"names shard %s: written there, reads by its key would miss the row; to move a row, delete it and insert it with "+
		"the new key in one unit of work (UnitOfWork.Delete, then Add of a copy whose Token is cleared with SetShard(\"\"): "+
		"a struct copy carries the Token)",
		ErrShardKeyChanged, what, col, t.TypeName, describeValue(v), by, to, have)
}

func chooserOf(by string, s *Session) any {
	if by == "the ShardChooser" {
		return s.shardChooser
	}
	return s.executeChooser
}

// keyValue returns obj's value of column col, and false when it is NULL
// (a nil pointer) or t has no such column.
func keyValue(t *schema.Table, col string, obj reflect.Value) (any, bool) {
	f := t.FieldMap[col]
	if f == nil {
		return nil, false
	}
	fv := f.Value(obj)
	for fv.Kind() == reflect.Pointer || fv.Kind() == reflect.Interface {
		if fv.IsNil() {
			return nil, false
		}
		fv = fv.Elem()
	}
	return fv.Interface(), true
}

// setKey returns the declared shard-key column (the ShardChooser's or the
// ExecuteChooser's) that an UPDATE's Set text assigns, or "". The text is
// the Set query before its arguments; a name inside a string literal
// counts too (it errs on the side of yes).
func (s *Session) setKey(t *schema.Table, query string) string {
	for _, col := range []string{s.keyColumn(t), s.execKeyColumn(t)} {
		if col != "" && assigns(query, col) {
			return col
		}
	}
	return ""
}

// assigns reports whether SQL text assigns col: col = ..., bare, qualified
// or double-quoted, any case, or col inside a row assignment's column list
// ((a, col) = ...).
func assigns(text, col string) bool {
	name := `(?:"` + regexp.QuoteMeta(col) + `"|` + regexp.QuoteMeta(col) + `)`
	if regexp.MustCompile(`(?i)(?:^|[^\w"])` + name + `\s*=([^=]|$)`).MatchString(text) {
		return true
	}
	row := regexp.MustCompile(`\(([^()]*)\)\s*=([^=]|$)`)
	in := regexp.MustCompile(`(?i)(?:^|[^\w"])` + name + `(?:[^\w"]|$)`)
	for _, m := range row.FindAllStringSubmatch(text, -1) {
		if in.MatchString(m[1]) {
			return true
		}
	}
	return false
}

// probed is what a Bun INSERT or UPDATE built on a probe query (never
// sent) writes: its Set texts, the columns its Value calls override, and
// its Column list (after ExcludeColumn). Bun keeps these in unexported
// fields; ok is false for a Bun whose fields are not where this reads
// them, which callers turn into an error, never a guess.
type probed struct {
	sets, values, columns []string
}

func probe(b any) (p probed, ok bool) {
	v := reflect.ValueOf(b).Elem()
	sets, ok1 := field(v, "set")
	values, ok2 := field(v, "modelValues")
	extra, ok3 := field(v, "extraValues")
	named, ok4 := field(v, "columns")
	if !ok1 || !ok2 || !ok3 || !ok4 {
		return p, false
	}
	for i := range sets.Len() {
		p.sets = append(p.sets, sets.Index(i).FieldByName("Query").String())
	}
	for _, k := range values.MapKeys() {
		p.values = append(p.values, k.String())
	}
	for i := range extra.Len() {
		p.values = append(p.values, extra.Index(i).FieldByName("column").String())
	}
	for i := range named.Len() {
		p.columns = append(p.columns, named.Index(i).FieldByName("Query").String())
	}
	return p, true
}

// hasApply reports whether an Apply function is among a statement's
// recorded clauses.
func hasApply(clauses []clause) bool {
	return slices.ContainsFunc(clauses, func(c clause) bool { return c.kind == "Apply" })
}

// appliedKey runs the Apply functions of an UPDATE on a probe query that
// is never sent, and reads what they make it write: the declared
// shard-key column they assign with Set, SetColumn or Value (set), and
// the one they name in a Column list (listed).
func (q *UpdateQuery) appliedKey() (set, listed string, err error) {
	t := q.mi.table
	cols := slices.DeleteFunc([]string{q.s.keyColumn(t), q.s.execKeyColumn(t)}, func(c string) bool { return c == "" })
	if len(cols) == 0 || !hasApply(q.clauses) {
		return "", "", nil
	}
	model := reflect.Zero(reflect.PointerTo(q.mi.typ)).Interface()
	if q.objs != nil {
		model = q.objs.model
	}
	b := q.s.shards[q.s.order[0]].NewUpdate().Model(model)
	for _, fn := range q.ops {
		if b = fn(b); b == nil {
			return "", "", fmt.Errorf("%w: update %s: an Apply function returned a nil *bun.UpdateQuery", ErrInvalidArgument, t.TypeName)
		}
	}
	p, ok := probe(b)
	if !ok {
		return "", "", fmt.Errorf("%w: update %s: Apply cannot be checked for an assignment of the shard key %v with "+
			"this Bun version; use Set on the session's UpdateQuery", ErrUnsupported, t.TypeName, cols)
	}
	for _, col := range cols {
		if slices.ContainsFunc(p.sets, func(s string) bool { return assigns(s, col) }) || slices.Contains(p.values, col) {
			return col, "", nil
		}
		if slices.Contains(p.columns, col) {
			listed = col
		}
	}
	return "", listed, nil
}
