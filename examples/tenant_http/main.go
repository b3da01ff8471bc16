// Command tenant_http is a multi-tenant HTTP service over sharded
// PostgreSQL, written as a Bun app against bunshard's session.
//
// The shard key is the tenant, declared once: a sharding scheme
// (chooser.NewScheme) routes tenants.id and the tenant column of projects,
// tasks and events through one map of tenant to shard, so all of a
// tenant's rows live on one shard; plans are a reference table, the same
// rows on every shard. A middleware finds each request's tenant (the
// X-Tenant header, or the first label of the host name) and pins the
// request's context to the tenant's shard (session.WithShardID), so every
// statement of the request runs there, and a write of another tenant's row
// that the scheme places on another shard is refused
// (session.ErrPinConflict) instead of being sent.
//
// The handlers use the session's builders as they would use Bun's: an
// upsert with NewInsert().On("CONFLICT ... DO UPDATE").Returning, an
// UPDATE of chosen columns with NewUpdate().Column, NewDelete with a
// session select as its subquery, selects with relations. A handler of
// several statements runs them in sess.RunInTx, one unit of work: committed
// when the function returns nil, rolled back on an error; its queries see
// the objects it added (autoflush). Repository code written against
// bun.IDB (RecordEvent, Summarize) runs unchanged on the tenant's shard,
// through sess.DBForKey or, inside a unit, u.DBForKey. Errors map to HTTP
// statuses in one place (status).
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
//	curl -X PUT -H 'X-Tenant: acme' -d '{"name":"Rockets","plan":1}' http://127.0.0.1:8080/projects/rockets
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

// Project is a tenant's project, named by a slug unique per tenant.
// Several tenants may share a shard, so every statement filters on the
// tenant too.
type Project struct {
	bun.BaseModel `bun:"table:projects"`
	session.Token

	ID     int64   `bun:",pk,autoincrement" json:"id"`
	Tenant string  `bun:",notnull,unique:tenant_slug" json:"-"`
	Slug   string  `bun:",notnull,unique:tenant_slug" json:"slug"`
	Name   string  `bun:",notnull" json:"name"`
	PlanID int64   `bun:",notnull" json:"plan_id"`
	Plan   *Plan   `bun:"rel:belongs-to,join:plan_id=id" json:"plan,omitempty"`
	Tasks  []*Task `bun:"rel:has-many,join:id=project_id" json:"tasks,omitempty"`
}

// Task is a project's task.
type Task struct {
	bun.BaseModel `bun:"table:tasks"`
	session.Token

	ID        int64  `bun:",pk,autoincrement" json:"id"`
	Tenant    string `bun:",notnull" json:"-"`
	ProjectID int64  `bun:",notnull" json:"project_id"`
	Title     string `bun:",notnull" json:"title"`
	Done      bool   `bun:",notnull,default:false" json:"done"`
}

// Event is a line of a tenant's audit log, written by RecordEvent.
type Event struct {
	bun.BaseModel `bun:"table:events"`
	session.Token

	ID     int64  `bun:",pk,autoincrement"`
	Tenant string `bun:",notnull"`
	What   string `bun:",notnull"`
}

// Plan is a reference table: the same rows on every shard, so a project's
// plan joins on its own shard.
type Plan struct {
	bun.BaseModel `bun:"table:plans"`
	session.Token

	ID       int64  `bun:",pk,autoincrement:false" json:"id"`
	Name     string `bun:",notnull" json:"name"`
	MaxTasks int    `bun:",notnull" json:"max_open_tasks"`
}

// Tenants maps each tenant to the shard that holds its data.
type Tenants map[string]session.ShardID

// tenants of the tour: acme and initech share shard s1.
var tenants = Tenants{"acme": "s1", "initech": "s1", "globex": "s2"}

var shardIDs = []session.ShardID{"s1", "s2"}

// plans are the reference rows every shard holds.
var plans = []*Plan{{ID: 1, Name: "free", MaxTasks: 3}, {ID: 2, Name: "pro", MaxTasks: 100}}

// Scheme declares the service's tables: the tenant map routes tenants.id
// and the tenant column of the others alike; plans are on every shard. A
// model it does not declare is refused (chooser.ErrUndeclared).
func Scheme(ts Tenants) (*chooser.Scheme, error) {
	byTenant := chooser.NewValueMap("tenant", ts)
	return chooser.NewScheme(shardIDs,
		chooser.Distributed((*Tenant)(nil), "id", byTenant),
		chooser.Distributed((*Project)(nil), "tenant", byTenant),
		chooser.Distributed((*Task)(nil), "tenant", byTenant),
		chooser.Distributed((*Event)(nil), "tenant", byTenant),
		chooser.Reference((*Plan)(nil)),
	)
}

