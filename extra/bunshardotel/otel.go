package bunshardotel

import (
	"context"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/metric"
	"go.opentelemetry.io/otel/trace"

	"github.com/bunshard/bunshard/session"
)

// instrumentationName names this package's tracer and meter.
const instrumentationName = "github.com/bunshard/bunshard/extra/bunshardotel"

// The attribute keys of the spans and metrics.
const (
	KeyOp          = attribute.Key("bunshard.op")             // "select", "get", "count", ...
	KeyModel       = attribute.Key("bunshard.model")          // the model's Go type name
	KeyRouteBy     = attribute.Key("bunshard.route.by")       // option, using, context, chooser, token, criteria, placement
	KeyShards      = attribute.Key("bunshard.route.shards")   // the shards, in order
	KeyFanout      = attribute.Key("bunshard.fanout")         // how many shards the statement runs on
	KeyScatter     = attribute.Key("bunshard.scatter")        // the chooser sent it to every shard
	KeyRows        = attribute.Key("bunshard.rows")           // rows returned (or affected), and a merge's output rows
	KeyShard       = attribute.Key("bunshard.shard")          // a shard id
	KeyRowsRead    = attribute.Key("bunshard.rows_read")      // rows read from one shard
	KeyPartial     = attribute.Key("bunshard.partial")        // AllowPartial left some shards out
	KeyInputs      = attribute.Key("bunshard.merge.inputs")   // shards merged
	KeyPhase       = attribute.Key("bunshard.phase")          // a two-phase commit's phase
	KeyOutcome     = attribute.Key("bunshard.outcome")        // committed, aborted, recover
	KeyCoordinator = attribute.Key("bunshard.coordinator")    // the two-phase coordinator shard
	KeyWriters     = attribute.Key("bunshard.writers")        // the shards a two-phase commit writes on
	KeyReplica     = attribute.Key("bunshard.replica")        // replica index, -1 for the primary
	KeyReason      = attribute.Key("bunshard.replica.reason") // why the read runs there
	KeyResult      = attribute.Key("bunshard.recover.result") // committed, rolled_back, left
	KeyError       = attribute.Key("error")                   // the part failed (metrics)
)

// Option configures [New].
type Option func(*config)

type config struct {
	tp trace.TracerProvider
	mp metric.MeterProvider
}

// WithTracerProvider makes the observer create its spans with tp
// (default: otel.GetTracerProvider()). A nil tp keeps the default.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) {
		if tp != nil {
			c.tp = tp
		}
	}
}

// WithMeterProvider makes the observer record its metrics with mp
// (default: otel.GetMeterProvider()). A nil mp keeps the default.
func WithMeterProvider(mp metric.MeterProvider) Option {
	return func(c *config) {
		if mp != nil {
			c.mp = mp
		}
	}
}

// Observer is a [session.Observer] that makes OpenTelemetry spans and
// metrics; install it with session.WithObserver. It is safe for
// concurrent use, and one Observer may serve several sessions.
type Observer struct {
	tracer trace.Tracer

	shardDuration  metric.Float64Histogram
	stmtDuration   metric.Float64Histogram
	fanout         metric.Int64Histogram
	scatter        metric.Int64Counter
	partial        metric.Int64Counter
	twoPhase       metric.Int64Counter
	recovered      metric.Int64Counter
	replicaReads   metric.Int64Counter
	replicaLag     metric.Float64Gauge
	replicaHealthy metric.Int64Gauge
}

var (
	_ session.Observer         = (*Observer)(nil)
	_ session.TwoPhaseObserver = (*Observer)(nil)
	_ session.RecoverObserver  = (*Observer)(nil)
	_ session.ReplicaObserver  = (*Observer)(nil)
)

