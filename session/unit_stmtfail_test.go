package session_test

import (
	"context"
	"strings"
	"testing"

	"github.com/bunshard/bunshard/session"
)

// TestUnitCommitRefusedAfterPartlyFailedStatement: a statement-form UPDATE
// of a unit that succeeds on some shards and fails on one it had not
// written on before cannot be committed half: Commit fails naming the
// failed shard and every shard keeps its rows, as one database rolls a
// failed statement back whole.
func TestUnitCommitRefusedAfterPartlyFailedStatement(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	f.seed(t, newSchData())
	if _, err := f.shards["s2"].NewRaw("ALTER TABLE sch_tenants ADD CONSTRAINT s2_only CHECK (name <> 'bad')").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	names := func() map[session.ShardID][]string {
		out := map[session.ShardID][]string{}
		for _, id := range schShards {
			var n []string
			must(t, f.shards[id].NewSelect().Table("sch_tenants").Column("name").Order("id").Scan(ctx, &n))
			out[id] = n
		}
		return out
	}
	before := names()
	u := f.sess.Begin()
	_, err := u.NewUpdate().Model((*SchTenant)(nil)).Set("name = 'bad'").Where("true").Options(session.AllowScatter()).Exec(ctx)
	if err == nil || !strings.Contains(err.Error(), "s2") {
		t.Errorf("unit UPDATE failing on s2 = %v; want an error naming s2", err)
	}
	err = u.Commit(ctx)
	if err == nil || !strings.Contains(err.Error(), "s2") {
		t.Errorf("Commit after the UPDATE failed on s2 = %v; want it refused naming s2", err)
	}
	_ = u.Rollback(ctx)
	after := names()
	for _, id := range schShards {
		if strings.Join(after[id], ",") != strings.Join(before[id], ",") {
			t.Errorf("shard %s has tenants %q after the failed unit; want %q (nothing committed)", id, after[id], before[id])
		}
	}
}
