package session_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/session"
)

// TestExplainMatchesStatements: for each kind of statement, the
// explanation names exactly the shards that then receive a statement, and
// each shard's statement carries the key values the explanation gives it.
func TestExplainMatchesStatements(t *testing.T) {
	ctx := context.Background()
	r := newRouted(t)
	vm := chooser.NewValueMap("region", map[string]session.ShardID{"a": "a", "b": "b", "c": "c", "d": "d"})
	s, err := session.New(r.shards, vm, vm, vm, session.WithShardOrder(plShards...))
	if err != nil {
		t.Fatal(err)
	}
	s2 := s // keeps s for the closures

	check := func(name string, e session.Explanation, run func() error, merge string) {
		t.Helper()
		r.reset()
		if err := run(); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var ran []session.ShardID
		for _, id := range plShards {
			stmts := r.counts[id].statements()
			if len(stmts) == 0 {
				continue
			}
			ran = append(ran, id)
			for _, c := range e.Keys[id] {
				for _, v := range c.Values {
					lit := fmt.Sprint(v)
					if _, ok := v.(string); ok {
						lit = "'" + lit + "'"
					}
					if !strings.Contains(strings.Join(stmts, "\n"), lit) {
						t.Errorf("%s: shard %s received %q, without its key %s = %s from the explanation", name, id, stmts, c.Column, lit)
					}
				}
			}
		}
		want := slices.Sorted(slices.Values(e.Shards))
		if !slices.Equal(ran, want) {
			t.Errorf("%s: statements went to %v; the explanation says %v\n%s", name, ran, e.Shards, e)
		}
		if !strings.Contains(e.String(), merge) {
			t.Errorf("%s: explanation\n%s\nlacks %q", name, e, merge)
		}
	}

	// insert
	locs := []*plLocation{{ID: 1, Region: "a", City: "oslo"}, {ID: 2, Region: "b", City: "lima"}, {ID: 3, Region: "b", City: "cusco"}, {ID: 4, Region: "c", City: "quito"}}
	e, err := s.ExplainWrite(ctx, "insert", &locs)
	if err != nil {
		t.Fatal(err)
	}
	if got := e.String(); !strings.Contains(got, "insert PlLocation: [a b c] by placement") || !strings.Contains(got, "b: id IN (2, 3)") {
		t.Errorf("insert explanation:\n%s", got)
	}
	check("insert", e, func() error { return s.Insert(ctx, &locs) }, "one statement per shard")

	// get: the key is not the shard key, so every shard is a candidate
	e, err = s.ExplainGet(ctx, (*plLocation)(nil), 2)
	if err != nil {
		t.Fatal(err)
	}
	var got plLocation
	check("get", e, func() error { return s.Get(ctx, &got, 2) }, "the one row among 4 candidate shards")
	if e.By != "chooser" || !strings.Contains(e.String(), "by chooser (") {
		t.Errorf("get explanation %s; want by chooser, naming it", e)
	}

	// select: a split IN list, ordered, with a window
	sel := func() *session.SelectQuery {
		var rows []plLocation
		return s2.NewSelect().Model(&rows).WhereShardKey("region", "b", "c").Order("id").Limit(1).Offset(1)
	}
	e, err = sel().Explain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if e.Keys["b"][0].Values[0] != "b" || e.Keys["c"][0].Values[0] != "c" || len(e.Keys["b"][0].Values) != 1 {
		t.Errorf("select keys %v; want b: [b], c: [c]", e.Keys)
	}
	check("select", e, func() error { return sel().Scan(ctx) }, "ordered merge on id ASC; each shard returns its first 2 rows, then OFFSET 1 LIMIT 1")
	for _, id := range []session.ShardID{"b", "c"} {
		if q := r.counts[id].statements()[0]; !strings.Contains(q, "LIMIT 2") {
			t.Errorf("select on %s sent %q; want LIMIT 2 as explained", id, q)
		}
	}
	// one shard, by the context
	e, err = sel().Explain(session.WithShardID(ctx, "b"))
	if err != nil || e.By != "context" || !strings.Contains(e.String(), "one shard") {
		t.Errorf("pinned select explanation = %v, %v", e, err)
	}
	// aggregate re-merge
	var counts []struct {
		Region string
		N      int64
	}
	agg := s.NewSelect().Model((*plLocation)(nil)).GroupBy("region").Aggregate(session.CountAll().As("n"))
	e, err = agg.Explain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("aggregate", e, func() error { return agg.Scan(ctx, &counts) }, "aggregate re-merge")

	// update from a plain Where IN
	upd := func() *session.UpdateQuery {
		//lint:ignore SA1019 bun.In is the form apps write, and the one wherekey.go prunes
		return s2.NewUpdate().Model((*plLocation)(nil)).Set("city = upper(city)").Where("region IN (?)", bun.In([]string{"a", "c"}))
	}
	e, err = upd().Explain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("update", e, func() error { _, err := upd().Exec(ctx); return err }, "rows affected summed")

	// delete
	del := func() *session.DeleteQuery {
		return s2.NewDelete().Model((*plLocation)(nil)).WhereShardKey("region", "c")
	}
	e, err = del().Explain(ctx)
	if err != nil {
		t.Fatal(err)
	}
	check("delete", e, func() error { _, err := del().Exec(ctx); return err }, "delete PlLocation: [c] by chooser")

	// raw
	raw := func() *session.RawQuery {
		return s2.NewRaw("SELECT id FROM locations WHERE region IN ('a', 'b')").ShardKey((*plLocation)(nil), "region", "a", "b")
	}
	e, err = raw().Explain(ctx, chooser.OpSelect)
	if err != nil {
		t.Fatal(err)
	}
	var ids []int64
	check("raw", e, func() error { return raw().Scan(ctx, &ids) }, "concatenation in route order")
	if len(ids) != 3 {
		t.Errorf("raw select = %v; want 3 ids", ids)
	}
}
