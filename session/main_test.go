package session_test

import (
	"context"
	"database/sql"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, 4, func() error { return goleak.Find() }))
}

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

func (c *counter) reset() {
	c.mu.Lock()
	c.sqls = nil
	c.mu.Unlock()
}

func (c *counter) statements() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return slices.Clone(c.sqls)
}

// fixture is four shards (one database on each of four servers) holding the
// weather tables, plus one unsharded database holding every row, the ground
// truth that fan-out results are checked against.
type fixture struct {
	shards map[session.ShardID]bun.IDB
	counts map[session.ShardID]*counter
	single *bun.DB
	dsns   []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx := context.Background()
	set := pgtest.Shared()
	dsns := set.NewDatabases(ctx, t, "sess")
	truth := set.NewDatabases(ctx, t, "truth")[0]
	dialect := pgdialect.New() // one dialect shared by every shard
	f := &fixture{shards: map[session.ShardID]bun.IDB{}, counts: map[session.ShardID]*counter{}, dsns: dsns}
	open := func(dsn string) *bun.DB {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), dialect)
		t.Cleanup(func() { db.Close() })
		return db
	}
	weather.Register(open(truth))
	for i, id := range weather.Shards {
		c := &counter{}
		db := open(dsns[i]).WithQueryHook(c)
		if err := weather.CreateSchema(ctx, db); err != nil {
			t.Fatalf("create schema on %s: %v", id, err)
		}
		f.shards[id], f.counts[id] = db, c
	}
	f.single = open(truth)
	if err := weather.CreateSchema(ctx, f.single); err != nil {
		t.Fatalf("create schema on the unsharded database: %v", err)
	}
	f.reset()
	return f
}

func (f *fixture) session(t *testing.T, opts ...session.Option) *session.Session {
	t.Helper()
	opts = append([]session.Option{session.WithShardOrder(weather.Shards...)}, opts...)
	s, err := session.New(f.shards, weather.ShardChooser, chooser.All, weather.ByContinent, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}

func (f *fixture) reset() {
	for _, c := range f.counts {
		c.reset()
	}
}

// perShard returns the number of statements each shard ran since reset, in
// weather.Shards order.
func (f *fixture) perShard() []int {
	out := make([]int, len(weather.Shards))
	for i, id := range weather.Shards {
		out[i] = len(f.counts[id].statements())
	}
	return out
}

// seed writes data through the session and the same rows to the unsharded
// database.
func (f *fixture) seed(t *testing.T, s *session.Session, d weather.Data) {
	t.Helper()
	ctx := context.Background()
	if err := s.Insert(ctx, &d.Locations); err != nil {
		t.Fatalf("Insert locations: %v", err)
	}
	if err := s.Insert(ctx, &d.Reports); err != nil {
		t.Fatalf("Insert reports: %v", err)
	}
	if _, err := f.single.NewInsert().Model(&d.Locations).Exec(ctx); err != nil {
		t.Fatalf("seed unsharded locations: %v", err)
	}
	if len(d.Reports) > 0 {
		if _, err := f.single.NewInsert().Model(&d.Reports).Exec(ctx); err != nil {
			t.Fatalf("seed unsharded reports: %v", err)
		}
	}
	f.reset()
}

// rowsOn returns the ids of the table's rows on one shard, sorted.
func (f *fixture) rowsOn(t *testing.T, id session.ShardID, table string) []int64 {
	t.Helper()
	var ids []int64
	err := f.shards[id].NewSelect().Table(table).Column("id").Order("id").Scan(context.Background(), &ids)
	if err != nil {
		t.Fatalf("read %s on %s: %v", table, id, err)
	}
	return ids
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

func openOwnDialect(t *testing.T, dsn string) *bun.DB {
	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), pgdialect.New())
	t.Cleanup(func() { db.Close() })
	return db
}

// statementsLike returns, per shard in weather.Shards order, the statements
// run since reset whose SQL starts with prefix (case-insensitively).
func (f *fixture) statementsLike(prefix string) []int {
	out := make([]int, len(weather.Shards))
	for i, id := range weather.Shards {
		for _, q := range f.counts[id].statements() {
			if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q)), strings.ToUpper(prefix)) {
				out[i]++
			}
		}
	}
	return out
}

// sqlOn returns the statements shard id ran since reset whose SQL starts
// with prefix.
func (f *fixture) sqlOn(id session.ShardID, prefix string) []string {
	var out []string
	for _, q := range f.counts[id].statements() {
		if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q)), strings.ToUpper(prefix)) {
			out = append(out, q)
		}
	}
	return out
}

// followSession is a session whose ShardChooser is the ready-made
// chooser.FollowParent: locations by continent, everything else with its
// parent.
func (f *fixture) followSession(t *testing.T, opts ...session.Option) *session.Session {
	t.Helper()
	opts = append([]session.Option{session.WithShardOrder(weather.Shards...)}, opts...)
	s, err := session.New(f.shards, chooser.NewFollowParent(weather.ByContinent), chooser.All, weather.ByContinent, opts...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return s
}
