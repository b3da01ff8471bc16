package bunshardotel_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/cespare/xxhash/v2"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"github.com/uptrace/bun/extra/bunotel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/goleak"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/extra/bunshardotel"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
	"github.com/bunshard/bunshard/shardtest"
)

func TestMain(m *testing.M) {
	os.Exit(shardtest.Main(m, 4, func() error { return goleak.Find() }))
}

// rig is four weather shards on four real servers, each *bun.DB with
// bunotel's query hook, and a session observed by bunshardotel, all on one
// in-memory span exporter and one manual metric reader.
type rig struct {
	s      *session.Session
	dbs    map[session.ShardID]*bun.DB
	spans  *tracetest.InMemoryExporter
	reader *sdkmetric.ManualReader
	tracer trace.Tracer
}

func newRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(ctx)
		_ = mp.Shutdown(ctx)
	})
	dsns := shardtest.Shared().NewDatabases(ctx, t, "otel")
	dialect := pgdialect.New()
	r := &rig{dbs: map[session.ShardID]*bun.DB{}, spans: spans, reader: reader, tracer: tp.Tracer("test")}
	shards := map[session.ShardID]bun.IDB{}
	for i, id := range weather.Shards {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsns[i]))), dialect)
		t.Cleanup(func() { db.Close() })
		if i == 0 {
			weather.Register(db)
		}
		if err := weather.CreateSchema(ctx, db); err != nil {
			t.Fatalf("create schema on %s: %v", id, err)
		}
		db = db.WithQueryHook(bunotel.NewQueryHook(bunotel.WithTracerProvider(tp), bunotel.WithMeterProvider(mp)))
		r.dbs[id], shards[id] = db, db
	}
	obs, err := bunshardotel.New(bunshardotel.WithTracerProvider(tp), bunshardotel.WithMeterProvider(mp))
	if err != nil {
		t.Fatalf("bunshardotel.New: %v", err)
	}
	r.s, err = session.New(shards, weather.ShardChooser, chooser.All, weather.ByContinent,
		session.WithShardOrder(weather.Shards...), session.WithObserver(obs))
	if err != nil {
		t.Fatalf("session.New: %v", err)
	}
	return r
}

// seed inserts two locations per shard (ids 1..8) and forgets the spans
// and metrics that made.
func (r *rig) seed(t *testing.T) {
	t.Helper()
	d := weather.Generate(8, 0, 1)
	if err := r.s.Insert(context.Background(), &d.Locations); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	r.spans.Reset()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil { // the counters are cumulative: remember
		t.Fatalf("Collect: %v", err)
	}
}

func (r *rig) metrics(t *testing.T) metricdata.ResourceMetrics {
	t.Helper()
	var rm metricdata.ResourceMetrics
	if err := r.reader.Collect(context.Background(), &rm); err != nil {
		t.Fatalf("Collect: %v", err)
	}
	return rm
}

// named returns the ended spans called name.
func named(spans tracetest.SpanStubs, name string) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.Name == name {
			out = append(out, s)
		}
	}
	return out
}

// one returns the only ended span called name.
func one(t *testing.T, spans tracetest.SpanStubs, name string) tracetest.SpanStub {
	t.Helper()
	got := named(spans, name)
	if len(got) != 1 {
		t.Fatalf("%d spans named %q; want 1 (all: %v)", len(got), name, names(spans))
	}
	return got[0]
}

func names(spans tracetest.SpanStubs) []string {
	var out []string
	for _, s := range spans {
		out = append(out, s.Name)
	}
	return out
}

// children returns the spans whose parent is p.
func children(spans tracetest.SpanStubs, p tracetest.SpanStub) tracetest.SpanStubs {
	var out tracetest.SpanStubs
	for _, s := range spans {
		if s.Parent.SpanID() == p.SpanContext.SpanID() && s.Parent.TraceID() == p.SpanContext.TraceID() {
			out = append(out, s)
		}
	}
	return out
}

