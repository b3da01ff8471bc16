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
	"github.com/bunshard/bunshard/identity"
)

// Rows carry shard-encoded IDs: a row that has one is routed by it, a new
// row without one is placed in turn and gets its ID from its shard's
// database default (identity.Layout.FunctionSQL).
func ExampleFirst() {
	type Order struct {
		bun.BaseModel `bun:"table:orders"`
		ID            int64 `bun:",pk"`
	}
	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector()), pgdialect.New())
	orders := db.Table(reflect.TypeFor[Order]())
	ctx := context.Background()

	l := identity.DefaultLayout()
	byID, err := chooser.NewFromID("id", l, chooser.Spread(l.Buckets(), "s0", "s1"))
	if err != nil {
		panic(err)
	}
	inTurn, err := chooser.NewRoundRobin("s0", "s1")
	if err != nil {
		panic(err)
	}
	place := chooser.First(byID, inTurn)

	// This process issues IDs in bucket 700, which is on s1.
	gen, err := identity.NewGenerator(l, 700)
	if err != nil {
		panic(err)
	}
	id, _ := gen.Next()
	withID, _ := place.ChooseShard(ctx, orders, &Order{ID: id})
	first, _ := place.ChooseShard(ctx, orders, &Order{})
	second, _ := place.ChooseShard(ctx, orders, &Order{})
	get, _ := place.ChooseIdentity(ctx, chooser.Key{Table: orders, PK: []any{id}})
	fmt.Println("with an ID:", withID)
	fmt.Println("without:", first, second)
	fmt.Println("Get by ID:", get)
	// Output:
	// with an ID: s1
	// without: s0 s1
	// Get by ID: [s1]
}
