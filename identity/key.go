package identity

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Key identifies one object in a unit of work: its model type, its primary
// key and its shard, SQLAlchemy's (class, pk, identity token). The same
// primary key on two shards gives two keys, so two objects.
//
// Keys are comparable values, usable as map keys. Build them with [NewKey];
// the zero Key identifies nothing.
type Key struct {
	typ reflect.Type
	// pk is the Canonical value of the primary key, except for one whose
	// canonical form is an int64: pk is then intPK{} and id holds the
	// value, so that a key of an int64 column boxes nothing (a unit of
	// work keys every object it inserts).
	pk    any
	id    int64
	shard ShardID
}

// intPK marks a Key whose canonical primary key is the int64 in its id
// field. It is zero-sized: storing it in an interface allocates nothing.
type intPK struct{}

// NewKey returns the key of the object of model type t (the struct type,
// not a pointer) with primary key pk (in the order of the model's
// primary-key columns) on shard. Primary-key values are made canonical with
// [Canonical], so the int 7 and the int64 7 give the same key.
func NewKey(t reflect.Type, shard ShardID, pk ...any) Key {
	c := Canonical(pk...)
	if n, ok := c.(int64); ok {
		return Key{typ: t, pk: intPK{}, id: n, shard: shard}
	}
	return Key{typ: t, pk: c, shard: shard}
}

// NewIntKey returns NewKey(t, shard, pk) without boxing pk: the key of an
// object whose primary key is one integer column. It cannot fail.
func NewIntKey(t reflect.Type, shard ShardID, pk int64) Key {
	return Key{typ: t, pk: intPK{}, id: pk, shard: shard}
}

// isInt reports whether k's canonical primary key is the int64 k.id.
func (k Key) isInt() bool {
	_, ok := k.pk.(intPK)
	return ok
}

// Type returns the model type of the key.
func (k Key) Type() reflect.Type { return k.typ }

// Shard returns the shard of the key.
func (k Key) Shard() ShardID { return k.shard }

// PK returns the canonical primary-key value of the key (see [Canonical]).
func (k Key) PK() any {
	if k.isInt() {
		return k.id
	}
	return k.pk
}

// String renders the key as "Location(7)@asia", for logs and errors.
func (k Key) String() string {
	name := "<nil>"
	if k.typ != nil {
		name = k.typ.Name()
	}
	var pk string
	switch v := k.PK().(type) {
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
// keys, whatever Go types hold them: for one value, [Scalar.Canonical] of
// [ScalarOf] (so the rules are [Scalar]'s):
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

// canonical is [Scalar.Canonical] of [ScalarOf](v), returning v itself
// when it is already canonical (boxing it again would allocate).
func canonical(v any) any {
	switch v.(type) {
	case nil:
		return nil
	case int64, string, float64, bool:
		return v
	}
	return ScalarOf(v).Canonical()
}