func attr(s tracetest.SpanStub, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// wantAttrs checks span attributes, each given as the value's Emit().
func wantAttrs(t *testing.T, s tracetest.SpanStub, want map[attribute.Key]string) {
	t.Helper()
	for k, w := range want {
		v, ok := attr(s, k)
		if !ok {
			t.Errorf("span %s: no attribute %s; want %s", s.Name, k, w)
			continue
		}
		if got := v.Emit(); got != w {
			t.Errorf("span %s: %s = %s; want %s", s.Name, k, got, w)
		}
	}
}

func isChild(t *testing.T, child, parent tracetest.SpanStub) {
	t.Helper()
	if child.Parent.SpanID() != parent.SpanContext.SpanID() {
		t.Errorf("span %s's parent is %s; want %s (%s)", child.Name, child.Parent.SpanID(), parent.Name, parent.SpanContext.SpanID())
	}
}

// find returns the data of metric name, failing when it is missing.
func find(t *testing.T, rm metricdata.ResourceMetrics, name string) metricdata.Aggregation {
	t.Helper()
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return m.Data
			}
		}
	}
	t.Fatalf("no metric %s", name)
	return nil
}

func exported(rm metricdata.ResourceMetrics, name string) bool {
	for _, sm := range rm.ScopeMetrics {
		for _, m := range sm.Metrics {
			if m.Name == name {
				return true
			}
		}
	}
	return false
}

// matches reports whether set holds every attribute of want.
func matches(set attribute.Set, want []attribute.KeyValue) bool {
	for _, kv := range want {
		v, ok := set.Value(kv.Key)
		if !ok || v != kv.Value {
			return false
		}
	}
	return true
}

// sum returns the value of counter name over the points matching want; a
// counter never added to has no points, and is not exported at all.
func sum(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) int64 {
	t.Helper()
	if !exported(rm, name) {
		return 0
	}
	s, ok := find(t, rm, name).(metricdata.Sum[int64])
	if !ok {
		t.Fatalf("metric %s is %T; want an int64 sum", name, find(t, rm, name))
	}
	var n int64
	for _, p := range s.DataPoints {
		if matches(p.Attributes, want) {
			n += p.Value
		}
	}
	return n
}

// hist returns the count and sum of int64 histogram name over the points
// matching want.
func hist(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) (count uint64, total int64) {
	t.Helper()
	h, ok := find(t, rm, name).(metricdata.Histogram[int64])
	if !ok {
		t.Fatalf("metric %s is %T; want an int64 histogram", name, find(t, rm, name))
	}
	for _, p := range h.DataPoints {
		if matches(p.Attributes, want) {
			count += p.Count
			total += p.Sum
		}
	}
	return count, total
}

// latencies returns the count of float64 histogram name per shard
// (bunshard.shard) over the points matching want.
func latencies(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) map[string]uint64 {
	t.Helper()
	h, ok := find(t, rm, name).(metricdata.Histogram[float64])
	if !ok {
		t.Fatalf("metric %s is %T; want a float64 histogram", name, find(t, rm, name))
	}
	out := map[string]uint64{}
	for _, p := range h.DataPoints {
		if matches(p.Attributes, want) {
			id, _ := p.Attributes.Value(bunshardotel.KeyShard)
			out[id.AsString()] += p.Count
		}
	}
	return out
}

