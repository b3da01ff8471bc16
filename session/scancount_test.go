package session_test

import (
	"context"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

func repIDs(rs []*weather.Report) []int64 {
	out := make([]int64, len(rs))
	for i, r := range rs {
		out[i] = r.ID
	}
	return out
}

// TestScanAndCount guards issue 11 item 2: ScanAndCount returns the merged
// page and the global count ignoring Limit and Offset, equal to Bun's
// ScanAndCount on one unsharded database, with one SELECT and one count per
// shard; in a unit the page is tracked.
func TestScanAndCount(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(20, 6, 23))
	var want []*weather.Report
	wantN, err := f.single.NewSelect().Model(&want).Where("temperature > ?", -5.0).
		Order("temperature DESC", "id").Limit(10).Offset(7).ScanAndCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	f.reset()
	var got []*weather.Report
	n, err := s.NewSelect().Model(&got).Where("temperature > ?", -5.0).
		Order("temperature DESC", "id").Limit(10).Offset(7).ScanAndCount(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if int64(n) != wantN || !slices.Equal(repIDs(got), repIDs(want)) || len(got) != 10 || n <= 17 {
		t.Errorf("ScanAndCount = %v, %d; the unsharded database gives %v, %d", repIDs(got), n, repIDs(want), wantN)
	}
	if c := f.perShard(); !slices.Equal(c, []int{2, 2, 2, 2}) {
		t.Errorf("ScanAndCount ran %v statements per shard; want a SELECT and a count on each", c)
	}

	// A declared key: only its shard, and the count of its rows.
	var asia []*weather.Location
	n, err = s.NewSelect().Model(&asia).WhereShardKey("continent", "Asia").Order("id").Limit(2).ScanAndCount(ctx)
	if err != nil || n != 5 || len(asia) != 2 {
		t.Errorf("ScanAndCount(Asia) = %d rows, count %d, %v; want 2 rows, count 5", len(asia), n, err)
	}

	// In a unit: the page is tracked (a Get of its first row runs nothing).
	err = s.RunInTx(ctx, nil, func(ctx context.Context, u *session.UnitOfWork) error {
		var page []*weather.Report
		n, err := u.NewSelect().Model(&page).Where("temperature > ?", -5.0).
			Order("temperature DESC", "id").Limit(10).Offset(7).ScanAndCount(ctx)
		if err != nil {
			return err
		}
		if int64(n) != wantN || !slices.Equal(repIDs(page), repIDs(want)) {
			t.Errorf("unit ScanAndCount = %v, %d; want %v, %d", repIDs(page), n, repIDs(want), wantN)
		}
		f.reset()
		var again *weather.Report
		if err := u.Get(ctx, &again, page[0].ID); err != nil {
			return err
		}
		if again != page[0] || !slices.Equal(f.perShard(), zero4) {
			t.Errorf("Get of a row the unit's ScanAndCount loaded ran %v statements (same object: %v); want none", f.perShard(), again == page[0])
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}
