package session

import (
	"bytes"
	"cmp"
	"fmt"
	"reflect"
	"strings"
	"time"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/internal/numeric"
)

// colType is how the merge compares a column's values: chosen from the
// column's SQL type (Bun's schema.Field.DiscoveredSQLType, which is the
// `type:` tag when there is one) and its Go type, so that numeric held in
// a Go string compares as a number and char(n) without trailing spaces.
type colType uint8

const (
	ctUnknown colType = iota // not yet classified (a zero orderKey)
	ctOther                  // nothing the merge can compare exactly
	ctInt
	ctUint
	ctFloat
	ctText    // varchar, text: PostgreSQL orders by collation; exact only with COLLATE "C"
	ctBpchar  // char(n): as text, with trailing spaces ignored
	ctNumeric // numeric, decimal: exact decimal comparison
	ctUUID    // uuid: byte order of its canonical text
	ctBool
	ctTime
	ctBytes // bytea: byte order
)

// sqlBase returns the lower-case SQL type name without modifiers:
// "numeric(10,2)" -> "numeric", "timestamp(3) with time zone" ->
// "timestamp with time zone", "varchar[]" -> "varchar[]".
func sqlBase(t string) string {
	t = strings.ToLower(strings.TrimSpace(t))
	for {
		i := strings.IndexByte(t, '(')
		if i < 0 {
			break
		}
		j := strings.IndexByte(t[i:], ')')
		if j < 0 {
			break
		}
		t = t[:i] + t[i+j+1:]
	}
	return strings.Join(strings.Fields(t), " ")
}

// sqlClass classifies a SQL type by how PostgreSQL compares its values.
func sqlClass(base string) colType {
	switch base {
	case "smallint", "integer", "int", "int2", "int4", "int8", "bigint", "smallserial", "serial", "bigserial",
		"serial2", "serial4", "serial8":
		return ctInt
	case "real", "float4", "float8", "double precision", "float":
		return ctFloat
	case "numeric", "decimal":
		return ctNumeric
	case "varchar", "character varying", "text":
		return ctText
	case "char", "character", "bpchar":
		return ctBpchar
	case "uuid":
		return ctUUID
	case "boolean", "bool":
		return ctBool
	case "timestamp", "timestamptz", "timestamp with time zone", "timestamp without time zone", "date":
		return ctTime
	case "bytea", "blob":
		return ctBytes
	}
	return ctOther
}

// typeOf returns how the merge compares values of f held in f's Go type, or
// ctOther (with the reason) when it cannot do so exactly.
func typeOf(f *schema.Field) (colType, string) {
	sql := sqlClass(sqlBase(f.DiscoveredSQLType))
	goType := f.IndirectType
	mismatch := fmt.Sprintf("SQL type %s held in Go type %s", f.DiscoveredSQLType, goType)
	switch kindOf(goType) {
	case kindInt, kindUint:
		// A numeric scans into an integer only when it is one: exact.
		if sql == ctInt || sql == ctNumeric {
			if kindOf(goType) == kindUint {
				return ctUint, ""
			}
			return ctInt, ""
		}
	case kindFloat:
		switch sql {
		case ctFloat:
			return ctFloat, ""
		case ctNumeric:
			return ctOther, mismatch + ": numeric rounded to a float64 cannot be ordered exactly " +
				"(hold it in a string field)"
		}
	case kindText:
		switch sql {
		case ctText, ctBpchar, ctNumeric, ctUUID:
			return sql, ""
		}
	case kindBool:
		if sql == ctBool {
			return ctBool, ""
		}
	case kindTime:
		if sql == ctTime {
			return ctTime, ""
		}
	default:
		if sql == ctBytes && goType.Kind() == reflect.Slice && goType.Elem().Kind() == reflect.Uint8 {
			return ctBytes, ""
		}
	}
	return ctOther, mismatch
}

// compareType returns how the merge compares the key's column, classifying
// it if parseOrder did not (a key made elsewhere, such as ScanPage's primary key).
func (k orderKey) compareType() colType {
	if k.typ != ctUnknown {
		return k.typ
	}
	t, _ := typeOf(k.field)
	return t
}

// compareValues orders two non-NULL values of a column of type t, held in
// Go values of the column's field type (pointers already followed).
func compareValues(t colType, a, b reflect.Value) int {
	switch t {
	case ctInt:
		return cmp.Compare(a.Int(), b.Int())
	case ctUint:
		return cmp.Compare(a.Uint(), b.Uint())
	case ctFloat:
		return compareFloat(a.Float(), b.Float())
	case ctText, ctUUID:
		return strings.Compare(a.String(), b.String())
	case ctBpchar:
		return compareBpchar(a.String(), b.String())
	case ctNumeric:
		switch a.Kind() {
		case reflect.String:
			return compareNumericText(a.String(), b.String())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return cmp.Compare(a.Int(), b.Int())
		default:
			return cmp.Compare(a.Uint(), b.Uint())
		}
	case ctBool:
		return cmp.Compare(b2i(a.Bool()), b2i(b.Bool()))
	case ctTime:
		return a.Interface().(time.Time).Compare(b.Interface().(time.Time))
	case ctBytes:
		return bytes.Compare(a.Bytes(), b.Bytes())
	}
	return 0
}

// compareBpchar orders char(n) values as PostgreSQL does under COLLATE
// "C": trailing spaces are not significant.
func compareBpchar(a, b string) int {
	return strings.Compare(strings.TrimRight(a, " "), strings.TrimRight(b, " "))
}

// compareNumericText orders two numeric texts. Text that is no numeric
// (which PostgreSQL never returns) sorts after every numeric, by bytes, so
// that the comparison stays a total order.
func compareNumericText(a, b string) int {
	x, okA := numeric.Parse(a)
	y, okB := numeric.Parse(b)
	switch {
	case okA && okB:
		return numeric.Compare(x, y)
	case okA:
		return -1
	case okB:
		return 1
	}
	return strings.Compare(a, b)
}
