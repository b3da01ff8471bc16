package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/spf13/cobra"
	"github.com/uptrace/bun"
	bunmigrate "github.com/uptrace/bun/migrate"

	"github.com/bunshard/bunshard/migrate"
)

func (a *app) migrateCommand() *cobra.Command {
	var dir string
	var concurrency int
	cmd := &cobra.Command{
		Use:   "migrate",
		Short: "Run Bun migrations on every shard: up, down, status, create",
		Long: `migrate runs the SQL migrations of a directory (Bun's files: NAME.up.sql,
NAME.down.sql, NAME.tx.up.sql for one transaction) on every shard, each shard with its own
bun_migrations table and lock (the bunshard migrate package). A shard that failed is
resumed by the next "migrate up"; the shards that succeeded apply nothing.`,
		Args: args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return &usageError{fmt.Errorf("%s needs a subcommand: up, down, status or create", cmd.CommandPath())}
		},
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&dir, "dir", "", "directory of SQL migrations (default [migrate] dir, or $"+envMigrations+")")
	pf.IntVar(&concurrency, "concurrency", 0, "shards migrated at once (default [migrate] concurrency, else all)")

	// migrator loads the config and migrations and returns a Migrator.
	migrator := func() (*migrate.Migrator, *fleet, *bunmigrate.Migrations, error) {
		f, err := a.fleet()
		if err != nil {
			return nil, nil, nil, err
		}
		d := dir
		if d == "" {
			d = f.cfg.Migrate.Dir
		}
		if d == "" {
			f.close()
			return nil, nil, nil, configErrorf("no migrations directory: pass --dir, set [migrate] dir, or %s", envMigrations)
		}
		migs := bunmigrate.NewMigrations()
		if err := migs.Discover(os.DirFS(d)); err != nil {
			f.close()
			return nil, nil, nil, configErrorf("migrations in %s: %v", d, err)
		}
		if len(migs.Sorted()) == 0 {
			f.close()
			return nil, nil, nil, configErrorf("no migrations in %s (Bun's files: NAME.up.sql, NAME.down.sql)", d)
		}
		n := concurrency
		if n == 0 {
			n = f.cfg.Migrate.Concurrency
		}
		progress := &migrationProgress{}
		m, err := migrate.New(migrate.DBs(f.dbs), migs, migrate.WithConcurrency(n),
			migrate.WithMigratorOptions(bunmigrate.AfterMigration(progress.after)))
		if err != nil {
			f.close()
			return nil, nil, nil, configErrorf("%v", err)
		}
		a.migProgress = progress
		a.migDisplay = map[string]string{}
		for _, mig := range migs.Sorted() {
			a.migDisplay[mig.Name] = names(bunmigrate.MigrationSlice{mig})[0]
		}
		return m, f, migs, nil
	}

	// withMigrator runs fn with a Migrator over the configured shards, under --timeout.
	withMigrator := func(cmd *cobra.Command, fn func(ctx context.Context, m *migrate.Migrator) error) error {
		m, f, _, err := migrator()
		if err != nil {
			return err
		}
		defer f.close()
		ctx, cancel := a.withTimeout(cmd.Context())
		defer cancel()
		return fn(ctx, m)
	}
	up := &cobra.Command{
		Use:   "up",
		Short: "Create Bun's tables where missing, then apply the pending migrations on every shard",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withMigrator(cmd, func(ctx context.Context, m *migrate.Migrator) error {
				if err := m.Init(ctx); err != nil {
					return err
				}
				return a.runMigration(ctx, m, "migrate up", m.Migrate,
					func(s migrate.ShardStatus) int { return len(s.Pending) })
			})
		},
	}
	down := &cobra.Command{
		Use:   "down",
		Short: "Roll back each shard's last migration group",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withMigrator(cmd, func(ctx context.Context, m *migrate.Migrator) error {
				return a.runMigration(ctx, m, "migrate down", m.Rollback,
					func(s migrate.ShardStatus) int { return len(s.Applied.LastGroup().Migrations) })
			})
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show each shard's applied, pending and missing migrations (exit 3 when some are pending)",
		Args:  args(cobra.NoArgs),
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withMigrator(cmd, func(ctx context.Context, m *migrate.Migrator) error {
				st, err := m.Status(ctx)
				pending := a.printStatus(st)
				if err != nil {
					return err
				}
				if pending > 0 {
					return &attention{fmt.Sprintf("%d shard(s) have pending migrations; run bunshard migrate up", pending)}
				}
				return nil
			})
		},
	}
	var tx bool
	create := &cobra.Command{
		Use:   "create NAME",
		Short: "Write empty up and down SQL files for a new migration into the directory",
		Args:  args(cobra.ExactArgs(1)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			d := dir
			if d == "" {
				if cfg, err := loadConfig(a.configPath, a.getenv); err == nil {
					d = cfg.Migrate.Dir
				} else if v := a.getenv(envMigrations); v != "" {
					d = v
				}
			}
			if d == "" {
				return configErrorf("no migrations directory: pass --dir, set [migrate] dir, or %s", envMigrations)
			}
			files, err := createMigration(d, argv[0], tx, time.Now().UTC())
			if err != nil {
				return err
			}
			if a.jsonOut {
				return a.printJSON(map[string]any{"files": files})
			}
			for _, f := range files {
				fmt.Fprintln(a.stdout, f)
			}
			return nil
		},
	}
	create.Flags().BoolVar(&tx, "tx", false, "write NAME.tx.up.sql and NAME.tx.down.sql (each runs in one transaction)")
	cmd.AddCommand(up, down, status, create)
	return cmd
}