// TestFanOutSelect: an ordered select over all four shards makes one
// statement span under the caller's, with the route and fan-out, four
// shard children carrying their shard id and rows read, each the parent of
// bunotel's SELECT span on that shard, and a merge child; the metrics count
// one latency per shard, a fan-out of 4 and one scatter.
func TestFanOutSelect(t *testing.T) {
	r := newRig(t)
	r.seed(t)
	ctx, root := r.tracer.Start(context.Background(), "request")
	var locs []weather.Location
	err := r.s.NewSelect().Model(&locs).Order("id").Scan(ctx)
	root.End()
	if err != nil || len(locs) != 8 {
		t.Fatalf("Scan = %d rows, %v; want 8 rows", len(locs), err)
	}
	spans := r.spans.GetSpans()
	req := one(t, spans, "request")
	stmt := one(t, spans, "bunshard.select")
	isChild(t, stmt, req)
	wantAttrs(t, stmt, map[attribute.Key]string{
		bunshardotel.KeyOp: "select", bunshardotel.KeyModel: "Location", bunshardotel.KeyRouteBy: "chooser",
		bunshardotel.KeyFanout: "4", bunshardotel.KeyScatter: "true", bunshardotel.KeyRows: "8",
		bunshardotel.KeyShards: `["north_america","asia","europe","south_america"]`,
	})
	shardSpans := named(spans, "bunshard.shard")
	if len(shardSpans) != 4 {
		t.Fatalf("%d shard spans; want 4: %v", len(shardSpans), names(spans))
	}
	var seen []string
	for _, sh := range shardSpans {
		isChild(t, sh, stmt)
		id, _ := attr(sh, bunshardotel.KeyShard)
		seen = append(seen, id.AsString())
		wantAttrs(t, sh, map[attribute.Key]string{bunshardotel.KeyRowsRead: "2"})
		// bunotel's span of the shard's SELECT is the shard span's child.
		kids := children(spans, sh)
		if len(kids) != 1 || kids[0].Name != "SELECT" {
			t.Errorf("shard %s span's children = %v; want bunotel's one SELECT", id.AsString(), names(kids))
		}
	}
	slices.Sort(seen)
	if want := slices.Sorted(slices.Values([]string{"asia", "europe", "north_america", "south_america"})); !slices.Equal(seen, want) {
		t.Errorf("shard spans carry %v; want %v", seen, want)
	}
	m := one(t, spans, "bunshard.merge")
	isChild(t, m, stmt)
	wantAttrs(t, m, map[attribute.Key]string{bunshardotel.KeyInputs: "4", bunshardotel.KeyRows: "8"})
	if n := len(named(spans, "SELECT")); n != 4 {
		t.Errorf("%d bunotel SELECT spans; want 4", n)
	}

	rm := r.metrics(t)
	sel := bunshardotel.KeyOp.String("select")
	if got := latencies(t, rm, "bunshard.shard.duration", sel); len(got) != 4 ||
		got["asia"] != 1 || got["europe"] != 1 || got["north_america"] != 1 || got["south_america"] != 1 {
		t.Errorf("bunshard.shard.duration counts by shard = %v; want 1 on each of the 4", got)
	}
	if c, s := hist(t, rm, "bunshard.statement.fanout", sel); c != 1 || s != 4 {
		t.Errorf("bunshard.statement.fanout{select} count %d sum %d; want 1 and 4", c, s)
	}
	if n := sum(t, rm, "bunshard.statement.scatter", sel); n != 1 {
		t.Errorf("bunshard.statement.scatter{select} = %d; want 1", n)
	}
}

// TestPinnedGet: a Get pinned by the context makes a statement span by
// "context" with fan-out 1 and one row, one shard span on the pinned shard
// (rows read 1) holding bunotel's SELECT, no merge, and no scatter.
func TestPinnedGet(t *testing.T) {
	r := newRig(t)
	r.seed(t)
	ctx, root := r.tracer.Start(context.Background(), "request")
	var loc weather.Location
	err := r.s.Get(session.WithShardID(ctx, "asia"), &loc, 2) // Generate puts id 2 in Asia
	root.End()
	if err != nil || loc.Continent != "Asia" {
		t.Fatalf("Get = %+v, %v; want location 2 in Asia", loc, err)
	}
	spans := r.spans.GetSpans()
	get := one(t, spans, "bunshard.get")
	isChild(t, get, one(t, spans, "request"))
	wantAttrs(t, get, map[attribute.Key]string{
		bunshardotel.KeyOp: "get", bunshardotel.KeyModel: "Location", bunshardotel.KeyRouteBy: "context",
		bunshardotel.KeyFanout: "1", bunshardotel.KeyScatter: "false", bunshardotel.KeyRows: "1",
		bunshardotel.KeyShards: `["asia"]`,
	})
	sh := one(t, spans, "bunshard.shard")
	isChild(t, sh, get)
	wantAttrs(t, sh, map[attribute.Key]string{bunshardotel.KeyShard: "asia", bunshardotel.KeyRowsRead: "1"})
	if kids := children(spans, sh); len(kids) != 1 || kids[0].Name != "SELECT" {
		t.Errorf("shard span's children = %v; want bunotel's one SELECT", names(kids))
	}
	if n := len(named(spans, "bunshard.merge")); n != 0 {
		t.Errorf("%d merge spans for a one-shard Get; want 0", n)
	}

	rm := r.metrics(t)
	get1 := bunshardotel.KeyOp.String("get")
	if got := latencies(t, rm, "bunshard.shard.duration", get1); len(got) != 1 || got["asia"] != 1 {
		t.Errorf("bunshard.shard.duration{get} counts by shard = %v; want asia 1 only", got)
	}
	if c, s := hist(t, rm, "bunshard.statement.fanout", get1); c != 1 || s != 1 {
		t.Errorf("bunshard.statement.fanout{get} count %d sum %d; want 1 and 1", c, s)
	}
	if n := sum(t, rm, "bunshard.statement.scatter"); n != 0 {
		t.Errorf("bunshard.statement.scatter = %d after a pinned Get; want 0", n)
	}
}

