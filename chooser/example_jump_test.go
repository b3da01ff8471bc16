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

func ExampleJump() {
	type Tenant struct {
		bun.BaseModel `bun:"table:tenants"`
		Slug          string `bun:",pk"`
	}
	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector()), pgdialect.New())
	tenants := db.Table(reflect.TypeFor[Tenant]())
	ctx := context.Background()

	three, err := chooser.NewJump("slug", "s0", "s1", "s2")
	if err != nil {
		panic(err)
	}
	// Appending a shard moves about a quarter of the tenants, all to s3.
	four, err := chooser.NewJump("slug", "s0", "s1", "s2", "s3")
	if err != nil {
		panic(err)
	}
	for _, slug := range []string{"acme", "globex", "initech", "umbrella", "hooli"} {
		before, _ := three.ChooseShard(ctx, tenants, &Tenant{Slug: slug})
		after, _ := four.ChooseShard(ctx, tenants, &Tenant{Slug: slug})
		fmt.Printf("%-8s %s -> %s\n", slug, before, after)
	}
	// Output:
	// acme     s0 -> s0
	// globex   s0 -> s3
	// initech  s1 -> s1
	// umbrella s2 -> s2
	// hooli    s0 -> s0
}
