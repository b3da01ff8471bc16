package chooser

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"reflect"
	"strings"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// Range is a half-open interval of keys [From, To) owned by Shard. With
// Unbounded set, To is ignored and the range holds every key from From up:
// the way to reach the largest integers and every string above From.
type Range[K cmp.Ordered] struct {
	From      K
	To        K
	Unbounded bool
	Shard     identity.ShardID
}

// String renders r as "[From, To) -> shard" or "[From, ∞) -> shard".
func (r Range[K]) String() string {
	if r.Unbounded {
		return fmt.Sprintf("[%v, ∞) -> %s", r.From, r.Shard)
	}
	return fmt.Sprintf("[%v, %v) -> %s", r.From, r.To, r.Shard)
}

// Ranges routes by which of a sorted list of non-overlapping key ranges
// holds one column's value, as range-partitioned systems do (an ID range or
// an alphabetical slice of names per shard). Gaps are allowed; a value in no
// range is an error that names it and wraps [ErrNoOpinion], so that
// First(ranges, other) can hand such values to another chooser.
//
// K is the key type; a column value of a different type converts to it when
// it can do so exactly (an int32 column with Ranges[int64], a named string
// type with Ranges[string]), and is an error otherwise.
//
// Ranges is a [ShardChooser], an [IdentityChooser] (exact when the column is
// a primary-key column, else every shard), an [ExecuteChooser] (declared
// criteria on the column pick the shards, else every shard) and a
// [Splitter]. Routing a single key allocates nothing. Ranges is immutable
// after [NewRanges] and safe for concurrent use.
type Ranges[K cmp.Ordered] struct {
	col    byColumn
	ranges []Range[K]
	shard  []int32 // range -> index into col.targets
}

var (
	_ ShardChooser    = (*Ranges[int64])(nil)
	_ IdentityChooser = (*Ranges[int64])(nil)
	_ ExecuteChooser  = (*Ranges[int64])(nil)
	_ Splitter        = (*Ranges[int64])(nil)
)

// NewRanges returns a Ranges on column. The ranges must be sorted by From
// and must not overlap (a range may end where the next begins); only the
// last may be Unbounded. It fails, naming the ranges at fault, if column is
// empty, there are no ranges, a range is empty (From >= To) or has a NaN
// bound, a range names the empty shard, or the ranges are unsorted or
// overlap. The slice is copied.
func NewRanges[K cmp.Ordered](column string, ranges ...Range[K]) (*Ranges[K], error) {
	if column == "" {
		return nil, fmt.Errorf("chooser: NewRanges: empty column name")
	}
	if len(ranges) == 0 {
		return nil, fmt.Errorf("chooser: NewRanges(%q): no ranges", column)
	}
	shards := make([]identity.ShardID, len(ranges))
	for i, r := range ranges {
		switch {
		case isNaN(r.From) || !r.Unbounded && isNaN(r.To):
			return nil, fmt.Errorf("chooser: NewRanges(%q): range %d %v has a NaN bound", column, i, r)
		case !r.Unbounded && r.From >= r.To:
			return nil, fmt.Errorf("chooser: NewRanges(%q): range %d %v is empty; want From < To", column, i, r)
		}
		if i > 0 {
			prev := ranges[i-1]
			switch {
			case r.From < prev.From:
				return nil, fmt.Errorf("chooser: NewRanges(%q): ranges are not sorted: %v comes after %v; sort them by From", column, r, prev)
			case prev.Unbounded || r.From < prev.To:
				return nil, fmt.Errorf("chooser: NewRanges(%q): range %v overlaps %v", column, r, prev)
			}
		}
		shards[i] = r.Shard
	}
	index, targets, err := distinct(shards, "range")
	if err != nil {
		return nil, fmt.Errorf("chooser: NewRanges(%q): %w", column, err)
	}
	c := &Ranges[K]{ranges: append([]Range[K](nil), ranges...), shard: index}
	c.col = byColumn{name: column, want: "a value that converts exactly to " + reflect.TypeFor[K]().String(), targets: targets, pick: c.pick}
	return c, nil
}

// isNaN reports whether x is a floating-point NaN; for other types it is
// false.
func isNaN[K cmp.Ordered](x K) bool { return x != x }

func (c *Ranges[K]) pick(table *schema.Table, column string, k key) (int, error) {
	v, ok := toOrdered[K](k)
	if !ok {
		return 0, fmt.Errorf("chooser: %s: value %v cannot be a %s key", at(table, column), k, reflect.TypeFor[K]())
	}
	i := c.find(v)
	if i >= 0 && (c.ranges[i].Unbounded || v < c.ranges[i].To) {
		return int(c.shard[i]), nil
	}
	return 0, fmt.Errorf("chooser: %s: value %v lies in no range (%s): %w", at(table, column), k, c.near(i), ErrNoOpinion)
}

