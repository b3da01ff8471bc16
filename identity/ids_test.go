package identity_test

import (
	"math"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bunshard/bunshard/identity"
)

var epoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

func TestLayoutValidate(t *testing.T) {
	tests := []struct {
		name   string
		layout identity.Layout
		want   string // "" for valid
	}{
		{"default", identity.DefaultLayout(), ""},
		{"63 bits", identity.Layout{Epoch: epoch, TimeBits: 40, BucketBits: 13, SeqBits: 10}, ""},
		{"no buckets", identity.Layout{Epoch: epoch, TimeBits: 41, SeqBits: 22}, ""},
		{"no epoch", identity.Layout{TimeBits: 41, BucketBits: 12, SeqBits: 10}, "Epoch is not set"},
		{"64 bits", identity.Layout{Epoch: epoch, TimeBits: 41, BucketBits: 13, SeqBits: 10}, "add up to 64; want at most 63"},
		{"no time", identity.Layout{Epoch: epoch, BucketBits: 12, SeqBits: 10}, "want TimeBits >= 1"},
		{"negative", identity.Layout{Epoch: epoch, TimeBits: 41, BucketBits: -1, SeqBits: 10}, "no negative width"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.layout.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Errorf("Validate(%v) = %v; want %q", tt.layout, err, tt.want)
			}
		})
	}
}

func TestDefaultLayout(t *testing.T) {
	l := identity.DefaultLayout()
	if got, want := l.String(), "2025-01-01T00:00:00Z/41/10/12"; got != want {
		t.Errorf("DefaultLayout() = %s; want %s", got, want)
	}
	if l.Buckets() != 1024 {
		t.Errorf("Buckets() = %d; want 1024", l.Buckets())
	}
	// The last representable millisecond is still a positive ID.
	end := epoch.Add(time.Duration(1<<41-1) * time.Millisecond)
	id, err := l.Encode(end, 1023, 4095)
	if err != nil || id != math.MaxInt64 {
		t.Errorf("Encode(end of range, last bucket, last seq) = %d, %v; want MaxInt64", id, err)
	}
	if end.Year() != 2094 {
		t.Errorf("the default layout ends in %d; want 2094", end.Year())
	}
}

func TestEncodeDecode(t *testing.T) {
	l := identity.DefaultLayout()
	tests := []struct {
		t           time.Time
		bucket, seq int
		want        int64
	}{
		{epoch, 0, 0, 0},
		{epoch, 0, 1, 1},
		{epoch, 1, 0, 1 << 12},
		{epoch.Add(time.Millisecond), 0, 0, 1 << 22},
		{epoch.Add(time.Millisecond + 999*time.Microsecond), 3, 7, 1<<22 | 3<<12 | 7}, // truncated to the ms
		{time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC), 1023, 4095, 41947200000<<22 | 1023<<12 | 4095},
	}
	for _, tt := range tests {
		id, err := l.Encode(tt.t, tt.bucket, tt.seq)
		if err != nil || id != tt.want {
			t.Errorf("Encode(%v, %d, %d) = %d, %v; want %d", tt.t, tt.bucket, tt.seq, id, err, tt.want)
			continue
		}
		gt, gb, gs := l.Decode(id)
		if !gt.Equal(tt.t.Truncate(time.Millisecond)) || gb != tt.bucket || gs != tt.seq {
			t.Errorf("Decode(%d) = %v, %d, %d; want %v, %d, %d", id, gt, gb, gs, tt.t.Truncate(time.Millisecond), tt.bucket, tt.seq)
		}
		if b := l.Bucket(id); b != tt.bucket {
			t.Errorf("Bucket(%d) = %d; want %d", id, b, tt.bucket)
		}
	}
	bad := []struct {
		t           time.Time
		bucket, seq int
		want        string
	}{
		{epoch.Add(-time.Millisecond), 0, 0, "outside layout"},
		{epoch.Add(time.Duration(1<<41) * time.Millisecond), 0, 0, "outside layout"},
		{epoch, 1024, 0, "bucket 1024 is outside"},
		{epoch, -1, 0, "bucket -1 is outside"},
		{epoch, 0, 4096, "sequence 4096 is outside"},
	}
	for _, tt := range bad {
		if id, err := l.Encode(tt.t, tt.bucket, tt.seq); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Encode(%v, %d, %d) = %d, %v; want an error containing %q", tt.t, tt.bucket, tt.seq, id, err, tt.want)
		}
	}
}

