package migrate_test

import (
	"context"
	"embed"
	"errors"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	bunmigrate "github.com/uptrace/bun/migrate"

	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/migrate"
	"github.com/bunshard/bunshard/session"
)

// A session is a migrate.Shards: a Migrator can be made from one.
var _ migrate.Shards = (*session.Session)(nil)

//go:embed testdata/sql
var sqlFiles embed.FS

// sqlMigration is a Go migration added under an explicit name (Register
// takes the name from the caller's file name).
func sqlMigration(name, comment, up, down string) bunmigrate.Migration {
	return bunmigrate.Migration{
		Name:    name,
		Comment: comment,
		Up: func(ctx context.Context, m *bunmigrate.Migrator, _ *bunmigrate.Migration) error {
			_, err := m.DB().ExecContext(ctx, up)
			return err
		},
		Down: func(ctx context.Context, m *bunmigrate.Migrator, _ *bunmigrate.Migration) error {
			_, err := m.DB().ExecContext(ctx, down)
			return err
		},
	}
}

// ledgerMigrations are three migrations, Go and SQL files mixed:
// 20260101000001 creates accounts (Go, Register), 20260101000002 creates
// ledger and its index (SQL files, transactional, two statements split by
// --bun:split), 20260101000003 adds accounts.note (Go, Add).
func ledgerMigrations(t *testing.T) *bunmigrate.Migrations {
	t.Helper()
	ms := bunmigrate.NewMigrations()
	registerAccounts(ms)
	sub, err := fs.Sub(sqlFiles, "testdata/sql")
	if err != nil {
		t.Fatal(err)
	}
	if err := ms.Discover(sub); err != nil {
		t.Fatalf("Discover: %v", err)
	}
	ms.Add(sqlMigration("20260101000003", "note",
		`ALTER TABLE accounts ADD COLUMN note text`, `ALTER TABLE accounts DROP COLUMN note`))
	return ms
}

func migrationNames(ms bunmigrate.MigrationSlice) []string {
	out := []string{}
	for _, m := range ms {
		out = append(out, m.Name)
	}
	return out
}

// changes returns the statements shard id ran since reset that change
// anything but the migration lock: DDL, and rows of bun_migrations.
func (f *fixture) changes(id identity.ShardID) []string {
	var out []string
	for _, q := range f.like(id, "") {
		u := strings.ToUpper(strings.TrimSpace(q))
		switch {
		case strings.HasPrefix(u, "CREATE"), strings.HasPrefix(u, "ALTER"), strings.HasPrefix(u, "DROP"):
			out = append(out, q)
		case (strings.HasPrefix(u, "INSERT") || strings.HasPrefix(u, "DELETE")) && !strings.Contains(u, "BUN_MIGRATION_LOCKS"):
			out = append(out, q)
		}
	}
	return out
}

func checkStatus(t *testing.T, step string, m *migrate.Migrator, want map[identity.ShardID][3]any) {
	t.Helper()
	sts, err := m.Status(context.Background())
	if err != nil {
		t.Fatalf("%s: Status: %v", step, err)
	}
	if len(sts) != len(shardIDs) {
		t.Fatalf("%s: Status returned %d shards; want %d", step, len(sts), len(shardIDs))
	}
	for i, st := range sts {
		if st.Shard != shardIDs[i] {
			t.Errorf("%s: Status[%d].Shard = %s; want %s", step, i, st.Shard, shardIDs[i])
		}
		w := want[st.Shard]
		if st.State() != w[0].(string) {
			t.Errorf("%s: shard %s State() = %q (LastErr %v); want %q", step, st.Shard, st.State(), st.LastErr, w[0])
		}
		if got := migrationNames(st.Applied); !slices.Equal(got, w[1].([]string)) {
			t.Errorf("%s: shard %s Applied = %v; want %v", step, st.Shard, got, w[1])
		}
		if got := migrationNames(st.Pending); !slices.Equal(got, w[2].([]string)) {
			t.Errorf("%s: shard %s Pending = %v; want %v", step, st.Shard, got, w[2])
		}
		if len(st.Missing) != 0 {
			t.Errorf("%s: shard %s Missing = %v; want none", step, st.Shard, st.Missing)
		}
	}
}

const (
	m1 = "20260101000001"
	m2 = "20260101000002"
	m3 = "20260101000003"
)

var all = []string{m1, m2, m3}

