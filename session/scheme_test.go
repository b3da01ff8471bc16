package session_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/session"
)

// The scheme tests' models: tenants, their projects and tasks, each sharded
// by its own tenant column, and plans, a reference table.
type SchTenant struct {
	bun.BaseModel `bun:"table:sch_tenants"`
	session.Token

	ID       int64 `bun:",pk,autoincrement:false"`
	Name     string
	Projects []*SchProject `bun:"rel:has-many,join:id=tenant_id"`
}

type SchProject struct {
	bun.BaseModel `bun:"table:sch_projects"`
	session.Token

	ID       int64 `bun:",pk,autoincrement:false"`
	TenantID int64 `bun:",notnull"`
	PlanID   int64 `bun:",notnull"`
	Name     string
	Plan     *SchPlan   `bun:"rel:belongs-to,join:plan_id=id"`
	Tasks    []*SchTask `bun:"rel:has-many,join:id=project_id"`
}

type SchTask struct {
	bun.BaseModel `bun:"table:sch_tasks"`
	session.Token

	ID        int64 `bun:",pk,autoincrement:false"`
	TenantID  int64 `bun:",notnull"`
	ProjectID int64 `bun:",notnull"`
	Title     string
}

type SchPlan struct {
	bun.BaseModel `bun:"table:sch_plans"`
	session.Token

	ID   int64 `bun:",pk,autoincrement:false"`
	Name string
}

// SchOther is a model the scheme does not declare.
type SchOther struct {
	bun.BaseModel `bun:"table:sch_others"`
	ID            int64 `bun:",pk,autoincrement:false"`
}

var schShards = []session.ShardID{"s0", "s1", "s2", "s3"}

// schFixture is four shards behind counting hooks, one unsharded database
// holding every row (the ground truth), and a session whose three
// choosers are one scheme.
type schFixture struct {
	sess   *session.Session
	hash   *chooser.Hash
	scheme *chooser.Scheme
	shards map[session.ShardID]bun.IDB
	counts map[session.ShardID]*counter
	single *bun.DB
}

func newSchFixture(t *testing.T, opts ...session.Option) *schFixture {
	t.Helper()
	ctx := context.Background()
	set := pgtest.Shared()
	dsns := set.NewDatabases(ctx, t, "sch")
	truth := set.NewDatabases(ctx, t, "schtruth")[0]
	dialect := pgdialect.New()
	open := func(dsn string) *bun.DB {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn))), dialect)
		t.Cleanup(func() { db.Close() })
		return db
	}
	f := &schFixture{shards: map[session.ShardID]bun.IDB{}, counts: map[session.ShardID]*counter{}, single: open(truth)}
	for i, id := range schShards {
		f.counts[id] = &counter{}
		f.shards[id] = open(dsns[i]).WithQueryHook(f.counts[id])
	}
	h, err := chooser.NewHash("tenant_id", chooser.Spread(64, schShards...))
	must(t, err)
	f.hash = h
	scheme, err := chooser.NewScheme(schShards,
		chooser.Distributed((*SchTenant)(nil), "id", h),
		chooser.Distributed((*SchProject)(nil), "tenant_id", h),
		chooser.Distributed((*SchTask)(nil), "tenant_id", h),
		chooser.Reference((*SchPlan)(nil)),
	)
	must(t, err)
	f.scheme = scheme
	f.sess, err = session.New(f.shards, scheme, scheme, scheme, append([]session.Option{session.WithShardOrder(schShards...)}, opts...)...)
	must(t, err)
	models := []any{(*SchPlan)(nil), (*SchTenant)(nil), (*SchProject)(nil), (*SchTask)(nil), (*SchOther)(nil)}
	must(t, f.sess.CreateTables(ctx, models))
	for _, m := range models {
		if _, err := f.single.NewCreateTable().Model(m).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.reset()
	return f
}

func (f *schFixture) reset() {
	for _, c := range f.counts {
		c.reset()
	}
}

// owner is the shard the scheme's hash gives a tenant.
func (f *schFixture) owner(tenant int64) session.ShardID {
	b, err := f.hash.Bucket(tenant)
	if err != nil {
		panic(err)
	}
	return f.hash.Buckets()[b]
}

