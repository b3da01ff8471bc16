package session_test

import (
	"context"
	"database/sql"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/session"
)

// Account is the model of the strategy tests, sharded by its id.
type Account struct {
	bun.BaseModel `bun:"table:accounts"`
	session.Token

	ID   int64  `bun:",pk,autoincrement:false"`
	Name string `bun:",notnull"`
}

var acctShards = []session.ShardID{"s0", "s1", "s2", "s3"}

type routing interface {
	chooser.ShardChooser
	chooser.IdentityChooser
	chooser.ExecuteChooser
}

// TestStrategiesOnRealShards runs every ready-made strategy as the session's
// choosers on four real shards: rows land where the strategy says, a Get
// by id runs one statement on the owning shard, and an IN list on the key
// reaches only the shards that own its values, each with its own values.
func TestStrategiesOnRealShards(t *testing.T) {
	ctx := context.Background()
	ids := make([]int64, 120)
	for i := range ids {
		ids[i] = int64(i*37 + 1)
	}
	layout := identity.DefaultLayout()
	assign := chooser.Spread(layout.Buckets(), acctShards...)
	gens := map[session.ShardID]*identity.Generator{} // one per shard, on its first bucket
	for b, id := range assign {
		if gens[id] == nil {
			g, err := identity.NewGenerator(layout, b)
			must(t, err)
			gens[id] = g
		}
	}
	encoded := make([]int64, len(ids)) // ids that encode a bucket: encoded[i] on shard i mod 4
	for i := range encoded {
		var err error
		encoded[i], err = gens[acctShards[i%4]].Next()
		must(t, err)
	}

	type strategy struct {
		name  string
		build func(t *testing.T, dbs map[session.ShardID]*bun.DB) routing
		ids   []int64
	}
	strategies := []strategy{
		{"hash", func(t *testing.T, _ map[session.ShardID]*bun.DB) routing {
			h, err := chooser.NewHash("id", chooser.Spread(64, acctShards...))
			must(t, err)
			return h
		}, ids},
		{"jump", func(t *testing.T, _ map[session.ShardID]*bun.DB) routing {
			j, err := chooser.NewJump("id", acctShards...)
			must(t, err)
			return j
		}, ids},
		{"ranges", func(t *testing.T, _ map[session.ShardID]*bun.DB) routing {
			r, err := chooser.NewRanges("id",
				chooser.Range[int64]{From: 0, To: 1000, Shard: "s0"},
				chooser.Range[int64]{From: 1000, To: 2000, Shard: "s1"},
				chooser.Range[int64]{From: 2000, To: 3000, Shard: "s2"},
				chooser.Range[int64]{From: 3000, Unbounded: true, Shard: "s3"})
			must(t, err)
			return r
		}, ids},
		{"lookup directory", func(t *testing.T, dbs map[session.ShardID]*bun.DB) routing {
			dir := session.NewTableDirectory(dbs["s0"], "bunshard_directory")
			must(t, dir.CreateTable(ctx, "bigint"))
			for i, id := range ids {
				must(t, dir.Assign(ctx, id, acctShards[(i*7)%4]))
			}
			l, err := chooser.NewLookup("id", dir)
			must(t, err)
			return l
		}, ids},
		{"shard-encoded ids", func(t *testing.T, _ map[session.ShardID]*bun.DB) routing {
			f, err := chooser.NewFromID("id", layout, assign)
			must(t, err)
			return f
		}, encoded},
		{"first of ranges and hash", func(t *testing.T, _ map[session.ShardID]*bun.DB) routing {
			r, err := chooser.NewRanges("id", chooser.Range[int64]{From: 0, To: 500, Shard: "s3"})
			must(t, err)
			h, err := chooser.NewHash("id", chooser.Spread(16, acctShards...))
			must(t, err)
			return chooser.First(r, h) // ids below 500 on s3, the rest by hash
		}, ids},
	}
	for _, st := range strategies {
		t.Run(st.name, func(t *testing.T) {
			shards, dbs, counts := accountShards(t)
			c := st.build(t, dbs)
			s, err := session.New(shards, c, c, c, session.WithShardOrder(acctShards...))
			must(t, err)
			var accts []*Account
			for _, id := range st.ids {
				accts = append(accts, &Account{ID: id, Name: fmt.Sprint("acct ", id)})
			}
			must(t, s.Insert(ctx, &accts))
			home := map[int64]session.ShardID{}
			for _, a := range accts {
				want, err := c.ChooseShard(ctx, s.Table(a), a)
				must(t, err)
				got, _ := a.Shard()
				if got != want {
					t.Fatalf("account %d went to %s; the strategy says %s", a.ID, got, want)
				}
				home[a.ID] = got
			}
			for _, id := range acctShards {
				var n int
				must(t, dbs[id].NewSelect().Model((*Account)(nil)).ColumnExpr("count(*)").Scan(ctx, &n))
				want := 0
				for _, h := range home {
					if h == id {
						want++
					}
				}
				if n != want {
					t.Errorf("%s holds %d accounts; want %d", id, n, want)
				}
			}
			// A Get is one statement on the owning shard.
			for _, id := range st.ids[:12] {
				counts.reset()
				var a Account
				if err := s.Get(ctx, &a, id); err != nil {
					t.Fatalf("Get(%d) = %v", id, err)
				}
				if per := counts.per(); per[home[id]] != 1 || sum(per) != 1 {
					t.Errorf("Get(%d) ran %v; want one statement on %s", id, per, home[id])
				}
			}
			// An IN list reaches only the owners, each with its own keys.
			keys := st.ids[:20]
			counts.reset()
			var got []Account
			must(t, s.NewSelect().Model(&got).WhereShardKey("id", toAny(keys)...).Scan(ctx))
			if len(got) != len(keys) {
				t.Errorf("IN list of %d keys returned %d rows", len(keys), len(got))
			}
			for _, id := range acctShards {
				sqls := counts.c[id].statements()
				var own []int64
				for _, k := range keys {
					if home[k] == id {
						own = append(own, k)
					}
				}
				if len(own) == 0 && len(sqls) > 0 || len(own) > 0 && len(sqls) != 1 {
					t.Fatalf("%s owns %v and ran %d statements", id, own, len(sqls))
				}
				for _, k := range keys {
					mentions := regexp.MustCompile(`\b` + fmt.Sprint(k) + `\b`).MatchString(sqls0(sqls))
					if mentions != slices.Contains(own, k) {
						t.Errorf("%s SQL mentions key %d: %v; owns it: %v\n%s", id, k, mentions, slices.Contains(own, k), sqls0(sqls))
					}
				}
			}
		})
	}

	t.Run("round robin", func(t *testing.T) {
		shards, _, _ := accountShards(t)
		rr, err := chooser.NewRoundRobin(acctShards...)
		must(t, err)
		s, err := session.New(shards, rr, chooser.All, chooser.All, session.WithShardOrder(acctShards...))
		must(t, err)
		var accts []*Account
		for i := range 8 {
			accts = append(accts, &Account{ID: int64(i + 1), Name: "rr"})
		}
		for _, a := range accts { // one at a time: each insert takes the next shard
			must(t, s.Insert(ctx, a))
		}
		for i, a := range accts {
			if got, _ := a.Shard(); got != acctShards[i%4] {
				t.Errorf("account %d went to %s; want %s", a.ID, got, acctShards[i%4])
			}
		}
	})
}

