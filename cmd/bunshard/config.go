package main

import (
	"database/sql"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/session"
)

// Environment variables read by the command; each overrides the config file.
const (
	envConfig      = "BUNSHARD_CONFIG"      // path of the config file
	envShards      = "BUNSHARD_SHARDS"      // name=dsn,name=dsn,...
	envCoordinator = "BUNSHARD_COORDINATOR" // shard id
	envDriver      = "BUNSHARD_DRIVER"      // pgdriver or pgx
	envMigrations  = "BUNSHARD_MIGRATIONS"  // directory of SQL migrations
)

// Config is the command's configuration, read from a TOML file (--config or
// BUNSHARD_CONFIG) with the environment on top.
type Config struct {
	// Coordinator is the two-phase coordinator shard, as the app's
	// session.WithCoordinator; default, as session.New's: the first shard id
	// in sorted order.
	Coordinator string `toml:"coordinator" json:"coordinator"`
	// Driver is "pgdriver" (Bun's, the default) or "pgx" (pgx's stdlib).
	Driver  string        `toml:"driver" json:"driver"`
	Shards  []ShardConfig `toml:"shard" json:"shards"`
	Migrate MigrateConfig `toml:"migrate" json:"migrate"`
	Routes  []RouteConfig `toml:"route" json:"routes"`
}

// ShardConfig is one shard: its id and a DSN of its primary.
type ShardConfig struct {
	Name string `toml:"name" json:"name"`
	DSN  string `toml:"dsn" json:"-"`
}

// MigrateConfig says where the SQL migrations are and how many shards migrate at once.
type MigrateConfig struct {
	Dir         string `toml:"dir" json:"dir"`
	Concurrency int    `toml:"concurrency" json:"concurrency"`
}

// RouteConfig declares how one table's rows are placed: by which column, under
// which scheme ("hash", "jump", "ranges" or "values"), with the column's type
// ("string" or "int").
type RouteConfig struct {
	Table   string            `toml:"table"`
	Column  string            `toml:"column"`
	Type    string            `toml:"type"`
	Scheme  string            `toml:"scheme"`
	Buckets int               `toml:"buckets"` // hash: chooser.Spread(buckets, shards...)
	Shards  []string          `toml:"shards"`  // hash, jump: the shards in order (default: every shard, sorted)
	Values  map[string]string `toml:"values"`  // values: key -> shard
	Ranges  []RangeConfig     `toml:"ranges"`  // ranges: sorted, non-overlapping
}

// RangeConfig is [From, To) -> Shard; without To the range is unbounded.
type RangeConfig struct {
	From  any    `toml:"from"`
	To    any    `toml:"to"`
	Shard string `toml:"shard"`
}

// configError marks a bad configuration or bad input: exit code 2, nothing sent.
type configError struct{ err error }

func (e *configError) Error() string { return e.err.Error() }
func (e *configError) Unwrap() error { return e.err }

func configErrorf(format string, args ...any) error {
	return &configError{fmt.Errorf(format, args...)}
}

// loadConfig reads the file at path (or BUNSHARD_CONFIG's; none is fine when the
// environment names the shards), applies the environment and checks the result.
func loadConfig(path string, getenv func(string) string) (*Config, error) {
	var cfg Config
	if path == "" {
		path = getenv(envConfig)
	}
	if path != "" {
		md, err := toml.DecodeFile(path, &cfg)
		if err != nil {
			return nil, configErrorf("config %s: %v", path, err)
		}
		// A misspelt key would otherwise be ignored, and its setting silently missing.
		if und := md.Undecoded(); len(und) > 0 {
			keys := make([]string, len(und))
			for i, k := range und {
				keys[i] = k.String()
			}
			return nil, configErrorf("config %s: unknown key(s) %s", path, strings.Join(keys, ", "))
		}
	}
	if v := strings.TrimSpace(getenv(envShards)); v != "" {
		cfg.Shards = nil
		for i, part := range strings.Split(v, ",") {
			name, dsn, ok := strings.Cut(strings.TrimSpace(part), "=")
			if !ok {
				return nil, configErrorf("%s entry %d must be name=dsn", envShards, i+1)
			}
			cfg.Shards = append(cfg.Shards, ShardConfig{Name: strings.TrimSpace(name), DSN: strings.TrimSpace(dsn)})
		}
	}
	if v := getenv(envCoordinator); v != "" {
		cfg.Coordinator = v
	}
	if v := getenv(envDriver); v != "" {
		cfg.Driver = v
	}
	if v := getenv(envMigrations); v != "" {
		cfg.Migrate.Dir = v
	}
	return &cfg, cfg.check()
}