var (
	errBadInput = errors.New("bad request")           // 400
	errOverPlan = errors.New("over the plan's limit") // 409: the request would exceed the project's plan
)

// status maps an error to its HTTP status.
func status(err error) int {
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return http.StatusNotFound
	case errors.Is(err, errOverPlan), errors.Is(err, session.ErrPinConflict), errors.Is(err, session.ErrShardKeyChanged):
		return http.StatusConflict
	case errors.Is(err, errBadInput), errors.Is(err, session.ErrInvalidArgument):
		return http.StatusBadRequest
	}
	return http.StatusInternalServerError
}

type tenantKey struct{}

// TenantOf returns the tenant ForTenant put in ctx.
func TenantOf(ctx context.Context) string {
	t, _ := ctx.Value(tenantKey{}).(string)
	return t
}

// ForTenant returns ctx pinned to tenant's shard, carrying the tenant
// (TenantOf): what the middleware gives every request, and what a job
// outside a request uses too. An unknown tenant is sql.ErrNoRows.
func ForTenant(ctx context.Context, sess *session.Session, ts Tenants, tenant string) (context.Context, error) {
	shard, ok := ts[tenant]
	if !ok {
		return nil, fmt.Errorf("unknown tenant %q: %w", tenant, sql.ErrNoRows)
	}
	ctx = session.WithShardID(ctx, shard)
	ctx = context.WithValue(ctx, tenantKey{}, tenant)
	return sess.WithReadYourWrites(ctx), nil // reads see the request's writes, should shards have replicas
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

// WithTenant is the per-request middleware: 400 when the request names no
// tenant, 404 when the tenant is unknown, else next under ForTenant's
// context.
func WithTenant(sess *session.Session, ts Tenants, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tenant := TenantFromRequest(r)
		if tenant == "" {
			http.Error(w, "no tenant: send X-Tenant or use <tenant>.<domain>", http.StatusBadRequest)
			return
		}
		ctx, err := ForTenant(r.Context(), sess, ts, tenant)
		if err != nil {
			reply(w, 0, nil, err)
			return
		}
		next.ServeHTTP(w, r.WithContext(ctx))
	})
}

