package migrate

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/uptrace/bun"
	bunmigrate "github.com/uptrace/bun/migrate"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/fanout"
)

// Shards is what a [Migrator] migrates: shard ids in order, and each
// shard's database. *session.Session satisfies it, and so does [DBs].
type Shards interface {
	Shards() []identity.ShardID
	DB(id identity.ShardID) (bun.IDB, error)
}

// DBs is a [Shards] made of a map of shard databases, for use without a
// session.
type DBs map[identity.ShardID]*bun.DB

// Shards returns the shard ids, sorted.
func (d DBs) Shards() []identity.ShardID { return slices.Sorted(maps.Keys(d)) }

// DB returns shard id's database. It fails with [ErrUnknownShard] for an id
// the map lacks.
func (d DBs) DB(id identity.ShardID) (bun.IDB, error) {
	db, ok := d[id]
	if !ok {
		return nil, fmt.Errorf("%w: %q (shards: %v)", ErrUnknownShard, id, d.Shards())
	}
	return db, nil
}

var _ Shards = DBs(nil)

// Option configures a [Migrator].
type Option func(*config)

type config struct {
	concurrency int
	router      chooser.MigrateRouter
	scopes      []scoped
	bunOpts     []bunmigrate.MigratorOption
}

// WithConcurrency bounds how many shards are migrated at the same time
// (default: all of them). n < 1 means no bound.
func WithConcurrency(n int) Option { return func(c *config) { c.concurrency = n } }

// WithRouter sets the MigrateRouter that [ForModels] asks whether a model's
// table is on a shard (Django's allow_migrate; a session's ShardChooser often
// is one). Only [chooser.Deny] keeps a migration off a shard. Without a
// router, every model is on every shard.
func WithRouter(r chooser.MigrateRouter) Option { return func(c *config) { c.router = r } }

// WithMigratorOptions passes options to the Bun migrator of every shard
// (table names, hooks, template data). WithMarkAppliedOnSuccess(true) is
// always applied last: a migration is recorded only once it succeeded,
// which is what makes a failed shard resumable.
func WithMigratorOptions(opts ...bunmigrate.MigratorOption) Option {
	return func(c *config) { c.bunOpts = append(c.bunOpts, opts...) }
}

// Migrator runs one set of Bun migrations on every shard, each shard with
// its own Bun migrator, migration tables (bun_migrations,
// bun_migration_locks) and lock. It is safe for concurrent use, but two
// runs on one shard at once fail on that shard's lock.
type Migrator struct {
	ids        []identity.ShardID
	dbs        map[identity.ShardID]*bun.DB
	migrations *bunmigrate.Migrations
	cfg        config
	scopes     map[string]*scoped // by migration name

	mu      sync.Mutex
	lastErr map[identity.ShardID]error // of this Migrator's last Migrate or Rollback per shard
}

