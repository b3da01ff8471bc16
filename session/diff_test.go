package session_test

import (
	"context"
	"database/sql"
	"fmt"
	"math"
	"math/big"
	"math/rand/v2"
	"os"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/session"
)

// Item is the model of the differential test: nullable columns with ties,
// text with non-ASCII and mixed case, times, numeric of any precision held
// in a string (1, 1.0 and 1.00 are equal), char(n) and a nullzero pointer
// holding real zeros beside NULLs.
type Item struct {
	bun.BaseModel `bun:"table:items"`
	session.Token

	ID   int64 `bun:",pk"`
	Part int64 `bun:",notnull"` // the shard key
	Grp  int64 `bun:",notnull"`
	Num  *float64
	Qty  *int64
	Name *string
	At   time.Time `bun:",notnull"`
	Dec  *string   `bun:"type:numeric"`
	Code *string   `bun:"type:char(5)"`
	Lvl  *int64    `bun:",nullzero"`
}

// diffSeed is the seed of the differential tests: BUNSHARD_SEED when set,
// else 1. Every failure message prints it; rerun with BUNSHARD_SEED=n.
func diffSeed(t *testing.T) uint64 {
	t.Helper()
	v := os.Getenv("BUNSHARD_SEED")
	if v == "" {
		return 1
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil {
		t.Fatalf("BUNSHARD_SEED=%q: not an unsigned integer", v)
	}
	return n
}

// randomDecimal is a numeric text: NULL, small values at several scales
// (so equal values are written differently), values beyond float64's
// precision, and the special values.
func randomDecimal(r *rand.Rand) *string {
	var s string
	switch n := r.IntN(40); {
	case n < 6:
		return nil
	case n == 6:
		s = "NaN"
	case n == 7:
		s = "Infinity"
	case n == 8:
		s = "-Infinity"
	case n < 14:
		s = fmt.Sprintf("%d.%018d%d", r.IntN(3), r.Int64N(1e18), r.IntN(10)) // past float64's digits
	default:
		s = strconv.Itoa(r.IntN(21) - 10)
		if f := r.IntN(4); f > 0 {
			s += "." + fmt.Sprintf("%0*d", f, r.IntN(int(math.Pow10(f))))
		}
	}
	return &s
}

var itemShards = []session.ShardID{"s0", "s1", "s2", "s3"}

type diffEnv struct {
	s      *session.Session
	single *bun.DB
}

func newDiffEnv(t *testing.T, rows int, seed uint64) *diffEnv {
	t.Helper()
	ctx := context.Background()
	set := pgtest.Shared()
	dsns := set.NewDatabases(ctx, t, "diff")
	truth := set.NewDatabases(ctx, t, "difftruth")[0]
	dialect := pgdialect.New()
	open := func(dsn string) *bun.DB {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), dialect)
		t.Cleanup(func() { db.Close() })
		if _, err := db.NewCreateTable().Model((*Item)(nil)).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		return db
	}
	shards := map[session.ShardID]bun.IDB{}
	byPart := map[int64]session.ShardID{}
	for i, id := range itemShards {
		shards[id] = open(dsns[i])
		byPart[int64(i)] = id
	}
	vm := chooser.NewValueMap("part", byPart)
	s, err := session.New(shards, vm, chooser.All, vm, session.WithShardOrder(itemShards...))
	if err != nil {
		t.Fatal(err)
	}
	e := &diffEnv{s: s, single: open(truth)}

	r := rand.New(rand.NewPCG(seed, 7))
	codes := []string{"ab", "ab\t", "ab!", "a", "", " a", "zz", "Ab"}
	names := []string{"apple", "Apple", "APPLE", "Äpfel", "zebra", "Zürich", "éclair", "eclair", "日本", "ß", "a b", "", "Ω"}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	items := make([]*Item, rows)
	for i := range items {
		it := &Item{ID: int64(i + 1), Part: int64(r.IntN(4)), Grp: int64(r.IntN(6)), At: base.Add(time.Duration(r.IntN(50)) * time.Hour)}
		if r.IntN(5) > 0 {
			v := float64(r.IntN(40)) / 4
			it.Num = &v
		}
		if r.IntN(5) > 0 {
			v := int64(r.IntN(30)) - 5
			it.Qty = &v
		}
		if r.IntN(6) > 0 {
			name := names[r.IntN(len(names))] // a copy: items must not share memory
			it.Name = &name
		}
		it.Dec = randomDecimal(r)
		if r.IntN(6) > 0 {
			code := codes[r.IntN(len(codes))]
			it.Code = &code
		}
		if r.IntN(4) > 0 {
			v := int64(r.IntN(5)) - 2 // real zeros, written as 0: the field is a pointer
			it.Lvl = &v
		}
		items[i] = it
	}
	if err := s.Insert(ctx, &items); err != nil {
		t.Fatalf("rows of seed %d: %v", seed, err)
	}
	if _, err := e.single.NewInsert().Model(&items).Exec(ctx); err != nil {
		t.Fatalf("rows of seed %d: %v", seed, err)
	}
	return e
}

