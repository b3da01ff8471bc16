package session_test

import (
	"context"
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
