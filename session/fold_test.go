package session_test

import (
	"context"
	"database/sql"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/session"
)

// FItem is Item on the table-per-shard layout: each shard's table is
// named with the shard's prefix. Its fields are Item's, so one converts to
// the other.
type FItem struct {
	bun.BaseModel `bun:"table:?(prefix)items"`
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

const foldShards = 64

// foldEnv is 64 logical shards on the harness's servers, table per shard:
// one database per server, one *bun.DB (one pool) per server, each shard a
// WithNamedArg clone of it with its own table prefix; and one unsharded
// database with every row.
type foldEnv struct {
	folded, plain *session.Session
	single        *bun.DB
	ids           []session.ShardID
	servers       []*counter // statements per server
	serverOf      map[session.ShardID]int
	dbs           []*bun.DB // one per server: every shard of the server is a clone sharing its pool
	dsns          []string
	shards        map[session.ShardID]bun.IDB
	byPart        *chooser.ValueMap[int64]
}

func foldShardID(i int) session.ShardID { return session.ShardID(fmt.Sprintf("p%02d", i)) }

func newFoldEnv(t *testing.T, rows int, seed uint64) *foldEnv {
	t.Helper()
	ctx := context.Background()
	set := pgtest.Shared()
	dsns := set.NewDatabases(ctx, t, "fold")
	truth := set.NewDatabases(ctx, t, "foldtruth")[0]
	dialect := pgdialect.New()
	open := func(dsn string) *bun.DB {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), dialect)
		t.Cleanup(func() { db.Close() })
		return db
	}
	e := &foldEnv{serverOf: map[session.ShardID]int{}, shards: map[session.ShardID]bun.IDB{}, dsns: dsns}
	for _, dsn := range dsns {
		c := &counter{}
		e.servers = append(e.servers, c)
		e.dbs = append(e.dbs, open(dsn).WithQueryHook(c))
	}
	byPart := map[int64]session.ShardID{}
	for i := range foldShards {
		id := foldShardID(i)
		srv := i % len(dsns)
		db := e.dbs[srv].WithNamedArg("prefix", bun.Safe(string(id)+"_"))
		if _, err := db.NewCreateTable().Model((*FItem)(nil)).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		e.shards[id] = db
		e.serverOf[id] = srv
		e.ids = append(e.ids, id)
		byPart[int64(i)] = id
	}
	e.byPart = chooser.NewValueMap("part", byPart)
	var err error
	if e.folded, err = session.New(e.shards, e.byPart, chooser.All, e.byPart, session.WithFolding()); err != nil {
		t.Fatal(err)
	}
	if e.plain, err = session.New(e.shards, e.byPart, chooser.All, e.byPart); err != nil {
		t.Fatal(err)
	}
	e.single = open(truth)
	if _, err := e.single.NewCreateTable().Model((*Item)(nil)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 11))
	names := []string{"apple", "Apple", "Äpfel", "zebra", "Zürich", "éclair", "日本", "", "Ω"}
	codes := []string{"ab", "ab!", "a", "", "zz", "Ab"}
	base := time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	items := make([]*FItem, rows)
	truthRows := make([]*Item, rows)
	for i := range items {
		it := &FItem{ID: int64(i + 1), Part: int64(r.IntN(foldShards)), Grp: int64(r.IntN(6)), At: base.Add(time.Duration(r.IntN(50)) * time.Hour)}
		if r.IntN(5) > 0 {
			v := float64(r.IntN(40)) / 4
			it.Num = &v
		}
		if r.IntN(5) > 0 {
			v := int64(r.IntN(30)) - 5
			it.Qty = &v
		}
		if r.IntN(6) > 0 {
			name := names[r.IntN(len(names))]
			it.Name = &name
		}
		it.Dec = randomDecimal(r)
		if r.IntN(6) > 0 {
			code := codes[r.IntN(len(codes))]
			it.Code = &code
		}
		if r.IntN(4) > 0 {
			v := int64(r.IntN(5)) - 2
			it.Lvl = &v
		}
		items[i] = it
		row := Item(*it)
		truthRows[i] = &row
	}
	if err := e.folded.Insert(ctx, &items); err != nil {
		t.Fatalf("rows of seed %d: %v", seed, err)
	}
	if _, err := e.single.NewInsert().Model(&truthRows).Exec(ctx); err != nil {
		t.Fatalf("rows of seed %d: %v", seed, err)
	}
	return e
}

