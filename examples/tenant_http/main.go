// Command tenant_http is a multi-tenant HTTP service over sharded
// PostgreSQL whose tables are declared through a sharding scheme
// (chooser.NewScheme): tenants by their id, projects and tasks by their
// tenant column, all through one map of tenant to shard, so a tenant's
// rows live on one shard; plans are a reference table, copied to every
// shard. A middleware finds each request's tenant (the X-Tenant header, or
// the first label of the host name), answers 400 or 404 without one, and
// pins the request's context to the tenant's shard (session.WithShardID),
// so every statement of the request, its relation queries, goroutines and
// reference-table reads included, runs there. The handlers write plain Bun,
// Where("tenant = ?", tenant), which they need anyway (tenants share
// shards); outside a request (ListProjects from a job) that same Where
// routes to the tenant's shard through the scheme, and the session's
// scatter guard refuses a statement that names no tenant. Under the pin, a
// write the scheme places on another shard (another tenant's row) fails
// with session.ErrPinConflict.
//
// With no flags it starts two temporary local PostgreSQL servers, serves the
// API on a local test server, prints a short tour of requests and stops:
//
//	go run ./examples/tenant_http
//
// With -listen it serves until interrupted; -dsns names two existing
// databases to use instead of temporary servers (the service creates its
// tables there if they are missing; plans are written with two-phase
// commit, so the servers need max_prepared_transactions > 0):
//
//	go run ./examples/tenant_http -listen 127.0.0.1:8080 -dsns postgres://...,postgres://...
//	curl -H 'X-Tenant: acme' -d '{"name":"rockets","plan":1}' http://127.0.0.1:8080/projects
package main

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"golang.org/x/sync/errgroup"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/session"
	"github.com/bunshard/bunshard/shardtest"
)

// Tenant is a customer; its id is the shard key of everything it owns.
type Tenant struct {
	bun.BaseModel `bun:"table:tenants"`
	session.Token

	ID   string `bun:",pk" json:"id"`
	Name string `bun:",notnull" json:"name"`
}

// Project is a tenant's project, sharded by its tenant column. Several
// tenants may share a shard, so every statement filters on the tenant.
type Project struct {
	bun.BaseModel `bun:"table:projects"`
	session.Token

	ID     int64   `bun:",pk,autoincrement" json:"id"`
	Tenant string  `bun:",notnull" json:"-"`
	Name   string  `bun:",notnull" json:"name"`
	PlanID int64   `bun:",notnull" json:"plan_id"`
	Plan   *Plan   `bun:"rel:belongs-to,join:plan_id=id" json:"plan,omitempty"`
	Tasks  []*Task `bun:"rel:has-many,join:id=project_id" json:"tasks"`
}

// Task is a project's task, sharded by its tenant column too.
type Task struct {
	bun.BaseModel `bun:"table:tasks"`
	session.Token

	ID        int64  `bun:",pk,autoincrement" json:"id"`
	Tenant    string `bun:",notnull" json:"-"`
	ProjectID int64  `bun:",notnull" json:"project_id"`
	Title     string `bun:",notnull" json:"title"`
	Done      bool   `bun:",notnull,default:false" json:"done"`
}

// Plan is a reference table: the same rows on every shard, so a project's
// plan joins on its own shard.
type Plan struct {
	bun.BaseModel `bun:"table:plans"`
	session.Token

	ID   int64  `bun:",pk,autoincrement:false" json:"id"`
	Name string `bun:",notnull" json:"name"`
}

// Tenants maps each tenant to the shard that holds its data.
type Tenants map[string]session.ShardID

// tenants of the tour: acme and initech share shard s1.
var tenants = Tenants{"acme": "s1", "initech": "s1", "globex": "s2"}

var shardIDs = []session.ShardID{"s1", "s2"}

// plans are the reference rows every shard holds.
var plans = []*Plan{{ID: 1, Name: "free"}, {ID: 2, Name: "pro"}}

// Scheme declares the service's tables: the tenant map routes tenants.id,
// projects.tenant and tasks.tenant alike; plans are on every shard. A
// model it does not declare is refused (chooser.ErrUndeclared).
func Scheme(ts Tenants) (*chooser.Scheme, error) {
	byTenant := chooser.NewValueMap("tenant", ts)
	return chooser.NewScheme(shardIDs,
		chooser.Distributed((*Tenant)(nil), "id", byTenant),
		chooser.Distributed((*Project)(nil), "tenant", byTenant),
		chooser.Distributed((*Task)(nil), "tenant", byTenant),
		chooser.Reference((*Plan)(nil)),
	)
}

