package session_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/session"
)

// The router semantics of Django's tests/multiple_database/tests.py
// (RouterTestCase, RouterAttributeErrorTestCase, ModelMetaRouter and the
// router tests around them), ported to bunshard's chain where they apply;
// docs/routing.md lists those that do not, and why.

// djRouter is a read and write router that records what it is asked and
// answers through its funcs (nil: abstain). Its String is its name, which
// errors must carry.
type djRouter struct {
	name  string
	read  func(*chooser.Statement) (chooser.Target, error)
	write func(*chooser.Write) (chooser.Target, error)

	mu     sync.Mutex
	reads  []chooser.Statement
	writes []chooser.Write
}

func (r *djRouter) String() string { return r.name }

func (r *djRouter) RouteRead(_ context.Context, stmt *chooser.Statement) (chooser.Target, error) {
	r.mu.Lock()
	r.reads = append(r.reads, *stmt)
	r.mu.Unlock()
	if r.read == nil {
		return chooser.None(), nil
	}
	return r.read(stmt)
}

func (r *djRouter) RouteWrite(_ context.Context, w *chooser.Write) (chooser.Target, error) {
	r.mu.Lock()
	r.writes = append(r.writes, *w)
	r.mu.Unlock()
	if r.write == nil {
		return chooser.None(), nil
	}
	return r.write(w)
}

func (r *djRouter) asked() (reads []chooser.Statement, writes []chooser.Write) {
	r.mu.Lock()
	defer r.mu.Unlock()
	reads, writes = r.reads, r.writes
	r.reads, r.writes = nil, nil
	return reads, writes
}

func isLocation(t *schema.Table) bool { return t.Type == reflect.TypeFor[plLocation]() }
func isReport(t *schema.Table) bool   { return t.Type == reflect.TypeFor[plReport]() }

// djDefault routes locations by region (the region is the shard id) and
// reports with their location, as plPlace does.
func djDefault() any {
	return chooser.First(plPlace, chooser.NewValueMap("region", map[string]session.ShardID{"a": "a", "b": "b", "c": "c", "d": "d"}))
}

