package session

import (
	"context"
	"errors"
	"testing"
)

// TestObserveOffAllocatesNothing: without WithObserver, every hook on a
// statement's path (start, route, shard part, rows read, merge, end, and a
// two-phase phase) is a nil check that allocates nothing.
func TestObserveOffAllocatesNothing(t *testing.T) {
	s := &Session{order: []ShardID{"a", "b"}}
	ctx := context.Background()
	r := Route{Shards: []ShardID{"a"}, By: "context"}
	var dst struct{ X int }
	errBoom := errors.New("boom")
	allocs := testing.AllocsPerRun(100, func() {
		ctx, rec := s.observe(ctx, "get", nil)
		s.routed(ctx, r)
		s.readRows(ctx, 1)
		m := s.startMerge(ctx, 2)
		endMerge(m, 1, nil)
		_ = s.phase(ctx, PhasePrepare)
		rec.endScan(errBoom, &dst)
		rec.end(1, nil)
		if rec != nil {
			t.Fatal("observe returned a record with no observer")
		}
	})
	if allocs != 0 {
		t.Errorf("the observer hooks with no observer allocate %v times per statement; want 0", allocs)
	}
}

// fakeObserver records the events it hears, for TestObserveEvents.
type fakeObserver struct {
	events []string
}

func (f *fakeObserver) StartStatement(ctx context.Context, st Statement) (context.Context, StatementObserver) {
	f.events = append(f.events, "start "+st.Op+" "+st.Model)
	return ctx, f
}
func (f *fakeObserver) Routed(r Route, scatter bool) {
	if scatter {
		f.events = append(f.events, "routed "+r.String()+" scatter")
	} else {
		f.events = append(f.events, "routed "+r.String())
	}
}
func (f *fakeObserver) StartShard(ctx context.Context, id ShardID) (context.Context, ShardObserver) {
	f.events = append(f.events, "shard "+string(id))
	return ctx, f
}
func (f *fakeObserver) StartMerge(ctx context.Context, inputs int) ShardObserver {
	f.events = append(f.events, "merge")
	return f
}
func (f *fakeObserver) End(rows int64, err error) {
	if err != nil {
		f.events = append(f.events, "end error")
	} else {
		f.events = append(f.events, "end "+string(rune('0'+rows)))
	}
}

// TestObserveEvents: with an observer, the hooks reach it in order, a
// scatter is a chooser route to every shard of several, and a shard part
// ends with the rows counted in its context.
func TestObserveEvents(t *testing.T) {
	f := &fakeObserver{}
	s := &Session{order: []ShardID{"a", "b"}, cfg: config{observer: f}}
	ctx, rec := s.observe(context.Background(), "select", nil)
	s.routed(ctx, Route{Shards: []ShardID{"a", "b"}, By: "chooser"})
	s.routed(ctx, Route{Shards: []ShardID{"a", "b"}, By: "option"})
	sctx, end := s.startShard(ctx, "a")
	s.readRows(sctx, 3)
	s.readRows(sctx, 2)
	end(nil)
	endMerge(s.startMerge(ctx, 2), 4, nil)
	rec.end(4, nil)
	want := []string{"start select ", "routed [a b] by chooser scatter", "routed [a b] by option",
		"shard a", "end 5", "merge", "end 4", "end 4"}
	if len(f.events) != len(want) {
		t.Fatalf("events = %q; want %q", f.events, want)
	}
	for i := range want {
		if f.events[i] != want[i] {
			t.Errorf("event %d = %q; want %q", i, f.events[i], want[i])
		}
	}
}

// TestOutcome classifies two-phase Commit errors.
func TestOutcome(t *testing.T) {
	tests := []struct {
		err  error
		want string
	}{
		{nil, OutcomeCommitted},
		{&CommitError{TwoPhase: true, Failed: []ShardID{"a"}, Err: errors.New("x")}, OutcomeAborted},
		{&CommitError{TwoPhase: true, Pending: []ShardID{"a"}, Decision: "commit", Err: errors.New("x")}, OutcomeRecover},
		{&CommitError{TwoPhase: true, Pending: []ShardID{"a", "b"}, Err: ErrInDoubt}, OutcomeRecover},
		{&CommitError{TwoPhase: true, Failed: []ShardID{"a"}, Pending: []ShardID{"b"}, Err: errors.New("x")}, OutcomeRecover},
	}
	for _, tt := range tests {
		if got := outcome(tt.err); got != tt.want {
			t.Errorf("outcome(%v) = %q; want %q", tt.err, got, tt.want)
		}
	}
}
