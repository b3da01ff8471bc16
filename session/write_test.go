package session_test

import (
	"context"
	"database/sql"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

func TestInsertSplitsSliceOneStatementPerShard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	d := weather.Generate(12, 0, 3) // 3 locations per continent, interleaved
	if err := s.Insert(ctx, &d.Locations); err != nil {
		t.Fatalf("Insert = %v", err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{1, 1, 1, 1}) {
		t.Errorf("Insert of 12 interleaved locations ran %v statements; want one INSERT per shard", c)
	}
	for i, id := range weather.Shards {
		var want []int64
		for _, l := range d.Locations {
			if l.Continent == weather.Continents[i] {
				want = append(want, l.ID)
			}
		}
		if got := f.rowsOn(t, id, "weather_locations"); !slices.Equal(got, want) {
			t.Errorf("rows on %s = %v; want %v", id, got, want)
		}
	}
	for _, l := range d.Locations {
		if sh, _ := l.Shard(); sh != weather.ShardOfContinent[l.Continent] {
			t.Errorf("token of location %d = %q; want %q", l.ID, sh, weather.ShardOfContinent[l.Continent])
		}
	}
	// Values slices ([]T, not []*T) are split the same way.
	vals := []weather.Location{{ID: 100, Continent: "Asia", City: "A"}, {ID: 101, Continent: "Europe", City: "E"}}
	if err := s.Insert(ctx, &vals); err != nil {
		t.Fatal(err)
	}
	if sh, _ := vals[1].Shard(); sh != "europe" {
		t.Errorf("token of vals[1] = %q; want europe", sh)
	}
}

func TestUpdateAndDeleteGoToOriginShard(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 1, 4))

	var tokyo weather.Location
	if err := s.NewSelect().Model(&tokyo).Where("city = ?", "City 0002").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if sh, _ := tokyo.Shard(); sh != "asia" {
		t.Fatalf("loaded City 0002 from %q; want asia", sh)
	}
	// A change of another column is written on the object's shard.
	tokyo.City = "Tokyo"
	f.reset()
	if err := s.Update(ctx, &tokyo); err != nil {
		t.Fatalf("Update = %v", err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{0, 1, 0, 0}) {
		t.Errorf("Update ran %v statements; want [0 1 0 0]", c)
	}
	// The shard key (continent, which ByContinent declares) changes to one
	// that routes to europe: written in asia, a read by continent = Europe
	// would miss the row. Refused before anything is sent.
	tokyo.Continent = "Europe"
	f.reset()
	err := s.Update(ctx, &tokyo)
	if !errors.Is(err, session.ErrShardKeyChanged) {
		t.Fatalf("Update with a moved shard key = %v; want ErrShardKeyChanged", err)
	}
	wantIn(t, err, "Location", "continent", "asia", "europe", "delete")
	if c := f.perShard(); !slices.Equal(c, []int{0, 0, 0, 0}) {
		t.Errorf("refused Update sent %v statements", c)
	}
	// So is the same change through NewUpdate of the object, and a
	// statement-form UPDATE that sets the key.
	if _, err := s.NewUpdate().Model(&tokyo).Exec(ctx); !errors.Is(err, session.ErrShardKeyChanged) {
		t.Errorf("NewUpdate().Model(&obj) with a moved shard key = %v; want ErrShardKeyChanged", err)
	}
	if _, err := s.NewUpdate().Model((*weather.Location)(nil)).Set("continent = ?", "Europe").
		Where("id = ?", tokyo.ID).Exec(ctx); !errors.Is(err, session.ErrShardKeyChanged) {
		t.Errorf("NewUpdate().Set(continent) = %v; want ErrShardKeyChanged", err)
	}
	// An UPDATE of objects that leaves the key column out writes nothing
	// there: allowed.
	if _, err := s.NewUpdate().Model(&tokyo).Column("city").Exec(ctx); err != nil {
		t.Errorf("NewUpdate().Model(&obj).Column(city) = %v; want nil", err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{0, 1, 0, 0}) {
		t.Errorf("refused Updates and one Column(city) update sent %v statements; want [0 1 0 0]", c)
	}
	var cont string
	if err := f.shards["asia"].NewSelect().Table("weather_locations").Column("continent").Where("id = ?", tokyo.ID).Scan(ctx, &cont); err != nil {
		t.Fatal(err)
	}
	if cont != "Asia" {
		t.Errorf("continent in asia after the refused Updates = %q; want Asia", cont)
	}
	if ids := f.rowsOn(t, "europe", "weather_locations"); slices.Contains(ids, tokyo.ID) {
		t.Errorf("row %d appeared in europe: %v", tokyo.ID, ids)
	}
	// A key that still routes to the object's shard is written.
	tokyo.Continent = "Asia"

	// With a chooser that declares no column, the Token wins (SQLAlchemy's
	// behaviour): the row is updated on asia, whatever its continent says.
	opaque, err := session.New(f.shards, weather.ShardChooser, chooser.All, chooser.All, session.WithShardOrder(weather.Shards...))
	if err != nil {
		t.Fatal(err)
	}
	tokyo.Continent = "Europe"
	f.reset()
	if err := opaque.Update(ctx, &tokyo); err != nil {
		t.Fatalf("Update under an opaque chooser = %v; want nil", err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{0, 1, 0, 0}) {
		t.Errorf("Update under an opaque chooser ran %v statements; want [0 1 0 0]", c)
	}
	tokyo.Continent = "Asia"
	if err := opaque.Update(ctx, &tokyo); err != nil {
		t.Fatal(err)
	}

	// A pin that disagrees with the object's shard is refused, before sending.
	f.reset()
	err = s.Update(ctx, &tokyo, session.SetShardID("europe"))
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Fatalf("Update pinned elsewhere = %v; want ErrInvalidArgument", err)
	}
	wantIn(t, err, "asia", "europe")
	if c := f.perShard(); !slices.Equal(c, []int{0, 0, 0, 0}) {
		t.Errorf("refused Update sent %v statements", c)
	}

	// The report depends on the location: delete it first, then the location.
	var reps []*weather.Report
	if err := s.NewSelect().Model(&reps).Where("location_id = ?", tokyo.ID).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	f.reset()
	if err := s.Delete(ctx, &reps); err != nil {
		t.Fatalf("Delete reports = %v", err)
	}
	if err := s.Delete(ctx, &tokyo); err != nil {
		t.Fatalf("Delete = %v", err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{0, 2, 0, 0}) {
		t.Errorf("Delete ran %v statements; want [0 2 0 0]", c)
	}
	if ids := f.rowsOn(t, "asia", "weather_locations"); slices.Contains(ids, tokyo.ID) {
		t.Errorf("row %d still in asia after Delete", tokyo.ID)
	}
	// Deleting it again matches nothing: reported, not ignored.
	if err := s.Delete(ctx, &tokyo); !errors.Is(err, sql.ErrNoRows) {
		t.Errorf("second Delete = %v; want sql.ErrNoRows", err)
	}
}

func TestBulkUpdateSlice(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(8, 2, 5))
	var reps []weather.Report
	if err := s.NewSelect().Model(&reps).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	for i := range reps {
		reps[i].Temperature = 1000 + float64(reps[i].ID)
	}
	f.reset()
	if err := s.Update(ctx, &reps); err != nil {
		t.Fatalf("Update(%d reports) = %v", len(reps), err)
	}
	if c := f.perShard(); !slices.Equal(c, []int{1, 1, 1, 1}) {
		t.Errorf("bulk Update ran %v statements; want one per shard", c)
	}
	var again []weather.Report
	if err := s.NewSelect().Model(&again).Order("id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if len(again) != 16 || len(reps) != 16 {
		t.Fatalf("read %d reports before the Update and %d after; want the 16 seeded", len(reps), len(again))
	}
	for _, r := range again {
		if r.Temperature != 1000+float64(r.ID) {
			t.Errorf("report %d temperature = %v; want %v", r.ID, r.Temperature, 1000+float64(r.ID))
		}
	}
}

func TestWriteBadInput(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	orphan := &weather.Report{ID: 1, LocationID: 1}
	err := s.Insert(ctx, orphan)
	wantIn(t, err, "no Location set")

	err = s.Insert(ctx, &weather.Location{ID: 1, Continent: "Antarctica", City: "Base"})
	wantIn(t, err, "Antarctica")

	err = s.Insert(ctx, &weather.Location{ID: 1, Continent: "Asia", City: "X"}, session.SetShardID("mars"))
	if !errors.Is(err, session.ErrUnknownShard) {
		t.Errorf("Insert pinned to mars = %v; want ErrUnknownShard", err)
	}
	err = s.Insert(ctx, []weather.Location{})
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("Insert(non-pointer) = %v; want ErrInvalidArgument", err)
	}
	err = s.Insert(ctx, &[]*weather.Location{nil})
	wantIn(t, err, "element 0", "nil")
	if c := f.perShard(); !slices.Equal(c, []int{0, 0, 0, 0}) {
		t.Errorf("bad writes sent %v statements; want none", c)
	}
}

