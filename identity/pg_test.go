package identity_test

import (
	"database/sql"
	"go.uber.org/goleak"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/pgtest"
)

// TestMain starts two PostgreSQL servers, one per shard, for the tests of
// Layout.FunctionSQL; without them the package's tests fail, saying how to
// provide PostgreSQL.
func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, 2, func() error { return goleak.Find() }))
}

type pgOrder struct {
	bun.BaseModel `bun:"table:app.orders"`

	ID     int64 `bun:",pk"`
	Source string
}

func openDB(t *testing.T, dsn string) *bun.DB {
	t.Helper()
	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), pgdialect.New())
	t.Cleanup(func() { db.Close() })
	return db
}

func mustExec(t *testing.T, db bun.IDB, query string) {
	t.Helper()
	if _, err := db.ExecContext(t.Context(), query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// TestFunctionSQLOnPostgreSQL runs the database function on two shards, each
// with its own buckets, while a Go Generator inserts into the same tables
// with a bucket of its own. Every ID is unique (the primary key would reject
// a repeat), decodes to its issuer's bucket, hence to its shard, and to the
// time of the test.
func TestFunctionSQLOnPostgreSQL(t *testing.T) {
	ctx := t.Context()
	l := identity.DefaultLayout()
	// Shard s0 owns buckets 0-511 and s1 owns 512-1023 (as
	// chooser.Spread(1024, "s0", "s1") assigns them). Each shard's function
	// has buckets of its own; s1's spans four buckets, to issue 4 × 4096 IDs
	// per millisecond. The Go generators use other buckets of the same
	// shards.
	shards := []identity.ShardID{"s0", "s1"}
	shardOf := func(bucket int) identity.ShardID { return shards[bucket*len(shards)/l.Buckets()] }
	plans := []struct{ dbFirst, dbN, goBucket int }{
		{dbFirst: 0, dbN: 1, goBucket: 1},
		{dbFirst: 512, dbN: 4, goBucket: 516},
	}
	const rounds, dbRows, goRows = 3, 10_000, 1_000

	dsns := pgtest.Shared().NewDatabases(ctx, t, "identity_fn")
	seen := make(map[int64]identity.ShardID)
	for i, dsn := range dsns {
		p := plans[i]
		db := openDB(t, dsn)
		fn, err := l.FunctionSQL("app", "next_id", p.dbFirst, p.dbN)
		if err != nil {
			t.Fatal(err)
		}
		mustExec(t, db, "CREATE SCHEMA app")
		mustExec(t, db, fn)
		mustExec(t, db, fn) // idempotent
		mustExec(t, db, "CREATE TABLE app.orders (id bigint PRIMARY KEY DEFAULT app.next_id(), source text NOT NULL)")

		g, err := identity.NewGenerator(l, p.goBucket)
		if err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		for range rounds {
			// One statement issues many IDs from the function.
			mustExec(t, db, "INSERT INTO app.orders (source) SELECT 'db' FROM generate_series(1, 10000)")
			rows := make([]pgOrder, goRows)
			for k := range rows {
				if rows[k].ID, err = g.Next(); err != nil {
					t.Fatal(err)
				}
				rows[k].Source = "go"
			}
			if _, err := db.NewInsert().Model(&rows).Exec(ctx); err != nil {
				t.Fatalf("insert Go-issued IDs on %s: %v", shards[i], err)
			}
		}
		end := time.Now()

		var got []pgOrder
		if err := db.NewSelect().Model(&got).Scan(ctx); err != nil {
			t.Fatal(err)
		}
		if want := rounds * (dbRows + goRows); len(got) != want {
			t.Fatalf("%s holds %d rows; want %d", shards[i], len(got), want)
		}
		dbBuckets := map[int]int{}
		for _, o := range got {
			at, bucket, _ := l.Decode(o.ID)
			switch o.Source {
			case "db":
				if bucket < p.dbFirst || bucket >= p.dbFirst+p.dbN {
					t.Fatalf("%s: function issued ID %d in bucket %d; want buckets %d to %d", shards[i], o.ID, bucket, p.dbFirst, p.dbFirst+p.dbN-1)
				}
				dbBuckets[bucket]++
			case "go":
				if bucket != p.goBucket {
					t.Fatalf("%s: Generator issued ID %d in bucket %d; want %d", shards[i], o.ID, bucket, p.goBucket)
				}
			}
			// Server and test share a host clock; allow for scheduling and
			// for the Generator running ahead under load.
			if at.Before(start.Add(-time.Second)) || at.After(end.Add(time.Second)) {
				t.Fatalf("%s: ID %d (%s) decodes to %v; want within a second of [%v, %v]", shards[i], o.ID, o.Source, at, start, end)
			}
			if got := shardOf(bucket); got != shards[i] {
				t.Fatalf("ID %d from %s is in bucket %d, which is on %s", o.ID, shards[i], bucket, got)
			}
			if other, ok := seen[o.ID]; ok {
				t.Fatalf("ID %d issued on both %s and %s", o.ID, other, shards[i])
			}
			seen[o.ID] = shards[i]
		}
		if len(dbBuckets) != p.dbN {
			t.Errorf("%s: function used buckets %v; want all %d of its buckets", shards[i], dbBuckets, p.dbN)
		}
	}
}

// TestFunctionSQLOutOfRange checks that the function refuses to issue an ID
// when the clock is outside the layout's time range, here before an epoch
// set in the future.
func TestFunctionSQLOutOfRange(t *testing.T) {
	ctx := t.Context()
	l := identity.DefaultLayout()
	l.Epoch = time.Now().Add(24 * time.Hour)
	fn, err := l.FunctionSQL("public", "future_id", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	db := openDB(t, pgtest.Shared().NewDatabases(ctx, t, "identity_range")[0])
	mustExec(t, db, fn)
	var id int64
	err = db.QueryRowContext(ctx, "SELECT public.future_id()").Scan(&id)
	if err == nil || !strings.Contains(err.Error(), "bunshard: clock") || !strings.Contains(err.Error(), "outside the time range") {
		t.Errorf("future_id() = %d, %v; want an error saying the clock is outside the time range", id, err)
	}
}
