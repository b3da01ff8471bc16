package session_test

import (
	"context"
	"database/sql"
	"errors"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/session"
)

// Typed is the model of the type tests: numeric held in Go strings and a
// float, char(n), and nullzero columns, each as PostgreSQL compares them.
type Typed struct {
	bun.BaseModel `bun:"table:typed"`
	session.Token

	ID   int64    `bun:",pk"`
	Part int64    `bun:",notnull"` // the shard key
	Grp  int64    `bun:",notnull"`
	Dec  *string  `bun:"type:numeric"`
	DecF *float64 `bun:"type:numeric"`
	Code *string  `bun:"type:char(4)"`
	Lvl  *int64   `bun:",nullzero"` // a pointer: a real 0 and NULL differ
	Flat int64    `bun:",nullzero"` // not a pointer: a real 0 and NULL both scan as 0
	Doc  *string  `bun:"type:jsonb"`
}

var typedShards = []session.ShardID{"t0", "t1", "t2", "t3"}

type typedEnv struct {
	s      *session.Session
	single *bun.DB
	shards []*bun.DB
}

// newTypedEnv makes four shards and one unsharded database with the typed
// table. Rows are written with put.
func newTypedEnv(t *testing.T) *typedEnv {
	t.Helper()
	ctx := context.Background()
	set := pgtest.Shared()
	dsns := set.NewDatabases(ctx, t, "typed")
	truth := set.NewDatabases(ctx, t, "typedtruth")[0]
	dialect := pgdialect.New()
	open := func(dsn string) *bun.DB {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), dialect)
		t.Cleanup(func() { db.Close() })
		if _, err := db.NewCreateTable().Model((*Typed)(nil)).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		return db
	}
	e := &typedEnv{}
	shards := map[session.ShardID]bun.IDB{}
	byPart := map[int64]session.ShardID{}
	for i, id := range typedShards {
		db := open(dsns[i])
		e.shards = append(e.shards, db)
		shards[id] = db
		byPart[int64(i)] = id
	}
	vm := chooser.NewValueMap("part", byPart)
	s, err := session.New(shards, vm, chooser.All, vm, session.WithShardOrder(typedShards...))
	if err != nil {
		t.Fatal(err)
	}
	e.s, e.single = s, open(truth)
	return e
}

// put writes rows through the session and into the unsharded database.
func (e *typedEnv) put(t *testing.T, rows []*Typed) {
	t.Helper()
	ctx := context.Background()
	if err := e.s.Insert(ctx, &rows); err != nil {
		t.Fatal(err)
	}
	if _, err := e.single.NewInsert().Model(&rows).Exec(ctx); err != nil {
		t.Fatal(err)
	}
}

// exec runs raw SQL on every shard and on the unsharded database.
// checkOrder runs ORDER BY order across the shards and on the unsharded
// database and fails unless both return the same ids in the same order.
func (e *typedEnv) checkOrder(t *testing.T, order []string) {
	t.Helper()
	ctx := context.Background()
	var got, want []Typed
	if err := e.s.NewSelect().Model(&got).Order(order...).Scan(ctx); err != nil {
		t.Fatalf("ORDER BY %v: sharded: %v", order, err)
	}
	w := e.single.NewSelect().Model(&want)
	for _, o := range order {
		w = w.OrderExpr(o)
	}
	if err := w.Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if g, w := typedIDs(got), typedIDs(want); !slices.Equal(g, w) {
		t.Errorf("ORDER BY %v: ids %v; unsharded %v", order, g, w)
	}
}

func (e *typedEnv) exec(t *testing.T, query string) {
	t.Helper()
	for _, db := range append([]*bun.DB{e.single}, e.shards...) {
		if _, err := db.ExecContext(context.Background(), query); err != nil {
			t.Fatalf("%s: %v", query, err)
		}
	}
}

func sp(s string) *string { return &s }

func ip(i int64) *int64 { return &i }

func fp(f float64) *float64 { return &f }

// decRow is a row with a numeric on shard part.
func decRow(id, part int64, dec string) *Typed {
	return &Typed{ID: id, Part: part, Dec: sp(dec)}
}

// bigEqual reports whether two numeric texts are the same number.
func bigEqual(a, b any) bool {
	as, bs := text(a), text(b)
	if as == "NaN" || bs == "NaN" || a == nil || b == nil {
		return as == bs
	}
	x, ok1 := new(big.Rat).SetString(as)
	y, ok2 := new(big.Rat).SetString(bs)
	return ok1 && ok2 && x.Cmp(y) == 0
}

