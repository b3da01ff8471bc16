package planner

import (
	"cmp"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/internal/numeric"
)

// Func is an aggregate function.
type Func uint8

// The aggregate functions the merge combines exactly.
const (
	Count Func = iota + 1 // count(*) when the column is ""
	Sum
	Min
	Max
	Avg
)

var funcNames = [...]string{Count: "count", Sum: "sum", Min: "min", Max: "max", Avg: "avg"}

// String returns the function's SQL name ("count").
func (f Func) String() string {
	if int(f) < len(funcNames) && funcNames[f] != "" {
		return funcNames[f]
	}
	return fmt.Sprintf("Func(%d)", uint8(f))
}

// Aggregate is one aggregate of a grouped select: its function, column (""
// for count(*)) and output name (Alias; "" for the default).
type Aggregate struct {
	Func   Func
	Column string
	Alias  string
}

// Name returns the aggregate's output column: Alias, or the function name
// and column joined by "_" ("sum_temperature").
func (a Aggregate) Name() string {
	if a.Alias != "" {
		return a.Alias
	}
	return a.Func.String() + "_" + a.Column
}

// Having keeps the merged groups whose output column Name compares to
// Value with Op (=, <>, !=, <, <=, >, >=). Value is not nil and holds no
// pointer: the caller follows pointers and refuses nil (a comparison with
// NULL is never true).
type Having struct {
	Name, Op string
	Value    any
}

// having is a Having checked against the plan.
type having struct {
	Having
	col  int // the output column
	want any // Value as the merge holds the column's values
}

// havingKind is the family of values HavingAgg compares a column of type
// t with: numbers (kindFloat), text, bool, time, or none (kindOther).
func havingKind(t Type) kind {
	switch t {
	case TypeInt, TypeUint, TypeFloat, TypeNumeric:
		return kindFloat
	case TypeText, TypeBpchar:
		return kindText
	case TypeBool:
		return kindBool
	case TypeTime:
		return kindTime
	}
	return kindOther
}

// havingValue converts h's value to the form the merge holds values of
// kind k in (int64 or *big.Int, float64, time.Time, string, bool), or says
// why it cannot be compared with them.
func havingValue(h Having, k kind) (any, error) {
	rv := reflect.ValueOf(h.Value)
	vk := kindOf(rv.Type())
	number := func(k kind) bool { return k == kindInt || k == kindUint || k == kindFloat }
	switch {
	case number(k) && vk == kindInt:
		return rv.Int(), nil
	case number(k) && vk == kindUint:
		if u := rv.Uint(); u > math.MaxInt64 {
			return new(big.Int).SetUint64(u), nil
		}
		return int64(rv.Uint()), nil
	case number(k) && vk == kindFloat:
		return rv.Float(), nil
	case k == kindTime && vk == kindTime:
		return rv.Interface(), nil
	case k == kindText && vk == kindText:
		if h.Op != "=" && h.Op != "<>" && h.Op != "!=" {
			return nil, unsupported("HavingAgg(%q, %q, %q): PostgreSQL orders text by the column's collation, "+
				"which the merge cannot reproduce; only = and <> compare text", h.Name, h.Op, h.Value)
		}
		return rv.String(), nil
	case k == kindBool && vk == kindBool:
		return rv.Bool(), nil
	case k == kindOther:
		return nil, unsupported("HavingAgg(%q): the column's values cannot be compared in Go", h.Name)
	}
	want := map[kind]string{kindInt: "a number", kindUint: "a number", kindFloat: "a number",
		kindTime: "a time.Time", kindText: "a string", kindBool: "a bool"}[k]
	return nil, invalid("HavingAgg(%q, %q, %v): the value is a %T; the column wants %s",
		h.Name, h.Op, h.Value, h.Value, want)
}

// Partial is one column a shard computes for the plan: a Bun query
// expression and its arguments.
type Partial struct {
	SQL  string
	Args []any
}

