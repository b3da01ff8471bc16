package chooser

import (
	"fmt"
	"reflect"
	"strings"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// byColumn is what every chooser that routes on the value of one column
// shares: reading the key from an object, a primary key or a statement, and
// answering with a precomputed single-shard [Target], so that routing one
// key allocates nothing. The strategy is the pick func, which maps a key to
// an index into targets. A byColumn is immutable after construction; a
// [Scheme] copies one under another column name (on) to route another model
// by the same strategy.
type byColumn struct {
	name string
	// want describes the accepted key types, for errors.
	want string
	// targets[i] is the single-shard Target of the i-th distinct shard.
	targets []Target
	// pick returns the index into targets of the shard that owns k, or an
	// error naming k. It is only called with k.Kind != kindNone.
	pick func(table *schema.Table, column string, k key) (int, error)
}

// distinct returns, for a list of shards with repeats, the index of each
// entry in the list of distinct shards, and one single-shard Target per
// distinct shard. It fails on an empty ShardID, naming the entry as what i.
func distinct(shards []identity.ShardID, what string) (index []int32, targets []Target, err error) {
	seen := make(map[identity.ShardID]int32)
	index = make([]int32, len(shards))
	for i, id := range shards {
		if id == "" {
			return nil, nil, fmt.Errorf("%s %d has the empty shard ID", what, i)
		}
		j, ok := seen[id]
		if !ok {
			j = int32(len(targets))
			seen[id] = j
			targets = append(targets, Target{shards: []identity.ShardID{id}})
		}
		index[i] = j
	}
	return index, targets, nil
}

// on returns a copy of c that routes on column: the same strategy (pick and
// targets) reading another column, as [Scheme] needs for a model whose key
// column has another name.
func (c *byColumn) on(column string) byColumn {
	d := *c
	d.name = column
	return d
}

func (c *byColumn) shardAt(i int) identity.ShardID { return c.targets[i].shards[0] }

// objectKey reads the routed column of obj, a pointer to a struct of table's
// model.
func (c *byColumn) objectKey(table *schema.Table, obj any) (key, error) {
	if table == nil {
		return key{}, fmt.Errorf("chooser: ChooseShard on column %q called with a nil table", c.name)
	}
	f, ok := table.FieldMap[c.name]
	if !ok {
		return key{}, fmt.Errorf("chooser: model %s has no column %q to route on", table.TypeName, c.name)
	}
	v := reflect.ValueOf(obj)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Type() != table.Type {
		return key{}, fmt.Errorf("chooser: %s: want a non-nil *%s, got %T", table.TypeName, table.Type, obj)
	}
	// FieldByIndexErr rather than Field.Value: Value allocates nil embedded
	// pointers on the way, and a chooser must not modify the object.
	fv, err := v.Elem().FieldByIndexErr(f.Index)
	if err != nil {
		return key{}, fmt.Errorf("chooser: %s.%s: %w", table.TypeName, c.name, err)
	}
	k := keyOfValue(fv)
	if k.Kind == kindNone {
		return key{}, badKeyError(table, c.name, errorValue(fv), c.want)
	}
	return unpadded(k, f), nil
}

// unpadded returns string key k without its trailing blanks when f is a
// char(n) column: PostgreSQL stores and returns such values blank-padded
// to n ("US" comes back "US  ") and compares them without the padding, so
// both spellings are one key and must route alike. Other columns' keys
// are routed as they are.
func unpadded(k key, f *schema.Field) key {
	if k.Kind == kindString && f != nil && strings.HasSuffix(k.S, " ") && blankPadded(f.UserSQLType) {
		k.S = strings.TrimRight(k.S, " ")
	}
	return k
}

// fieldOf returns table's field of column col, or nil.
func fieldOf(table *schema.Table, col string) *schema.Field {
	if table == nil {
		return nil
	}
	return table.FieldMap[col]
}

// blankPadded reports whether SQL type t is PostgreSQL's blank-padded
// character type: char, character, bpchar, with or without a length.
func blankPadded(t string) bool {
	t = strings.ToLower(strings.TrimSpace(t))
	if i := strings.IndexByte(t, '('); i >= 0 {
		t = strings.TrimSpace(t[:i])
	}
	return t == "char" || t == "character" || t == "bpchar"
}

// errorValue returns v's value for an error message, and nil for a nil
// pointer or interface.
func errorValue(v reflect.Value) any {
	for v.Kind() == reflect.Pointer || v.Kind() == reflect.Interface {
		if v.IsNil() {
			return nil
		}
		v = v.Elem()
	}
	if !v.IsValid() || !v.CanInterface() {
		return nil
	}
	return v.Interface()
}

// valueKey reads a key from a primary-key or criterion value.
func (c *byColumn) valueKey(table *schema.Table, x any) (key, error) {
	k := keyOf(x)
	if k.Kind == kindNone {
		return key{}, badKeyError(table, c.name, errorValue(reflect.ValueOf(x)), c.want)
	}
	if k.Kind == kindString && strings.HasSuffix(k.S, " ") {
		k = unpadded(k, fieldOf(table, c.name))
	}
	return k, nil
}

func (c *byColumn) chooseShard(table *schema.Table, obj any) (identity.ShardID, error) {
	k, err := c.objectKey(table, obj)
	if err != nil {
		return "", err
	}
	i, err := c.pick(table, c.name, k)
	if err != nil {
		return "", err
	}
	return c.shardAt(i), nil
}

// pkIndex returns the position of column among table's primary keys, or -1.
func pkIndex(table *schema.Table, column string) int {
	if table == nil {
		return -1
	}
	for i, f := range table.PKs {
		if f.Name == column {
			return i
		}
	}
	return -1
}

// chooseIdentity is exact when the column is one of the model's primary-key
// columns (the single key, or one part of a composite key); otherwise it is
// the parent's shard for a relation load (k.LoadedFrom), else AllShards.
func (c *byColumn) chooseIdentity(k Key) (Target, error) {
	i := pkIndex(k.Table, c.name)
	if i < 0 || i >= len(k.PK) {
		return loadedFrom(k.LoadedFrom), nil
	}
	kk, err := c.valueKey(k.Table, k.PK[i])
	if err != nil {
		return Target{}, err
	}
	j, err := c.pick(k.Table, c.name, kk)
	if err != nil {
		return Target{}, err
	}
	return c.targets[j], nil
}

// chooseExecute routes on the values declared on the column: the shards
// owning them in the order of the values, without repeats; when nothing is
// declared on the column, the parent's shard for a relation load
// (stmt.LoadedFrom), else AllShards; None for an empty IN list.
func (c *byColumn) chooseExecute(stmt *Statement) (Target, error) {
	if stmt == nil {
		return AllShards(), nil
	}
	values, ok := stmt.Values(c.name)
	if !ok {
		return loadedFrom(stmt.LoadedFrom), nil
	}
	if len(values) == 0 {
		return None(), nil
	}
	first := -1
	var seen []bool
	var ids []identity.ShardID
	for _, v := range values {
		k, err := c.valueKey(stmt.Table, v)
		if err != nil {
			return Target{}, err
		}
		i, err := c.pick(stmt.Table, c.name, k)
		if err != nil {
			return Target{}, err
		}
		switch {
		case first < 0:
			first = i
		case ids == nil && i == first:
			// Still one shard: the precomputed Target will do.
		default:
			if ids == nil {
				seen = make([]bool, len(c.targets))
				seen[first] = true
				ids = append(ids, c.shardAt(first))
			}
			if !seen[i] {
				seen[i] = true
				ids = append(ids, c.shardAt(i))
			}
		}
	}
	if ids == nil {
		return c.targets[first], nil
	}
	return Target{shards: ids}, nil
}

// splitValues groups values by the shard that owns them; nil, nil for any
// other column.
func (c *byColumn) splitValues(table *schema.Table, column string, values []any) (map[identity.ShardID][]any, error) {
	if column != c.name {
		return nil, nil
	}
	parts := make(map[identity.ShardID][]any)
	for _, v := range values {
		k, err := c.valueKey(table, v)
		if err != nil {
			return nil, err
		}
		i, err := c.pick(table, c.name, k)
		if err != nil {
			return nil, err
		}
		id := c.shardAt(i)
		parts[id] = append(parts[id], v)
	}
	return parts, nil
}