func text(v any) string {
	switch x := v.(type) {
	case []byte:
		return string(x)
	case string:
		return x
	case nil:
		return "<nil>"
	}
	return "?"
}

// TestNumericAggregates: min, max, sum and avg of a numeric column merged
// over shards equal one database's, digit for digit.
func TestNumericAggregates(t *testing.T) {
	ctx := context.Background()
	e := newTypedEnv(t)
	e.put(t, []*Typed{
		{ID: 1, Part: 0, Dec: sp("1"), DecF: fp(1)}, {ID: 2, Part: 1, Dec: sp("1.5"), DecF: fp(1.5)},
		{ID: 3, Part: 2, Dec: sp("9.5"), DecF: fp(9.5)}, {ID: 4, Part: 3, Dec: sp("10.5"), DecF: fp(10.5)},
		decRow(5, 0, "12345678901234567890.000000000000000001"), decRow(6, 1, "-0.25"),
		{ID: 7, Part: 2, DecF: fp(0.1)}, {ID: 8, Part: 3, DecF: fp(0.2)}, {ID: 9, Part: 0, DecF: fp(1e20)},
		{ID: 10, Part: 1, Dec: sp("0.000000000000000000000000000007")},
	})
	cases := []struct {
		agg   session.Aggregate
		sql   string
		where string
	}{
		{session.Min("dec"), "min(dec)", "id < 3"}, // 1 and 1.5: text vs numbers
		{session.Min("dec"), "min(dec)", "id IN (3, 4)"},
		{session.Max("dec"), "max(dec)", "id IN (3, 4)"}, // 9.5 and 10.5 compare as text the other way
		{session.Min("dec"), "min(dec)", "true"},
		{session.Max("dec"), "max(dec)", "true"},
		{session.Sum("dec"), "sum(dec)", "true"},
		{session.Sum("dec"), "sum(dec)", "id < 5"},
		{session.Avg("dec"), "avg(dec)", "true"},
		{session.Avg("dec"), "avg(dec)", "id IN (1, 2, 6)"},
		{session.Sum("decf"), "sum(decf)", "true"},
		{session.Min("decf"), "min(decf)", "id < 3"}, // 1 and 1.5: panicked
		{session.Min("decf"), "min(decf)", "id IN (3, 4)"},
		{session.Max("decf"), "max(decf)", "id IN (3, 4)"},
		{session.Avg("decf"), "avg(decf)", "true"},
		{session.Avg("decf"), "avg(decf)", "id IN (1, 2)"},
		{session.Avg("dec"), "avg(dec)", "id = 10"},
		{session.Sum("dec"), "sum(dec)", "id > 4"},
	}
	for _, c := range cases {
		desc := "SELECT " + c.sql + " FROM typed WHERE " + c.where
		var got []map[string]any
		err := e.s.NewSelect().Model((*Typed)(nil)).Where(c.where).Aggregate(c.agg.As("v")).Scan(ctx, &got)
		if err != nil {
			t.Fatalf("%s: sharded: %v", desc, err)
		}
		var want []map[string]any
		if err := e.single.NewRaw("SELECT "+c.sql+" AS v FROM typed WHERE "+c.where).Scan(ctx, &want); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || text(got[0]["v"]) != text(want[0]["v"]) {
			t.Errorf("%s = %v; unsharded %q", desc, got, text(want[0]["v"]))
		}
	}
}

// TestNumericOrder: rows ordered by a numeric column across shards come in
// PostgreSQL's order, also for values float64 cannot tell apart, NaN
// (above every number) and equal values with different scales.
func TestNumericOrder(t *testing.T) {
	ctx := context.Background()
	e := newTypedEnv(t)
	decs := []string{"10.5", "9.5", "1", "1.5", "1.00", "1.0", "-2", "NaN", "Infinity", "-Infinity",
		"0.10000000000000000001", "0.10000000000000000002", "0.1", "100000000000000000000000000001",
		"100000000000000000000000000000", "-0.000000000000000000000000000001", "0"}
	var rows []*Typed
	for i, d := range decs {
		rows = append(rows, decRow(int64(i+1), int64(i%4), d))
	}
	rows = append(rows, &Typed{ID: 100, Part: 1}, &Typed{ID: 101, Part: 2})
	e.put(t, rows)
	for _, order := range [][]string{{"dec", "id"}, {"dec DESC", "id"}, {"dec NULLS FIRST", "id"},
		{"dec DESC NULLS LAST", "id"}, {"dec NULLS LAST", "id DESC"}} {
		e.checkOrder(t, order)
	}
	// A numeric scanned into a float64 cannot be ordered exactly in Go.
	var got []Typed
	err := e.s.NewSelect().Model(&got).Order("decf").Scan(ctx)
	if !errors.Is(err, session.ErrUnsupported) {
		t.Fatalf("ORDER BY decf (numeric into float64): err = %v; want ErrUnsupported", err)
	}
	wantIn(t, err, "decf", "numeric")
}

