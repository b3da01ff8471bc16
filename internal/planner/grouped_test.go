package planner

import (
	"errors"
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/schema"
)

// aggRow is the model of the grouped-select tests.
type aggRow struct {
	ID         int64 `bun:",pk"`
	LocationID int64
	Continent  string    `bun:"type:varchar(20)"`
	Code       string    `bun:"type:char(4)"`
	Price      string    `bun:"type:numeric(10,2)"`
	Temp       float64   // double precision
	N          int64     // bigint
	At         time.Time `bun:"type:timestamptz"`
	Doc        string    `bun:"type:jsonb"`
}

func aggTable() *schema.Table {
	return pgdialect.New().Tables().Get(reflect.TypeFor[aggRow]())
}

// outRows is what a caller receives of merged rows.
func outRows(rows [][]any) [][]any {
	out := make([][]any, len(rows))
	for i, r := range rows {
		out[i] = make([]any, len(r))
		for j, v := range r {
			out[i][j] = OutValue(v)
		}
	}
	return out
}

// TestGroupedMerge: shards' partial rows, as the driver scans them, merge
// into what one database holding every row returns.
func TestGroupedMerge(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	type tc struct {
		name          string
		groupBy       []string
		aggs          []Aggregate
		having        []Having
		order         []string
		offset, limit int
		partials      []string // the SQL of each partial, checked first
		parts         [][][]any
		want          [][]any
	}
	tests := []tc{{
		name:     "counts and integer sums add up, past int64",
		groupBy:  []string{"location_id"},
		aggs:     []Aggregate{{Func: Count, Alias: "count"}, {Func: Sum, Column: "n"}},
		partials: []string{"?TableAlias.?", "count(*)", "sum(?TableAlias.?)::text"},
		parts: [][][]any{
			{{int64(1), int64(2), "10"}, {int64(2), int64(1), "5"}},
			{{int64(1), int64(3), "9223372036854775807"}},
		},
		want: [][]any{{int64(1), int64(5), "9223372036854775817"}, {int64(2), int64(1), int64(5)}},
	}, {
		name:     "avg of an integer column is the merged sum over the merged count, never an average of averages",
		aggs:     []Aggregate{{Func: Avg, Column: "n"}},
		partials: []string{"sum(?TableAlias.?)::text", "count(?TableAlias.?)"},
		parts:    [][][]any{{{"3", int64(3)}}, {{[]byte("10"), int64(1)}}},
		want:     [][]any{{"3.2500000000000000"}}, // (3+10)/4; the average of averages is 5.5
	}, {
		name:     "avg of a float column",
		aggs:     []Aggregate{{Func: Avg, Column: "temp"}},
		partials: []string{"sum(?TableAlias.?)::float8", "count(?TableAlias.?)"},
		parts:    [][][]any{{{1.5, int64(1)}}, {{4.5, int64(2)}}},
		want:     [][]any{{2.0}},
	}, {
		name:  "avg over no rows is NULL, count is 0: no GROUP BY gives one row even over nothing",
		aggs:  []Aggregate{{Func: Count, Alias: "count"}, {Func: Avg, Column: "n"}, {Func: Sum, Column: "price"}},
		parts: [][][]any{nil, nil},
		want:  [][]any{{int64(0), nil, nil}},
	}, {
		name:  "a shard with no rows at all adds nothing; a NULL partial adds nothing",
		aggs:  []Aggregate{{Func: Count, Column: "n"}, {Func: Sum, Column: "n"}, {Func: Min, Column: "temp"}},
		parts: [][][]any{{{int64(0), nil, nil}}, {{int64(2), "7", -1.25}}, nil},
		want:  [][]any{{int64(2), int64(7), -1.25}},
	}, {
		name:     "numeric sums and averages are exact decimals",
		aggs:     []Aggregate{{Func: Sum, Column: "price"}, {Func: Avg, Column: "price"}},
		partials: []string{"sum(?TableAlias.?)::text", "sum(?TableAlias.?)::text", "count(?TableAlias.?)"},
		parts:    [][][]any{{{"0.10", "0.10", int64(1)}}, {{"0.20", "0.20", int64(2)}}},
		want:     [][]any{{"0.30", "0.10000000000000000000"}},
	}, {
		name:     "min and max of numeric compare as numbers, not text",
		aggs:     []Aggregate{{Func: Min, Column: "price"}, {Func: Max, Column: "price"}},
		partials: []string{"min(?TableAlias.?)::text", "max(?TableAlias.?)::text"},
		parts:    [][][]any{{{"10.50", "10.50"}}, {{"9.50", "9.50"}}},
		want:     [][]any{{"9.50", "10.50"}},
	}, {
		name:  "min and max of times and floats (NaN above every number)",
		aggs:  []Aggregate{{Func: Min, Column: "at"}, {Func: Max, Column: "at"}, {Func: Max, Column: "temp"}},
		parts: [][][]any{{{t0, t0, 1e300}}, {{t0.Add(-time.Hour), t0.Add(time.Second), math.NaN()}}},
		want:  nil, // checked below: NaN != NaN for DeepEqual
	}, {
		name:    "numeric 1 and 1.00 are one group; char(n) groups without trailing spaces; -0 groups with 0",
		groupBy: []string{"price", "code", "temp"},
		aggs:    []Aggregate{{Func: Count, Alias: "count"}},
		parts: [][][]any{
			{{"1", "ab  ", 0.0, int64(2)}},
			{{[]byte("1.00"), "ab", math.Copysign(0, -1), int64(3)}, {"2", "ab", 0.0, int64(1)}},
		},
		want: [][]any{{"1", "ab  ", 0.0, int64(5)}, {"2", "ab", 0.0, int64(1)}},
	}, {
		name:    "HavingAgg runs after the merge: no shard alone has more than 2",
		groupBy: []string{"location_id"},
		aggs:    []Aggregate{{Func: Count, Alias: "count"}},
		having:  []Having{{Name: "count", Op: ">", Value: 2}},
		parts: [][][]any{
			{{int64(1), int64(2)}, {int64(2), int64(2)}},
			{{int64(1), int64(2)}, {int64(3), int64(1)}},
		},
		want: [][]any{{int64(1), int64(4)}},
	}, {
		name:    "HavingAgg compares an integer with a float by value; NULL never matches",
		groupBy: []string{"location_id"},
		aggs:    []Aggregate{{Func: Sum, Column: "n"}},
		having:  []Having{{Name: "sum_n", Op: ">=", Value: 2.5}},
		parts:   [][][]any{{{int64(1), "2"}, {int64(2), "3"}, {int64(3), nil}}},
		want:    [][]any{{int64(2), int64(3)}},
	}, {
		name:    "HavingAgg on text with = and on a group column",
		groupBy: []string{"continent"},
		aggs:    []Aggregate{{Func: Count, Alias: "count"}},
		having:  []Having{{Name: "continent", Op: "<>", Value: "Asia"}},
		parts:   [][][]any{{{"Asia", int64(1)}, {"Europe", int64(2)}}, {{"Europe", int64(1)}}},
		want:    [][]any{{"Europe", int64(3)}},
	}, {
		name:    "order by an aggregate, then the window over the merged groups",
		groupBy: []string{"location_id"},
		aggs:    []Aggregate{{Func: Sum, Column: "temp"}},
		order:   []string{"sum_temp DESC", "location_id"},
		offset:  1, limit: 2,
		parts: [][][]any{
			{{int64(1), 1.0}, {int64(2), 5.0}, {int64(3), 0.5}},
			{{int64(1), 3.0}, {int64(4), 4.0}, {int64(5), 0.25}},
		},
		want: [][]any{{int64(1), 4.0}, {int64(4), 4.0}}, // 2: 5, then 1 and 4 tie at 4 (id breaks it), 3, 5
	}, {
		name:    "NULLS FIRST and COLLATE \"C\" on a text group column",
		groupBy: []string{"continent"},
		aggs:    []Aggregate{{Func: Max, Column: "n"}},
		order:   []string{"max_n NULLS FIRST", `continent COLLATE "C" DESC`},
		parts:   [][][]any{{{"a", int64(1)}, {"B", nil}}, {{"c", int64(1)}}},
		want:    [][]any{{"B", nil}, {"c", int64(1)}, {"a", int64(1)}},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gp, err := NewGrouped(aggTable(), tt.groupBy, tt.aggs, tt.having, tt.order)
			if err != nil {
				t.Fatalf("NewGrouped: %v", err)
			}
			if tt.partials != nil {
				var got []string
				for _, p := range gp.Partials {
					got = append(got, p.SQL)
				}
				if !reflect.DeepEqual(got, tt.partials) {
					t.Fatalf("Partials = %q; want %q", got, tt.partials)
				}
			}
			rows, err := gp.Merge(tt.parts, tt.offset, tt.limit)
			if err != nil {
				t.Fatalf("Merge: %v", err)
			}
			got := outRows(rows)
			if tt.want == nil { // the NaN case
				if len(got) != 1 || got[0][0] != t0.Add(-time.Hour) || got[0][1] != t0.Add(time.Second) ||
					!math.IsNaN(got[0][2].(float64)) {
					t.Fatalf("Merge = %v; want [[%v %v NaN]]", got, t0.Add(-time.Hour), t0.Add(time.Second))
				}
				return
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Merge = %v; want %v", fmtRows(got), fmtRows(tt.want))
			}
		})
	}
}

