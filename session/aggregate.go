package session

import (
	"cmp"
	"context"
	"fmt"
	"math"
	"math/big"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/internal/numeric"
)

type aggFn uint8

const (
	aggCount aggFn = iota + 1 // count(*) when column is ""
	aggSum
	aggMin
	aggMax
	aggAvg
)

var aggNames = [...]string{aggCount: "count", aggSum: "sum", aggMin: "min", aggMax: "max", aggAvg: "avg"}

// Aggregate is one aggregate of a grouped select: its function, column and
// output name. Build it with [CountAll], [Count], [Sum], [Min], [Max] or
// [Avg], and name it with As. Aggregates are merged across shards exactly:
// counts and sums add up, min and max compare, and Avg is computed from the
// summed sums and counts (never an average of averages).
type Aggregate struct {
	fn     aggFn
	column string
	alias  string
}

// CountAll is count(*), named "count" unless renamed with As.
func CountAll() Aggregate { return Aggregate{fn: aggCount, alias: "count"} }

// Count is count(column): the non-NULL values.
func Count(column string) Aggregate { return Aggregate{fn: aggCount, column: column} }

// Sum is sum(column) of a number column: exact for integers (summed as
// big integers) and for SQL numeric/decimal columns whatever their Go type
// (summed as decimals, rendered as PostgreSQL prints the sum: "4.00"),
// float64 addition for float columns (whose last bits may differ from one
// database's sum, which adds in another order). Other columns fail with
// ErrUnsupported.
func Sum(column string) Aggregate { return Aggregate{fn: aggSum, column: column} }

// Min is min(column) of a number (numeric compared exactly, NaN above
// every number) or time column. Text fails with ErrUnsupported, since its
// order depends on the collation.
func Min(column string) Aggregate { return Aggregate{fn: aggMin, column: column} }

// Max is max(column), for the columns Min takes.
func Max(column string) Aggregate { return Aggregate{fn: aggMax, column: column} }

// Avg is avg(column) of a number column. Of an integer or SQL
// numeric/decimal column it is exact, as PostgreSQL's avg returns a numeric
// there: the merged sum divided by the merged count, rounded to the same
// scale, as numeric text ("1.5000000000000000"; a float64 or string field
// scans it). Of a float column it is a float64.
func Avg(column string) Aggregate { return Aggregate{fn: aggAvg, column: column} }

// As names the aggregate's output column. The default is the function name
// and column joined by "_" ("sum_temperature").
func (a Aggregate) As(alias string) Aggregate { a.alias = alias; return a }

func (a Aggregate) name() string {
	if a.alias != "" {
		return a.alias
	}
	return aggNames[a.fn] + "_" + a.column
}

// GroupBy groups by model columns; the groups of every shard are merged into
// one result. With no Aggregate it gives the distinct values of the columns
// across shards (SELECT DISTINCT). Read the result with Scan(ctx, &rows),
// where rows is a slice of structs whose fields are named like the output
// columns (Bun naming: LocationID for location_id) or a slice of
// map[string]any.
func (q *SelectQuery) GroupBy(columns ...string) *SelectQuery {
	q.groupBy = append(q.groupBy, columns...)
	q.aggregating = true
	return q
}

// Aggregate adds aggregates to compute per group (or over all rows, without
// GroupBy).
func (q *SelectQuery) Aggregate(aggs ...Aggregate) *SelectQuery {
	q.aggs = append(q.aggs, aggs...)
	q.aggregating = true
	return q
}

