package chooser

import (
	"context"
	"fmt"
	"reflect"
	"slices"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// ValueMap routes by the value of one column through a fixed map, as
// SQLAlchemy's weather example maps continent to shard. It is a
// [ShardChooser] (the object's column value picks its shard), an
// [ExecuteChooser] (declared criteria on the column pick the shards, else
// the parent's shard for a relation load, else every shard), an
// [IdentityChooser] (exact when the column is the model's only primary key,
// else the parent's shard for a relation load, else every shard) and a
// [Splitter].
//
// A value missing from the map is an error that names it. ValueMap is
// immutable after [NewValueMap] and safe for concurrent use.
type ValueMap[K comparable] struct {
	column string
	shards map[K]identity.ShardID
}

var (
	_ ShardChooser    = (*ValueMap[string])(nil)
	_ IdentityChooser = (*ValueMap[string])(nil)
	_ ExecuteChooser  = (*ValueMap[string])(nil)
	_ Splitter        = (*ValueMap[string])(nil)
)

// NewValueMap returns a chooser that routes rows whose column holds a key of
// m to m[key]. The map is copied.
func NewValueMap[K comparable](column string, m map[K]identity.ShardID) *ValueMap[K] {
	c := &ValueMap[K]{column: column, shards: make(map[K]identity.ShardID, len(m))}
	for k, v := range m {
		c.shards[k] = v
	}
	return c
}

// Column returns the column the chooser routes on.
func (c *ValueMap[K]) Column() string { return c.column }

// ChooseShard returns the shard mapped to obj's value of the column. It fails
// if the model has no such column or the value is not in the map.
func (c *ValueMap[K]) ChooseShard(_ context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	f, ok := table.FieldMap[c.column]
	if !ok {
		return "", fmt.Errorf("chooser: model %s has no column %q to route on", table.TypeName, c.column)
	}
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() {
		return "", fmt.Errorf("chooser: %s: want a non-nil pointer to the model, got %T", table.TypeName, obj)
	}
	return c.lookup(table, f.Value(v.Elem()))
}

// ChooseIdentity maps the key when the column is the model's only primary
// key; otherwise it returns the parent's shard for a relation load
// (key.LoadedFrom), else [AllShards].
func (c *ValueMap[K]) ChooseIdentity(_ context.Context, key Key) (Target, error) {
	if len(key.Table.PKs) != 1 || key.Table.PKs[0].Name != c.column || len(key.PK) != 1 {
		return loadedFrom(key.LoadedFrom), nil
	}
	id, err := c.lookup(key.Table, reflect.ValueOf(key.PK[0]))
	if err != nil {
		return Target{}, err
	}
	return Shards(id), nil
}

// ChooseExecute returns the shards of the values declared on the column, in
// the order of the values and without repeats. A statement that declares no
// criterion on the column goes to the parent's shard when it loads a
// relation (stmt.LoadedFrom), else to [AllShards].
func (c *ValueMap[K]) ChooseExecute(_ context.Context, stmt *Statement) (Target, error) {
	values, ok := stmt.Values(c.column)
	if !ok {
		return loadedFrom(stmt.LoadedFrom), nil
	}
	ids := make([]identity.ShardID, 0, len(values))
	for _, v := range values {
		id, err := c.lookup(stmt.Table, reflect.ValueOf(v))
		if err != nil {
			return Target{}, err
		}
		if !slices.Contains(ids, id) {
			ids = append(ids, id)
		}
	}
	return Target{shards: ids}, nil
}

// SplitValues groups values by the shard they map to; it returns nil, nil for
// any other column.
func (c *ValueMap[K]) SplitValues(_ context.Context, table *schema.Table, column string, values []any) (map[identity.ShardID][]any, error) {
	if column != c.column {
		return nil, nil
	}
	parts := make(map[identity.ShardID][]any)
	for _, v := range values {
		id, err := c.lookup(table, reflect.ValueOf(v))
		if err != nil {
			return nil, err
		}
		parts[id] = append(parts[id], v)
	}
	return parts, nil
}

func (c *ValueMap[K]) lookup(table *schema.Table, v reflect.Value) (identity.ShardID, error) {
	k, ok := asKey[K](v)
	if !ok {
		var got any
		if v.IsValid() {
			got = v.Interface()
		}
		return "", fmt.Errorf("chooser: %s.%s: value %#v (%T) cannot be a %s key",
			table.TypeName, c.column, got, got, reflect.TypeFor[K]())
	}
	id, ok := c.shards[k]
	if !ok {
		return "", fmt.Errorf("chooser: %s.%s: value %v maps to no shard", table.TypeName, c.column, k)
	}
	return id, nil
}

// asKey converts v to K, following pointers and converting between named
// types that share an underlying type (type Continent string -> string).
func asKey[K comparable](v reflect.Value) (K, bool) {
	var zero K
	for v.IsValid() && v.Kind() == reflect.Pointer {
		if v.IsNil() {
			return zero, false
		}
		v = v.Elem()
	}
	if !v.IsValid() {
		return zero, false
	}
	kt := reflect.TypeFor[K]()
	if v.Type() == kt {
		return v.Interface().(K), true
	}
	if v.Type().ConvertibleTo(kt) && v.Kind() == kt.Kind() {
		return v.Convert(kt).Interface().(K), true
	}
	return zero, false
}