// check validates the configuration, naming the entry at fault.
func (c *Config) check() error {
	if len(c.Shards) == 0 {
		return configErrorf("no shards: list them as [[shard]] name/dsn in the config file (--config or %s), or in %s=name=dsn,...",
			envConfig, envShards)
	}
	seen := map[string]bool{}
	for i, s := range c.Shards {
		switch {
		case s.Name == "":
			return configErrorf("shard %d has no name", i+1)
		case seen[s.Name]:
			return configErrorf("shard %q is listed twice", s.Name)
		case s.DSN == "":
			return configErrorf("shard %q has no dsn", s.Name)
		}
		seen[s.Name] = true
	}
	if c.Coordinator == "" {
		c.Coordinator = c.ids()[0]
	} else if !seen[c.Coordinator] {
		return configErrorf("coordinator %q is not a shard (shards: %v)", c.Coordinator, c.ids())
	}
	switch c.Driver {
	case "":
		c.Driver = "pgdriver"
	case "pgdriver", "pgx":
	default:
		return configErrorf("driver %q: use pgdriver or pgx", c.Driver)
	}
	tables := map[string]bool{}
	for i, r := range c.Routes {
		if r.Table == "" {
			return configErrorf("route %d has no table", i+1)
		}
		if tables[r.Table] {
			return configErrorf("route for table %q is declared twice", r.Table)
		}
		tables[r.Table] = true
		for _, sh := range r.shardNames() {
			if !seen[sh] {
				return configErrorf("route for table %q names shard %q, which is not a shard (shards: %v)", r.Table, sh, c.ids())
			}
		}
	}
	return nil
}

// ids returns the shard ids sorted, the session's default order.
func (c *Config) ids() []string {
	ids := make([]string, len(c.Shards))
	for i, s := range c.Shards {
		ids[i] = s.Name
	}
	sort.Strings(ids)
	return ids
}

// shardNames returns every shard the route names.
func (r RouteConfig) shardNames() []string {
	out := slices.Clone(r.Shards)
	for _, sh := range r.Values {
		out = append(out, sh)
	}
	for _, rg := range r.Ranges {
		out = append(out, rg.Shard)
	}
	return out
}

// route returns the route declared for table.
func (c *Config) route(table string) (RouteConfig, error) {
	var tables []string
	for _, r := range c.Routes {
		if r.Table == table {
			return r, nil
		}
		tables = append(tables, r.Table)
	}
	return RouteConfig{}, configErrorf("no route is declared for table %q (declared: %v); add a [[route]] with table = %q", table, tables, table)
}

// fleet is the configured shards, opened (nothing dialled yet).
type fleet struct {
	cfg     *Config
	dbs     map[session.ShardID]*bun.DB
	dialect *pgdialect.Dialect
}

// open makes a *bun.DB per shard on one dialect, as session.New requires. It
// dials nothing; dialTimeout bounds each connection attempt.
func (c *Config) open(dialTimeout time.Duration) (*fleet, error) {
	f := &fleet{cfg: c, dbs: map[session.ShardID]*bun.DB{}, dialect: pgdialect.New()}
	for _, s := range c.Shards {
		var sqldb *sql.DB
		if c.Driver == "pgx" {
			pc, err := pgx.ParseConfig(s.DSN)
			if err != nil {
				f.close()
				return nil, configErrorf("shard %q: bad dsn for pgx: %v", s.Name, err)
			}
			pc.ConnectTimeout = dialTimeout
			sqldb = stdlib.OpenDB(*pc)
		} else {
			sqldb = sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(s.DSN), pgdriver.WithDialTimeout(dialTimeout)))
		}
		f.dbs[session.ShardID(s.Name)] = bun.NewDB(sqldb, f.dialect)
	}
	return f, nil
}

// idbs returns the shards as session.New takes them.
func (f *fleet) idbs() map[session.ShardID]bun.IDB {
	out := make(map[session.ShardID]bun.IDB, len(f.dbs))
	for id, db := range f.dbs {
		out[id] = db
	}
	return out
}

// session returns a session over the fleet with the configured coordinator and
// the given choosers.
func (f *fleet) session(sc sessionChoosers) (*session.Session, error) {
	return session.New(f.idbs(), sc.shard, sc.identity, sc.execute, session.WithCoordinator(session.ShardID(f.cfg.Coordinator)))
}

// close closes every shard's handle; closing a database/sql pool cannot fail
// in a way the command could act on.
func (f *fleet) close() {
	for _, db := range f.dbs {
		_ = db.Close()
	}
}

// ids returns the shard ids in session order (sorted).
func (f *fleet) ids() []session.ShardID {
	var out []session.ShardID
	for _, id := range f.cfg.ids() {
		out = append(out, session.ShardID(id))
	}
	return out
}
