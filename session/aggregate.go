package session

import (
	"context"
	"fmt"
	"reflect"
	"strconv"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/internal/planner"
)

// Aggregate is one aggregate of a grouped select: its function, column and
// output name. Build it with [CountAll], [Count], [Sum], [Min], [Max] or
// [Avg], and name it with As. Aggregates are merged across shards exactly:
// counts and sums add up, min and max compare, and Avg is computed from the
// summed sums and counts (never an average of averages).
type Aggregate struct {
	a planner.Aggregate
}

// CountAll is count(*), named "count" unless renamed with As.
func CountAll() Aggregate { return Aggregate{planner.Aggregate{Func: planner.Count, Alias: "count"}} }

// Count is count(column): the non-NULL values.
func Count(column string) Aggregate {
	return Aggregate{planner.Aggregate{Func: planner.Count, Column: column}}
}

// Sum is sum(column) of a number column: exact for integers (summed as
// big integers) and for SQL numeric/decimal columns whatever their Go type
// (summed as decimals, rendered as PostgreSQL prints the sum: "4.00"),
// float64 addition for float columns (whose last bits may differ from one
// database's sum, which adds in another order). Other columns fail with
// ErrUnsupported.
func Sum(column string) Aggregate {
	return Aggregate{planner.Aggregate{Func: planner.Sum, Column: column}}
}

// Min is min(column) of a number (numeric compared exactly, NaN above
// every number) or time column. Text fails with ErrUnsupported, since its
// order depends on the collation.
func Min(column string) Aggregate {
	return Aggregate{planner.Aggregate{Func: planner.Min, Column: column}}
}

// Max is max(column), for the columns Min takes.
func Max(column string) Aggregate {
	return Aggregate{planner.Aggregate{Func: planner.Max, Column: column}}
}

// Avg is avg(column) of a number column. Of an integer or SQL
// numeric/decimal column it is exact, as PostgreSQL's avg returns a numeric
// there: the merged sum divided by the merged count, rounded to the same
// scale, as numeric text ("1.5000000000000000"; a float64 or string field
// scans it). Of a float column it is a float64.
func Avg(column string) Aggregate {
	return Aggregate{planner.Aggregate{Func: planner.Avg, Column: column}}
}

// As names the aggregate's output column. The default is the function name
// and column joined by "_" ("sum_temperature").
func (a Aggregate) As(alias string) Aggregate { a.a.Alias = alias; return a }

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
	q.having = append(q.having, planner.Having{Name: name, Op: op, Value: rv.Interface()})
	return q
}

// groupPlan plans the grouped select's merge (internal/planner), with the
// session's errors.
func (q *SelectQuery) groupPlan() (*planner.Grouped, error) {
	aggs := make([]planner.Aggregate, len(q.aggs))
	for i, a := range q.aggs {
		aggs[i] = a.a
	}
	order := make([]string, len(q.order))
	for i, k := range q.order {
		order[i] = k.Expr
	}
	gp, err := planner.NewGrouped(q.mi.table, q.groupBy, aggs, q.having, order)
	return gp, fromPlan(err)
}

func (q *SelectQuery) scanAggregate(ctx context.Context, p *plan, dest any) error {
	gp, err := q.groupPlan()
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
	one := func(ctx context.Context, i int, id ShardID, db bun.IDB) error {
		rows, err := q.buildAggregate(db, p, id, gp).Rows(ctx)
		if err != nil {
			return err
		}
		defer rows.Close()
		ptrs := make([]any, len(gp.Partials))
		for rows.Next() {
			row := make([]any, len(gp.Partials))
			for j := range row {
				ptrs[j] = &row[j]
			}
			if err := rows.Scan(ptrs...); err != nil {
				return err
			}
			parts[i] = append(parts[i], row)
		}
		q.s.readRows(ctx, int64(len(parts[i])))
		return rows.Err()
	}
	var folds [][]int
	if q.aggregateFolds() {
		folds = q.s.foldGroups(ctx, p.Shards)
	}
	if folds != nil {
		err = q.aggregatePartsFolded(ctx, p, gp, parts, folds, one)
	} else {
		err = q.s.fanOutPolicy(ctx, p.Shards, "select", p.partial, one)
	}
	if err != nil && !isPartial(err) {
		return err
	}
	m := q.s.startMerge(ctx, len(parts))
	groups, merr := gp.Merge(parts, q.offset, q.limit)
	endMerge(m, int64(len(groups)), merr)
	if merr != nil {
		return fmt.Errorf("session: %w", merr)
	}
	if serr := q.assign(gp, groups, out.Elem()); serr != nil {
		return serr
	}
	return err
}

// buildAggregate is the statement that computes shard id's partial
// aggregates of every group.
func (q *SelectQuery) buildAggregate(db bun.IDB, p *plan, id ShardID, gp *planner.Grouped) *bun.SelectQuery {
	b := replay(db.NewSelect().Model(q.tableModel()), q.ops, p, id)
	p.whereJoined(id, func(s string, args ...any) { b = b.Where(s, args...) })
	for _, pt := range gp.Partials {
		b = b.ColumnExpr(pt.SQL, pt.Args...)
	}
	for _, f := range gp.GroupFields {
		b = b.GroupExpr("?TableAlias.?", bun.Ident(f.Name))
	}
	return b
}

// assign writes the merged rows into dst, a slice of structs, struct
// pointers or map[string]any.
func (q *SelectQuery) assign(gp *planner.Grouped, rows [][]any, dst reflect.Value) error {
	et := dst.Type().Elem()
	out := reflect.MakeSlice(dst.Type(), len(rows), len(rows))
	if et.Kind() == reflect.Map && et.Key().Kind() == reflect.String {
		for i, row := range rows {
			m := make(map[string]any, len(row))
			for j, v := range row {
				m[gp.Names[j]] = planner.OutValue(v)
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
	fields := make([]*schema.Field, len(gp.Names))
	for j, name := range gp.Names {
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
			if err := fields[j].ScanValue(elem, scanSource(planner.OutValue(v))); err != nil {
				return fmt.Errorf("session: output column %q into %s.%s: %w", gp.Names[j], st, fields[j].GoName, err)
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
