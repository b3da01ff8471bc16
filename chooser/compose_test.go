package chooser_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// fixed is a test chooser that gives the same answer to every role.
type fixed struct {
	name   string
	shard  identity.ShardID
	target chooser.Target
	parts  map[identity.ShardID][]any
	err    error
	asked  *[]string
}

func (f fixed) note() {
	if f.asked != nil {
		*f.asked = append(*f.asked, f.name)
	}
}

func (f fixed) ChooseShard(context.Context, *schema.Table, any) (identity.ShardID, error) {
	f.note()
	return f.shard, f.err
}

func (f fixed) ChooseIdentity(context.Context, chooser.Key) (chooser.Target, error) {
	f.note()
	return f.target, f.err
}

func (f fixed) ChooseExecute(context.Context, *chooser.Statement) (chooser.Target, error) {
	f.note()
	return f.target, f.err
}

func (f fixed) SplitValues(context.Context, *schema.Table, string, []any) (map[identity.ShardID][]any, error) {
	f.note()
	return f.parts, f.err
}

func (f fixed) String() string { return f.name }

func TestFirstTargets(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	noOpinion := fmt.Errorf("not mine: %w", chooser.ErrNoOpinion)
	boom := errors.New("boom")
	tests := []struct {
		name      string
		members   []fixed
		want      chooser.Target
		wantErr   error
		wantAsked string
	}{
		{"first answer wins", []fixed{{name: "a", target: chooser.Shards("s1")}, {name: "b", target: chooser.Shards("s2")}}, chooser.Shards("s1"), nil, "a"},
		{"none is skipped", []fixed{{name: "a", target: chooser.None()}, {name: "b", target: chooser.Shards("s2")}}, chooser.Shards("s2"), nil, "a b"},
		{"no opinion is skipped", []fixed{{name: "a", err: noOpinion}, {name: "b", target: chooser.Shards("s2")}}, chooser.Shards("s2"), nil, "a b"},
		{"all waits for a narrower answer", []fixed{{name: "a", target: chooser.AllShards()}, {name: "b", target: chooser.Shards("s2")}}, chooser.Shards("s2"), nil, "a b"},
		{"all if nobody narrows", []fixed{{name: "a", target: chooser.AllShards()}, {name: "b", target: chooser.None()}, {name: "c", err: noOpinion}}, chooser.AllShards(), nil, "a b c"},
		{"other errors stop", []fixed{{name: "a", err: boom}, {name: "b", target: chooser.Shards("s2")}}, chooser.Target{}, boom, "a"},
		{"every member passes with an error", []fixed{{name: "a", err: noOpinion}, {name: "b", target: chooser.None()}}, chooser.Target{}, chooser.ErrNoOpinion, "a b"},
		{"every member says none", []fixed{{name: "a", target: chooser.None()}}, chooser.None(), nil, "a"},
	}
	for _, tt := range tests {
		for _, role := range []string{"ChooseIdentity", "ChooseExecute"} {
			t.Run(tt.name+"/"+role, func(t *testing.T) {
				var asked []string
				members := make([]any, len(tt.members))
				for i, m := range tt.members {
					m.asked = &asked
					members[i] = m
				}
				c := chooser.First(members...)
				var got chooser.Target
				var err error
				if role == "ChooseIdentity" {
					got, err = c.ChooseIdentity(ctx, chooser.Key{Table: users, PK: []any{int64(1)}})
				} else {
					got, err = c.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: users})
				}
				if !reflect.DeepEqual(got, tt.want) || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Errorf("%s = %v, %v; want %v, %v", role, got, err, tt.want, tt.wantErr)
				}
				if strings.Join(asked, " ") != tt.wantAsked {
					t.Errorf("%s asked %v; want %s", role, asked, tt.wantAsked)
				}
			})
		}
	}
}

