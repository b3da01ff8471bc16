package session_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/bunshard/bunshard/session"
)

// countPrefix counts, per server, the statements since reset that start
// with prefix.
func (e *foldEnv) countPrefix(prefix string) []int {
	out := make([]int, len(e.servers))
	for i, c := range e.servers {
		for _, s := range c.statements() {
			if strings.HasPrefix(s, prefix) {
				out[i]++
			}
		}
	}
	return out
}

// foldUnitWrites adds one new item per logical shard (ids from base) to a
// unit of s, updates one stored item per shard, and commits it.
func foldUnitWrites(t *testing.T, s *session.Session, base int64, opts ...session.UnitOption) error {
	t.Helper()
	ctx := context.Background()
	uow := s.Begin(opts...)
	defer uow.Rollback(ctx)
	for i := range foldShards {
		name := fmt.Sprint("new ", base+int64(i))
		if err := uow.Add(&FItem{ID: base + int64(i), Part: int64(i), Grp: 9, Name: &name}); err != nil {
			t.Fatal(err)
		}
	}
	var rows []*FItem
	if err := uow.NewSelect().Model(&rows).Where("id <= ?", foldShards).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for _, r := range rows {
		q := int64(1000)
		if r.Qty != nil {
			q += *r.Qty
		}
		r.Qty = &q
	}
	return uow.Commit(ctx)
}

// foldSnapshot is every row of every logical shard, as (shard, id, qty,
// name) strings, sorted.
func (e *foldEnv) foldSnapshot(t *testing.T) []string {
	t.Helper()
	var rows []FItem
	if err := e.plain.NewSelect().Model(&rows).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(rows))
	for i, r := range rows {
		id, _ := session.ShardOf(&rows[i])
		q, n := "-", "-"
		if r.Qty != nil {
			q = fmt.Sprint(*r.Qty)
		}
		if r.Name != nil {
			n = *r.Name
		}
		out[i] = fmt.Sprintf("%s %d %s %s", id, r.ID, q, n)
	}
	slices.Sort(out)
	return out
}

// TestFoldTwoPhaseCommitPerServer commits a two-phase unit that wrote on
// all 64 logical shards (16 per server): folded, the shards of one server
// share one transaction, so Commit sends one PREPARE TRANSACTION and one
// COMMIT PREPARED per server other than the coordinator's (whose
// transaction is the decision's, committed in one phase), and one BEGIN per
// server. Without WithFolding the same unit prepares 63 transactions. The
// rows both leave are the same.
func TestFoldTwoPhaseCommitPerServer(t *testing.T) {
	ctx := context.Background()
	e := newFoldEnv(t, 200, diffSeed(t))
	e2 := newFoldEnv(t, 200, diffSeed(t))
	nServers := len(e.servers)
	// The first fan-out asks each shard where it is, once.
	if _, err := e.folded.NewSelect().Model((*FItem)(nil)).Count(ctx); err != nil {
		t.Fatal(err)
	}
	e.reset()
	if err := foldUnitWrites(t, e.folded, 10000, session.TwoPhase()); err != nil {
		t.Fatalf("folded Commit = %v", err)
	}
	want := slices.Repeat([]int{1}, nServers)
	want[0] = 0 // the coordinator p00's server: its group's transaction holds the decision
	if got := e.countPrefix("PREPARE TRANSACTION"); !slices.Equal(got, want) {
		t.Errorf("folded: PREPARE TRANSACTION per server %v; want %v", got, want)
	}
	if got := e.countPrefix("COMMIT PREPARED"); !slices.Equal(got, want) {
		t.Errorf("folded: COMMIT PREPARED per server %v; want %v", got, want)
	}
	wantBegin := slices.Repeat([]int{1}, nServers)
	wantBegin[0]++ // the coordinator's first two-phase Commit creates the decision table
	if got := e.countPrefix("BEGIN"); !slices.Equal(got, wantBegin) {
		t.Errorf("folded: BEGIN per server %v; want %v", got, wantBegin)
	}
	updates := e.countPrefix("UPDATE")

	e2.reset()
	if err := foldUnitWrites(t, e2.plain, 10000, session.TwoPhase()); err != nil {
		t.Fatalf("unfolded Commit = %v", err)
	}
	wantPlain := slices.Repeat([]int{foldShards / nServers}, nServers)
	wantPlain[0]--
	if got := e2.countPrefix("PREPARE TRANSACTION"); !slices.Equal(got, wantPlain) {
		t.Errorf("unfolded: PREPARE TRANSACTION per server %v; want %v", got, wantPlain)
	}
	// Each logical shard's statements are its own, folded or not.
	if got := e2.countPrefix("UPDATE"); !slices.Equal(got, updates) {
		t.Errorf("UPDATE per server: unfolded %v, folded %v; want the same", got, updates)
	}
	if a, b := e.foldSnapshot(t), e2.foldSnapshot(t); !slices.Equal(a, b) {
		t.Errorf("folded and unfolded commits left different rows (%d and %d)", len(a), len(b))
	}
	if n := len(e.foldSnapshot(t)); n != 200+foldShards {
		t.Errorf("%d rows after the commit; want %d", n, 200+foldShards)
	}
}

// TestFoldOnePhaseCommitPerServer is TestFoldTwoPhaseCommitPerServer
// without TwoPhase: one BEGIN and one COMMIT per server.
func TestFoldOnePhaseCommitPerServer(t *testing.T) {
	ctx := context.Background()
	e := newFoldEnv(t, 200, diffSeed(t))
	e2 := newFoldEnv(t, 200, diffSeed(t))
	nServers := len(e.servers)
	if _, err := e.folded.NewSelect().Model((*FItem)(nil)).Count(ctx); err != nil {
		t.Fatal(err)
	}
	e.reset()
	if err := foldUnitWrites(t, e.folded, 10000); err != nil {
		t.Fatalf("folded Commit = %v", err)
	}
	one := slices.Repeat([]int{1}, nServers)
	if got := e.countPrefix("BEGIN"); !slices.Equal(got, one) {
		t.Errorf("folded: BEGIN per server %v; want %v", got, one)
	}
	if got := e.countPrefix("COMMIT"); !slices.Equal(got, one) {
		t.Errorf("folded: COMMIT per server %v; want %v", got, one)
	}
	if err := foldUnitWrites(t, e2.plain, 10000); err != nil {
		t.Fatalf("unfolded Commit = %v", err)
	}
	if a, b := e.foldSnapshot(t), e2.foldSnapshot(t); !slices.Equal(a, b) {
		t.Errorf("folded and unfolded commits left different rows (%d and %d)", len(a), len(b))
	}
}
