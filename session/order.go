package session

import (
	"cmp"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"
	"unicode"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// orderKey is one recorded ORDER BY term. field is nil for an OrderExpr
// term (raw), which the session cannot compare in Go: such a statement still
// runs on one shard, but a merge across shards refuses it. An Order term
// names a column (field) of the model or, on a grouped select, an output
// column (name only), and never reaches SQL as text.
type orderKey struct {
	field      *schema.Field
	desc       bool
	nullsFirst bool
	byteOrder  bool    // COLLATE "C": text compares as bytes, in SQL and in Go
	typ        colType // how the merge compares the column (typeOf)
	name       string  // an Order term's column
	raw        bool    // an OrderExpr term: expr and args are SQL
	expr       string  // the caller's text, for errors and for OrderExpr terms
	args       []any
}

// parseOrder parses an Order term,
//
//	<column> [COLLATE "C" | COLLATE "POSIX"] [ASC | DESC] [NULLS FIRST | NULLS LAST]
//
// with keywords in any case and any white space between words, following
// PostgreSQL's defaults (ASC puts NULLs last, DESC first). A column of the
// model sets field; another name is kept for a grouped select's output
// columns (SelectQuery.plan refuses it elsewhere). Anything else is
// ErrInvalidArgument.
func parseOrder(t *schema.Table, spec string) (orderKey, error) {
	k := orderKey{expr: spec}
	bad := func(why string) (orderKey, error) {
		return orderKey{}, fmt.Errorf("%w: Order(%q) on %s: %s; an Order term is a column of the model, then optionally "+
			`COLLATE "C" (or "POSIX"), ASC or DESC, and NULLS FIRST or NULLS LAST; write other terms with OrderExpr and placeholders`,
			ErrInvalidArgument, spec, t.TypeName, why)
	}
	words := strings.Fields(spec)
	if len(words) == 0 {
		return bad("the term is empty")
	}
	k.name, words = words[0], words[1:]
	k.field = t.FieldMap[k.name]
	if k.field == nil && !plainName(k.name) {
		return bad(fmt.Sprintf("%q is not a plain column name", k.name))
	}
	if len(words) >= 1 && strings.EqualFold(words[0], "COLLATE") {
		if len(words) < 2 || words[1] != `"C"` && words[1] != `"POSIX"` {
			return bad(`the only collations are "C" and "POSIX" (byte order)`)
		}
		k.byteOrder, words = true, words[2:]
	}
	if len(words) >= 1 {
		switch strings.ToUpper(words[0]) {
		case "ASC":
			words = words[1:]
		case "DESC":
			k.desc, words = true, words[1:]
		}
	}
	k.nullsFirst = k.desc
	if len(words) >= 2 && strings.EqualFold(words[0], "NULLS") {
		switch strings.ToUpper(words[1]) {
		case "FIRST":
			k.nullsFirst, words = true, words[2:]
		case "LAST":
			k.nullsFirst, words = false, words[2:]
		}
	}
	if len(words) > 0 {
		return bad(fmt.Sprintf("unexpected %q", strings.Join(words, " ")))
	}
	if k.field != nil {
		k.typ, _ = typeOf(k.field)
	}
	return k, nil
}

// plainName reports whether s is a plain identifier: a letter or '_', then
// letters, digits, '_' or '$', as PostgreSQL reads unquoted names. Bun's
// column names of a model are such names.
func plainName(s string) bool {
	for i, r := range s {
		switch {
		case r == '_' || unicode.IsLetter(r):
		case i > 0 && (r == '$' || unicode.IsDigit(r)):
		default:
			return false
		}
	}
	return s != ""
}

// apply adds the term to a per-shard query, qualified by the model's alias so
// that joined relations cannot make it ambiguous. Only an OrderExpr term
// passes SQL text, with its placeholders; an Order term is the quoted
// column and keywords.
func (k orderKey) apply(q *bun.SelectQuery) *bun.SelectQuery {
	if k.raw {
		return q.OrderExpr(k.expr, k.args...)
	}
	name := k.name
	if k.field != nil {
		name = k.field.Name
	}
	dir := "ASC"
	if k.desc {
		dir = "DESC"
	}
	nulls := " NULLS LAST"
	if k.nullsFirst {
		nulls = " NULLS FIRST"
	}
	collate := ""
	if k.byteOrder {
		collate = ` COLLATE "C"`
	}
	return q.OrderExpr("?TableAlias.?"+collate+" "+dir+nulls, bun.Ident(name))
}

// mergeable reports why keys cannot be merged in Go across shards, or nil.
func mergeable(keys []orderKey) error {
	for _, k := range keys {
		if k.field == nil {
			return fmt.Errorf("%w: ORDER BY %q: only plain columns of the model (optionally ASC/DESC, NULLS FIRST/LAST) "+
				"can be merged across shards; order by a column or pin one shard", ErrUnsupported, k.expr)
		}
		if err := orderable(k.field, k.byteOrder); err != nil {
			return err
		}
		if !k.field.IsPtr && k.field.NullZero && !k.field.NotNull {
			return fmt.Errorf("%w: ORDER BY %s: the nullzero field %s.%s is not a pointer, so a NULL and a real zero "+
				"both scan as the zero value and the merge cannot place them as PostgreSQL does; make it a pointer "+
				"(*%s) or declare it notnull, or pin one shard", ErrUnsupported, k.field.Name, k.field.Table.TypeName,
				k.field.GoName, k.field.IndirectType)
		}
	}
	return nil
}

// orderable reports why the merge cannot order column f exactly, or nil.
// byteOrder is COLLATE "C", which text and char(n) need.
func orderable(f *schema.Field, byteOrder bool) error {
	t, why := typeOf(f)
	switch t {
	case ctOther:
		return fmt.Errorf("%w: ORDER BY %s: cannot compare %s exactly across shards; pin one shard",
			ErrUnsupported, f.Name, why)
	case ctText, ctBpchar:
		if !byteOrder {
			return fmt.Errorf("%w: ORDER BY %s: PostgreSQL orders text by the column's collation, which a Go "+
				"merge cannot reproduce; write Order(`%s COLLATE \"C\"`) for byte order (exact across shards), "+
				"or pin one shard", ErrUnsupported, f.Name, f.Name)
		}
	}
	return nil
}

type valueKind uint8

const (
	kindOther valueKind = iota
	kindInt
	kindUint
	kindFloat
	kindText
	kindBool
	kindTime
)

var timeType = reflect.TypeFor[time.Time]()

func kindOf(t reflect.Type) valueKind {
	if t == timeType {
		return kindTime
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return kindInt
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return kindUint
	case reflect.Float32, reflect.Float64:
		return kindFloat
	case reflect.String:
		return kindText
	case reflect.Bool:
		return kindBool
	}
	return kindOther
}

// compareRows orders two model structs by keys, as PostgreSQL would.
func compareRows(keys []orderKey, a, b reflect.Value) int {
	for _, k := range keys {
		if c := compareField(k, k.field.Value(a), k.field.Value(b)); c != 0 {
			return c
		}
	}
	return 0
}

func compareField(k orderKey, a, b reflect.Value) int {
	an, bn := isNull(k.field, a), isNull(k.field, b)
	switch {
	case an && bn:
		return 0
	case an:
		if k.nullsFirst {
			return -1
		}
		return 1
	case bn:
		if k.nullsFirst {
			return 1
		}
		return -1
	}
	c := compareValues(k.compareType(), reflect.Indirect(a), reflect.Indirect(b))
	if k.desc {
		return -c
	}
	return c
}

// isNull reports whether v holds SQL NULL: a nil pointer, or the zero value
// of a nullzero field that is not declared notnull (Bun writes those as
// NULL; mergeable refuses to merge on them, since a real zero read back
// looks the same). A notnull column holds no NULL: its zero is a value.
func isNull(f *schema.Field, v reflect.Value) bool {
	if v.Kind() == reflect.Pointer {
		return v.IsNil()
	}
	return f.NullZero && !f.NotNull && v.IsZero()
}

// compareFloat orders as PostgreSQL does: NaN is equal to itself and greater
// than every other value (cmp.Compare puts it first).
func compareFloat(a, b float64) int {
	an, bn := math.IsNaN(a), math.IsNaN(b)
	switch {
	case an && bn:
		return 0
	case an:
		return 1
	case bn:
		return -1
	}
	return cmp.Compare(a, b)
}

func b2i(b bool) int {
	if b {
		return 1
	}
	return 0
}