func fmtRows(rows [][]any) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("[")
		for j, v := range r {
			if j > 0 {
				b.WriteString(" ")
			}
			fmt.Fprintf(&b, "%v(%T)", v, v)
		}
		b.WriteString("]")
	}
	return b.String()
}

func TestGroupedRefuses(t *testing.T) {
	tests := []struct {
		name    string
		groupBy []string
		aggs    []Aggregate
		having  []Having
		order   []string
		fault   Fault
		want    string // in the message
	}{
		{"unknown group column", []string{"city"}, nil, nil, nil, Invalid, `"city"`},
		{"unknown aggregate column", nil, []Aggregate{{Func: Sum, Column: "city"}}, nil, nil, Invalid, `"city"`},
		{"sum without a column", nil, []Aggregate{{Func: Sum}}, nil, nil, Invalid, "sum needs a column"},
		{"no function", nil, []Aggregate{{Column: "n"}}, nil, nil, Invalid, "aggregate"},
		{"two outputs of one name", []string{"n"}, []Aggregate{{Func: Count, Alias: "n"}}, nil, nil, Invalid, `"n"`},
		{"group by jsonb", []string{"doc"}, nil, nil, nil, Unsupported, "jsonb"},
		{"sum of text", nil, []Aggregate{{Func: Sum, Column: "continent"}}, nil, nil, Unsupported, "continent"},
		{"min of text", nil, []Aggregate{{Func: Min, Column: "continent"}}, nil, nil, Unsupported, "collation"},
		{"having on no output", nil, []Aggregate{{Func: Count, Alias: "c"}}, []Having{{Name: "x", Op: "=", Value: 1}}, nil, Invalid, `"x"`},
		{"having a string for a count", nil, []Aggregate{{Func: Count, Alias: "c"}}, []Having{{Name: "c", Op: "=", Value: "1"}}, nil, Invalid, "a number"},
		{"having an int for a time", nil, []Aggregate{{Func: Max, Column: "at"}}, []Having{{Name: "max_at", Op: "=", Value: 1}}, nil, Invalid, "time.Time"},
		{"having < on text", []string{"continent"}, nil, []Having{{Name: "continent", Op: "<", Value: "x"}}, nil, Unsupported, "collation"},
		{"order by text without COLLATE", []string{"continent"}, nil, nil, []string{"continent"}, Unsupported, "COLLATE"},
		{"order by no output", []string{"continent"}, nil, nil, []string{"n"}, Unsupported, "output column"},
		{"order with bad words", []string{"n"}, nil, nil, []string{"n SIDEWAYS"}, Unsupported, "n SIDEWAYS"},
	}
	for _, tt := range tests {
		_, err := NewGrouped(aggTable(), tt.groupBy, tt.aggs, tt.having, tt.order)
		var pe *Error
		if !errors.As(err, &pe) || pe.Fault != tt.fault || !strings.Contains(pe.Msg, tt.want) {
			t.Errorf("%s: NewGrouped = %v; want Fault %d naming %s", tt.name, err, tt.fault, tt.want)
		}
	}
}

func TestGroupedMergeBadPartial(t *testing.T) {
	gp, err := NewGrouped(aggTable(), []string{"price"}, []Aggregate{{Func: Sum, Column: "price"}}, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, row := range [][]any{{"x1", "1"}, {"1", "1.2.3"}, {"1", struct{}{}}} {
		parts := [][][]any{{row}}
		if rows, err := gp.Merge(parts, 0, 0); err == nil {
			t.Errorf("Merge(%v) = %v; want an error naming the column", parts, rows)
		} else if !strings.Contains(err.Error(), "price") {
			t.Errorf("Merge(%v) = %v; want it to name the column", parts, err)
		}
	}
}
