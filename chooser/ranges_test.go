package chooser_test

import (
	"context"
	"errors"
	"math"
	"strings"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

type r64 = chooser.Range[int64]

func TestNewRangesErrors(t *testing.T) {
	tests := []struct {
		name   string
		ranges []r64
		want   string
	}{
		{"none", nil, "no ranges"},
		{"empty range", []r64{{From: 5, To: 5, Shard: "a"}}, "range 0 [5, 5) -> a is empty"},
		{"reversed", []r64{{From: 9, To: 5, Shard: "a"}}, "is empty; want From < To"},
		{"unsorted", []r64{{From: 10, To: 20, Shard: "a"}, {From: 0, To: 10, Shard: "b"}}, "not sorted: [0, 10) -> b comes after [10, 20) -> a"},
		{"overlap", []r64{{From: 0, To: 10, Shard: "a"}, {From: 5, To: 20, Shard: "b"}}, "range [5, 20) -> b overlaps [0, 10) -> a"},
		{"same start", []r64{{From: 0, To: 10, Shard: "a"}, {From: 0, To: 20, Shard: "b"}}, "overlaps"},
		{"after unbounded", []r64{{From: 0, Unbounded: true, Shard: "a"}, {From: 5, To: 20, Shard: "b"}}, "range [5, 20) -> b overlaps [0, ∞) -> a"},
		{"empty shard", []r64{{From: 0, To: 10, Shard: "a"}, {From: 10, To: 20}}, "range 1 has the empty shard ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := chooser.NewRanges("id", tt.ranges...)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewRanges(%v) error = %v; want one containing %q", tt.ranges, err, tt.want)
			}
		})
	}
	if _, err := chooser.NewRanges("score", chooser.Range[float64]{From: math.NaN(), To: 1, Shard: "a"}); err == nil || !strings.Contains(err.Error(), "NaN") {
		t.Errorf("NewRanges(NaN bound) error = %v; want one about NaN", err)
	}
	if _, err := chooser.NewRanges("", r64{From: 0, To: 1, Shard: "a"}); err == nil {
		t.Error("NewRanges with no column: want an error")
	}
}

func TestRangesChooseShard(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	c, err := chooser.NewRanges("id",
		r64{From: 0, To: 1000, Shard: "s0"},
		r64{From: 1000, To: 5000, Shard: "s1"},
		r64{From: 10_000, To: 20_000, Shard: "s0"},
		r64{From: 20_000, Unbounded: true, Shard: "s2"},
	)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		id      int64
		want    identity.ShardID
		wantErr string
	}{
		{0, "s0", ""},
		{999, "s0", ""},
		{1000, "s1", ""},
		{4999, "s1", ""},
		{10_000, "s0", ""},
		{20_000, "s2", ""},
		{math.MaxInt64, "s2", ""},
		{-1, "", "User.id: value -1 lies in no range (below [0, 1000) -> s0)"},
		{5000, "", "value 5000 lies in no range (between [1000, 5000) -> s1 and [10000, 20000) -> s0)"},
	}
	for _, tt := range tests {
		got, err := c.ChooseShard(ctx, users, &User{ID: tt.id})
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) || !errors.Is(err, chooser.ErrNoOpinion) {
				t.Errorf("ChooseShard(%d) = %v, %v; want an error containing %q wrapping ErrNoOpinion", tt.id, got, err, tt.wantErr)
			}
			continue
		}
		if got != tt.want || err != nil {
			t.Errorf("ChooseShard(%d) = %v, %v; want %v", tt.id, got, err, tt.want)
		}
	}
}

