package migrate_test

import (
	"context"
	"database/sql"
	"fmt"
	"log"
	"os"
	"testing/fstest"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	bunmigrate "github.com/uptrace/bun/migrate"

	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/migrate"
)

// Migrations from SQL files on four shards, one of them limited to shard
// s0; then a rerun, which finds nothing to do. (In an application the files
// come from an embed.FS or os.DirFS, and a *session.Session can stand in
// for the DBs.)
func Example() {
	ctx := context.Background()
	shards, done := exampleShards(ctx, "example") // s0..s3, one *bun.DB each
	defer done()

	migrations := bunmigrate.NewMigrations()
	err := migrations.Discover(fstest.MapFS{
		"20260101000001_users.tx.up.sql":   {Data: []byte("CREATE TABLE users (id bigint PRIMARY KEY, name text)")},
		"20260101000001_users.tx.down.sql": {Data: []byte("DROP TABLE users")},
		"20260101000002_audit.tx.up.sql":   {Data: []byte("CREATE TABLE audit (at timestamptz)\n--bun:split\nCREATE INDEX ON audit (at)")},
		"20260101000002_audit.tx.down.sql": {Data: []byte("DROP TABLE audit")},
	})
	if err != nil {
		log.Fatal(err)
	}
	m, err := migrate.New(shards, migrations,
		migrate.WithConcurrency(2),
		migrate.WithScope("20260101000002", migrate.OnShards("s0")),
	)
	if err != nil {
		log.Fatal(err)
	}
	if err := m.Init(ctx); err != nil { // Bun's migration tables, on every shard
		log.Fatal(err)
	}
	report, err := m.Migrate(ctx)
	if err != nil {
		log.Fatal(err) // names each failed shard; the report says what each did
	}
	for _, res := range report {
		fmt.Printf("%s: group %d: %s; skipped %v\n", res.Shard, res.GroupID, res.Migrations, res.Skipped)
	}

	report, _ = m.Migrate(ctx) // a rerun applies nothing
	statuses, err := m.Status(ctx)
	if err != nil {
		log.Fatal(err)
	}
	for i, st := range statuses {
		fmt.Printf("%s: %s, %d applied, rerun group %d\n", st.Shard, st.State(), len(st.Applied), report[i].GroupID)
	}
	// Output:
	// s0: group 1: 20260101000001_users, 20260101000002_audit; skipped []
	// s1: group 1: 20260101000001_users, 20260101000002_audit; skipped [20260101000002]
	// s2: group 1: 20260101000001_users, 20260101000002_audit; skipped [20260101000002]
	// s3: group 1: 20260101000001_users, 20260101000002_audit; skipped [20260101000002]
	// s0: applied, 2 applied, rerun group 0
	// s1: applied, 2 applied, rerun group 0
	// s2: applied, 2 applied, rerun group 0
	// s3: applied, 2 applied, rerun group 0
}

// exampleShards opens a new database on each test server as shards s0..s3;
// done closes and drops them. The names are unique per process and server
// (external servers may be one server listed several times).
func exampleShards(ctx context.Context, prefix string) (migrate.DBs, func()) {
	dbs := migrate.DBs{}
	servers := pgtest.Shared().Servers()
	names := make([]string, len(servers))
	for i, srv := range servers {
		names[i] = fmt.Sprintf("%s_%d_%d", prefix, os.Getpid(), i)
		if err := srv.CreateDatabase(ctx, names[i]); err != nil {
			log.Fatal(err)
		}
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(srv.DSN(names[i])))), pgdialect.New())
		dbs[identity.ShardID(fmt.Sprintf("s%d", i))] = db
	}
	return dbs, func() {
		for _, db := range dbs {
			db.Close()
		}
		for i, srv := range servers {
			if err := srv.DropDatabase(ctx, names[i]); err != nil {
				log.Print(err)
			}
		}
	}
}
