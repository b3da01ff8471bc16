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

// counter records the statements one shard ran.
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

// TestTour runs the command's tour against two fresh databases.
func TestTour(t *testing.T) {
	dsns := shardtest.Shared().NewDatabases(t.Context(), t, "tenant_tour")
	var out bytes.Buffer
	if err := run(t.Context(), &out, "", strings.Join(dsns, ",")); err != nil {
		t.Fatalf("run = %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`POST /projects (X-Tenant: acme) -> 201 {"id":1,"name":"rockets","plan_id":2,"tasks":null}`,
		`POST /projects (Host: globex.example.com) -> 201 {"id":1,"name":"volcano","plan_id":1,"tasks":null}`,
		`PATCH /tasks/1 (X-Tenant: acme) -> 200 {"id":1,"project_id":1,"title":"buy anvils","done":true}`,
		`GET /projects (X-Tenant: acme) -> 200 [{"id":1,"name":"rockets","plan_id":2,"plan":{"id":2,"name":"pro"},` +
			`"tasks":[{"id":1,"project_id":1,"title":"buy anvils","done":true},{"id":2,"project_id":1,"title":"call the coyote","done":false}]}]`,
		`GET /projects (Host: initech.example.com) -> 200 [{"id":2,"name":"staplers","plan_id":1,"plan":{"id":1,"name":"free"},"tasks":null}]`,
		`GET /summary (X-Tenant: acme) -> 200 {"open_tasks":1,"projects":1,"tenant":"acme"}`,
		`DELETE /projects/1 (X-Tenant: acme) -> 204`,
		`GET /summary (X-Tenant: acme) -> 200 {"open_tasks":0,"projects":0,"tenant":"acme"}`,
		`GET /projects (X-Tenant: umbrella) -> 404 unknown tenant "umbrella"`,
		`GET /projects (no tenant) -> 400`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("tour output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestTenantFlowStaysOnItsShard runs each tenant's full request flow
// through a real HTTP server (create a project, add tasks, list with plan
// and tasks, update a task, delete the project) and checks, on the
// statements each shard ran, that every request ran on its tenant's shard
// and no statement reached the other shard; then that the same list
// outside a request, with no pin, is routed there by the scheme alone.
func TestTenantFlowStaysOnItsShard(t *testing.T) {
	ctx := t.Context()
	dsns := shardtest.Shared().NewDatabases(ctx, t, "tenant_http")
	counts := map[session.ShardID]*counter{"s1": {}, "s2": {}}
	sess, err := Open(ctx, dsns, counts["s1"], counts["s2"])
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	srv := httptest.NewServer(Handler(sess, tenants))
	defer srv.Close()

	send := func(method, path, tenant, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if tenant != "" {
			req.Header.Set("X-Tenant", tenant)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, strings.TrimSpace(string(b))
	}
	// ran returns the statements each shard ran since the last call.
	ran := func() map[session.ShardID][]string {
		return map[session.ShardID][]string{"s1": counts["s1"].take(), "s2": counts["s2"].take()}
	}
	ran()

	for _, tenant := range []string{"acme", "globex", "initech"} {
		home := tenants[tenant]
		t.Run(tenant, func(t *testing.T) {
			step := func(method, path, body string, wantStatus int) string {
				t.Helper()
				status, out := send(method, path, tenant, body)
				if status != wantStatus {
					t.Fatalf("%s %s = %d %s; want %d", method, path, status, out, wantStatus)
				}
				for id, sqls := range ran() {
					switch {
					case id != home && len(sqls) > 0:
						t.Errorf("%s %s as %s (shard %s) ran on %s: %q", method, path, tenant, home, id, sqls)
					case id == home && len(sqls) == 0:
						t.Errorf("%s %s as %s ran nothing on its shard %s", method, path, tenant, home)
					}
				}
				return out
			}
			var p Project
			if err := json.Unmarshal([]byte(step("POST", "/projects", `{"name":"p-`+tenant+`","plan":2}`, http.StatusCreated)), &p); err != nil {
				t.Fatal(err)
			}
			pid := strconv.FormatInt(p.ID, 10)
			var t1 Task
			if err := json.Unmarshal([]byte(step("POST", "/projects/"+pid+"/tasks", `{"title":"one"}`, http.StatusCreated)), &t1); err != nil {
				t.Fatal(err)
			}
			step("POST", "/projects/"+pid+"/tasks", `{"title":"two"}`, http.StatusCreated)
			step("PATCH", "/tasks/"+strconv.FormatInt(t1.ID, 10), `{"done":true}`, http.StatusOK)
			var list []*Project
			if err := json.Unmarshal([]byte(step("GET", "/projects", "", http.StatusOK)), &list); err != nil {
				t.Fatal(err)
			}
			if len(list) != 1 || list[0].Name != "p-"+tenant || list[0].Plan == nil || list[0].Plan.Name != "pro" ||
				len(list[0].Tasks) != 2 || !list[0].Tasks[0].Done || list[0].Tasks[1].Done {
				t.Errorf("GET /projects as %s = %s; want its one project with plan pro and tasks one (done), two", tenant, mustJSON(list))
			}
			// Outside a request: no pin, the Where on the tenant routes.
			got, err := ListProjects(ctx, sess, tenant)
			if err != nil || len(got) != 1 || len(got[0].Tasks) != 2 {
				t.Errorf("ListProjects(%s) without a pin = %s, %v; want its project and two tasks", tenant, mustJSON(got), err)
			}
			for id, sqls := range ran() {
				if id != home && len(sqls) > 0 {
					t.Errorf("ListProjects(%s) without a pin ran on %s: %q", tenant, id, sqls)
				}
			}
			step("DELETE", "/projects/"+pid, "", http.StatusNoContent)
			if out := step("GET", "/projects", "", http.StatusOK); out != "[]" {
				t.Errorf("GET /projects as %s after DELETE = %s; want []", tenant, out)
			}
			step("GET", "/summary", "", http.StatusOK)
			step("DELETE", "/projects/"+pid, "", http.StatusNotFound)
		})
	}

	// Requests without a known tenant run nothing.
	for _, tenant := range []string{"umbrella", ""} {
		status, _ := send("GET", "/projects", tenant, "")
		if status != http.StatusNotFound && status != http.StatusBadRequest {
			t.Errorf("GET /projects as %q = %d; want 404 or 400", tenant, status)
		}
	}
	for id, sqls := range ran() {
		if len(sqls) > 0 {
			t.Errorf("requests without a known tenant ran on %s: %q", id, sqls)
		}
	}
	// A statement that names no tenant is refused, not scattered; an
	// undeclared model is refused by name.
	var projects []*Project
	if err := sess.NewSelect().Model(&projects).Scan(ctx); !errors.Is(err, session.ErrScatter) {
		t.Errorf("a select of projects without a tenant = %v; want session.ErrScatter", err)
	}
	type Stray struct {
		bun.BaseModel `bun:"table:strays"`
		ID            int64 `bun:",pk"`
	}
	if err := sess.NewSelect().Model(&[]*Stray{}).Scan(ctx); !errors.Is(err, chooser.ErrUndeclared) {
		t.Errorf("a select of an undeclared model = %v; want chooser.ErrUndeclared", err)
	}
	// Under a tenant's pin, another tenant's row is refused.
	pinned := session.WithShardID(ctx, tenants["globex"])
	if err := sess.Insert(pinned, &Project{Tenant: "acme", Name: "x", PlanID: 1}); !errors.Is(err, session.ErrPinConflict) {
		t.Errorf("an acme project inserted under globex's pin = %v; want session.ErrPinConflict", err)
	}
	for id, sqls := range ran() {
		if len(sqls) > 0 {
			t.Errorf("refused statements ran on %s: %q", id, sqls)
		}
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
