package session_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/session"
)

// FLoc and FRep are a parent and its children on the table-per-shard
// layout. Their keys are unique within a shard only: two shards' tables may
// hold equal ids, as the layout allows.
type FLoc struct {
	bun.BaseModel `bun:"table:?(prefix)flocs,alias:l"`
	session.Token

	ID   int64   `bun:",pk"`
	Part int64   `bun:",notnull"` // the shard key
	Name string  `bun:",notnull"`
	Reps []*FRep `bun:"rel:has-many,join:id=loc_id"`
}

type FRep struct {
	bun.BaseModel `bun:"table:?(prefix)freps,alias:r"`
	session.Token

	ID    int64 `bun:",pk"`
	LocID int64 `bun:",notnull"`
	Part  int64 `bun:",notnull"`
	Val   int64 `bun:",notnull"`
	Loc   *FLoc `bun:"rel:belongs-to,join:loc_id=id"`
}

// TLoc and TRep are the unsharded database's tables: every shard's rows,
// keyed by (part, id).
type TLoc struct {
	bun.BaseModel `bun:"table:flocs"`
	Part          int64  `bun:",pk"`
	ID            int64  `bun:",pk"`
	Name          string `bun:",notnull"`
}

type TRep struct {
	bun.BaseModel `bun:"table:freps"`
	Part          int64 `bun:",pk"`
	ID            int64 `bun:",pk"`
	LocID         int64 `bun:",notnull"`
	Val           int64 `bun:",notnull"`
}

