package main

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"

	"github.com/bunshard/bunshard/shardtest"
)

// prepare leaves a prepared transaction named gid on the database dsn names, holding an
// insert into t.
func prepare(t *testing.T, dsn, gid string) {
	t.Helper()
	db, err := shardtest.OpenDB(shardtest.PGDriver, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	conn, err := db.Conn(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	for _, q := range []string{"CREATE TABLE IF NOT EXISTS t (v text)", "BEGIN", "INSERT INTO t VALUES ('" + gid + "')", "PREPARE TRANSACTION '" + gid + "'"} {
		if _, err := conn.ExecContext(t.Context(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// gid returns a bunshard gid for a unit coordinated by shard a, as session makes them:
// bunshard_<24 hex of the unit><8 hex tag of the coordinator>_<shard>.
func gid(unit int, shard string) (string, string) {
	txid := fmt.Sprintf("%024x%08x", unit, uint32(xxhash.Sum64String("a")))
	return txid, "bunshard_" + txid + "_" + shard
}

// TestRecover leaves two prepared transactions on shard b, one whose unit's decision the
// coordinator (a) recorded as commit and one with no record, and checks that recover
// leaves both alone under --min-age (exit 3), then commits the first and rolls back the
// second (exit 0), reporting each.
func TestRecover(t *testing.T) {
	cfg, dsns := fleetConfig(t, "coordinator = \"a\"\n")
	env := map[string]string{}
	// A first run on a clean fleet creates the decision table and finds nothing.
	r := bunshard(t, env, "--config", cfg, "recover").want(t, exitOK)
	golden(t, "recover_empty", r.stdout)

	committed, gidC := gid(1, "b")
	_, gidA := gid(2, "b")
	execOn(t, dsns[0], "INSERT INTO bunshard_decisions (txid, decision, shards, created) VALUES ('"+committed+"', 'commit', '{a,b}', now())")
	prepare(t, dsns[1], gidC)
	prepare(t, dsns[1], gidA)

	r = bunshard(t, env, "--config", cfg, "recover", "--min-age", "1h").want(t, exitAttention)
	golden(t, "recover_min_age", r.stdout)
	if !strings.Contains(r.stderr, "1 prepared transaction(s) left") {
		t.Errorf("stderr %q; want it to say one is left", r.stderr)
	}
	r = bunshard(t, env, "--config", cfg, "--json", "recover").want(t, exitOK)
	var got struct {
		Transactions []recoveredJSON
		Error        string
	}
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatalf("recover --json: %v\n%s", err, r.stdout)
	}
	want := fmt.Sprint([]recoveredJSON{{gidA, "b", "rolled back"}})
	if fmt.Sprint(got.Transactions) != want || got.Error != "" {
		t.Errorf("recover = %v, %q; want %s (the committed one went in the --min-age run)", got.Transactions, got.Error, want)
	}
	// The committed unit's row is there; the rolled-back one's is not.
	r = bunshard(t, env, "--config", cfg, "check", "--older-than", "0s").want(t, exitOK)
	db, err := shardtest.OpenDB(shardtest.PGDriver, dsns[1])
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var rows []string
	res, err := db.QueryContext(t.Context(), "SELECT v FROM t ORDER BY v")
	if err != nil {
		t.Fatal(err)
	}
	for res.Next() {
		var v string
		if err := res.Scan(&v); err != nil {
			t.Fatal(err)
		}
		rows = append(rows, v)
	}
	if err := res.Err(); err != nil {
		t.Fatal(err)
	}
	if strings.Join(rows, ",") != gidC {
		t.Errorf("rows on b = %v; want only the committed unit's %s", rows, gidC)
	}
}

// TestCheck checks a healthy fleet (exit 0), one with an old prepared transaction
// (exit 3), and one with a shard down (exit 1, the other shard still reported).
func TestCheck(t *testing.T) {
	cfg, dsns := fleetConfig(t, "")
	env := map[string]string{}
	execOn(t, dsns[0], "CREATE TABLE accounts (id int); CREATE SCHEMA ops; CREATE TABLE ops.jobs (id int)")
	r := bunshard(t, env, "--config", cfg, "check").want(t, exitOK)
	golden(t, "check_ok", r.stdout)
	if got := strings.Count(r.stderr, ": ok\n"); got != 2 {
		t.Errorf("progress lines = %q; want one ok line per shard", r.stderr)
	}

	_, g := gid(3, "b")
	prepare(t, dsns[1], g)
	t.Cleanup(func() { execOn(t, dsns[1], "ROLLBACK PREPARED '"+g+"'") })
	r = bunshard(t, env, "--config", cfg, "check", "--older-than", "0s").want(t, exitAttention)
	golden(t, "check_prepared", r.stdout)
	bunshard(t, env, "--config", cfg, "check", "--older-than", "1h").want(t, exitOK)

	set := shardtest.Shared()
	if set.External() {
		t.Skipf("servers come from %s and cannot be stopped; the rest of the test stops one", shardtest.EnvVar)
	}
	srv := set.Server(1)
	if err := srv.Stop(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := srv.Start(context.Background()); err != nil {
			t.Error(err)
		}
	})
	r = bunshard(t, env, "--config", cfg, "--json", "check").want(t, exitFailed)
	var res []shardCheck
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("check --json: %v\n%s", err, r.stdout)
	}
	if len(res) != 2 || !res[0].OK || res[1].OK || !strings.Contains(res[1].Error, "ping") || res[0].Role != "primary" {
		t.Errorf("check with b down = %+v; want a ok (primary), b failed at ping", res)
	}
	if !strings.Contains(r.stderr, "shard(s) b did not answer") {
		t.Errorf("stderr %q; want it to name shard b", r.stderr)
	}
}

// TestCheckReplica checks that a shard's streaming replica is listed.
func TestCheckReplica(t *testing.T) {
	set := shardtest.Shared()
	if set.External() {
		t.Skipf("servers come from %s and cannot be replicated", shardtest.EnvVar)
	}
	cfg, _ := fleetConfig(t, "")
	rep, err := set.Server(0).StartReplica(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = rep.Stop(context.Background()) })
	r := bunshard(t, map[string]string{}, "--config", cfg, "--json", "check").want(t, exitOK)
	var res []shardCheck
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != 2 || len(res[0].Replicas) != 1 || res[0].Replicas[0].State != "streaming" || len(res[1].Replicas) != 0 {
		t.Errorf("check = %+v; want one streaming replica on a, none on b", res)
	}
	// The replica itself, checked as a shard, is in recovery.
	r = bunshard(t, map[string]string{envShards: "r=" + rep.DSN("postgres")}, "--json", "check").want(t, exitOK)
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatal(err)
	}
	if len(res) != 1 || res[0].Role != "replica" {
		t.Errorf("check of the replica = %+v; want role replica", res)
	}

	// A replica whose replay is paused falls behind the writes on its primary; once
	// pg_stat_replication's replay_lag passes --max-lag, check exits 3 and names shard a.
	cfg, dsns := fleetConfig(t, "")
	primary, err := shardtest.OpenDB(shardtest.PGDriver, dsns[0])
	if err != nil {
		t.Fatal(err)
	}
	defer primary.Close()
	standby, err := shardtest.OpenDB(shardtest.PGDriver, rep.DSN("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer standby.Close()
	if _, err := standby.ExecContext(t.Context(), "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = standby.ExecContext(context.Background(), "SELECT pg_wal_replay_resume()") }()
	if _, err := primary.ExecContext(t.Context(), "CREATE TABLE lag (v int)"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := primary.ExecContext(t.Context(), "INSERT INTO lag VALUES (1)"); err != nil {
			t.Fatal(err)
		}
		r := bunshard(t, map[string]string{}, "--config", cfg, "check", "--max-lag", "300ms")
		if r.code == exitAttention {
			if !strings.Contains(r.stderr, "a") || !strings.Contains(r.stderr, "lagging more than 300ms") {
				t.Errorf("check with a paused replica: stderr %q; want shard a named and the lag limit", r.stderr)
			}
			break
		}
		if r.code != exitOK {
			t.Fatalf("check with a paused replica: exit %d\n%s%s", r.code, r.stdout, r.stderr)
		}
		if time.Now().After(deadline) {
			t.Fatalf("check never exited %d while the replica's replay was paused:\n%s", exitAttention, r.stdout)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
