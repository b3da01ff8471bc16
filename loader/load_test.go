package loader_test

import (
	"context"
	"database/sql"
	"errors"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/loader"
)

type author struct {
	bun.BaseModel `bun:"table:authors"`
	identity.Token

	ID    int64   `bun:",pk"`
	Books []*book `bun:"rel:has-many,join:id=author_id"`
}

type book struct {
	bun.BaseModel `bun:"table:books"`
	identity.Token

	ID       int64 `bun:",pk"`
	AuthorID int64
	Title    string
}

// statements is a Bun query hook counting one shard's statements.
type statements struct {
	mu   sync.Mutex
	sqls []string
}

func (c *statements) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (c *statements) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	c.mu.Lock()
	c.sqls = append(c.sqls, e.Query)
	c.mu.Unlock()
}

func (c *statements) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.sqls)
}

// twoShards is two databases on two servers, each holding authors and
// books; shard "a" has author 1 and its books, shard "b" author 2.
func twoShards(t *testing.T) (loader.Shards, map[identity.ShardID]*statements) {
	t.Helper()
	ctx := context.Background()
	dsns := pgtest.Shared().NewDatabases(ctx, t, "loader")
	dialect := pgdialect.New()
	shards := loader.Shards{}
	counts := map[identity.ShardID]*statements{}
	for i, id := range []identity.ShardID{"a", "b"} {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsns[i]))), dialect)
		t.Cleanup(func() { db.Close() })
		for _, m := range []any{(*author)(nil), (*book)(nil)} {
			if _, err := db.NewCreateTable().Model(m).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		n := int64(i + 1)
		if _, err := db.NewInsert().Model(&author{ID: n}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		books := []book{{ID: 10*n + 1, AuthorID: n, Title: string(id) + "1"}, {ID: 10*n + 2, AuthorID: n, Title: string(id) + "2"}}
		if _, err := db.NewInsert().Model(&books).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		c := &statements{}
		shards[id], counts[id] = db.WithQueryHook(c), c
	}
	return shards, counts
}

// TestLoadPlainShards uses the loader on its own: plain shard handles, no
// Router (each relation on its parents' shard), no session. Each author's
// books come from its own shard, with one statement per shard, and carry
// that shard on their Token.
func TestLoadPlainShards(t *testing.T) {
	ctx := context.Background()
	shards, counts := twoShards(t)
	parents := []*author{{ID: 1}, {ID: 2}, {ID: 1}}
	parents[0].SetShard("a")
	parents[1].SetShard("b")
	parents[2].SetShard("a")
	vals := make([]reflect.Value, len(parents))
	for i, p := range parents {
		vals[i] = reflect.ValueOf(p).Elem()
	}
	table := shards["a"].Dialect().Tables().Get(reflect.TypeFor[author]())
	loaded, err := loader.Load(ctx, shards, table, vals, "Books")
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range [][]string{{"a1", "a2"}, {"b1", "b2"}, {"a1", "a2"}} {
		var got []string
		for _, b := range parents[i].Books {
			shard, _ := b.Shard()
			got = append(got, b.Title)
			if wantShard := identity.ShardID(want[0][:1]); shard != wantShard {
				t.Errorf("book %q has shard %q on its Token; want %q", b.Title, shard, wantShard)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Errorf("parents[%d].Books = %v; want %v", i, got, want)
		}
	}
	if n := len(loaded.Objects()); n != 4 {
		t.Errorf("len(Objects()) = %d; want 4 (each book once)", n)
	}
	for id, c := range counts {
		if n := c.count(); n != 1 {
			t.Errorf("shard %s ran %d statements; want 1 (one IN list per shard)", id, n)
		}
	}
}

// TestLoadPlainShardsErrors: a parent with no shard and no Router, and a
// shard the handles do not hold, are errors naming what is missing; no
// statement is sent for the first, and the second is a *ShardError.
func TestLoadPlainShardsErrors(t *testing.T) {
	ctx := context.Background()
	shards, counts := twoShards(t)
	table := shards["a"].Dialect().Tables().Get(reflect.TypeFor[author]())

	unplaced := &author{ID: 1}
	_, err := loader.Load(ctx, shards, table, []reflect.Value{reflect.ValueOf(unplaced).Elem()}, "Books")
	if err == nil {
		t.Fatal("Load of a parent with no shard: nil error; want one saying no Router says where it lives")
	}
	elsewhere := &author{ID: 1}
	elsewhere.SetShard("c")
	_, err = loader.Load(ctx, shards, table, []reflect.Value{reflect.ValueOf(elsewhere).Elem()}, "Books")
	se, ok := errors.AsType[*loader.ShardError](err)
	if !ok || se.Shard != "c" {
		t.Fatalf("Load on unknown shard c: %v; want a *ShardError for shard c", err)
	}
	for id, c := range counts {
		if n := c.count(); n != 0 {
			t.Errorf("shard %s ran %d statements; want 0", id, n)
		}
	}
}