// New returns an Observer on the global providers, or those the options
// name. It fails only when the meter refuses to create an instrument; the
// error names it.
func New(opts ...Option) (*Observer, error) {
	c := config{tp: otel.GetTracerProvider(), mp: otel.GetMeterProvider()}
	for _, opt := range opts {
		opt(&c)
	}
	m := c.mp.Meter(instrumentationName)
	o := &Observer{tracer: c.tp.Tracer(instrumentationName)}
	var errs []error
	check := func(name string, err error) {
		if err != nil {
			errs = append(errs, fmt.Errorf("bunshardotel: instrument %s: %w", name, err))
		}
	}
	var err error
	o.shardDuration, err = m.Float64Histogram("bunshard.shard.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of a statement's part on one shard."))
	check("bunshard.shard.duration", err)
	o.stmtDuration, err = m.Float64Histogram("bunshard.statement.duration", metric.WithUnit("s"),
		metric.WithDescription("Duration of a sharded statement, routing, shards and merge included."))
	check("bunshard.statement.duration", err)
	o.fanout, err = m.Int64Histogram("bunshard.statement.fanout", metric.WithUnit("{shard}"),
		metric.WithDescription("How many shards a statement runs on."),
		metric.WithExplicitBucketBoundaries(0, 1, 2, 4, 8, 16, 32, 64, 128, 256))
	check("bunshard.statement.fanout", err)
	o.scatter, err = m.Int64Counter("bunshard.statement.scatter", metric.WithUnit("{statement}"),
		metric.WithDescription("Statements the chooser sent to every shard."))
	check("bunshard.statement.scatter", err)
	o.partial, err = m.Int64Counter("bunshard.statement.partial", metric.WithUnit("{statement}"),
		metric.WithDescription("Statements that returned partial results (AllowPartial, some shards failed)."))
	check("bunshard.statement.partial", err)
	o.twoPhase, err = m.Int64Counter("bunshard.twophase.commits", metric.WithUnit("{commit}"),
		metric.WithDescription("Two-phase commits by outcome: committed, aborted, or left for Recover."))
	check("bunshard.twophase.commits", err)
	o.recovered, err = m.Int64Counter("bunshard.recover.transactions", metric.WithUnit("{transaction}"),
		metric.WithDescription("Prepared transactions Recover committed, rolled back or left."))
	check("bunshard.recover.transactions", err)
	o.replicaReads, err = m.Int64Counter("bunshard.replica.reads", metric.WithUnit("{read}"),
		metric.WithDescription("Reads of shards with replicas, by where they ran and why."))
	check("bunshard.replica.reads", err)
	o.replicaLag, err = m.Float64Gauge("bunshard.replica.lag", metric.WithUnit("s"),
		metric.WithDescription("Replay lag of a replica at its last health check (0: replayed all it received)."))
	check("bunshard.replica.lag", err)
	o.replicaHealthy, err = m.Int64Gauge("bunshard.replica.healthy", metric.WithUnit("1"),
		metric.WithDescription("1 when the replica's last health check passed, 0 when it is down."))
	check("bunshard.replica.healthy", err)
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	return o, nil
}

// StartStatement starts the statement's span, "bunshard.<op>".
func (o *Observer) StartStatement(ctx context.Context, st session.Statement) (context.Context, session.StatementObserver) {
	ctx, span := o.tracer.Start(ctx, "bunshard."+st.Op, trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(KeyOp.String(st.Op), KeyModel.String(st.Model)))
	return ctx, &statement{o: o, span: span, op: st.Op, model: st.Model, start: time.Now()}
}

// statement is one observed statement. Routed and End run on the
// statement's goroutine; StartShard and StartMerge read only fields set
// before the fan-out.
type statement struct {
	o     *Observer
	span  trace.Span
	op    string
	model string
	by    string
	start time.Time
}

func (s *statement) Routed(r session.Route, scatter bool) {
	s.by = r.By
	shards := make([]string, len(r.Shards))
	for i, id := range r.Shards {
		shards[i] = string(id)
	}
	s.span.SetAttributes(KeyRouteBy.String(r.By), KeyShards.StringSlice(shards),
		KeyFanout.Int(len(r.Shards)), KeyScatter.Bool(scatter))
	ctx := context.Background()
	s.o.fanout.Record(ctx, int64(len(r.Shards)), metric.WithAttributes(KeyOp.String(s.op), KeyRouteBy.String(r.By)))
	if scatter {
		s.o.scatter.Add(ctx, 1, metric.WithAttributes(KeyOp.String(s.op), KeyModel.String(s.model)))
	}
}

func (s *statement) StartShard(ctx context.Context, id session.ShardID) (context.Context, session.ShardObserver) {
	ctx, span := s.o.tracer.Start(ctx, "bunshard.shard", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(KeyShard.String(string(id)), KeyOp.String(s.op), KeyModel.String(s.model)))
	return ctx, &part{s: s, span: span, shard: id, start: time.Now()}
}

func (s *statement) StartMerge(ctx context.Context, inputs int) session.ShardObserver {
	_, span := s.o.tracer.Start(ctx, "bunshard.merge", trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(KeyInputs.Int(inputs)))
	return &merge{span: span}
}

func (s *statement) End(rows int64, err error) {
	if rows >= 0 {
		s.span.SetAttributes(KeyRows.Int64(rows))
	}
	var pe *session.PartialError
	partial := errors.As(err, &pe)
	if partial {
		s.span.SetAttributes(KeyPartial.Bool(true))
		s.o.partial.Add(context.Background(), 1, metric.WithAttributes(KeyOp.String(s.op), KeyModel.String(s.model)))
	}
	fail(s.span, err)
	s.o.stmtDuration.Record(context.Background(), time.Since(s.start).Seconds(), metric.WithAttributes(
		KeyOp.String(s.op), KeyModel.String(s.model), KeyRouteBy.String(s.by), KeyError.Bool(err != nil)))
	s.span.End()
}

// part is one shard's part of a statement.
type part struct {
	s     *statement
	span  trace.Span
	shard session.ShardID
	start time.Time
}

