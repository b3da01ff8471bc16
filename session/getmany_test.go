package session_test

import (
	"context"
	"database/sql"
	"errors"
	"regexp"
	"slices"
	"strconv"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// wantCounts fails unless the statements each shard ran since reset are
// want (in weather.Shards order).
func wantCounts(t *testing.T, f *fixture, what string, want []int) {
	t.Helper()
	if got := f.perShard(); !slices.Equal(got, want) {
		t.Errorf("%s ran %v statements per shard %v; want %v", what, got, weather.Shards, want)
	}
}

// homes returns, per shard in weather.Shards order, whether one of ids'
// locations lives there (one statement expected) or not (none).
func homes(d weather.Data, ids []int64) []int {
	out := make([]int, len(weather.Shards))
	for _, id := range ids {
		out[slices.Index(weather.Shards, weather.ShardOfContinent[d.Locations[id-1].Continent])] = 1
	}
	return out
}

// checkLocs fails unless got holds, in order, the locations of ids as the
// unsharded database has them, each with its Token on its home shard.
func checkLocs(t *testing.T, f *fixture, d weather.Data, got []*weather.Location, ids []int64) {
	t.Helper()
	if len(got) != len(ids) {
		t.Fatalf("GetMany returned %d locations; want %d (one per key asked)", len(got), len(ids))
	}
	for i, id := range ids {
		var want weather.Location
		if err := f.single.NewSelect().Model(&want).Where("id = ?", id).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		g := got[i]
		if g.ID != want.ID || g.City != want.City || g.Continent != want.Continent {
			t.Errorf("GetMany[%d] = %d/%s/%s; want %d/%s/%s", i, g.ID, g.City, g.Continent, want.ID, want.City, want.Continent)
		}
		home := weather.ShardOfContinent[d.Locations[id-1].Continent]
		if sh, _ := session.ShardOf(g); sh != home {
			t.Errorf("ShardOf(GetMany[%d] = %d) = %q; want %q", i, id, sh, home)
		}
	}
}

// TestGetManyOneStatementPerShard: with a chooser that knows each key's
// shard, N keys cost one statement on each shard that owns some of them and
// none elsewhere; results come back in the order asked, duplicates
// included (the same object twice), as the unsharded database has them.
func TestGetManyOneStatementPerShard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := weather.Generate(40, 1, 3)
	f.seed(t, f.session(t), d)
	s, err := session.New(f.shards, weather.ShardChooser, byID(d), weather.ByContinent, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	for _, ids := range [][]int64{
		{17, 3, 40, 1, 22, 9, 3, 17}, // every shard, with repeats
		{5, 9, 13},                   // one shard only (location i is on shard (i-1)%4)
		{2},
	} {
		f.reset()
		var got []*weather.Location
		if err := s.GetMany(ctx, &got, ids); err != nil {
			t.Fatalf("GetMany(%v) = %v", ids, err)
		}
		wantCounts(t, f, "GetMany", homes(d, ids))
		checkLocs(t, f, d, got, ids)
		for i := range ids {
			for j := range i {
				if ids[i] == ids[j] && got[i] != got[j] {
					t.Errorf("GetMany(%v): key %d asked twice gave two objects; want the same", ids, ids[i])
				}
			}
		}
	}
	// *[]T, keys of another integer type and as strings: converted as Get
	// converts them.
	f.reset()
	var vals []weather.Location
	if err := s.GetMany(ctx, &vals, []any{int32(4), "8", 12.0}); err != nil {
		t.Fatalf("GetMany(*[]T) = %v", err)
	}
	wantCounts(t, f, "GetMany(4, 8, 12)", []int{0, 0, 0, 1})
	if len(vals) != 3 || vals[0].ID != 4 || vals[1].ID != 8 || vals[2].ID != 12 {
		t.Errorf("GetMany(*[]T) = %v; want locations 4, 8, 12", vals)
	}
	// No keys: nothing sent, dst emptied.
	f.reset()
	if err := s.GetMany(ctx, &vals, []int64{}); err != nil || len(vals) != 0 {
		t.Errorf("GetMany(no keys) = %v, %d rows; want nil, 0", err, len(vals))
	}
	wantCounts(t, f, "GetMany(no keys)", []int{0, 0, 0, 0})
}

// TestGetManyMissing: keys found nowhere are listed, once each and in the
// order asked, in a *NotFoundError that satisfies errors.Is(err,
// sql.ErrNoRows); dst holds the rows found, in order.
func TestGetManyMissing(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := weather.Generate(8, 1, 4)
	s := f.session(t) // chooser.All: every shard asked
	f.seed(t, s, d)
	ids := []int64{3, 999, 5, 1000, 999}
	var got []*weather.Location
	err := s.GetMany(ctx, &got, ids)
	if !errors.Is(err, sql.ErrNoRows) {
		t.Fatalf("GetMany(%v) = %v; want errors.Is(err, sql.ErrNoRows)", ids, err)
	}
	var nf *session.NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("GetMany(%v) = %T; want a *session.NotFoundError", ids, err)
	}
	if nf.Model != "Location" || !slices.Equal(nf.Keys, []any{int64(999), int64(1000)}) {
		t.Errorf("NotFoundError = %q keys %v; want Location keys [999 1000]", nf.Model, nf.Keys)
	}
	wantIn(t, err, "Location", "999", "1000")
	wantCounts(t, f, "GetMany with chooser.All", []int{1, 1, 1, 1})
	checkLocs(t, f, d, got, []int64{3, 5})
}

