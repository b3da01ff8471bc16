package chooser_test

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

func mustJump(t testing.TB, column string, shards ...identity.ShardID) *chooser.Jump {
	t.Helper()
	j, err := chooser.NewJump(column, shards...)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func shardList(n int) []identity.ShardID {
	shards := make([]identity.ShardID, n)
	for i := range shards {
		shards[i] = identity.ShardID(fmt.Sprintf("s%d", i))
	}
	return shards
}

func TestNewJumpErrors(t *testing.T) {
	tests := []struct {
		name, column string
		shards       []identity.ShardID
		want         string
	}{
		{"no column", "", []identity.ShardID{"a"}, "empty column"},
		{"no shards", "id", nil, "no shards"},
		{"empty shard", "id", []identity.ShardID{"a", ""}, "shard 1 has the empty shard ID"},
		{"repeat", "id", []identity.ShardID{"a", "b", "a"}, `shard "a" is listed twice`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := chooser.NewJump(tt.column, tt.shards...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewJump(%q, %v) error = %v; want one containing %q", tt.column, tt.shards, err, tt.want)
			}
		})
	}
}

// TestJumpAddShard checks the property Jump exists for: appending a shard
// moves about 1/(n+1) of the keys, and only onto the new shard.
func TestJumpAddShard(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	const keys = 20_000
	for n := 1; n <= 12; n++ {
		before := mustJump(t, "id", shardList(n)...)
		after := mustJump(t, "id", shardList(n+1)...)
		newShard := identity.ShardID(fmt.Sprintf("s%d", n))
		moved := 0
		for i := range int64(keys) {
			u := &User{ID: i * 7919}
			a, err := before.ChooseShard(ctx, users, u)
			if err != nil {
				t.Fatal(err)
			}
			b, err := after.ChooseShard(ctx, users, u)
			if err != nil {
				t.Fatal(err)
			}
			if a != b {
				moved++
				if b != newShard {
					t.Fatalf("n=%d: key %d moved from %s to %s; want only moves to %s", n, u.ID, a, b, newShard)
				}
			}
		}
		want := keys / (n + 1)
		if moved < want*85/100 || moved > want*115/100 {
			t.Errorf("going from %d to %d shards moved %d of %d keys; want about %d", n, n+1, moved, keys, want)
		}
	}
}

func TestJumpBalance(t *testing.T) {
	ctx := context.Background()
	accounts := tableOf[Account]()
	j := mustJump(t, "slug", shardList(5)...)
	count := map[identity.ShardID]int{}
	for i := range 50_000 {
		id, err := j.ChooseShard(ctx, accounts, &Account{Slug: fmt.Sprintf("tenant-%d", i)})
		if err != nil {
			t.Fatal(err)
		}
		count[id]++
	}
	for _, s := range shardList(5) {
		if n := count[s]; n < 9_000 || n > 11_000 {
			t.Errorf("shard %s holds %d of 50000 keys; want about 10000", s, n)
		}
	}
}

func TestJumpChooseIdentity(t *testing.T) {
	ctx := context.Background()
	j := mustJump(t, "id", shardList(4)...)
	users, accounts := tableOf[User](), tableOf[Account]()
	want, err := j.ChooseShard(ctx, users, &User{ID: 77})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := j.ChooseIdentity(ctx, chooser.Key{Table: users, PK: []any{int64(77)}}); err != nil || got.String() != chooser.Shards(want).String() {
		t.Errorf("ChooseIdentity(77) = %v, %v; want [%s]", got, err, want)
	}
	if got, err := j.ChooseIdentity(ctx, chooser.Key{Table: accounts, PK: []any{"x"}}); err != nil || !got.IsAll() {
		t.Errorf("ChooseIdentity(Account x) = %v, %v; want all", got, err)
	}
}

func TestJumpChooseExecute(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	j := mustJump(t, "id", shardList(4)...)
	checkExecute(t, j, func(v int64) identity.ShardID {
		id, err := j.ChooseShard(ctx, users, &User{ID: v})
		if err != nil {
			t.Fatal(err)
		}
		return id
	})
}

func TestJumpString(t *testing.T) {
	j := mustJump(t, "id", "a", "b")
	if got, want := j.String(), "chooser.Jump(id, [a b])"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
}
