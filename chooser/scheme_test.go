package chooser_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// The scheme tests' models: a tenant, its projects and tasks (each keyed by
// tenant), and a reference table of plans.
type sTenant struct {
	bun.BaseModel `bun:"table:tenants"`
	ID            int64 `bun:",pk"`
}

type sProject struct {
	bun.BaseModel `bun:"table:projects"`
	ID            int64 `bun:",pk"`
	TenantID      int64
}

type sTask struct {
	bun.BaseModel `bun:"table:tasks"`
	ID            int64 `bun:",pk"`
	TenantID      int64
}

type sPlan struct {
	bun.BaseModel `bun:"table:plans"`
	ID            int64 `bun:",pk"`
}

type sOther struct {
	bun.BaseModel `bun:"table:others"`
	ID            int64 `bun:",pk"`
}

var schemeShards = []identity.ShardID{"s0", "s1", "s2", "s3"}

func tenantScheme(t *testing.T) (*chooser.Scheme, *chooser.Hash) {
	t.Helper()
	h, err := chooser.NewHash("tenant_id", chooser.Spread(64, schemeShards...))
	if err != nil {
		t.Fatal(err)
	}
	s, err := chooser.NewScheme(schemeShards,
		chooser.Distributed((*sTenant)(nil), "id", h),
		chooser.Distributed((*sProject)(nil), "tenant_id", h),
		chooser.Distributed((*sTask)(nil), "tenant_id", h),
		chooser.Reference((*sPlan)(nil)),
	)
	if err != nil {
		t.Fatal(err)
	}
	return s, h
}

// TestSchemeCoLocatesByEachModelsKey: a tenant's row, its projects and its
// tasks, each read by its own key column, land on the shard the one
// strategy gives the tenant id, in every role.
func TestSchemeCoLocatesByEachModelsKey(t *testing.T) {
	ctx := context.Background()
	s, h := tenantScheme(t)
	tenants, projects, tasks := tableOf[sTenant](), tableOf[sProject](), tableOf[sTask]()
	for tenant := int64(1); tenant <= 200; tenant++ {
		b, _ := h.Bucket(tenant)
		want := h.Buckets()[b]
		for _, c := range []struct {
			what string
			got  func() (identity.ShardID, error)
		}{
			{"ChooseShard(Tenant)", func() (identity.ShardID, error) { return s.ChooseShard(ctx, tenants, &sTenant{ID: tenant}) }},
			{"ChooseShard(Project)", func() (identity.ShardID, error) {
				return s.ChooseShard(ctx, projects, &sProject{ID: 9000 + tenant, TenantID: tenant})
			}},
			{"ChooseShard(Task)", func() (identity.ShardID, error) {
				return s.ChooseShard(ctx, tasks, &sTask{ID: 7, TenantID: tenant})
			}},
			{"ChooseIdentity(Tenant)", func() (identity.ShardID, error) {
				tg, err := s.ChooseIdentity(ctx, chooser.Key{Table: tenants, PK: []any{tenant}})
				return one(tg), err
			}},
			{"ChooseExecute(Project by tenant_id)", func() (identity.ShardID, error) {
				tg, err := s.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: projects,
					Criteria: []chooser.Criterion{{Column: "tenant_id", Values: []any{tenant}}}})
				return one(tg), err
			}},
			{"ChooseExecute(delete Task by tenant_id)", func() (identity.ShardID, error) {
				tg, err := s.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpDelete, Table: tasks,
					Criteria: []chooser.Criterion{{Column: "tenant_id", Values: []any{tenant}}}})
				return one(tg), err
			}},
		} {
			got, err := c.got()
			if err != nil || got != want {
				t.Fatalf("tenant %d: %s = %v, %v; want %s", tenant, c.what, got, err, want)
			}
		}
	}
}

func one(t chooser.Target) identity.ShardID {
	if l := t.List(); len(l) == 1 {
		return l[0]
	}
	return identity.ShardID("<" + t.String() + ">")
}