// Handler returns the API, behind WithTenant:
//
//	PUT    /projects/{slug}       {"name": ..., "plan": id}  create or update a project (upsert)
//	GET    /projects                                         the tenant's projects, with plan and tasks
//	POST   /projects/{slug}/tasks {"titles": [...]}          add tasks, within the plan's limit
//	PATCH  /tasks/{id}            {"done": bool}             mark a task done or not
//	DELETE /projects/{slug}                                  delete a project and its tasks
//	GET    /summary                                          counts
func Handler(sess *session.Session, ts Tenants) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("PUT /projects/{slug}", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Name string `json:"name"`
			Plan int64  `json:"plan"`
		}
		if !decode(w, r, &in) {
			return
		}
		ctx := r.Context()
		var plan Plan // a reference row: read on the tenant's shard, which has every plan
		if err := sess.NewSelect().Model(&plan).Where("id = ?", in.Plan).Scan(ctx); err != nil {
			if errors.Is(err, sql.ErrNoRows) {
				err = fmt.Errorf("%w: no plan %d", errBadInput, in.Plan)
			}
			reply(w, 0, nil, err)
			return
		}
		p := &Project{Tenant: TenantOf(ctx), Slug: r.PathValue("slug"), Name: in.Name, PlanID: in.Plan}
		// One row per (tenant, slug), inserted or updated on p.Tenant's shard;
		// RETURNING fills p.ID with the id of the row either way.
		_, err := sess.NewInsert().Model(p).
			On("CONFLICT (tenant, slug) DO UPDATE").
			Set("name = EXCLUDED.name").Set("plan_id = EXCLUDED.plan_id").
			Returning("id").Exec(ctx)
		reply(w, http.StatusOK, p, err)
	})
	mux.HandleFunc("GET /projects", func(w http.ResponseWriter, r *http.Request) {
		projects, err := ListProjects(r.Context(), sess, TenantOf(r.Context()))
		reply(w, http.StatusOK, projects, err)
	})
	mux.HandleFunc("POST /projects/{slug}/tasks", func(w http.ResponseWriter, r *http.Request) {
		var in struct {
			Titles []string `json:"titles"`
		}
		if !decode(w, r, &in) {
			return
		}
		ctx, tenant, slug := r.Context(), TenantOf(r.Context()), r.PathValue("slug")
		var tasks []*Task
		err := sess.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
			var ps []*Project
			err := u.NewSelect().Model(&ps).Relation("Plan").Where("tenant = ?", tenant).Where("slug = ?", slug).Scan(ctx)
			if err != nil {
				return err
			}
			if len(ps) == 0 {
				return fmt.Errorf("no project %q: %w", slug, sql.ErrNoRows)
			}
			p := ps[0]
			for _, title := range in.Titles {
				tasks = append(tasks, &Task{Tenant: tenant, ProjectID: p.ID, Title: title})
			}
			if err := u.Add(&tasks); err != nil {
				return err
			}
			// Autoflush: the unit INSERTs the new tasks before this count, so it counts them.
			open, err := u.NewSelect().Model((*Task)(nil)).
				Where("tenant = ?", tenant).Where("project_id = ?", p.ID).Where("NOT done").Count(ctx)
			if err != nil {
				return err
			}
			db, err := u.DBForKey(ctx, (*Event)(nil), "tenant", tenant) // the unit's transaction on that shard
			if err != nil {
				return err
			}
			if err := RecordEvent(ctx, db, tenant, fmt.Sprintf("%d tasks added to %s", len(tasks), slug)); err != nil {
				return err
			}
			if open > p.Plan.MaxTasks { // returning an error rolls back the tasks and the event
				return fmt.Errorf("%w: plan %s allows %d open tasks per project; %s would have %d",
					errOverPlan, p.Plan.Name, p.Plan.MaxTasks, slug, open)
			}
			return nil
		})
		reply(w, http.StatusCreated, tasks, err)
	})
	mux.HandleFunc("PATCH /tasks/{id}", func(w http.ResponseWriter, r *http.Request) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil {
			http.Error(w, "bad task id", http.StatusBadRequest)
			return
		}
		var in struct {
			Done bool `json:"done"`
		}
		if !decode(w, r, &in) {
			return
		}
		ctx := r.Context()
		task := &Task{ID: id, Tenant: TenantOf(ctx), Done: in.Done}
		// UPDATE tasks SET done = ... WHERE tenant = ... AND id = ...: the
		// other columns are left alone; no such task is sql.ErrNoRows (404).
		_, err = sess.NewUpdate().Model(task).Column("done").Where("tenant = ?", task.Tenant).Exec(ctx)
		reply(w, http.StatusOK, map[string]any{"id": id, "done": in.Done}, err)
	})
	mux.HandleFunc("DELETE /projects/{slug}", func(w http.ResponseWriter, r *http.Request) {
		ctx, tenant, slug := r.Context(), TenantOf(r.Context()), r.PathValue("slug")
		err := sess.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
			project := u.NewSelect().Model((*Project)(nil)).Column("id").Where("tenant = ?", tenant).Where("slug = ?", slug)
			_, err := u.NewDelete().Model((*Task)(nil)).Where("tenant = ?", tenant).Where("project_id IN (?)", project).Exec(ctx)
			if err != nil {
				return err
			}
			res, err := u.NewDelete().Model((*Project)(nil)).Where("tenant = ?", tenant).Where("slug = ?", slug).Exec(ctx)
			if err == nil && res.RowsAffected == 0 {
				err = fmt.Errorf("no project %q: %w", slug, sql.ErrNoRows) // and the tasks' DELETE rolls back
			}
			return err
		})
		reply(w, http.StatusNoContent, nil, err)
	})
	mux.HandleFunc("GET /summary", func(w http.ResponseWriter, r *http.Request) {
		ctx, tenant := r.Context(), TenantOf(r.Context())
		db, err := sess.DBForKey(ctx, (*Project)(nil), "tenant", tenant) // the tenant's shard, as a bun.IDB
		if err != nil {
			reply(w, 0, nil, err)
			return
		}
		sum, err := Summarize(ctx, db, tenant)
		reply(w, http.StatusOK, sum, err)
	})
	return WithTenant(sess, ts, mux)
}

// ListProjects returns tenant's projects with their plan and tasks, in
// slug order. Outside a request (no pin in ctx) its Where on the tenant
// routes it: the scheme sends it to the tenant's shard, and the relation
// queries follow.
func ListProjects(ctx context.Context, sess *session.Session, tenant string) ([]*Project, error) {
	projects := []*Project{}
	err := sess.NewSelect().Model(&projects).Where("tenant = ?", tenant).
		Relation("Plan").Relation("Tasks", func(q *bun.SelectQuery) *bun.SelectQuery { return q.Order("id") }).
		Order("slug").Scan(ctx)
	return projects, err
}