func TestStatementFormUpdateDelete(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(40, 5, 6))

	res, err := s.NewUpdate().Model((*weather.Report)(nil)).
		Set("temperature = temperature + 100").Where("temperature > ?", 30.0).Exec(ctx)
	if err != nil {
		t.Fatalf("UpdateWhere = %v", err)
	}
	want, err := f.single.NewUpdate().Model((*weather.Report)(nil)).
		Set("temperature = temperature + 100").Where("temperature > ?", 30.0).Exec(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wantN, _ := want.RowsAffected()
	if res.RowsAffected != wantN || wantN == 0 {
		t.Errorf("UpdateWhere affected %d; the unsharded database says %d", res.RowsAffected, wantN)
	}
	var sum int64
	for _, id := range weather.Shards {
		sum += res.ByShard[id]
	}
	if sum != res.RowsAffected || len(res.ByShard) != 4 {
		t.Errorf("ByShard = %v; want 4 shards summing to %d", res.ByShard, res.RowsAffected)
	}

	res, err = s.NewDelete().Model((*weather.Report)(nil)).Where("temperature > ?", 100.0).
		Options(session.SetShardID("europe")).Exec(ctx)
	if err != nil {
		t.Fatalf("DeleteWhere pinned = %v", err)
	}
	if len(res.ByShard) != 1 || res.ByShard["europe"] != res.RowsAffected || res.RowsAffected == 0 {
		t.Errorf("pinned DeleteWhere = %+v; want rows only on europe", res)
	}
	n, err := s.NewSelect().Model((*weather.Report)(nil)).Where("temperature > ?", 100.0).CountByShard(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if n["europe"] != 0 || n["asia"] == 0 {
		t.Errorf("counts after pinned delete = %v; want europe 0, others untouched", n)
	}
	_, err = s.NewDelete().Model(&weather.Report{}).Where("TRUE").Exec(ctx)
	wantIn(t, err, "Model((*Report)(nil))")
	_, err = s.NewUpdate().Model((*weather.Report)(nil)).Set("temperature = 0").Where("TRUE").
		WhereShardKey("nope", 1).Exec(ctx)
	if err == nil || !strings.Contains(err.Error(), "nope") {
		t.Errorf("WhereShardKey on unknown column = %v", err)
	}
}