// TestSchemeRoutesEachModelByItsOwnColumn: criteria on a column other than
// the model's key route nowhere in particular (every shard, or the
// parent's shard for a relation load); a Get of a project by its id (not
// its key) probes every shard; IN lists split per model on its own column
// (a Chain or Routers did not split Project.tenant_id).
func TestSchemeRoutesEachModelByItsOwnColumn(t *testing.T) {
	ctx := context.Background()
	s, h := tenantScheme(t)
	projects, tenants := tableOf[sProject](), tableOf[sTenant]()
	owner := func(v int64) identity.ShardID { b, _ := h.Bucket(v); return h.Buckets()[b] }

	tg, err := s.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: projects,
		Criteria: []chooser.Criterion{{Column: "id", Values: []any{int64(5)}}}})
	if err != nil || !tg.IsAll() {
		t.Errorf("select Project by id = %v, %v; want all (id is not its shard key)", tg, err)
	}
	tg, err = s.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: projects, LoadedFrom: "s2"})
	if err != nil || one(tg) != "s2" {
		t.Errorf("relation load of Project from s2 = %v, %v; want [s2]", tg, err)
	}
	tg, err = s.ChooseIdentity(ctx, chooser.Key{Table: projects, PK: []any{int64(5)}})
	if err != nil || !tg.IsAll() {
		t.Errorf("Get Project 5 = %v, %v; want all", tg, err)
	}

	vals := []any{int64(1), int64(2), int64(3), int64(4), int64(5), int64(6), int64(7), int64(8)}
	for _, c := range []struct {
		table  string
		column string
	}{{"Project", "tenant_id"}, {"Tenant", "id"}} {
		table := projects
		if c.table == "Tenant" {
			table = tenants
		}
		parts, err := s.SplitValues(ctx, table, c.column, vals)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for id, vs := range parts {
			for _, v := range vs {
				n++
				if owner(v.(int64)) != id {
					t.Errorf("SplitValues(%s.%s) put %v on %s; its owner is %s", c.table, c.column, v, id, owner(v.(int64)))
				}
			}
		}
		if n != len(vals) || len(parts) < 2 {
			t.Errorf("SplitValues(%s.%s) = %v; want all %d values over several shards", c.table, c.column, parts, len(vals))
		}
	}
	if parts, err := s.SplitValues(ctx, projects, "id", vals); parts != nil || err != nil {
		t.Errorf("SplitValues(Project.id) = %v, %v; want nil, nil (not its key)", parts, err)
	}
}

// TestSchemeReferenceTables: a reference table is read from one shard (the
// parent's for a relation load), written by statements everywhere, never
// placed on one shard, and may be related to any object.
func TestSchemeReferenceTables(t *testing.T) {
	ctx := context.Background()
	s, _ := tenantScheme(t)
	plans, projects := tableOf[sPlan](), tableOf[sProject]()
	if !s.IsReference(plans) || s.IsReference(projects) {
		t.Fatalf("IsReference(Plan, Project) = %v, %v; want true, false", s.IsReference(plans), s.IsReference(projects))
	}
	checks := []struct {
		what string
		tg   func() (chooser.Target, error)
		want string
	}{
		{"select", func() (chooser.Target, error) {
			return s.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: plans})
		}, "[s0]"},
		{"select loaded from s3", func() (chooser.Target, error) {
			return s.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: plans, LoadedFrom: "s3"})
		}, "[s3]"},
		{"update", func() (chooser.Target, error) {
			return s.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpUpdate, Table: plans})
		}, "all"},
		{"delete", func() (chooser.Target, error) {
			return s.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpDelete, Table: plans})
		}, "all"},
		{"get", func() (chooser.Target, error) {
			return s.ChooseIdentity(ctx, chooser.Key{Table: plans, PK: []any{int64(1)}})
		}, "[s0]"},
		{"get loaded from s1", func() (chooser.Target, error) {
			return s.ChooseIdentity(ctx, chooser.Key{Table: plans, PK: []any{int64(1)}, LoadedFrom: "s1"})
		}, "[s1]"},
	}
	for _, c := range checks {
		tg, err := c.tg()
		if err != nil || tg.String() != c.want {
			t.Errorf("%s of Plan = %v, %v; want %s", c.what, tg, err, c.want)
		}
	}
	if id, err := s.ChooseShard(ctx, plans, &sPlan{ID: 1}); err == nil || !strings.Contains(err.Error(), "reference table") {
		t.Errorf("ChooseShard(Plan) = %q, %v; want an error saying it is a reference table", id, err)
	}
	if parts, err := s.SplitValues(ctx, plans, "id", []any{int64(1), int64(2)}); parts != nil || err != nil {
		t.Errorf("SplitValues(Plan) = %v, %v; want nil, nil", parts, err)
	}
	rel := func(a, b chooser.Object) chooser.Verdict { return s.AllowRelation(ctx, a, b) }
	plan := chooser.Object{Table: plans, Shard: "s0"}
	p1 := chooser.Object{Table: projects, Shard: "s1"}
	p2 := chooser.Object{Table: projects, Shard: "s2"}
	if v := rel(p1, plan); v != chooser.Allow {
		t.Errorf("AllowRelation(Project on s1, Plan) = %v; want allow", v)
	}
	if v := rel(p1, p2); v != chooser.Deny {
		t.Errorf("AllowRelation(Project on s1, Project on s2) = %v; want deny", v)
	}
	if v := rel(p1, chooser.Object{Table: tableOf[sOther](), Shard: "s2"}); v != chooser.Abstain {
		t.Errorf("AllowRelation(Project, undeclared) = %v; want abstain", v)
	}
}

