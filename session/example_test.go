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

type City struct {
	bun.BaseModel `bun:"table:cities"`
	session.Token // remembers the shard each row came from

	ID        int64 `bun:",pk"`
	Continent string
	Name      string
}

// This example needs running PostgreSQL servers, so it is compiled but not run.
func Example() {
	ctx := context.Background()
	dialect := pgdialect.New() // one dialect instance for every shard
	open := func(dsn string) *bun.DB {
		return bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), dialect)
	}
	shards := map[session.ShardID]bun.IDB{
		"asia":   open("postgres://postgres@127.0.0.1:5433/app?sslmode=disable"),
		"europe": open("postgres://postgres@127.0.0.1:5434/app?sslmode=disable"),
	}
	byContinent := chooser.NewValueMap("continent", map[string]session.ShardID{
		"Asia": "asia", "Europe": "europe",
	})
	sess, err := session.New(shards, byContinent, chooser.All, byContinent)
	if err != nil {
		panic(err)
	}
	defer sess.Close()

	cities := []*City{{ID: 1, Continent: "Asia", Name: "Tokyo"}, {ID: 2, Continent: "Europe", Name: "Oslo"}}
	if err := sess.Insert(ctx, &cities); err != nil { // one INSERT per shard
		panic(err)
	}
	var tokyo City
	if err := sess.Get(ctx, &tokyo, 1); err != nil {
		panic(err)
	}
	shard, _ := tokyo.Shard()
	fmt.Println(tokyo.Name, "lives on", shard)

	var all []City
	if err := sess.NewSelect().Model(&all).Order("id").Scan(ctx); err != nil {
		panic(err)
	}
}