// HavingAgg keeps the merged groups whose output column name compares to
// value with op (=, <>, !=, <, <=, >, >=). Unlike SQL's HAVING, which would
// see one shard's partial groups, it runs after the merge; neither name,
// op nor value is written into SQL.
//
// value must suit the column: a Go integer or float for a count, a sum, an
// average, or a min, max or group column of numbers; a time.Time for times;
// a string for text (= and <> only: PostgreSQL orders text by collation);
// a bool for booleans. Pointers are followed. A nil value, another op, an
// unknown name or a value of another type fails the statement with
// ErrInvalidArgument.
func (q *SelectQuery) HavingAgg(name, op string, value any) *SelectQuery {
	switch op {
	case "=", "<>", "!=", "<", "<=", ">", ">=":
	default:
		return q.fail(fmt.Errorf("%w: HavingAgg(%q, %q): op must be one of = <> != < <= > >=", ErrInvalidArgument, name, op))
	}
	rv := reflect.ValueOf(value)
	for rv.Kind() == reflect.Pointer && !rv.IsNil() {
		rv = rv.Elem()
	}
	if !rv.IsValid() || rv.Kind() == reflect.Pointer {
		return q.fail(fmt.Errorf("%w: HavingAgg(%q, %q, nil): compare with a value; a comparison with NULL is never true",
			ErrInvalidArgument, name, op))
	}
	q.having = append(q.having, havingCond{name: name, op: op, value: rv.Interface()})
	return q
}

type havingCond struct {
	name, op string
	value    any
	col      int // set by aggPlan: the output column
	want     any // set by aggPlan: value as the merge holds the column's values
}

// havingKind is the family of values HavingAgg compares a column of class
// t with: numbers (kindFloat), text, bool, time, or none (kindOther).
func havingKind(t colType) valueKind {
	switch t {
	case ctInt, ctUint, ctFloat, ctNumeric:
		return kindFloat
	case ctText, ctBpchar:
		return kindText
	case ctBool:
		return kindBool
	case ctTime:
		return kindTime
	}
	return kindOther
}

// havingValue converts h's value to the form the merge holds values of
// kind k in (int64 or *big.Int, float64, time.Time, string, bool), or says
// why it cannot be compared with them.
func havingValue(h havingCond, k valueKind) (any, error) {
	rv := reflect.ValueOf(h.value)
	vk := kindOf(rv.Type())
	numeric := func(k valueKind) bool { return k == kindInt || k == kindUint || k == kindFloat }
	switch {
	case numeric(k) && vk == kindInt:
		return rv.Int(), nil
	case numeric(k) && vk == kindUint:
		if u := rv.Uint(); u > math.MaxInt64 {
			return new(big.Int).SetUint64(u), nil
		}
		return int64(rv.Uint()), nil
	case numeric(k) && vk == kindFloat:
		return rv.Float(), nil
	case k == kindTime && vk == kindTime:
		return rv.Interface(), nil
	case k == kindText && vk == kindText:
		if h.op != "=" && h.op != "<>" && h.op != "!=" {
			return nil, fmt.Errorf("%w: HavingAgg(%q, %q, %q): PostgreSQL orders text by the column's collation, "+
				"which the merge cannot reproduce; only = and <> compare text", ErrUnsupported, h.name, h.op, h.value)
		}
		return rv.String(), nil
	case k == kindBool && vk == kindBool:
		return rv.Bool(), nil
	case k == kindOther:
		return nil, fmt.Errorf("%w: HavingAgg(%q): the column's values cannot be compared in Go", ErrUnsupported, h.name)
	}
	want := map[valueKind]string{kindInt: "a number", kindUint: "a number", kindFloat: "a number",
		kindTime: "a time.Time", kindText: "a string", kindBool: "a bool"}[k]
	return nil, fmt.Errorf("%w: HavingAgg(%q, %q, %v): the value is a %T; the column wants %s",
		ErrInvalidArgument, h.name, h.op, h.value, h.value, want)
}

// partial is one column a shard computes for an aggregate.
type partial struct {
	sql  string
	args []any
}

type aggPlan struct {
	groupFields []*schema.Field
	aggFields   []*schema.Field // nil for count(*)
	groupTypes  []colType       // per group column: how its values compare
	intSum      []bool          // per aggregate: sum/avg of an integer column
	decimal     []bool          // per aggregate: sum/avg/min/max of a numeric column
	names       []string        // output names: group columns, then aggregates
	partials    []partial
	order       []outOrder
	having      []havingCond // q.having, checked and converted
}