// TestSchemeUndeclaredModel: every role fails for a model the scheme does
// not declare, naming it and wrapping ErrUndeclared, not ErrNoOpinion (a
// chain must not fall back on another member).
func TestSchemeUndeclaredModel(t *testing.T) {
	ctx := context.Background()
	s, _ := tenantScheme(t)
	other := tableOf[sOther]()
	errs := map[string]error{}
	_, errs["ChooseShard"] = s.ChooseShard(ctx, other, &sOther{ID: 1})
	_, errs["ChooseIdentity"] = s.ChooseIdentity(ctx, chooser.Key{Table: other, PK: []any{int64(1)}})
	_, errs["ChooseExecute"] = s.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: other})
	_, errs["SplitValues"] = s.SplitValues(ctx, other, "id", []any{int64(1), int64(2)})
	for role, err := range errs {
		if !errors.Is(err, chooser.ErrUndeclared) || errors.Is(err, chooser.ErrNoOpinion) || !strings.Contains(strings.ToLower(err.Error()), "model sother is not declared") {
			t.Errorf("%s(sOther) = %v; want ErrUndeclared naming sOther, not ErrNoOpinion", role, err)
		}
	}
	// In a chain, the next member is not asked.
	c := chooser.First(s, chooser.All)
	if tg, err := c.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: other}); !errors.Is(err, chooser.ErrUndeclared) {
		t.Errorf("First(scheme, All).ChooseExecute(sOther) = %v, %v; want ErrUndeclared", tg, err)
	}
}

// TestSchemeKeyColumnChecked: a declared key column the model lacks fails
// by name when routing, rather than fanning every statement out.
func TestSchemeKeyColumnChecked(t *testing.T) {
	ctx := context.Background()
	h, _ := chooser.NewHash("tenant_id", chooser.Spread(8, schemeShards...))
	s, err := chooser.NewScheme(schemeShards, chooser.Distributed((*sProject)(nil), "tenantid", h))
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: tableOf[sProject]()})
	if err == nil || !strings.Contains(err.Error(), `"tenantid"`) {
		t.Errorf("ChooseExecute with a misspelt key column = %v; want an error naming it", err)
	}
	_, err = s.ChooseShard(ctx, tableOf[sProject](), &sProject{TenantID: 1})
	if err == nil || !strings.Contains(err.Error(), `"tenantid"`) {
		t.Errorf("ChooseShard with a misspelt key column = %v; want an error naming it", err)
	}
}

