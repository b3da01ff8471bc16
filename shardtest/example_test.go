package shardtest_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"

	"github.com/bunshard/bunshard/shardtest"
	"github.com/uptrace/bun/driver/pgdriver"
)

// Start is for programs (the demo, benchmarks); tests use shardtest.Main and shardtest.Shared.
// This example is compiled, not run: it starts real servers.
func ExampleStart() {
	set, err := shardtest.Start(4)
	if err != nil {
		log.Fatal(err) // the error says how to install PostgreSQL or name servers
	}
	defer set.Close()

	ctx := context.Background()
	for _, srv := range set.Servers() {
		if err := srv.CreateDatabase(ctx, "weather"); err != nil {
			log.Fatal(err)
		}
		db := sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(srv.DSN("weather"))))
		var port int
		if err := db.QueryRowContext(ctx, "SELECT inet_server_port()").Scan(&port); err != nil {
			log.Fatal(err)
		}
		fmt.Println(srv.Name(), port == srv.Port())
		_ = db.Close()
	}

	// A fault: shard 2 crashes, then comes back after crash recovery.
	shard := set.Server(2)
	if err := shard.Kill(); err != nil {
		log.Fatal(err)
	}
	if err := shard.Start(ctx); err != nil {
		log.Fatal(err)
	}
}