// TestGetManyEveryShardAsked: with chooser.All each shard receives all the
// keys in one statement; a key on two shards is ErrAmbiguous naming both,
// and with ProbeInOrder the first shard in the session's order wins, as Get
// answers.
func TestGetManyEveryShardAsked(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := weather.Generate(12, 1, 5)
	s := f.session(t)
	f.seed(t, s, d)
	ids := []int64{12, 1, 6, 7}
	var got []*weather.Location
	if err := s.GetMany(ctx, &got, ids); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, f, "GetMany", []int{1, 1, 1, 1})
	checkLocs(t, f, d, got, ids)

	// Location 6 lives on asia; a copy on south_america.
	dup := &weather.Location{ID: 6, Continent: "Copy", City: "copy"}
	if _, err := f.shards["south_america"].NewInsert().Model(dup).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	err := s.GetMany(ctx, &got, ids)
	if !errors.Is(err, session.ErrAmbiguous) {
		t.Fatalf("GetMany with key 6 on two shards = %v; want ErrAmbiguous", err)
	}
	wantIn(t, err, "Location", "6", "asia", "south_america")
	if len(got) != 4 {
		t.Errorf("a failed GetMany changed dst to %d rows; want it left as it was", len(got))
	}
	var one weather.Location
	inOrder := f.session(t, session.WithProbe(session.ProbeInOrder))
	if err := inOrder.Get(ctx, &one, 6); err != nil {
		t.Fatal(err)
	}
	if err := inOrder.GetMany(ctx, &got, ids); err != nil {
		t.Fatalf("GetMany with ProbeInOrder = %v", err)
	}
	if got[2].City != one.City {
		t.Errorf("GetMany with ProbeInOrder gave key 6 from %q; want what Get gives (%q)", got[2].City, one.City)
	}
}

