package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/session"
)

// whereCase is one select of projects written with plain Bun Wheres, the
// same conditions on the session and on the unsharded database, and the
// tenants its shard-key condition names (nil: it must fan out).
type whereCase struct {
	name    string
	sess    func(*session.SelectQuery) *session.SelectQuery
	truth   func(*bun.SelectQuery) *bun.SelectQuery
	tenants []int64
}

// TestWhereRoutesLikeShardKey: the two plain Where forms on a model's
// declared shard-key column (= ? and IN (?), bare, qualified by the alias
// or ?TableAlias, quoted) send the statement only to the shards owning
// the values, each shard receiving only its own values, as WhereShardKey
// does; every other form (OR, WhereOr, WhereGroup, a function of the
// column, another table's column, an SQL value, an Apply, a column that
// is not the key) runs on every shard as before. Each case returns what
// the unsharded database returns.
func TestWhereRoutesLikeShardKey(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	f.seed(t, newSchData())
	five := []int64{1, 2, 3, 4, 5}
	cases := []whereCase{
		{"col = ?", func(q *session.SelectQuery) *session.SelectQuery { return q.Where("tenant_id = ?", 3) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 3) }, []int64{3}},
		{"col IN (bun.List)", func(q *session.SelectQuery) *session.SelectQuery { return q.Where("tenant_id IN (?)", bun.List(five)) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id IN (?)", bun.List(five)) }, five},
		//lint:ignore SA1019 the deprecated form, which apps still write
		{"col in (bun.In)", func(q *session.SelectQuery) *session.SelectQuery { return q.Where("tenant_id in (?)", bun.In(five)) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id IN (?)", bun.List(five)) }, five},
		{"?TableAlias.col = ?", func(q *session.SelectQuery) *session.SelectQuery {
			return q.Where("?TableAlias.tenant_id = ?", int32(7))
		},
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 7) }, []int64{7}},
		{`"alias"."col" IN`, func(q *session.SelectQuery) *session.SelectQuery {
			return q.Where(`"sch_project"."tenant_id" IN (?)`, bun.List([]any{int64(8), "9"}))
		}, func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id IN (8, 9)") }, []int64{8, 9}},
		{"alias.col = ? AND other", func(q *session.SelectQuery) *session.SelectQuery {
			return q.Where("name <> ?", "p302").Where("sch_project.tenant_id = ?", 3).Where("plan_id > ?", 0)
		}, func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("name <> ?", "p302").Where("tenant_id = ?", 3).Where("plan_id > ?", 0)
		}, []int64{3}},
		{"two Wheres intersect", func(q *session.SelectQuery) *session.SelectQuery {
			return q.Where("tenant_id IN (?)", bun.List(five)).Where("tenant_id IN (?)", bun.List([]int64{4, 5, 6}))
		}, func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id IN (4, 5)") }, []int64{4, 5}},
		// Forms that must not prune.
		{"OR inside one Where", func(q *session.SelectQuery) *session.SelectQuery { return q.Where("tenant_id = ? OR id = 1101", 3) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ? OR id = 1101", 3) }, nil},
		{"WhereOr", func(q *session.SelectQuery) *session.SelectQuery {
			return q.Where("tenant_id = ?", 3).WhereOr("id = ?", 1101)
		}, func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 3).WhereOr("id = ?", 1101) }, nil},
		{"WhereOr before", func(q *session.SelectQuery) *session.SelectQuery {
			return q.Where("id = ?", 1101).WhereOr("id = ?", 1102).Where("tenant_id = ?", 3)
		}, func(q *bun.SelectQuery) *bun.SelectQuery {
			return q.Where("id = ?", 1101).WhereOr("id = ?", 1102).Where("tenant_id = ?", 3)
		}, nil},
		{"WhereGroup AND", func(q *session.SelectQuery) *session.SelectQuery {
			return q.WhereGroup(" AND ", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 3) })
		}, func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 3) }, nil},
		{"WhereGroup OR", func(q *session.SelectQuery) *session.SelectQuery {
			return q.Where("tenant_id = ?", 3).WhereGroup(" OR ", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("id = ?", 1101) })
		}, func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ? OR id = ?", 3, 1101) }, nil},
		{"function of the column", func(q *session.SelectQuery) *session.SelectQuery { return q.Where("abs(tenant_id) = ?", 3) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 3) }, nil},
		{"another table's column", func(q *session.SelectQuery) *session.SelectQuery {
			return q.Join("JOIN sch_tenants AS t ON t.id = sch_project.tenant_id").Where("t.id = ?", 3)
		}, func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 3) }, nil},
		{"another alias, same column name", func(q *session.SelectQuery) *session.SelectQuery {
			return q.Join("JOIN sch_tasks AS k ON k.project_id = sch_project.id").Where("k.tenant_id = ?", 3).Where("k.id % 10 = 1")
		}, func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 3) }, nil},
		{"an SQL value (subquery)", func(q *session.SelectQuery) *session.SelectQuery {
			return q.Where("tenant_id = ?", bun.Safe("(SELECT 3)"))
		},
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 3) }, nil},
		{"Apply", func(q *session.SelectQuery) *session.SelectQuery {
			return q.Apply(func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 3) })
		}, func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 3) }, nil},
		{"Apply with a key Where", func(q *session.SelectQuery) *session.SelectQuery {
			return q.Where("tenant_id = ?", 3).Apply(func(q *bun.SelectQuery) *bun.SelectQuery { return q.WhereOr("id = ?", 1101) })
		}, func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 3).WhereOr("id = ?", 1101) }, nil},
		{"not the key column", func(q *session.SelectQuery) *session.SelectQuery { return q.Where("id = ?", 302) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("id = ?", 302) }, nil},
		{"col <> ?", func(q *session.SelectQuery) *session.SelectQuery { return q.Where("tenant_id <> ?", 3) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id <> ?", 3) }, nil},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.reset()
			var got, want []*SchProject
			must(t, c.sess(f.sess.NewSelect().Model(&got)).Order("id").Scan(ctx))
			must(t, c.truth(f.single.NewSelect().Model(&want)).Order("id").Scan(ctx))
			if g, w := projectDigest(got), projectDigest(want); g != w || len(want) == 0 {
				t.Errorf("rows:\n%s\nwant (unsharded):\n%s", g, w)
			}
			owners := map[session.ShardID][]int64{}
			for _, tn := range c.tenants {
				owners[f.owner(tn)] = append(owners[f.owner(tn)], tn)
			}
			selects := f.like("SELECT")
			for _, id := range schShards {
				mine := owners[id]
				slices.Sort(mine)
				switch {
				case c.tenants == nil && len(selects[id]) != 1:
					t.Errorf("shard %s ran %q; want one select (the form must fan out)", id, selects[id])
				case c.tenants != nil && len(mine) == 0 && len(selects[id]) != 0:
					t.Errorf("shard %s owns none of %v but ran %q", id, c.tenants, selects[id])
				case c.tenants != nil && len(mine) > 0 && (len(selects[id]) != 1 || !slices.Equal(tenantsIn(selects[id][0]), mine)):
					t.Errorf("shard %s ran %q; want one select naming only its tenants %v", id, selects[id], mine)
				}
			}
		})
	}

	// UPDATE and DELETE: the same forms, on the owning shards only.
	f.reset()
	res, err := f.sess.NewUpdate().Model((*SchTask)(nil)).Set("title = title || '!'").Where("tenant_id = ?", 4).Exec(ctx)
	must(t, err)
	if _, err := f.single.NewUpdate().Model((*SchTask)(nil)).Set("title = title || '!'").Where("tenant_id = ?", 4).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if res.RowsAffected != 6 || len(res.ByShard) != 1 || res.ByShard[f.owner(4)] != 6 {
		t.Errorf("UPDATE Where tenant_id = 4 = %+v; want 6 rows on %s alone", res, f.owner(4))
	}
	res, err = f.sess.NewDelete().Model((*SchTask)(nil)).Where("?TableAlias.tenant_id IN (?)", bun.List([]int64{4, 11})).Exec(ctx)
	must(t, err)
	if _, err := f.single.NewDelete().Model((*SchTask)(nil)).Where("tenant_id IN (4, 11)").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	wantShards := slices.Compact(slices.Sorted(slices.Values([]session.ShardID{f.owner(4), f.owner(11)})))
	var gotShards []session.ShardID
	for id := range res.ByShard {
		gotShards = append(gotShards, id)
	}
	slices.Sort(gotShards)
	if res.RowsAffected != 12 || !slices.Equal(gotShards, wantShards) {
		t.Errorf("DELETE Where tenant_id IN (4, 11) = %+v; want 12 rows on %v", res, wantShards)
	}
	var got, want []*SchTask
	must(t, f.sess.NewSelect().Model(&got).Order("id").Scan(ctx))
	must(t, f.single.NewSelect().Model(&want).Order("id").Scan(ctx))
	if len(got) != len(want) {
		t.Fatalf("tasks after UPDATE and DELETE: %d; want %d", len(got), len(want))
	}
	for i := range got {
		if got[i].ID != want[i].ID || got[i].Title != want[i].Title {
			t.Fatalf("task %d = %+v; want %+v", i, *got[i], *want[i])
		}
	}

	// The scatter guard: a pruning form passes, any other form is caught.
	guarded, err := session.New(f.shards, f.scheme, f.scheme, f.scheme,
		session.WithShardOrder(schShards...), session.WithScatterGuard())
	must(t, err)
	var ps []*SchProject
	if err := guarded.NewSelect().Model(&ps).Where("tenant_id = ?", 3).Scan(ctx); err != nil {
		t.Errorf("guarded Where tenant_id = 3: %v; want it to route", err)
	}
	if err := guarded.NewSelect().Model(&ps).Where("tenant_id = ?", 3).WhereOr("id = 1").Scan(ctx); !errors.Is(err, session.ErrScatter) {
		t.Errorf("guarded Where tenant_id = 3 OR id = 1: %v; want ErrScatter", err)
	}
}
