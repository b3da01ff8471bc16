package migrate_test

import (
	"context"
	"database/sql"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/migrate"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, 4, func() error { return goleak.Find() }))
}

var shardIDs = []identity.ShardID{"s0", "s1", "s2", "s3"}

// counter is a Bun query hook that records the statements one shard ran.
type counter struct {
	mu   sync.Mutex
	sqls []string
}

func (c *counter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (c *counter) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	c.mu.Lock()
	c.sqls = append(c.sqls, e.Query)
	c.mu.Unlock()
}

// fixture is four shards, one fresh database on each of four servers.
type fixture struct {
	dbs    migrate.DBs
	counts map[identity.ShardID]*counter
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	dsns := pgtest.Shared().NewDatabases(t.Context(), t, "mig")
	f := &fixture{dbs: migrate.DBs{}, counts: map[identity.ShardID]*counter{}}
	dialect := pgdialect.New()
	for i, id := range shardIDs {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsns[i]))), dialect)
		t.Cleanup(func() { db.Close() })
		c := &counter{}
		f.dbs[id], f.counts[id] = db.WithQueryHook(c), c
	}
	return f
}

func (f *fixture) reset() {
	for _, c := range f.counts {
		c.mu.Lock()
		c.sqls = nil
		c.mu.Unlock()
	}
}

// like returns the statements shard id ran since reset that contain part
// (case-insensitively).
func (f *fixture) like(id identity.ShardID, part string) []string {
	c := f.counts[id]
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, q := range c.sqls {
		if strings.Contains(strings.ToLower(q), strings.ToLower(part)) {
			out = append(out, q)
		}
	}
	return out
}

// exec runs a statement on one shard, failing the test on error.
func (f *fixture) exec(t *testing.T, id identity.ShardID, query string) {
	t.Helper()
	if _, err := f.dbs[id].ExecContext(context.Background(), query); err != nil {
		t.Fatalf("%s on %s: %v", query, id, err)
	}
}

// tables returns which of names exist as tables on shard id, sorted.
func (f *fixture) tables(t *testing.T, id identity.ShardID, names ...string) []string {
	t.Helper()
	var have []string
	err := f.dbs[id].NewRaw(`SELECT c.relname FROM pg_catalog.pg_class c
		WHERE c.relkind = 'r' AND c.relname IN (?) ORDER BY c.relname`, bun.List(names)).Scan(context.Background(), &have)
	if err != nil {
		t.Fatalf("list tables on %s: %v", id, err)
	}
	return have
}

// recorded returns the migration names in shard id's bun_migrations,
// with their group ids, as "name@group", sorted.
func (f *fixture) recorded(t *testing.T, id identity.ShardID) []string {
	t.Helper()
	var rows []struct {
		Name    string
		GroupID int64
	}
	err := f.dbs[id].NewRaw(`SELECT name, group_id FROM bun_migrations ORDER BY name`).Scan(context.Background(), &rows)
	if err != nil {
		t.Fatalf("read bun_migrations on %s: %v", id, err)
	}
	out := []string{}
	for _, r := range rows {
		out = append(out, fmt.Sprintf("%s@%d", r.Name, r.GroupID))
	}
	return out
}

func wantIn(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatalf("err = nil; want an error mentioning %q", parts)
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("err = %q; want it to mention %q", err, p)
		}
	}
}