type outOrder struct {
	col        int
	desc       bool
	nullsFirst bool
}

func (q *SelectQuery) aggPlan() (*aggPlan, error) {
	t := q.mi.table
	ap := &aggPlan{}
	for _, c := range q.groupBy {
		f, ok := t.FieldMap[c]
		if !ok {
			return nil, fmt.Errorf("%w: GroupBy: model %s has no column %q", ErrInvalidArgument, t.TypeName, c)
		}
		gt := sqlClass(sqlBase(f.DiscoveredSQLType))
		if gt == ctOther {
			return nil, fmt.Errorf("%w: GroupBy(%s): the merge cannot tell which values of SQL type %s PostgreSQL "+
				"groups together; group on one shard (pin it)", ErrUnsupported, f.Name, f.DiscoveredSQLType)
		}
		ap.groupFields = append(ap.groupFields, f)
		ap.groupTypes = append(ap.groupTypes, gt)
		ap.names = append(ap.names, f.Name)
		ap.partials = append(ap.partials, partial{"?TableAlias.?", []any{bun.Ident(f.Name)}})
	}
	for _, a := range q.aggs {
		var f *schema.Field
		if a.column != "" {
			var ok bool
			if f, ok = t.FieldMap[a.column]; !ok {
				return nil, fmt.Errorf("%w: %s(%s): model %s has no column %q", ErrInvalidArgument, aggNames[a.fn], a.column, t.TypeName, a.column)
			}
		} else if a.fn != aggCount {
			return nil, fmt.Errorf("%w: %s needs a column", ErrInvalidArgument, aggNames[a.fn])
		}
		col := []any{bun.Ident(a.column)}
		k := kindOther
		if f != nil {
			k = kindOf(f.IndirectType)
		}
		isDec := f != nil && sqlClass(sqlBase(f.DiscoveredSQLType)) == ctNumeric && a.fn != aggCount
		isInt := (k == kindInt || k == kindUint) && !isDec
		switch a.fn {
		case aggCount:
			if f == nil {
				ap.partials = append(ap.partials, partial{"count(*)", nil})
			} else {
				ap.partials = append(ap.partials, partial{"count(?TableAlias.?)", col})
			}
		case aggSum, aggAvg:
			switch {
			case isInt || isDec:
				ap.partials = append(ap.partials, partial{"sum(?TableAlias.?)::text", col})
			case k == kindFloat:
				ap.partials = append(ap.partials, partial{"sum(?TableAlias.?)::float8", col})
			default:
				return nil, fmt.Errorf("%w: %s(%s): not a numeric column (%s)", ErrUnsupported, aggNames[a.fn], a.column, f.IndirectType)
			}
			if a.fn == aggAvg {
				ap.partials = append(ap.partials, partial{"count(?TableAlias.?)", col})
			}
		case aggMin, aggMax:
			if !isDec && k != kindInt && k != kindUint && k != kindFloat && k != kindTime {
				return nil, fmt.Errorf("%w: %s(%s): min and max merge numbers and times across shards; "+
					"%s is not one (text would need the column's collation)", ErrUnsupported, aggNames[a.fn], a.column, f.IndirectType)
			}
			if isDec {
				ap.partials = append(ap.partials, partial{aggNames[a.fn] + "(?TableAlias.?)::text", col})
			} else {
				ap.partials = append(ap.partials, partial{aggNames[a.fn] + "(?TableAlias.?)", col})
			}
		}
		ap.aggFields = append(ap.aggFields, f)
		ap.intSum = append(ap.intSum, isInt)
		ap.decimal = append(ap.decimal, isDec)
		ap.names = append(ap.names, a.name())
	}
	for i, name := range ap.names {
		if slices.Contains(ap.names[:i], name) {
			return nil, fmt.Errorf("%w: %s: two output columns are named %q; name aggregates apart with As",
				ErrInvalidArgument, t.TypeName, name)
		}
	}
	for _, h := range q.having {
		h.col = slices.Index(ap.names, h.name)
		if h.col < 0 {
			return nil, fmt.Errorf("%w: HavingAgg(%q): not an output column (have %v)", ErrInvalidArgument, h.name, ap.names)
		}
		var k valueKind
		if h.col < len(ap.groupFields) {
			k = havingKind(ap.groupTypes[h.col])
		} else {
			i := h.col - len(ap.groupFields)
			switch q.aggs[i].fn {
			case aggCount, aggAvg:
				k = kindFloat // a number
			default: // sum, min, max: the column's class (aggPlan checked it above)
				k = havingKind(sqlClass(sqlBase(ap.aggFields[i].DiscoveredSQLType)))
			}
		}
		var err error
		if h.want, err = havingValue(h, k); err != nil {
			return nil, err
		}
		ap.having = append(ap.having, h)
	}
	for _, k := range q.order {
		o, err := parseOutOrder(ap, k.expr)
		if err != nil {
			return nil, err
		}
		ap.order = append(ap.order, o)
	}
	return ap, nil
}