var orderCols = []string{"grp", "num", "qty", `name COLLATE "C"`, "at", "part", "dec", `code COLLATE "C"`, "lvl"}

func randomOrder(r *rand.Rand) []string {
	n := 1 + r.IntN(3)
	var keys []string
	for _, c := range r.Perm(len(orderCols))[:n] {
		spec := orderCols[c]
		switch r.IntN(8) {
		case 5:
			spec += " NULLS FIRST"
		case 6:
			spec += " NULLS LAST"
		case 1:
			spec += " DESC"
		case 2:
			spec += " ASC NULLS FIRST"
		case 3:
			spec += " DESC NULLS LAST"
		case 4:
			spec += " ASC"
		}
		keys = append(keys, spec)
	}
	if r.IntN(2) == 0 {
		keys = append(keys, "id")
	}
	return keys
}

// sortKey renders the values of the ORDER BY columns of an item, for
// comparing results whose order has ties (equal keys may come in any order).
func sortKey(it Item, order []string) string {
	var b strings.Builder
	for _, spec := range order {
		switch strings.Fields(spec)[0] {
		case "grp":
			fmt.Fprint(&b, it.Grp)
		case "num":
			if it.Num != nil {
				fmt.Fprint(&b, *it.Num)
			}
		case "qty":
			if it.Qty != nil {
				fmt.Fprint(&b, *it.Qty)
			}
		case "name":
			if it.Name != nil {
				fmt.Fprintf(&b, "%q", *it.Name)
			}
		case "at":
			fmt.Fprint(&b, it.At.UTC().Format(time.RFC3339))
		case "dec":
			if it.Dec != nil {
				b.WriteString(numericKey(*it.Dec))
			}
		case "code":
			if it.Code != nil {
				fmt.Fprintf(&b, "%q", *it.Code)
			}
		case "lvl":
			if it.Lvl != nil {
				fmt.Fprint(&b, *it.Lvl)
			}
		case "part":
			fmt.Fprint(&b, it.Part)
		case "id":
			fmt.Fprint(&b, it.ID)
		}
		b.WriteByte('|')
	}
	return b.String()
}

