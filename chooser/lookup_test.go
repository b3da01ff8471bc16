package chooser_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// fakeDirectory is an in-memory Directory that records every call.
type fakeDirectory struct {
	mu     sync.Mutex
	shards map[any]identity.ShardID
	calls  [][]any
	err    error
	// during, if set, runs inside Lookup before it answers.
	during func()
}

func newFakeDirectory(m map[any]identity.ShardID) *fakeDirectory {
	return &fakeDirectory{shards: m}
}

func (d *fakeDirectory) Lookup(_ context.Context, keys []any) (map[any]identity.ShardID, error) {
	d.mu.Lock()
	d.calls = append(d.calls, slices.Clone(keys))
	err, during := d.err, d.during
	out := make(map[any]identity.ShardID)
	for _, k := range keys {
		if id, ok := d.shards[k]; ok {
			out[k] = id
		}
	}
	d.mu.Unlock()
	if during != nil {
		during()
	}
	if err != nil {
		return nil, err
	}
	return out, nil
}

func (d *fakeDirectory) set(k any, id identity.ShardID) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.shards[k] = id
}

func (d *fakeDirectory) callCount() int {
	d.mu.Lock()
	defer d.mu.Unlock()
	return len(d.calls)
}

func (d *fakeDirectory) lastCall() []any {
	d.mu.Lock()
	defer d.mu.Unlock()
	if len(d.calls) == 0 {
		return nil
	}
	return d.calls[len(d.calls)-1]
}