func (p *part) End(rows int64, err error) {
	p.span.SetAttributes(KeyRowsRead.Int64(rows))
	fail(p.span, err)
	p.s.o.shardDuration.Record(context.Background(), time.Since(p.start).Seconds(), metric.WithAttributes(
		KeyShard.String(string(p.shard)), KeyOp.String(p.s.op), KeyError.Bool(err != nil)))
	p.span.End()
}

// merge is a statement's merge.
type merge struct{ span trace.Span }

func (m *merge) End(rows int64, err error) {
	m.span.SetAttributes(KeyRows.Int64(rows))
	fail(m.span, err)
	m.span.End()
}

// StartTwoPhase starts the commit's span, "bunshard.commit".
func (o *Observer) StartTwoPhase(ctx context.Context, writers []session.ShardID, coord session.ShardID) (context.Context, session.PhaseObserver) {
	ids := make([]string, len(writers))
	for i, id := range writers {
		ids[i] = string(id)
	}
	ctx, span := o.tracer.Start(ctx, "bunshard.commit", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(KeyWriters.StringSlice(ids), KeyCoordinator.String(string(coord))))
	return ctx, &twoPhase{o: o, span: span}
}

// twoPhase is one two-phase commit; its phases run one after the other on
// the committing goroutine.
type twoPhase struct {
	o     *Observer
	span  trace.Span
	phase trace.Span // the phase under way, nil before the first
}

// StartPhase ends the phase under way and starts phase's span, a child of
// the commit's span (not of the phase before, whose span ctx may carry).
func (t *twoPhase) StartPhase(ctx context.Context, phase string) context.Context {
	if t.phase != nil {
		t.phase.End()
	}
	ctx, span := t.o.tracer.Start(trace.ContextWithSpan(ctx, t.span), "bunshard.commit."+phase, trace.WithSpanKind(trace.SpanKindInternal),
		trace.WithAttributes(KeyPhase.String(phase)))
	t.phase = span
	return ctx
}

func (t *twoPhase) End(outcome string, err error) {
	if t.phase != nil {
		fail(t.phase, err)
		t.phase.End()
	}
	t.span.SetAttributes(KeyOutcome.String(outcome))
	fail(t.span, err)
	t.o.twoPhase.Add(context.Background(), 1, metric.WithAttributes(KeyOutcome.String(outcome)))
	t.span.End()
}

// StartRecover starts Recover's span, "bunshard.recover".
func (o *Observer) StartRecover(ctx context.Context) (context.Context, session.RecoverEnd) {
	ctx, span := o.tracer.Start(ctx, "bunshard.recover", trace.WithSpanKind(trace.SpanKindClient))
	return ctx, &recoverSpan{o: o, span: span}
}

type recoverSpan struct {
	o    *Observer
	span trace.Span
}

func (r *recoverSpan) End(rec session.Recovered, err error) {
	r.span.SetAttributes(attribute.Int("bunshard.recover.committed", len(rec.Committed)),
		attribute.Int("bunshard.recover.rolled_back", len(rec.RolledBack)),
		attribute.Int("bunshard.recover.left", len(rec.Left)))
	ctx := context.Background()
	for _, c := range []struct {
		result string
		n      int
	}{{"committed", len(rec.Committed)}, {"rolled_back", len(rec.RolledBack)}, {"left", len(rec.Left)}} {
		if c.n > 0 {
			r.o.recovered.Add(ctx, int64(c.n), metric.WithAttributes(KeyResult.String(c.result)))
		}
	}
	fail(r.span, err)
	r.span.End()
}

// ReplicaChosen records where a read of a shard with replicas runs: a
// "bunshard.replica" span under the shard's span, and bunshard.replica.reads.
func (o *Observer) ReplicaChosen(ctx context.Context, c session.ReplicaChoice) {
	attrs := []attribute.KeyValue{KeyShard.String(string(c.Shard)), KeyReplica.Int(c.Replica), KeyReason.String(c.Reason)}
	_, span := o.tracer.Start(ctx, "bunshard.replica", trace.WithSpanKind(trace.SpanKindInternal), trace.WithAttributes(attrs...))
	span.End()
	o.replicaReads.Add(ctx, 1, metric.WithAttributes(attrs...))
}

// ReplicaChecked records a replica's health and lag.
func (o *Observer) ReplicaChecked(c session.ReplicaCheck) {
	ctx := context.Background()
	attrs := metric.WithAttributes(KeyShard.String(string(c.Shard)), KeyReplica.Int(c.Replica))
	healthy := int64(0)
	if c.Healthy {
		healthy = 1
	}
	o.replicaHealthy.Record(ctx, healthy, attrs)
	if c.Lag >= 0 {
		o.replicaLag.Record(ctx, c.Lag.Seconds(), attrs)
	}
}

// fail marks span failed with err, when err is not nil.
func fail(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}
