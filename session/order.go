package session

import (
	"cmp"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"
)

// orderKey is one recorded ORDER BY term. field is nil for an expression the
// session cannot compare in Go; such a statement still runs on one shard, but
// a merge across shards refuses it.
type orderKey struct {
	field      *schema.Field
	desc       bool
	nullsFirst bool
	byteOrder  bool    // COLLATE "C": text compares as bytes, in SQL and in Go
	typ        colType // how the merge compares the column (typeOf)
	expr       string  // the caller's text, for errors and for opaque terms
	args       []any
}

// parseOrder turns "temperature DESC NULLS LAST" into a key on the model's
// column, following PostgreSQL's defaults (ASC puts NULLs last, DESC first).
// Anything else (an expression, a qualified or quoted name) becomes an
// opaque key.
func parseOrder(t *schema.Table, spec string) orderKey {
	k := orderKey{expr: spec}
	words := strings.Fields(spec)
	if len(words) == 0 {
		return k
	}
	f, ok := t.FieldMap[words[0]]
	if !ok {
		return k
	}
	words = words[1:]
	if len(words) >= 2 && strings.EqualFold(words[0], "COLLATE") {
		switch words[1] {
		case `"C"`, `"POSIX"`:
			k.byteOrder = true
		default:
			return k
		}
		words = words[2:]
	}
	rest := strings.ToUpper(strings.Join(words, " "))
	switch rest {
	case "", "ASC":
	case "DESC":
		k.desc = true
	case "ASC NULLS FIRST", "NULLS FIRST":
		k.nullsFirst = true
	case "ASC NULLS LAST", "NULLS LAST":
	case "DESC NULLS FIRST":
		k.desc = true
	case "DESC NULLS LAST":
		k.desc = true
	default:
		return k
	}
	if k.desc {
		k.nullsFirst = !strings.HasSuffix(rest, "NULLS LAST")
	}
	k.field = f
	k.typ, _ = typeOf(f)
	return k
}

// apply adds the term to a per-shard query, qualified by the model's alias so
// that joined relations cannot make it ambiguous.
func (k orderKey) apply(q *bun.SelectQuery) *bun.SelectQuery {
	if k.field == nil {
		return q.OrderExpr(k.expr, k.args...)
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
	return q.OrderExpr("?TableAlias.?"+collate+" "+dir+nulls, bun.Ident(k.field.Name))
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
