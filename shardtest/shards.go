package shardtest

import (
	"database/sql"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/identity"
)

// Driver names the database/sql driver under the shards' *bun.DB.
type Driver string

const (
	// PGDriver is Bun's own driver, github.com/uptrace/bun/driver/pgdriver (the default).
	PGDriver Driver = "pgdriver"
	// PGX is pgx's database/sql driver, github.com/jackc/pgx/v5/stdlib.
	PGX Driver = "pgx"
)

// Drivers are the drivers bunshard supports, for tests that run on each:
//
//	for _, drv := range shardtest.Drivers {
//		t.Run(string(drv), func(t *testing.T) { shards := set.NewShards(t, "x", shardtest.WithDriver(drv)) ... })
//	}
var Drivers = []Driver{PGDriver, PGX}

// OpenDB opens a database/sql handle for dsn with driver d. It dials nothing. It fails for
// a driver other than [PGDriver] and [PGX], and for a DSN pgx cannot parse.
func OpenDB(d Driver, dsn string) (*sql.DB, error) { return openDB(d, dsn, nil) }

// openDB is OpenDB with run-time parameters set on every connection.
func openDB(d Driver, dsn string, params map[string]string) (*sql.DB, error) {
	switch d {
	case PGDriver, "":
		opts := []pgdriver.Option{pgdriver.WithDSN(dsn)}
		if len(params) > 0 {
			m := map[string]any{}
			for k, v := range params {
				m[k] = v
			}
			opts = append(opts, pgdriver.WithConnParams(m))
		}
		return sql.OpenDB(pgdriver.NewConnector(opts...)), nil
	case PGX:
		cfg, err := pgx.ParseConfig(dsn)
		if err != nil {
			return nil, fmt.Errorf("shardtest: open %s with pgx: %w", redact(dsn), err)
		}
		for k, v := range params {
			cfg.RuntimeParams[k] = v
		}
		return stdlib.OpenDB(*cfg), nil
	}
	return nil, fmt.Errorf("shardtest: unknown driver %q; use shardtest.PGDriver or shardtest.PGX", d)
}

// durable makes a commit on a NewShards handle survive Server.Kill: the servers run with
// synchronous_commit off (a killed server may lose the last commits, as a crash would), but
// an app's fault test means "the shard crashed after my commit returned". With fsync off,
// synchronous_commit on costs a write(2) per commit, not a disk flush.
var durable = map[string]string{"synchronous_commit": "on"}

// ShardOption configures [Set.NewShards].
type ShardOption func(*shardConfig)

type shardConfig struct {
	ids    []identity.ShardID
	driver Driver
	dbOpts []bun.DBOption
}

// WithNames sets the shards' ids and their number (default: one shard per server, named
// "shard0", "shard1", …). Shard i lives on server i modulo [Set.Len], in a database of its
// own, so more shards than servers is fine (they share servers), and fewer leaves servers
// unused. NewShards fails the test for an empty or repeated id.
func WithNames(ids ...identity.ShardID) ShardOption {
	return func(c *shardConfig) { c.ids = append([]identity.ShardID{}, ids...) }
}

// WithDriver sets the database/sql driver of every shard (default [PGDriver]); NewShards
// fails the test for an unknown one.
func WithDriver(d Driver) ShardOption { return func(c *shardConfig) { c.driver = d } }

// WithPGX is WithDriver(PGX): pgx's database/sql driver under every shard.
func WithPGX() ShardOption { return WithDriver(PGX) }

// WithDBOptions passes options to bun.NewDB for every shard (bun.WithDiscardUnknownColumns,
// say).
func WithDBOptions(opts ...bun.DBOption) ShardOption {
	return func(c *shardConfig) { c.dbOpts = append(c.dbOpts, opts...) }
}

// Shards are ready *bun.DB shards made by [Set.NewShards], each on a fresh database of one
// server, all sharing one pgdialect instance. It is safe for concurrent use.
type Shards struct {
	ids     []identity.ShardID
	dbs     map[identity.ShardID]*bun.DB
	dsns    map[identity.ShardID]string
	servers map[identity.ShardID]*Server
	dialect *pgdialect.Dialect
	driver  Driver
}