// New returns a Migrator of migrations over shards. It sends nothing. It
// fails with [ErrInvalidArgument] when shards is nil or empty or a shard's
// handle is not a *bun.DB (Bun's migrator needs one: it takes a lock and
// opens its own transactions), when migrations is nil or empty, and for a
// bad [WithScope]; with the error of shards.DB for a shard it cannot get.
func New(shards Shards, migrations *bunmigrate.Migrations, opts ...Option) (*Migrator, error) {
	if shards == nil {
		return nil, fmt.Errorf("%w: New: no shards (nil)", ErrInvalidArgument)
	}
	m := &Migrator{
		ids:        shards.Shards(),
		dbs:        map[identity.ShardID]*bun.DB{},
		migrations: migrations,
		scopes:     map[string]*scoped{},
		lastErr:    map[identity.ShardID]error{},
	}
	for _, opt := range opts {
		opt(&m.cfg)
	}
	if len(m.ids) == 0 {
		return nil, fmt.Errorf("%w: New: no shards", ErrInvalidArgument)
	}
	for _, id := range m.ids {
		if _, dup := m.dbs[id]; dup {
			return nil, fmt.Errorf("%w: New: shard %q is listed twice in %v", ErrInvalidArgument, id, m.ids)
		}
		idb, err := shards.DB(id)
		if err != nil {
			return nil, fmt.Errorf("migrate: New: shard %s: %w", id, err)
		}
		db, ok := idb.(*bun.DB)
		if !ok || db == nil {
			return nil, fmt.Errorf("%w: New: shard %s is a %T; Bun's migrator needs the shard's *bun.DB "+
				"(it locks and opens its own transactions)", ErrInvalidArgument, id, idb)
		}
		m.dbs[id] = db
	}
	if migrations == nil {
		return nil, fmt.Errorf("%w: New: no migrations (nil)", ErrInvalidArgument)
	}
	names := map[string]bool{}
	for _, mig := range migrations.Sorted() {
		names[mig.Name] = true
		names[mig.Name+"_"+mig.Comment] = true
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("%w: New: the migrations are empty", ErrInvalidArgument)
	}
	for i := range m.cfg.scopes {
		sc := &m.cfg.scopes[i]
		if err := m.checkScope(sc, names); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// Shards returns the Migrator's shard ids in order.
func (m *Migrator) Shards() []identity.ShardID { return slices.Clone(m.ids) }

// ShardResult is what one run of [Migrator.Migrate] or [Migrator.Rollback]
// did on one shard.
type ShardResult struct {
	Shard identity.ShardID
	// GroupID is the shard's migration group that the run applied or rolled
	// back, and 0 when it had nothing to do. Groups are per shard: a shard
	// resumed after a failure has one group more than the others.
	GroupID int64
	// Migrations are the migrations the run recorded as applied (Migrate)
	// or removed (Rollback) on the shard, in the order it ran them; on a
	// failure, those before the failing one.
	Migrations bunmigrate.MigrationSlice
	// Skipped names the Migrations that a scope ([WithScope]) keeps off this
	// shard: recorded (or removed) without running.
	Skipped []string
	// Failed names the migration that failed, and is "" when none did (or
	// the failure was before any migration, such as the lock).
	Failed string
	// Err is the shard's error, nil if it succeeded.
	Err error
}

// Report is the result of one run, one entry per shard in shard order.
type Report []ShardResult

// Failed returns the shards that failed, in shard order.
func (r Report) Failed() []identity.ShardID {
	var ids []identity.ShardID
	for _, res := range r {
		if res.Err != nil {
			ids = append(ids, res.Shard)
		}
	}
	return ids
}

// Shard returns the result for shard id, and false if the report has none.
func (r Report) Shard(id identity.ShardID) (ShardResult, bool) {
	for _, res := range r {
		if res.Shard == id {
			return res, true
		}
	}
	return ShardResult{}, false
}

// Init creates Bun's migration tables on every shard where they do not
// exist, concurrently. It fails with the errors of the shards that failed,
// each naming its shard, joined in shard order; the other shards keep their
// tables.
func (m *Migrator) Init(ctx context.Context) error {
	errs := m.each(ctx, func(ctx context.Context, id identity.ShardID) error {
		return m.bun(id, nil).Init(ctx)
	})
	return joinShardErrs(m.ids, "init", errs)
}

// Migrate applies, on every shard concurrently (up to [WithConcurrency]),
// the migrations that shard has not applied, as one new migration group of
// that shard, holding the shard's Bun migration lock meanwhile. A shard's
// failure stops nothing else: every shard runs to its end. A migration is
// recorded only when it succeeded, so a shard that failed applied the
// migrations before the failing one, and the next Migrate resumes it from
// the failing one while shards that succeeded apply nothing. (A
// non-transactional migration that fails half-way leaves what it did:
// write SQL migrations as .tx.up.sql, and Go ones in a transaction.)
//
// The ctx a migration runs with carries its shard: see [ShardOf].
//
// It returns the report of every shard and an error that joins, in shard
// order, each failed shard's error prefixed with its shard id (nil when all
// succeeded). A shard fails when its lock is held ("migrations table is
// already locked"; see [Migrator.Unlock]), when its tables are missing (run
// [Migrator.Init]), when a migration fails, and with [ErrAmbiguous].
func (m *Migrator) Migrate(ctx context.Context) (Report, error) {
	return m.run(ctx, "migrate", func(ctx context.Context, bm *bunmigrate.Migrator, r *shardRun) (*bunmigrate.MigrationGroup, error) {
		g, err := bm.Migrate(ctx)
		if g == nil {
			return nil, err
		}
		if err != nil && len(g.Migrations) > 0 {
			// Bun returns the group up to and including the migration it
			// failed on; with mark-applied-on-success that one is not
			// recorded.
			r.failed = g.Migrations[len(g.Migrations)-1].Name
			g.Migrations = g.Migrations[:len(g.Migrations)-1]
		}
		return g, err
	})
}

// Rollback rolls back, on every shard concurrently, that shard's last
// migration group (its own: groups differ between shards after a resumed
// failure), running the down migrations in reverse order under the
// shard's lock. A shard with nothing applied does nothing. It reports and
// fails as [Migrator.Migrate] does; a failed shard keeps the group's
// migrations that were not rolled back yet, recorded as applied.
func (m *Migrator) Rollback(ctx context.Context) (Report, error) {
	return m.run(ctx, "rollback", func(ctx context.Context, bm *bunmigrate.Migrator, r *shardRun) (*bunmigrate.MigrationGroup, error) {
		g, err := bm.Rollback(ctx)
		if g == nil {
			return nil, err
		}
		// Bun returns the whole group; what was removed is what the down
		// wrappers saw finish, except the last one when Bun then failed to
		// remove its record.
		done := r.done
		if err != nil && r.failed == "" && len(done) > 0 {
			r.failed = done[len(done)-1]
			done = done[:len(done)-1]
		}
		rolled := make(bunmigrate.MigrationSlice, 0, len(done))
		for _, name := range done {
			for _, mig := range g.Migrations {
				if mig.Name == name {
					rolled = append(rolled, mig)
				}
			}
		}
		g.Migrations = rolled
		return g, err
	})
}

// Unlock releases the Bun migration lock of every shard named in ids (every
// shard when ids is empty), as after a process died holding it. Run it only
// when no Migrate or Rollback is running. It fails with [ErrUnknownShard]
// before doing anything for an id not among the shards, and with the joined
// errors of the shards that failed.
func (m *Migrator) Unlock(ctx context.Context, ids ...identity.ShardID) error {
	for _, id := range ids {
		if _, ok := m.dbs[id]; !ok {
			return fmt.Errorf("%w: Unlock(%q) (shards: %v)", ErrUnknownShard, id, m.ids)
		}
	}
	errs := m.each(ctx, func(ctx context.Context, id identity.ShardID) error {
		if len(ids) > 0 && !slices.Contains(ids, id) {
			return nil
		}
		return m.bun(id, nil).Unlock(ctx)
	})
	return joinShardErrs(m.ids, "unlock", errs)
}

// shardRun is one run's state on one shard, written by the migration
// wrappers of that shard only (Bun runs a shard's migrations one at a time).
type shardRun struct {
	id      identity.ShardID
	skipped []string // names run as no-ops because a scope keeps them off the shard
	done    []string // names whose up or down finished (no-op included)
	failed  string   // name whose up or down failed
}

type runFunc func(ctx context.Context, bm *bunmigrate.Migrator, r *shardRun) (*bunmigrate.MigrationGroup, error)

func (m *Migrator) run(ctx context.Context, op string, fn runFunc) (Report, error) {
	report := make(Report, len(m.ids))
	errs := m.each(ctx, func(ctx context.Context, id identity.ShardID) error {
		r := &shardRun{id: id}
		res := &report[m.index(id)]
		res.Shard = id
		bm := m.bun(id, r)
		err := bm.Lock(ctx)
		if err == nil {
			var g *bunmigrate.MigrationGroup
			g, err = fn(ctx, bm, r)
			// The lock is released under the caller's ctx like every other
			// statement; if ctx was cancelled the lock stays, and the next
			// run fails on it by name until Unlock.
			err = errors.Join(err, bm.Unlock(ctx))
			if g != nil && len(g.Migrations) > 0 {
				res.GroupID, res.Migrations = g.ID, g.Migrations
			}
			for _, mig := range res.Migrations {
				if slices.Contains(r.skipped, mig.Name) {
					res.Skipped = append(res.Skipped, mig.Name)
				}
			}
			res.Failed = r.failed
		}
		res.Err = err
		m.mu.Lock()
		m.lastErr[id] = err
		m.mu.Unlock()
		return err
	})
	return report, joinShardErrs(m.ids, op, errs)
}

// each runs fn on every shard, concurrently up to the concurrency bound,
// never cancelling one shard because another failed: every shard's
// migration runs to its end so that the report is complete and a rerun
// has only the failed shards to resume. errs[i] is shard m.ids[i]'s error.
func (m *Migrator) each(ctx context.Context, fn func(ctx context.Context, id identity.ShardID) error) []error {
	errs, _ := fanout.Run(ctx, len(m.ids), fanout.Policy{Limit: m.cfg.concurrency}, func(ctx context.Context, i int) error {
		id := m.ids[i]
		return fn(withShard(ctx, id), id)
	})
	return errs
}

func (m *Migrator) index(id identity.ShardID) int { return slices.Index(m.ids, id) }

// bun returns a Bun migrator for shard id over a copy of the migrations
// whose up and down funcs apply the scopes for that shard and note their
// progress in r (nil: no run to note, as for Init and Status).
func (m *Migrator) bun(id identity.ShardID, r *shardRun) *bunmigrate.Migrator {
	set := bunmigrate.NewMigrations()
	for _, mig := range m.migrations.Sorted() {
		sc := m.scopes[mig.Name]
		mig.Up = wrap(mig.Up, mig.Name, sc, m, r)
		mig.Down = wrap(mig.Down, mig.Name, sc, m, r)
		set.Add(mig)
	}
	opts := append(slices.Clone(m.cfg.bunOpts), bunmigrate.WithMarkAppliedOnSuccess(true))
	return bunmigrate.NewMigrator(m.dbs[id], set, opts...)
}

// wrap returns up (or down) made to run only where its scope lets it, and
// to note in r how it went. A nil func stays a no-op that still notes.
func wrap(
	fn func(context.Context, *bunmigrate.Migrator, *bunmigrate.Migration) error,
	name string, sc *scoped, m *Migrator, r *shardRun,
) func(context.Context, *bunmigrate.Migrator, *bunmigrate.Migration) error {
	return func(ctx context.Context, bm *bunmigrate.Migrator, mig *bunmigrate.Migration) error {
		id, _ := ShardOf(ctx)
		run := true
		if sc != nil {
			var err error
			if run, err = sc.applies(ctx, m, id, bm.DB()); err != nil {
				if r != nil {
					r.failed = name
				}
				return err
			}
		}
		if run && fn != nil {
			if err := fn(ctx, bm, mig); err != nil {
				if r != nil {
					r.failed = name
				}
				return err
			}
		}
		if r != nil {
			if !run {
				r.skipped = append(r.skipped, name)
			}
			r.done = append(r.done, name)
		}
		return nil
	}
}

func joinShardErrs(ids []identity.ShardID, op string, errs []error) error {
	var out []error
	for i, err := range errs {
		if err != nil {
			out = append(out, fmt.Errorf("migrate: %s on shard %s: %w", op, ids[i], err))
		}
	}
	return errors.Join(out...)
}

type ctxKey struct{}

func withShard(ctx context.Context, id identity.ShardID) context.Context {
	return context.WithValue(ctx, ctxKey{}, id)
}

// ShardOf returns the shard a migration is running on, from the ctx the
// [Migrator] gives its up and down funcs (and Bun's migration hooks), and
// false outside a Migrator's run. A Go migration can use it to do
// shard-specific work.
func ShardOf(ctx context.Context) (identity.ShardID, bool) {
	id, ok := ctx.Value(ctxKey{}).(identity.ShardID)
	return id, ok && id != ""
}
