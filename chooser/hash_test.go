package chooser_test

import (
	"context"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

func mustHash(t testing.TB, column string, assign []identity.ShardID) *chooser.Hash {
	t.Helper()
	h, err := chooser.NewHash(column, assign)
	if err != nil {
		t.Fatal(err)
	}
	return h
}

func TestSpread(t *testing.T) {
	tests := []struct {
		buckets int
		shards  []identity.ShardID
		want    []identity.ShardID
	}{
		{10, []identity.ShardID{"a", "b", "c"}, []identity.ShardID{"a", "a", "a", "a", "b", "b", "b", "c", "c", "c"}},
		{4, []identity.ShardID{"a", "b"}, []identity.ShardID{"a", "a", "b", "b"}},
		{2, []identity.ShardID{"a", "b", "c"}, []identity.ShardID{"a", "b"}},
		{1, []identity.ShardID{"a"}, []identity.ShardID{"a"}},
		{0, []identity.ShardID{"a"}, nil},
		{3, nil, nil},
	}
	for _, tt := range tests {
		if got := chooser.Spread(tt.buckets, tt.shards...); !slices.Equal(got, tt.want) {
			t.Errorf("Spread(%d, %v) = %v; want %v", tt.buckets, tt.shards, got, tt.want)
		}
	}
}

func TestNewHashErrors(t *testing.T) {
	tests := []struct {
		name, column string
		assign       []identity.ShardID
		want         string
	}{
		{"no column", "", chooser.Spread(4, "a"), "empty column"},
		{"no buckets", "id", nil, "no buckets"},
		{"empty shard", "id", []identity.ShardID{"a", ""}, "bucket 1 has the empty shard ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := chooser.NewHash(tt.column, tt.assign)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewHash(%q, %v) error = %v; want one containing %q", tt.column, tt.assign, err, tt.want)
			}
		})
	}
}

func TestHashBucket(t *testing.T) {
	h := mustHash(t, "id", chooser.Spread(1024, "s0", "s1", "s2"))
	// The canonical encoding makes every integer type with the same value,
	// named or not, share a bucket, and strings share with []byte.
	type myInt int16
	same := [][]any{
		{int64(7), int(7), int32(7), int8(7), uint16(7), uint64(7), myInt(7), TicketID(7), ptr(int64(7))},
		{int64(-3), int(-3), int32(-3), myInt(-3)},
		{"acme", []byte("acme"), Region("acme"), ptr("acme")},
	}
	for _, group := range same {
		want, err := h.Bucket(group[0])
		if err != nil {
			t.Fatalf("Bucket(%v) error: %v", group[0], err)
		}
		if want < 0 || want >= 1024 {
			t.Fatalf("Bucket(%v) = %d; want in [0, 1024)", group[0], want)
		}
		for _, v := range group[1:] {
			if got, err := h.Bucket(v); got != want || err != nil {
				t.Errorf("Bucket(%T %v) = %d, %v; want %d (as %T)", v, v, got, err, want, group[0])
			}
		}
	}
	for _, bad := range []any{nil, 1.5, struct{}{}, (*int64)(nil), []int{1}} {
		if b, err := h.Bucket(bad); err == nil {
			t.Errorf("Bucket(%#v) = %d, nil; want an error", bad, b)
		}
	}
}

// TestHashDistribution checks that keys spread evenly over buckets, which is
// what makes buckets a unit of load.
func TestHashDistribution(t *testing.T) {
	const buckets, keys = 64, 64_000
	h := mustHash(t, "id", chooser.Spread(buckets, "s0"))
	count := make([]int, buckets)
	for i := range keys {
		b, _ := h.Bucket(int64(i))
		count[b]++
	}
	for b, n := range count {
		if n < keys/buckets*8/10 || n > keys/buckets*12/10 {
			t.Errorf("bucket %d holds %d of %d sequential keys; want about %d", b, n, keys, keys/buckets)
		}
	}
}

func TestHashMoveBucket(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	h := mustHash(t, "id", chooser.Spread(16, "s0", "s1"))
	b, _ := h.Bucket(int64(42))
	assign := h.Buckets()
	assign[b] = "s2"
	moved := mustHash(t, "id", assign)
	if got, _ := moved.ChooseShard(ctx, users, &User{ID: 42}); got != "s2" {
		t.Errorf("after moving bucket %d: ChooseShard(42) = %s; want s2", b, got)
	}
	// Every key outside the moved bucket stays put.
	for i := range int64(1000) {
		before, _ := h.ChooseShard(ctx, users, &User{ID: i})
		after, _ := moved.ChooseShard(ctx, users, &User{ID: i})
		if bi, _ := h.Bucket(i); bi != b && before != after {
			t.Errorf("key %d in bucket %d moved from %s to %s", i, bi, before, after)
		}
	}
	// Buckets returns a copy.
	if h.Buckets()[b] == "s2" {
		t.Error("modifying Buckets() changed the chooser")
	}
}

