package chooser

import (
	"context"
	"fmt"
	"reflect"
	"sync"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// Directory is the authority on which shard holds each key: a table of
// tenant -> shard on a control database, a service, a static file.
//
// Lookup receives distinct keys in canonical form (integers as int64, or
// uint64 above math.MaxInt64; strings and []byte as string) and returns the
// shard of each key it knows, keyed by the same values. A key it does not
// know is simply left out of the map; an error fails the whole routing call.
// It must be safe for concurrent use.
//
// Directory is an interface so that an implementation can hold a connection
// and a statement; new methods will never be added to it.
type Directory interface {
	Lookup(ctx context.Context, keys []any) (map[any]identity.ShardID, error)
}

// DirectoryFunc adapts a function to [Directory].
type DirectoryFunc func(ctx context.Context, keys []any) (map[any]identity.ShardID, error)

// Lookup calls f.
func (f DirectoryFunc) Lookup(ctx context.Context, keys []any) (map[any]identity.ShardID, error) {
	return f(ctx, keys)
}

// LookupOption configures a [Lookup].
type LookupOption func(*lookupConfig)

type lookupConfig struct {
	cacheSize int
}

// DefaultLookupCacheSize is the number of keys a [Lookup] caches unless
// [WithCacheSize] says otherwise.
const DefaultLookupCacheSize = 10_000

// WithCacheSize bounds the Lookup's cache to n keys, evicting the least
// recently used; 0 turns the cache off, so that every routing call asks the
// directory. [NewLookup] rejects a negative n.
func WithCacheSize(n int) LookupOption {
	return func(c *lookupConfig) { c.cacheSize = n }
}

// Lookup routes by one column's value through a [Directory], the
// arbitrary key -> shard map that lets single keys (a large tenant) move
// alone. Answers are kept in a bounded least-recently-used cache, so a hit
// costs a map lookup under a mutex and allocates nothing; misses in one
// call are fetched together, in one Directory call.
//
// When a key moves, call [Lookup.Invalidate] (or [Lookup.InvalidateAll]) on
// every process after the directory has changed. A lookup that was already
// in flight when the cache was invalidated still answers its caller but does
// not refill the cache, so a stale answer cannot outlive the invalidation.
// Concurrent misses on the same key each ask the directory.
//
// A key the directory does not know is an error that names it and wraps
// [ErrNoOpinion]: First(lookup, hash) sends keys that were never placed by
// hand to the hash. Lookup is a [ShardChooser], an [IdentityChooser] (exact
// when the column is a primary-key column, else every shard), an
// [ExecuteChooser] (declared criteria on the column pick the shards, else
// every shard) and a [Splitter]. It is safe for concurrent use.
type Lookup struct {
	column string
	col    byColumn // reads the column from objects; its pick is unused
	dir    Directory
	size   int

	mu sync.Mutex
	// entries and the list through root hold the cached keys, most recently
	// used first; len(entries) <= size.
	entries map[cacheKey]*lruEntry
	root    lruEntry
	// gen counts invalidations. A fetch notes it before asking the
	// directory and caches the answer only if it has not changed.
	gen uint64
}

var (
	_ ShardChooser    = (*Lookup)(nil)
	_ IdentityChooser = (*Lookup)(nil)
	_ ExecuteChooser  = (*Lookup)(nil)
	_ Splitter        = (*Lookup)(nil)
)

// cacheKey is a key in canonical form, comparable without boxing.
type cacheKey struct {
	kind keyKind // kindInt, kindUint (above MaxInt64 only) or kindString
	n    uint64
	s    string
}

// scalar returns k as the key it came from (a []byte key as its string).
func (k cacheKey) scalar() key { return key{Kind: k.kind, N: k.n, S: k.s} }

// value is the canonical value the Directory is asked about.
func (k cacheKey) value() any { return k.scalar().Canonical() }

func (k cacheKey) String() string { return k.scalar().String() }

type lruEntry struct {
	key        cacheKey
	shard      [1]identity.ShardID // backs target, so an entry is one allocation
	target     Target
	prev, next *lruEntry
}

// NewLookup returns a Lookup on column asking dir. It fails if column is
// empty, dir is nil or an option is invalid. It does not call dir.
func NewLookup(column string, dir Directory, opts ...LookupOption) (*Lookup, error) {
	if column == "" {
		return nil, fmt.Errorf("chooser: NewLookup: empty column name")
	}
	if dir == nil {
		return nil, fmt.Errorf("chooser: NewLookup(%q): nil Directory", column)
	}
	cfg := lookupConfig{cacheSize: DefaultLookupCacheSize}
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.cacheSize < 0 {
		return nil, fmt.Errorf("chooser: NewLookup(%q): WithCacheSize(%d): want 0 (no cache) or more", column, cfg.cacheSize)
	}
	l := &Lookup{
		column:  column,
		col:     byColumn{name: column, want: lookupWant},
		dir:     dir,
		size:    cfg.cacheSize,
		entries: make(map[cacheKey]*lruEntry),
	}
	l.root.prev, l.root.next = &l.root, &l.root
	return l, nil
}

// Column returns the column the chooser routes on.
func (l *Lookup) Column() string { return l.column }

// Invalidate drops keys from the cache, so that the next call for each asks
// the directory again. Keys are compared in canonical form: Invalidate(7)
// drops int64(7).
func (l *Lookup) Invalidate(keys ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	for _, x := range keys {
		ck, ok := canonical(keyOf(x))
		if !ok {
			continue
		}
		if e := l.entries[ck]; e != nil {
			l.unlink(e)
			delete(l.entries, ck)
		}
	}
}

// InvalidateAll empties the cache.
func (l *Lookup) InvalidateAll() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.gen++
	clear(l.entries)
	l.root.prev, l.root.next = &l.root, &l.root
}

