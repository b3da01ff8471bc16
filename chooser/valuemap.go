package chooser

import (
	"context"
	"fmt"
	"math"
	"reflect"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// ValueMap routes by the value of one column through a fixed map, as
// SQLAlchemy's weather example maps continent to shard. It is a
// [ShardChooser] (the object's column value picks its shard), an
// [ExecuteChooser] (declared criteria on the column pick the shards, else
// the parent's shard for a relation load, else every shard), an
// [IdentityChooser] (exact when the column is a primary-key column of the
// model, else the parent's shard for a relation load, else every shard) and
// a [Splitter].
//
// A key matches a map entry when it has the same value in the same family
// (integers of any width and signedness, named or not, are one family;
// strings and []byte another; floats a third), so int32(7) finds the entry
// of int64(7). A value missing from the map, or of another family than K,
// is an error that names it. Routing a single key allocates nothing.
// ValueMap is immutable after [NewValueMap] and safe for concurrent use.
type ValueMap[K comparable] struct {
	col   byColumn
	index map[cacheKey]int32 // canonical key -> index into col.targets
	keys  int                // len of the map given, for String
}

var (
	_ ShardChooser    = (*ValueMap[string])(nil)
	_ IdentityChooser = (*ValueMap[string])(nil)
	_ ExecuteChooser  = (*ValueMap[string])(nil)
	_ Splitter        = (*ValueMap[string])(nil)
)

// NewValueMap returns a chooser that routes rows whose column holds a key of
// m to m[key]. The map is copied.
//
// NewValueMap panics, as a type mismatch would, when K is not an integer,
// float, string or []byte-like type (a struct key cannot be read from a
// column), when an entry maps to the empty shard ID, or when two keys of m
// are one canonical key (two float keys 0 and -0).
func NewValueMap[K comparable](column string, m map[K]identity.ShardID) *ValueMap[K] {
	kt := reflect.TypeFor[K]()
	fam := familyOf(keyOfValue(reflect.Zero(kt)).Kind)
	if fam == kindNone {
		panic(fmt.Sprintf("chooser: NewValueMap(%q): key type %s cannot be a shard key; use an integer, float or string type", column, kt))
	}
	c := &ValueMap[K]{index: make(map[cacheKey]int32, len(m)), keys: len(m)}
	seen := make(map[identity.ShardID]int32)
	for k, id := range m {
		if id == "" {
			panic(fmt.Sprintf("chooser: NewValueMap(%q): key %v maps to the empty shard ID", column, k))
		}
		ck, ok := mapKey(keyOfValue(reflect.ValueOf(k)))
		if !ok {
			panic(fmt.Sprintf("chooser: NewValueMap(%q): key %v (%s) cannot be a shard key", column, k, kt))
		}
		if _, dup := c.index[ck]; dup {
			panic(fmt.Sprintf("chooser: NewValueMap(%q): key %v appears twice once canonical", column, k))
		}
		j, ok := seen[id]
		if !ok {
			j = int32(len(c.col.targets))
			seen[id] = j
			c.col.targets = append(c.col.targets, Target{shards: []identity.ShardID{id}})
		}
		c.index[ck] = j
	}
	want := "a " + kt.String()
	pick := func(table *schema.Table, column string, k key) (int, error) {
		if familyOf(k.Kind) != fam {
			return 0, fmt.Errorf("chooser: %s: value %v cannot be a %s key", at(table, column), k, kt)
		}
		ck, _ := mapKey(k)
		j, ok := c.index[ck]
		if !ok {
			return 0, fmt.Errorf("chooser: %s: value %v maps to no shard", at(table, column), k)
		}
		return int(j), nil
	}
	c.col.name, c.col.want, c.col.pick = column, want, pick
	return c
}

// familyOf returns the family a key kind belongs to for matching: unsigned
// integers match signed ones, and []byte matches string.
func familyOf(k keyKind) keyKind {
	switch k {
	case kindUint:
		return kindInt
	case kindBytes:
		return kindString
	}
	return k
}

// mapKey is canonical extended to floats, with -0 folded into 0; false for
// NULL and NaN, which equal no key.
func mapKey(k key) (cacheKey, bool) {
	if k.Kind != kindFloat {
		return canonical(k)
	}
	f := math.Float64frombits(k.N)
	if f != f {
		return cacheKey{}, false
	}
	if f == 0 {
		f = 0 // -0 == 0 as a map key of K
	}
	return cacheKey{kind: kindFloat, n: math.Float64bits(f)}, true
}

// Column returns the column the chooser routes on.
func (c *ValueMap[K]) Column() string { return c.col.name }

// ChooseShard returns the shard mapped to obj's value of the column. It fails
// if the model has no such column or the value is NULL, of another family
// than K, or not in the map.
func (c *ValueMap[K]) ChooseShard(_ context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	return c.col.chooseShard(table, obj)
}

// ChooseIdentity maps the key when the column is a primary-key column of
// the model; otherwise it returns the parent's shard for a relation load
// (key.LoadedFrom), else [AllShards].
func (c *ValueMap[K]) ChooseIdentity(_ context.Context, key Key) (Target, error) {
	return c.col.chooseIdentity(key)
}

// ChooseExecute returns the shards of the values declared on the column, in
// the order of the values and without repeats. A statement that declares no
// criterion on the column goes to the parent's shard when it loads a
// relation (stmt.LoadedFrom), else to [AllShards]; an empty IN list goes to
// [None].
func (c *ValueMap[K]) ChooseExecute(_ context.Context, stmt *Statement) (Target, error) {
	return c.col.chooseExecute(stmt)
}

// SplitValues groups values by the shard they map to; it returns nil, nil for
// any other column.
func (c *ValueMap[K]) SplitValues(_ context.Context, table *schema.Table, column string, values []any) (map[identity.ShardID][]any, error) {
	return c.col.splitValues(table, column, values)
}

// String returns "chooser.ValueMap(column, N keys)".
func (c *ValueMap[K]) String() string {
	return fmt.Sprintf("chooser.ValueMap(%s, %d keys)", c.col.name, c.keys)
}
