// Command tenant_http is a multi-tenant HTTP service over sharded
// PostgreSQL: a middleware finds each request's tenant (the X-Tenant header,
// or the first label of the host name) and puts the tenant's shard in the
// request context with session.WithShardID. Every statement the handlers run
// with that context, and every relation query and goroutine they start from
// it, then goes to that shard and no other, without the handlers naming it.
//
// With no flags it starts two temporary local PostgreSQL servers, serves the
// API on a local test server, prints a short tour of requests and stops:
//
//	go run ./examples/tenant_http
//
// With -listen it serves until interrupted; -dsns names two existing
// databases to use instead of temporary servers (the service creates its
// table there if it is missing):
//
//	go run ./examples/tenant_http -listen 127.0.0.1:8080 -dsns postgres://...,postgres://...
//	curl -H 'X-Tenant: acme' -d 'hello' http://127.0.0.1:8080/notes
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
	"strings"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/schema"
	"golang.org/x/sync/errgroup"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/pgtest"
	"github.com/bunshard/bunshard/session"
)

// Note is a tenant's note. Several tenants may share a shard, so every row
// names its tenant and every statement filters on it.
type Note struct {
	bun.BaseModel `bun:"table:notes"`
	session.Token

	ID      int64     `bun:",pk,autoincrement" json:"id"`
	Tenant  string    `bun:",notnull" json:"-"`
	Body    string    `bun:",notnull" json:"body"`
	Created time.Time `bun:",notnull,default:current_timestamp" json:"created"`
}

// Tenants maps each tenant to the shard that holds its data.
type Tenants map[string]session.ShardID

// tenants of the tour: acme and initech share shard s1.
var tenants = Tenants{"acme": "s1", "initech": "s1", "globex": "s2"}

var shardIDs = []session.ShardID{"s1", "s2"}

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

// WithTenantShard is the per-request routing middleware. It answers 400 when
// the request names no tenant and 404 when the tenant is unknown; otherwise
// it serves next with a context that pins every statement to the tenant's
// shard, carries the tenant (TenantOf), and lets reads see the request's own
// writes should the shard have read replicas.
func WithTenantShard(sess *session.Session, ts Tenants, next http.Handler) http.Handler {
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

// Handler returns the API: GET and POST /notes, GET /summary, each behind
// WithTenantShard.
func Handler(sess *session.Session, ts Tenants) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /notes", func(w http.ResponseWriter, r *http.Request) {
		var notes []Note
		err := sess.NewSelect().Model(&notes).Where("tenant = ?", TenantOf(r.Context())).Order("id").Scan(r.Context())
		reply(w, http.StatusOK, notes, err)
	})
	mux.HandleFunc("POST /notes", func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(io.LimitReader(r.Body, 1<<16))
		if err != nil || len(body) == 0 {
			http.Error(w, "send the note as the request body", http.StatusBadRequest)
			return
		}
		n := &Note{Tenant: TenantOf(r.Context()), Body: string(body)}
		err = sess.Insert(r.Context(), n) // placed on the tenant's shard by the context
		reply(w, http.StatusCreated, n, err)
	})
	mux.HandleFunc("GET /summary", func(w http.ResponseWriter, r *http.Request) {
		// Two statements at once, from goroutines: the shard travels in the
		// context, so both run on the tenant's shard.
		var (
			count int
			last  Note
		)
		g, ctx := errgroup.WithContext(r.Context())
		tenant := TenantOf(ctx)
		g.Go(func() (err error) {
			count, err = sess.NewSelect().Model((*Note)(nil)).Where("tenant = ?", tenant).Count(ctx)
			return err
		})
		g.Go(func() error {
			err := sess.NewSelect().Model(&last).Where("tenant = ?", tenant).Order("id DESC").Limit(1).Scan(ctx)
			if errors.Is(err, sql.ErrNoRows) {
				return nil
			}
			return err
		})
		err := g.Wait()
		shard, _ := session.ShardIDFromContext(r.Context())
		reply(w, http.StatusOK, map[string]any{"tenant": tenant, "shard": shard, "notes": count, "last": last.Body}, err)
	})
	return WithTenantShard(sess, ts, mux)
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

// Open builds the session over the shards' DSNs (in shardIDs order) and
// creates the notes table where it is missing. Only requests pinned to a
// shard are served, so the choosers refuse everything else: a statement
// without a tenant is a bug, never a scatter.
func Open(ctx context.Context, dsns []string, hooks ...bun.QueryHook) (*session.Session, error) {
	if len(dsns) != len(shardIDs) {
		return nil, fmt.Errorf("want %d DSNs (%v), got %d", len(shardIDs), shardIDs, len(dsns))
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
	sess, err := session.New(shards, noTenant, noTenantKey, noTenantStmt)
	if err != nil {
		return nil, err
	}
	if err := sess.CreateTables(ctx, []any{(*Note)(nil)}, session.IfNotExists()); err != nil {
		sess.Close()
		return nil, err
	}
	return sess, nil
}

var errNoTenant = errors.New("no tenant in the context: route the request through WithTenantShard")

// The three choosers only say that a tenant is missing.
var (
	noTenant = chooser.ShardChooserFunc(func(context.Context, *schema.Table, any) (session.ShardID, error) {
		return "", errNoTenant
	})
	noTenantKey = chooser.IdentityChooserFunc(func(context.Context, chooser.Key) (chooser.Target, error) {
		return chooser.Target{}, errNoTenant
	})
	noTenantStmt = chooser.ExecuteChooserFunc(func(context.Context, *chooser.Statement) (chooser.Target, error) {
		return chooser.Target{}, errNoTenant
	})
)

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
		set, err := pgtest.Start(len(shardIDs))
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
		fmt.Fprintf(w, "%s %s (%s) -> %d %s\n", method, path, who, resp.StatusCode, stripTimes(strings.TrimSpace(string(out))))
		return nil
	}
	steps := []struct{ method, path, tenant, host, body string }{
		{"POST", "/notes", "acme", "", "buy anvils"},
		{"POST", "/notes", "acme", "", "call the coyote"},
		{"POST", "/notes", "", "globex.example.com", "hire a volcano"},
		{"POST", "/notes", "initech", "", "find the stapler"},
		{"GET", "/notes", "acme", "", ""},
		{"GET", "/notes", "", "initech.example.com", ""},
		{"GET", "/summary", "globex", "", ""},
		{"GET", "/summary", "acme", "", ""},
		{"GET", "/notes", "umbrella", "", ""},
		{"GET", "/notes", "", "", ""},
	}
	for _, s := range steps {
		if err := do(s.method, s.path, s.tenant, s.host, s.body); err != nil {
			return err
		}
	}
	return nil
}

// stripTimes drops the creation times from JSON replies, so the tour's output
// is the same on every run.
func stripTimes(s string) string {
	for {
		i := strings.Index(s, `,"created":"`)
		if i < 0 {
			return s
		}
		j := strings.Index(s[i+len(`,"created":"`):], `"`)
		if j < 0 {
			return s
		}
		s = s[:i] + s[i+len(`,"created":"`)+j+1:]
	}
}
