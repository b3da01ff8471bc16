package chooser_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

func TestRoundRobin(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	rr, err := chooser.NewRoundRobin("a", "b", "c")
	if err != nil {
		t.Fatal(err)
	}
	var got []identity.ShardID
	for range 7 {
		id, err := rr.ChooseShard(ctx, users, &User{})
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, id)
	}
	if want := "[a b c a b c a]"; strings.Join(strs(got), " ") != want[1:len(want)-1] {
		t.Errorf("7 × ChooseShard = %v; want %s", got, want)
	}
}

func strs(ids []identity.ShardID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

// TestRoundRobinConcurrent checks that concurrent callers share the turns
// exactly evenly (run with -race).
func TestRoundRobinConcurrent(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	rr, err := chooser.NewRoundRobin("a", "b", "c", "d")
	if err != nil {
		t.Fatal(err)
	}
	const goroutines, calls = 8, 1000
	counts := make([]map[identity.ShardID]int, goroutines)
	var wg sync.WaitGroup
	for g := range goroutines {
		counts[g] = map[identity.ShardID]int{}
		wg.Go(func() {
			for range calls {
				id, _ := rr.ChooseShard(ctx, users, &User{})
				counts[g][id]++ // each goroutine owns its map
			}
		})
	}
	wg.Wait()
	total := map[identity.ShardID]int{}
	for _, m := range counts {
		for id, n := range m {
			total[id] += n
		}
	}
	for _, id := range []identity.ShardID{"a", "b", "c", "d"} {
		if total[id] != goroutines*calls/4 {
			t.Errorf("shard %s got %d of %d calls; want exactly %d", id, total[id], goroutines*calls, goroutines*calls/4)
		}
	}
}

func TestNewRoundRobinErrors(t *testing.T) {
	for _, shards := range [][]identity.ShardID{nil, {"a", ""}, {"a", "a"}} {
		if _, err := chooser.NewRoundRobin(shards...); err == nil {
			t.Errorf("NewRoundRobin(%q) = nil error; want one", shards)
		}
	}
}