// TestMigrateResumesFailedShard runs three migrations on four shards where
// the second fails on s2 (a table it creates is already there), checks the
// report and each shard's status, removes the cause and runs again: only s2
// applies anything (the rest of its migrations, as a second group), then
// rolls back each shard's own last group.
func TestMigrateResumesFailedShard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	m, err := migrate.New(f.dbs, ledgerMigrations(t), migrate.WithConcurrency(2))
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if err := m.Init(ctx); err != nil {
		t.Fatalf("Init: %v", err)
	}
	f.exec(t, "s2", `CREATE TABLE ledger (id int)`) // the cause of s2's failure

	// Run 1: s2 fails on the second migration; the others apply all three.
	report, err := m.Migrate(ctx)
	wantIn(t, err, "shard s2", "ledger", "already exists")
	if strings.Contains(err.Error(), "shard s0") || strings.Contains(err.Error(), "shard s1") || strings.Contains(err.Error(), "shard s3") {
		t.Errorf("Migrate err = %q; want only s2 in it", err)
	}
	if got := report.Failed(); !slices.Equal(got, []identity.ShardID{"s2"}) {
		t.Fatalf("report.Failed() = %v; want [s2]", got)
	}
	for _, id := range []identity.ShardID{"s0", "s1", "s3"} {
		res, _ := report.Shard(id)
		if res.Err != nil || res.GroupID != 1 || !slices.Equal(migrationNames(res.Migrations), all) || res.Failed != "" {
			t.Errorf("run 1 on %s: %+v; want group 1, %v, no error", id, res, all)
		}
		if got := f.tables(t, id, "accounts", "ledger"); !slices.Equal(got, []string{"accounts", "ledger"}) {
			t.Errorf("run 1: tables on %s = %v; want accounts and ledger", id, got)
		}
	}
	res, _ := report.Shard("s2")
	if res.GroupID != 1 || !slices.Equal(migrationNames(res.Migrations), []string{m1}) || res.Failed != m2 {
		t.Errorf("run 1 on s2: group %d, applied %v, failed %q; want group 1, [%s], failed %s",
			res.GroupID, migrationNames(res.Migrations), res.Failed, m1, m2)
	}
	wantIn(t, res.Err, "ledger", "already exists")
	if got := f.recorded(t, "s2"); !slices.Equal(got, []string{m1 + "@1"}) {
		t.Errorf("run 1: bun_migrations on s2 = %v; want [%s@1]", got, m1)
	}
	checkStatus(t, "after run 1", m, map[identity.ShardID][3]any{
		"s0": {"applied", all, []string{}},
		"s1": {"applied", all, []string{}},
		"s2": {"failed", []string{m1}, []string{m2, m3}},
		"s3": {"applied", all, []string{}},
	})
	// A Migrator made later (another process) knows nothing of run 1's
	// error: to it, s2 is a shard with pending migrations.
	later, err := migrate.New(f.dbs, ledgerMigrations(t))
	if err != nil {
		t.Fatal(err)
	}
	checkStatus(t, "after run 1, read by a new Migrator", later, map[identity.ShardID][3]any{
		"s0": {"applied", all, []string{}},
		"s1": {"applied", all, []string{}},
		"s2": {"pending", []string{m1}, []string{m2, m3}},
		"s3": {"applied", all, []string{}},
	})

	// Run 2, after fixing the cause: only s2 changes anything.
	f.exec(t, "s2", `DROP TABLE ledger`)
	f.reset()
	report, err = m.Migrate(ctx)
	if err != nil {
		t.Fatalf("run 2: Migrate: %v", err)
	}
	for _, id := range []identity.ShardID{"s0", "s1", "s3"} {
		res, _ := report.Shard(id)
		if res.Err != nil || res.GroupID != 0 || len(res.Migrations) != 0 {
			t.Errorf("run 2 on %s: %+v; want nothing applied", id, res)
		}
		if got := f.changes(id); len(got) != 0 {
			t.Errorf("run 2 on %s ran %q; want no DDL and no bun_migrations rows", id, got)
		}
		if got, want := f.recorded(t, id), []string{m1 + "@1", m2 + "@1", m3 + "@1"}; !slices.Equal(got, want) {
			t.Errorf("run 2: bun_migrations on %s = %v; want %v", id, got, want)
		}
	}
	res, _ = report.Shard("s2")
	if res.Err != nil || res.GroupID != 2 || !slices.Equal(migrationNames(res.Migrations), []string{m2, m3}) {
		t.Errorf("run 2 on s2: %+v; want group 2, [%s %s]", res, m2, m3)
	}
	if got := f.like("s2", "CREATE TABLE ledger"); len(got) != 1 {
		t.Errorf("run 2 on s2: CREATE TABLE ledger ran %d times; want 1", len(got))
	}
	if got, want := f.recorded(t, "s2"), []string{m1 + "@1", m2 + "@2", m3 + "@2"}; !slices.Equal(got, want) {
		t.Errorf("run 2: bun_migrations on s2 = %v; want %v", got, want)
	}
	checkStatus(t, "after run 2", m, map[identity.ShardID][3]any{
		"s0": {"applied", all, []string{}},
		"s1": {"applied", all, []string{}},
		"s2": {"applied", all, []string{}},
		"s3": {"applied", all, []string{}},
	})

	// Run 3 has nothing to do anywhere.
	f.reset()
	if report, err = m.Migrate(ctx); err != nil {
		t.Fatalf("run 3: %v", err)
	}
	for _, id := range shardIDs {
		if res, _ := report.Shard(id); res.GroupID != 0 || len(f.changes(id)) != 0 {
			t.Errorf("run 3 on %s: group %d, changes %q; want nothing", id, res.GroupID, f.changes(id))
		}
	}

	// Rollback: each shard its own last group.
	report, err = m.Rollback(ctx)
	if err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	for _, id := range []identity.ShardID{"s0", "s1", "s3"} {
		res, _ := report.Shard(id)
		if res.GroupID != 1 || !slices.Equal(migrationNames(res.Migrations), []string{m3, m2, m1}) {
			t.Errorf("Rollback on %s: group %d, %v; want group 1, [%s %s %s]", id, res.GroupID, migrationNames(res.Migrations), m3, m2, m1)
		}
		if got := f.tables(t, id, "accounts", "ledger"); len(got) != 0 {
			t.Errorf("after Rollback: tables on %s = %v; want none", id, got)
		}
		if got := f.recorded(t, id); len(got) != 0 {
			t.Errorf("after Rollback: bun_migrations on %s = %v; want empty", id, got)
		}
	}
	res, _ = report.Shard("s2")
	if res.GroupID != 2 || !slices.Equal(migrationNames(res.Migrations), []string{m3, m2}) {
		t.Errorf("Rollback on s2: group %d, %v; want group 2, [%s %s]", res.GroupID, migrationNames(res.Migrations), m3, m2)
	}
	if got := f.tables(t, "s2", "accounts", "ledger"); !slices.Equal(got, []string{"accounts"}) {
		t.Errorf("after Rollback: tables on s2 = %v; want [accounts]", got)
	}
	checkStatus(t, "after Rollback", m, map[identity.ShardID][3]any{
		"s0": {"pending", []string{}, all},
		"s1": {"pending", []string{}, all},
		"s2": {"pending", []string{m1}, []string{m2, m3}},
		"s3": {"pending", []string{}, all},
	})
}