// Grouped is the plan of a grouped select (GroupBy, Aggregate, HavingAgg
// and an Order of output columns): what each shard computes (Partials,
// grouped by GroupFields) and how [Grouped.Merge] combines the shards'
// partial rows into what one database would return.
type Grouped struct {
	GroupFields []*schema.Field
	Partials    []Partial
	Names       []string // output names: group columns, then aggregates

	aggs       []Aggregate
	aggFields  []*schema.Field // nil for count(*)
	groupTypes []Type          // per group column: how its values compare
	intSum     []bool          // per aggregate: sum/avg of an integer column
	decimal    []bool          // per aggregate: sum/avg/min/max of a numeric column
	order      []outOrder
	having     []having
}

type outOrder struct {
	col        int
	desc       bool
	nullsFirst bool
}

// NewGrouped plans a grouped select of the model with table t: GROUP BY the
// columns groupBy, computing aggs, keeping the groups conds keep, in the
// order of the terms order (output columns, optionally COLLATE "C",
// ASC/DESC, NULLS FIRST/LAST). A column the model lacks, two outputs of one
// name, a Having on no output or with a value of the wrong type fail with
// an *Error of Fault Invalid; a column the merge cannot group, sum or
// compare exactly (jsonb, text ordered without COLLATE "C") with Fault
// Unsupported. Every error names the model or column at fault.
func NewGrouped(t *schema.Table, groupBy []string, aggs []Aggregate, conds []Having, order []string) (*Grouped, error) {
	gp := &Grouped{aggs: aggs}
	for _, c := range groupBy {
		f, ok := t.FieldMap[c]
		if !ok {
			return nil, invalid("GroupBy: model %s has no column %q", t.TypeName, c)
		}
		gt := SQLClass(f.DiscoveredSQLType)
		if gt == TypeOther {
			return nil, unsupported("GroupBy(%s): the merge cannot tell which values of SQL type %s PostgreSQL "+
				"groups together; group on one shard (pin it)", f.Name, f.DiscoveredSQLType)
		}
		gp.GroupFields = append(gp.GroupFields, f)
		gp.groupTypes = append(gp.groupTypes, gt)
		gp.Names = append(gp.Names, f.Name)
		gp.Partials = append(gp.Partials, Partial{"?TableAlias.?", []any{schema.Ident(f.Name)}})
	}
	for _, a := range aggs {
		var f *schema.Field
		if a.Column != "" {
			var ok bool
			if f, ok = t.FieldMap[a.Column]; !ok {
				return nil, invalid("%s(%s): model %s has no column %q", a.Func, a.Column, t.TypeName, a.Column)
			}
		} else if a.Func != Count {
			return nil, invalid("%s needs a column", a.Func)
		}
		col := []any{schema.Ident(a.Column)}
		k := kindOther
		if f != nil {
			k = kindOf(f.IndirectType)
		}
		isDec := f != nil && SQLClass(f.DiscoveredSQLType) == TypeNumeric && a.Func != Count
		isInt := (k == kindInt || k == kindUint) && !isDec
		switch a.Func {
		case Count:
			if f == nil {
				gp.Partials = append(gp.Partials, Partial{"count(*)", nil})
			} else {
				gp.Partials = append(gp.Partials, Partial{"count(?TableAlias.?)", col})
			}
		case Sum, Avg:
			switch {
			case isInt || isDec:
				gp.Partials = append(gp.Partials, Partial{"sum(?TableAlias.?)::text", col})
			case k == kindFloat:
				gp.Partials = append(gp.Partials, Partial{"sum(?TableAlias.?)::float8", col})
			default:
				return nil, unsupported("%s(%s): not a numeric column (%s)", a.Func, a.Column, f.IndirectType)
			}
			if a.Func == Avg {
				gp.Partials = append(gp.Partials, Partial{"count(?TableAlias.?)", col})
			}
		case Min, Max:
			if !isDec && k != kindInt && k != kindUint && k != kindFloat && k != kindTime {
				return nil, unsupported("%s(%s): min and max merge numbers and times across shards; "+
					"%s is not one (text would need the column's collation)", a.Func, a.Column, f.IndirectType)
			}
			if isDec {
				gp.Partials = append(gp.Partials, Partial{a.Func.String() + "(?TableAlias.?)::text", col})
			} else {
				gp.Partials = append(gp.Partials, Partial{a.Func.String() + "(?TableAlias.?)", col})
			}
		default:
			return nil, invalid("aggregate %s of column %q", a.Func, a.Column)
		}
		gp.aggFields = append(gp.aggFields, f)
		gp.intSum = append(gp.intSum, isInt)
		gp.decimal = append(gp.decimal, isDec)
		gp.Names = append(gp.Names, a.Name())
	}
	for i, name := range gp.Names {
		if slices.Contains(gp.Names[:i], name) {
			return nil, invalid("%s: two output columns are named %q; name aggregates apart with As", t.TypeName, name)
		}
	}
	for _, hv := range conds {
		h := having{Having: hv, col: slices.Index(gp.Names, hv.Name)}
		if h.col < 0 {
			return nil, invalid("HavingAgg(%q): not an output column (have %v)", h.Name, gp.Names)
		}
		var k kind
		if h.col < len(gp.GroupFields) {
			k = havingKind(gp.groupTypes[h.col])
		} else {
			i := h.col - len(gp.GroupFields)
			switch aggs[i].Func {
			case Count, Avg:
				k = kindFloat // a number
			default: // sum, min, max: the column's class (checked above)
				k = havingKind(SQLClass(gp.aggFields[i].DiscoveredSQLType))
			}
		}
		var err error
		if h.want, err = havingValue(h.Having, k); err != nil {
			return nil, err
		}
		gp.having = append(gp.having, h)
	}
	for _, spec := range order {
		o, err := gp.parseOutOrder(spec)
		if err != nil {
			return nil, err
		}
		gp.order = append(gp.order, o)
	}
	return gp, nil
}

