package session_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// keyedSession places locations by their continent column with a chooser
// that names it (ValueMap.Column), so the insert builder knows the shard key.
func (f *fixture) keyedSession(t *testing.T) *session.Session {
	t.Helper()
	s, err := session.New(f.shards, weather.ByContinent, chooser.All, weather.ByContinent,
		session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// cities reads id -> city of every location on each shard.
func cities(t *testing.T, f *fixture) map[session.ShardID]map[int64]string {
	t.Helper()
	out := map[session.ShardID]map[int64]string{}
	for _, id := range weather.Shards {
		var locs []weather.Location
		if err := f.shards[id].NewSelect().Model(&locs).Scan(context.Background()); err != nil {
			t.Fatal(err)
		}
		out[id] = map[int64]string{}
		for _, l := range locs {
			out[id][l.ID] = l.City
		}
	}
	return out
}

func truthCities(t *testing.T, f *fixture) map[int64]string {
	t.Helper()
	var locs []weather.Location
	if err := f.single.NewSelect().Model(&locs).Scan(context.Background()); err != nil {
		t.Fatal(err)
	}
	out := map[int64]string{}
	for _, l := range locs {
		out[l.ID] = l.City
	}
	return out
}

func checkCities(t *testing.T, f *fixture, what string) {
	t.Helper()
	got := map[int64]string{}
	for id, rows := range cities(t, f) {
		for lid, city := range rows {
			got[lid] = city
			var l weather.Location
			if err := f.single.NewSelect().Model(&l).Where("id = ?", lid).Scan(context.Background()); err == nil &&
				weather.ShardOfContinent[l.Continent] != id {
				t.Errorf("%s: location %d (%s) is on shard %s", what, lid, l.Continent, id)
			}
		}
	}
	want := truthCities(t, f)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("%s: locations = %v; the unsharded database has %v", what, got, want)
	}
}

func locBatch(from, to int64, city string) []*weather.Location {
	var out []*weather.Location
	for i := from; i <= to; i++ {
		out = append(out, &weather.Location{ID: i, Continent: weather.Continents[int(i)%4], City: fmt.Sprintf("%s %d", city, i)})
	}
	return out
}

// TestNewInsertBuilder guards issue 11 item 2: NewInsert splits a slice by
// shard, one INSERT per shard, sets Tokens, and its upserts (On CONFLICT DO
// UPDATE, Ignore) leave every shard with the rows one database would have
// after the same statement, with rows affected per shard.
func TestNewInsertBuilder(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.keyedSession(t)

	first := locBatch(1, 8, "First")
	f.reset()
	res, err := s.NewInsert().Model(&first).Exec(ctx)
	if err != nil {
		t.Fatalf("NewInsert = %v", err)
	}
	if got := f.statementsLike("INSERT"); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Errorf("INSERT statements per shard = %v; want one on each", got)
	}
	if res.RowsAffected != 8 || len(res.ByShard) != 4 || res.ByShard["asia"] != 2 {
		t.Errorf("Result = %+v; want 8 rows, 2 on each of 4 shards", res)
	}
	for _, l := range first {
		if id, ok := l.Shard(); !ok || id != weather.ShardOfContinent[l.Continent] {
			t.Errorf("location %d (%s) has token %q", l.ID, l.Continent, id)
		}
	}
	if _, err := f.single.NewInsert().Model(&first).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	checkCities(t, f, "after insert")

	// An upsert: 5..12, where 5..8 conflict and are updated (Bun's SET
	// col = EXCLUDED.col, the shard key included, which is allowed).
	up := locBatch(5, 12, "Second")
	f.reset()
	res, err = s.NewInsert().Model(&up).On("CONFLICT (id) DO UPDATE").Exec(ctx)
	if err != nil {
		t.Fatalf("upsert = %v", err)
	}
	if got := f.statementsLike("INSERT"); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Errorf("upsert INSERT statements per shard = %v; want one on each", got)
	}
	wres, err := f.single.NewInsert().Model(&up).On("CONFLICT (id) DO UPDATE").Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := wres.RowsAffected(); res.RowsAffected != n || n != 8 {
		t.Errorf("upsert affected %d; the unsharded database says %d (want 8)", res.RowsAffected, n)
	}
	checkCities(t, f, "after upsert")

	// Ignore: 10..14, where 10..12 conflict and are skipped.
	ign := locBatch(10, 14, "Third")
	res, err = s.NewInsert().Model(&ign).Ignore().Exec(ctx)
	if err != nil {
		t.Fatalf("Ignore = %v", err)
	}
	wres, err = f.single.NewInsert().Model(&ign).Ignore().Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := wres.RowsAffected(); res.RowsAffected != n || n != 2 {
		t.Errorf("Ignore affected %d; the unsharded database says %d (want 2)", res.RowsAffected, n)
	}
	var sum int64
	for _, n := range res.ByShard {
		sum += n
	}
	if sum != res.RowsAffected {
		t.Errorf("ByShard %v does not sum to %d", res.ByShard, res.RowsAffected)
	}
	checkCities(t, f, "after Ignore")

	// An explicit Set and a Where on the DO UPDATE branch, and Returning.
	one := &weather.Location{ID: 3, Continent: weather.Continents[3], City: "Fourth"}
	res, err = s.NewInsert().Model(one).On("CONFLICT (id) DO UPDATE").Set("city = EXCLUDED.city || '!'").
		Where("location.city <> ?", "nope").Returning("*").Exec(ctx)
	if err != nil {
		t.Fatalf("upsert with Set and Where = %v", err)
	}
	if one.City != "Fourth!" || res.RowsAffected != 1 {
		t.Errorf("RETURNING * gave city %q, %d rows; want \"Fourth!\", 1", one.City, res.RowsAffected)
	}
	one.City = "Fourth"
	if _, err := f.single.NewInsert().Model(one).On("CONFLICT (id) DO UPDATE").Set("city = EXCLUDED.city || '!'").
		Where("location.city <> ?", "nope").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	checkCities(t, f, "after Set and Where")
}