// hashOwner is the reference: the shard Hash must pick for v.
func hashOwner(t testing.TB, h *chooser.Hash, v any) identity.ShardID {
	t.Helper()
	b, err := h.Bucket(v)
	if err != nil {
		t.Fatal(err)
	}
	return h.Buckets()[b]
}

func TestHashChooseShard(t *testing.T) {
	ctx := context.Background()
	h := mustHash(t, "id", chooser.Spread(256, "s0", "s1", "s2", "s3"))
	ha := mustHash(t, "slug", chooser.Spread(256, "s0", "s1", "s2", "s3"))
	hr := mustHash(t, "region", chooser.Spread(256, "s0", "s1", "s2", "s3"))
	owner := "ann"
	tests := []struct {
		name    string
		c       *chooser.Hash
		obj     any
		table   any
		want    any // the value whose shard is expected, or nil for an error
		wantErr string
	}{
		{"int64 pk", h, &User{ID: 1}, User{}, int64(1), ""},
		{"other int64", h, &User{ID: 1 << 40}, User{}, int64(1 << 40), ""},
		{"string pk", ha, &Account{Slug: "acme"}, Account{}, "acme", ""},
		{"named string", hr, &Ticket{ID: 3, Region: "eu", Owner: &owner}, Ticket{}, "eu", ""},
		{"named int32", h, &Ticket{ID: 9}, Ticket{}, int64(9), ""},
		{"missing column", ha, &User{ID: 1}, User{}, nil, `model User has no column "slug"`},
		{"not a pointer", h, User{ID: 1}, User{}, nil, "want a non-nil *chooser_test.User"},
		{"nil pointer", h, (*User)(nil), User{}, nil, "want a non-nil"},
		{"wrong model", h, &Account{}, User{}, nil, "got *chooser_test.Account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			table := tableOf[User]()
			switch tt.table.(type) {
			case Account:
				table = tableOf[Account]()
			case Ticket:
				table = tableOf[Ticket]()
			}
			got, err := tt.c.ChooseShard(ctx, table, tt.obj)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("ChooseShard(%+v) = %v, %v; want error containing %q", tt.obj, got, err, tt.wantErr)
				}
				return
			}
			if want := hashOwner(t, tt.c, tt.want); got != want || err != nil {
				t.Errorf("ChooseShard(%+v) = %v, %v; want %v", tt.obj, got, err, want)
			}
		})
	}
}

func TestHashChooseShardNullAndFloat(t *testing.T) {
	ctx := context.Background()
	tickets := tableOf[Ticket]()
	byOwner := mustHash(t, "owner", chooser.Spread(8, "s0", "s1"))
	_, err := byOwner.ChooseShard(ctx, tickets, &Ticket{ID: 1})
	if err == nil || !strings.Contains(err.Error(), "Ticket.owner: value is NULL") {
		t.Errorf("ChooseShard(NULL owner) error = %v; want one saying Ticket.owner is NULL", err)
	}
	byScore := mustHash(t, "score", chooser.Spread(8, "s0", "s1"))
	_, err = byScore.ChooseShard(ctx, tickets, &Ticket{ID: 1, Score: 2.5})
	if err == nil || !strings.Contains(err.Error(), "Ticket.score: value 2.5 cannot be hashed") {
		t.Errorf("ChooseShard(score 2.5) error = %v; want one saying 2.5 cannot be hashed", err)
	}
}

