package session_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/bunshard/bunshard/session"
)

// TestUnitBuildersOnReferenceTable guards the unit's builders on a
// reference table: inside a two-phase unit, a statement-form UPDATE and a
// NewInsert of a reference table's object write every shard's copy in the
// unit's transactions (the statement's own guard must not count the
// reference write's inner statement as a second goroutine), and commit.
func TestUnitBuildersOnReferenceTable(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	f.seed(t, newSchData())
	err := f.sess.RunInTx(ctx, []session.UnitOption{session.TwoPhase()}, func(ctx context.Context, u *session.UnitOfWork) error {
		res, err := u.NewUpdate().Model((*SchPlan)(nil)).Set("name = 'in unit'").Where("id = 1").Exec(ctx)
		if err != nil {
			return err
		}
		if res.RowsAffected != int64(len(schShards)) {
			t.Errorf("reference UPDATE in a unit = %+v; want one row on each of %d shards", res, len(schShards))
		}
		_, err = u.NewInsert().Model(&SchPlan{ID: 9, Name: "nine"}).Exec(ctx)
		return err
	})
	if err != nil {
		t.Fatalf("RunInTx = %v", err)
	}
	for _, id := range schShards {
		var names []string
		must(t, f.shards[id].NewSelect().Table("sch_plans").Column("name").Where("id IN (1, 9)").Order("id").Scan(ctx, &names))
		if len(names) != 2 || names[0] != "in unit" || names[1] != "nine" {
			t.Errorf("shard %s has plans 1 and 9 named %q; want [in unit nine]", id, names)
		}
	}
}

// TestRawReferenceWriteIsAllOrNothing: a raw statement that declares a
// reference table's key (NewRaw(...).ShardKey(refModel, ...)) and runs as
// a write (Exec) writes every shard's copy in one two-phase unit, as the
// builders' reference writes do: a constraint that fails on one shard only
// leaves every shard unchanged; RETURNING scans one copy's rows, not one
// per shard; inside a unit it needs TwoPhase and commits or rolls back with
// the unit; a pin is refused before anything is sent.
func TestRawReferenceWriteIsAllOrNothing(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	f.seed(t, newSchData())
	name := func(id session.ShardID) string {
		var n string
		must(t, f.shards[id].NewSelect().Table("sch_plans").Column("name").Where("id = 1").Scan(ctx, &n))
		return n
	}
	every := func(what, want string) {
		t.Helper()
		for _, id := range schShards {
			if g := name(id); g != want {
				t.Errorf("%s: shard %s has plan 1 named %q; want %q", what, id, g, want)
			}
		}
	}
	// A constraint on s2's copy only: a write of 'bad' fails there alone.
	if _, err := f.shards["s2"].NewRaw("ALTER TABLE sch_plans ADD CONSTRAINT s2_only CHECK (name <> 'bad')").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	raw := func(s interface {
		NewRaw(string, ...any) *session.RawQuery
	}, to string) *session.RawQuery {
		return s.NewRaw("UPDATE sch_plans SET name = ? WHERE id = ? RETURNING id, name", to, 1).ShardKey((*SchPlan)(nil), "id", 1)
	}

	f.reset()
	_, err := raw(f.sess, "bad").Exec(ctx)
	if err == nil || !strings.Contains(err.Error(), "s2") {
		t.Errorf("raw reference UPDATE failing on s2 = %v; want an error naming s2", err)
	}
	every("after the raw UPDATE failed on s2", "plan 1")

	f.reset()
	var rows []SchPlan
	res, err := raw(f.sess, "gold").Exec(ctx, &rows)
	must(t, err)
	if res.RowsAffected != int64(len(schShards)) {
		t.Errorf("raw reference UPDATE = %+v; want one row on each of %d shards", res, len(schShards))
	}
	if len(rows) != 1 || rows[0].Name != "gold" {
		t.Errorf("raw reference UPDATE ... RETURNING scanned %+v; want the one row of one copy", rows)
	}
	f.twoPhase(t, "raw reference UPDATE")
	every("after the raw UPDATE", "gold")

	// A Scan whose SQL writes is a write too: every copy, two-phase.
	f.reset()
	rows = nil
	must(t, raw(f.sess, "silver").Scan(ctx, &rows))
	if len(rows) != 1 || rows[0].Name != "silver" {
		t.Errorf("raw reference UPDATE ... RETURNING through Scan scanned %+v; want the one row of one copy", rows)
	}
	f.twoPhase(t, "raw reference UPDATE through Scan")
	every("after the raw UPDATE through Scan", "silver")
	_, err = raw(f.sess, "gold").Exec(ctx)
	must(t, err)

	// Inside a unit: only a TwoPhase one, and the unit decides.
	f.reset()
	err = f.sess.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		_, err := raw(u, "one phase").Exec(ctx)
		return err
	})
	if !errors.Is(err, session.ErrInvalidArgument) || !strings.Contains(err.Error(), "TwoPhase") {
		t.Errorf("raw reference UPDATE in a one-phase unit = %v; want ErrInvalidArgument asking for TwoPhase", err)
	}
	if n := f.total(); n != 0 {
		t.Errorf("the refused raw reference UPDATE sent %d statements; want 0", n)
	}
	u := f.sess.Begin(session.TwoPhase())
	if _, err := raw(u, "rolled back").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	must(t, u.Rollback(ctx))
	every("after the unit rolled back", "gold")
	u = f.sess.Begin(session.TwoPhase())
	if _, err := raw(u, "bad").Exec(ctx); err == nil {
		t.Errorf("raw reference UPDATE of 'bad' in a unit succeeded; want s2's constraint to fail it")
	}
	if err := u.Commit(ctx); err == nil {
		t.Errorf("Commit after the raw reference UPDATE failed on s2 succeeded; want it refused")
	}
	_ = u.Rollback(ctx)
	every("after the unit's raw UPDATE failed on s2", "gold")
	must(t, f.sess.RunInTx(ctx, []session.UnitOption{session.TwoPhase()}, func(ctx context.Context, u *session.UnitOfWork) error {
		_, err := raw(u, "committed").Exec(ctx)
		return err
	}))
	every("after the unit committed", "committed")

	// A pin would write one copy: refused, nothing sent.
	f.reset()
	_, err = raw(f.sess, "pinned").Options(session.SetShardID("s1")).Exec(ctx)
	if !errors.Is(err, session.ErrInvalidArgument) || !strings.Contains(err.Error(), "every shard") {
		t.Errorf("pinned raw reference UPDATE = %v; want ErrInvalidArgument saying a reference table is written on every shard", err)
	}
	if n := f.total(); n != 0 {
		t.Errorf("the pinned raw reference UPDATE sent %d statements; want 0", n)
	}
	every("after the pinned raw UPDATE", "committed")
}