func parseOutOrder(ap *aggPlan, spec string) (outOrder, error) {
	words := strings.Fields(spec)
	bad := fmt.Errorf("%w: ORDER BY %q of a grouped select: name an output column (%v), optionally ASC/DESC and NULLS FIRST/LAST",
		ErrUnsupported, spec, ap.names)
	if len(words) == 0 {
		return outOrder{}, bad
	}
	col := slices.Index(ap.names, words[0])
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
	if col < len(ap.groupFields) && (ap.groupTypes[col] == ctText || ap.groupTypes[col] == ctBpchar) && !byteOrder {
		return outOrder{}, fmt.Errorf("%w: ORDER BY %s: text is ordered by collation in PostgreSQL; write `%s COLLATE \"C\"` "+
			"for byte order", ErrUnsupported, words[0], words[0])
	}
	return o, nil
}

// group is one merged group: the output values, in ap.names order, with
// sums and counts kept apart for averages until the end.
type group struct {
	vals []any
	cnt  []int64 // per aggregate: the count behind an average
}

func (q *SelectQuery) scanAggregate(ctx context.Context, p *plan, dest any) error {
	ap, err := q.aggPlan()
	if err != nil {
		return err
	}
	if q.grouped {
		return fmt.Errorf("%w: mix of Group/Distinct with GroupBy/Aggregate; use GroupBy and Aggregate only", ErrInvalidArgument)
	}
	out := reflect.ValueOf(dest)
	if out.Kind() != reflect.Pointer || out.IsNil() || out.Elem().Kind() != reflect.Slice {
		return fmt.Errorf("%w: a grouped select scans into a pointer to a slice of structs or of map[string]any, got %T", ErrInvalidArgument, dest)
	}
	parts := make([][][]any, len(p.Shards))
	err = q.s.fanOutPolicy(ctx, p.Shards, "select", p.partial, func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		rows, err := q.buildAggregate(db, p, id, ap).Rows(ctx)
		if err != nil {
			return err
		}
		defer rows.Close()
		ptrs := make([]any, len(ap.partials))
		for rows.Next() {
			row := make([]any, len(ap.partials))
			for j := range row {
				ptrs[j] = &row[j]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			parts[i] = append(parts[i], row)
		}
		return rows.Err()
	})
	if err != nil && !isPartial(err) {
		return err
	}
	groups, merr := ap.merge(q, parts)
	if merr != nil {
		return merr
	}
	if serr := q.assign(ap, groups, out.Elem()); serr != nil {
		return serr
	}
	return err
}