func (gp *Grouped) parseOutOrder(spec string) (outOrder, error) {
	words := strings.Fields(spec)
	bad := unsupported("ORDER BY %q of a grouped select: name an output column (%v), optionally ASC/DESC and NULLS FIRST/LAST",
		spec, gp.Names)
	if len(words) == 0 {
		return outOrder{}, bad
	}
	col := slices.Index(gp.Names, words[0])
	if col < 0 {
		return outOrder{}, bad
	}
	o := outOrder{col: col}
	rest := words[1:]
	byteOrder := false
	if len(rest) >= 2 && strings.EqualFold(rest[0], "COLLATE") && (rest[1] == `"C"` || rest[1] == `"POSIX"`) {
		byteOrder, rest = true, rest[2:]
	}
	switch strings.ToUpper(strings.Join(rest, " ")) {
	case "", "ASC", "ASC NULLS LAST", "NULLS LAST":
	case "ASC NULLS FIRST", "NULLS FIRST":
		o.nullsFirst = true
	case "DESC", "DESC NULLS FIRST":
		o.desc, o.nullsFirst = true, true
	case "DESC NULLS LAST":
		o.desc = true
	default:
		return outOrder{}, bad
	}
	if col < len(gp.GroupFields) && (gp.groupTypes[col] == TypeText || gp.groupTypes[col] == TypeBpchar) && !byteOrder {
		return outOrder{}, unsupported("ORDER BY %s: text is ordered by collation in PostgreSQL; write `%s COLLATE \"C\"` "+
			"for byte order", words[0], words[0])
	}
	return o, nil
}

// group is one merged group: the output values, in Names order, with
// sums and counts kept apart for averages until the end.
type group struct {
	vals []any
	cnt  []int64 // per aggregate: the count behind an average
}