// like returns, per shard, the statements since reset whose SQL starts with
// prefix.
func (f *schFixture) like(prefix string) map[session.ShardID][]string {
	out := map[session.ShardID][]string{}
	for _, id := range schShards {
		for _, q := range f.counts[id].statements() {
			if strings.HasPrefix(strings.ToUpper(strings.TrimSpace(q)), strings.ToUpper(prefix)) {
				out[id] = append(out[id], q)
			}
		}
	}
	return out
}

// twoPhase checks that a write ran as one two-phase unit on every shard:
// each shard but the coordinator (s0) ran PREPARE TRANSACTION, and the
// coordinator wrote the decision row in its own transaction.
func (f *schFixture) twoPhase(t *testing.T, what string) {
	t.Helper()
	for _, id := range schShards {
		prep := len(f.like("PREPARE TRANSACTION")[id])
		decision := 0
		for _, q := range f.counts[id].statements() {
			if strings.Contains(q, "INSERT INTO bunshard_decisions") {
				decision++
			}
		}
		if id == "s0" && (prep != 0 || decision != 1) || id != "s0" && (prep != 1 || decision != 0) {
			t.Errorf("%s: shard %s ran %d PREPARE TRANSACTIONs and %d decision INSERTs; want a two-phase unit coordinated by s0", what, id, prep, decision)
		}
	}
}

func (f *schFixture) total() int {
	n := 0
	for _, c := range f.counts {
		n += len(c.statements())
	}
	return n
}

// schData is 12 tenants, 3 projects each, 2 tasks per project, 3 plans.
type schData struct {
	plans    []*SchPlan
	tenants  []*SchTenant
	projects []*SchProject
	tasks    []*SchTask
}

func newSchData() schData {
	var d schData
	for p := int64(1); p <= 3; p++ {
		d.plans = append(d.plans, &SchPlan{ID: p, Name: "plan " + strconv.FormatInt(p, 10)})
	}
	for tn := int64(1); tn <= 12; tn++ {
		d.tenants = append(d.tenants, &SchTenant{ID: tn, Name: fmt.Sprintf("tenant %d", tn)})
		for j := int64(1); j <= 3; j++ {
			pid := tn*100 + j
			d.projects = append(d.projects, &SchProject{ID: pid, TenantID: tn, PlanID: 1 + (tn+j)%3, Name: fmt.Sprintf("p%d", pid)})
			for k := int64(1); k <= 2; k++ {
				d.tasks = append(d.tasks, &SchTask{ID: pid*10 + k, TenantID: tn, ProjectID: pid, Title: fmt.Sprintf("t%d", pid*10+k)})
			}
		}
	}
	return d
}