// TestMigrateLockedShard: a shard whose Bun lock is held (a run that died)
// fails by name and the others migrate; after Unlock of that shard the
// next run migrates it.
func TestMigrateLockedShard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	m, err := migrate.New(f.dbs, ledgerMigrations(t))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if err := bunmigrate.NewMigrator(f.dbs["s1"], ledgerMigrations(t)).Lock(ctx); err != nil {
		t.Fatalf("hold the lock of s1: %v", err)
	}
	report, err := m.Migrate(ctx)
	wantIn(t, err, "shard s1", "already locked")
	if got := report.Failed(); !slices.Equal(got, []identity.ShardID{"s1"}) {
		t.Fatalf("Failed() = %v; want [s1]", got)
	}
	if got := f.recorded(t, "s1"); len(got) != 0 {
		t.Errorf("locked s1 recorded %v; want nothing", got)
	}
	if err := m.Unlock(ctx, "s9"); !errors.Is(err, migrate.ErrUnknownShard) {
		t.Errorf("Unlock(s9) = %v; want ErrUnknownShard", err)
	}
	if err := m.Unlock(ctx, "s1"); err != nil {
		t.Fatalf("Unlock(s1): %v", err)
	}
	report, err = m.Migrate(ctx)
	if err != nil {
		t.Fatalf("Migrate after Unlock: %v", err)
	}
	for _, id := range shardIDs {
		res, _ := report.Shard(id)
		if want := map[bool]int{true: 3, false: 0}[id == "s1"]; len(res.Migrations) != want {
			t.Errorf("after Unlock, %s applied %v; want %d", id, migrationNames(res.Migrations), want)
		}
	}
}

// TestMigrateWithoutInit: Migrate and Status on shards without Bun's tables
// fail on every shard, by name.
func TestMigrateWithoutInit(t *testing.T) {
	f := newFixture(t)
	m, err := migrate.New(f.dbs, ledgerMigrations(t))
	if err != nil {
		t.Fatal(err)
	}
	_, err = m.Migrate(context.Background())
	wantIn(t, err, "shard s0", "shard s3", "bun_migration")
	sts, err := m.Status(context.Background())
	wantIn(t, err, "shard s0", "shard s3", "bun_migrations")
	if len(sts) != len(shardIDs) {
		t.Fatalf("Status = %d shard statuses; want one per shard, %d", len(sts), len(shardIDs))
	}
	for _, st := range sts {
		if st.State() != "unknown" || st.Err == nil {
			t.Errorf("Status of %s = %q, Err %v; want unknown with an error", st.Shard, st.State(), st.Err)
		}
	}
}

// TestMigrateConcurrencyLimit: with WithConcurrency(2), no more than two
// shards run a migration at the same time.
func TestMigrateConcurrencyLimit(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	var mu sync.Mutex
	running, most := 0, 0
	ms := bunmigrate.NewMigrations()
	ms.Add(bunmigrate.Migration{
		Name: "20260101000030", Comment: "slow",
		Up: func(ctx context.Context, _ *bunmigrate.Migrator, _ *bunmigrate.Migration) error {
			mu.Lock()
			running++
			most = max(most, running)
			mu.Unlock()
			time.Sleep(300 * time.Millisecond)
			mu.Lock()
			running--
			mu.Unlock()
			return nil
		},
	})
	m, err := migrate.New(f.dbs, ms, migrate.WithConcurrency(2))
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Init(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	if most > 2 || most < 1 {
		t.Errorf("at most %d shards migrated at once; want 1 or 2", most)
	}
}