func typedIDs(rows []Typed) []int64 {
	var ids []int64
	for _, r := range rows {
		ids = append(ids, r.ID)
	}
	return ids
}

// TestNumericGroups: GROUP BY a numeric puts 1, 1.0 and 1.00 in one group as
// PostgreSQL does, and an Order on the grouped column is honoured.
func TestNumericGroups(t *testing.T) {
	ctx := context.Background()
	e := newTypedEnv(t)
	decs := []string{"1", "1.0", "1.00", "10.5", "9.5", "2", "2.000", "NaN", "NaN", "-1"}
	var rows []*Typed
	for i, d := range decs {
		rows = append(rows, decRow(int64(i+1), int64(i%4), d))
	}
	rows = append(rows, &Typed{ID: 50, Part: 3})
	e.put(t, rows)
	for _, order := range []string{"dec", "dec DESC", "dec NULLS FIRST", "n DESC, dec"} {
		var got []map[string]any
		err := e.s.NewSelect().Model((*Typed)(nil)).GroupBy("dec").Aggregate(session.CountAll().As("n")).
			Order(strings.Split(order, ", ")...).Scan(ctx, &got)
		if err != nil {
			t.Fatalf("GROUP BY dec ORDER BY %s: %v", order, err)
		}
		var want []map[string]any
		if err := e.single.NewRaw("SELECT dec, count(*) AS n FROM typed GROUP BY dec ORDER BY "+order).Scan(ctx, &want); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("GROUP BY dec ORDER BY %s: %d groups %v; unsharded %d %v", order, len(got), got, len(want), want)
		}
		for i := range got {
			if !bigEqual(got[i]["dec"], want[i]["dec"]) || got[i]["n"] != want[i]["n"] {
				t.Errorf("GROUP BY dec ORDER BY %s: row %d = %v; unsharded %v", order, i, got[i], want[i])
			}
		}
	}
}

// TestCharN: char(n) ignores trailing spaces in PostgreSQL, in ORDER BY and
// GROUP BY alike.
func TestCharN(t *testing.T) {
	ctx := context.Background()
	e := newTypedEnv(t)
	codes := []string{"ab", "ab\t", "ab!", "a", "b", "ab", " a", "a\x01", "", "zz"}
	var rows []*Typed
	for i, c := range codes {
		rows = append(rows, &Typed{ID: int64(i + 1), Part: int64(i % 4), Code: sp(c)})
	}
	rows = append(rows, &Typed{ID: 60, Part: 2})
	e.put(t, rows)
	for _, order := range [][]string{{`code COLLATE "C"`, "id"}, {`code COLLATE "C" DESC`, "id"}} {
		e.checkOrder(t, order)
	}
	for _, order := range []string{`code COLLATE "C"`, `code COLLATE "C" DESC`} {
		var got []map[string]any
		err := e.s.NewSelect().Model((*Typed)(nil)).GroupBy("code").Aggregate(session.CountAll().As("n")).
			Order(order).Scan(ctx, &got)
		if err != nil {
			t.Fatalf("GROUP BY code ORDER BY %s: %v", order, err)
		}
		var want []map[string]any
		if err := e.single.NewRaw("SELECT code, count(*) AS n FROM typed GROUP BY code ORDER BY "+order).Scan(ctx, &want); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("GROUP BY code ORDER BY %s: %d groups %v; unsharded %d %v", order, len(got), got, len(want), want)
		}
		for i := range got {
			if text(got[i]["code"]) != text(want[i]["code"]) || got[i]["n"] != want[i]["n"] {
				t.Errorf("GROUP BY code ORDER BY %s: row %d = %v; unsharded %v", order, i, got[i], want[i])
			}
		}
	}
}