// TestGetManyShardEncodedIDs: the FromID chooser splits the keys in one
// call (it is a chooser.Splitter): each shard receives only its own keys,
// in one statement.
func TestGetManyShardEncodedIDs(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	layout := identity.DefaultLayout()
	assign := chooser.Spread(layout.Buckets(), weather.Shards...)
	byID, err := chooser.NewFromID("id", layout, assign)
	if err != nil {
		t.Fatal(err)
	}
	s, err := session.New(f.shards, weather.ShardChooser, byID, weather.ByContinent, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	gens := map[session.ShardID]*identity.Generator{}
	for b, id := range assign {
		if gens[id] == nil {
			if gens[id], err = identity.NewGenerator(layout, b); err != nil {
				t.Fatal(err)
			}
		}
	}
	var locs []*weather.Location
	for i := range 20 {
		c := weather.Continents[i%3] // nothing on south_america
		id, err := gens[weather.ShardOfContinent[c]].Next()
		if err != nil {
			t.Fatal(err)
		}
		locs = append(locs, &weather.Location{ID: id, Continent: c, City: c + " city"})
	}
	if err := s.Insert(ctx, &locs); err != nil {
		t.Fatal(err)
	}
	var ids []int64
	for i := len(locs) - 1; i >= 0; i-- {
		ids = append(ids, locs[i].ID)
	}
	f.reset()
	var got []*weather.Location
	if err := s.GetMany(ctx, &got, ids); err != nil {
		t.Fatal(err)
	}
	want := make([]int, 4)
	for _, c := range weather.Continents[:3] {
		want[slices.Index(weather.Shards, weather.ShardOfContinent[c])] = 1
	}
	wantCounts(t, f, "GetMany of shard-encoded ids", want)
	for i, id := range ids {
		if got[i].ID != id {
			t.Fatalf("GetMany[%d].ID = %d; want %d", i, got[i].ID, id)
		}
		l := locs[len(locs)-1-i]
		if sh, _ := session.ShardOf(got[i]); got[i].City != l.City || sh != weather.ShardOfContinent[l.Continent] {
			t.Errorf("GetMany[%d] = %s on %s; want %s on %s", i, got[i].City, sh, l.City, weather.ShardOfContinent[l.Continent])
		}
	}
	// Each shard was asked for its own keys only.
	for _, id := range weather.Shards {
		for _, q := range f.sqlOn(id, "SELECT") {
			for _, l := range locs {
				home := weather.ShardOfContinent[l.Continent]
				if home != id && containsWord(q, l.ID) {
					t.Errorf("shard %s was asked for key %d, which is on %s: %s", id, l.ID, home, q)
				}
			}
		}
	}
}

func containsWord(q string, id int64) bool {
	return regexp.MustCompile(`[ (]` + strconv.FormatInt(id, 10) + `[,)]`).MatchString(q)
}

// TestGetManyPinned: a Using view sends every key to its shard in one
// statement; keys that live elsewhere are not found there.
func TestGetManyPinned(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := weather.Generate(8, 1, 6)
	s := f.session(t)
	f.seed(t, s, d)
	var got []*weather.Location
	err := s.Using("asia").GetMany(ctx, &got, []int64{2, 6, 3})
	var nf *session.NotFoundError
	if !errors.As(err, &nf) || !slices.Equal(nf.Keys, []any{int64(3)}) || !slices.Equal(nf.Shards, []session.ShardID{"asia"}) {
		t.Fatalf("Using(asia).GetMany(2, 6, 3) = %v; want key 3 not found on [asia]", err)
	}
	wantCounts(t, f, "Using(asia).GetMany", []int{0, 1, 0, 0})
	checkLocs(t, f, d, got, []int64{2, 6})
	for _, l := range got {
		if !l.Pinned() {
			t.Errorf("Location %d loaded through a Using view is not pinned", l.ID)
		}
	}
}

// TestGetManyCompositeKey: a composite key is a []any per key; one
// statement per shard with a row-value IN.
func TestGetManyCompositeKey(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := weather.Generate(4, 1, 7)
	s := f.session(t)
	f.seed(t, s, d)
	for i, id := range weather.Shards {
		lid := int64(i + 1)
		tag := &weather.Tag{ID: 10 + lid, Name: "t"}
		if _, err := f.shards[id].NewInsert().Model(tag).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	// Locations 1..4 are on north_america, asia, europe, south_america.
	for i := range 4 {
		lid := int64(i + 1)
		home := weather.ShardOfContinent[d.Locations[i].Continent]
		tagID := 10 + int64(slices.Index(weather.Shards, home)+1)
		if _, err := f.shards[home].NewInsert().Model(&weather.LocationTag{LocationID: lid, TagID: tagID}).Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.reset()
	var got []weather.LocationTag
	keys := [][]any{{3, 13}, {1, 11}, {1, 12}}
	err := s.GetMany(ctx, &got, keys)
	var nf *session.NotFoundError
	if !errors.As(err, &nf) || len(nf.Keys) != 1 {
		t.Fatalf("GetMany(%v) = %v; want key [1 12] not found", keys, err)
	}
	if len(got) != 2 || got[0].LocationID != 3 || got[0].TagID != 13 || got[1].LocationID != 1 || got[1].TagID != 11 {
		t.Errorf("GetMany(%v) = %+v; want (3,13), (1,11)", keys, got)
	}
	wantCounts(t, f, "GetMany of composite keys", []int{1, 1, 1, 1})
}

// TestGetManyBadInput: bad keys fail before any statement, naming what is
// wrong.
func TestGetManyBadInput(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	var locs []*weather.Location
	var one weather.Location
	var tags []weather.LocationTag
	for _, c := range []struct {
		name string
		err  error
		want []string
	}{
		{"keys not a slice", s.GetMany(ctx, &locs, 7), []string{"keys must be a slice", "int"}},
		{"lossy key", s.GetMany(ctx, &locs, []any{1, 1001.9}), []string{"key 1", "1001.9", "Location"}},
		{"nil key", s.GetMany(ctx, &locs, []any{nil}), []string{"key 0", "Location"}},
		{"dst not a slice", s.GetMany(ctx, &one, []int64{1}), []string{"*[]T or *[]*T", "*weather.Location"}},
		{"composite not a tuple", s.GetMany(ctx, &tags, []int64{1}), []string{"composite", "LocationTag", "[]any of 2"}},
		{"composite arity", s.GetMany(ctx, &tags, [][]any{{1}}), []string{"LocationTag", "location_id, tag_id", "got 1"}},
	} {
		if !errors.Is(c.err, session.ErrInvalidArgument) {
			t.Errorf("%s: err = %v; want ErrInvalidArgument", c.name, c.err)
		}
		wantIn(t, c.err, c.want...)
	}
	wantCounts(t, f, "bad GetMany calls", []int{0, 0, 0, 0})
}

// TestUnitGetMany: a unit's GetMany answers tracked keys from the identity
// map with no statement (all hits: none at all), reads only the others in
// one statement per shard, hands out the tracked objects, and counts a key
// marked for deletion as not found.
func TestUnitGetMany(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	d := weather.Generate(12, 1, 8)
	f.seed(t, f.session(t), d)
	s, err := session.New(f.shards, weather.ShardChooser, byID(d), weather.ByContinent, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	u := s.Begin()
	defer u.Rollback(ctx)
	var first []*weather.Location
	if err := u.GetMany(ctx, &first, []int64{1, 2, 5}); err != nil {
		t.Fatal(err)
	}
	first[0].City = "changed, unflushed"
	f.reset()
	var again []*weather.Location
	if err := u.GetMany(ctx, &again, []int64{5, 1, 2, 1}); err != nil {
		t.Fatal(err)
	}
	wantCounts(t, f, "a unit's GetMany of tracked keys", []int{0, 0, 0, 0})
	if again[0] != first[2] || again[1] != first[0] || again[2] != first[1] || again[3] != first[0] {
		t.Errorf("a unit's GetMany of tracked keys did not return the tracked objects in order")
	}
	if again[1].City != "changed, unflushed" {
		t.Errorf("tracked object lost its unflushed change: %q", again[1].City)
	}
	// 1 and 5 tracked (north_america); 3 on asia, 4 on south_america.
	f.reset()
	var mixed []*weather.Location
	if err := u.GetMany(ctx, &mixed, []int64{3, 1, 4, 5}); err != nil {
		t.Fatal(err)
	}
	if mixed[1] != first[0] || mixed[3] != first[2] {
		t.Errorf("a unit's GetMany returned fresh objects for tracked keys")
	}
	if got := f.statementsLike("SELECT"); !slices.Equal(got, []int{0, 0, 1, 1}) {
		t.Errorf("a unit's GetMany of keys 3, 4 untracked ran %v SELECTs per shard; want [0 0 1 1]", got)
	}
	var one *weather.Location
	f.reset()
	if err := u.Get(ctx, &one, 4); err != nil || one != mixed[2] {
		t.Errorf("Get(4) after GetMany = %p, %v; want the object GetMany tracked (%p)", one, err, mixed[2])
	}
	wantCounts(t, f, "Get of a key GetMany tracked", []int{0, 0, 0, 0})
	if err := u.Delete(mixed[0]); err != nil {
		t.Fatal(err)
	}
	err = u.GetMany(ctx, &mixed, []int64{4, 3})
	var nf *session.NotFoundError
	if !errors.As(err, &nf) || !slices.Equal(nf.Keys, []any{int64(3)}) {
		t.Errorf("GetMany of a key marked for deletion = %v; want key 3 not found", err)
	}
	if err := u.GetMany(ctx, &one, []int64{1}); !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("UnitOfWork.GetMany into a *T = %v; want ErrInvalidArgument", err)
	}
}
