package planner

import (
	"fmt"
	"reflect"
	"strings"
	"unicode"

	"github.com/uptrace/bun/schema"
)

// Key is one ORDER BY term. Field is nil for a Raw term (OrderExpr), which
// the merge cannot compare in Go: such a statement still runs on one shard,
// but [Mergeable] refuses it. A parsed term names a column (Field) of the
// model or, on a grouped select, an output column (Name only), and never
// reaches SQL as text.
type Key struct {
	Field      *schema.Field
	Desc       bool
	NullsFirst bool
	ByteOrder  bool   // COLLATE "C": text compares as bytes, in SQL and in Go
	Type       Type   // how the merge compares the column (TypeOf); TypeUnknown: classify on use
	Name       string // a parsed term's column
	Raw        bool   // an OrderExpr term: Expr and Args are SQL
	Expr       string // the caller's text, for errors and for Raw terms
	Args       []any
}

// ParseOrder parses an Order term of a model with table t,
//
//	<column> [COLLATE "C" | COLLATE "POSIX"] [ASC | DESC] [NULLS FIRST | NULLS LAST]
//
// with keywords in any case and any white space between words, following
// PostgreSQL's defaults (ASC puts NULLs last, DESC first). A column of the
// model sets Field; another plain name is kept in Name only, for a grouped
// select's output columns (the caller refuses it elsewhere). Anything else
// fails with an *Error of Fault Invalid naming the term and the model.
func ParseOrder(t *schema.Table, spec string) (Key, error) {
	k := Key{Expr: spec}
	bad := func(why string) (Key, error) {
		return Key{}, invalid("Order(%q) on %s: %s; an Order term is a column of the model, then optionally "+
			`COLLATE "C" (or "POSIX"), ASC or DESC, and NULLS FIRST or NULLS LAST; write other terms with OrderExpr and placeholders`,
			spec, t.TypeName, why)
	}
	words := strings.Fields(spec)
	if len(words) == 0 {
		return bad("the term is empty")
	}
	k.Name, words = words[0], words[1:]
	k.Field = t.FieldMap[k.Name]
	if k.Field == nil && !plainName(k.Name) {
		return bad(fmt.Sprintf("%q is not a plain column name", k.Name))
	}
	if len(words) >= 1 && strings.EqualFold(words[0], "COLLATE") {
		if len(words) < 2 || words[1] != `"C"` && words[1] != `"POSIX"` {
			return bad(`the only collations are "C" and "POSIX" (byte order)`)
		}
		k.ByteOrder, words = true, words[2:]
	}
	if len(words) >= 1 {
		switch strings.ToUpper(words[0]) {
		case "ASC":
			words = words[1:]
		case "DESC":
			k.Desc, words = true, words[1:]
		}
	}
	k.NullsFirst = k.Desc
	if len(words) >= 2 && strings.EqualFold(words[0], "NULLS") {
		switch strings.ToUpper(words[1]) {
		case "FIRST":
			k.NullsFirst, words = true, words[2:]
		case "LAST":
			k.NullsFirst, words = false, words[2:]
		}
	}
	if len(words) > 0 {
		return bad(fmt.Sprintf("unexpected %q", strings.Join(words, " ")))
	}
	if k.Field != nil {
		k.Type, _ = TypeOf(k.Field)
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

// SQL returns the term as a Bun query expression and its arguments: a Raw
// term's own text and placeholders, or else the quoted column qualified by
// the model's alias (so that joined relations cannot make it ambiguous)
// and the session's keywords, such as
// `?TableAlias.? COLLATE "C" DESC NULLS FIRST` with the column's Ident.
func (k Key) SQL() (string, []any) {
	if k.Raw {
		return k.Expr, k.Args
	}
	name := k.Name
	if k.Field != nil {
		name = k.Field.Name
	}
	dir := "ASC"
	if k.Desc {
		dir = "DESC"
	}
	nulls := " NULLS LAST"
	if k.NullsFirst {
		nulls = " NULLS FIRST"
	}
	collate := ""
	if k.ByteOrder {
		collate = ` COLLATE "C"`
	}
	return "?TableAlias.?" + collate + " " + dir + nulls, []any{schema.Ident(name)}
}

// Mergeable reports why keys cannot be merged in Go across shards (an
// *Error of Fault Unsupported naming the column and the fix), or nil.
func Mergeable(keys []Key) error {
	for _, k := range keys {
		if k.Field == nil {
			return unsupported("ORDER BY %q: only plain columns of the model (optionally ASC/DESC, NULLS FIRST/LAST) "+
				"can be merged across shards; order by a column or pin one shard", k.Expr)
		}
		if err := orderable(k.Field, k.ByteOrder); err != nil {
			return err
		}
		if !k.Field.IsPtr && k.Field.NullZero && !k.Field.NotNull {
			return unsupported("ORDER BY %s: the nullzero field %s.%s is not a pointer, so a NULL and a real zero "+
				"both scan as the zero value and the merge cannot place them as PostgreSQL does; make it a pointer "+
				"(*%s) or declare it notnull, or pin one shard", k.Field.Name, k.Field.Table.TypeName,
				k.Field.GoName, k.Field.IndirectType)
		}
	}
	return nil
}

// orderable reports why the merge cannot order column f exactly, or nil.
// byteOrder is COLLATE "C", which text and char(n) need.
func orderable(f *schema.Field, byteOrder bool) error {
	t, why := TypeOf(f)
	switch t {
	case TypeOther:
		return unsupported("ORDER BY %s: cannot compare %s exactly across shards; pin one shard", f.Name, why)
	case TypeText, TypeBpchar:
		if !byteOrder {
			return unsupported("ORDER BY %s: PostgreSQL orders text by the column's collation, which a Go "+
				"merge cannot reproduce; write Order(`%s COLLATE \"C\"`) for byte order (exact across shards), "+
				"or pin one shard", f.Name, f.Name)
		}
	}
	return nil
}

// CompareRows orders two model structs (not pointers) by keys, as
// PostgreSQL would: negative when a comes first. Every key must have a
// Field ([Mergeable] checks that); on columns Mergeable refuses the result
// is meaningless.
func CompareRows(keys []Key, a, b reflect.Value) int {
	for _, k := range keys {
		if c := compareField(k, k.Field.Value(a), k.Field.Value(b)); c != 0 {
			return c
		}
	}
	return 0
}

func compareField(k Key, a, b reflect.Value) int {
	an, bn := isNull(k.Field, a), isNull(k.Field, b)
	switch {
	case an && bn:
		return 0
	case an:
		if k.NullsFirst {
			return -1
		}
		return 1
	case bn:
		if k.NullsFirst {
			return 1
		}
		return -1
	}
	c := compareValues(k.compareType(), reflect.Indirect(a), reflect.Indirect(b))
	if k.Desc {
		return -c
	}
	return c
}

// compareType returns how the merge compares the key's column, classifying
// it if ParseOrder did not (a key made elsewhere, such as a page's primary key).
func (k Key) compareType() Type {
	if k.Type != TypeUnknown {
		return k.Type
	}
	t, _ := TypeOf(k.Field)
	return t
}

// isNull reports whether v holds SQL NULL: a nil pointer, or the zero value
// of a nullzero field that is not declared notnull (Bun writes those as
// NULL; Mergeable refuses to merge on them, since a real zero read back
// looks the same). A notnull column holds no NULL: its zero is a value.
func isNull(f *schema.Field, v reflect.Value) bool {
	if v.Kind() == reflect.Pointer {
		return v.IsNil()
	}
	return f.NullZero && !f.NotNull && v.IsZero()
}
