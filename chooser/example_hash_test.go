package chooser_test

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
)

func ExampleHash() {
	type Customer struct {
		bun.BaseModel `bun:"table:customers"`
		ID            int64 `bun:",pk"`
		Name          string
	}
	// Bun's table metadata; NewDB does not connect.
	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector()), pgdialect.New())
	customers := db.Table(reflect.TypeFor[Customer]())
	ctx := context.Background()

	// 1024 buckets over three shards: buckets 0-341 on s0, 342-682 on s1,
	// 683-1023 on s2.
	h, err := chooser.NewHash("id", chooser.Spread(1024, "s0", "s1", "s2"))
	if err != nil {
		panic(err)
	}
	for _, id := range []int64{1, 2, 3} {
		b, _ := h.Bucket(id)
		shard, _ := h.ChooseShard(ctx, customers, &Customer{ID: id, Name: "x"})
		fmt.Printf("customer %d: bucket %d, shard %s\n", id, b, shard)
	}

	// WHERE id IN (1, 2, 3), declared on the statement, goes to two shards,
	// and each receives only its own keys.
	stmt := &chooser.Statement{Op: chooser.OpSelect, Table: customers,
		Criteria: []chooser.Criterion{{Column: "id", Values: []any{int64(1), int64(2), int64(3)}}}}
	target, _ := h.ChooseExecute(ctx, stmt)
	parts, _ := h.SplitValues(ctx, customers, "id", stmt.Criteria[0].Values)
	fmt.Println("IN (1, 2, 3) goes to", target, parts)

	// Move customer 3's bucket to a new shard s3, once its rows are copied.
	b, _ := h.Bucket(int64(3))
	assign := h.Buckets()
	assign[b] = "s3"
	moved, err := chooser.NewHash("id", assign)
	if err != nil {
		panic(err)
	}
	target, _ = moved.ChooseIdentity(ctx, chooser.Key{Table: customers, PK: []any{int64(3)}})
	fmt.Println("Get(3) after the move goes to", target)
	// Output:
	// customer 1: bucket 405, shard s1
	// customer 2: bucket 432, shard s1
	// customer 3: bucket 65, shard s0
	// IN (1, 2, 3) goes to [s1 s0] map[s0:[3] s1:[1 2]]
	// Get(3) after the move goes to [s3]
}