// find returns the index of the last range whose From is <= v, or -1.
// It is written out rather than using sort.Search to keep it free of
// closures on the hot path.
func (c *Ranges[K]) find(v K) int {
	lo, hi := 0, len(c.ranges)
	for lo < hi {
		mid := int(uint(lo+hi) >> 1)
		if c.ranges[mid].From <= v {
			lo = mid + 1
		} else {
			hi = mid
		}
	}
	return lo - 1
}

// near describes where a value that lies after range i (-1: before all)
// falls, for errors.
func (c *Ranges[K]) near(i int) string {
	switch {
	case i < 0:
		return "below " + c.ranges[0].String()
	case i == len(c.ranges)-1:
		return "above " + c.ranges[i].String()
	}
	return "between " + c.ranges[i].String() + " and " + c.ranges[i+1].String()
}

// toOrdered converts k to K when it can do so exactly: integers to any
// integer or float type that holds them, floats to float types, strings and
// []byte to string types. reflect's setters on a local keep this free of
// allocation for every K, named types included.
func toOrdered[K cmp.Ordered](k key) (K, bool) {
	var out K
	v := reflect.ValueOf(&out).Elem()
	switch v.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		n := int64(k.N)
		switch {
		case k.Kind == kindUint && k.N > math.MaxInt64,
			k.Kind != kindInt && k.Kind != kindUint,
			v.OverflowInt(n):
			return out, false
		}
		v.SetInt(n)
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64, reflect.Uintptr:
		switch {
		case k.Kind == kindInt && int64(k.N) < 0,
			k.Kind != kindInt && k.Kind != kindUint,
			v.OverflowUint(k.N):
			return out, false
		}
		v.SetUint(k.N)
	case reflect.Float32, reflect.Float64:
		var f float64
		switch k.Kind {
		case kindFloat:
			f = math.Float64frombits(k.N)
		case kindInt:
			f = float64(int64(k.N))
		case kindUint:
			f = float64(k.N)
		default:
			return out, false
		}
		if v.OverflowFloat(f) {
			return out, false
		}
		v.SetFloat(f)
	case reflect.String:
		switch k.Kind {
		case kindString:
			v.SetString(k.S)
		case kindBytes:
			v.SetString(string(k.B))
		default:
			return out, false
		}
	default:
		return out, false
	}
	return out, true
}

// Column returns the column the chooser routes on.
func (c *Ranges[K]) Column() string { return c.col.name }

// Ranges returns a copy of the ranges, in order.
func (c *Ranges[K]) Ranges() []Range[K] { return append([]Range[K](nil), c.ranges...) }

// ChooseShard returns the shard of the range holding obj's column value. It
// fails if the model has no such column, the value is NULL or does not
// convert to K, or lies in no range (wrapping [ErrNoOpinion]).
func (c *Ranges[K]) ChooseShard(_ context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	return c.col.chooseShard(table, obj)
}

// ChooseIdentity returns the one shard owning the key when the column is a
// primary-key column of the model; otherwise the parent's shard for a relation
// load (key.LoadedFrom), else [AllShards]. A key in no
// range is an error wrapping [ErrNoOpinion].
func (c *Ranges[K]) ChooseIdentity(_ context.Context, key Key) (Target, error) {
	return c.col.chooseIdentity(key)
}

// ChooseExecute returns the shards owning the values declared on the column,
// in the order of the values and without repeats; when the statement declares
// no criterion on the column, the parent's shard for a relation load
// (stmt.LoadedFrom), else [AllShards]; [None] for an empty IN list.
// A value in no range is an error wrapping [ErrNoOpinion].
func (c *Ranges[K]) ChooseExecute(_ context.Context, stmt *Statement) (Target, error) {
	return c.col.chooseExecute(stmt)
}

// SplitValues groups values by the shard that owns them; it returns nil, nil
// for any other column.
func (c *Ranges[K]) SplitValues(_ context.Context, table *schema.Table, column string, values []any) (map[identity.ShardID][]any, error) {
	return c.col.splitValues(table, column, values)
}

// String returns "chooser.Ranges(column, [range …])".
func (c *Ranges[K]) String() string {
	parts := make([]string, len(c.ranges))
	for i, r := range c.ranges {
		parts[i] = r.String()
	}
	return fmt.Sprintf("chooser.Ranges(%s, [%s])", c.col.name, strings.Join(parts, ", "))
}