// TestDifferentialSelect compares random ordered, limited and filtered
// selects over four shards with the same statements on one database.
func TestDifferentialSelect(t *testing.T) {
	ctx := context.Background()
	seed := diffSeed(t)
	e := newDiffEnv(t, 600, seed)
	r := rand.New(rand.NewPCG(seed, 3))
	limits := []int{0, 1, 7, 50, 700}
	offsets := []int{0, 0, 3, 60, 1000}
	for i := range 150 {
		order := randomOrder(r)
		limit, offset := limits[r.IntN(len(limits))], offsets[r.IntN(len(offsets))]
		where, arg := "", any(nil)
		switch r.IntN(3) {
		case 1:
			where, arg = "num > ?", float64(r.IntN(10))
		case 2:
			where, arg = "grp <> ?", int64(r.IntN(6))
		}
		desc := fmt.Sprintf("BUNSHARD_SEED=%d #%d ORDER BY %v LIMIT %d OFFSET %d WHERE %s %v", seed, i, order, limit, offset, where, arg)

		var got, want []Item
		q := e.s.NewSelect().Model(&got).Order(order...).Limit(limit).Offset(offset)
		w := e.single.NewSelect().Model(&want)
		for _, o := range order {
			w = w.OrderExpr(o)
		}
		if limit > 0 {
			w = w.Limit(int64(limit))
		}
		if offset > 0 {
			w = w.Offset(int64(offset))
		}
		if where != "" {
			q, w = q.Where(where, arg), w.Where(where, arg)
		}
		if err := q.Scan(ctx); err != nil {
			t.Fatalf("%s: sharded: %v", desc, err)
		}
		if err := w.Scan(ctx); err != nil {
			t.Fatalf("%s: unsharded: %v", desc, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows; unsharded %d", desc, len(got), len(want))
		}
		for j := range got {
			if g, w := sortKey(got[j], order), sortKey(want[j], order); g != w {
				t.Fatalf("%s: row %d key %s; unsharded %s", desc, j, g, w)
			}
		}
		if len(order) > 0 && order[len(order)-1] == "id" {
			for j := range got {
				if got[j].ID != want[j].ID {
					t.Fatalf("%s: row %d id %d; unsharded %d", desc, j, got[j].ID, want[j].ID)
				}
			}
		}
	}
}

type aggCase struct {
	fn, col string
}

// TestDifferentialAggregate compares random GROUP BY / aggregate / HAVING /
// DISTINCT statements merged over four shards with one database.
func TestDifferentialAggregate(t *testing.T) {
	ctx := context.Background()
	seed := diffSeed(t)
	e := newDiffEnv(t, 500, seed+3)
	r := rand.New(rand.NewPCG(seed, 6))
	groupCols := []string{"grp", "part", "qty", "dec", "code", "lvl"}
	aggs := []aggCase{{"count", ""}, {"count", "num"}, {"sum", "qty"}, {"sum", "num"}, {"min", "num"},
		{"max", "at"}, {"avg", "qty"}, {"avg", "num"}, {"min", "qty"}, {"max", "num"},
		{"sum", "dec"}, {"avg", "dec"}, {"min", "dec"}, {"max", "dec"}, {"count", "code"}, {"min", "lvl"}, {"sum", "lvl"}}
	for i := range 150 {
		var group []string
		for _, c := range r.Perm(len(groupCols))[:r.IntN(3)] {
			group = append(group, groupCols[c])
		}
		var chosen []aggCase
		for _, a := range r.Perm(len(aggs))[:r.IntN(4)] {
			chosen = append(chosen, aggs[a])
		}
		if len(group) == 0 && len(chosen) == 0 {
			chosen = append(chosen, aggs[0])
		}
		having := len(chosen) > 0 && chosen[0].fn == "count" && r.IntN(2) == 0
		limit := []int{0, 3, 100}[r.IntN(3)]
		where := r.IntN(2) == 0

		q := e.s.NewSelect().Model((*Item)(nil))
		var sel, names []string
		exact := map[string]bool{} // output columns compared digit for digit
		for _, g := range group {
			sel = append(sel, g)
			names = append(names, g)
		}
		for j, a := range chosen {
			name := fmt.Sprintf("a%d", j)
			names = append(names, name)
			var agg session.Aggregate
			switch {
			case a.fn == "count" && a.col == "":
				agg, sel = session.CountAll(), append(sel, "count(*) AS "+name)
			case a.fn == "count":
				agg, sel = session.Count(a.col), append(sel, "count("+a.col+") AS "+name)
			case a.fn == "sum":
				agg, sel = session.Sum(a.col), append(sel, "sum("+a.col+") AS "+name)
			case a.fn == "min":
				agg, sel = session.Min(a.col), append(sel, "min("+a.col+") AS "+name)
			case a.fn == "max":
				agg, sel = session.Max(a.col), append(sel, "max("+a.col+") AS "+name)
			case a.fn == "avg":
				agg, sel = session.Avg(a.col), append(sel, "avg("+a.col+") AS "+name)
			}
			q = q.Aggregate(agg.As(name))
			if (a.col == "dec" || a.col == "qty") && (a.fn == "sum" || a.fn == "avg") {
				exact[name] = true
			}
		}
		sqlText := "SELECT " + strings.Join(sel, ", ") + " FROM items"
		if where {
			q = q.Where("num IS NULL OR num < ?", 6.0)
			sqlText += " WHERE num IS NULL OR num < 6"
		}
		if len(group) > 0 {
			q = q.GroupBy(group...)
			sqlText += " GROUP BY " + strings.Join(group, ", ")
		}
		if having {
			q = q.HavingAgg("a0", ">", 4)
			sqlText += " HAVING " + strings.TrimSuffix(strings.SplitN(sel[len(group)], " AS ", 2)[0], "") + " > 4"
		}
		if len(group) > 0 {
			var ord []string
			for _, g := range group {
				if g == "code" {
					g += ` COLLATE "C"`
				}
				switch r.IntN(3) {
				case 0:
					ord = append(ord, g+" DESC NULLS LAST")
				case 1:
					ord = append(ord, g+" NULLS FIRST")
				default:
					ord = append(ord, g)
				}
			}
			q = q.Order(ord...)
			sqlText += " ORDER BY " + strings.Join(ord, ", ")
		}
		if limit > 0 {
			q = q.Limit(limit)
			sqlText += " LIMIT " + strconv.Itoa(limit)
		}
		if len(chosen) == 0 && !strings.Contains(sqlText, "COLLATE") { // DISTINCT through GroupBy (PostgreSQL refuses DISTINCT with ORDER BY x COLLATE)
			sqlText = strings.Replace(sqlText, "SELECT ", "SELECT DISTINCT ", 1)
		}

		desc := fmt.Sprintf("BUNSHARD_SEED=%d #%d %s", seed, i, sqlText)
		var got []map[string]any
		if err := q.Scan(ctx, &got); err != nil {
			t.Fatalf("%s: sharded: %v", desc, err)
		}
		var want []map[string]any
		if err := e.single.NewRaw(sqlText).Scan(ctx, &want); err != nil {
			t.Fatalf("%s: unsharded: %v", desc, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d groups; unsharded %d\n got %v\nwant %v", desc, len(got), len(want), got, want)
		}
		for j := range got {
			for _, n := range names {
				ok := sameValue(got[j][n], want[j][n])
				if n == "dec" || strings.Contains(sqlText, "(dec) AS "+n) {
					ok = sameNumeric(got[j][n], want[j][n]) // exact, whatever the scale
				}
				if exact[n] {
					ok = ok && fmt.Sprint(textOf(got[j][n])) == fmt.Sprint(textOf(want[j][n]))
				}
				if !ok {
					t.Fatalf("%s: row %d %s = %v (%T); unsharded %v (%T)", desc, j, n, got[j][n], got[j][n], want[j][n], want[j][n])
				}
			}
		}
	}
}

// numericKey is numeric text normalized so that equal numbers (1, 1.00)
// have one key.
func numericKey(s string) string {
	if r, ok := new(big.Rat).SetString(s); ok {
		return r.RatString()
	}
	return s // NaN, Infinity, -Infinity
}

// sameNumeric compares two numeric values exactly (1 and 1.00 are equal).
func sameNumeric(a, b any) bool {
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	return numericKey(fmt.Sprint(textOf(a))) == numericKey(fmt.Sprint(textOf(b)))
}

func textOf(v any) any {
	if b, ok := v.([]byte); ok {
		return string(b)
	}
	return v
}

// sameValue compares a merged value with PostgreSQL's, numbers with a
// relative tolerance (float sums add in another order).
func sameValue(a, b any) bool {
	a, b = textOf(a), textOf(b)
	if a == nil || b == nil {
		return a == nil && b == nil
	}
	fa, okA := number(a)
	fb, okB := number(b)
	if okA && okB {
		return fa == fb || math.Abs(fa-fb) <= 1e-9*math.Max(math.Abs(fa), math.Abs(fb))
	}
	if ta, ok := a.(time.Time); ok {
		tb, ok := b.(time.Time)
		return ok && ta.Equal(tb)
	}
	return reflect.DeepEqual(a, b)
}

func number(v any) (float64, bool) {
	switch x := v.(type) {
	case int64:
		return float64(x), true
	case float64:
		return x, true
	case string:
		f, err := strconv.ParseFloat(x, 64)
		return f, err == nil
	case []byte:
		f, err := strconv.ParseFloat(string(x), 64)
		return f, err == nil
	}
	return 0, false
}

func TestAggregateIntoStructs(t *testing.T) {
	ctx := context.Background()
	e := newDiffEnv(t, 200, diffSeed(t)+9)
	type byGroup struct {
		Grp   int64
		N     int64
		Total *int64
		Mean  *float64
	}
	var got []byGroup
	err := e.s.NewSelect().Model((*Item)(nil)).GroupBy("grp").
		Aggregate(session.CountAll().As("n"), session.Sum("qty").As("total"), session.Avg("num").As("mean")).
		Order("grp").Scan(ctx, &got)
	if err != nil {
		t.Fatal(err)
	}
	var want []byGroup
	if err := e.single.NewRaw("SELECT grp, count(*) AS n, sum(qty) AS total, avg(num) AS mean FROM items GROUP BY grp ORDER BY grp").Scan(ctx, &want); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("%d groups; want %d", len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		if g.Grp != w.Grp || g.N != w.N || !slices.Equal([]int64{deref(g.Total)}, []int64{deref(w.Total)}) ||
			math.Abs(derefF(g.Mean)-derefF(w.Mean)) > 1e-9 {
			t.Errorf("group %d = %+v; unsharded %+v", i, g, w)
		}
	}
	// Bad input is named.
	var rows []byGroup
	err = e.s.NewSelect().Model((*Item)(nil)).Aggregate(session.Min("name")).Scan(ctx, &rows)
	wantIn(t, err, "min(name)", "collation")
	err = e.s.NewSelect().Model((*Item)(nil)).GroupBy("nope").Scan(ctx, &rows)
	wantIn(t, err, "nope")
	err = e.s.NewSelect().Model((*Item)(nil)).GroupBy("grp").Order("name").Scan(ctx, &rows)
	wantIn(t, err, "name", "output column")
	err = e.s.NewSelect().Model((*Item)(nil)).Group("grp").Column("grp").Scan(ctx, &rows)
	wantIn(t, err, "GroupBy and Aggregate")
}

func deref(p *int64) int64 {
	if p == nil {
		return math.MinInt64
	}
	return *p
}

func derefF(p *float64) float64 {
	if p == nil {
		return math.Inf(-1)
	}
	return *p
}
