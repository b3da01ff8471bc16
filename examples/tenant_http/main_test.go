package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"
	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/session"
	"github.com/bunshard/bunshard/shardtest"
)

func TestMain(m *testing.M) {
	os.Exit(shardtest.Main(m, 2, func() error { return goleak.Find() }))
}

// counter records the statements one shard ran (a Bun query hook on the
// shard's *bun.DB).
type counter struct {
	mu   sync.Mutex
	sqls []string
}

func (c *counter) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }

func (c *counter) AfterQuery(_ context.Context, e *bun.QueryEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sqls = append(c.sqls, e.Query)
}

func (c *counter) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.sqls
	c.sqls = nil
	return out
}

// app is the service on fresh databases behind a real HTTP server, with
// the statements each shard runs recorded.
type app struct {
	t      *testing.T
	sess   *session.Session
	srv    *httptest.Server
	counts map[session.ShardID]*counter
}

func newApp(t *testing.T, prefix string) *app {
	t.Helper()
	dsns := shardtest.Shared().NewDatabases(t.Context(), t, prefix)
	a := &app{t: t, counts: map[session.ShardID]*counter{"s1": {}, "s2": {}}}
	var err error
	a.sess, err = Open(t.Context(), dsns, a.counts["s1"], a.counts["s2"])
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = a.sess.Close() })
	a.srv = httptest.NewServer(Handler(a.sess, tenants))
	t.Cleanup(a.srv.Close)
	a.ran()
	return a
}

