package session_test

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/session"
)

// Order's table name starts with a placeholder that each shard's bun.DB
// defines: a table-name prefix on the table-per-shard layout, and "" on the
// others.
type Order struct {
	bun.BaseModel `bun:"table:?(prefix)orders"`
	session.Token

	ID     int64 `bun:",pk"`
	Region string
}

// Three layouts side by side: shards a and b are schemas of one database,
// chosen by search_path; c has a database of its own; d and e are tables
// with a prefix in one schema of another database. This example needs
// running PostgreSQL servers, so it is compiled but not run.
func ExampleSession_CreateTables() {
	ctx := context.Background()
	dialect := pgdialect.New()
	open := func(dsn, searchPath, prefix string) bun.IDB {
		opts := []pgdriver.Option{pgdriver.WithDSN(dsn)}
		if searchPath != "" {
			opts = append(opts, pgdriver.WithConnParams(map[string]any{"search_path": searchPath}))
		}
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(opts...)), dialect)
		return db.WithNamedArg("prefix", bun.Safe(prefix))
	}
	const one, two, three = "postgres://postgres@db1/app?sslmode=disable",
		"postgres://postgres@db2/app?sslmode=disable", "postgres://postgres@db3/app?sslmode=disable"
	shards := map[session.ShardID]bun.IDB{
		"a": open(one, "shard_a", ""),
		"b": open(one, "shard_b", ""),
		"c": open(two, "", ""),
		"d": open(three, "", "d_"),
		"e": open(three, "", "e_"),
	}
	byRegion := chooser.NewValueMap("region", map[string]session.ShardID{"a": "a", "b": "b", "c": "c", "d": "d", "e": "e"})
	sess, err := session.New(shards, byRegion, chooser.All, byRegion)
	if err != nil {
		panic(err)
	}
	defer sess.Close()

	if err := sess.CreateTables(ctx, []any{(*Order)(nil)}, session.IfNotExists()); err != nil {
		panic(err)
	}
	tables, err := sess.Tables(ctx, (*Order)(nil))
	if err != nil {
		panic(err)
	}
	for _, id := range sess.Shards() {
		fmt.Println(id, tables[id]) // a [app.shard_a.orders] ... d [app.public.d_orders] ...
	}
}

// A shard with two streaming replicas: reads go to them, writes to the
// primary, and a request context that read-your-writes tracks sees its own
// writes. This example needs running PostgreSQL servers, so it is compiled
// but not run.
func ExampleWithReplicas() {
	ctx := context.Background()
	dialect := pgdialect.New()
	open := func(dsn string) *bun.DB {
		return bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), dialect)
	}
	shards := map[session.ShardID]bun.IDB{
		"eu": open("postgres://postgres@eu-primary/app?sslmode=disable"),
		"us": open("postgres://postgres@us-primary/app?sslmode=disable"),
	}
	byRegion := chooser.NewValueMap("region", map[string]session.ShardID{"eu": "eu", "us": "us"})
	sess, err := session.New(shards, byRegion, chooser.All, byRegion,
		session.WithReplicas("eu",
			open("postgres://postgres@eu-replica-1/app?sslmode=disable"),
			open("postgres://postgres@eu-replica-2/app?sslmode=disable")))
	if err != nil {
		panic(err)
	}
	defer sess.Close() // also stops the replicas' health checks

	ctx = sess.WithReadYourWrites(ctx) // once per request, in a middleware
	o := &Order{ID: 1, Region: "eu"}
	if err := sess.Insert(ctx, o); err != nil { // on eu's primary
		panic(err)
	}
	var again Order
	if err := sess.Get(ctx, &again, 1); err != nil { // sees the insert: the primary, or a replica that replayed it
		panic(err)
	}
	for _, st := range sess.Replicas() {
		fmt.Println(st.Shard, st.Index, st.Healthy, st.ReplayLSN)
	}
}
