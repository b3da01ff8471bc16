package planner

import (
	"bytes"
	"cmp"
	"fmt"
	"math"
	"reflect"
	"strings"
	"time"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/internal/numeric"
)

// Type is how the merge compares a column's values: chosen from the
// column's SQL type (Bun's schema.Field.DiscoveredSQLType, which is the
// `type:` tag when there is one) and its Go type, so that numeric held in
// a Go string compares as a number and char(n) without trailing spaces.
type Type uint8

// The column types the merge tells apart.
const (
	TypeUnknown Type = iota // not yet classified (a zero Key)
	TypeOther               // nothing the merge can compare exactly
	TypeInt
	TypeUint
	TypeFloat
	TypeText    // varchar, text: PostgreSQL orders by collation; exact only with COLLATE "C"
	TypeBpchar  // char(n): as text, with trailing spaces ignored
	TypeNumeric // numeric, decimal: exact decimal comparison
	TypeUUID    // uuid: byte order of its canonical text
	TypeBool
	TypeTime
	TypeBytes // bytea: byte order
)

// kind is the family of a Go type.
type kind uint8

const (
	kindOther kind = iota
	kindInt
	kindUint
	kindFloat
	kindText
	kindBool
	kindTime
)

var timeType = reflect.TypeFor[time.Time]()

func kindOf(t reflect.Type) kind {
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

// SQLClass classifies a SQL type name, such as "numeric(10,2)" or
// "character varying", by how PostgreSQL compares its values; a type the
// merge cannot compare exactly (jsonb, arrays, citext, money) is TypeOther.
func SQLClass(sqlType string) Type {
	switch sqlBase(sqlType) {
	case "smallint", "integer", "int", "int2", "int4", "int8", "bigint", "smallserial", "serial", "bigserial",
		"serial2", "serial4", "serial8":
		return TypeInt
	case "real", "float4", "float8", "double precision", "float":
		return TypeFloat
	case "numeric", "decimal":
		return TypeNumeric
	case "varchar", "character varying", "text":
		return TypeText
	case "char", "character", "bpchar":
		return TypeBpchar
	case "uuid":
		return TypeUUID
	case "boolean", "bool":
		return TypeBool
	case "timestamp", "timestamptz", "timestamp with time zone", "timestamp without time zone", "date":
		return TypeTime
	case "bytea", "blob":
		return TypeBytes
	}
	return TypeOther
}

// TypeOf returns how the merge compares values of f held in f's Go type, or
// TypeOther with the reason when it cannot do so exactly (numeric in a
// float64, jsonb, a SQL type and a Go type that do not match).
func TypeOf(f *schema.Field) (Type, string) {
	sql := SQLClass(f.DiscoveredSQLType)
	goType := f.IndirectType
	mismatch := fmt.Sprintf("SQL type %s held in Go type %s", f.DiscoveredSQLType, goType)
	switch kindOf(goType) {
	case kindInt, kindUint:
		// A numeric scans into an integer only when it is one: exact.
		if sql == TypeInt || sql == TypeNumeric {
			if kindOf(goType) == kindUint {
				return TypeUint, ""
			}
			return TypeInt, ""
		}
	case kindFloat:
		switch sql {
		case TypeFloat:
			return TypeFloat, ""
		case TypeNumeric:
			return TypeOther, mismatch + ": numeric rounded to a float64 cannot be ordered exactly " +
				"(hold it in a string field)"
		}
	case kindText:
		switch sql {
		case TypeText, TypeBpchar, TypeNumeric, TypeUUID:
			return sql, ""
		}
	case kindBool:
		if sql == TypeBool {
			return TypeBool, ""
		}
	case kindTime:
		if sql == TypeTime {
			return TypeTime, ""
		}
	default:
		if sql == TypeBytes && goType.Kind() == reflect.Slice && goType.Elem().Kind() == reflect.Uint8 {
			return TypeBytes, ""
		}
	}
	return TypeOther, mismatch
}

// compareValues orders two non-NULL values of a column of type t, held in
// Go values of the column's field type (pointers already followed).
func compareValues(t Type, a, b reflect.Value) int {
	switch t {
	case TypeInt:
		return cmp.Compare(a.Int(), b.Int())
	case TypeUint:
		return cmp.Compare(a.Uint(), b.Uint())
	case TypeFloat:
		return compareFloat(a.Float(), b.Float())
	case TypeText, TypeUUID:
		return strings.Compare(a.String(), b.String())
	case TypeBpchar:
		return compareBpchar(a.String(), b.String())
	case TypeNumeric:
		switch a.Kind() {
		case reflect.String:
			return compareNumericText(a.String(), b.String())
		case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
			return cmp.Compare(a.Int(), b.Int())
		default:
			return cmp.Compare(a.Uint(), b.Uint())
		}
	case TypeBool:
		return cmp.Compare(b2i(a.Bool()), b2i(b.Bool()))
	case TypeTime:
		return a.Interface().(time.Time).Compare(b.Interface().(time.Time))
	case TypeBytes:
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

// CompareFloat orders two float8 (or real) values as PostgreSQL does: NaN
// is equal to itself and greater than every other value, and -0 equals 0.
// It returns -1, 0 or +1 and never fails.
func CompareFloat(a, b float64) int { return compareFloat(a, b) }

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
