package session

import (
	"database/sql/driver"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"unsafe"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
)

// A plain Bun Where on the model's shard-key column routes the statement
// as WhereShardKey does, in exactly two forms, as a top-level condition
// ANDed with the others:
//
//	Where("col = ?", v)
//	Where("col IN (?)", bun.List(vs))   // or the deprecated bun.In(vs)
//
// where col may be written "col", alias.col, "alias"."col" or
// ?TableAlias.col (alias being the model's), and v is a plain integer,
// float or string value (a named type of one counts, one with its own
// Value or AppendQuery method does not). Every other form is left to the
// SQL and fans out as before: an OR anywhere at the top level (WhereOr, a
// WhereGroup joined by OR), a condition inside WhereGroup, a function of
// the column, another table's column, a subquery or another SQL value, or
// a statement with an Apply (or a joined relation's apply, which Bun adds
// to the main WHERE) whose conditions the session cannot see.

// whereKey is a top-level Where whose text is one of the two forms; plan
// decides whether it routes (keyWheres).
type whereKey struct {
	op     int // its index in the statement's ops
	column string
	in     bool // col IN (?), else col = ?
	bare   bool // the column is not qualified
	arg    any
}

// whereForm matches the two forms: an optional qualifier, the column, and
// = ? or IN (?). Submatches: 1 the qualifier, 2 the column, 3 "=" or 4 "in".
var whereForm = regexp.MustCompile(`^\s*(?:(\?TableAlias|"[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)\s*\.\s*)?` +
	`("[^"]+"|[A-Za-z_][A-Za-z0-9_$]*)\s*(?:(=)\s*\?|((?i:in))\s*\(\s*\?\s*\))\s*$`)

// parseWhereKey recognizes query, a Where's text, as col = ? or col IN (?)
// on a column of table (qualified by table's alias, if at all); ok false
// for anything else.
func parseWhereKey(table *schema.Table, query string, args []any) (whereKey, bool) {
	if len(args) != 1 || table == nil {
		return whereKey{}, false
	}
	m := whereForm.FindStringSubmatch(query)
	if m == nil {
		return whereKey{}, false
	}
	in := m[4] != ""
	if q := m[1]; q != "" && q != "?TableAlias" && ident(q) != table.Alias {
		return whereKey{}, false
	}
	col := ident(m[2])
	if table.FieldMap[col] == nil {
		return whereKey{}, false
	}
	return whereKey{column: col, in: in, bare: m[1] == "", arg: args[0]}, true
}

// ident returns an SQL identifier as PostgreSQL reads it: a quoted one as
// it is, an unquoted one folded to lower case.
func ident(s string) string {
	if len(s) >= 2 && s[0] == '"' {
		return s[1 : len(s)-1]
	}
	return strings.ToLower(s)
}

// values returns the key values of a recognized Where, and false when its
// argument is not a plain value (for =) or a bun.List or bun.In of plain
// values (for IN), or the list is empty.
func (w whereKey) values() ([]any, bool) {
	if !w.in {
		if !plainValue(reflect.ValueOf(w.arg)) {
			return nil, false
		}
		return []any{w.arg}, true
	}
	list, ok := listOf(w.arg)
	if !ok || list.Len() == 0 {
		return nil, false
	}
	out := make([]any, list.Len())
	for i := range out {
		e := list.Index(i)
		if e.Kind() == reflect.Interface {
			e = e.Elem()
		}
		if !plainValue(e) {
			return nil, false
		}
		v, ok := copyPlain(e)
		if !ok {
			return nil, false
		}
		out[i] = v
	}
	return out, true
}

var (
	valuerType   = reflect.TypeFor[driver.Valuer]()
	appenderType = reflect.TypeFor[schema.QueryAppender]()
	listType     = reflect.TypeFor[bun.ListValues]()
)

// plainValue reports whether v is a value Bun writes as the literal of its
// kind: an integer, float or string (named types too), with no Value or
// AppendQuery method of its own that could write something else.
func plainValue(v reflect.Value) bool {
	if !v.IsValid() {
		return false
	}
	t := v.Type()
	if t.Implements(valuerType) || t.Implements(appenderType) ||
		reflect.PointerTo(t).Implements(valuerType) || reflect.PointerTo(t).Implements(appenderType) {
		return false
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64, reflect.String:
		return true
	}
	return false
}

// copyPlain returns v's value as an any of v's type. v may come from an
// unexported field (bun.ListValues keeps its slice in one), where
// Interface is not allowed, so the value is copied through its kind.
func copyPlain(v reflect.Value) (any, bool) {
	c := reflect.New(v.Type()).Elem()
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		c.SetInt(v.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		c.SetUint(v.Uint())
	case reflect.Float32, reflect.Float64:
		c.SetFloat(v.Float())
	case reflect.String:
		c.SetString(v.String())
	default:
		return nil, false
	}
	return c.Interface(), true
}