// ChooseShard returns the directory's shard for obj's column value. It fails
// if the model has no such column, the value is NULL or not an integer or a
// string, or the directory fails; a key the directory does not know fails
// with an error wrapping [ErrNoOpinion].
func (l *Lookup) ChooseShard(ctx context.Context, table *schema.Table, obj any) (identity.ShardID, error) {
	k, err := l.col.objectKey(table, obj)
	if err != nil {
		return "", err
	}
	t, err := l.one(ctx, table, k)
	if err != nil {
		return "", err
	}
	return t.shards[0], nil
}

const lookupWant = "an integer, a string or a []byte"

// ChooseIdentity returns the directory's shard for the key when the column
// is a primary-key column of the model; otherwise the parent's shard for a
// relation load (k.LoadedFrom), else [AllShards].
func (l *Lookup) ChooseIdentity(ctx context.Context, k Key) (Target, error) {
	i := pkIndex(k.Table, l.column)
	if i < 0 || i >= len(k.PK) {
		return loadedFrom(k.LoadedFrom), nil
	}
	kk := unpadded(keyOf(k.PK[i]), fieldOf(k.Table, l.column))
	if kk.Kind == kindNone {
		return Target{}, badKeyError(k.Table, l.column, errorValue(reflect.ValueOf(k.PK[i])), lookupWant)
	}
	return l.one(ctx, k.Table, kk)
}

// ChooseExecute returns the directory's shards for the values declared on
// the column, in the order of the values and without repeats; when the
// statement declares no criterion on the column, the parent's shard for a
// relation load (stmt.LoadedFrom), else [AllShards]; [None] for an empty IN
// list. All cache misses go to the directory in one call.
func (l *Lookup) ChooseExecute(ctx context.Context, stmt *Statement) (Target, error) {
	if stmt == nil {
		return AllShards(), nil
	}
	values, ok := stmt.Values(l.column)
	switch {
	case !ok:
		return loadedFrom(stmt.LoadedFrom), nil
	case len(values) == 0:
		return None(), nil
	case len(values) == 1:
		k := unpadded(keyOf(values[0]), fieldOf(stmt.Table, l.column))
		if k.Kind == kindNone {
			return Target{}, badKeyError(stmt.Table, l.column, errorValue(reflect.ValueOf(values[0])), lookupWant)
		}
		return l.one(ctx, stmt.Table, k)
	}
	shards, err := l.many(ctx, stmt.Table, values)
	if err != nil {
		return Target{}, err
	}
	ids := make([]identity.ShardID, 0, 1)
	for _, id := range shards {
		if !containsShard(ids, id) {
			ids = append(ids, id)
		}
	}
	return Target{shards: ids}, nil
}

func containsShard(ids []identity.ShardID, id identity.ShardID) bool {
	for _, x := range ids {
		if x == id {
			return true
		}
	}
	return false
}

// SplitValues groups values by the directory's shard for each; it returns
// nil, nil for any other column. All cache misses go to the directory in
// one call.
func (l *Lookup) SplitValues(ctx context.Context, table *schema.Table, column string, values []any) (map[identity.ShardID][]any, error) {
	if column != l.column {
		return nil, nil
	}
	shards, err := l.many(ctx, table, values)
	if err != nil {
		return nil, err
	}
	parts := make(map[identity.ShardID][]any)
	for i, id := range shards {
		parts[id] = append(parts[id], values[i])
	}
	return parts, nil
}

// String returns "chooser.Lookup(column)".
func (l *Lookup) String() string { return "chooser.Lookup(" + l.column + ")" }