// buildAggregate is the statement that computes shard id's partial
// aggregates of every group.
func (q *SelectQuery) buildAggregate(db bun.IDB, p *plan, id ShardID, ap *aggPlan) *bun.SelectQuery {
	b := db.NewSelect().Model(q.tableModel())
	for _, fn := range q.ops {
		b = fn(b)
	}
	p.where(id, func(s string, args ...any) { b = b.Where(s, args...) })
	for _, pt := range ap.partials {
		b = b.ColumnExpr(pt.sql, pt.args...)
	}
	for _, f := range ap.groupFields {
		b = b.GroupExpr("?TableAlias.?", bun.Ident(f.Name))
	}
	return b
}

// merge combines the shards' partial rows per group, then applies HAVING,
// ORDER BY and the window.
func (ap *aggPlan) merge(q *SelectQuery, parts [][][]any) ([][]any, error) {
	ng := len(ap.groupFields)
	total := 0
	for _, rows := range parts {
		total += len(rows)
	}
	// Sized for the worst case (every row its own group), so the index and
	// the group slab never grow while merging.
	index := make(map[string]*group, total)
	groups := make([]*group, 0, total)
	slab := make([]group, total)
	vals := make([]any, total*len(ap.names))
	cnts := make([]int64, total*len(q.aggs))
	var key []byte
	for _, rows := range parts {
		for _, row := range rows {
			key = key[:0]
			for j, v := range row[:ng] {
				v, err := groupValue(ap.groupTypes[j], v)
				if err != nil {
					return nil, fmt.Errorf("session: GroupBy(%s): %w", ap.names[j], err)
				}
				row[j] = v
				key = appendKey(key, v)
			}
			g := index[string(key)] // no allocation for the lookup
			if g == nil {
				n := len(groups)
				g = &slab[n]
				g.vals = vals[n*len(ap.names) : (n+1)*len(ap.names) : (n+1)*len(ap.names)]
				g.cnt = cnts[n*len(q.aggs) : (n+1)*len(q.aggs) : (n+1)*len(q.aggs)]
				copy(g.vals, row[:ng])
				index[string(key)] = g
				groups = append(groups, g)
			}
			col := ng
			for i, a := range q.aggs {
				v, err := normalize(row[col], ap.decimal[i])
				if err != nil {
					return nil, fmt.Errorf("session: %s: %w", ap.names[ng+i], err)
				}
				switch a.fn {
				case aggCount:
					g.vals[ng+i] = addInt(g.vals[ng+i], v)
				case aggSum:
					g.vals[ng+i] = addNum(g.vals[ng+i], v)
				case aggAvg:
					g.vals[ng+i] = addNum(g.vals[ng+i], v)
					col++
					c, _ := row[col].(int64)
					g.cnt[i] += c
				case aggMin, aggMax:
					cur := g.vals[ng+i]
					if v != nil && (cur == nil || (compareAny(v, cur) < 0) == (a.fn == aggMin)) {
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
		groups = append(groups, &group{vals: make([]any, len(ap.names)), cnt: make([]int64, len(q.aggs))})
	}
	out := make([][]any, 0, len(groups))
	for _, g := range groups {
		for i, a := range q.aggs {
			switch {
			case a.fn == aggCount && g.vals[ng+i] == nil:
				g.vals[ng+i] = int64(0)
			case a.fn == aggAvg && g.cnt[i] > 0 && ap.decimal[i]:
				g.vals[ng+i] = numeric.Avg(g.vals[ng+i].(numeric.Num), g.cnt[i])
			case a.fn == aggAvg && g.cnt[i] > 0 && ap.intSum[i]:
				// PostgreSQL's avg of an integer column is a numeric too.
				g.vals[ng+i] = numeric.Avg(numeric.FromInt(g.vals[ng+i].(*big.Int)), g.cnt[i])
			case a.fn == aggAvg && g.cnt[i] > 0:
				g.vals[ng+i] = toFloat(g.vals[ng+i]) / float64(g.cnt[i])
			case a.fn == aggAvg:
				g.vals[ng+i] = nil
			case a.fn == aggSum && ap.intSum[i] && g.vals[ng+i] != nil:
				if b := g.vals[ng+i].(*big.Int); b.IsInt64() {
					g.vals[ng+i] = b.Int64()
				}
			}
		}
		if keep(ap.having, g.vals) {
			out = append(out, g.vals)
		}
	}
	if len(ap.order) > 0 {
		slices.SortStableFunc(out, func(a, b []any) int {
			for _, o := range ap.order {
				if c := compareOut(o, a[o.col], b[o.col]); c != 0 {
					return c
				}
			}
			return 0
		})
	}
	lo := min(q.offset, len(out))
	hi := len(out)
	if q.limit > 0 {
		hi = min(hi, lo+q.limit)
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

func keep(having []havingCond, vals []any) bool {
	for _, h := range having {
		v := vals[h.col]
		if v == nil {
			return false // a comparison with NULL is never true
		}
		c := compareAny(v, h.want)
		ok := false
		switch h.op {
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

// assign writes the merged rows into dst, a slice of structs, struct
// pointers or map[string]any.
func (q *SelectQuery) assign(ap *aggPlan, rows [][]any, dst reflect.Value) error {
	et := dst.Type().Elem()
	out := reflect.MakeSlice(dst.Type(), len(rows), len(rows))
	if et.Kind() == reflect.Map && et.Key().Kind() == reflect.String {
		for i, row := range rows {
			m := make(map[string]any, len(row))
			for j, v := range row {
				m[ap.names[j]] = outValue(v)
			}
			out.Index(i).Set(reflect.ValueOf(m))
		}
		dst.Set(out)
		return nil
	}
	st := et
	if st.Kind() == reflect.Pointer {
		st = st.Elem()
	}
	if st.Kind() != reflect.Struct {
		return fmt.Errorf("%w: a grouped select scans into []struct or []map[string]any, got %s", ErrInvalidArgument, dst.Type())
	}
	t := q.s.dialect.Tables().Get(st)
	fields := make([]*schema.Field, len(ap.names))
	for j, name := range ap.names {
		f, ok := t.FieldMap[name]
		if !ok {
			return fmt.Errorf("%w: %s has no field for output column %q", ErrInvalidArgument, st, name)
		}
		fields[j] = f
	}
	for i, row := range rows {
		elem := out.Index(i)
		if et.Kind() == reflect.Pointer {
			elem.Set(reflect.New(st))
			elem = elem.Elem()
		}
		for j, v := range row {
			if err := fields[j].ScanValue(elem, scanSource(outValue(v))); err != nil {
				return fmt.Errorf("session: output column %q into %s.%s: %w", ap.names[j], st, fields[j].GoName, err)
			}
		}
	}
	dst.Set(out)
	return nil
}

// scanSource gives Bun's scanners what a driver would: strings for numbers
// too big for int64 are parsed by their scanners.
func scanSource(v any) any {
	if s, ok := v.(string); ok {
		if _, err := strconv.ParseFloat(s, 64); err == nil {
			return []byte(s)
		}
	}
	return v
}

// bpchar is a char(n) group value: compared and keyed without its trailing
// spaces, returned as PostgreSQL sent it.
type bpchar string

// groupValue turns a group column's value from the driver into the value
// the merge keys and compares: numeric.Num for numeric (1 and 1.00 are one
// group), bpchar for char(n), string for other text.
func groupValue(t colType, v any) (any, error) {
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
	case ctNumeric:
		n, ok := numeric.Parse(s)
		if !ok {
			return nil, fmt.Errorf("value %q is no numeric", s)
		}
		return n, nil
	case ctBpchar:
		return bpchar(s), nil
	case ctBytes:
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

// outValue is a merged value as the caller receives it: numbers the merge
// held exactly become their text, char(n) a string again.
func outValue(v any) any {
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