func (e *foldEnv) reset() {
	for _, c := range e.servers {
		c.reset()
	}
}

// perServer returns the statements each server ran since reset.
func (e *foldEnv) perServer() []int {
	out := make([]int, len(e.servers))
	for i, c := range e.servers {
		out[i] = len(c.statements())
	}
	return out
}

// checkShards fails unless every object records the shard its part is
// placed on: a folded row split back to the wrong shard would not.
func (e *foldEnv) checkShards(t *testing.T, desc string, got []FItem) {
	t.Helper()
	for i := range got {
		id, ok := session.ShardOf(&got[i])
		if want := foldShardID(int(got[i].Part)); !ok || id != want {
			t.Fatalf("%s: row id %d of part %d records shard %q (%v); it lives on %s", desc, got[i].ID, got[i].Part, id, ok, want)
		}
	}
}

// TestFoldDifferential runs random ordered, limited and filtered selects,
// counts and aggregates over 64 table-per-shard shards on the harness's
// servers, folded, and compares them with one unsharded database; each
// statement must reach every server exactly once, and the same statements
// without WithFolding reach each server once per shard.
func TestFoldDifferential(t *testing.T) {
	ctx := context.Background()
	seed := diffSeed(t)
	e := newFoldEnv(t, 1500, seed)
	nServers := len(e.servers)
	perShard := foldShards / nServers
	// The first fan-out asks each shard where it is, once.
	if _, err := e.folded.NewSelect().Model((*FItem)(nil)).Count(ctx); err != nil {
		t.Fatal(err)
	}
	want1 := slices.Repeat([]int{1}, nServers)
	r := rand.New(rand.NewPCG(seed, 5))
	limits := []int{0, 1, 7, 50, 2000}
	offsets := []int{0, 0, 3, 60, 3000}
	for i := range 60 {
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
		var got []FItem
		var want []Item
		q := e.folded.NewSelect().Model(&got).Order(order...).Limit(limit).Offset(offset)
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
		e.reset()
		if err := q.Scan(ctx); err != nil {
			t.Fatalf("%s: sharded: %v", desc, err)
		}
		if n := e.perServer(); !slices.Equal(n, want1) {
			t.Fatalf("%s: statements per server %v; want one each", desc, n)
		}
		if err := w.Scan(ctx); err != nil {
			t.Fatalf("%s: unsharded: %v", desc, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d rows; unsharded %d", desc, len(got), len(want))
		}
		for j := range got {
			if g, w := sortKey(Item(got[j]), order), sortKey(want[j], order); g != w {
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
		e.checkShards(t, desc, got)

		// The count of the same rows, folded.
		cq := e.folded.NewSelect().Model((*FItem)(nil))
		cw := e.single.NewSelect().Model((*Item)(nil))
		if where != "" {
			cq, cw = cq.Where(where, arg), cw.Where(where, arg)
		}
		e.reset()
		n, err := cq.Count(ctx)
		if err != nil {
			t.Fatalf("%s: count: %v", desc, err)
		}
		if got := e.perServer(); !slices.Equal(got, want1) {
			t.Fatalf("%s: count: statements per server %v; want one each", desc, got)
		}
		wn, err := cw.Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if int64(n) != int64(wn) {
			t.Fatalf("%s: count %d; unsharded %d", desc, n, wn)
		}
	}

	// Per-shard counts: each shard's own table, not the group leader's.
	by, err := e.folded.NewSelect().Model((*FItem)(nil)).CountByShard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for i, id := range e.ids {
		var n int
		if err := e.single.NewRaw("SELECT count(*) FROM items WHERE part = ?", i).Scan(ctx, &n); err != nil {
			t.Fatal(err)
		}
		if by[id] != n {
			t.Fatalf("BUNSHARD_SEED=%d: shard %s counts %d; unsharded part %d has %d", seed, id, by[id], i, n)
		}
	}

	// Aggregates, folded.
	for i, c := range []struct {
		group []string
		sql   string
	}{
		{nil, "SELECT count(*) AS n, sum(qty) AS s, min(num) AS lo, max(at) AS hi, avg(dec) AS a FROM items"},
		{[]string{"grp"}, "SELECT grp, count(*) AS n, sum(qty) AS s, min(num) AS lo, max(at) AS hi, avg(dec) AS a FROM items GROUP BY grp ORDER BY grp"},
		{[]string{"part"}, "SELECT part, count(*) AS n, sum(qty) AS s, min(num) AS lo, max(at) AS hi, avg(dec) AS a FROM items GROUP BY part ORDER BY part"},
	} {
		q := e.folded.NewSelect().Model((*FItem)(nil)).
			Aggregate(session.CountAll().As("n"), session.Sum("qty").As("s"), session.Min("num").As("lo"),
				session.Max("at").As("hi"), session.Avg("dec").As("a"))
		if c.group != nil {
			q = q.GroupBy(c.group...).Order(c.group...)
		}
		var got, want []map[string]any
		e.reset()
		if err := q.Scan(ctx, &got); err != nil {
			t.Fatalf("aggregate %d: %v", i, err)
		}
		if n := e.perServer(); !slices.Equal(n, want1) {
			t.Fatalf("aggregate %d: statements per server %v; want one each", i, n)
		}
		if err := e.single.NewRaw(c.sql).Scan(ctx, &want); err != nil {
			t.Fatal(err)
		}
		if len(got) != len(want) {
			t.Fatalf("BUNSHARD_SEED=%d %s: %d groups; unsharded %d", seed, c.sql, len(got), len(want))
		}
		for j := range got {
			for _, name := range append([]string{"n", "s", "lo", "hi"}, c.group...) {
				if !sameValue(got[j][name], want[j][name]) {
					t.Fatalf("BUNSHARD_SEED=%d %s: row %d %s = %v; unsharded %v", seed, c.sql, j, name, got[j][name], want[j][name])
				}
			}
			if !sameNumeric(got[j]["a"], want[j]["a"]) {
				t.Fatalf("BUNSHARD_SEED=%d %s: row %d avg = %v; unsharded %v", seed, c.sql, j, got[j]["a"], want[j]["a"])
			}
		}
	}

	// Without WithFolding, the same select reaches each server once per shard.
	var all []FItem
	e.reset()
	if err := e.plain.NewSelect().Model(&all).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if n := e.perServer(); !slices.Equal(n, slices.Repeat([]int{perShard}, nServers)) {
		t.Fatalf("unfolded: statements per server %v; want %d each", n, perShard)
	}
	e.checkShards(t, "unfolded", all)
}

// TestFoldLeavesAlone checks the statements that must not fold: Apply,
// relation loads and a unit of work's reads each send one statement per
// shard, and a pinned select runs on its one shard.
func TestFoldLeavesAlone(t *testing.T) {
	ctx := context.Background()
	e := newFoldEnv(t, 200, diffSeed(t))
	perShard := slices.Repeat([]int{foldShards / len(e.servers)}, len(e.servers))
	if _, err := e.folded.NewSelect().Model((*FItem)(nil)).Count(ctx); err != nil {
		t.Fatal(err)
	}
	var got []FItem
	e.reset()
	err := e.folded.NewSelect().Model(&got).Apply(func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("grp >= 0") }).Scan(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.perServer(); !slices.Equal(n, perShard) {
		t.Fatalf("Apply: statements per server %v; want %v", n, perShard)
	}
	if len(got) != 200 {
		t.Fatalf("Apply: %d rows; want 200", len(got))
	}
	e.checkShards(t, "Apply", got)

	e.reset()
	n, err := e.folded.NewSelect().Model((*FItem)(nil)).ColumnExpr("id").Count(ctx)
	if err != nil || n != 200 {
		t.Fatalf("projected count: %d, %v; want 200", n, err)
	}
	if n := e.perServer(); !slices.Equal(n, perShard) {
		t.Fatalf("projected count: statements per server %v; want %v", n, perShard)
	}

	err = e.folded.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		var rows []*FItem
		e.reset()
		if err := u.NewSelect().Model(&rows).Scan(ctx); err != nil {
			return err
		}
		if len(rows) != 200 {
			return fmt.Errorf("unit: %d rows; want 200", len(rows))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	total := 0
	for _, c := range e.servers {
		for _, s := range c.statements() {
			if strings.HasPrefix(s, "SELECT") && strings.Contains(s, "_items") {
				total++
			}
		}
	}
	if total != foldShards {
		t.Fatalf("unit: %d selects; want one per shard (%d)", total, foldShards)
	}
}

// TestFoldPoolPerServer checks the pool shape docs/folding.md recommends:
// the 16 logical shards of a server are WithNamedArg clones of one *bun.DB,
// so they share its pool, and however many fan-outs run at once (folded
// selects, unfolded counts, single-shard gets), the connections each
// server's database sees (pg_stat_activity, sampled throughout) never pass
// the pool's SetMaxOpenConns.
func TestFoldPoolPerServer(t *testing.T) {
	ctx := context.Background()
	e := newFoldEnv(t, 300, diffSeed(t))
	const budget = 2
	for _, db := range e.dbs {
		db.SetMaxOpenConns(budget)
	}
	dialect := pgdialect.New()
	var watchers []*bun.DB
	for _, dsn := range e.dsns {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), dialect)
		db.SetMaxOpenConns(1)
		t.Cleanup(func() { db.Close() })
		watchers = append(watchers, db)
	}
	// Setup opened more connections than the budget; the pools closed the
	// extra ones at SetMaxOpenConns, but their server processes exit on their
	// own time. Wait for them to go before measuring.
	for i, w := range watchers {
		for deadline := time.Now().Add(30 * time.Second); ; {
			var n int
			if err := w.NewRaw("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()").Scan(ctx, &n); err != nil {
				t.Fatal(err)
			}
			if n <= budget {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("server %d: %d connections left from setup after SetMaxOpenConns(%d)", i, n, budget)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	peaks := make([]int, len(watchers))
	pooled := make([]int, len(watchers)) // the server's pool's own count
	samples := 0
	stop := make(chan struct{})
	watched := make(chan error, 1)
	go func() {
		defer close(watched)
		for {
			select {
			case <-stop:
				return
			default:
			}
			for i, w := range watchers {
				// Backends running a statement: a connection the pool closed
				// (a merge that stopped early cancels its shards' streams,
				// and pgdriver closes a cancelled connection) stays listed,
				// idle, until its server process exits, while the pool may
				// already have opened its replacement.
				var n int
				err := w.NewRaw("SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid() "+
					"AND state <> 'idle'").Scan(ctx, &n)
				if err != nil {
					watched <- err
					return
				}
				peaks[i] = max(peaks[i], n)
				pooled[i] = max(pooled[i], e.dbs[i].Stats().OpenConnections)
			}
			samples++
		}
	}()
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 8 {
		wg.Go(func() {
			for k := range 6 {
				var rows []FItem
				if err := e.folded.NewSelect().Model(&rows).Order("id").Limit(50).Scan(ctx); err != nil {
					errs <- err
					return
				}
				n, err := e.plain.NewSelect().Model((*FItem)(nil)).Count(ctx)
				if err != nil || n != 300 {
					errs <- fmt.Errorf("unfolded count %d, %v; want 300", n, err)
					return
				}
				var one FItem
				if err := e.folded.Get(ctx, &one, int64(1+(g*6+k)%300)); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(stop)
	if err := <-watched; err != nil {
		t.Fatal(err)
	}
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if samples == 0 {
		t.Fatal("pg_stat_activity was never sampled")
	}
	for i, p := range peaks {
		if p > budget {
			t.Fatalf("server %d: %d statements running on the shards' database at once; the pool allows %d connections", i, p, budget)
		}
		if pooled[i] > budget {
			t.Fatalf("server %d: its pool held %d connections at once; the budget is %d", i, pooled[i], budget)
		}
	}
	t.Logf("peak running statements per server %v, open connections %v, over %d samples (budget %d)", peaks, pooled, samples, budget)
}