// RecordEvent appends a line to tenant's audit log. It is repository code
// of a plain Bun app: it runs on whatever db it is given.
func RecordEvent(ctx context.Context, db bun.IDB, tenant, what string) error {
	_, err := db.NewInsert().Model(&Event{Tenant: tenant, What: what}).Exec(ctx)
	return err
}

// Summary counts a tenant's rows.
type Summary struct {
	Projects  int `json:"projects"`
	OpenTasks int `json:"open_tasks"`
	Events    int `json:"events"`
}

// Summarize counts tenant's projects, open tasks and events on db: plain
// Bun, like RecordEvent.
func Summarize(ctx context.Context, db bun.IDB, tenant string) (Summary, error) {
	var s Summary
	err := db.NewSelect().
		ColumnExpr("(SELECT count(*) FROM projects WHERE tenant = ?) AS projects", tenant).
		ColumnExpr("(SELECT count(*) FROM tasks WHERE tenant = ? AND NOT done) AS open_tasks", tenant).
		ColumnExpr("(SELECT count(*) FROM events WHERE tenant = ?) AS events", tenant).
		Scan(ctx, &s.Projects, &s.OpenTasks, &s.Events)
	return s, err
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<16)).Decode(v); err != nil {
		http.Error(w, "send a JSON body: "+err.Error(), http.StatusBadRequest)
		return false
	}
	return true
}

// reply writes v as JSON with status, or err with the status it maps to.
func reply(w http.ResponseWriter, code int, v any, err error) {
	if err != nil {
		http.Error(w, err.Error(), status(err))
		return
	}
	if v == nil {
		w.WriteHeader(code)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Open builds the session over the shards' DSNs (in shardIDs order), with
// the scheme as its three choosers and the scatter guard on (a statement
// that names no tenant fails rather than run on every shard); creates the
// tables where they are missing, and upserts the plans and tenants. hooks,
// if given, are the shards' Bun query hooks, in the same order.
func Open(ctx context.Context, dsns []string, hooks ...bun.QueryHook) (*session.Session, error) {
	if len(dsns) != len(shardIDs) {
		return nil, fmt.Errorf("want %d DSNs (%v), got %d", len(shardIDs), shardIDs, len(dsns))
	}
	scheme, err := Scheme(tenants)
	if err != nil {
		return nil, err
	}
	dialect := pgdialect.New() // one dialect for every shard: Bun keeps model metadata on it
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
	models := []any{(*Plan)(nil), (*Tenant)(nil), (*Project)(nil), (*Task)(nil), (*Event)(nil)}
	if err := sess.CreateTables(ctx, models, session.IfNotExists()); err != nil {
		return err
	}
	// Plans go to every shard, in one two-phase unit; tenants each to its own.
	_, err := sess.NewInsert().Model(&plans).
		On("CONFLICT (id) DO UPDATE").Set("name = EXCLUDED.name").Set("max_tasks = EXCLUDED.max_tasks").Exec(ctx)
	if err != nil {
		return err
	}
	var ts []*Tenant
	for id := range tenants {
		ts = append(ts, &Tenant{ID: id, Name: strings.ToUpper(id[:1]) + id[1:]})
	}
	_, err = sess.NewInsert().Model(&ts).On("CONFLICT (id) DO NOTHING").Exec(ctx)
	return err
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
		{"PUT", "/projects/rockets", "acme", "", `{"name":"Rockets","plan":1}`},
		{"PUT", "/projects/rockets", "acme", "", `{"name":"Rockets","plan":2}`},
		{"POST", "/projects/rockets/tasks", "acme", "", `{"titles":["buy anvils","call the coyote"]}`},
		{"PUT", "/projects/volcano", "", "globex.example.com", `{"name":"Volcano","plan":1}`},
		{"POST", "/projects/volcano/tasks", "globex", "", `{"titles":["dig","dig deeper","dig again","lava"]}`},
		{"PUT", "/projects/staplers", "initech", "", `{"name":"Staplers","plan":9}`},
		{"PATCH", "/tasks/1", "acme", "", `{"done":true}`},
		{"GET", "/projects", "acme", "", ""},
		{"GET", "/projects", "", "globex.example.com", ""},
		{"GET", "/summary", "acme", "", ""},
		{"DELETE", "/projects/rockets", "acme", "", ""},
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
