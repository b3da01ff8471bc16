package session_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

func TestKeysetPagination(t *testing.T) {
	ctx := context.Background()
	f := newFixture(t)
	s := f.session(t)
	f.seed(t, s, weather.Generate(30, 10, 14))

	var want []*weather.Report
	if err := f.single.NewSelect().Model(&want).Order("temperature DESC", "id").Scan(ctx); err != nil {
		t.Fatal(err)
	}
	const size = 7
	var got []*weather.Report
	cursor, pages := "", 0
	for {
		var page []*weather.Report
		var st session.Stats
		next, err := s.NewSelect().Model(&page).Order("temperature DESC").Limit(size).
			Options(session.CollectStats(&st)).ScanPage(ctx, cursor)
		if err != nil {
			t.Fatalf("page %d: %v", pages, err)
		}
		if len(st.RowsRead()) != len(weather.Shards) {
			t.Errorf("page %d: stats name %v; want every one of the %d shards", pages, st.RowsRead(), len(weather.Shards))
		}
		for id, n := range st.RowsRead() {
			if n > size {
				t.Errorf("page %d read %d rows from %s; want at most %d", pages, n, id, size)
			}
		}
		got = append(got, page...)
		pages++
		if next == "" {
			break
		}
		cursor = next
	}
	if g, w := reportIDs(got), reportIDs(want); !slices.Equal(g, w) {
		t.Errorf("pages = %v\nunsharded = %v", g, w)
	}
	if pages != 300/size+1 {
		t.Errorf("%d pages; want %d", pages, 300/size+1)
	}

	// Mixed directions use the expanded condition.
	var asc []*weather.Report
	cursor = ""
	for range 3 {
		var page []*weather.Report
		next, err := s.NewSelect().Model(&page).Order("location_id", "temperature DESC").Limit(50).ScanPage(ctx, cursor)
		if err != nil {
			t.Fatal(err)
		}
		asc, cursor = append(asc, page...), next
	}
	var wantAsc []*weather.Report
	if err := f.single.NewSelect().Model(&wantAsc).Order("location_id", "temperature DESC", "id").Limit(150).Scan(ctx); err != nil {
		t.Fatal(err)
	}
	if g, w := reportIDs(asc), reportIDs(wantAsc); !slices.Equal(g, w) {
		t.Errorf("mixed-direction pages = %v\nunsharded = %v", g, w)
	}

	// A cursor is tied to its statement.
	var page []*weather.Report
	_, err := s.NewSelect().Model(&page).Order("report_time").Limit(5).ScanPage(ctx, cursor)
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("foreign cursor = %v; want ErrInvalidArgument", err)
	}
	_, err = s.NewSelect().Model(&page).Order("temperature").Limit(5).ScanPage(ctx, "garbage!")
	if !errors.Is(err, session.ErrInvalidArgument) {
		t.Errorf("garbage cursor = %v; want ErrInvalidArgument", err)
	}
	_, err = s.NewSelect().Model(&page).Order("temperature").ScanPage(ctx, "")
	wantIn(t, err, "Limit")
}
