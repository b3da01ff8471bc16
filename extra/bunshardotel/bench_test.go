package bunshardotel_test

import (
	"context"
	"database/sql"
	"testing"
	"time"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"
	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/extra/bunshardotel"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
	"github.com/bunshard/bunshard/shardtest"
)

// BenchmarkObserve is the cost of observing: each workload runs on the
// same four shards through a session with no observer ("off"), and with
// bunshardotel on OpenTelemetry's no-op tracer and meter providers
// ("noop"). The ratio noop/off is what installing the observer costs when
// nothing is exported; "off" is the library with observing compiled in but
// not installed (a nil check per hook; TestObserveOffAllocatesNothing).
//
// The pair sub-benchmarks run both in one loop, alternating, and report
// the ratio.
//
//	go test -run '^$' -bench BenchmarkObserve -benchmem -count 5 ./extra/bunshardotel/
func BenchmarkObserve(b *testing.B) {
	ctx := context.Background()
	dsns := shardtest.Shared().NewDatabases(ctx, b, "obench")
	dialect := pgdialect.New()
	shards := map[session.ShardID]bun.IDB{}
	for i, id := range weather.Shards {
		db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN(dsns[i]))), dialect)
		b.Cleanup(func() { db.Close() })
		if i == 0 {
			weather.Register(db)
		}
		if err := weather.CreateSchema(ctx, db); err != nil {
			b.Fatalf("create schema on %s: %v", id, err)
		}
		shards[id] = db
	}
	obs, err := bunshardotel.New(bunshardotel.WithTracerProvider(tracenoop.NewTracerProvider()),
		bunshardotel.WithMeterProvider(metricnoop.NewMeterProvider()))
	if err != nil {
		b.Fatal(err)
	}
	mk := func(opts ...session.Option) *session.Session {
		opts = append([]session.Option{session.WithShardOrder(weather.Shards...)}, opts...)
		s, err := session.New(shards, weather.ShardChooser, chooser.All, weather.ByContinent, opts...)
		if err != nil {
			b.Fatal(err)
		}
		return s
	}
	sessions := []struct {
		name string
		s    *session.Session
	}{{"off", mk()}, {"noop", mk(session.WithObserver(obs))}}
	d := weather.Generate(400, 0, 1) // 100 locations per shard
	if err := sessions[0].s.Insert(ctx, &d.Locations); err != nil {
		b.Fatal(err)
	}
	asia := session.WithShardID(ctx, "asia")
	workloads := []struct {
		name string
		run  func(*session.Session) error
	}{
		{"PinnedGet", func(s *session.Session) error {
			var loc weather.Location
			return s.Get(asia, &loc, 2)
		}},
		{"FanOut4", func(s *session.Session) error {
			var locs []weather.Location
			return s.NewSelect().Model(&locs).Order("id").Limit(20).Scan(ctx)
		}},
	}
	for _, w := range workloads {
		// pair alternates the two sessions in one loop and reports each
		// one's mean time and their ratio: on a loaded machine the drift
		// between two separate runs can exceed the difference measured.
		b.Run(w.name+"/pair", func(b *testing.B) {
			var spent [2]time.Duration
			for b.Loop() {
				for i, v := range sessions {
					start := time.Now()
					if err := w.run(v.s); err != nil {
						b.Fatal(err)
					}
					spent[i] += time.Since(start)
				}
			}
			n := float64(b.N)
			b.ReportMetric(float64(spent[0].Nanoseconds())/n, "off-ns/op")
			b.ReportMetric(float64(spent[1].Nanoseconds())/n, "noop-ns/op")
			b.ReportMetric(float64(spent[1])/float64(spent[0]), "noop/off")
		})
		for _, v := range sessions {
			b.Run(w.name+"/"+v.name, func(b *testing.B) {
				for b.Loop() {
					if err := w.run(v.s); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