// TestNewSchemeBadInput: each bad declaration is refused by name.
func TestNewSchemeBadInput(t *testing.T) {
	h, _ := chooser.NewHash("k", chooser.Spread(8, schemeShards...))
	elsewhere, _ := chooser.NewHash("k", chooser.Spread(8, "s0", "s9"))
	var nilHash *chooser.Hash
	cases := []struct {
		name   string
		shards []identity.ShardID
		decls  []chooser.Declaration
		want   string
	}{
		{"no shards", nil, nil, "no shards"},
		{"empty shard", []identity.ShardID{"s0", ""}, nil, "empty shard ID"},
		{"repeated shard", []identity.ShardID{"s0", "s0"}, nil, "twice"},
		{"zero declaration", schemeShards, []chooser.Declaration{{}}, "zero Declaration"},
		{"not a pointer", schemeShards, []chooser.Declaration{chooser.Reference(sPlan{})}, "pointer to a model struct"},
		{"twice", schemeShards, []chooser.Declaration{chooser.Reference((*sPlan)(nil)), chooser.Distributed((*sPlan)(nil), "id", h)}, "declared twice"},
		{"empty column", schemeShards, []chooser.Declaration{chooser.Distributed((*sPlan)(nil), "", h)}, "empty key column"},
		{"nil strategy", schemeShards, []chooser.Declaration{chooser.Distributed((*sPlan)(nil), "id", nil)}, "strategy is nil"},
		{"typed nil strategy", schemeShards, []chooser.Declaration{chooser.Distributed((*sPlan)(nil), "id", nilHash)}, "strategy is nil"},
		{"unknown shard", schemeShards, []chooser.Declaration{chooser.Distributed((*sPlan)(nil), "id", elsewhere)}, "shard s9"},
		{"nil chooser", schemeShards, []chooser.Declaration{chooser.RoutedBy((*sPlan)(nil), nil)}, "chooser is nil"},
		{"not a chooser", schemeShards, []chooser.Declaration{chooser.RoutedBy((*sPlan)(nil), 42)}, "is not a ShardChooser"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := chooser.NewScheme(c.shards, c.decls...)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Errorf("NewScheme = %v; want an error mentioning %q", err, c.want)
			}
		})
	}
}

// TestSchemeRoutedBy: a model routed by its own chooser gets that
// chooser's answers, and a role the chooser lacks fails by name.
func TestSchemeRoutedBy(t *testing.T) {
	ctx := context.Background()
	s, err := chooser.NewScheme(schemeShards, chooser.RoutedBy((*sOther)(nil), chooser.All))
	if err != nil {
		t.Fatal(err)
	}
	other := tableOf[sOther]()
	if tg, err := s.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: other, LoadedFrom: "s1"}); err != nil || one(tg) != "s1" {
		t.Errorf("ChooseExecute = %v, %v; want [s1] as chooser.All answers", tg, err)
	}
	if _, err := s.ChooseShard(ctx, other, &sOther{}); err == nil || !strings.Contains(err.Error(), "no ShardChooser") {
		t.Errorf("ChooseShard = %v; want an error saying chooser.All is no ShardChooser", err)
	}
	if got := s.String(); got != "chooser.Scheme(sOther by chooser.All)" {
		t.Errorf("String = %q", got)
	}
}

// TestSchemeAllocatesNothing: the scheme adds no allocation to routing one
// key (a map lookup by model type).
func TestSchemeAllocatesNothing(t *testing.T) {
	ctx := context.Background()
	s, _ := tenantScheme(t)
	projects := tableOf[sProject]()
	p := &sProject{ID: 1, TenantID: 123456789}
	stmt := &chooser.Statement{Op: chooser.OpSelect, Table: projects,
		Criteria: []chooser.Criterion{{Column: "tenant_id", Values: []any{int64(123456789)}}}}
	key := chooser.Key{Table: tableOf[sTenant](), PK: []any{int64(123456789)}}
	for name, run := range map[string]func() error{
		"ChooseShard":    func() error { _, err := s.ChooseShard(ctx, projects, p); return err },
		"ChooseExecute":  func() error { _, err := s.ChooseExecute(ctx, stmt); return err },
		"ChooseIdentity": func() error { _, err := s.ChooseIdentity(ctx, key); return err },
	} {
		var err error
		if a := testing.AllocsPerRun(200, func() { err = run() }); a != 0 || err != nil {
			t.Errorf("Scheme %s: %.1f allocs per call, err %v; want 0, nil", name, a, err)
		}
	}
}