// migrationProgress counts finished migrations for the progress report; Bun
// calls after from each shard's goroutine.
type migrationProgress struct {
	mu   sync.Mutex
	step func(string)
}

func (p *migrationProgress) after(ctx context.Context, _ bun.IConn, mig *bunmigrate.Migration) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.step != nil {
		id, _ := migrate.ShardOf(ctx)
		p.step(fmt.Sprintf("%s: %s", id, mig.Name))
	}
	return nil
}

// runMigration runs fn (Migrate or Rollback) with a progress report whose steps are
// the migrations it will run (steps of each shard's status), and prints the report.
func (a *app) runMigration(ctx context.Context, m *migrate.Migrator, what string,
	fn func(context.Context) (migrate.Report, error), steps func(migrate.ShardStatus) int,
) error {
	total := 0
	if st, err := m.Status(ctx); err == nil {
		for _, s := range st {
			total += steps(s)
		}
	}
	p := a.startProgress(total, what)
	a.migProgress.mu.Lock()
	a.migProgress.step = p.step
	a.migProgress.mu.Unlock()
	report, err := fn(ctx)
	p.done()
	a.printReport(report)
	return err
}

// shardResultJSON is one shard's line of a migrate up or down report.
type shardResultJSON struct {
	Shard      string   `json:"shard"`
	Group      int64    `json:"group"`
	Migrations []string `json:"migrations"`
	Skipped    []string `json:"skipped"`
	Failed     string   `json:"failed"`
	Error      string   `json:"error"`
}

func (a *app) printReport(report migrate.Report) {
	if a.jsonOut {
		out := []shardResultJSON{}
		for _, r := range report {
			out = append(out, shardResultJSON{Shard: string(r.Shard), Group: r.GroupID, Migrations: names(r.Migrations),
				Skipped: orEmpty(r.Skipped), Failed: a.failedName(r), Error: errString(r.Err)})
		}
		_ = a.printJSON(out)
		return
	}
	var rows [][]string
	for _, r := range report {
		group := ""
		if r.GroupID != 0 {
			group = strconv.FormatInt(r.GroupID, 10)
		}
		rows = append(rows, []string{string(r.Shard), group, strings.Join(names(r.Migrations), " "), a.failedName(r), errString(r.Err)})
	}
	a.printTable([]string{"shard", "group", "migrations", "failed", "error"}, rows)
}

// shardStatusJSON is one shard's line of migrate status.
type shardStatusJSON struct {
	Shard     string   `json:"shard"`
	State     string   `json:"state"`
	Applied   []string `json:"applied"`
	Pending   []string `json:"pending"`
	Missing   []string `json:"missing"`
	LastGroup int64    `json:"last_group"`
	Error     string   `json:"error"`
}

// printStatus prints the status and returns how many shards have pending migrations.
func (a *app) printStatus(st []migrate.ShardStatus) int {
	pending := 0
	var rows [][]string
	out := []shardStatusJSON{}
	for _, s := range st {
		if len(s.Pending) > 0 {
			pending++
		}
		out = append(out, shardStatusJSON{Shard: string(s.Shard), State: s.State(), Applied: names(s.Applied),
			Pending: names(s.Pending), Missing: names(s.Missing), LastGroup: s.LastGroupID, Error: errString(s.Err)})
		rows = append(rows, []string{string(s.Shard), s.State(), strconv.Itoa(len(s.Applied)),
			strings.Join(names(s.Pending), " "), strings.Join(names(s.Missing), " "),
			strconv.FormatInt(s.LastGroupID, 10), errString(s.Err)})
	}
	if a.jsonOut {
		_ = a.printJSON(out)
	} else {
		a.printTable([]string{"shard", "state", "applied", "pending", "missing", "last group", "error"}, rows)
	}
	return pending
}

// names returns the migrations' names as their files have them: Bun's name (the
// number) and comment joined by "_".
func names(ms bunmigrate.MigrationSlice) []string {
	out := []string{}
	for _, m := range ms {
		if m.Comment != "" {
			out = append(out, m.Name+"_"+m.Comment)
		} else {
			out = append(out, m.Name)
		}
	}
	return out
}

// failedName returns the failed migration's name as names gives it.
func (a *app) failedName(r migrate.ShardResult) string {
	if d, ok := a.migDisplay[r.Failed]; ok {
		return d
	}
	return r.Failed
}

func orEmpty(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// migrationName is what Bun accepts before the first "." of a migration file.
var migrationName = regexp.MustCompile(`^[a-z0-9_]+$`)

// createMigration writes empty up and down files for a migration named
// <UTC time>_name into dir and returns their paths. It fails for a name Bun
// would not accept and when a file exists.
func createMigration(dir, name string, tx bool, now time.Time) ([]string, error) {
	if !migrationName.MatchString(name) {
		return nil, configErrorf("migration name %q: use lower-case letters, digits and _", name)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	base := now.Format("20060102150405") + "_" + name
	kind := ""
	if tx {
		kind = ".tx"
	}
	var files []string
	for _, dirn := range []string{"up", "down"} {
		path := filepath.Join(dir, base+kind+"."+dirn+".sql")
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
		if err != nil {
			return files, err
		}
		_, err = fmt.Fprintf(f, "-- %s migration %s (--bun:split separates statements)\n", dirn, base)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return files, err
		}
		files = append(files, path)
	}
	return files, nil
}
