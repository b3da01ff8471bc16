package apptest

import (
	"errors"
	"os"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/session"
	"github.com/bunshard/bunshard/shardtest"
)

// TestMain starts three temporary PostgreSQL servers (or uses those in BUNSHARD_TEST_PG)
// for the whole package, and fails, saying what to install, when it cannot.
func TestMain(m *testing.M) { os.Exit(shardtest.Main(m, 3)) }

func TestAccounts(t *testing.T) {
	ctx := t.Context()
	// A fresh database on each server, one per shard, dropped when the test ends.
	shards := shardtest.Shared().NewShards(t, "accounts", shardtest.WithNames("eu", "us", "asia"))
	sess, err := Open(ctx, shards.IDBs())
	if err != nil {
		t.Fatal(err)
	}

	accounts := []*Account{
		{ID: 1, Region: "eu", Name: "Ada"}, {ID: 2, Region: "us", Name: "Bob"},
		{ID: 3, Region: "asia", Name: "Chen"}, {ID: 4, Region: "eu", Name: "Dora"},
	}
	if err := sess.Insert(ctx, &accounts); err != nil {
		t.Fatal(err)
	}

	// Each row is on its region's shard, and only there.
	for _, id := range shards.IDs() {
		n, err := shards.DB(id).NewSelect().Model((*Account)(nil)).Where("region = ?", id).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		total, err := shards.DB(id).NewSelect().Model((*Account)(nil)).Count(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if want := map[session.ShardID]int64{"eu": 2, "us": 1, "asia": 1}[id]; n != want || total != want {
			t.Errorf("shard %s holds %d rows, %d of its region; want %d, all of its region", id, total, n, want)
		}
	}

	// Get finds a row whatever its shard, and remembers where it came from.
	var got Account
	if err := sess.Get(ctx, &got, 3); err != nil {
		t.Fatal(err)
	}
	if shard, _ := got.Shard(); got.Name != "Chen" || shard != "asia" {
		t.Errorf("Get(3) = %s from %q; want Chen from asia", got.Name, shard)
	}

	// A fan-out select returns what one database would: every row, in global order.
	var all []Account
	if err := sess.NewSelect().Model(&all).Order("id DESC").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, a := range all {
		names = append(names, a.Name)
	}
	if got, want := names, []string{"Dora", "Chen", "Bob", "Ada"}; !slices.Equal(got, want) {
		t.Errorf("select ordered by id DESC = %v; want %v", got, want)
	}

	// A shard crashes: a fan-out fails naming it; a statement routed elsewhere still works.
	if err := shards.Server("asia").Kill(); err != nil {
		t.Fatal(err) // external servers (BUNSHARD_TEST_PG) cannot be killed: ErrExternal
	}
	err = sess.NewSelect().Model(&all).Scan(ctx)
	var se *session.ShardError
	if !errors.As(err, &se) || se.Shard != "asia" {
		t.Errorf("select with shard asia down = %v; want a *session.ShardError naming asia", err)
	}
	var eu []Account
	if err := sess.NewSelect().Model(&eu).WhereShardKey("region", "eu").Order("id").Scan(ctx); err != nil || len(eu) != 2 {
		t.Errorf("select of region eu with asia down = %d rows, %v; want 2, nil", len(eu), err)
	}

	// It comes back after crash recovery, with its row.
	if err := shards.Server("asia").Start(ctx); err != nil {
		t.Fatal(err)
	}
	n, err := sess.NewSelect().Model((*Account)(nil)).Count(ctx)
	if err != nil || n != 4 {
		t.Errorf("count after restart = %d, %v; want 4", n, err)
	}
}
