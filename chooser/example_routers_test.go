package chooser_test

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// settingsRouter keeps the Setting model on shard "main", as a Django router
// keeps one app on one database: reads and writes of settings go there, its
// table exists only there, and other models' tables stay off it.
type settingsRouter struct{ settings *schema.Table }

func (r settingsRouter) RouteRead(_ context.Context, stmt *chooser.Statement) (chooser.Target, error) {
	if stmt.Table == r.settings {
		return chooser.Shards("main"), nil
	}
	return chooser.None(), nil // no opinion: ask on
}

func (r settingsRouter) RouteWrite(_ context.Context, w *chooser.Write) (chooser.Target, error) {
	if w.Table == r.settings {
		return chooser.Shards("main"), nil
	}
	return chooser.None(), nil
}

func (r settingsRouter) AllowMigrate(_ context.Context, shard identity.ShardID, table *schema.Table) chooser.Verdict {
	return chooser.VerdictOf((table == r.settings) == (shard == "main"))
}

func ExampleNewRouters() {
	type Setting struct {
		bun.BaseModel `bun:"table:settings"`
		Name          string `bun:",pk"`
		Value         string
	}
	type Customer struct {
		bun.BaseModel `bun:"table:customers"`
		ID            int64 `bun:",pk"`
		Region        string
	}
	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector()), pgdialect.New()) // does not connect
	settings := db.Table(reflect.TypeFor[Setting]())
	customers := db.Table(reflect.TypeFor[Customer]())
	ctx := context.Background()

	byRegion := chooser.NewValueMap("region", map[string]identity.ShardID{"eu": "eu1", "us": "us1"})
	routers := chooser.NewRouters(byRegion, settingsRouter{settings})

	where, _ := routers.ChooseShard(ctx, settings, &Setting{Name: "motd"})
	fmt.Println("insert a setting:", where)
	where, _ = routers.ChooseShard(ctx, customers, &Customer{ID: 1, Region: "eu"})
	fmt.Println("insert a customer:", where)
	get, _ := routers.ChooseIdentity(ctx, chooser.Key{Table: settings, PK: []any{"motd"}})
	fmt.Println("get a setting:", get)
	sel, _ := routers.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: customers})
	fmt.Println("select customers:", sel)
	for _, shard := range []identity.ShardID{"main", "eu1"} {
		fmt.Printf("on %s: settings %v, customers %v\n", shard,
			routers.AllowMigrate(ctx, shard, settings), routers.AllowMigrate(ctx, shard, customers))
	}
	// Output:
	// insert a setting: main
	// insert a customer: eu1
	// get a setting: [main]
	// select customers: all
	// on main: settings allow, customers deny
	// on eu1: settings deny, customers allow
}
