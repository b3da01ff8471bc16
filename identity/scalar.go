package identity

import (
	"database/sql/driver"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"time"
)

// ScalarKind is the family of a [Scalar]. Named types count as their
// underlying kind: type UserID int64 is a ScalarInt.
type ScalarKind uint8

// The kinds of a [Scalar].
const (
	ScalarNull   ScalarKind = iota // nil, a nil pointer, a NULL driver.Valuer
	ScalarInt                      // any integer that fits an int64, signed or not
	ScalarUint                     // an unsigned integer above math.MaxInt64
	ScalarFloat                    // float32, float64
	ScalarString                   // string
	ScalarBytes                    // []byte
	ScalarOther                    // anything else (bool, time.Time, uuid arrays, ...)
)

// Scalar is one key value in bunshard's canonical form: the one conversion
// that routing (every chooser), the identity map ([Canonical], [NewKey]),
// the relation loader's matching and the session's IN-list splitting all
// read a Go value through, so that values equal as keys are equal
// everywhere. Reading a value into a Scalar allocates nothing for integers,
// strings and []byte, whether passed as any or read from a struct field
// through reflect. The rules:
//
//   - pointers and interfaces are followed; nil is ScalarNull;
//   - a driver.Valuer (sql.NullInt64, ...) is replaced by its Value (a
//     NULL one is ScalarNull);
//   - integers of every width and sign, named or not, are ScalarInt with
//     N holding the int64's bits, except unsigned values above
//     math.MaxInt64, which are ScalarUint with N holding the value: so
//     int32(7), int64(7), uint16(7) and type ID int(7) are one Scalar;
//   - floats are ScalarFloat with N holding math.Float64bits of the float64;
//   - strings are ScalarString (S), []byte is ScalarBytes (B, not copied);
//   - everything else is ScalarOther with X holding a comparable value: a
//     time in UTC without its monotonic reading, a bool, another comparable
//     value as it is, a non-comparable one (or a Valuer whose Value fails)
//     as its %#v rendering.
//
// Scalars holding B are not comparable with ==; compare [Scalar.Canonical].
type Scalar struct {
	Kind ScalarKind
	N    uint64 // ScalarInt: the int64's bits; ScalarUint: the value; ScalarFloat: math.Float64bits
	S    string // ScalarString
	B    []byte // ScalarBytes
	X    any    // ScalarOther
}

// ScalarOf reads x into its canonical form (see [Scalar]). The common types
// take a type switch; named types, pointers and Valuers go through reflect.
// It never fails: a value with no better form is ScalarOther.
func ScalarOf(x any) Scalar {
	switch x := x.(type) {
	case nil:
		return Scalar{}
	case int64:
		return Scalar{Kind: ScalarInt, N: uint64(x)}
	case int:
		return Scalar{Kind: ScalarInt, N: uint64(int64(x))}
	case int32:
		return Scalar{Kind: ScalarInt, N: uint64(int64(x))}
	case string:
		return Scalar{Kind: ScalarString, S: x}
	case uint64:
		return uintScalar(x)
	case []byte:
		return Scalar{Kind: ScalarBytes, B: x}
	case time.Time:
		return Scalar{Kind: ScalarOther, X: x.Round(0).UTC()}
	}
	return ScalarOfValue(reflect.ValueOf(x))
}

var valuerType = reflect.TypeFor[driver.Valuer]()

// ScalarOfValue reads v into its canonical form, as [ScalarOf] reads a
// value passed as any; v may be a struct field, read without copying it
// to the heap.
func ScalarOfValue(v reflect.Value) Scalar {
	// Unwrap Valuers, pointers and interfaces, in the order a type switch
	// would meet them (a *T may be the Valuer); bounded, since a Valuer
	// may return another Valuer.
	for range 8 {
		if !v.IsValid() {
			return Scalar{}
		}
		k := v.Kind()
		if (k == reflect.Pointer || k == reflect.Interface) && v.IsNil() {
			return Scalar{}
		}
		if v.CanInterface() && v.Type().Implements(valuerType) {
			x, err := v.Interface().(driver.Valuer).Value()
			if err != nil {
				return Scalar{Kind: ScalarOther, X: fmt.Sprintf("%#v", v.Interface())}
			}
			v = reflect.ValueOf(x)
			continue
		}
		if k != reflect.Pointer && k != reflect.Interface {
			break
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return Scalar{Kind: ScalarInt, N: uint64(v.Int())}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return uintScalar(v.Uint())
	case reflect.Float32, reflect.Float64:
		return Scalar{Kind: ScalarFloat, N: math.Float64bits(v.Float())}
	case reflect.String:
		return Scalar{Kind: ScalarString, S: v.String()}
	case reflect.Bool:
		return Scalar{Kind: ScalarOther, X: v.Bool()}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return Scalar{Kind: ScalarBytes, B: v.Bytes()}
		}
	}
	if !v.CanInterface() {
		return Scalar{Kind: ScalarOther, X: v.String()}
	}
	x := v.Interface()
	if t, ok := x.(time.Time); ok {
		return Scalar{Kind: ScalarOther, X: t.Round(0).UTC()}
	}
	if v.Comparable() {
		return Scalar{Kind: ScalarOther, X: x}
	}
	return Scalar{Kind: ScalarOther, X: fmt.Sprintf("%#v", x)}
}

func uintScalar(n uint64) Scalar {
	if n <= math.MaxInt64 {
		return Scalar{Kind: ScalarInt, N: n}
	}
	return Scalar{Kind: ScalarUint, N: n}
}

// Canonical returns s as a comparable value: an int64, a uint64 (above
// math.MaxInt64 only), a float64, a string ([]byte becomes one), X, or nil.
// Two Scalars are the same key exactly when their Canonical values are
// equal (==), as map keys and in [Key].
func (s Scalar) Canonical() any {
	switch s.Kind {
	case ScalarInt:
		return int64(s.N)
	case ScalarUint:
		return s.N
	case ScalarFloat:
		return math.Float64frombits(s.N)
	case ScalarString:
		return s.S
	case ScalarBytes:
		return string(s.B)
	case ScalarOther:
		return s.X
	}
	return nil
}

// String renders s for error messages: 42, "asia", 0x6869, NULL.
func (s Scalar) String() string {
	switch s.Kind {
	case ScalarInt:
		return strconv.FormatInt(int64(s.N), 10)
	case ScalarUint:
		return strconv.FormatUint(s.N, 10)
	case ScalarFloat:
		return strconv.FormatFloat(math.Float64frombits(s.N), 'g', -1, 64)
	case ScalarString:
		return strconv.Quote(s.S)
	case ScalarBytes:
		return fmt.Sprintf("%#x", s.B)
	case ScalarOther:
		return fmt.Sprint(s.X)
	}
	return "NULL"
}