// newFoldRelEnv is newFoldEnv with FLoc and FRep on every shard and in the
// unsharded database: each shard gets up to 8 parents with ids drawn from
// 1..12 and up to 30 children with ids from 1..200 pointing at 1..14, so
// equal ids on several shards are the rule, and some children point at an
// id that only another shard's table holds.
func newFoldRelEnv(t *testing.T, seed uint64) *foldEnv {
	t.Helper()
	ctx := context.Background()
	e := newFoldEnv(t, 1, seed)
	if _, err := e.single.NewCreateTable().Model((*TLoc)(nil)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.single.NewCreateTable().Model((*TRep)(nil)).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(seed, 23))
	var tlocs []TLoc
	var treps []TRep
	for i, id := range e.ids {
		db := e.shards[id]
		for _, m := range []any{(*FLoc)(nil), (*FRep)(nil)} {
			if _, err := db.NewCreateTable().Model(m).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		var locs []FLoc
		for _, n := range r.Perm(12)[:r.IntN(9)] {
			locs = append(locs, FLoc{ID: int64(n + 1), Part: int64(i), Name: fmt.Sprintf("%s-%d", id, n+1)})
			tlocs = append(tlocs, TLoc{Part: int64(i), ID: int64(n + 1), Name: fmt.Sprintf("%s-%d", id, n+1)})
		}
		var reps []FRep
		for _, n := range r.Perm(200)[:r.IntN(31)] {
			rep := FRep{ID: int64(n + 1), LocID: int64(r.IntN(14) + 1), Part: int64(i), Val: r.Int64N(1000)}
			reps = append(reps, rep)
			treps = append(treps, TRep{Part: rep.Part, ID: rep.ID, LocID: rep.LocID, Val: rep.Val})
		}
		if len(locs) > 0 {
			if _, err := db.NewInsert().Model(&locs).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		if len(reps) > 0 {
			if _, err := db.NewInsert().Model(&reps).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
	}
	if _, err := e.single.NewInsert().Model(&tlocs).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := e.single.NewInsert().Model(&treps).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	return e
}

// relLine is one child as the differential compares it.
type relLine struct{ Part, LocID, ID, Val int64 }

// checkReps fails unless every parent's Reps are, in id order, exactly
// the unsharded database's children of (its part, its id), and each child
// records its parent's shard.
func checkReps(t *testing.T, desc string, locs []*FLoc, truth map[[2]int64][]relLine) {
	t.Helper()
	for _, l := range locs {
		if l.Reps == nil {
			t.Fatalf("%s: parent %d of part %d has nil Reps; want a non-nil slice", desc, l.ID, l.Part)
		}
		var got []relLine
		for _, c := range l.Reps {
			got = append(got, relLine{c.Part, c.LocID, c.ID, c.Val})
			if id, ok := session.ShardOf(c); !ok || id != foldShardID(int(l.Part)) {
				t.Fatalf("%s: child %d of parent %d (part %d) records shard %q (%v); want %s", desc, c.ID, l.ID, l.Part, id, ok, foldShardID(int(l.Part)))
			}
		}
		slices.SortFunc(got, func(a, b relLine) int { return int(a.ID - b.ID) })
		if want := truth[[2]int64{l.Part, l.ID}]; !slices.Equal(got, want) {
			t.Fatalf("%s: parent %d of part %d has children %v; unsharded %v", desc, l.ID, l.Part, got, want)
		}
	}
}

// truthReps returns the unsharded database's children of the parents
// where filters, by (part, parent id), in id order, and how many parents
// there are.
func truthReps(t *testing.T, e *foldEnv, where string, arg any) (map[[2]int64][]relLine, int) {
	t.Helper()
	ctx := context.Background()
	var lines []relLine
	err := e.single.NewRaw("SELECT r.part, r.loc_id, r.id, r.val FROM freps r JOIN flocs l ON l.part = r.part AND l.id = r.loc_id WHERE "+
		strings.ReplaceAll(where, "id", "l.id")+" ORDER BY r.part, r.loc_id, r.id", arg).Scan(ctx, &lines)
	if err != nil {
		t.Fatal(err)
	}
	out := map[[2]int64][]relLine{}
	for _, l := range lines {
		k := [2]int64{l.Part, l.LocID}
		out[k] = append(out[k], l)
	}
	var n int
	if err := e.single.NewRaw("SELECT count(*) FROM flocs WHERE "+where, arg).Scan(ctx, &n); err != nil {
		t.Fatal(err)
	}
	return out, n
}

// TestFoldLoadOneStatementPerServer checks that under WithFolding a
// has-many and a belongs-to load for parents of all 64 shards send one
// statement per server (without folding: one per shard), and that the
// children attach to the parents of their own shard.
func TestFoldLoadOneStatementPerServer(t *testing.T) {
	ctx := context.Background()
	seed := diffSeed(t)
	e := newFoldRelEnv(t, seed)
	nServers := len(e.servers)
	want1 := slices.Repeat([]int{1}, nServers)
	perShard := slices.Repeat([]int{foldShards / nServers}, nServers)
	truth, _ := truthReps(t, e, "id > ?", 0)

	var locs []*FLoc
	if err := e.folded.NewSelect().Model(&locs).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	e.reset()
	if err := e.folded.LoadRelation(ctx, &locs, "Reps"); err != nil {
		t.Fatal(err)
	}
	if n := e.perServer(); !slices.Equal(n, want1) {
		t.Fatalf("BUNSHARD_SEED=%d: has-many load: statements per server %v; want %v", seed, n, want1)
	}
	checkReps(t, fmt.Sprintf("BUNSHARD_SEED=%d has-many", seed), locs, truth)

	var reps []*FRep
	if err := e.folded.NewSelect().Model(&reps).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	e.reset()
	if err := e.folded.LoadRelation(ctx, &reps, "Loc"); err != nil {
		t.Fatal(err)
	}
	if n := e.perServer(); !slices.Equal(n, want1) {
		t.Fatalf("BUNSHARD_SEED=%d: belongs-to load: statements per server %v; want %v", seed, n, want1)
	}
	checkFLocs(t, fmt.Sprintf("BUNSHARD_SEED=%d belongs-to", seed), e, reps)

	// Without WithFolding, one statement per shard that has parents.
	var plain []*FLoc
	if err := e.plain.NewSelect().Model(&plain).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	withParents := make([]int, nServers)
	seen := map[session.ShardID]bool{}
	for _, l := range plain {
		if id := foldShardID(int(l.Part)); !seen[id] {
			seen[id] = true
			withParents[e.serverOf[id]]++
		}
	}
	e.reset()
	if err := e.plain.LoadRelation(ctx, &plain, "Reps"); err != nil {
		t.Fatal(err)
	}
	if n := e.perServer(); !slices.Equal(n, withParents) {
		t.Fatalf("unfolded has-many load: statements per server %v; want %v (the shards with parents; at most %v)", n, withParents, perShard)
	}
	checkReps(t, fmt.Sprintf("BUNSHARD_SEED=%d unfolded", seed), plain, truth)

	// A unit's loads are not UNION-folded: one statement per shard, folded
	// or not. Without folding its shards' loads run concurrently, and adopt
	// untracked children into the unit's identity map (a race before the
	// loader adopted them one task at a time).
	for _, s := range []*session.Session{e.plain, e.folded} {
		checkUnitLoad(t, e, s, seed, truth, withParents)
	}
}

func checkUnitLoad(t *testing.T, e *foldEnv, s *session.Session, seed uint64, truth map[[2]int64][]relLine, withParents []int) {
	t.Helper()
	ctx := context.Background()
	err := s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		var locs []*FLoc
		if err := u.NewSelect().Model(&locs).Scan(ctx); err != nil {
			return err
		}
		e.reset()
		if err := u.LoadRelation(ctx, &locs, "Reps"); err != nil {
			return err
		}
		checkReps(t, fmt.Sprintf("BUNSHARD_SEED=%d unit", seed), locs, truth)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got := make([]int, len(e.servers))
	for i, c := range e.servers {
		for _, s := range c.statements() {
			if strings.Contains(s, "_freps") {
				got[i]++
			}
		}
	}
	if !slices.Equal(got, withParents) {
		t.Fatalf("unit: relation statements per server %v; want one per shard with parents %v", got, withParents)
	}
}

// checkFLocs fails unless every child's Loc is the unsharded database's
// parent of (its part, its loc_id), or nil when there is none, even when
// another shard holds a parent of that id.
func checkFLocs(t *testing.T, desc string, e *foldEnv, reps []*FRep) {
	t.Helper()
	var tlocs []TLoc
	if err := e.single.NewSelect().Model(&tlocs).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	names := map[[2]int64]string{}
	for _, l := range tlocs {
		names[[2]int64{l.Part, l.ID}] = l.Name
	}
	attached := 0
	for _, c := range reps {
		name, ok := names[[2]int64{c.Part, c.LocID}]
		switch {
		case !ok && c.Loc != nil:
			t.Fatalf("%s: child %d of part %d has Loc %d of part %d (%s); the unsharded database has no parent (part %d, id %d)",
				desc, c.ID, c.Part, c.Loc.ID, c.Loc.Part, c.Loc.Name, c.Part, c.LocID)
		case ok && c.Loc == nil:
			t.Fatalf("%s: child %d of part %d has no Loc; want %s", desc, c.ID, c.Part, name)
		case ok && (c.Loc.Name != name || c.Loc.Part != c.Part || c.Loc.ID != c.LocID):
			t.Fatalf("%s: child %d of part %d has Loc %s (part %d, id %d); want %s", desc, c.ID, c.Part, c.Loc.Name, c.Loc.Part, c.Loc.ID, name)
		case ok:
			attached++
			if id, sok := session.ShardOf(c.Loc); !sok || id != foldShardID(int(c.Part)) {
				t.Fatalf("%s: Loc %s records shard %q (%v); want %s", desc, name, id, sok, foldShardID(int(c.Part)))
			}
		}
	}
	if len(reps) > 0 && attached == 0 {
		t.Fatalf("%s: no child found its parent; the seed's data proves nothing", desc)
	}
}

// TestFoldLoadDifferential loads, folded, the children of random subsets
// of parents at 64 shards (has-many, then belongs-to back to the parents
// through "Reps.Loc"), and compares every parent's children with the
// unsharded database's, statements one per server per level.
func TestFoldLoadDifferential(t *testing.T) {
	ctx := context.Background()
	seed := diffSeed(t)
	e := newFoldRelEnv(t, seed)
	want2 := slices.Repeat([]int{2}, len(e.servers))
	r := rand.New(rand.NewPCG(seed, 29))
	if _, err := e.folded.NewSelect().Model((*FLoc)(nil)).Count(ctx); err != nil { // the shards are asked where they are
		t.Fatal(err)
	}
	for round := range 12 {
		k := r.IntN(4)
		where, arg := "id % 4 <> ?", any(k)
		if round%3 == 0 {
			where, arg = "id > ?", any(r.IntN(6))
		}
		desc := fmt.Sprintf("BUNSHARD_SEED=%d round %d WHERE %s %v", seed, round, where, arg)
		truth, n := truthReps(t, e, where, arg)
		var locs []*FLoc
		if err := e.folded.NewSelect().Model(&locs).Where(where, arg).Scan(ctx); err != nil {
			t.Fatalf("%s: %v", desc, err)
		}
		if len(locs) != n {
			t.Fatalf("%s: %d parents; unsharded %d", desc, len(locs), n)
		}
		e.reset()
		if err := e.folded.LoadRelation(ctx, &locs, "Reps.Loc"); err != nil {
			t.Fatalf("%s: %v", desc, err)
		}
		if got := e.perServer(); !slices.Equal(got, want2) {
			t.Fatalf("%s: statements per server %v; want %v (one per level)", desc, got, want2)
		}
		checkReps(t, desc, locs, truth)
		children := 0
		for _, l := range locs {
			children += len(l.Reps)
			for _, c := range l.Reps {
				// Outside a unit there is no identity map: Loc is a copy of the parent.
				if c.Loc == nil || c.Loc.ID != l.ID || c.Loc.Part != l.Part || c.Loc.Name != l.Name {
					t.Fatalf("%s: child %d of parent %d (part %d) has Loc %+v; want its parent %s", desc, c.ID, l.ID, l.Part, c.Loc, l.Name)
				}
				if id, ok := session.ShardOf(c.Loc); !ok || id != foldShardID(int(l.Part)) {
					t.Fatalf("%s: Loc %s records shard %q (%v)", desc, l.Name, id, ok)
				}
			}
		}
		if n > 0 && children == 0 {
			t.Fatalf("%s: %d parents and no children; the round proves nothing", desc, n)
		}
	}
}

// TestFoldLoadEqualKeys puts parent id 1 on two shards of one server, each
// with children of its own, and checks that a folded load gives each
// parent its own shard's children, and each child its own shard's parent.
func TestFoldLoadEqualKeys(t *testing.T) {
	ctx := context.Background()
	e := newFoldEnv(t, 1, diffSeed(t))
	a, b := e.ids[0], e.ids[len(e.servers)] // same server: i % servers
	if e.serverOf[a] != e.serverOf[b] {
		t.Fatalf("shards %s and %s are on servers %d and %d; want one", a, b, e.serverOf[a], e.serverOf[b])
	}
	for n, id := range []session.ShardID{a, b} {
		part := int64(slices.Index(e.ids, id))
		db := e.shards[id]
		for _, m := range []any{(*FLoc)(nil), (*FRep)(nil)} {
			if _, err := db.NewCreateTable().Model(m).Exec(ctx); err != nil {
				t.Fatal(err)
			}
		}
		locs := []FLoc{{ID: 1, Part: part, Name: string(id)}}
		if _, err := db.NewInsert().Model(&locs).Exec(ctx); err != nil {
			t.Fatal(err)
		}
		reps := []FRep{{ID: 1, LocID: 1, Part: part, Val: int64(100 + n)}, {ID: int64(2 + n), LocID: 1, Part: part, Val: int64(200 + n)}}
		if _, err := db.NewInsert().Model(&reps).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	two := session.SetShardIDs(a, b)
	var locs []*FLoc
	if err := e.folded.NewSelect().Model(&locs).Options(two).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(locs) != 2 {
		t.Fatalf("%d parents; want 2", len(locs))
	}
	e.reset()
	if err := e.folded.LoadRelation(ctx, &locs, "Reps"); err != nil {
		t.Fatal(err)
	}
	if n := e.perServer(); n[e.serverOf[a]] != 1 {
		t.Fatalf("statements per server %v; want one on server %d", n, e.serverOf[a])
	}
	for _, l := range locs {
		n := slices.Index([]session.ShardID{a, b}, foldShardID(int(l.Part)))
		want := []int64{int64(100 + n), int64(200 + n)}
		var got []int64
		for _, c := range l.Reps {
			got = append(got, c.Val)
			if c.Part != l.Part {
				t.Fatalf("parent 1 of %s has child %d of part %d", l.Name, c.ID, c.Part)
			}
		}
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("parent 1 of %s has children of values %v; want %v", l.Name, got, want)
		}
	}
	var reps []*FRep
	if err := e.folded.NewSelect().Model(&reps).Options(two).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	e.reset()
	if err := e.folded.LoadRelation(ctx, &reps, "Loc"); err != nil {
		t.Fatal(err)
	}
	if n := e.perServer(); n[e.serverOf[a]] != 1 {
		t.Fatalf("belongs-to: statements per server %v; want one on server %d", n, e.serverOf[a])
	}
	if len(reps) != 4 {
		t.Fatalf("%d children; want 4", len(reps))
	}
	for _, c := range reps {
		want := foldShardID(int(c.Part))
		if c.Loc == nil || c.Loc.Name != string(want) {
			t.Fatalf("child %d of part %d has Loc %+v; want the parent of %s", c.ID, c.Part, c.Loc, want)
		}
	}
}