func mustLookup(t testing.TB, column string, dir chooser.Directory, opts ...chooser.LookupOption) *chooser.Lookup {
	t.Helper()
	l, err := chooser.NewLookup(column, dir, opts...)
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestLookupCache(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	dir := newFakeDirectory(map[any]identity.ShardID{int64(1): "a", int64(2): "b", int64(3): "a"})
	l := mustLookup(t, "id", dir)

	choose := func(id int64) identity.ShardID {
		t.Helper()
		got, err := l.ChooseShard(ctx, users, &User{ID: id})
		if err != nil {
			t.Fatalf("ChooseShard(%d): %v", id, err)
		}
		return got
	}
	if got := choose(1); got != "a" {
		t.Errorf("ChooseShard(1) = %v; want a", got)
	}
	if n := dir.callCount(); n != 1 {
		t.Fatalf("after one miss: %d directory calls; want 1", n)
	}
	// Hits, through every role and key type, do not call the directory.
	choose(1)
	if got, err := l.ChooseIdentity(ctx, chooser.Key{Table: users, PK: []any{1}}); err != nil || got.String() != "[a]" {
		t.Errorf("ChooseIdentity(int 1) = %v, %v; want [a]", got, err)
	}
	stmt := &chooser.Statement{Op: chooser.OpSelect, Table: users, Criteria: []chooser.Criterion{{Column: "id", Values: []any{uint8(1)}}}}
	if got, err := l.ChooseExecute(ctx, stmt); err != nil || got.String() != "[a]" {
		t.Errorf("ChooseExecute(uint8 1) = %v, %v; want [a]", got, err)
	}
	if n := dir.callCount(); n != 1 {
		t.Errorf("after cache hits: %d directory calls; want still 1", n)
	}

	// Invalidate: the next call asks again and sees the move.
	dir.set(int64(1), "c")
	if got := choose(1); got != "a" {
		t.Errorf("before Invalidate: ChooseShard(1) = %v; want the cached a", got)
	}
	l.Invalidate(int32(1)) // canonical form: int32(1) is int64(1)
	if got := choose(1); got != "c" {
		t.Errorf("after Invalidate: ChooseShard(1) = %v; want c", got)
	}
	if n := dir.callCount(); n != 2 {
		t.Errorf("after Invalidate: %d directory calls; want 2", n)
	}

	// InvalidateAll forgets everything.
	choose(2)
	l.InvalidateAll()
	calls := dir.callCount()
	choose(1)
	choose(2)
	if n := dir.callCount() - calls; n != 2 {
		t.Errorf("after InvalidateAll: %d directory calls for two keys; want 2", n)
	}
}

func TestLookupBatch(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	dir := newFakeDirectory(map[any]identity.ShardID{int64(1): "a", int64(2): "b", int64(3): "a", int64(4): "c"})
	l := mustLookup(t, "id", dir)
	if _, err := l.ChooseShard(ctx, users, &User{ID: 2}); err != nil {
		t.Fatal(err)
	}
	// One call for all the misses, each key once, in canonical form.
	stmt := &chooser.Statement{Op: chooser.OpSelect, Table: users, Criteria: []chooser.Criterion{{Column: "id", Values: []any{int64(3), 2, int64(1), int32(3), uint64(4)}}}}
	got, err := l.ChooseExecute(ctx, stmt)
	if err != nil || got.String() != "[a b c]" {
		t.Errorf("ChooseExecute(3, 2, 1, 3, 4) = %v, %v; want [a b c]", got, err)
	}
	if n := dir.callCount(); n != 2 {
		t.Errorf("%d directory calls; want 2 (one miss, then one batch)", n)
	}
	if want := []any{int64(3), int64(1), int64(4)}; !reflect.DeepEqual(dir.lastCall(), want) {
		t.Errorf("batch asked the directory for %#v; want %#v", dir.lastCall(), want)
	}
	parts, err := l.SplitValues(ctx, users, "id", []any{int64(1), int64(2), int64(3)})
	want := map[identity.ShardID][]any{"a": {int64(1), int64(3)}, "b": {int64(2)}}
	if err != nil || !reflect.DeepEqual(parts, want) {
		t.Errorf("SplitValues(1, 2, 3) = %v, %v; want %v", parts, err, want)
	}
	if n := dir.callCount(); n != 2 {
		t.Errorf("SplitValues of cached keys made %d directory calls in total; want still 2", n)
	}
	if parts, err := l.SplitValues(ctx, users, "name", []any{"x"}); parts != nil || err != nil {
		t.Errorf("SplitValues(name) = %v, %v; want nil, nil", parts, err)
	}
}

func TestLookupMissAndErrors(t *testing.T) {
	ctx := context.Background()
	accounts := tableOf[Account]()
	dir := newFakeDirectory(map[any]identity.ShardID{"acme": "a"})
	l := mustLookup(t, "slug", dir)

	_, err := l.ChooseShard(ctx, accounts, &Account{Slug: "hooli"})
	if err == nil || !errors.Is(err, chooser.ErrNoOpinion) || !strings.Contains(err.Error(), `Account.slug: key "hooli" is not in the directory`) {
		t.Errorf("ChooseShard(hooli) error = %v; want one naming the key and wrapping ErrNoOpinion", err)
	}
	// A miss is not cached: once the key is placed, it is found.
	dir.set("hooli", "b")
	if got, err := l.ChooseShard(ctx, accounts, &Account{Slug: "hooli"}); got != "b" || err != nil {
		t.Errorf("after placing hooli: ChooseShard = %v, %v; want b", got, err)
	}

	boom := errors.New("directory down")
	dir.err = boom
	_, err = l.ChooseIdentity(ctx, chooser.Key{Table: accounts, PK: []any{"initech"}})
	if !errors.Is(err, boom) || errors.Is(err, chooser.ErrNoOpinion) {
		t.Errorf("ChooseIdentity with a failing directory: error = %v; want it to wrap the directory's error only", err)
	}
	if _, err := l.ChooseIdentity(ctx, chooser.Key{Table: accounts, PK: []any{1.5}}); err == nil {
		t.Error("ChooseIdentity(1.5): want an error")
	}
	if got, err := l.ChooseIdentity(ctx, chooser.Key{Table: tableOf[User](), PK: []any{int64(1)}}); err != nil || !got.IsAll() {
		t.Errorf("ChooseIdentity on a model without the column = %v, %v; want all", got, err)
	}
}

func TestLookupBounded(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	dir := newFakeDirectory(map[any]identity.ShardID{})
	for i := range int64(10) {
		dir.set(i, identity.ShardID(fmt.Sprintf("s%d", i%3)))
	}
	l := mustLookup(t, "id", dir, chooser.WithCacheSize(3))
	for i := range int64(5) {
		if _, err := l.ChooseShard(ctx, users, &User{ID: i}); err != nil {
			t.Fatal(err)
		}
	}
	// The cache holds the 3 most recently used keys: 2, 3, 4.
	calls := dir.callCount()
	for _, i := range []int64{4, 3, 2} {
		l.ChooseShard(ctx, users, &User{ID: i})
	}
	if n := dir.callCount() - calls; n != 0 {
		t.Errorf("recent keys 4, 3, 2 made %d directory calls; want 0", n)
	}
	l.ChooseShard(ctx, users, &User{ID: 0})
	if n := dir.callCount() - calls; n != 1 {
		t.Errorf("evicted key 0 made %d directory calls; want 1", n)
	}
	// Using 2, 3, 4 above made 4 the least recently used, so loading 0
	// evicted it, and 2 and 3 are still there.
	calls = dir.callCount()
	l.ChooseShard(ctx, users, &User{ID: 2})
	l.ChooseShard(ctx, users, &User{ID: 3})
	if n := dir.callCount() - calls; n != 0 {
		t.Errorf("keys 2 and 3 made %d directory calls; want 0", n)
	}
	l.ChooseShard(ctx, users, &User{ID: 4})
	if n := dir.callCount() - calls; n != 1 {
		t.Errorf("key 4, the least recently used, made %d directory calls; want 1", n)
	}

	// WithCacheSize(0) caches nothing.
	none := mustLookup(t, "id", dir, chooser.WithCacheSize(0))
	calls = dir.callCount()
	none.ChooseShard(ctx, users, &User{ID: 1})
	none.ChooseShard(ctx, users, &User{ID: 1})
	if n := dir.callCount() - calls; n != 2 {
		t.Errorf("uncached Lookup made %d directory calls for two lookups; want 2", n)
	}
	if _, err := chooser.NewLookup("id", dir, chooser.WithCacheSize(-1)); err == nil {
		t.Error("NewLookup(WithCacheSize(-1)): want an error")
	}
	if _, err := chooser.NewLookup("id", nil); err == nil {
		t.Error("NewLookup(nil directory): want an error")
	}
}

// TestLookupInvalidateDuringFetch checks that an answer the directory gave
// before an invalidation is not cached after it.
func TestLookupInvalidateDuringFetch(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	dir := newFakeDirectory(map[any]identity.ShardID{int64(1): "old"})
	l := mustLookup(t, "id", dir)
	dir.during = func() {
		// The key moves while the stale answer is on its way back.
		dir.set(int64(1), "new")
		l.Invalidate(int64(1))
	}
	if got, _ := l.ChooseShard(ctx, users, &User{ID: 1}); got != "old" {
		t.Errorf("in-flight ChooseShard(1) = %v; want the answer it got, old", got)
	}
	dir.during = nil
	if got, _ := l.ChooseShard(ctx, users, &User{ID: 1}); got != "new" {
		t.Errorf("after the invalidation: ChooseShard(1) = %v; want new (the stale answer must not be cached)", got)
	}
}

func TestLookupConcurrent(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	var calls atomic.Int64
	dir := chooser.DirectoryFunc(func(_ context.Context, keys []any) (map[any]identity.ShardID, error) {
		calls.Add(1)
		m := make(map[any]identity.ShardID, len(keys))
		for _, k := range keys {
			m[k] = identity.ShardID(fmt.Sprintf("s%d", k.(int64)%4))
		}
		return m, nil
	})
	l := mustLookup(t, "id", dir, chooser.WithCacheSize(50))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range int64(2000) {
				id := (i*7 + int64(g)) % 100
				got, err := l.ChooseShard(ctx, users, &User{ID: id})
				if want := identity.ShardID(fmt.Sprintf("s%d", id%4)); got != want || err != nil {
					t.Errorf("ChooseShard(%d) = %v, %v; want %v", id, got, err, want)
					return
				}
				if i%500 == 0 {
					l.Invalidate(id)
				}
				if i%999 == 0 {
					l.InvalidateAll()
				}
			}
		})
	}
	wg.Wait()
	if calls.Load() == 0 {
		t.Error("the directory was never called")
	}
}