// TestTwoPhaseCommit: a TwoPhase unit writing on two shards makes a
// "bunshard.commit" span (outcome committed, its writers and coordinator)
// whose children are its phases in order, prepare, decide and commit
// prepared; bunotel's PREPARE TRANSACTION span is the prepare phase's
// child and COMMIT PREPARED the commit phase's; the outcome counter counts
// one commit.
func TestTwoPhaseCommit(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	u := r.s.Begin(session.TwoPhase())
	a := &weather.Location{ID: 101, Continent: "Asia", City: "A"}
	b := &weather.Location{ID: 102, Continent: "Europe", City: "B"}
	if err := u.Add(a, b); err != nil {
		t.Fatalf("Add: %v", err)
	}
	if err := u.Commit(ctx); err != nil {
		t.Fatalf("Commit: %v", err)
	}
	spans := r.spans.GetSpans()
	c := one(t, spans, "bunshard.commit")
	wantAttrs(t, c, map[attribute.Key]string{
		bunshardotel.KeyOutcome: "committed", bunshardotel.KeyWriters: `["asia","europe"]`,
		bunshardotel.KeyCoordinator: "north_america",
	})
	var phases []string
	for _, s := range children(spans, c) {
		if strings.HasPrefix(s.Name, "bunshard.commit.") {
			phases = append(phases, strings.TrimPrefix(s.Name, "bunshard.commit."))
		}
	}
	// children are in end order; each phase ends as the next starts.
	if want := []string{session.PhasePrepare, session.PhaseDecide, session.PhaseCommitPrepared}; !slices.Equal(phases, want) {
		t.Errorf("commit phases = %q; want %q", phases, want)
	}
	prep := one(t, spans, "bunshard.commit.prepare")
	commit := one(t, spans, "bunshard.commit.commit prepared")
	var prepares, commits int
	for _, s := range spans {
		stmt, _ := attr(s, "db.statement")
		switch {
		case strings.HasPrefix(stmt.AsString(), "PREPARE TRANSACTION"):
			prepares++
			isChild(t, s, prep)
		case strings.HasPrefix(stmt.AsString(), "COMMIT PREPARED"):
			commits++
			isChild(t, s, commit)
		}
	}
	// The coordinator north_america did not write: it holds only the
	// decision, and both writers prepare and commit prepared.
	if prepares != 2 || commits != 2 {
		t.Errorf("bunotel spans: %d PREPARE TRANSACTION, %d COMMIT PREPARED; want 2 and 2", prepares, commits)
	}
	rm := r.metrics(t)
	if n := sum(t, rm, "bunshard.twophase.commits", bunshardotel.KeyOutcome.String("committed")); n != 1 {
		t.Errorf("bunshard.twophase.commits{committed} = %d; want 1", n)
	}
	if n := sum(t, rm, "bunshard.twophase.commits"); n != 1 {
		t.Errorf("bunshard.twophase.commits = %d in all; want 1", n)
	}
}