// TestNewInsertRefusesWhatWouldBeWrong guards issue 11 item 2's unsafe
// cases: each is refused with an error naming the model and the column or
// clause, and sends nothing.
func TestNewInsertRefusesWhatWouldBeWrong(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.keyedSession(t)
	seed := locBatch(1, 8, "Seed")
	if _, err := s.NewInsert().Model(&seed).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	before := cities(t, f)
	cases := []struct {
		name  string
		q     func() *session.InsertQuery
		is    error
		parts []string
	}{
		{"SET moves the shard key", func() *session.InsertQuery {
			b := locBatch(1, 4, "Moved")
			return s.NewInsert().Model(&b).On("CONFLICT (id) DO UPDATE").Set("continent = 'Europe'")
		}, session.ErrInvalidArgument, []string{"Location", "continent", "EXCLUDED.continent"}},
		{"SET in the ON text", func() *session.InsertQuery {
			b := locBatch(1, 1, "Moved")
			return s.NewInsert().Model(&b).On("CONFLICT (id) DO UPDATE SET continent = ?", "Asia")
		}, session.ErrInvalidArgument, []string{"Location", "continent"}},
		{"SET through a placeholder", func() *session.InsertQuery {
			b := locBatch(1, 1, "Moved")
			return s.NewInsert().Model(&b).On("CONFLICT (id) DO UPDATE").Set("? = ?", bun.Ident("continent"), "Asia")
		}, session.ErrInvalidArgument, []string{"Location", "continent"}},
		{"SET of EXCLUDED.continent in an expression", func() *session.InsertQuery {
			b := locBatch(1, 4, "Moved")
			return s.NewInsert().Model(&b).On("CONFLICT (id) DO UPDATE").Set("continent = EXCLUDED.continent || ?", "-moved")
		}, session.ErrInvalidArgument, []string{"Location", "continent", "EXCLUDED.continent"}},
		{"SET of a row of columns", func() *session.InsertQuery {
			b := locBatch(1, 4, "Moved")
			return s.NewInsert().Model(&b).On("CONFLICT (id) DO UPDATE").Set("(city, continent) = (EXCLUDED.city, 'Europe')")
		}, session.ErrInvalidArgument, []string{"Location", "continent"}},
		{"SET of a row of columns in the ON text", func() *session.InsertQuery {
			b := locBatch(1, 1, "Moved")
			return s.NewInsert().Model(&b).On(`CONFLICT (id) DO UPDATE SET ("continent") = ROW('Asia')`)
		}, session.ErrInvalidArgument, []string{"Location", "continent"}},
		{"Value of the shard key", func() *session.InsertQuery {
			b := locBatch(20, 21, "New")
			return s.NewInsert().Model(&b).Value("continent", "'Europe'")
		}, session.ErrInvalidArgument, []string{"Location", "continent", "Value"}},
		{"Column without the shard key", func() *session.InsertQuery {
			b := locBatch(20, 21, "New")
			return s.NewInsert().Model(&b).Column("id", "city")
		}, session.ErrInvalidArgument, []string{"Location", "continent", "Column(id, city)"}},
		{"ExcludeColumn of the shard key", func() *session.InsertQuery {
			b := locBatch(20, 21, "New")
			return s.NewInsert().Model(&b).ExcludeColumn("continent")
		}, session.ErrInvalidArgument, []string{"Location", "continent"}},
		{"Apply with Value of the shard key", func() *session.InsertQuery {
			b := locBatch(20, 21, "New")
			return s.NewInsert().Model(&b).Apply(func(q *bun.InsertQuery) *bun.InsertQuery { return q.Value("continent", "'Europe'") })
		}, session.ErrInvalidArgument, []string{"Location", "continent", "Apply", "Value"}},
		{"Apply with Column without the shard key", func() *session.InsertQuery {
			b := locBatch(20, 21, "New")
			return s.NewInsert().Model(&b).Apply(func(q *bun.InsertQuery) *bun.InsertQuery { return q.Column("id", "city") })
		}, session.ErrInvalidArgument, []string{"Location", "continent", "Apply"}},
		{"Apply with ExcludeColumn of the shard key", func() *session.InsertQuery {
			b := locBatch(20, 21, "New")
			return s.NewInsert().Model(&b).Apply(func(q *bun.InsertQuery) *bun.InsertQuery { return q.ExcludeColumn("continent") })
		}, session.ErrInvalidArgument, []string{"Location", "continent", "Apply"}},
		{"Apply setting the shard key in the conflict clause", func() *session.InsertQuery {
			b := locBatch(20, 21, "New")
			return s.NewInsert().Model(&b).On("CONFLICT (id) DO UPDATE").
				Apply(func(q *bun.InsertQuery) *bun.InsertQuery { return q.Set("continent = 'Europe'") })
		}, session.ErrInvalidArgument, []string{"Location", "continent"}},
		{"Ignore with RETURNING, several objects", func() *session.InsertQuery {
			b := locBatch(7, 10, "Skipped")
			return s.NewInsert().Model(&b).Ignore().Returning("*")
		}, session.ErrInvalidArgument, []string{"Location", "4 objects", `Returning("NULL")`}},
		{"DO NOTHING with RETURNING, several objects", func() *session.InsertQuery {
			b := locBatch(7, 10, "Skipped")
			return s.NewInsert().Model(&b).On("CONFLICT (id) DO NOTHING").Returning("id, city")
		}, session.ErrInvalidArgument, []string{"Location", "one per statement"}},
		{"DO NOTHING across lines with RETURNING, several objects", func() *session.InsertQuery {
			b := locBatch(7, 10, "Skipped")
			return s.NewInsert().Model(&b).On("CONFLICT (id) DO\n\tNOTHING").Returning("*")
		}, session.ErrInvalidArgument, []string{"Location", "one per statement"}},
		{"DO NOTHING through a placeholder with RETURNING, several objects", func() *session.InsertQuery {
			b := locBatch(7, 10, "Skipped")
			return s.NewInsert().Model(&b).On("CONFLICT (id) DO ?", bun.Safe("NOTHING")).Returning("*")
		}, session.ErrInvalidArgument, []string{"Location", "one per statement"}},
		{"DO UPDATE WHERE with RETURNING, several objects", func() *session.InsertQuery {
			b := locBatch(7, 10, "Skipped")
			return s.NewInsert().Model(&b).On("CONFLICT (id) DO UPDATE").Where("location.id > 100").Returning("*")
		}, session.ErrInvalidArgument, []string{"Location"}},
		{"pinned to another tenant's shard", func() *session.InsertQuery {
			b := locBatch(21, 21, "Pinned") // continent index 1: Asia
			return s.NewInsert().Model(&b).Options(session.SetShardID("europe"))
		}, session.ErrPinConflict, []string{"Location", "europe", "asia"}},
		{"a model that names no objects", func() *session.InsertQuery {
			return s.NewInsert().Model((*weather.Location)(nil))
		}, session.ErrInvalidArgument, []string{"Location"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			f.reset()
			_, err := c.q().Exec(ctx)
			if !errors.Is(err, c.is) {
				t.Fatalf("Exec = %v; want %v", err, c.is)
			}
			wantIn(t, err, c.parts...)
			if got := f.perShard(); !slices.Equal(got, zero4) {
				t.Errorf("refused insert ran %v statements per shard; want none", got)
			}
		})
	}
	if after := cities(t, f); fmt.Sprint(after) != fmt.Sprint(before) {
		t.Errorf("rows changed by refused inserts:\nafter  %v\nbefore %v", after, before)
	}
	// What is allowed: EXCLUDED.continent, one object with RETURNING and
	// Ignore, several with Returning("NULL").
	b := locBatch(1, 4, "Kept")
	if _, err := s.NewInsert().Model(&b).On("CONFLICT (id) DO UPDATE").Set("continent = EXCLUDED.continent").
		Set("city = EXCLUDED.city").Exec(ctx); err != nil {
		t.Errorf("SET continent = EXCLUDED.continent = %v; want it allowed", err)
	}
	one := locBatch(8, 8, "Skipped")
	if res, err := s.NewInsert().Model(&one).Ignore().Returning("*").Exec(ctx); err != nil || res.RowsAffected != 0 {
		t.Errorf("Ignore of one conflicting object with RETURNING = %+v, %v; want 0 rows, no error", res, err)
	}
	// The hazard is real: plain Bun on one database fills the first
	// objects with the rows of the later ones (and shortens the slice).
	if _, err := f.single.NewInsert().Model(&seed).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	plain := locBatch(7, 10, "Skipped")
	if _, err := f.single.NewInsert().Model(&plain).Ignore().Returning("*").Exec(ctx); err != nil {
		t.Fatal(err)
	}
	if len(plain) == 4 && plain[0].ID == 7 {
		t.Errorf("plain Bun's Ignore().Returning(\"*\") kept the objects in place (%d objects, first id %d); "+
			"the refusal above guards nothing", len(plain), plain[0].ID)
	}
	several := locBatch(7, 10, "Skipped")
	if res, err := s.NewInsert().Model(&several).Ignore().Returning("NULL").Exec(ctx); err != nil || res.RowsAffected != 2 {
		t.Errorf("Ignore with Returning(NULL) = %+v, %v; want 2 rows", res, err)
	}
}