// canonical turns a key into its cache and directory form, a comparable
// copy of the key's identity.Scalar.Canonical that is not boxed; floats and
// NULL have none.
func canonical(k key) (cacheKey, bool) {
	switch k.Kind {
	case kindInt, kindUint:
		return cacheKey{kind: k.Kind, n: k.N}, true
	case kindString:
		return cacheKey{kind: kindString, s: k.S}, true
	case kindBytes:
		return cacheKey{kind: kindString, s: string(k.B)}, true
	}
	return cacheKey{}, false
}

// one resolves a single key: from the cache when it can, which allocates
// nothing.
func (l *Lookup) one(ctx context.Context, table *schema.Table, k key) (Target, error) {
	ck, ok := canonical(k)
	if !ok {
		return Target{}, fmt.Errorf("chooser: %s: value %v cannot be a directory key; want %s", at(table, l.column), k, lookupWant)
	}
	l.mu.Lock()
	if e := l.entries[ck]; e != nil {
		l.touch(e)
		l.mu.Unlock()
		return e.target, nil
	}
	gen := l.gen
	l.mu.Unlock()
	found, err := l.fetch(ctx, table, []cacheKey{ck}, gen)
	if err != nil {
		return Target{}, err
	}
	return found[0], nil
}

// many resolves values to their shards, in order, asking the directory
// once for all the keys the cache does not hold.
func (l *Lookup) many(ctx context.Context, table *schema.Table, values []any) ([]identity.ShardID, error) {
	keys := make([]cacheKey, len(values))
	for i, v := range values {
		ck, ok := canonical(unpadded(keyOf(v), fieldOf(table, l.column)))
		if !ok {
			return nil, badKeyError(table, l.column, errorValue(reflect.ValueOf(v)), lookupWant)
		}
		keys[i] = ck
	}
	shards := make([]identity.ShardID, len(values))
	var missing []cacheKey
	seen := make(map[cacheKey]bool)
	l.mu.Lock()
	for i, ck := range keys {
		if e := l.entries[ck]; e != nil {
			l.touch(e)
			shards[i] = e.shard[0]
		} else if !seen[ck] {
			seen[ck] = true
			missing = append(missing, ck)
		}
	}
	gen := l.gen
	l.mu.Unlock()
	if len(missing) == 0 {
		return shards, nil
	}
	found, err := l.fetch(ctx, table, missing, gen)
	if err != nil {
		return nil, err
	}
	byKey := make(map[cacheKey]identity.ShardID, len(missing))
	for i, ck := range missing {
		byKey[ck] = found[i].shards[0]
	}
	for i, ck := range keys {
		if shards[i] == "" {
			shards[i] = byKey[ck]
		}
	}
	return shards, nil
}

// fetch asks the directory about keys (distinct, canonical) and returns one
// single-shard Target per key, caching them unless the cache was
// invalidated since gen was read.
func (l *Lookup) fetch(ctx context.Context, table *schema.Table, keys []cacheKey, gen uint64) ([]Target, error) {
	args := make([]any, len(keys))
	for i, ck := range keys {
		args[i] = ck.value()
	}
	m, err := l.dir.Lookup(ctx, args)
	if err != nil {
		return nil, fmt.Errorf("chooser: %s: directory lookup of %d keys: %w", at(table, l.column), len(keys), err)
	}
	entries := make([]*lruEntry, len(keys))
	targets := make([]Target, len(keys))
	for i, ck := range keys {
		id, ok := m[args[i]]
		if !ok || id == "" {
			return nil, fmt.Errorf("chooser: %s: key %v is not in the directory: %w", at(table, l.column), ck, ErrNoOpinion)
		}
		e := &lruEntry{key: ck}
		e.shard[0] = id
		e.target = Target{shards: e.shard[:]}
		entries[i] = e
		targets[i] = e.target
	}
	if l.size == 0 {
		return targets, nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.gen != gen {
		// Invalidated while the directory was answering: the answer may
		// predate the change the invalidation announced, so it is
		// returned to this caller but not kept.
		return targets, nil
	}
	for _, e := range entries {
		if old := l.entries[e.key]; old != nil {
			l.unlink(old)
		}
		l.entries[e.key] = e
		l.pushFront(e)
		if len(l.entries) > l.size {
			lru := l.root.prev
			l.unlink(lru)
			delete(l.entries, lru.key)
		}
	}
	return targets, nil
}

// The LRU list is circular through root; callers hold mu.

func (l *Lookup) touch(e *lruEntry) {
	if l.root.next != e {
		l.unlink(e)
		l.pushFront(e)
	}
}

func (l *Lookup) unlink(e *lruEntry) {
	e.prev.next, e.next.prev = e.next, e.prev
	e.prev, e.next = nil, nil
}

func (l *Lookup) pushFront(e *lruEntry) {
	e.prev, e.next = &l.root, l.root.next
	l.root.next.prev = e
	l.root.next = e
}
