package identity

import (
	"database/sql/driver"
	"fmt"
	"math"
	"reflect"
	"strconv"
	"strings"
	"time"
)

// Key identifies one object in a unit of work: its model type, its primary
// key and its shard, SQLAlchemy's (class, pk, identity token). The same
// primary key on two shards gives two keys, so two objects.
//
// Keys are comparable values, usable as map keys. Build them with [NewKey];
// the zero Key identifies nothing.
type Key struct {
	typ   reflect.Type
	pk    any // a Canonical value
	shard ShardID
}

// NewKey returns the key of the object of model type t (the struct type,
// not a pointer) with primary key pk (in the order of the model's
// primary-key columns) on shard. Primary-key values are made canonical with
// [Canonical], so the int 7 and the int64 7 give the same key.
func NewKey(t reflect.Type, shard ShardID, pk ...any) Key {
	return Key{typ: t, pk: Canonical(pk...), shard: shard}
}

// Type returns the model type of the key.
func (k Key) Type() reflect.Type { return k.typ }

// Shard returns the shard of the key.
func (k Key) Shard() ShardID { return k.shard }

// PK returns the canonical primary-key value of the key (see [Canonical]).
func (k Key) PK() any { return k.pk }

// String renders the key as "Location(7)@asia", for logs and errors.
func (k Key) String() string {
	name := "<nil>"
	if k.typ != nil {
		name = k.typ.Name()
	}
	var pk string
	switch v := k.pk.(type) {
	case compositePK:
		pk = string(v)
	case string:
		pk = strconv.Quote(v)
	default:
		pk = fmt.Sprint(v)
	}
	return fmt.Sprintf("%s(%s)@%s", name, pk, k.shard)
}

// compositePK is the canonical form of a primary key of several columns.
type compositePK string

// Canonical returns a comparable value that is equal for equal primary
// keys, whatever Go types hold them:
//
//   - signed and unsigned integers become int64 (uint64 values above
//     math.MaxInt64 stay uint64), floats become float64;
//   - pointers are followed (nil becomes nil), and a driver.Valuer (such as
//     sql.NullInt64) is replaced by its Value;
//   - []byte becomes a string, and times are taken in UTC without their
//     monotonic clock reading;
//   - other comparable values are kept as they are, and non-comparable ones
//     are replaced by their %#v rendering;
//   - a key of several values becomes one string holding each value's
//     canonical form.
//
// Canonical allocates nothing for a single int64 or string key.
func Canonical(pk ...any) any {
	switch len(pk) {
	case 0:
		return nil
	case 1:
		return canonical(pk[0])
	}
	var b strings.Builder
	b.WriteByte('(')
	for i, v := range pk {
		if i > 0 {
			b.WriteString(", ")
		}
		switch c := canonical(v).(type) {
		case string:
			b.WriteString(strconv.Quote(c))
		case compositePK:
			b.WriteString(string(c))
		case nil:
			b.WriteString("NULL")
		default:
			// The type name keeps 1 (int64) and "1"-like renderings of other
			// types apart.
			fmt.Fprintf(&b, "%T:%v", c, c)
		}
	}
	b.WriteByte(')')
	return compositePK(b.String())
}

func canonical(v any) any {
	switch x := v.(type) {
	case nil:
		return nil
	case int64, string, float64, bool:
		return v // already canonical: returning v, not x, avoids boxing again
	case int:
		return int64(x)
	case int32:
		return int64(x)
	case int16:
		return int64(x)
	case int8:
		return int64(x)
	case uint64:
		if x <= math.MaxInt64 {
			return int64(x)
		}
		return x
	case uint:
		return canonical(uint64(x))
	case uint32:
		return int64(x)
	case uint16:
		return int64(x)
	case uint8:
		return int64(x)
	case float32:
		return float64(x)
	case []byte:
		return string(x)
	case time.Time:
		return x.Round(0).UTC()
	case driver.Valuer:
		rv := reflect.ValueOf(v)
		if rv.Kind() == reflect.Pointer && rv.IsNil() {
			return nil
		}
		dv, err := x.Value()
		if err != nil {
			return fmt.Sprintf("%#v", v)
		}
		return canonical(dv)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Pointer:
		if rv.IsNil() {
			return nil
		}
		return canonical(rv.Elem().Interface())
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return rv.Int()
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		return canonical(rv.Uint())
	case reflect.Float32, reflect.Float64:
		return rv.Float()
	case reflect.String:
		return rv.String()
	case reflect.Bool:
		return rv.Bool()
	case reflect.Slice:
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return string(rv.Bytes())
		}
	}
	if rv.Comparable() {
		return v
	}
	return fmt.Sprintf("%#v", v)
}