// send sends a request as tenant and returns the status and body.
func (a *app) send(method, path, tenant, body string) (int, string) {
	a.t.Helper()
	req, err := http.NewRequestWithContext(a.t.Context(), method, a.srv.URL+path, strings.NewReader(body))
	if err != nil {
		a.t.Fatal(err)
	}
	if tenant != "" {
		req.Header.Set("X-Tenant", tenant)
	}
	resp, err := a.srv.Client().Do(req)
	if err != nil {
		a.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, strings.TrimSpace(string(b))
}

// ran returns the statements each shard ran since the last call.
func (a *app) ran() map[session.ShardID][]string {
	return map[session.ShardID][]string{"s1": a.counts["s1"].take(), "s2": a.counts["s2"].take()}
}

// rows returns every project, task and event row of each shard, as text
// ("projects | tasks | events", see section), read on the shard's own
// handle (and not counted by ran).
func (a *app) rows() map[session.ShardID]string {
	a.t.Helper()
	out := map[session.ShardID]string{}
	for _, id := range shardIDs {
		db, err := a.sess.DB(id)
		if err != nil {
			a.t.Fatal(err)
		}
		var s string
		err = db.NewRaw(`SELECT concat_ws(' | ',
			coalesce((SELECT string_agg(concat_ws(',', tenant, id, slug, name, plan_id), ';' ORDER BY tenant, id) FROM projects), ''),
			coalesce((SELECT string_agg(concat_ws(',', tenant, id, project_id, title, done), ';' ORDER BY tenant, id) FROM tasks), ''),
			coalesce((SELECT string_agg(concat_ws(',', tenant, id, what), ';' ORDER BY tenant, id) FROM events), ''))`).Scan(a.t.Context(), &s)
		if err != nil {
			a.t.Fatal(err)
		}
		out[id] = s
	}
	a.ran()
	return out
}

// section returns the projects (0), tasks (1) or events (2) of a shard's
// rows.
func section(rows string, i int) string { return strings.Split(rows, " | ")[i] }

// TestTour runs the command's tour against two fresh databases.
func TestTour(t *testing.T) {
	dsns := shardtest.Shared().NewDatabases(t.Context(), t, "tenant_tour")
	var out bytes.Buffer
	if err := run(t.Context(), &out, "", strings.Join(dsns, ",")); err != nil {
		t.Fatalf("run = %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`PUT /projects/rockets (X-Tenant: acme) -> 200 {"id":1,"slug":"rockets","name":"Rockets","plan_id":1}`,
		`PUT /projects/rockets (X-Tenant: acme) -> 200 {"id":1,"slug":"rockets","name":"Rockets","plan_id":2}`,
		`POST /projects/rockets/tasks (X-Tenant: acme) -> 201 [{"id":1,"project_id":1,"title":"buy anvils","done":false},` +
			`{"id":2,"project_id":1,"title":"call the coyote","done":false}]`,
		`PUT /projects/volcano (Host: globex.example.com) -> 200 {"id":1,"slug":"volcano","name":"Volcano","plan_id":1}`,
		`POST /projects/volcano/tasks (X-Tenant: globex) -> 409 over the plan's limit: plan free allows 3 open tasks per project; volcano would have 4`,
		`PUT /projects/staplers (X-Tenant: initech) -> 400 bad request: no plan 9`,
		`PATCH /tasks/1 (X-Tenant: acme) -> 200 {"done":true,"id":1}`,
		`GET /projects (X-Tenant: acme) -> 200 [{"id":1,"slug":"rockets","name":"Rockets","plan_id":2,"plan":{"id":2,"name":"pro","max_open_tasks":100},` +
			`"tasks":[{"id":1,"project_id":1,"title":"buy anvils","done":true},{"id":2,"project_id":1,"title":"call the coyote","done":false}]}]`,
		`GET /projects (Host: globex.example.com) -> 200 [{"id":1,"slug":"volcano","name":"Volcano","plan_id":1,"plan":{"id":1,"name":"free","max_open_tasks":3}}]`,
		`GET /summary (X-Tenant: acme) -> 200 {"projects":1,"open_tasks":1,"events":1}`,
		`DELETE /projects/rockets (X-Tenant: acme) -> 204`,
		`GET /summary (X-Tenant: acme) -> 200 {"projects":0,"open_tasks":0,"events":1}`,
		`GET /projects (X-Tenant: umbrella) -> 404 unknown tenant "umbrella"`,
		`GET /projects (no tenant) -> 400`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("tour output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestTenantFlowStaysOnItsShard runs each tenant's full request flow
// through a real HTTP server (upsert a project twice, add tasks in a unit,
// update a task's column, list with plan and tasks, summarize through
// bun.IDB, delete the project and its tasks) and checks, on the statements
// each shard ran, that every request ran on its tenant's shard and sent
// nothing to the other; that the rows are on the tenant's shard; and that
// the same list outside a request, with no pin, is routed there by the
// scheme alone.
func TestTenantFlowStaysOnItsShard(t *testing.T) {
	a := newApp(t, "tenant_http")
	ctx := t.Context()
	for _, tenant := range []string{"acme", "globex", "initech"} {
		home := tenants[tenant]
		t.Run(tenant, func(t *testing.T) {
			step := func(method, path, body string, wantStatus int) string {
				t.Helper()
				status, out := a.send(method, path, tenant, body)
				if status != wantStatus {
					t.Fatalf("%s %s as %s = %d %s; want %d", method, path, tenant, status, out, wantStatus)
				}
				for id, sqls := range a.ran() {
					switch {
					case id != home && len(sqls) > 0:
						t.Errorf("%s %s as %s (shard %s) ran on %s: %q", method, path, tenant, home, id, sqls)
					case id == home && len(sqls) == 0:
						t.Errorf("%s %s as %s ran nothing on its shard %s", method, path, tenant, home)
					}
				}
				return out
			}
			// An upsert twice is one row, with the second request's values, on the tenant's shard.
			first := step("PUT", "/projects/p", `{"name":"first","plan":1}`, http.StatusOK)
			second := step("PUT", "/projects/p", `{"name":"second","plan":2}`, http.StatusOK)
			var p1, p2 Project
			if err := json.Unmarshal([]byte(first), &p1); err != nil {
				t.Fatal(err)
			}
			if err := json.Unmarshal([]byte(second), &p2); err != nil {
				t.Fatal(err)
			}
			if p1.ID == 0 || p2.ID != p1.ID || p2.Name != "second" || p2.PlanID != 2 {
				t.Errorf("PUT /projects/p twice = %s then %s; want one id, then name second, plan 2", first, second)
			}
			rows := a.rows()
			for _, id := range shardIDs {
				want := 0
				if id == home {
					want = 1
				}
				if got := section(rows[id], 0); strings.Count(got, tenant+","+strconv.FormatInt(p1.ID, 10)+",p,second,2") != want ||
					strings.Count(got, tenant+",") != want {
					t.Errorf("after two PUTs as %s, shard %s holds %q; want %d row(s) of %s (project p, second, plan 2)", tenant, id, rows[id], want, tenant)
				}
			}

			var tasks []*Task
			if err := json.Unmarshal([]byte(step("POST", "/projects/p/tasks", `{"titles":["one","two"]}`, http.StatusCreated)), &tasks); err != nil {
				t.Fatal(err)
			}
			if len(tasks) != 2 || tasks[0].ID == 0 || tasks[0].ProjectID != p1.ID {
				t.Fatalf("POST /projects/p/tasks as %s = %s; want two tasks of project %d, with ids", tenant, mustJSON(tasks), p1.ID)
			}
			one := strconv.FormatInt(tasks[0].ID, 10)
			step("PATCH", "/tasks/"+one, `{"done":true}`, http.StatusOK)
			if tenant == "acme" { // initech shares acme's shard, not its rows
				if status, out := a.send("PATCH", "/tasks/"+one, "initech", `{"done":false}`); status != http.StatusNotFound {
					t.Errorf("PATCH of acme's task %s as initech = %d %s; want 404", one, status, out)
				}
				a.ran()
			}
			var list []*Project
			if err := json.Unmarshal([]byte(step("GET", "/projects", "", http.StatusOK)), &list); err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].Name != "second" || list[0].Plan == nil || list[0].Plan.Name != "pro" ||
				len(list[0].Tasks) != 2 || !list[0].Tasks[0].Done || list[0].Tasks[1].Done {
				t.Errorf("GET /projects as %s = %s; want its one project with plan pro and tasks one (done), two", tenant, mustJSON(list))
			}
			if out := step("GET", "/summary", "", http.StatusOK); out != `{"projects":1,"open_tasks":1,"events":1}` {
				t.Errorf("GET /summary as %s = %s; want 1 project, 1 open task, 1 event", tenant, out)
			}
			// Outside a request: no pin, the Where on the tenant routes.
			got, err := ListProjects(ctx, a.sess, tenant)
			if err != nil || len(got) != 1 || len(got[0].Tasks) != 2 {
				t.Errorf("ListProjects(%s) without a pin = %s, %v; want its project and two tasks", tenant, mustJSON(got), err)
			}
			for id, sqls := range a.ran() {
				if id != home && len(sqls) > 0 {
					t.Errorf("ListProjects(%s) without a pin ran on %s: %q", tenant, id, sqls)
				}
			}
			step("DELETE", "/projects/p", "", http.StatusNoContent)
			if out := step("GET", "/projects", "", http.StatusOK); out != "[]" {
				t.Errorf("GET /projects as %s after DELETE = %s; want []", tenant, out)
			}
			if tasks := section(a.rows()[home], 1); strings.Contains(tasks, tenant+",") {
				t.Errorf("after DELETE as %s, shard %s still holds tasks of its: %q", tenant, home, tasks)
			}
			step("DELETE", "/projects/p", "", http.StatusNotFound)
			step("PATCH", "/tasks/"+one, `{"done":false}`, http.StatusNotFound)
		})
	}

	// Requests without a known tenant run nothing.
	for _, tenant := range []string{"umbrella", ""} {
		status, _ := a.send("GET", "/projects", tenant, "")
		if status != http.StatusNotFound && status != http.StatusBadRequest {
			t.Errorf("GET /projects as %q = %d; want 404 or 400", tenant, status)
		}
	}
	for id, sqls := range a.ran() {
		if len(sqls) > 0 {
			t.Errorf("requests without a known tenant ran on %s: %q", id, sqls)
		}
	}
	// A statement that names no tenant is refused, not scattered; an
	// undeclared model is refused by name.
	var projects []*Project
	if err := a.sess.NewSelect().Model(&projects).Scan(ctx); !errors.Is(err, session.ErrScatter) {
		t.Errorf("a select of projects without a tenant = %v; want session.ErrScatter", err)
	}
	type Stray struct {
		bun.BaseModel `bun:"table:strays"`
		ID            int64 `bun:",pk"`
	}
	if err := a.sess.NewSelect().Model(&[]*Stray{}).Scan(ctx); !errors.Is(err, chooser.ErrUndeclared) {
		t.Errorf("a select of an undeclared model = %v; want chooser.ErrUndeclared", err)
	}
	for id, sqls := range a.ran() {
		if len(sqls) > 0 {
			t.Errorf("refused statements ran on %s: %q", id, sqls)
		}
	}
}

// TestFailedStepRollsBackEverything: a request that adds tasks past the
// plan's limit fails in RunInTx after the tasks' INSERT and the event's
// were sent (autoflush sends the INSERT before the count that finds the
// limit passed); the unit rolls back, and no shard's rows change.
func TestFailedStepRollsBackEverything(t *testing.T) {
	a := newApp(t, "tenant_rollback")
	if status, out := a.send("PUT", "/projects/small", "globex", `{"name":"small","plan":1}`); status != http.StatusOK {
		t.Fatalf("PUT /projects/small = %d %s", status, out)
	}
	if status, out := a.send("POST", "/projects/small/tasks", "globex", `{"titles":["a","b"]}`); status != http.StatusCreated {
		t.Fatalf("POST 2 tasks on the free plan = %d %s; want 201", status, out)
	}
	before := a.rows()
	status, out := a.send("POST", "/projects/small/tasks", "globex", `{"titles":["c","d"]}`)
	if status != http.StatusConflict || !strings.Contains(out, "plan free allows 3 open tasks") {
		t.Errorf("POST 2 more tasks on the free plan = %d %s; want 409 naming the plan's limit", status, out)
	}
	ran := a.ran()
	sent := strings.Join(ran["s2"], "\n")
	if !strings.Contains(sent, `INSERT INTO "tasks"`) || !strings.Contains(sent, `INSERT INTO "events"`) || len(ran["s1"]) > 0 {
		t.Errorf("the refused request ran %q on s2 and %q on s1; want the tasks' and the event's INSERT on s2 (then rolled back), nothing on s1",
			ran["s2"], ran["s1"])
	}
	if after := a.rows(); after["s1"] != before["s1"] || after["s2"] != before["s2"] {
		t.Errorf("rows after the refused request:\n%v\nwant them unchanged:\n%v", after, before)
	}
	if n := a.sess.OpenUnits(); n != 0 {
		t.Errorf("OpenUnits() = %d after the request; want 0", n)
	}
}

// TestAnotherTenantsRowIsRefusedInTx: inside a unit of acme's request
// (its context pinned to s1), a write of globex's row (placed on s2 by
// the scheme), as an object or through the bun.IDB of globex's key, is
// refused with ErrPinConflict naming both shards, which the service
// answers with 409; nothing reaches s2, and acme's own write in the same
// unit is rolled back.
func TestAnotherTenantsRowIsRefusedInTx(t *testing.T) {
	a := newApp(t, "tenant_refuse")
	if status, out := a.send("PUT", "/projects/p", "acme", `{"name":"p","plan":2}`); status != http.StatusOK {
		t.Fatalf("PUT /projects/p = %d %s", status, out)
	}
	var p Project
	if err := a.sess.NewSelect().Model(&p).Where("tenant = ?", "acme").Where("slug = ?", "p").Scan(t.Context()); err != nil {
		t.Fatal(err)
	}
	before := a.rows()
	ctx, err := ForTenant(t.Context(), a.sess, tenants, "acme")
	if err != nil {
		t.Fatal(err)
	}
	err = a.sess.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		if err := u.Add(&Task{Tenant: "acme", ProjectID: p.ID, Title: "mine"}); err != nil {
			return err
		}
		if _, err := u.NewSelect().Model((*Task)(nil)).Where("tenant = ?", "acme").Count(ctx); err != nil { // autoflush: acme's INSERT is sent
			return err
		}
		return u.Add(&Task{Tenant: "globex", ProjectID: p.ID, Title: "not mine"})
	})
	if !errors.Is(err, session.ErrPinConflict) || !strings.Contains(err.Error(), "s1") || !strings.Contains(err.Error(), "s2") {
		t.Errorf("RunInTx adding globex's task under acme's pin = %v; want session.ErrPinConflict naming s1 and s2", err)
	} else if got := status(err); got != http.StatusConflict {
		t.Errorf("status(%v) = %d; want 409", err, got)
	}
	// Repository code asking for globex's handle in acme's unit is refused too.
	err = a.sess.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		if err := u.Add(&Task{Tenant: "acme", ProjectID: p.ID, Title: "mine"}); err != nil {
			return err
		}
		db, err := u.DBForKey(ctx, (*Event)(nil), "tenant", "globex")
		if err != nil {
			return err
		}
		return RecordEvent(ctx, db, "globex", "not mine")
	})
	if !errors.Is(err, session.ErrPinConflict) || !strings.Contains(err.Error(), "s1") || !strings.Contains(err.Error(), "s2") {
		t.Errorf("RunInTx adding globex's task under acme's pin = %v; want session.ErrPinConflict naming s1 and s2", err)
	} else if got := status(err); got != http.StatusConflict {
		t.Errorf("status(%v) = %d; want 409", err, got)
	}
	ran := a.ran()
	if len(ran["s2"]) > 0 || !strings.Contains(strings.Join(ran["s1"], "\n"), `INSERT INTO "tasks"`) {
		t.Errorf("the unit ran %q on s1 and %q on s2; want acme's INSERT on s1, nothing on s2", ran["s1"], ran["s2"])
	}
	if after := a.rows(); after["s1"] != before["s1"] || after["s2"] != before["s2"] {
		t.Errorf("rows after the refused unit:\n%v\nwant them unchanged:\n%v", after, before)
	}
}

func mustJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

func TestTenantFromRequest(t *testing.T) {
	tests := []struct {
		header, host, want string
	}{
		{"Acme", "globex.example.com", "acme"},
		{"", "globex.example.com", "globex"},
		{"", "globex.example.com:443", "globex"},
		{"", "localhost:8080", ""},
		{"", "127.0.0.1:8080", ""},
		{"", "[::1]:8080", ""},
		{"  ", "initech.example.com", "initech"},
	}
	for _, tt := range tests {
		r := httptest.NewRequest("GET", "/", nil)
		r.Host = tt.host
		if tt.header != "" {
			r.Header.Set("X-Tenant", tt.header)
		}
		if got := TenantFromRequest(r); got != tt.want {
			t.Errorf("TenantFromRequest(X-Tenant %q, Host %q) = %q; want %q", tt.header, tt.host, got, tt.want)
		}
	}
}