type tenantKey struct{}

// TenantOf returns the tenant the middleware found for the request whose
// context ctx is.
func TenantOf(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// TenantFromRequest returns the request's tenant: the X-Tenant header, else
// the first label of the host name (acme.example.com: acme), else "".
func TenantFromRequest(r *http.Request) string {
	if t := strings.TrimSpace(r.Header.Get("X-Tenant")); t != "" {
		return strings.ToLower(t)
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if label, rest, ok := strings.Cut(host, "."); ok && rest != "" && net.ParseIP(host) == nil {
		return strings.ToLower(label)
	}
	return ""
}

// WithTenant is the per-request middleware. It answers 400 when the request
// names no tenant and 404 when the tenant is unknown; otherwise it serves
// next with a context that pins every statement to the tenant's shard,
// carries the tenant (TenantOf), and lets reads see the request's own
// writes should the shards have read replicas.
func WithTenant(sess *session.Session, ts Tenants, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := TenantFromRequest(r)
		if tenant == "" {
			http.Error(w, "no tenant: send X-Tenant or use <tenant>.<domain>", http.StatusBadRequest)
			return
		}
		shard, ok := ts[tenant]
		if !ok {
			http.Error(w, fmt.Sprintf("unknown tenant %q", tenant), http.StatusNotFound)
			return
		}
		ctx := session.WithShardID(r.Context(), shard)
		ctx = context.WithValue(ctx, tenantKey{}, tenant)
		ctx = sess.WithReadYourWrites(ctx)
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Handler returns the API, behind WithTenant:
//
//	POST   /projects          {"name": ..., "plan": id}   create a project
//	GET    /projects                                      the tenant's projects, with plan and tasks
//	POST   /projects/{id}/tasks {"title": ...}            add a task
//	PATCH  /tasks/{id}        {"done": bool}              update a task
//	DELETE /projects/{id}                                 delete a project and its tasks
//	GET    /summary                                       counts, from two goroutines
func Handler(sess *session.Session, ts Tenants) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /projects", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name string `json:"name"`
			Plan int64  `json:"plan"`
		}
		if !decode(w, r, &in) || in.Name == "" {
			return
		}
		ctx := r.Context()
		var plan Plan // a reference row: read on the tenant's shard, which has every plan
		if err := sess.NewSelect().Model(&plan).Where("id = ?", in.Plan).Scan(ctx); errors.Is(err, sql.ErrNoRows) {
			http.Error(w, fmt.Sprintf("no plan %d", in.Plan), http.StatusBadRequest)
			return
		} else if err != nil {
			reply(w, 0, nil, err)
			return
		}
		p := &Project{Tenant: TenantOf(ctx), Name: in.Name, PlanID: in.Plan}
		err := sess.Insert(ctx, p) // placed by p.Tenant
		reply(w, http.StatusCreated, p, err)
	})
	mux.HandleFunc("GET /projects", func(w http.ResponseWriter, r *http.Request) {
		projects, err := ListProjects(r.Context(), sess, TenantOf(r.Context()))
		reply(w, http.StatusOK, projects, err)
	})
	mux.HandleFunc("POST /projects/{id}/tasks", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		p, ok := project(w, r, sess)
		if !ok {
			return
		}
		var in struct {
			Title string `json:"title"`
		}
		if !decode(w, r, &in) || in.Title == "" {
			return
		}
		task := &Task{Tenant: TenantOf(ctx), ProjectID: p.ID, Title: in.Title}
		err := sess.Insert(ctx, task)
		reply(w, http.StatusCreated, task, err)
	})
	mux.HandleFunc("PATCH /tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			http.Error(w, "bad task id", http.StatusBadRequest)
			return
		}
		var task Task
		err = sess.NewSelect().Model(&task).Where("tenant = ?", TenantOf(ctx)).Where("id = ?", id).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			http.Error(w, "no such task", http.StatusNotFound)
			return
		} else if err != nil {
			reply(w, 0, nil, err)
			return
		}
		var in struct {
			Done bool `json:"done"`
		}
		if !decode(w, r, &in) {
			return
		}
		task.Done = in.Done
		err = sess.Update(ctx, &task) // on the shard the task was read from
		reply(w, http.StatusOK, task, err)
	})
	mux.HandleFunc("DELETE /projects/{id}", func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			http.Error(w, "bad project id", http.StatusBadRequest)
			return
		}
		// The project and its tasks, in one unit of work: all or nothing.
		tenant := TenantOf(ctx)
		err = sess.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
			var ps []*Project // a unit's select scans into a slice (tracked rows come back as themselves)
			if err := u.NewSelect().Model(&ps).Where("tenant = ?", tenant).Where("id = ?", id).Scan(ctx); err != nil {
				return err
			}
			if len(ps) == 0 {
				return sql.ErrNoRows
			}
			var tasks []*Task
			if err := u.NewSelect().Model(&tasks).Where("tenant = ?", tenant).Where("project_id = ?", id).Scan(ctx); err != nil {
				return err
			}
			if err := u.Delete(tasks); err != nil {
				return err
			}
			return u.Delete(ps[0])
		})
		if errors.Is(err, sql.ErrNoRows) {
			http.Error(w, "no such project", http.StatusNotFound)
			return
		}
		if err != nil {
			reply(w, 0, nil, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
	mux.HandleFunc("GET /summary", func(w http.ResponseWriter, r *http.Request) {
		// Two statements at once, from goroutines: each routes by its Where.
		var projects, open int
		g, ctx := errgroup.WithContext(r.Context())
		tenant := TenantOf(ctx)
		g.Go(func() (err error) {
			projects, err = sess.NewSelect().Model((*Project)(nil)).Where("tenant = ?", tenant).Count(ctx)
			return err
		})
		g.Go(func() (err error) {
			open, err = sess.NewSelect().Model((*Task)(nil)).Where("tenant = ?", tenant).Where("NOT done").Count(ctx)
			return err
		})
		err := g.Wait()
		reply(w, http.StatusOK, map[string]any{"tenant": tenant, "projects": projects, "open_tasks": open}, err)
	})
	return WithTenant(sess, ts, mux)
}

// ListProjects returns tenant's projects with their plan and tasks, in id
// order. Its Where on the tenant is what routes it when ctx carries no pin
// (a job outside a request): the scheme sends it to the tenant's shard, and
// the relation queries follow.
func ListProjects(ctx context.Context, sess *session.Session, tenant string) ([]*Project, error) {
	projects := []*Project{}
	err := sess.NewSelect().Model(&projects).Where("tenant = ?", tenant).
		Relation("Plan").Relation("Tasks", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("id") }).
		Order("id").Scan(ctx)
	return projects, err
}