// Merge combines the shards' partial rows (parts[i] holds shard i's rows,
// each with one value per Partial, as the driver scanned them) per group,
// then applies the Having conditions, the order and the window: offset rows
// skipped, at most limit kept (0: no limit). The rows it returns hold one
// value per output column (Names), in the merge's own representation;
// [OutValue] turns a value into what a caller receives. It modifies the
// rows of parts. A partial value the driver should never return (numeric
// text that is no number, a type no partial has) is an error naming the
// output column.
func (gp *Grouped) Merge(parts [][][]any, offset, limit int) ([][]any, error) {
	ng := len(gp.GroupFields)
	na := len(gp.aggs)
	total := 0
	for _, rows := range parts {
		total += len(rows)
	}
	// Sized for the worst case (every row its own group), so the index and
	// the group slab never grow while merging.
	index := make(map[string]*group, total)
	groups := make([]*group, 0, total)
	slab := make([]group, total)
	vals := make([]any, total*len(gp.Names))
	cnts := make([]int64, total*na)
	var key []byte
	for _, rows := range parts {
		for _, row := range rows {
			key = key[:0]
			for j, v := range row[:ng] {
				v, err := groupValue(gp.groupTypes[j], v)
				if err != nil {
					return nil, fmt.Errorf("GroupBy(%s): %w", gp.Names[j], err)
				}
				row[j] = v
				key = appendKey(key, v)
			}
			g := index[string(key)] // no allocation for the lookup
			if g == nil {
				n := len(groups)
				g = &slab[n]
				g.vals = vals[n*len(gp.Names) : (n+1)*len(gp.Names) : (n+1)*len(gp.Names)]
				g.cnt = cnts[n*na : (n+1)*na : (n+1)*na]
				copy(g.vals, row[:ng])
				index[string(key)] = g
				groups = append(groups, g)
			}
			col := ng
			for i, a := range gp.aggs {
				v, err := normalize(row[col], gp.decimal[i])
				if err != nil {
					return nil, fmt.Errorf("%s: %w", gp.Names[ng+i], err)
				}
				switch a.Func {
				case Count:
					g.vals[ng+i] = addInt(g.vals[ng+i], v)
				case Sum:
					g.vals[ng+i] = addNum(g.vals[ng+i], v)
				case Avg:
					g.vals[ng+i] = addNum(g.vals[ng+i], v)
					col++
					c, _ := row[col].(int64)
					g.cnt[i] += c
				case Min, Max:
					cur := g.vals[ng+i]
					if v != nil && (cur == nil || (compareAny(v, cur) < 0) == (a.Func == Min)) {
						g.vals[ng+i] = v
					}
				}
				col++
			}
		}
	}
	// Without GROUP BY an aggregate select has exactly one row, even over
	// no rows at all (count 0, other aggregates NULL).
	if ng == 0 && len(groups) == 0 {
		groups = append(groups, &group{vals: make([]any, len(gp.Names)), cnt: make([]int64, na)})
	}
	out := make([][]any, 0, len(groups))
	for _, g := range groups {
		for i, a := range gp.aggs {
			switch {
			case a.Func == Count && g.vals[ng+i] == nil:
				g.vals[ng+i] = int64(0)
			case a.Func == Avg && g.cnt[i] > 0 && gp.decimal[i]:
				g.vals[ng+i] = numeric.Avg(g.vals[ng+i].(numeric.Num), g.cnt[i])
			case a.Func == Avg && g.cnt[i] > 0 && gp.intSum[i]:
				// PostgreSQL's avg of an integer column is a numeric too.
				g.vals[ng+i] = numeric.Avg(numeric.FromInt(g.vals[ng+i].(*big.Int)), g.cnt[i])
			case a.Func == Avg && g.cnt[i] > 0:
				g.vals[ng+i] = toFloat(g.vals[ng+i]) / float64(g.cnt[i])
			case a.Func == Avg:
				g.vals[ng+i] = nil
			case a.Func == Sum && gp.intSum[i] && g.vals[ng+i] != nil:
				if b := g.vals[ng+i].(*big.Int); b.IsInt64() {
					g.vals[ng+i] = b.Int64()
				}
			}
		}
		if keep(gp.having, g.vals) {
			out = append(out, g.vals)
		}
	}
	if len(gp.order) > 0 {
		slices.SortStableFunc(out, func(a, b []any) int {
			for _, o := range gp.order {
				if c := compareOut(o, a[o.col], b[o.col]); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	lo := min(max(offset, 0), len(out))
	hi := len(out)
	if limit > 0 {
		hi = min(hi, lo+limit)
	}
	return out[lo:hi], nil
}

// appendKey appends an encoding of a group-column value that is equal for
// equal values and distinct across types (a tag byte, then the value).
func appendKey(b []byte, v any) []byte {
	switch x := v.(type) {
	case nil:
		return append(b, 'n')
	case int64:
		return strconv.AppendInt(append(b, 'i'), x, 10)
	case float64:
		if x == 0 {
			x = 0 // -0 groups with 0, as in SQL
		}
		return strconv.AppendUint(append(b, 'f'), math.Float64bits(x), 16)
	case bool:
		return strconv.AppendBool(append(b, 'b'), x)
	case string:
		b = strconv.AppendInt(append(b, 's'), int64(len(x)), 10)
		return append(append(b, ':'), x...)
	case []byte:
		b = strconv.AppendInt(append(b, 'y'), int64(len(x)), 10)
		return append(append(b, ':'), x...)
	case time.Time:
		return x.UTC().AppendFormat(append(b, 't'), time.RFC3339Nano)
	case numeric.Num:
		k := x.Key()
		b = strconv.AppendInt(append(b, 'd'), int64(len(k)), 10)
		return append(append(b, ':'), k...)
	case bpchar:
		x = bpchar(strings.TrimRight(string(x), " "))
		b = strconv.AppendInt(append(b, 'c'), int64(len(x)), 10)
		return append(append(b, ':'), x...)
	}
	return fmt.Appendf(append(b, '?'), "%T:%v\x00", v, v)
}

// normalize turns a partial value from the driver into int64, float64,
// *big.Int (integer sums, sent as text), numeric.Num (the aggregates of a
// numeric column, when dec), time.Time, string, bool or nil.
func normalize(v any, dec bool) (any, error) {
	switch x := v.(type) {
	case []byte:
		return normalize(string(x), dec)
	case string:
		if dec {
			n, ok := numeric.Parse(x)
			if !ok {
				return nil, fmt.Errorf("partial aggregate %q is no numeric", x)
			}
			return n, nil
		}
		if b, ok := new(big.Int).SetString(x, 10); ok {
			return b, nil
		}
		return x, nil
	case int64, float64, time.Time, bool, nil:
		return x, nil
	}
	return nil, fmt.Errorf("unexpected partial aggregate of type %T", v)
}

func addInt(acc, v any) any {
	a, _ := acc.(int64)
	b, _ := v.(int64)
	return a + b
}

func addNum(acc, v any) any {
	switch {
	case v == nil:
		return acc
	case acc == nil:
		if b, ok := v.(*big.Int); ok {
			return new(big.Int).Set(b)
		}
		return v
	}
	switch a := acc.(type) {
	case numeric.Num:
		if b, ok := v.(numeric.Num); ok {
			return numeric.Add(a, b)
		}
	case *big.Int:
		return a.Add(a, v.(*big.Int))
	case float64:
		return a + v.(float64)
	}
	return acc
}

func toFloat(v any) float64 {
	switch x := v.(type) {
	case *big.Int:
		f, _ := new(big.Float).SetInt(x).Float64()
		return f
	case int64:
		return float64(x)
	case float64:
		return x
	}
	return 0
}

// compareIntFloat compares an integer with a float64 by their exact values,
// as PostgreSQL compares numbers: rounding the integer to a float64 would make
// 2^53+1 equal 2^53. NaN is above every number, as in PostgreSQL.
func compareIntFloat(x *big.Int, f float64) int {
	switch {
	case math.IsNaN(f), math.IsInf(f, 1):
		return -1
	case math.IsInf(f, -1):
		return 1
	}
	// SetInt with precision 0 takes x's bit length: exact, as is a float64.
	return new(big.Float).SetInt(x).Cmp(big.NewFloat(f))
}

// compareAny orders two non-NULL values of the same column (and, for
// HavingAgg, a column value and the caller's value).
func compareAny(a, b any) int {
	switch x := a.(type) {
	case numeric.Num:
		if y, ok := toNum(b); ok {
			return numeric.Compare(x, y)
		}
		return 0
	case bpchar:
		switch y := b.(type) {
		case bpchar:
			return compareBpchar(string(x), string(y))
		case string:
			return compareBpchar(string(x), y)
		}
		return 0
	case int64:
		switch y := b.(type) {
		case int64:
			return cmp.Compare(x, y)
		case *big.Int:
			return big.NewInt(x).Cmp(y)
		case float64:
			return compareIntFloat(big.NewInt(x), y)
		}
		return compareFloat(float64(x), toFloat(b))
	case *big.Int:
		switch y := b.(type) {
		case int64:
			return x.Cmp(big.NewInt(y))
		case *big.Int:
			return x.Cmp(y)
		case float64:
			return compareIntFloat(x, y)
		}
	case float64:
		switch y := b.(type) {
		case int64:
			return -compareIntFloat(big.NewInt(y), x)
		case *big.Int:
			return -compareIntFloat(y, x)
		}
		return compareFloat(x, toFloat(b))
	case time.Time:
		return x.Compare(b.(time.Time))
	case string:
		return strings.Compare(x, b.(string))
	case bool:
		return cmp.Compare(b2i(x), b2i(b.(bool)))
	}
	return 0
}

func compareOut(o outOrder, a, b any) int {
	switch {
	case a == nil && b == nil:
		return 0
	case a == nil:
		if o.nullsFirst {
			return -1
		}
		return 1
	case b == nil:
		if o.nullsFirst {
			return 1
		}
		return -1
	}
	c := compareAny(a, b)
	if o.desc {
		return -c
	}
	return c
}

func keep(conds []having, vals []any) bool {
	for _, h := range conds {
		v := vals[h.col]
		if v == nil {
			return false // a comparison with NULL is never true
		}
		c := compareAny(v, h.want)
		ok := false
		switch h.Op {
		case "=":
			ok = c == 0
		case "<>", "!=":
			ok = c != 0
		case "<":
			ok = c < 0
		case "<=":
			ok = c <= 0
		case ">":
			ok = c > 0
		case ">=":
			ok = c >= 0
		}
		if !ok {
			return false
		}
	}
	return true
}

// bpchar is a char(n) group value: compared and keyed without its trailing
// spaces, returned as PostgreSQL sent it.
type bpchar string

// groupValue turns a group column's value from the driver into the value
// the merge keys and compares: numeric.Num for numeric (1 and 1.00 are one
// group), bpchar for char(n), string for other text.
func groupValue(t Type, v any) (any, error) {
	var s string
	switch x := v.(type) {
	case []byte:
		s = string(x)
	case string:
		s = x
	default:
		return v, nil
	}
	switch t {
	case TypeNumeric:
		n, ok := numeric.Parse(s)
		if !ok {
			return nil, fmt.Errorf("value %q is no numeric", s)
		}
		return n, nil
	case TypeBpchar:
		return bpchar(s), nil
	case TypeBytes:
		return v, nil
	}
	return s, nil
}

// toNum converts a value to compare with a numeric: a numeric, an integer,
// a float (by its shortest decimal text, which is what Bun sends for it in
// SQL) or numeric text.
func toNum(v any) (numeric.Num, bool) {
	switch x := v.(type) {
	case numeric.Num:
		return x, true
	case int64:
		return numeric.FromInt(big.NewInt(x)), true
	case *big.Int:
		return numeric.FromInt(x), true
	case float64:
		return numeric.Parse(strconv.FormatFloat(x, 'g', -1, 64))
	case string:
		return numeric.Parse(x)
	case []byte:
		return numeric.Parse(string(x))
	}
	return numeric.Num{}, false
}

// OutValue is a merged value as the caller receives it: numbers the merge
// held exactly become their text, char(n) a string again.
func OutValue(v any) any {
	switch x := v.(type) {
	case *big.Int:
		return x.String()
	case numeric.Num:
		return x.String()
	case bpchar:
		return string(x)
	}
	return v
}