// TestNullzero: a real 0 in a nullzero column is a number, not NULL. A
// pointer field tells them apart and merges exactly; a non-pointer field
// cannot, and an order on it across shards is refused.
func TestNullzero(t *testing.T) {
	ctx := context.Background()
	e := newTypedEnv(t)
	var rows []*Typed
	for i := range 12 {
		r := &Typed{ID: int64(i + 1), Part: int64(i % 4)}
		if i%3 != 0 {
			r.Lvl = ip(int64(i%5) - 2)
			r.Flat = int64(i%5) - 2
		}
		rows = append(rows, r)
	}
	e.put(t, rows)
	// Real zeros written by SQL, where Bun would write NULL.
	e.exec(t, "UPDATE typed SET lvl = 0, flat = 0 WHERE id IN (1, 6)")
	for _, order := range [][]string{{"lvl", "id"}, {"lvl DESC", "id"}, {"lvl NULLS FIRST", "id"}, {"lvl DESC NULLS LAST", "id DESC"}} {
		e.checkOrder(t, order)
	}
	var got []Typed
	err := e.s.NewSelect().Model(&got).Order("flat", "id").Scan(ctx)
	if !errors.Is(err, session.ErrUnsupported) {
		t.Fatalf("ORDER BY flat (nullzero, not a pointer): err = %v, %v; want ErrUnsupported", err, typedIDs(got))
	}
	wantIn(t, err, "flat", "pointer")
	// Grouped, the values come from the driver: 0 and NULL are two groups.
	var groups []map[string]any
	if err := e.s.NewSelect().Model((*Typed)(nil)).GroupBy("flat").Aggregate(session.CountAll().As("n")).
		Order("flat").Scan(ctx, &groups); err != nil {
		t.Fatal(err)
	}
	var want []map[string]any
	if err := e.single.NewRaw("SELECT flat, count(*) AS n FROM typed GROUP BY flat ORDER BY flat").Scan(ctx, &want); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(groups, want) {
		t.Errorf("GROUP BY flat = %v; unsharded %v", groups, want)
	}
}

// TestBareNulls: "col NULLS FIRST" (ASC implied) merges across shards, as
// plain rows and as grouped rows.
func TestBareNulls(t *testing.T) {
	ctx := context.Background()
	e := newTypedEnv(t)
	var rows []*Typed
	for i := range 10 {
		r := &Typed{ID: int64(i + 1), Part: int64(i % 4), Grp: int64(i % 3)}
		if i%4 != 1 {
			r.Lvl = ip(int64(i % 3))
		}
		rows = append(rows, r)
	}
	e.put(t, rows)
	for _, order := range [][]string{{"lvl NULLS FIRST", "id"}, {"lvl nulls last", "id"}} {
		e.checkOrder(t, order)
		var groups, wantG []map[string]any
		if err := e.s.NewSelect().Model((*Typed)(nil)).GroupBy("lvl").Aggregate(session.CountAll().As("n")).
			Order(order[0]).Scan(ctx, &groups); err != nil {
			t.Fatalf("GROUP BY lvl ORDER BY %s: %v", order[0], err)
		}
		if err := e.single.NewRaw("SELECT lvl, count(*) AS n FROM typed GROUP BY lvl ORDER BY "+order[0]).Scan(ctx, &wantG); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(groups, wantG) {
			t.Errorf("GROUP BY lvl ORDER BY %s = %v; unsharded %v", order[0], groups, wantG)
		}
	}
}

// TestUnsupportedTypes: a column whose SQL type the merge cannot compare
// exactly is refused, naming the column.
func TestUnsupportedTypes(t *testing.T) {
	ctx := context.Background()
	e := newTypedEnv(t)
	var rows []Typed
	var groups []map[string]any
	for _, c := range []struct {
		name string
		err  error
	}{
		{"order jsonb", e.s.NewSelect().Model(&rows).Order(`doc COLLATE "C"`).Scan(ctx)},
		{"order jsonb plain", e.s.NewSelect().Model(&rows).Order("doc").Scan(ctx)},
		{"group jsonb", e.s.NewSelect().Model((*Typed)(nil)).GroupBy("doc").Scan(ctx, &groups)},
		{"min jsonb", e.s.NewSelect().Model((*Typed)(nil)).Aggregate(session.Min("doc")).Scan(ctx, &groups)},
		{"order char(n) by collation", e.s.NewSelect().Model(&rows).Order("code").Scan(ctx)},
	} {
		if !errors.Is(c.err, session.ErrUnsupported) {
			t.Errorf("%s: err = %v; want ErrUnsupported", c.name, c.err)
			continue
		}
		col := "doc"
		if strings.Contains(c.name, "char") {
			col = "code"
		}
		wantIn(t, c.err, col)
	}
}