// project reads the request's project {id} of the tenant, answering 400 or
// 404 when there is none.
func project(w http.ResponseWriter, r *http.Request, sess *session.Session) (*Project, bool) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil {
		http.Error(w, "bad project id", http.StatusBadRequest)
		return nil, false
	}
	p := new(Project)
	err = sess.NewSelect().Model(p).Where("tenant = ?", TenantOf(r.Context())).Where("id = ?", id).Scan(r.Context())
	if errors.Is(err, sql.ErrNoRows) {
		http.Error(w, "no such project", http.StatusNotFound)
		return nil, false
	}
	if err != nil {
		reply(w, 0, nil, err)
		return nil, false
	}
	return p, true
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(v); err != nil {
		http.Error(w, "send a JSON body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

func reply(w http.ResponseWriter, status int, v any, err error) {
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// Open builds the session over the shards' DSNs (in shardIDs order), with
// the scheme as its three choosers and the scatter guard on (a statement
// that names no tenant fails rather than run on every shard); creates the
// tables where they are missing, and the tenants and plans rows.
func Open(ctx context.Context, dsns []string, hooks ...bun.QueryHook) (*session.Session, error) {
	if len(dsns) != len(shardIDs) {
		return nil, fmt.Errorf("want %d DSNs (%v), got %d", len(shardIDs), shardIDs, len(dsns))
	}
	scheme, err := Scheme(tenants)
	if err != nil {
		return nil, err
	}
	dialect := pgdialect.New()
	shards := map[session.ShardID]bun.IDB{}
	for i, id := range shardIDs {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsns[i]))), dialect)
		if i < len(hooks) {
			db = db.WithQueryHook(hooks[i])
		}
		shards[id] = db
	}
	sess, err := session.New(shards, scheme, scheme, scheme, session.WithShardOrder(shardIDs...), session.WithScatterGuard())
	if err != nil {
		return nil, err
	}
	if err := seed(ctx, sess); err != nil {
		sess.Close()
		return nil, err
	}
	return sess, nil
}