// NewShards creates a fresh database for each shard (see [WithNames]; by default one per
// server of the set) and returns a *bun.DB on each, all on one shared pgdialect.New()
// instance, as session.New requires. Their connections commit with synchronous_commit on,
// so what a shard committed survives [Server.Kill]. The databases are named prefix, a random suffix and the
// shard's index. tb.Cleanup closes the handles and drops the databases (skipping a server
// that is stopped then). It calls tb.Fatal, after dropping what it made, when an option is
// bad or a database cannot be created; it dials nothing else (use Ping to wait for a shard).
func (s *Set) NewShards(tb testing.TB, prefix string, opts ...ShardOption) *Shards {
	tb.Helper()
	cfg := shardConfig{driver: PGDriver}
	for _, opt := range opts {
		opt(&cfg)
	}
	if cfg.ids == nil {
		for i := range s.servers {
			cfg.ids = append(cfg.ids, identity.ShardID("shard"+strconv.Itoa(i)))
		}
	}
	if len(cfg.ids) == 0 {
		tb.Fatalf("shardtest: NewShards(%q): WithNames() names no shard", prefix)
	}
	seen := map[identity.ShardID]bool{}
	for _, id := range cfg.ids {
		if id == "" || seen[id] {
			tb.Fatalf("shardtest: NewShards(%q): WithNames(%v): shard ids must be non-empty and distinct", prefix, cfg.ids)
		}
		seen[id] = true
	}
	if cfg.driver != PGDriver && cfg.driver != PGX {
		tb.Fatalf("shardtest: NewShards(%q): unknown driver %q; use shardtest.PGDriver or shardtest.PGX", prefix, cfg.driver)
	}
	servers := make([]*Server, len(cfg.ids))
	for i := range servers {
		servers[i] = s.servers[i%len(s.servers)]
	}
	dsns := s.newDatabases(tb.Context(), tb, "NewShards", prefix, servers)
	sh := &Shards{
		ids:     cfg.ids,
		dbs:     map[identity.ShardID]*bun.DB{},
		dsns:    map[identity.ShardID]string{},
		servers: map[identity.ShardID]*Server{},
		dialect: pgdialect.New(),
		driver:  cfg.driver,
	}
	for i, id := range cfg.ids {
		sqldb, err := openDB(cfg.driver, dsns[i], durable)
		if err != nil {
			tb.Fatalf("shardtest: NewShards(%q): shard %s: %v", prefix, id, err)
		}
		sh.dbs[id] = bun.NewDB(sqldb, sh.dialect, cfg.dbOpts...)
		sh.dsns[id] = dsns[i]
		sh.servers[id] = servers[i]
	}
	// Registered after the databases' cleanup, so it runs before it: the handles close
	// first, and DROP DATABASE has no connection of theirs to end.
	tb.Cleanup(func() {
		for _, id := range sh.ids {
			_ = sh.dbs[id].Close()
		}
	})
	return sh
}

// IDs returns the shard ids, in WithNames' order (or shard0, shard1, …).
func (sh *Shards) IDs() []identity.ShardID { return slices.Clone(sh.ids) }

// Len returns the number of shards.
func (sh *Shards) Len() int { return len(sh.ids) }

// DB returns shard id's handle. It panics for an id the shards lack: a test's typo.
func (sh *Shards) DB(id identity.ShardID) *bun.DB {
	sh.known(id)
	return sh.dbs[id]
}

// DBs returns a new map of the shards' handles, for migrate.DBs and code that takes
// *bun.DB.
func (sh *Shards) DBs() map[identity.ShardID]*bun.DB {
	out := make(map[identity.ShardID]*bun.DB, len(sh.dbs))
	for id, db := range sh.dbs {
		out[id] = db
	}
	return out
}

// IDBs returns a new map of the shards' handles as bun.IDB, the shape session.New takes.
func (sh *Shards) IDBs() map[identity.ShardID]bun.IDB {
	out := make(map[identity.ShardID]bun.IDB, len(sh.dbs))
	for id, db := range sh.dbs {
		out[id] = db
	}
	return out
}

// DSN returns the superuser DSN of shard id's database. It panics for an unknown id.
func (sh *Shards) DSN(id identity.ShardID) string {
	sh.known(id)
	return sh.dsns[id]
}

// Server returns the server shard id's database is on, to stop, kill, freeze or restart it.
// Shards that share a server (more shards than servers) go down together. It panics for an
// unknown id.
func (sh *Shards) Server(id identity.ShardID) *Server {
	sh.known(id)
	return sh.servers[id]
}

// Dialect returns the pgdialect instance every shard's *bun.DB shares.
func (sh *Shards) Dialect() *pgdialect.Dialect { return sh.dialect }

// Driver returns the database/sql driver under the shards.
func (sh *Shards) Driver() Driver { return sh.driver }

func (sh *Shards) known(id identity.ShardID) {
	if _, ok := sh.dbs[id]; !ok {
		panic(fmt.Sprintf("shardtest: no shard %q among %v", id, sh.ids))
	}
}

// redact returns dsn with its password hidden, or a placeholder when it does not parse.
func redact(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable DSN)"
	}
	return u.Redacted()
}