func TestFirstChooseShard(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	l := identity.DefaultLayout()
	byID, err := chooser.NewFromID("id", l, chooser.Spread(l.Buckets(), "s0", "s1"))
	if err != nil {
		t.Fatal(err)
	}
	rr, err := chooser.NewRoundRobin("s0", "s1")
	if err != nil {
		t.Fatal(err)
	}
	place := chooser.First(byID, rr)
	// An object with an ID goes where its ID says.
	g, err := identity.NewGenerator(l, 1000)
	if err != nil {
		t.Fatal(err)
	}
	id, err := g.Next()
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if got, err := place.ChooseShard(ctx, users, &User{ID: id}); got != "s1" || err != nil {
			t.Errorf("ChooseShard(ID in bucket 1000) = %v, %v; want s1", got, err)
		}
	}
	// An object without one is placed in turn.
	var got []identity.ShardID
	for range 4 {
		s, err := place.ChooseShard(ctx, users, &User{})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, s)
	}
	if want := []identity.ShardID{"s0", "s1", "s0", "s1"}; !reflect.DeepEqual(got, want) {
		t.Errorf("ChooseShard of 4 new objects = %v; want %v", got, want)
	}
	// Other errors stop the chain.
	if _, err := place.ChooseShard(ctx, users, &User{ID: -1}); err == nil || errors.Is(err, chooser.ErrNoOpinion) {
		t.Errorf("ChooseShard(ID -1) error = %v; want FromID's error", err)
	}
	// Nobody answers: the error wraps ErrNoOpinion and says why.
	alone := chooser.First(byID, chooser.All)
	_, err = alone.ChooseShard(ctx, users, &User{})
	if !errors.Is(err, chooser.ErrNoOpinion) || !strings.Contains(err.Error(), "the ID is zero") || !strings.Contains(err.Error(), "no member answered for model User") {
		t.Errorf("ChooseShard with no answer: error = %v; want one wrapping ErrNoOpinion with FromID's reason", err)
	}
	empty := chooser.First(fixed{name: "empty"})
	if _, err := empty.ChooseShard(ctx, users, &User{}); !errors.Is(err, chooser.ErrNoOpinion) {
		t.Errorf("ChooseShard when a member returns \"\": error = %v; want ErrNoOpinion", err)
	}
}

// TestFirstTwoKeys routes one model by whichever of two keys a statement
// declares: the point of letting AllShards wait for a narrower answer.
func TestFirstTwoKeys(t *testing.T) {
	ctx := context.Background()
	orders := tableOf[Order]()
	byUser, err := chooser.NewHash("user_id", chooser.Spread(16, "s0", "s1", "s2"))
	if err != nil {
		t.Fatal(err)
	}
	dir := newFakeDirectory(map[any]identity.ShardID{int64(500): "s2"})
	byOrder := mustLookup(t, "id", dir)
	c := chooser.First(byUser, byOrder)
	stmt := func(col string, v any) *chooser.Statement {
		return &chooser.Statement{Op: chooser.OpSelect, Table: orders, Criteria: []chooser.Criterion{{Column: col, Values: []any{v}}}}
	}
	b, _ := byUser.Bucket(int64(8))
	if got, err := c.ChooseExecute(ctx, stmt("user_id", int64(8))); err != nil || got.String() != "["+string(byUser.Buckets()[b])+"]" {
		t.Errorf("ChooseExecute(user_id = 8) = %v, %v; want [%s]", got, err, byUser.Buckets()[b])
	}
	if got, err := c.ChooseExecute(ctx, stmt("id", int64(500))); err != nil || got.String() != "[s2]" {
		t.Errorf("ChooseExecute(id = 500) = %v, %v; want [s2]", got, err)
	}
	if got, err := c.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: orders}); err != nil || !got.IsAll() {
		t.Errorf("ChooseExecute(no criteria) = %v, %v; want all", got, err)
	}
	// SplitValues goes to whichever member routes the column.
	parts, err := c.SplitValues(ctx, orders, "id", []any{int64(500)})
	if err != nil || !reflect.DeepEqual(parts, map[identity.ShardID][]any{"s2": {int64(500)}}) {
		t.Errorf("SplitValues(id) = %v, %v; want map[s2:[500]]", parts, err)
	}
	if parts, err := c.SplitValues(ctx, orders, "total", []any{1}); parts != nil || err != nil {
		t.Errorf("SplitValues(total) = %v, %v; want nil, nil", parts, err)
	}
}

