package chooser

import (
	"encoding/binary"
	"fmt"
	"reflect"

	"github.com/cespare/xxhash/v2"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// key is a shard-key value in bunshard's one canonical form,
// identity.Scalar, read without boxing it, so that routing a single key
// allocates nothing.
type key = identity.Scalar

// keyKind is the family of a key.
type keyKind = identity.ScalarKind

const (
	kindNone   = identity.ScalarNull   // nil, NULL or a type no chooser routes on
	kindInt    = identity.ScalarInt    // an integer that fits an int64
	kindUint   = identity.ScalarUint   // an unsigned integer above math.MaxInt64
	kindFloat  = identity.ScalarFloat  // float32, float64 (Ranges and ValueMap only)
	kindString = identity.ScalarString // string
	kindBytes  = identity.ScalarBytes  // []byte
)

// keyOf reads a key from a value passed as any (a primary-key value of a
// Get, a declared criterion value) with identity.ScalarOf. A value no
// chooser routes on (a bool, a time, a struct) gives kindNone.
func keyOf(x any) key { return routable(identity.ScalarOf(x)) }

// keyOfValue reads a key from v (a struct field) with
// identity.ScalarOfValue, as keyOf does.
func keyOfValue(v reflect.Value) key { return routable(identity.ScalarOfValue(v)) }

func routable(k key) key {
	if k.Kind == identity.ScalarOther {
		return key{}
	}
	return k
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
func sum64(k key) (uint64, bool) {
	switch k.Kind {
	case kindInt, kindUint:
		var buf [8]byte
		binary.LittleEndian.PutUint64(buf[:], k.N)
		return xxhash.Sum64(buf[:]), true
	case kindString:
		return xxhash.Sum64String(k.S), true
	case kindBytes:
		return xxhash.Sum64(k.B), true
	}
	return 0, false
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
