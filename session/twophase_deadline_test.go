package session_test

import (
	"context"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/session"
)

// TestTwoPhaseFrozenShard freezes one server (SIGSTOP: its connections stay
// open and nothing answers) at each phase of a two-phase Commit, and during
// Recover, under a 3 s deadline and with no driver read timeout: the call
// returns (within frozenBound: no speed threshold) with an error naming the
// frozen shard and matching context.DeadlineExceeded. Once the shard is
// thawed, a Recover with a fresh context leaves every shard with all of the
// unit's rows or none, no prepared transaction and no decision record.
func TestTwoPhaseFrozenShard(t *testing.T) {
	fx := newTPFixture(t)
	fx.untimed = true
	for _, driver := range drivers {
		t.Run(driver, func(t *testing.T) { testTwoPhaseFrozenShard(t, fx, driver) })
	}
}

func testTwoPhaseFrozenShard(t *testing.T, fx *tpFixture, driver string) {
	// freezeAt returns a hook that freezes shard id at a stage of Commit,
	// and the thaw of that shard.
	freezeAt := func(t *testing.T, at string, id session.ShardID) (func(c *tpCase, stage string, _ session.ShardID), func(c *tpCase)) {
		frozen := false
		thaw := func(c *tpCase) {
			if frozen {
				frozen = false
				if err := c.server(id).Thaw(); err != nil {
					t.Errorf("thaw %s: %v", id, err)
				}
			}
		}
		return func(c *tpCase, stage string, _ session.ShardID) {
			if stage == at && !frozen {
				if err := c.server(id).Freeze(); err != nil {
					t.Errorf("freeze %s: %v", id, err)
					return
				}
				frozen = true
				t.Cleanup(func() { thaw(c) })
			}
		}, thaw
	}
	commit := func(t *testing.T, uow *session.UnitOfWork) *session.CommitError {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		err := within(t, func() error { return uow.Commit(ctx) })
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("Commit = %v; want it to match context.DeadlineExceeded", err)
		}
		return commitErr(t, err)
	}

	t.Run("shard frozen at prepare", func(t *testing.T) {
		hook, thaw := freezeAt(t, "txid", "b") // after the flush, before the record and the PREPAREs
		c := fx.newCase(t, driver, hook)
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ce := commit(t, c.unit(session.TwoPhase()))
		wantNamed(t, ce, "b")
		if len(ce.Committed) != 0 || ce.Decision != "" {
			t.Errorf("CommitError = %+v; want nothing committed and no decision", ce)
		}
		thaw(c)
		c.recoverAndCheck(false) // no decision was committed: presumed abort
	})

	t.Run("coordinator frozen at the decision", func(t *testing.T) {
		hook, thaw := freezeAt(t, "prepared", "a")
		c := fx.newCase(t, driver, hook)
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ce := commit(t, c.unit(session.TwoPhase()))
		wantNamed(t, ce, "a")
		if !errors.Is(ce, session.ErrInDoubt) || len(ce.Pending) != 3 {
			t.Errorf("CommitError = %+v; want ErrInDoubt with 3 pending shards", ce)
		}
		thaw(c)
		c.recoverAndCheckEither() // the COMMIT was sent: the coordinator may commit it once thawed
	})

	t.Run("shard frozen at commit prepared", func(t *testing.T) {
		hook, thaw := freezeAt(t, "decided", "b")
		c := fx.newCase(t, driver, hook)
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		ce := commit(t, c.unit(session.TwoPhase()))
		wantNamed(t, ce, "b")
		if ce.Decision != "commit" || !slices.Equal(ce.Pending, []session.ShardID{"b"}) ||
			!slices.Equal(ce.Committed, []session.ShardID{"a", "c"}) {
			t.Errorf("CommitError = %+v; want decision commit, a and c committed, b pending", ce)
		}
		thaw(c)
		c.recoverAndCheck(true)
	})

	t.Run("shard frozen during Recover", func(t *testing.T) {
		c := fx.newCase(t, driver, func(c *tpCase, stage string, _ session.ShardID) {
			if stage == "decided" {
				panic(crashed{})
			}
		})
		commitCrashing(t, c.unit(session.TwoPhase())) // decided: b and c are prepared
		defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
		if err := c.server("b").Freeze(); err != nil {
			t.Fatal(err)
		}
		thawed := false
		thaw := func() {
			if !thawed {
				thawed = true
				if err := c.server("b").Thaw(); err != nil {
					t.Errorf("thaw b: %v", err)
				}
			}
		}
		t.Cleanup(thaw)
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		var rec session.Recovered
		err := within(t, func() (err error) { rec, err = c.s.Recover(ctx); return err })
		wantShardDeadline(t, err, "b")
		// c was resolved; the record stays, for b.
		if len(rec.Committed) != 1 || !strings.HasSuffix(rec.Committed[0], "_c") {
			t.Errorf("Recover with b frozen = %+v; want c's transaction committed", rec)
		}
		var n int
		if err := c.admin["c"].NewRaw("SELECT count(*) FROM weather_locations").Scan(context.Background(), &n); err != nil || n != 2 {
			t.Errorf("c holds %d rows (%v) after Recover with b frozen; want its 2, committed", n, err)
		}
		if n := c.decisionRecords(); n != 1 {
			t.Errorf("decision records after Recover with b frozen = %d; want the unit's, kept for b", n)
		}
		thaw()
		c.recoverAndCheck(true)
	})
}

// wantNamed checks that err holds a *ShardError naming shard id.
func wantNamed(t *testing.T, err error, id session.ShardID) {
	t.Helper()
	se, ok := errors.AsType[*session.ShardError](err)
	if !ok || se.Shard != id {
		t.Errorf("err = %v; want a *ShardError naming shard %s", err, id)
	}
}

// recoverAndCheckEither is recoverAndCheck for a unit whose outcome may be
// either: every shard must hold all of its rows or none.
func (c *tpCase) recoverAndCheckEither() {
	c.t.Helper()
	for _, id := range tpShards {
		c.start(id)
	}
	c.waitUp()
	rec, err := c.s.Recover(context.Background())
	if err != nil {
		c.t.Fatalf("Recover = %v", err)
	}
	if got := c.rows(); !slices.Equal(got, []int{0, 0, 0}) && !slices.Equal(got, []int{2, 2, 2}) {
		c.t.Errorf("rows per shard after Recover = %v; want all or none (recovered %+v)", got, rec)
	}
	if got := c.prepared(); !slices.Equal(got, []int{0, 0, 0}) {
		c.t.Errorf("prepared transactions after Recover = %v; want none", got)
	}
	if n := c.decisionRecords(); n != 0 {
		c.t.Errorf("decision records after Recover = %d; want none", n)
	}
}