type acctCounts struct{ c map[session.ShardID]*counter }

func (a acctCounts) reset() {
	for _, c := range a.c {
		c.reset()
	}
}

func (a acctCounts) per() map[session.ShardID]int {
	out := map[session.ShardID]int{}
	for id, c := range a.c {
		out[id] = len(c.statements())
	}
	return out
}

// accountShards makes four shard databases with the accounts table, each
// *bun.DB behind a counting hook.
func accountShards(t *testing.T) (map[session.ShardID]bun.IDB, map[session.ShardID]*bun.DB, acctCounts) {
	t.Helper()
	ctx := context.Background()
	dsns := pgtest.Shared().NewDatabases(ctx, t, "strat")
	dialect := pgdialect.New()
	shards := map[session.ShardID]bun.IDB{}
	dbs := map[session.ShardID]*bun.DB{}
	counts := acctCounts{c: map[session.ShardID]*counter{}}
	for i, id := range acctShards {
		raw := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsns[i]))), dialect)
		t.Cleanup(func() { raw.Close() })
		c := &counter{}
		db := raw.WithQueryHook(c)
		if _, err := db.NewCreateTable().Model((*Account)(nil)).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		shards[id], dbs[id], counts.c[id] = db, raw, c
	}
	return shards, dbs, counts
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func sum(m map[session.ShardID]int) int {
	n := 0
	for _, v := range m {
		n += v
	}
	return n
}

func toAny(xs []int64) []any {
	out := make([]any, len(xs))
	for i, x := range xs {
		out[i] = x
	}
	return out
}

func sqls0(s []string) string { return strings.Join(s, "\n") }