func seed(ctx context.Context, sess *session.Session) error {
	models := []any{(*Plan)(nil), (*Tenant)(nil), (*Project)(nil), (*Task)(nil)}
	if err := sess.CreateTables(ctx, models, session.IfNotExists()); err != nil {
		return err
	}
	n, err := sess.NewSelect().Model((*Plan)(nil)).Count(ctx)
	if err != nil {
		return err
	}
	if n == 0 {
		if err := sess.Insert(ctx, &plans); err != nil { // every shard, in one two-phase unit
			return err
		}
	}
	for id := range tenants {
		var t Tenant
		err := sess.NewSelect().Model(&t).Where("id = ?", id).Scan(ctx)
		if errors.Is(err, sql.ErrNoRows) {
			err = sess.Insert(ctx, &Tenant{ID: id, Name: strings.ToUpper(id[:1]) + id[1:]})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func main() {
	listen := flag.String("listen", "", "serve on this address until interrupted, instead of running the tour")
	dsnList := flag.String("dsns", "", "comma-separated DSNs of the two shards' databases (default: temporary servers)")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	if err := run(ctx, os.Stdout, *listen, *dsnList); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, w io.Writer, listen, dsnList string) error {
	var dsns []string
	if dsnList != "" {
		dsns = strings.Split(dsnList, ",")
	} else {
		fmt.Fprintln(w, "starting 2 temporary PostgreSQL servers (-dsns to use your own)")
		set, err := shardtest.Start(len(shardIDs))
		if err != nil {
			return err
		}
		defer set.Close()
		for i := range shardIDs {
			dsns = append(dsns, set.Server(i).DSN("postgres"))
		}
	}
	sess, err := Open(ctx, dsns)
	if err != nil {
		return err
	}
	defer sess.Close()
	h := Handler(sess, tenants)

	if listen != "" {
		srv := &http.Server{Addr: listen, Handler: h, ReadHeaderTimeout: 10 * time.Second}
		go func() {
			<-ctx.Done()
			shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(shutdown)
		}()
		fmt.Fprintf(w, "serving on %s (tenants %v)\n", listen, tenants)
		if err := srv.ListenAndServe(); !errors.Is(err, http.ErrServerClosed) {
			return err
		}
		return nil
	}
	return tour(ctx, w, h)
}

// tour sends a few requests to the API on a local test server and prints
// what comes back.
func tour(ctx context.Context, w io.Writer, h http.Handler) error {
	srv := httptest.NewServer(h)
	defer srv.Close()
	do := func(method, path, tenant, host, body string) error {
		req, err := http.NewRequestWithContext(ctx, method, srv.URL+path, strings.NewReader(body))
		if err != nil {
			return err
		}
		who := "no tenant"
		if tenant != "" {
			req.Header.Set("X-Tenant", tenant)
			who = "X-Tenant: " + tenant
		}
		if host != "" {
			req.Host = host
			who = "Host: " + host
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		out, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "%s %s (%s) -> %d %s\n", method, path, who, resp.StatusCode, strings.TrimSpace(string(out)))
		return nil
	}
	steps := []struct{ method, path, tenant, host, body string }{
		{"POST", "/projects", "acme", "", `{"name":"rockets","plan":2}`},
		{"POST", "/projects/1/tasks", "acme", "", `{"title":"buy anvils"}`},
		{"POST", "/projects/1/tasks", "acme", "", `{"title":"call the coyote"}`},
		{"POST", "/projects", "", "globex.example.com", `{"name":"volcano","plan":1}`},
		{"POST", "/projects", "initech", "", `{"name":"staplers","plan":1}`},
		{"PATCH", "/tasks/1", "acme", "", `{"done":true}`},
		{"GET", "/projects", "acme", "", ""},
		{"GET", "/projects", "", "initech.example.com", ""},
		{"GET", "/summary", "acme", "", ""},
		{"DELETE", "/projects/1", "acme", "", ""},
		{"GET", "/summary", "acme", "", ""},
		{"GET", "/projects", "umbrella", "", ""},
		{"GET", "/projects", "", "", ""},
	}
	for _, s := range steps {
		if err := do(s.method, s.path, s.tenant, s.host, s.body); err != nil {
			return err
		}
	}
	return nil
}
