package session_test

import (
	"context"
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/session"
)

// projectIDs returns the ids of ps, sorted.
func projectIDs(ps []*SchProject) []int64 {
	out := make([]int64, len(ps))
	for i, p := range ps {
		out[i] = p.ID
	}
	slices.Sort(out)
	return out
}

// TestSchemeJoinedReferenceKey: WhereShardKey on a joined reference
// table's column ("plan.name") runs on every shard, since each holds a
// copy of the plans and its own projects: the projects equal the
// unsharded join's, from more than one shard.
func TestSchemeJoinedReferenceKey(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	f.seed(t, newSchData())

	var want []int64
	if err := f.single.NewSelect().TableExpr("sch_projects AS project").
		Join("JOIN sch_plans AS plan ON plan.id = project.plan_id").ColumnExpr("project.id").
		Where("plan.name = ?", "plan 2").OrderExpr("project.id").Scan(ctx, &want); err != nil {
		t.Fatal(err)
	}
	var got []*SchProject
	must(t, f.sess.NewSelect().Model(&got).Relation("Plan").WhereShardKey("plan.name", "plan 2").Scan(ctx))
	if g := projectIDs(got); !slices.Equal(g, want) || len(want) == 0 {
		t.Errorf("projects on plan 2 = %v; want %v (unsharded)", g, want)
	}
	ran := 0
	for _, id := range schShards {
		if len(f.like("SELECT")[id]) > 0 {
			ran++
		}
	}
	if ran < 2 {
		t.Errorf("the select ran on %d shards; the projects of plan 2 live on several", ran)
	}
}

// TestWherePruneProbes: plain Wheres on projects' shard key (tenant_id),
// in forms that prune and forms that must not, each returning what the
// unsharded database returns (or failing there and here alike).
func TestWherePruneProbes(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	f.seed(t, newSchData())

	type build func(q *session.SelectQuery) *session.SelectQuery
	type truth func(q *bun.SelectQuery) *bun.SelectQuery
	cases := []struct {
		name   string
		sess   build
		single truth
	}{
		{"Where then WhereOr",
			func(q *session.SelectQuery) *session.SelectQuery {
				return q.Where("tenant_id = ?", 3).WhereOr("tenant_id = ?", 5)
			},
			func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where("tenant_id = ?", 3).WhereOr("tenant_id = ?", 5)
			}},
		{"upper-case column",
			func(q *session.SelectQuery) *session.SelectQuery { return q.Where("TENANT_ID = ?", 4) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("TENANT_ID = ?", 4) }},
		{"quoted column, trailing space",
			func(q *session.SelectQuery) *session.SelectQuery { return q.Where(`"tenant_id" = ? `, 4) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where(`"tenant_id" = ? `, 4) }},
		{"string value",
			func(q *session.SelectQuery) *session.SelectQuery { return q.Where("tenant_id = ?", "7") },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", "7") }},
		{"float value 7.5",
			func(q *session.SelectQuery) *session.SelectQuery { return q.Where("tenant_id = ?", 7.5) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 7.5) }},
		{"float value 7.0",
			func(q *session.SelectQuery) *session.SelectQuery { return q.Where("tenant_id = ?", 7.0) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", 7.0) }},
		{"nil",
			func(q *session.SelectQuery) *session.SelectQuery { return q.Where("tenant_id = ?", nil) },
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("tenant_id = ?", nil) }},
		{"IN with values on two shards, ANDed with =",
			func(q *session.SelectQuery) *session.SelectQuery {
				return q.Where("tenant_id IN (?)", bun.List([]int64{1, 2, 3, 4, 5})).Where("tenant_id = ?", 4)
			},
			func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where("tenant_id IN (?)", bun.List([]int64{1, 2, 3, 4, 5})).Where("tenant_id = ?", 4)
			}},
		{"Where ANDed with WhereShardKey on another value",
			func(q *session.SelectQuery) *session.SelectQuery {
				return q.Where("tenant_id = ?", 4).WhereShardKey("tenant_id", 5)
			},
			func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where("tenant_id = ?", 4).Where("tenant_id = ?", 5)
			}},
		{"joined relation, Where on the model's alias",
			func(q *session.SelectQuery) *session.SelectQuery {
				return q.Relation("Plan").Where("sch_project.tenant_id = ?", 6)
			},
			func(q *bun.SelectQuery) *bun.SelectQuery { return q.Where("sch_project.tenant_id = ?", 6) }},
		{"unqualified key with a joined table of the same column",
			func(q *session.SelectQuery) *session.SelectQuery {
				return q.Join("JOIN sch_tasks AS t ON t.project_id = sch_project.id").Where("tenant_id = ?", 4)
			},
			func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Join("JOIN sch_tasks AS t ON t.project_id = sch_project.id").Where("tenant_id = ?", 4)
			}},
		{"the joined table's column",
			func(q *session.SelectQuery) *session.SelectQuery {
				return q.Join("JOIN sch_tasks AS t ON t.project_id = sch_project.id").Where("t.tenant_id = ?", 4)
			},
			func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Join("JOIN sch_tasks AS t ON t.project_id = sch_project.id").Where("t.tenant_id = ?", 4)
			}},
		{"WhereGroup OR holding the key",
			func(q *session.SelectQuery) *session.SelectQuery {
				return q.Where("tenant_id = ?", 2).WhereGroup(" OR ", func(b *bun.SelectQuery) *bun.SelectQuery {
					return b.Where("tenant_id = ?", 9)
				})
			},
			func(q *bun.SelectQuery) *bun.SelectQuery {
				return q.Where("tenant_id = ?", 2).WhereGroup(" OR ", func(b *bun.SelectQuery) *bun.SelectQuery {
					return b.Where("tenant_id = ?", 9)
				})
			}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			var want []*SchProject
			werr := c.single(f.single.NewSelect().Model(&want)).Scan(ctx)
			var got []*SchProject
			gerr := c.sess(f.sess.NewSelect().Model(&got)).Scan(ctx)
			if (werr == nil) != (gerr == nil) {
				t.Fatalf("session error %v; unsharded error %v", gerr, werr)
			}
			if g, w := projectIDs(got), projectIDs(want); !slices.Equal(g, w) {
				t.Errorf("projects = %v; want %v (unsharded)", g, w)
			}
		})
	}
}