// listOf returns the slice inside a bun.List(vs), or inside the deprecated
// bun.In(vs) (schema's *inValues, whose slice is a reflect.Value read
// through unsafe: its layout is checked, and anything else is not a list).
// TestWhereRoutesLikeShardKey fails if a Bun release changes either.
func listOf(arg any) (reflect.Value, bool) {
	v := reflect.ValueOf(arg)
	switch {
	case !v.IsValid():
	case v.Type() == listType:
		if f := v.FieldByName("slice"); f.IsValid() && f.Kind() == reflect.Interface && f.Elem().Kind() == reflect.Slice {
			return f.Elem(), true
		}
	case v.Kind() == reflect.Pointer && !v.IsNil() && v.Type().Elem().PkgPath() == "github.com/uptrace/bun/schema" &&
		v.Type().Elem().Name() == "inValues":
		s := v.Elem()
		f, e := s.FieldByName("slice"), s.FieldByName("err")
		if !f.IsValid() || f.Type() != reflect.TypeFor[reflect.Value]() || !e.IsValid() || !e.IsNil() {
			return reflect.Value{}, false
		}
		sv := *(*reflect.Value)(unsafe.Pointer(f.UnsafeAddr()))
		if sv.Kind() == reflect.Slice {
			return sv, true
		}
	}
	return reflect.Value{}, false
}

// whereScope is what a statement records about its top-level WHERE, so
// plan can tell whether its recognized Wheres are ANDed with the rest.
type whereScope struct {
	keys   []whereKey
	opaque bool // an OR at the top level, an Apply, or a joined relation's apply
	// joins: the select joins other tables (Join, a has-one or belongs-to
	// Relation), so an unqualified column may be ambiguous there.
	joins bool
}

// note records the Where at op index op.
func (w *whereScope) note(table *schema.Table, op int, query string, args []any) {
	if k, ok := parseWhereKey(table, query, args); ok {
		k.op = op
		w.keys = append(w.keys, k)
	}
}

// whereCriteria returns declared with the statement's recognized Wheres on
// the model's shard-key column added as criteria, and the ops they
// replace. A Where whose values do not convert to the column's type
// without loss (or hold a NUL byte) stays in the SQL, as before.
func (s *Session) whereCriteria(mi *modelInfo, w *whereScope, declared []chooser.Criterion) ([]chooser.Criterion, map[int]bool) {
	if mi == nil || w.opaque || len(w.keys) == 0 {
		return declared, nil
	}
	column := s.execKeyColumn(mi.table)
	if column == "" {
		return declared, nil
	}
	crit, skip := w.criteria(mi.table, column)
	if len(crit) == 0 {
		return declared, nil
	}
	return append(slices.Clone(declared), crit...), skip
}

// criteria returns the recognized Wheres on column as criteria, with the
// ops they replace.
func (w *whereScope) criteria(table *schema.Table, column string) ([]chooser.Criterion, map[int]bool) {
	f := table.FieldMap[column]
	var crit []chooser.Criterion
	var skip map[int]bool
	for _, k := range w.keys {
		if k.column != column {
			continue
		}
		vals, ok := k.values()
		for _, v := range vals {
			if !ok {
				break
			}
			if str, isStr := v.(string); isStr && strings.IndexByte(str, 0) >= 0 {
				ok = false
			} else if _, err := typedKey("Where", table, f, v); err != nil {
				ok = false
			}
		}
		if !ok {
			continue
		}
		crit = append(crit, chooser.Criterion{Column: column, Values: vals})
		if k.bare && w.joins {
			// Kept as written, beside the criterion: PostgreSQL refuses
			// it if a joined table has the column too, as one database
			// would, instead of the session reading it as the model's.
			continue
		}
		if skip == nil {
			skip = map[int]bool{}
		}
		skip[k.op] = true
	}
	return crit, skip
}

// execKeyColumn returns the column the ExecuteChooser routes t by when it
// says so (see chooserKeyColumn), and "" otherwise.
func (s *Session) execKeyColumn(t *schema.Table) string { return chooserKeyColumn(s.executeChooser, t) }

// joinsApply reports whether a Relation path with apply funcs reaches a
// has-one or belongs-to relation, whose apply Bun runs on the main query
// (its conditions join the main WHERE).
func joinsApply(t *schema.Table, path string) bool {
	for _, name := range strings.Split(path, ".") {
		if t == nil {
			return true
		}
		rel, ok := t.Relations[name]
		if !ok {
			return true
		}
		if rel.Type == schema.HasOneRelation || rel.Type == schema.BelongsToRelation {
			return true
		}
		t = rel.JoinTable
	}
	return false
}