func TestHashChooseIdentity(t *testing.T) {
	ctx := context.Background()
	h := mustHash(t, "id", chooser.Spread(64, "s0", "s1", "s2"))
	byUser := mustHash(t, "user_id", chooser.Spread(64, "s0", "s1", "s2"))
	users, orders, accounts := tableOf[User](), tableOf[Order](), tableOf[Account]()
	tests := []struct {
		name    string
		c       *chooser.Hash
		key     chooser.Key
		want    chooser.Target
		wantErr bool
	}{
		{"single pk", h, chooser.Key{Table: users, PK: []any{int64(5)}}, chooser.Shards(hashOwner(t, h, 5)), false},
		{"int passed for int64", h, chooser.Key{Table: users, PK: []any{5}}, chooser.Shards(hashOwner(t, h, 5)), false},
		{"composite pk, routed part", byUser, chooser.Key{Table: orders, PK: []any{int64(8), int64(100)}}, chooser.Shards(hashOwner(t, byUser, 8)), false},
		{"composite pk, second part", h, chooser.Key{Table: orders, PK: []any{int64(8), int64(100)}}, chooser.Shards(hashOwner(t, h, 100)), false},
		{"not the pk", byUser, chooser.Key{Table: users, PK: []any{int64(5)}}, chooser.AllShards(), false},
		{"string pk on int column", h, chooser.Key{Table: accounts, PK: []any{"x"}}, chooser.AllShards(), false},
		{"short pk", byUser, chooser.Key{Table: orders, PK: nil}, chooser.AllShards(), false},
		{"bad value", h, chooser.Key{Table: users, PK: []any{1.5}}, chooser.Target{}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.c.ChooseIdentity(ctx, tt.key)
			if (err != nil) != tt.wantErr || !reflect.DeepEqual(got, tt.want) {
				t.Errorf("ChooseIdentity(%v) = %v, %v; want %v (error: %v)", tt.key.PK, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// executeCases exercises ChooseExecute and SplitValues of any single-column
// chooser on the User.id column.
func checkExecute(t *testing.T, c interface {
	chooser.ExecuteChooser
	chooser.Splitter
}, owner func(int64) identity.ShardID) {
	t.Helper()
	ctx := context.Background()
	users := tableOf[User]()
	// Pick keys on distinct shards so the order of the answer is testable.
	var a, b, c3 int64 = 1, 2, 2
	for ; owner(b) == owner(a); b++ {
		if b > 1e6 {
			t.Fatal("no key found on a second shard")
		}
	}
	for ; c3 == b || owner(c3) != owner(a); c3++ {
		if c3 > 1e6 {
			t.Fatal("no second key found on the first shard")
		}
	}
	tests := []struct {
		name string
		crit []chooser.Criterion
		want chooser.Target
	}{
		{"no criteria", nil, chooser.AllShards()},
		{"other column", []chooser.Criterion{{Column: "name", Values: []any{"x"}}}, chooser.AllShards()},
		{"equals", []chooser.Criterion{{Column: "id", Values: []any{a}}}, chooser.Shards(owner(a))},
		{"in, two shards, in order", []chooser.Criterion{{Column: "id", Values: []any{b, a, c3}}}, chooser.Shards(owner(b), owner(a))},
		{"in, one shard", []chooser.Criterion{{Column: "id", Values: []any{a, c3, a}}}, chooser.Shards(owner(a))},
		{"empty in", []chooser.Criterion{{Column: "id", Values: []any{}}}, chooser.None()},
	}
	for _, tt := range tests {
		t.Run("ChooseExecute/"+tt.name, func(t *testing.T) {
			stmt := &chooser.Statement{Op: chooser.OpSelect, Table: users, Criteria: tt.crit}
			got, err := c.ChooseExecute(ctx, stmt)
			if err != nil || got.String() != tt.want.String() {
				t.Errorf("ChooseExecute(%v) = %v, %v; want %v", tt.crit, got, err, tt.want)
			}
		})
	}
	t.Run("ChooseExecute/bad value", func(t *testing.T) {
		stmt := &chooser.Statement{Op: chooser.OpDelete, Table: users, Criteria: []chooser.Criterion{{Column: "id", Values: []any{a, struct{}{}}}}}
		if got, err := c.ChooseExecute(ctx, stmt); err == nil || !strings.Contains(err.Error(), "User.id") {
			t.Errorf("ChooseExecute(struct{}{}) = %v, %v; want an error naming User.id", got, err)
		}
	})
	t.Run("SplitValues", func(t *testing.T) {
		values := []any{a, b, c3, int(a)}
		got, err := c.SplitValues(ctx, users, "id", values)
		want := map[identity.ShardID][]any{owner(a): {a, c3, int(a)}, owner(b): {b}}
		if err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("SplitValues(%v) = %v, %v; want %v", values, got, err, want)
		}
		if got, err := c.SplitValues(ctx, users, "name", values); got != nil || err != nil {
			t.Errorf("SplitValues(name) = %v, %v; want nil, nil", got, err)
		}
	})
}

func TestHashChooseExecute(t *testing.T) {
	h := mustHash(t, "id", chooser.Spread(64, "s0", "s1", "s2"))
	checkExecute(t, h, func(v int64) identity.ShardID { return hashOwner(t, h, v) })
}

func TestHashString(t *testing.T) {
	h := mustHash(t, "id", chooser.Spread(64, "s0"))
	if got, want := h.String(), "chooser.Hash(id, 64 buckets)"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	if got := fmt.Sprint(h.Column()); got != "id" {
		t.Errorf("Column() = %q; want id", got)
	}
}

func ptr[T any](v T) *T { return &v }