func TestFirstSkipsRoles(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	rr, err := chooser.NewRoundRobin("s9")
	if err != nil {
		t.Fatal(err)
	}
	// RoundRobin is only a ShardChooser and All only the other two: each
	// role asks only its own members.
	c := chooser.First(rr, chooser.All)
	if got, err := c.ChooseShard(ctx, users, &User{}); got != "s9" || err != nil {
		t.Errorf("ChooseShard = %v, %v; want s9", got, err)
	}
	if got, err := c.ChooseIdentity(ctx, chooser.Key{Table: users, PK: []any{1}}); !got.IsAll() || err != nil {
		t.Errorf("ChooseIdentity = %v, %v; want all", got, err)
	}
	if got, err := c.SplitValues(ctx, users, "id", []any{1}); got != nil || err != nil {
		t.Errorf("SplitValues = %v, %v; want nil, nil", got, err)
	}
	if got, want := c.String(), "chooser.First(chooser.RoundRobin([s9]), chooser.All)"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
}

func TestFirstPanics(t *testing.T) {
	tests := []struct {
		name    string
		members []any
		want    string
	}{
		{"nil", []any{chooser.All, nil}, "member 1 is nil"},
		{"typed nil", []any{(*chooser.Hash)(nil)}, "member 0 is a nil *chooser.Hash"},
		{"not a chooser", []any{42}, "member 0 (int) is not a ShardChooser"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				if r := recover(); r == nil || !strings.Contains(fmt.Sprint(r), tt.want) {
					t.Errorf("First(%v) panicked with %v; want a panic containing %q", tt.members, r, tt.want)
				}
			}()
			chooser.First(tt.members...)
		})
	}
}

// TestFirstSplitsINListPerValue: with ranges first and a hash behind them,
// each value of an IN list goes where a row with that value is placed, not
// wherever the first member that owns some of the list would send all of it.
func TestFirstSplitsINListPerValue(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	low, err := chooser.NewRanges("id", chooser.Range[int64]{From: 0, To: 500, Shard: "s3"})
	if err != nil {
		t.Fatal(err)
	}
	h, err := chooser.NewHash("id", chooser.Spread(16, "s0", "s1", "s2"))
	if err != nil {
		t.Fatal(err)
	}
	c := chooser.First(low, h)
	values := []any{int64(1), int64(600), int64(499), int64(7000)}
	parts, err := c.SplitValues(ctx, users, "id", values)
	if err != nil {
		t.Fatal(err)
	}
	want := map[identity.ShardID][]any{"s3": {int64(1), int64(499)}}
	for _, v := range []int64{600, 7000} {
		id, err := h.ChooseShard(ctx, users, &User{ID: v})
		if err != nil {
			t.Fatal(err)
		}
		want[id] = append(want[id], v)
	}
	if !reflect.DeepEqual(parts, want) {
		t.Errorf("SplitValues(%v) = %v; want %v", values, parts, want)
	}
	stmt := &chooser.Statement{Op: chooser.OpSelect, Table: users, Criteria: []chooser.Criterion{{Column: "id", Values: values}}}
	got, err := c.ChooseExecute(ctx, stmt)
	if err != nil {
		t.Fatal(err)
	}
	if len(got.List()) != len(want) || got.List()[0] != "s3" {
		t.Errorf("ChooseExecute(IN %v) = %v; want s3 first, then the hash's shards of 600 and 7000 (%v)", values, got, want)
	}
	if parts, err := c.SplitValues(ctx, users, "name", values); parts != nil || err != nil {
		t.Errorf("SplitValues on a column no member routes = %v, %v; want nil, nil", parts, err)
	}
}
