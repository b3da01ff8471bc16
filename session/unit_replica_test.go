package session_test

import (
	"context"
	"database/sql"
	"errors"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// TestUnitReadsTheirWritesWithReplicas: a unit of work reads inside its
// transactions, on the primaries (never a replica), and its commit raises
// the read-your-writes mark of the context it commits with.
func TestUnitReadsTheirWritesWithReplicas(t *testing.T) {
	ctx := context.Background()
	r := newReplicated(t, map[session.ShardID]int{"europe": 1}, false)
	s := r.session(t)
	r.caughtUp(t, s)
	replica := r.replicas["europe"][0]
	if _, err := replica.ExecContext(ctx, "SELECT pg_wal_replay_pause()"); err != nil {
		t.Fatal(err)
	}
	defer replica.ExecContext(context.Background(), "SELECT pg_wal_replay_resume()")

	ryw := s.WithReadYourWrites(ctx)
	uow := s.Begin()
	if err := uow.Add(&weather.Location{ID: 7, Continent: "Europe", City: "Oslo"}); err != nil {
		t.Fatal(err)
	}
	if err := uow.Flush(ryw); err != nil {
		t.Fatal(err)
	}
	r.reset()
	var locs []*weather.Location
	if err := uow.NewSelect().Model(&locs).WhereShardKey("continent", "Europe").Scan(ryw); err != nil || len(locs) != 1 {
		t.Fatalf("the unit's select of its own write = %v, %v; want Oslo", locs, err)
	}
	if rc := r.onReplicas("europe")[0]; rc != 0 {
		t.Errorf("the unit's select ran %d statements on the replica; want 0 (its transaction is on the primary)", rc)
	}
	if err := uow.Commit(ryw); err != nil {
		t.Fatal(err)
	}

	var got weather.Location
	if err := s.Get(ctx, &got, 7); !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("Get without the tracker = %v; want sql.ErrNoRows from the paused replica", err)
	}
	if err := s.Get(ryw, &got, 7); err != nil || got.City != "Oslo" {
		t.Fatalf("Get with the tracker after the unit's commit = %q, %v; want Oslo", got.City, err)
	}
}