// TestUnitNewInsert guards issue 11 item 1 for inserts: a unit's NewInsert
// runs in its transactions (rolled back with it), and in a unit on a Using
// view an insert routed to another shard is refused, naming the object.
func TestUnitNewInsert(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.keyedSession(t)
	boom := errors.New("boom")
	err := s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		b := locBatch(1, 8, "Gone")
		res, err := u.NewInsert().Model(&b).Exec(ctx)
		if err != nil || res.RowsAffected != 8 {
			t.Errorf("unit NewInsert = %+v, %v", res, err)
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatal(err)
	}
	for id, rows := range cities(t, f) {
		if len(rows) != 0 {
			t.Errorf("shard %s has %v after the rollback; want nothing", id, rows)
		}
	}
	if err := s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		b := locBatch(1, 8, "Kept")
		_, err := u.NewInsert().Model(&b).On("CONFLICT (id) DO UPDATE").Exec(ctx)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	for id, rows := range cities(t, f) {
		if len(rows) != 2 {
			t.Errorf("shard %s has %v after the commit; want 2 rows", id, rows)
		}
	}

	u := s.Using("asia").Begin()
	defer u.Rollback(ctx)
	f.reset()
	eu := &weather.Location{ID: 30, Continent: "Europe", City: "Elsewhere"}
	_, err = u.NewInsert().Model(eu).Options(session.SetShardID("europe")).Exec(ctx)
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Fatalf("insert pinned to europe in an asia unit = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "Location id=30", "europe", "[asia]")
	_, err = u.NewInsert().Model(eu).Exec(ctx)
	if !errors.Is(err, session.ErrPinConflict) {
		t.Fatalf("insert of a europe object in an asia unit = %v; want ErrPinConflict", err)
	}
	if got := f.perShard(); !slices.Equal(got, zero4) {
		t.Errorf("refused inserts ran %v statements per shard; want none", got)
	}
}

// TestNewInsertPartialFailure: a slice split over four shards, one of whose
// INSERTs fails (a duplicate primary key there): the other three commit,
// the error names them and joins a *ShardError for the failed one, and
// only the committed objects get a Token; the rows are what the three
// committed statements wrote.
func TestNewInsertPartialFailure(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.keyedSession(t)
	seed := locBatch(1, 8, "Seed")
	if _, err := s.NewInsert().Model(&seed).Exec(ctx); err != nil {
		t.Fatal(err)
	}
	b := append(locBatch(9, 12, "New"), locBatch(5, 5, "Dup")...) // 9 and 5 on asia, 5 already there
	f.reset()
	res, err := s.NewInsert().Model(&b).Exec(ctx)
	var se *session.ShardError
	if !errors.As(err, &se) || se.Shard != "asia" {
		t.Fatalf("Exec = %v; want a *ShardError for asia", err)
	}
	wantIn(t, err, "committed on shards [europe north_america south_america]")
	if got := f.perShard(); !slices.Equal(got, []int{1, 1, 1, 1}) {
		t.Errorf("statements per shard = %v; want one INSERT on each", got)
	}
	if res.RowsAffected != 3 || res.ByShard["asia"] != 0 || res.ByShard["europe"] != 1 {
		t.Errorf("Result = %+v; want 3 rows, none on asia", res)
	}
	for _, l := range b {
		id, ok := l.Token.Shard()
		if want := weather.ShardOfContinent[l.Continent]; (want == "asia") == ok || ok && id != want {
			t.Errorf("location %d (%s) has Token %q, %v after the insert", l.ID, l.Continent, id, ok)
		}
	}
	got := cities(t, f)
	if _, ok := got["asia"][9]; ok {
		t.Errorf("location 9 is on asia, whose INSERT failed: %v", got["asia"])
	}
	for id, lid := range map[session.ShardID]int64{"europe": 10, "south_america": 11, "north_america": 12} {
		if got[id][lid] != fmt.Sprintf("New %d", lid) {
			t.Errorf("location %d on %s = %q; want committed", lid, id, got[id][lid])
		}
	}
}