// TestRecover: a bunshard prepared transaction with no decision record
// (a Commit that crashed after PREPARE) is rolled back by Recover, which
// makes a "bunshard.recover" span saying so and counts it.
func TestRecover(t *testing.T) {
	r := newRig(t)
	ctx := context.Background()
	// The decision table exists once a Recover (or two-phase Commit) ran.
	if _, err := r.s.Recover(ctx); err != nil {
		t.Fatalf("Recover: %v", err)
	}
	coord := weather.Shards[0]
	txid := fmt.Sprintf("%024x%08x", 7, uint32(xxhash.Sum64String(string(coord))))
	gid := "bunshard_" + txid + "_europe"
	conn, err := r.dbs["europe"].Conn(ctx)
	if err != nil {
		t.Fatalf("Conn: %v", err)
	}
	for _, q := range []string{"BEGIN", "INSERT INTO weather_locations (id, continent, city) VALUES (900, 'Europe', 'X')",
		"PREPARE TRANSACTION '" + gid + "'"} {
		if _, err := conn.ExecContext(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	conn.Close()
	r.spans.Reset()
	got, err := r.s.Recover(ctx)
	if err != nil || !slices.Equal(got.RolledBack, []string{gid}) {
		t.Fatalf("Recover = %+v, %v; want %s rolled back", got, err, gid)
	}
	rec := one(t, r.spans.GetSpans(), "bunshard.recover")
	wantAttrs(t, rec, map[attribute.Key]string{
		"bunshard.recover.rolled_back": "1", "bunshard.recover.committed": "0", "bunshard.recover.left": "0",
	})
	var rollbacks int
	for _, s := range r.spans.GetSpans() {
		if stmt, _ := attr(s, "db.statement"); strings.HasPrefix(stmt.AsString(), "ROLLBACK PREPARED") {
			rollbacks++
			isChild(t, s, rec)
		}
	}
	if rollbacks != 1 {
		t.Errorf("%d bunotel ROLLBACK PREPARED spans; want 1 under bunshard.recover", rollbacks)
	}
	if n := sum(t, r.metrics(t), "bunshard.recover.transactions", bunshardotel.KeyResult.String("rolled_back")); n != 1 {
		t.Errorf("bunshard.recover.transactions{rolled_back} = %d; want 1", n)
	}
}

// TestPartialResult: under AllowPartial, a select whose europe shard
// fails returns the other shards' rows with a *PartialError; its span says
// partial and failed, the europe shard's span carries the error, and
// bunshard.statement.partial counts one.
func TestPartialResult(t *testing.T) {
	r := newRig(t)
	r.seed(t)
	ctx := context.Background()
	if _, err := r.dbs["europe"].ExecContext(ctx, "ALTER TABLE weather_locations RENAME TO gone"); err != nil {
		t.Fatalf("rename: %v", err)
	}
	var locs []weather.Location
	err := r.s.NewSelect().Model(&locs).Order("id").Options(session.AllowPartial()).Scan(ctx)
	var pe *session.PartialError
	if !errors.As(err, &pe) || len(locs) != 6 {
		t.Fatalf("Scan = %d rows, %v; want 6 rows and a *PartialError", len(locs), err)
	}
	spans := r.spans.GetSpans()
	stmt := one(t, spans, "bunshard.select")
	wantAttrs(t, stmt, map[attribute.Key]string{bunshardotel.KeyPartial: "true", bunshardotel.KeyRows: "6"})
	if stmt.Status.Code != codes.Error {
		t.Errorf("statement span status = %v; want Error", stmt.Status)
	}
	for _, sh := range named(spans, "bunshard.shard") {
		id, _ := attr(sh, bunshardotel.KeyShard)
		if failed := sh.Status.Code == codes.Error; failed != (id.AsString() == "europe") {
			t.Errorf("shard %s span status = %v; want Error on europe only", id.AsString(), sh.Status)
		}
	}
	rm := r.metrics(t)
	if n := sum(t, rm, "bunshard.statement.partial", bunshardotel.KeyOp.String("select")); n != 1 {
		t.Errorf("bunshard.statement.partial{select} = %d; want 1", n)
	}
}