// TestIDsSortByTime checks that IDs order by time across buckets: the
// smallest ID of a millisecond is above every ID of the one before.
func TestIDsSortByTime(t *testing.T) {
	l := identity.DefaultLayout()
	at := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	hi, _ := l.Encode(at, l.Buckets()-1, 4095)
	lo, _ := l.Encode(at.Add(time.Millisecond), 0, 0)
	if lo <= hi {
		t.Errorf("first ID of the next ms %d <= last ID of this ms %d", lo, hi)
	}
}

func TestNewGeneratorErrors(t *testing.T) {
	l := identity.DefaultLayout()
	for _, b := range []int{-1, 1024} {
		if _, err := identity.NewGenerator(l, b); err == nil || !strings.Contains(err.Error(), "outside layout") {
			t.Errorf("NewGenerator(bucket %d) error = %v; want one saying it is outside the layout", b, err)
		}
	}
	if _, err := identity.NewGenerator(identity.Layout{}, 0); err == nil {
		t.Error("NewGenerator(zero Layout): want an error")
	}
}

func TestGeneratorMonotonic(t *testing.T) {
	l := identity.DefaultLayout()
	g, err := identity.NewGenerator(l, 77)
	if err != nil {
		t.Fatal(err)
	}
	if g.Bucket() != 77 || g.Layout() != l {
		t.Errorf("Bucket(), Layout() = %d, %v; want 77, %v", g.Bucket(), g.Layout(), l)
	}
	before := time.Now().Truncate(time.Millisecond)
	last := int64(0)
	for range 200_000 {
		id, err := g.Next()
		if err != nil {
			t.Fatal(err)
		}
		if id <= last {
			t.Fatalf("Next() = %d after %d; want strictly increasing IDs", id, last)
		}
		last = id
	}
	ts, b, _ := l.Decode(last)
	if b != 77 {
		t.Errorf("bucket of %d = %d; want 77", last, b)
	}
	// 200,000 IDs at 4096 per ms may run ahead of the clock by at most
	// 49 ms; they must not lag it.
	if ts.Before(before) || ts.After(time.Now().Add(50*time.Millisecond)) {
		t.Errorf("time of the last ID = %v; want between %v and now + 50 ms", ts, before)
	}
}

// TestGeneratorsConcurrent takes IDs from several generators (different
// buckets, as several processes or shards would) from many goroutines at
// once. Every ID is unique, and each goroutine sees each generator's IDs
// increase. Run with -race.
func TestGeneratorsConcurrent(t *testing.T) {
	l := identity.DefaultLayout()
	gens := make([]*identity.Generator, 4)
	for i := range gens {
		g, err := identity.NewGenerator(l, 1000+i)
		if err != nil {
			t.Fatal(err)
		}
		gens[i] = g
	}
	const goroutines, perGoroutine = 8, 20_000
	got := make([][]int64, goroutines) // one slot per goroutine: no lock
	var wg sync.WaitGroup
	for w := range goroutines {
		wg.Go(func() {
			ids := make([]int64, 0, perGoroutine)
			last := make([]int64, len(gens))
			for i := range perGoroutine {
				k := (w + i) % len(gens)
				id, err := gens[k].Next()
				if err != nil {
					t.Error(err)
					return
				}
				if id <= last[k] {
					t.Errorf("goroutine %d: generator %d gave %d after %d", w, k, id, last[k])
					return
				}
				if b := l.Bucket(id); b != 1000+k {
					t.Errorf("generator %d gave ID %d in bucket %d; want %d", k, id, b, 1000+k)
					return
				}
				last[k] = id
				ids = append(ids, id)
			}
			got[w] = ids
		})
	}
	wg.Wait()
	all := slices.Concat(got...)
	slices.Sort(all)
	if len(all) != goroutines*perGoroutine {
		t.Fatalf("got %d IDs; want %d", len(all), goroutines*perGoroutine)
	}
	for i := 1; i < len(all); i++ {
		if all[i] == all[i-1] {
			t.Fatalf("ID %d was issued twice", all[i])
		}
	}
}