// seed writes d through the session and into the unsharded database.
func (f *schFixture) seed(t *testing.T, d schData) {
	t.Helper()
	ctx := context.Background()
	for _, m := range []any{&d.plans, &d.tenants, &d.projects, &d.tasks} {
		must(t, f.sess.Insert(ctx, m))
		if _, err := f.single.NewInsert().Model(m).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.reset()
}

// projectDigest renders projects with their plan and tasks, for comparing
// with the unsharded database.
func projectDigest(ps []*SchProject) string {
	var b strings.Builder
	for _, p := range ps {
		plan := "<nil>"
		if p.Plan != nil {
			plan = p.Plan.Name
		}
		var tasks []int64
		for _, t := range p.Tasks {
			tasks = append(tasks, t.ID)
		}
		slices.Sort(tasks)
		fmt.Fprintf(&b, "%d/%d/%s/%s/%v\n", p.ID, p.TenantID, p.Name, plan, tasks)
	}
	return b.String()
}

var tenantCriterion = regexp.MustCompile(`"tenant_id" (?:= (\d+)|IN \(([^)]*)\))`)

// tenantsIn returns the tenant ids a statement's shard-key condition names.
func tenantsIn(q string) []int64 {
	m := tenantCriterion.FindStringSubmatch(q)
	if m == nil {
		return nil
	}
	list := m[1]
	if list == "" {
		list = m[2]
	}
	var out []int64
	for _, s := range strings.Split(list, ",") {
		n, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err == nil {
			out = append(out, n)
		}
	}
	slices.Sort(out)
	return out
}

// TestSchemeOnRealShards: with one scheme as the session's three
// choosers, a tenant's row, projects and tasks land on the shard its id
// hashes to, though each model routes by its own column; an IN list of
// tenants on projects reaches only the owning shards, each with its own
// tenants, and returns what the unsharded database returns, relations
// included; plans, a reference table, are written on every shard in one
// two-phase unit and read from one.
func TestSchemeOnRealShards(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	d := newSchData()

	// Plans: every shard gets the INSERT, prepared and committed as one unit.
	must(t, f.sess.Insert(ctx, &d.plans))
	f.twoPhase(t, "Insert plans")
	for _, id := range schShards {
		if ins := f.like(`INSERT INTO "sch_plans"`)[id]; len(ins) != 1 {
			t.Errorf("shard %s ran %d plan INSERTs; want 1", id, len(ins))
		}
		var n int
		must(t, f.shards[id].NewSelect().Table("sch_plans").ColumnExpr("count(*)").Scan(ctx, &n))
		if n != len(d.plans) {
			t.Errorf("shard %s holds %d plans; want all %d", id, n, len(d.plans))
		}
	}
	if _, err := f.single.NewInsert().Model(&d.plans).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for _, m := range []any{&d.tenants, &d.projects, &d.tasks} {
		must(t, f.sess.Insert(ctx, m))
		if _, err := f.single.NewInsert().Model(m).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}

	// Placement: every row of every tenant-keyed table on its tenant's shard.
	used := map[session.ShardID]bool{}
	for _, table := range []struct{ name, col string }{{"sch_tenants", "id"}, {"sch_projects", "tenant_id"}, {"sch_tasks", "tenant_id"}} {
		rows := 0
		for _, id := range schShards {
			var keys []int64
			must(t, f.shards[id].NewSelect().Table(table.name).Column(table.col).Scan(ctx, &keys))
			rows += len(keys)
			for _, k := range keys {
				used[id] = true
				if f.owner(k) != id {
					t.Errorf("%s row of tenant %d is on %s; the tenant's shard is %s", table.name, k, id, f.owner(k))
				}
			}
		}
		want := map[string]int{"sch_tenants": len(d.tenants), "sch_projects": len(d.projects), "sch_tasks": len(d.tasks)}[table.name]
		if rows != want {
			t.Errorf("%s: %d rows over the shards; want %d", table.name, rows, want)
		}
	}
	if len(used) < 3 {
		t.Fatalf("tenants landed on %d shards; the test needs them spread", len(used))
	}

	// An IN list of tenants on projects, with relations: owning shards only,
	// each with its own tenants; the same rows as one database.
	f.reset()
	asked := []any{int64(1), int64(2), int64(3), int64(4), int64(5)}
	var got []*SchProject
	must(t, f.sess.NewSelect().Model(&got).WhereShardKey("tenant_id", asked...).
		Relation("Plan").Relation("Tasks").Order("id").Scan(ctx))
	var want []*SchProject
	must(t, f.single.NewSelect().Model(&want).Where("?TableAlias.tenant_id IN (?)", bun.List(asked)).
		Relation("Plan").Relation("Tasks").Order("id").Scan(ctx))
	if g, w := projectDigest(got), projectDigest(want); g != w || len(got) != 15 {
		t.Errorf("projects of tenants 1-5:\n%s\nwant (unsharded):\n%s", g, w)
	}
	owners := map[session.ShardID][]int64{}
	for _, v := range asked {
		owners[f.owner(v.(int64))] = append(owners[f.owner(v.(int64))], v.(int64))
	}
	selects := f.like(`SELECT "sch_project"`)
	for _, id := range schShards {
		mine := owners[id]
		slices.Sort(mine)
		switch {
		case len(mine) == 0 && len(f.counts[id].statements()) > 0:
			t.Errorf("shard %s owns none of tenants 1-5 but ran %q", id, f.counts[id].statements())
		case len(mine) > 0 && (len(selects[id]) != 1 || !slices.Equal(tenantsIn(selects[id][0]), mine)):
			t.Errorf("shard %s ran %q; want one select of its own tenants %v", id, selects[id], mine)
		case len(mine) > 0 && len(f.like(`SELECT "sch_task"`)[id]) != 1:
			t.Errorf("shard %s loaded tasks with %q; want one statement", id, f.like(`SELECT "sch_task"`)[id])
		}
	}

	// A fan-out with no key: every shard, merged in order like one database.
	var all, allWant []*SchTask
	must(t, f.sess.NewSelect().Model(&all).Order("id").Scan(ctx))
	must(t, f.single.NewSelect().Model(&allWant).Order("id").Scan(ctx))
	if len(all) != len(allWant) || len(all) != len(d.tasks) {
		t.Fatalf("all tasks: %d rows; want %d", len(all), len(allWant))
	}
	for i := range all {
		if all[i].ID != allWant[i].ID || all[i].Title != allWant[i].Title || all[i].TenantID != allWant[i].TenantID {
			t.Fatalf("task %d = %+v; want %+v", i, *all[i], *allWant[i])
		}
	}

	// LoadRelation of tenants' projects: one statement per shard holding
	// parents, the same projects as one database.
	var tenants []*SchTenant
	must(t, f.sess.NewSelect().Model(&tenants).Order("id").Scan(ctx))
	f.reset()
	must(t, f.sess.LoadRelation(ctx, &tenants, "Projects"))
	for _, tn := range tenants {
		var w []*SchProject
		must(t, f.single.NewSelect().Model(&w).Where("tenant_id = ?", tn.ID).Scan(ctx))
		if len(tn.Projects) != len(w) {
			t.Errorf("tenant %d: %d projects loaded; want %d", tn.ID, len(tn.Projects), len(w))
		}
	}
	for _, id := range schShards {
		if n := len(f.counts[id].statements()); n != 1 {
			t.Errorf("LoadRelation Projects: shard %s ran %d statements; want 1", id, n)
		}
	}

	// A reference row: read from one shard.
	f.reset()
	var plan SchPlan
	must(t, f.sess.Get(ctx, &plan, 2))
	if plan.Name != "plan 2" || f.total() != 1 || len(f.counts["s0"].statements()) != 1 {
		t.Errorf("Get plan 2 = %+v with %d statements (%d on s0); want plan 2, one statement on s0", plan, f.total(), len(f.counts["s0"].statements()))
	}
	var plans []*SchPlan
	f.reset()
	must(t, f.sess.NewSelect().Model(&plans).Order("id").Scan(ctx))
	if len(plans) != 3 || f.total() != 1 {
		t.Errorf("select plans: %d rows with %d statements; want 3 rows, one statement", len(plans), f.total())
	}
	n, err := f.sess.NewSelect().Model((*SchPlan)(nil)).Count(ctx)
	if err != nil || n != 3 {
		t.Errorf("count plans = %d, %v; want 3 (one copy counted)", n, err)
	}
}

// TestSchemeReferenceWrites: updates and deletes of a reference table,
// as objects and as statements, reach every shard in one two-phase unit;
// a copy that lacks the row fails the whole write and changes no shard; a
// pinned reference write and a row with no primary key are refused before
// anything is sent.
func TestSchemeReferenceWrites(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	d := newSchData()
	f.seed(t, d)

	names := func(id session.ShardID) []string {
		var out []string
		must(t, f.shards[id].NewSelect().Table("sch_plans").Column("name").Order("id").Scan(ctx, &out))
		return out
	}
	same := func(what string) {
		t.Helper()
		var w []string
		must(t, f.single.NewSelect().Table("sch_plans").Column("name").Order("id").Scan(ctx, &w))
		for _, id := range schShards {
			if g := names(id); !slices.Equal(g, w) {
				t.Errorf("%s: shard %s has plans %q; want %q (unsharded)", what, id, g, w)
			}
		}
	}

	d.plans[0].Name = "gold"
	f.reset()
	must(t, f.sess.Update(ctx, d.plans[0]))
	if _, err := f.single.NewUpdate().Model(d.plans[0]).WherePK().Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range schShards {
		if u := len(f.like(`UPDATE "sch_plans"`)[id]); u != 1 {
			t.Errorf("Update plan: shard %s ran %d UPDATEs; want 1", id, u)
		}
	}
	f.twoPhase(t, "Update plan")
	same("Update")

	f.reset()
	res, err := f.sess.NewUpdate().Model((*SchPlan)(nil)).Set("name = name || ?", "+").Where("id >= ?", 2).Exec(ctx)
	must(t, err)
	if _, err := f.single.NewUpdate().Model((*SchPlan)(nil)).Set("name = name || ?", "+").Where("id >= ?", 2).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	for _, id := range schShards {
		if res.ByShard[id] != 2 {
			t.Errorf("NewUpdate plans: shard %s updated %d rows; want 2", id, res.ByShard[id])
		}
	}
	f.twoPhase(t, "NewUpdate plans")
	same("NewUpdate")

	// A copy that lacks the row: nothing changes anywhere.
	if _, err := f.shards["s2"].NewDelete().Table("sch_plans").Where("id = 3").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	before := map[session.ShardID][]string{}
	for _, id := range schShards {
		before[id] = names(id)
	}
	d.plans[2].Name = "never"
	err = f.sess.Update(ctx, d.plans[2])
	if !errors.Is(err, sql.ErrNoRows) || !strings.Contains(err.Error(), "s2") {
		t.Errorf("Update of a plan s2 lacks = %v; want sql.ErrNoRows naming s2", err)
	}
	for _, id := range schShards {
		if g := names(id); !slices.Equal(g, before[id]) {
			t.Errorf("after the failed Update, shard %s has %q; want %q (rolled back)", id, g, before[id])
		}
	}
	must(t, f.sess.Delete(ctx, d.plans[1])) // every shard has plan 2
	if _, err := f.single.NewDelete().Model(d.plans[1]).WherePK().Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := f.single.NewDelete().Table("sch_plans").Where("id = 3").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	res, err = f.sess.NewDelete().Model((*SchPlan)(nil)).Where("id = 3").Exec(ctx)
	if err != nil || res.RowsAffected != 3 {
		t.Errorf("NewDelete plan 3 = %+v, %v; want 3 rows (s2 lacked it)", res, err)
	}
	same("Delete")

	// Refused before anything is sent.
	f.reset()
	pinned := session.WithShardID(ctx, "s1")
	err = f.sess.Insert(pinned, &SchPlan{ID: 9, Name: "pinned"})
	if !errors.Is(err, session.ErrInvalidArgument) || !strings.Contains(err.Error(), "every shard") {
		t.Errorf("Insert of a plan under a context pin = %v; want ErrInvalidArgument", err)
	}
	_, err = f.sess.NewUpdate().Model((*SchPlan)(nil)).Set("name = 'x'").Where("true").Options(session.SetShardID("s1")).Exec(ctx)
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("pinned NewUpdate of plans = %v; want ErrInvalidArgument", err)
	}
	err = f.sess.Insert(ctx, &SchPlan{Name: "no id"})
	if !errors.Is(err, session.ErrInvalidArgument) || !strings.Contains(err.Error(), "primary key") {
		t.Errorf("Insert of a plan without id = %v; want ErrInvalidArgument about the primary key", err)
	}
	err = f.sess.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		return u.Add(&SchPlan{ID: 10, Name: "in a unit"})
	})
	if err == nil || !strings.Contains(err.Error(), "reference table") {
		t.Errorf("Add of a plan to a unit = %v; want an error saying it is a reference table", err)
	}
	if n := f.total(); n != 0 {
		t.Errorf("refused writes sent %d statements; want 0", n)
	}
}

