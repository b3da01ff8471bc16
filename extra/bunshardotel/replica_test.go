package bunshardotel_test

import (
	"context"
	"database/sql"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	"go.opentelemetry.io/otel/attribute"
	sdkmetric "go.opentelemetry.io/otel/sdk/metric"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/extra/bunshardotel"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
	"github.com/bunshard/bunshard/shardtest"
)

// gauge returns the value of int64 or float64 gauge name at the point whose
// attributes hold want, and whether there is one.
func gauge(t *testing.T, rm metricdata.ResourceMetrics, name string, want ...attribute.KeyValue) (float64, bool) {
	t.Helper()
	switch g := find(t, rm, name).(type) {
	case metricdata.Gauge[int64]:
		for _, p := range g.DataPoints {
			if matches(p.Attributes, want) {
				return float64(p.Value), true
			}
		}
	case metricdata.Gauge[float64]:
		for _, p := range g.DataPoints {
			if matches(p.Attributes, want) {
				return p.Value, true
			}
		}
	default:
		t.Fatalf("metric %s is %T; want a gauge", name, g)
	}
	return 0, false
}

// TestReplicaChoice: a read of a shard with a streaming replica makes a
// "bunshard.replica" span under the shard's span that says where the read ran
// and why (the replica; the primary when WithPrimary asks for it), counted in
// bunshard.replica.reads; a health check records bunshard.replica.healthy
// and bunshard.replica.lag, and a stopped replica's check records it down.
func TestReplicaChoice(t *testing.T) {
	ctx := context.Background()
	if shardtest.Shared().External() {
		t.Skip("this test starts a hot standby of its own server; BUNSHARD_TEST_PG names external servers")
	}
	spans := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(spans))
	reader := sdkmetric.NewManualReader()
	mp := sdkmetric.NewMeterProvider(sdkmetric.WithReader(reader))
	t.Cleanup(func() {
		_ = tp.Shutdown(ctx)
		_ = mp.Shutdown(ctx)
	})
	dsns := shardtest.Shared().NewDatabases(ctx, t, "otelreplica")
	dialect := pgdialect.New()
	open := func(dsn string) *bun.DB {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsn),
			pgdriver.WithConnParams(map[string]any{"synchronous_commit": "on"}))), dialect)
		t.Cleanup(func() { db.Close() })
		return db
	}
	shards := map[session.ShardID]bun.IDB{}
	for i, id := range weather.Shards {
		db := open(dsns[i])
		if i == 0 {
			weather.Register(db)
		}
		if err := weather.CreateSchema(ctx, db); err != nil {
			t.Fatalf("create schema on %s: %v", id, err)
		}
		shards[id] = db
	}
	// asia is weather.Shards[1], on server 1: its replica streams that whole
	// cluster, the test's database included.
	const asia = session.ShardID("asia")
	srv, err := shardtest.Shared().Server(1).StartReplica(ctx)
	if err != nil {
		t.Fatalf("StartReplica: %v", err)
	}
	stopped := false
	t.Cleanup(func() {
		if !stopped {
			_ = srv.Stop(context.Background())
		}
	})
	u, err := url.Parse(dsns[1])
	if err != nil {
		t.Fatal(err)
	}
	replica := open(srv.DSN(strings.TrimPrefix(u.Path, "/")))

	obs, err := bunshardotel.New(bunshardotel.WithTracerProvider(tp), bunshardotel.WithMeterProvider(mp))
	if err != nil {
		t.Fatalf("bunshardotel.New: %v", err)
	}
	s, err := session.New(shards, weather.ShardChooser, chooser.All, weather.ByContinent,
		session.WithShardOrder(weather.Shards...), session.WithObserver(obs),
		session.WithReplicas(asia, replica), session.WithReplicaCheck(time.Hour, 5*time.Second))
	if err != nil {
		t.Fatalf("session.New: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })

	d := weather.Generate(8, 0, 1)
	if err := s.Insert(ctx, &d.Locations); err != nil {
		t.Fatalf("Insert: %v", err)
	}
	var want int
	for _, l := range d.Locations {
		if weather.ShardOfContinent[l.Continent] == asia {
			want++
		}
	}
	if want == 0 {
		t.Fatal("the fixture put no location on asia")
	}
	// Wait until the replica has replayed the inserts, so that a read of it
	// is a read of the same rows.
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := replica.NewSelect().Model((*weather.Location)(nil)).Count(ctx)
		if err == nil && int(n) == want {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("replica has %d locations (%v) after 30 s; want %d", n, err, want)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := s.CheckReplicas(ctx); err != nil {
		t.Fatalf("CheckReplicas: %v", err)
	}
	spans.Reset()

	read := func(ctx context.Context) {
		t.Helper()
		var locs []weather.Location
		if err := s.NewSelect().Model(&locs).Scan(session.WithShardID(ctx, asia)); err != nil || len(locs) != want {
			t.Fatalf("Scan of asia = %d rows, %v; want %d", len(locs), err, want)
		}
	}
	choice := func(reason string, replicaIndex int) {
		t.Helper()
		got := spans.GetSpans()
		sh := one(t, got, "bunshard.shard")
		rep := one(t, got, "bunshard.replica")
		isChild(t, rep, sh)
		wantAttrs(t, rep, map[attribute.Key]string{
			bunshardotel.KeyShard: "asia", bunshardotel.KeyReason: reason,
			bunshardotel.KeyReplica: attribute.IntValue(replicaIndex).Emit(),
		})
		spans.Reset()
	}
	read(ctx)
	choice("replica", 0)
	read(session.WithPrimary(ctx))
	choice("primary requested", -1)

	rm := func() metricdata.ResourceMetrics {
		var rm metricdata.ResourceMetrics
		if err := reader.Collect(ctx, &rm); err != nil {
			t.Fatalf("Collect: %v", err)
		}
		return rm
	}
	m := rm()
	if n := sum(t, m, "bunshard.replica.reads", bunshardotel.KeyReason.String("replica"), bunshardotel.KeyReplica.Int(0)); n != 1 {
		t.Errorf("bunshard.replica.reads{replica} = %d; want 1", n)
	}
	if n := sum(t, m, "bunshard.replica.reads", bunshardotel.KeyReason.String("primary requested")); n != 1 {
		t.Errorf("bunshard.replica.reads{primary requested} = %d; want 1", n)
	}
	at := []attribute.KeyValue{bunshardotel.KeyShard.String("asia"), bunshardotel.KeyReplica.Int(0)}
	if v, ok := gauge(t, m, "bunshard.replica.healthy", at...); !ok || v != 1 {
		t.Errorf("bunshard.replica.healthy = %v (recorded %v); want 1", v, ok)
	}
	if lag, ok := gauge(t, m, "bunshard.replica.lag", at...); !ok || lag < 0 || lag > 60 {
		t.Errorf("bunshard.replica.lag = %v s (recorded %v); want a lag of a caught-up replica, 0 to 60 s", lag, ok)
	}

	// A replica that stopped: its check fails and records it down.
	stopped = true
	if err := srv.Stop(ctx); err != nil {
		t.Fatalf("Stop replica: %v", err)
	}
	_ = s.CheckReplicas(ctx) // reports the replica's failure; the gauge is what is checked
	if v, ok := gauge(t, rm(), "bunshard.replica.healthy", at...); !ok || v != 0 {
		t.Errorf("after the replica stopped, bunshard.replica.healthy = %v (recorded %v); want 0", v, ok)
	}
	spans.Reset()
	read(ctx)
	choice("no replica ready", -1)
}