func TestFunctionSQL(t *testing.T) {
	l := identity.DefaultLayout()
	tests := []struct {
		first, n int
		want     string
	}{
		{3, 1, `CREATE SEQUENCE IF NOT EXISTS "app"."next_id_seq";
CREATE OR REPLACE FUNCTION "app"."next_id"() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $bunshard$
-- bunshard ID layout 2025-01-01T00:00:00Z/41/10/12, buckets 3 to 3
DECLARE
	ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - 1735689600000;
	v bigint := nextval('"app"."next_id_seq"');
BEGIN
	IF ms < 0 OR ms >= 2199023255552 THEN
		RAISE EXCEPTION 'bunshard: clock % is outside the time range of ID layout 2025-01-01T00:00:00Z/41/10/12', clock_timestamp();
	END IF;
	RETURN (ms << 22) | (3::bigint << 12) | (v & 4095);
END
$bunshard$;
`},
		{512, 4, `CREATE SEQUENCE IF NOT EXISTS "app"."next_id_seq";
CREATE OR REPLACE FUNCTION "app"."next_id"() RETURNS bigint
LANGUAGE plpgsql VOLATILE AS $bunshard$
-- bunshard ID layout 2025-01-01T00:00:00Z/41/10/12, buckets 512 to 515
DECLARE
	ms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - 1735689600000;
	v bigint := nextval('"app"."next_id_seq"');
BEGIN
	IF ms < 0 OR ms >= 2199023255552 THEN
		RAISE EXCEPTION 'bunshard: clock % is outside the time range of ID layout 2025-01-01T00:00:00Z/41/10/12', clock_timestamp();
	END IF;
	RETURN (ms << 22) | ((512 + (v >> 12) % 4)::bigint << 12) | (v & 4095);
END
$bunshard$;
`},
	}
	for _, tt := range tests {
		got, err := l.FunctionSQL("app", "next_id", tt.first, tt.n)
		if err != nil || got != tt.want {
			t.Errorf("FunctionSQL(app, next_id, %d, %d) = %v,\n%s\nwant\n%s", tt.first, tt.n, err, got, tt.want)
		}
	}
	// Identifiers are quoted, quotes doubled.
	odd, err := l.FunctionSQL(`My "Schema"`, "it's", 0, 1)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(odd, `FUNCTION "My ""Schema"""."it's"()`) || !strings.Contains(odd, `nextval('"My ""Schema"""."it''s_seq"')`) {
		t.Errorf("FunctionSQL with quotes in names:\n%s", odd)
	}
	bad := []struct {
		schema, name string
		first, n     int
		want         string
	}{
		{"app", "next_id", 1024, 1, "buckets 1024 to 1024 are outside"},
		{"app", "next_id", 1020, 5, "buckets 1020 to 1024 are outside"},
		{"app", "next_id", 0, 0, "n >= 1"},
		{"app", "next_id", -1, 1, "0 <= first"},
		{"", "next_id", 0, 1, "empty schema"},
		{"app", "", 0, 1, "empty function name"},
		{"app", strings.Repeat("x", 60), 0, 1, "is 60 bytes; PostgreSQL allows 59"},
		{"app", "a$b", 0, 1, "contains '$'"},
		{"a\x00", "f", 0, 1, "NUL"},
	}
	for _, tt := range bad {
		if _, err := l.FunctionSQL(tt.schema, tt.name, tt.first, tt.n); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("FunctionSQL(%q, %q, %d, %d) error = %v; want one containing %q", tt.schema, tt.name, tt.first, tt.n, err, tt.want)
		}
	}
}

// FuzzLayoutRoundTrip checks that Encode and Decode are inverse for every
// valid layout and part, and that Bucket agrees with Decode. Seeds are in
// testdata/fuzz/FuzzLayoutRoundTrip.
func FuzzLayoutRoundTrip(f *testing.F) {
	f.Add(uint8(41), uint8(10), uint8(12), int64(41947200000), 1023, 4095)
	f.Add(uint8(1), uint8(0), uint8(0), int64(1), 0, 0)
	f.Fuzz(func(t *testing.T, timeBits, bucketBits, seqBits uint8, ms int64, bucket, seq int) {
		l := identity.Layout{Epoch: epoch, TimeBits: int(timeBits), BucketBits: int(bucketBits), SeqBits: int(seqBits)}
		if l.Validate() != nil || ms < 0 || ms>>l.TimeBits != 0 || ms > math.MaxInt64/int64(time.Millisecond)/2 {
			t.Skip()
		}
		bucket &= l.Buckets() - 1
		seq &= 1<<l.SeqBits - 1
		at := epoch.Add(time.Duration(ms) * time.Millisecond)
		id, err := l.Encode(at, bucket, seq)
		if err != nil {
			t.Fatalf("Encode(%v, %d, %d) in %v: %v", at, bucket, seq, l, err)
		}
		if id < 0 {
			t.Fatalf("Encode(%v, %d, %d) in %v = %d; want a positive ID", at, bucket, seq, l, id)
		}
		gt, gb, gs := l.Decode(id)
		if !gt.Equal(at) || gb != bucket || gs != seq {
			t.Fatalf("Decode(Encode(%v, %d, %d)) in %v = %v, %d, %d", at, bucket, seq, l, gt, gb, gs)
		}
		if b := l.Bucket(id); b != bucket {
			t.Fatalf("Bucket(%d) = %d; want %d", id, b, bucket)
		}
	})
}