// TestSchemeUndeclaredModel: a model the scheme does not declare fails
// every kind of statement with chooser.ErrUndeclared naming it, and sends
// nothing: never a fan-out, never a default shard.
func TestSchemeUndeclaredModel(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	var others []*SchOther
	var other SchOther
	_, updErr := f.sess.NewUpdate().Model((*SchOther)(nil)).Set("id = id").Where("true").Exec(ctx)
	_, delErr := f.sess.NewDelete().Model((*SchOther)(nil)).Where("true").Exec(ctx)
	_, cntErr := f.sess.NewSelect().Model((*SchOther)(nil)).Count(ctx)
	for what, err := range map[string]error{
		"Insert": f.sess.Insert(ctx, &SchOther{ID: 1}),
		"Get":    f.sess.Get(ctx, &other, 1),
		"Select": f.sess.NewSelect().Model(&others).Scan(ctx),
		"Count":  cntErr,
		"Update": updErr,
		"Delete": delErr,
	} {
		if !errors.Is(err, chooser.ErrUndeclared) || !strings.Contains(err.Error(), "SchOther") {
			t.Errorf("%s of an undeclared model = %v; want chooser.ErrUndeclared naming SchOther", what, err)
		}
	}
	if n := f.total(); n != 0 {
		t.Errorf("statements on an undeclared model sent %d statements; want 0", n)
	}
}
