package chooser

import (
	"encoding/binary"
	"fmt"
	"math"
	"reflect"
	"strconv"

	"github.com/cespare/xxhash/v2"
	"github.com/uptrace/bun/schema"
)

// keyKind is the family of a shard-key value. Named types count as their
// underlying kind: type UserID int64 is an int.
type keyKind uint8

const (
	kindNone   keyKind = iota // nil, NULL or an unsupported type
	kindInt                   // int, int8 … int64
	kindUint                  // uint, uint8 … uint64, uintptr
	kindFloat                 // float32, float64 (Ranges only)
	kindString                // string
	kindBytes                 // []byte
)

// key is a shard-key value read without boxing it, so that routing a single
// key allocates nothing: a struct field is read with reflect's Int/String
// accessors rather than Interface, which would copy the value to the heap.
type key struct {
	kind keyKind
	n    uint64 // kindInt: the int64's bits; kindUint: the value; kindFloat: math.Float64bits
	s    string // kindString
	b    []byte // kindBytes
}

// keyOf reads a key from a value passed as any (a primary-key value of a Get,
// a declared criterion value). The common types take a type switch; named
// types and pointers go through reflect.
func keyOf(x any) key {
	switch x := x.(type) {
	case int64:
		return key{kind: kindInt, n: uint64(x)}
	case int:
		return key{kind: kindInt, n: uint64(int64(x))}
	case int32:
		return key{kind: kindInt, n: uint64(int64(x))}
	case string:
		return key{kind: kindString, s: x}
	case uint64:
		return key{kind: kindUint, n: x}
	case []byte:
		return key{kind: kindBytes, b: x}
	}
	return keyOfValue(reflect.ValueOf(x))
}

// keyOfValue reads a key from v, following pointers and interfaces. A nil
// pointer or an unsupported kind gives kindNone.
func keyOfValue(v reflect.Value) key {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return key{}
		}
		v = v.Elem()
	}
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return key{kind: kindInt, n: uint64(v.Int())}
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return key{kind: kindUint, n: v.Uint()}
	case reflect.Float32, reflect.Float64:
		return key{kind: kindFloat, n: math.Float64bits(v.Float())}
	case reflect.String:
		return key{kind: kindString, s: v.String()}
	case reflect.Slice:
		if v.Type().Elem().Kind() == reflect.Uint8 {
			return key{kind: kindBytes, b: v.Bytes()}
		}
	}
	return key{}
}

// sum64 returns the xxhash64 (seed 0) of k's canonical encoding, and false
// for kinds that have none (floats, nil). The encoding is part of bunshard's
// compatibility promise, because it decides where existing rows live:
//
//   - integers (signed and unsigned, any width, named or not): the value as
//     a 64-bit two's-complement integer, 8 bytes little-endian; so int32(7),
//     int64(7) and uint16(7) hash alike;
//   - strings: their bytes, as they are (no length prefix, no normalization);
//   - []byte: the bytes, so []byte("a") hashes like "a".
func (k key) sum64() (uint64, bool) {
	switch k.kind {
	case kindInt, kindUint:
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], k.n)
		return xxhash.Sum64(buf[:]), true
	case kindString:
		return xxhash.Sum64String(k.s), true
	case kindBytes:
		return xxhash.Sum64(k.b), true
	}
	return 0, false
}

// String renders k for error messages.
func (k key) String() string {
	switch k.kind {
	case kindInt:
		return strconv.FormatInt(int64(k.n), 10)
	case kindUint:
		return strconv.FormatUint(k.n, 10)
	case kindFloat:
		return strconv.FormatFloat(math.Float64frombits(k.n), 'g', -1, 64)
	case kindString:
		return strconv.Quote(k.s)
	case kindBytes:
		return fmt.Sprintf("%#x", k.b)
	}
	return "NULL"
}

// at names a column in errors: "Model.column", or just "column" when the
// model is not known (as in [Hash.Bucket]).
func at(table *schema.Table, column string) string {
	if table == nil {
		return column
	}
	return table.TypeName + "." + column
}

// badKeyError is the error for a value that cannot be a shard key.
func badKeyError(table *schema.Table, column string, value any, want string) error {
	if value == nil {
		return fmt.Errorf("chooser: %s: value is NULL; a shard key must be set before routing", at(table, column))
	}
	return fmt.Errorf("chooser: %s: value %v (%T) cannot be a shard key; want %s", at(table, column), value, value, want)
}
