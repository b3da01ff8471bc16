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
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun"
	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/internal/pgtest"
)

func TestMain(m *testing.M) {
	os.Exit(pgtest.Main(m, 2, func() error { return goleak.Find() }))
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
	dsns := pgtest.Shared().NewDatabases(t.Context(), t, "tenant_tour")
	var out bytes.Buffer
	if err := run(t.Context(), &out, "", strings.Join(dsns, ",")); err != nil {
		t.Fatalf("run = %v\n%s", err, out.String())
	}
	for _, want := range []string{
		`POST /notes (Host: globex.example.com) -> 201 {"id":1,"body":"hire a volcano"}`,
		`GET /notes (X-Tenant: acme) -> 200 [{"id":1,"body":"buy anvils"},{"id":2,"body":"call the coyote"}]`,
		`GET /notes (Host: initech.example.com) -> 200 [{"id":3,"body":"find the stapler"}]`,
		`GET /summary (X-Tenant: globex) -> 200 {"last":"hire a volcano","notes":1,"shard":"s2","tenant":"globex"}`,
		`GET /notes (X-Tenant: umbrella) -> 404 unknown tenant "umbrella"`,
		`GET /notes (no tenant) -> 400`,
	} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("tour output lacks %q:\n%s", want, out.String())
		}
	}
}

// TestMiddlewareRoutesByTenant sends requests through a real HTTP server and
// checks, on the statements each shard ran, that each went to its tenant's
// shard only, goroutines of the handler included.
func TestMiddlewareRoutesByTenant(t *testing.T) {
	ctx := t.Context()
	dsns := pgtest.Shared().NewDatabases(ctx, t, "tenant_http")
	counts := []*counter{{}, {}}
	sess, err := Open(ctx, dsns, counts[0], counts[1])
	if err != nil {
		t.Fatal(err)
	}
	defer sess.Close()
	srv := httptest.NewServer(Handler(sess, tenants))
	defer srv.Close()

	send := func(method, path, header, host, body string) (int, string) {
		t.Helper()
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if header != "" {
			req.Header.Set("X-Tenant", header)
		}
		if host != "" {
			req.Host = host
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	ran := func() [2]int {
		return [2]int{len(counts[0].take()), len(counts[1].take())}
	}
	counts[0].take()
	counts[1].take()

	tests := []struct {
		name         string
		method, path string
		header, host string
		body         string
		wantStatus   int
		wantRan      [2]int // statements on s1, s2
	}{
		{"insert by header", "POST", "/notes", "acme", "", "a1", http.StatusCreated, [2]int{1, 0}},
		{"insert by host", "POST", "/notes", "", "globex.example.com:8080", "g1", http.StatusCreated, [2]int{0, 1}},
		{"header wins over host", "POST", "/notes", "initech", "globex.example.com", "i1", http.StatusCreated, [2]int{1, 0}},
		{"list", "GET", "/notes", "acme", "", "", http.StatusOK, [2]int{1, 0}},
		{"summary from two goroutines", "GET", "/summary", "globex", "", "", http.StatusOK, [2]int{0, 2}},
		{"unknown tenant", "GET", "/notes", "umbrella", "", "", http.StatusNotFound, [2]int{0, 0}},
		{"no tenant", "GET", "/notes", "", "", "", http.StatusBadRequest, [2]int{0, 0}},
		{"an IP is no tenant", "GET", "/notes", "", "10.0.0.1:80", "", http.StatusBadRequest, [2]int{0, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := send(tt.method, tt.path, tt.header, tt.host, tt.body)
			if status != tt.wantStatus {
				t.Fatalf("%s %s = %d %s; want %d", tt.method, tt.path, status, body, tt.wantStatus)
			}
			if got := ran(); got != tt.wantRan {
				t.Errorf("%s %s ran %v statements on [s1 s2]; want %v", tt.method, tt.path, got, tt.wantRan)
			}
		})
	}

	// Tenants sharing a shard see only their own notes.
	_, body := send("GET", "/notes", "initech", "", "")
	var notes []Note
	if err := json.Unmarshal([]byte(body), &notes); err != nil {
		t.Fatalf("GET /notes as initech: %v (%s)", err, body)
	}
	var bodies []string
	for _, n := range notes {
		bodies = append(bodies, n.Body)
	}
	if !slices.Equal(bodies, []string{"i1"}) {
		t.Errorf("initech's notes = %v; want [i1] (acme shares the shard)", bodies)
	}

	// Without the middleware nothing runs: the choosers refuse.
	if err := sess.NewSelect().Model(&notes).Scan(ctx); !errors.Is(err, errNoTenant) {
		t.Errorf("a select without a tenant = %v; want errNoTenant", err)
	}
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