func TestRangesStrings(t *testing.T) {
	ctx := context.Background()
	accounts, tickets := tableOf[Account](), tableOf[Ticket]()
	c, err := chooser.NewRanges("slug",
		chooser.Range[string]{From: "", To: "h", Shard: "am"},
		chooser.Range[string]{From: "h", To: "q", Shard: "hp"},
		chooser.Range[string]{From: "q", Unbounded: true, Shard: "qz"},
	)
	if err != nil {
		t.Fatal(err)
	}
	for slug, want := range map[string]identity.ShardID{"": "am", "acme": "am", "hooli": "hp", "q": "qz", "zzz": "qz", "\xff": "qz"} {
		if got, err := c.ChooseShard(ctx, accounts, &Account{Slug: slug}); got != want || err != nil {
			t.Errorf("ChooseShard(%q) = %v, %v; want %v", slug, got, err, want)
		}
	}
	// A named string type converts; an integer does not.
	byRegion, err := chooser.NewRanges("region", chooser.Range[string]{From: "a", To: "m", Shard: "s0"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := byRegion.ChooseShard(ctx, tickets, &Ticket{Region: "eu"}); got != "s0" || err != nil {
		t.Errorf("ChooseShard(Region eu) = %v, %v; want s0", got, err)
	}
	if got, err := byRegion.ChooseIdentity(ctx, chooser.Key{Table: accounts, PK: []any{"x"}}); err != nil || !got.IsAll() {
		t.Errorf("ChooseIdentity(slug) on a region chooser = %v, %v; want all", got, err)
	}
	if _, err := c.ChooseIdentity(ctx, chooser.Key{Table: accounts, PK: []any{42}}); err == nil || !strings.Contains(err.Error(), "Account.slug: value 42 cannot be a string key") {
		t.Errorf("ChooseIdentity(42) error = %v; want one saying 42 cannot be a string key", err)
	}
}

func TestRangesConversion(t *testing.T) {
	ctx := context.Background()
	tickets := tableOf[Ticket]()
	// Ticket.ID is a named int32; Ranges[int64] accepts it.
	c, err := chooser.NewRanges("id", r64{From: 0, To: 100, Shard: "low"}, r64{From: 100, Unbounded: true, Shard: "high"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := c.ChooseShard(ctx, tickets, &Ticket{ID: 150}); got != "high" || err != nil {
		t.Errorf("ChooseShard(TicketID 150) = %v, %v; want high", got, err)
	}
	// Ranges[int8] refuses a value it cannot hold rather than wrapping it.
	small, err := chooser.NewRanges("id", chooser.Range[int8]{From: 0, To: 100, Shard: "low"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := small.ChooseShard(ctx, tickets, &Ticket{ID: 300}); err == nil || errors.Is(err, chooser.ErrNoOpinion) {
		t.Errorf("ChooseShard(300) on Ranges[int8] = %v, %v; want a conversion error", got, err)
	}
	// Float ranges work on float columns.
	byScore, err := chooser.NewRanges("score", chooser.Range[float64]{From: 0, To: 0.5, Shard: "low"}, chooser.Range[float64]{From: 0.5, To: 1, Shard: "high"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := byScore.ChooseShard(ctx, tickets, &Ticket{Score: 0.75}); got != "high" || err != nil {
		t.Errorf("ChooseShard(score 0.75) = %v, %v; want high", got, err)
	}
}

func TestRangesChooseExecute(t *testing.T) {
	c, err := chooser.NewRanges("id",
		r64{From: math.MinInt64, To: 10, Shard: "s0"},
		r64{From: 10, To: 20, Shard: "s1"},
		r64{From: 20, Unbounded: true, Shard: "s2"},
	)
	if err != nil {
		t.Fatal(err)
	}
	checkExecute(t, c, func(v int64) identity.ShardID {
		switch {
		case v < 10:
			return "s0"
		case v < 20:
			return "s1"
		}
		return "s2"
	})
	ctx := context.Background()
	stmt := &chooser.Statement{Op: chooser.OpUpdate, Table: tableOf[User](), Criteria: []chooser.Criterion{{Column: "id", Values: []any{int64(5)}}}}
	if got, err := c.ChooseExecute(ctx, stmt); err != nil || got.String() != "[s0]" {
		t.Errorf("ChooseExecute(id = 5) = %v, %v; want [s0]", got, err)
	}
}

func TestRangesString(t *testing.T) {
	c, err := chooser.NewRanges("id", r64{From: 0, To: 10, Shard: "a"}, r64{From: 10, Unbounded: true, Shard: "b"})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := c.String(), "chooser.Ranges(id, [[0, 10) -> a, [10, ∞) -> b])"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	rs := c.Ranges()
	rs[0].Shard = "z"
	if c.Ranges()[0].Shard != "a" {
		t.Error("modifying Ranges() changed the chooser")
	}
}
