package main

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bunshard/bunshard/shardtest"
)

// execOn runs query on the database dsn names.
func execOn(t *testing.T, dsn, query string) {
	t.Helper()
	db, err := shardtest.OpenDB(shardtest.PGDriver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	// Not t.Context(): execOn also runs in cleanups, after that context is cancelled.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := db.ExecContext(ctx, query); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
}

// TestMigrate runs migrate up, status and down on two shards, one of which fails a
// migration and is resumed, and checks each step's output and exit code.
func TestMigrate(t *testing.T) {
	dir := t.TempDir()
	cfg, dsns := fleetConfig(t, "[migrate]\ndir = "+quote(dir)+"\n")
	writeFiles(t, dir, map[string]string{
		"20260101000001_accounts.tx.up.sql":   "CREATE TABLE accounts (id bigint PRIMARY KEY, region text)",
		"20260101000001_accounts.tx.down.sql": "DROP TABLE accounts",
		"20260101000002_orders.tx.up.sql":     "CREATE TABLE orders (id bigint PRIMARY KEY)",
		"20260101000002_orders.tx.down.sql":   "DROP TABLE orders",
	})
	env := map[string]string{}

	// Before any run, status cannot read Bun's tables: it says so, exit 1.
	r := bunshard(t, env, "--config", cfg, "migrate", "status").want(t, exitFailed)
	if !strings.Contains(r.stderr, "bun_migrations") {
		t.Errorf("status before up: stderr %q; want it to name bun_migrations", r.stderr)
	}

	r = bunshard(t, env, "--config", cfg, "migrate", "up").want(t, exitOK)
	golden(t, "migrate_up", r.stdout)
	if got := strings.Count(r.stderr, "\n"); got != 4 {
		t.Errorf("progress lines on stderr = %d; want 4 (2 migrations on 2 shards):\n%s", got, r.stderr)
	}
	r = bunshard(t, env, "--config", cfg, "migrate", "status").want(t, exitOK)
	golden(t, "migrate_status_applied", r.stdout)

	// A third migration that fails on shard b, where the table is already there.
	writeFiles(t, dir, map[string]string{
		"20260101000003_tags.tx.up.sql":   "CREATE TABLE tags (id bigint PRIMARY KEY)",
		"20260101000003_tags.tx.down.sql": "DROP TABLE tags",
	})
	execOn(t, dsns[1], "CREATE TABLE tags (id int)")
	r = bunshard(t, env, "--config", cfg, "migrate", "up").want(t, exitFailed)
	golden(t, "migrate_up_failed", r.stdout)
	if !strings.Contains(r.stderr, "shard b") || !strings.Contains(r.stderr, `"tags" already exists`) {
		t.Errorf("stderr %q; want the error naming shard b and its cause", r.stderr)
	}
	r = bunshard(t, env, "--config", cfg, "--json", "migrate", "status").want(t, exitAttention)
	var st []shardStatusJSON
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if len(st) != 2 || st[0].State != "applied" || st[1].State != "pending" || strings.Join(st[1].Pending, ",") != "20260101000003_tags" {
		t.Errorf("status after b failed = %+v; want a applied, b pending 20260101000003_tags", st)
	}

	// Fixed, the next up resumes b only.
	execOn(t, dsns[1], "DROP TABLE tags")
	r = bunshard(t, env, "--config", cfg, "migrate", "up").want(t, exitOK)
	golden(t, "migrate_up_resumed", r.stdout)

	// down rolls back each shard's own last group (group 2 on each: b's second run was its own).
	r = bunshard(t, env, "--config", cfg, "migrate", "down").want(t, exitOK)
	golden(t, "migrate_down", r.stdout)
	r = bunshard(t, env, "--config", cfg, "migrate", "status").want(t, exitAttention)
	golden(t, "migrate_status_after_down", r.stdout)
}

// TestMigrateCreate checks the files migrate create writes and that Bun reads them.
func TestMigrateCreate(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "migrations")
	now := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	files, err := createMigration(dir, "add_tags", true, now)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{filepath.Join(dir, "20261201100000_add_tags.tx.up.sql"), filepath.Join(dir, "20261201100000_add_tags.tx.down.sql")}
	if strings.Join(files, " ") != strings.Join(want, " ") {
		t.Errorf("createMigration = %v; want %v", files, want)
	}
	if _, err := createMigration(dir, "add_tags", true, now); !os.IsExist(err) {
		t.Errorf("second createMigration = %v; want a file-exists error", err)
	}
	if _, err := createMigration(dir, "Add Tags", false, now); err == nil {
		t.Errorf("createMigration(\"Add Tags\") = nil; want an error naming the name")
	}
	r := bunshard(t, map[string]string{envMigrations: dir}, "migrate", "create", "two").want(t, exitOK)
	if !strings.Contains(r.stdout, "_two.up.sql") || !strings.Contains(r.stdout, "_two.down.sql") {
		t.Errorf("migrate create printed %q; want the two paths", r.stdout)
	}
}

func quote(s string) string { return `"` + strings.ReplaceAll(s, `\`, `\\`) + `"` }