func (r *routed) chain(t *testing.T, def any, routers ...any) *session.Session {
	t.Helper()
	c := chooser.NewRouters(def, routers...)
	s, err := session.New(r.shards, c, c, c, session.WithShardOrder(plShards...))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// sent returns each shard's statements since the last reset, with the
// statement counts checked against want (one count per shard of plShards).
func (r *routed) sent(t *testing.T, what string, want []int) map[session.ShardID][]string {
	t.Helper()
	if got := r.perShard(); !slices.Equal(got, want) {
		t.Errorf("%s ran %v statements on %v; want %v", what, got, plShards, want)
	}
	out := map[session.ShardID][]string{}
	for _, id := range plShards {
		out[id] = r.counts[id].statements()
	}
	return out
}

func seedLocations(t *testing.T, r *routed, s *session.Session) []*plLocation {
	t.Helper()
	locs := seedOnlyLocations(t, r, s)
	reps := []*plReport{{ID: 10, LocationID: 2, Location: locs[1]}, {ID: 11, LocationID: 3, Location: locs[2]}, {ID: 12, LocationID: 1, Location: locs[0]}}
	if err := s.Insert(context.Background(), &reps); err != nil {
		t.Fatal(err)
	}
	r.reset()
	return locs
}

func seedOnlyLocations(t *testing.T, r *routed, s *session.Session) []*plLocation {
	t.Helper()
	locs := []*plLocation{{ID: 1, Region: "a", City: "oslo"}, {ID: 2, Region: "b", City: "lima"}, {ID: 3, Region: "b", City: "cusco"}}
	if err := s.Insert(context.Background(), &locs); err != nil {
		t.Fatal(err)
	}
	r.reset()
	return locs
}

// TestDjangoChainOrder: Django's test_db_selection and
// test_partial_router: routers are asked in order, the first answer wins
// and later routers are not asked; a router that abstains (None, or an
// error wrapping ErrNoOpinion, as a Django router without the method or
// returning None) passes to the next; when all abstain, the default
// answers.
func TestDjangoChainOrder(t *testing.T) {
	ctx := context.Background()
	r := newRouted(t)
	abstains := &djRouter{name: "abstains", read: func(*chooser.Statement) (chooser.Target, error) {
		return chooser.Target{}, fmt.Errorf("not mine: %w", chooser.ErrNoOpinion)
	}}
	toC := &djRouter{name: "toC",
		read: func(stmt *chooser.Statement) (chooser.Target, error) {
			if isLocation(stmt.Table) {
				return chooser.Shards("c"), nil
			}
			return chooser.None(), nil
		},
		write: func(w *chooser.Write) (chooser.Target, error) {
			if isLocation(w.Table) && w.Shard == "" {
				return chooser.Shards("c"), nil
			}
			return chooser.None(), nil
		}}
	toD := &djRouter{name: "toD", read: func(*chooser.Statement) (chooser.Target, error) { return chooser.Shards("d"), nil }}
	s := r.chain(t, djDefault(), abstains, toC, toD)

	// Writes: toC places a new location on c whatever its region.
	loc := &plLocation{ID: 1, Region: "a", City: "oslo"}
	if err := s.Insert(ctx, loc); err != nil {
		t.Fatal(err)
	}
	if got := r.sent(t, "Insert of a location", []int{0, 0, 1, 0}); !strings.HasPrefix(got["c"][0], "INSERT INTO") {
		t.Errorf("c received %q; want the INSERT", got["c"])
	}
	if _, w := toC.asked(); len(w) != 1 || w[0].Obj != loc || w[0].Shard != "" {
		t.Errorf("toC was asked %+v; want once, about the new object (no shard yet)", w)
	}
	r.reset()
	// Reads: abstains passes, toC answers, toD is never asked.
	var got []plLocation
	if err := s.NewSelect().Model(&got).Scan(ctx); err != nil || len(got) != 1 {
		t.Fatalf("select locations = %v, %v", got, err)
	}
	r.sent(t, "select of locations", []int{0, 0, 1, 0})
	if reads, _ := abstains.asked(); len(reads) != 1 {
		t.Errorf("abstains was asked %d times; want 1", len(reads))
	}
	if reads, _ := toD.asked(); len(reads) != 0 {
		t.Errorf("toD was asked %d times after toC answered; want 0", len(reads))
	}
	// Reports: toC abstains, toD answers d.
	r.reset()
	var reps []plReport
	if err := s.NewSelect().Model(&reps).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	r.sent(t, "select of reports", []int{0, 0, 0, 1})

	// Everyone abstains: the default routes by region.
	r.reset()
	s2 := r.chain(t, djDefault(), abstains, &djRouter{name: "silent"})
	if err := s2.Insert(ctx, &plLocation{ID: 2, Region: "b", City: "lima"}); err != nil {
		t.Fatal(err)
	}
	r.sent(t, "Insert with every router abstaining", []int{0, 1, 0, 0})
	r.reset()
	var inB []plLocation
	if err := s2.NewSelect().Model(&inB).WhereShardKey("region", "b").Scan(ctx); err != nil || len(inB) != 1 {
		t.Fatalf("select region b = %v, %v", inB, err)
	}
	r.sent(t, "select region b with every router abstaining", []int{0, 1, 0, 0})
}

// TestDjangoStickyAndMove: an object loaded from shard X is written back to
// X (Django: save() without using writes to instance._state.db when the
// routers abstain), the write router being told the object and X; a router
// that names another shard for it is refused with ErrWouldMove naming both
// shards and the router, where Django would write the row to the other
// database (it assumes replicated data; bunshard never moves a row).
func TestDjangoStickyAndMove(t *testing.T) {
	ctx := context.Background()
	r := newRouted(t)
	watch := &djRouter{name: "watch"}
	s := r.chain(t, djDefault(), watch)
	seedLocations(t, r, s)
	watch.asked()

	var lima plLocation
	if err := s.Get(ctx, &lima, 2); err != nil {
		t.Fatal(err)
	}
	r.reset()
	lima.City = "LIMA"
	// Sticky even when the object's region says otherwise.
	lima.Region = "d"
	if err := s.Update(ctx, &lima); err != nil {
		t.Fatal(err)
	}
	got := r.sent(t, "Update of a location loaded from b", []int{0, 1, 0, 0})
	if !strings.HasPrefix(got["b"][0], "UPDATE") || !strings.Contains(got["b"][0], "'LIMA'") {
		t.Errorf("b received %q; want the UPDATE", got["b"])
	}
	if _, w := watch.asked(); len(w) != 1 || w[0].Obj != &lima || w[0].Shard != "b" {
		t.Errorf("watch was asked %+v; want once, about the object on b", w)
	}

	mover := &djRouter{name: "mover", write: func(w *chooser.Write) (chooser.Target, error) { return chooser.Shards("c"), nil }}
	s2 := r.chain(t, djDefault(), mover)
	r.reset()
	for _, op := range []struct {
		name string
		run  func() error
	}{
		{"Update", func() error { return s2.Update(ctx, &lima) }},
		{"Delete", func() error { return s2.Delete(ctx, &lima) }},
		{"unit update", func() error {
			u := s2.Begin()
			defer u.Rollback(ctx) //nolint:errcheck // the error under test is Flush's
			var obj *plLocation
			if err := u.Get(ctx, &obj, 3); err != nil {
				return err
			}
			r.reset()
			obj.City = "moved?"
			return u.Flush(ctx)
		}},
	} {
		err := op.run()
		if !errors.Is(err, session.ErrWouldMove) {
			t.Fatalf("%s with a router naming c for an object on b = %v; want ErrWouldMove", op.name, err)
		}
		wantIn(t, err, "PlLocation", "shard b", "[c]", "mover")
		if op.name == "unit update" {
			// The refused flush sent no UPDATE (the closure's Rollback ran).
			for _, id := range plShards {
				for _, q := range r.counts[id].statements() {
					if !strings.HasPrefix(q, "ROLLBACK") {
						t.Errorf("%s: %s received %q after the refusal; want only ROLLBACK", op.name, id, q)
					}
				}
			}
		} else {
			r.sent(t, op.name+" refused", []int{0, 0, 0, 0})
		}
		r.reset()
	}
	// A router answering the object's own shard is no move.
	same := &djRouter{name: "same", write: func(w *chooser.Write) (chooser.Target, error) { return chooser.Shards(w.Shard), nil }}
	if err := r.chain(t, djDefault(), same).Update(ctx, &lima); err != nil {
		t.Errorf("Update with a router naming the object's own shard = %v", err)
	}
}

// TestDjangoWriteRefused: a write router may refuse a write (a shard in
// read-only maintenance): the error wraps chooser.ErrRefused and names the
// router, the model and the shard, and nothing is sent, whether the shard
// is decided by the object's Token, a statement pin, a Using view, the
// context, a unit's flush, or a statement-form UPDATE's criteria.
func TestDjangoWriteRefused(t *testing.T) {
	ctx := context.Background()
	r := newRouted(t)
	readOnly := errors.New("shard b is in read-only maintenance")
	maint := &djRouter{name: "maintenance", write: func(w *chooser.Write) (chooser.Target, error) {
		if w.Shard == "b" {
			return chooser.Target{}, readOnly
		}
		if w.Stmt != nil {
			if vs, ok := w.Stmt.Values("region"); ok && slices.Contains(vs, any("b")) {
				return chooser.Target{}, readOnly
			}
		}
		return chooser.None(), nil
	}}
	// The default is a column chooser, so a plain Where on region is a
	// declared criterion (wherekey.go) that the routers see.
	s := r.chain(t, chooser.NewValueMap("region", map[string]session.ShardID{"a": "a", "b": "b", "c": "c", "d": "d"}), maint)
	seedOnlyLocations(t, r, s)

	var lima plLocation
	if err := s.Get(ctx, &lima, 2); err != nil {
		t.Fatal(err)
	}
	var oslo plLocation
	if err := s.Get(ctx, &oslo, 1); err != nil {
		t.Fatal(err)
	}
	r.reset()
	cases := []struct {
		name string
		run  func() error
	}{
		{"Update of an object on b", func() error { return s.Update(ctx, &lima) }},
		{"Delete of an object on b", func() error { return s.Delete(ctx, &lima) }},
		{"Insert pinned to b", func() error {
			return s.Insert(ctx, &plLocation{ID: 7, Region: "b", City: "x"}, session.SetShardID("b"))
		}},
		{"Insert in a Using(b) view", func() error { return s.Using("b").Insert(ctx, &plLocation{ID: 7, Region: "b", City: "x"}) }},
		{"Insert under a context pin, PinWins", func() error {
			return s.Insert(session.WithShardID(ctx, "b"), &plLocation{ID: 7, Region: "a", City: "x"}, session.PinWins())
		}},
		{"statement-form UPDATE of region b", func() error {
			_, err := s.NewUpdate().Model((*plLocation)(nil)).Set("city = 'x'").Where("region = ?", "b").Exec(ctx)
			return err
		}},
		{"statement-form DELETE of region b", func() error {
			_, err := s.NewDelete().Model((*plLocation)(nil)).WhereShardKey("region", "b").Exec(ctx)
			return err
		}},
	}
	for _, c := range cases {
		err := c.run()
		if !errors.Is(err, chooser.ErrRefused) || !errors.Is(err, readOnly) {
			t.Errorf("%s = %v; want ErrRefused wrapping the router's error", c.name, err)
			continue
		}
		wantIn(t, err, "maintenance", "PlLocation")
		if !strings.Contains(c.name, "statement-form") {
			wantIn(t, err, "shard b")
		}
		r.sent(t, c.name+" (refused)", []int{0, 0, 0, 0})
		r.reset()
	}
	// The statement reached the router with its criteria, from a plain
	// Where as from WhereShardKey.
	_, w := maint.asked()
	var stmts []chooser.Criterion
	for _, x := range w {
		if x.Stmt != nil {
			stmts = append(stmts, x.Stmt.Criteria...)
		}
	}
	want := []chooser.Criterion{{Column: "region", Values: []any{"b"}}, {Column: "region", Values: []any{"b"}}}
	if !reflect.DeepEqual(stmts, want) {
		t.Errorf("the statement-form UPDATE and DELETE reached the router with criteria %v; want %v", stmts, want)
	}

	// A unit's flush is refused before its writes are sent.
	u := s.Begin()
	var obj *plLocation
	if err := u.Get(ctx, &obj, 3); err != nil {
		t.Fatal(err)
	}
	r.reset()
	obj.City = "x"
	if err := u.Flush(ctx); !errors.Is(err, chooser.ErrRefused) {
		t.Errorf("unit flush of an object on b = %v; want ErrRefused", err)
	}
	for _, q := range r.counts["b"].statements() {
		if strings.HasPrefix(q, "UPDATE") {
			t.Errorf("b received %q after the refused flush", q)
		}
	}
	_ = u.Rollback(ctx)
	r.reset()

	// Shard a is not in maintenance: the same writes go through there.
	oslo.City = "OSLO"
	if err := s.Update(ctx, &oslo); err != nil {
		t.Fatal(err)
	}
	if _, err := s.NewUpdate().Model((*plLocation)(nil)).Set("city = 'y'").Where("region = ?", "a").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	got := r.sent(t, "writes on a", []int{2, 0, 0, 0})
	if !strings.Contains(got["a"][1], `"location"."region" = 'a'`) {
		t.Errorf("a received %q; want the UPDATE with its criterion", got["a"][1])
	}
}

// TestDjangoUsingAndInstanceHint: using() (a Using view, or SetShardID)
// overrides every router: none is asked; a relation load tells the read
// router the parent objects (Django's instance hint) and their shard.
func TestDjangoUsingAndInstanceHint(t *testing.T) {
	ctx := context.Background()
	r := newRouted(t)
	// Reads of reports follow the first parent's region, by the instance.
	hint := &djRouter{name: "hint", read: func(stmt *chooser.Statement) (chooser.Target, error) {
		if isReport(stmt.Table) && len(stmt.Parents) > 0 {
			return chooser.Shards(session.ShardID(stmt.Parents[0].(*plLocation).Region)), nil
		}
		return chooser.None(), nil
	}}
	s := r.chain(t, djDefault(), hint)
	seedLocations(t, r, s)

	var inB []*plLocation
	if err := s.Using("b").NewSelect().Model(&inB).Order("id").Scan(ctx); err != nil || len(inB) != 2 {
		t.Fatalf("Using(b) select = %v, %v", inB, err)
	}
	r.sent(t, "Using(b) select", []int{0, 1, 0, 0})
	if reads, _ := hint.asked(); len(reads) != 0 {
		t.Errorf("a Using view asked the router %d times; want 0", len(reads))
	}
	// Loaded through the chooser (not pinned), so the relation load is
	// routed, and the router is told the parents.
	inB = nil
	if err := s.NewSelect().Model(&inB).WhereShardKey("region", "b").Order("id").Scan(ctx); err != nil || len(inB) != 2 {
		t.Fatalf("select region b = %v, %v", inB, err)
	}
	hint.asked()
	r.reset()
	if err := s.LoadRelation(ctx, &inB, "Reports"); err != nil {
		t.Fatal(err)
	}
	got := r.sent(t, "LoadRelation(Reports) of locations on b", []int{0, 1, 0, 0})
	if !strings.Contains(got["b"][0], "IN (2, 3)") {
		t.Errorf("b received %q; want both parents' keys in one IN list", got["b"])
	}
	reads, _ := hint.asked()
	if len(reads) != 1 || reads[0].LoadedFrom != "b" || len(reads[0].Parents) != 2 ||
		reads[0].Parents[0] != inB[0] || reads[0].Parents[1] != inB[1] {
		t.Fatalf("the router was asked %+v; want once, told shard b and both parents", reads)
	}
	if len(inB[0].Reports) != 1 || inB[0].Reports[0].ID != 10 || len(inB[1].Reports) != 1 || inB[1].Reports[0].ID != 11 {
		t.Errorf("loaded reports %v, %v; want 10 and 11", inB[0].Reports, inB[1].Reports)
	}
}

// TestDjangoAllowRelationAndMigrate: allow_relation and allow_migrate
// through the chain: the first verdict that is not Abstain wins, the
// default (same shard, or not placed yet; migrate everywhere) answers
// otherwise.
func TestDjangoAllowRelationAndMigrate(t *testing.T) {
	ctx := context.Background()
	r := newRouted(t)
	abstain := chooser.RelationRouterFunc(func(context.Context, chooser.Object, chooser.Object) chooser.Verdict { return chooser.Abstain })
	allowAll := chooser.RelationRouterFunc(func(context.Context, chooser.Object, chooser.Object) chooser.Verdict { return chooser.Allow })
	denyAll := chooser.RelationRouterFunc(func(context.Context, chooser.Object, chooser.Object) chooser.Verdict { return chooser.Deny })
	s := r.chain(t, djDefault(), abstain)
	locs := seedLocations(t, r, s)

	cross := &plReport{ID: 20, LocationID: 1, Location: locs[0]} // location on a
	err := s.Insert(ctx, cross, session.SetShardID("b"), session.PinWins())
	if !errors.Is(err, session.ErrRelationDenied) {
		t.Fatalf("Insert of a report on b whose location is on a, routers abstaining = %v; want ErrRelationDenied", err)
	}
	r.sent(t, "the denied insert", []int{0, 0, 0, 0})
	if err := r.chain(t, djDefault(), abstain, allowAll, denyAll).Insert(ctx, cross, session.SetShardID("b"), session.PinWins()); err != nil {
		t.Errorf("Insert with abstain, allow, deny = %v; want allowed (first verdict wins)", err)
	}
	r.sent(t, "the allowed insert", []int{0, 1, 0, 0})
	r.reset()
	if err := r.chain(t, djDefault(), denyAll, allowAll).Insert(ctx, &plReport{ID: 21, LocationID: 2, Location: locs[1]}); !errors.Is(err, session.ErrRelationDenied) {
		t.Errorf("Insert with deny, allow = %v; want ErrRelationDenied", err)
	}
	r.sent(t, "the denied same-shard insert", []int{0, 0, 0, 0})

	onlyA := chooser.MigrateRouterFunc(func(_ context.Context, id session.ShardID, t *schema.Table) chooser.Verdict {
		if isReport(t) {
			return chooser.VerdictOf(id == "a")
		}
		return chooser.Abstain
	})
	sm := r.chain(t, djDefault(), onlyA)
	for _, c := range []struct {
		shard session.ShardID
		model any
		want  bool
	}{{"a", (*plReport)(nil), true}, {"b", (*plReport)(nil), false}, {"b", (*plLocation)(nil), true}} {
		if ok, err := sm.AllowMigrate(ctx, c.shard, c.model); ok != c.want || err != nil {
			t.Errorf("AllowMigrate(%s, %T) = %v, %v; want %v", c.shard, c.model, ok, err, c.want)
		}
	}
}
