package identity

import (
	"errors"
	"fmt"
	"math"
	"strings"
	"sync/atomic"
	"time"
)

// Layout describes a shard-encoded 64-bit ID, in the manner of Instagram's
// and go-pg's: from the most significant bit down,
//
//	0 | time: ms since Epoch (TimeBits) | bucket (BucketBits) | sequence (SeqBits)
//
// The sign bit is always 0, so IDs are positive bigints that sort by
// creation time (to the millisecond) across all buckets. The bucket says
// where the row lives: a chooser maps buckets to shards (chooser.FromID), so
// a Get by ID goes to one shard with no fan-out, and buckets can later move
// between shards without changing any ID.
//
// A Layout is fixed for the life of the data: changing any field changes
// what existing IDs mean. It is a plain value, safe to copy and share.
type Layout struct {
	// Epoch is the time of ID time 0, kept to the millisecond. Pick one a
	// little before the first ID: the time range starts there.
	Epoch time.Time
	// TimeBits is the width of the millisecond clock: 41 bits last 69.7
	// years from Epoch.
	TimeBits int
	// BucketBits is the width of the bucket number: 2^BucketBits buckets.
	BucketBits int
	// SeqBits is the width of the per-millisecond sequence: one generator
	// issues up to 2^SeqBits IDs per millisecond at the real clock rate.
	SeqBits int
}

// DefaultLayout returns the layout bunshard recommends: Epoch 2025-01-01
// UTC, 41 time bits (IDs until 2094), 10 bucket bits (1024 buckets) and 12
// sequence bits (4096 IDs per millisecond per issuer, as go-pg's layout).
// The three fields fill the 63 bits below the sign bit.
//
// Sequence bits are the scarce resource: a database function running
// INSERT … SELECT issues close to a thousand IDs per millisecond from one
// connection on modest hardware, and an Instagram-style function repeats
// IDs past 2^SeqBits per millisecond (see [Layout.FunctionSQL]). 1024
// buckets are still hundreds per shard for a handful of shards.
func DefaultLayout() Layout {
	return Layout{
		Epoch:      time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC),
		TimeBits:   41,
		BucketBits: 10,
		SeqBits:    12,
	}
}

// Validate reports whether l can encode IDs: Epoch is set, TimeBits is at
// least 1, no width is negative, and the widths add up to at most 63.
func (l Layout) Validate() error {
	switch {
	case l.Epoch.IsZero():
		return errors.New("identity: Layout.Epoch is not set; use DefaultLayout or pick a date just before your first ID")
	case l.TimeBits < 1 || l.BucketBits < 0 || l.SeqBits < 0:
		return fmt.Errorf("identity: Layout bits %d/%d/%d: want TimeBits >= 1 and no negative width", l.TimeBits, l.BucketBits, l.SeqBits)
	case l.TimeBits+l.BucketBits+l.SeqBits > 63:
		return fmt.Errorf("identity: Layout bits %d/%d/%d add up to %d; want at most 63, so IDs stay positive",
			l.TimeBits, l.BucketBits, l.SeqBits, l.TimeBits+l.BucketBits+l.SeqBits)
	}
	return nil
}

// Buckets returns the number of buckets, 2^BucketBits.
func (l Layout) Buckets() int { return 1 << l.BucketBits }

// String renders l as "2025-01-01T00:00:00Z/41/10/12" (epoch, time, bucket
// and sequence bits).
func (l Layout) String() string {
	return fmt.Sprintf("%s/%d/%d/%d", l.Epoch.UTC().Format(time.RFC3339Nano), l.TimeBits, l.BucketBits, l.SeqBits)
}

// end returns the last millisecond l can encode, saturating for layouts
// whose range passes the year 292277026596.
func (l Layout) end() time.Time {
	epoch := l.Epoch.UnixMilli()
	span := int64(1)<<l.TimeBits - 1
	if epoch > 0 && span > math.MaxInt64-epoch {
		return time.UnixMilli(math.MaxInt64).UTC()
	}
	return time.UnixMilli(epoch + span).UTC()
}

// Encode packs a time, bucket and sequence number into an ID. The time is
// truncated to the millisecond. It fails if l is invalid or a part is out of
// its range (time before Epoch or past the time range, bucket or sequence
// too wide). Encode(t, 0, 0) is the smallest ID made at or after t, which
// bounds range scans by creation time.
func (l Layout) Encode(t time.Time, bucket, seq int) (int64, error) {
	if err := l.Validate(); err != nil {
		return 0, err
	}
	ms := t.UnixMilli() - l.Epoch.UnixMilli()
	switch {
	case ms < 0 || ms>>l.TimeBits != 0:
		return 0, fmt.Errorf("identity: time %v is outside layout %v, whose range is %v to %v",
			t, l, l.Epoch.UTC(), l.end())
	case bucket < 0 || bucket >= l.Buckets():
		return 0, fmt.Errorf("identity: bucket %d is outside layout %v; want 0 <= bucket < %d", bucket, l, l.Buckets())
	case seq < 0 || seq>>l.SeqBits != 0:
		return 0, fmt.Errorf("identity: sequence %d is outside layout %v; want 0 <= seq < %d", seq, l, 1<<l.SeqBits)
	}
	return ms<<(l.BucketBits+l.SeqBits) | int64(bucket)<<l.SeqBits | int64(seq), nil
}

// Decode unpacks an ID made with l: the time it was made (UTC, to the
// millisecond), its bucket and its sequence number. An ID not made with l
// decodes to meaningless parts; Decode does not fail.
func (l Layout) Decode(id int64) (t time.Time, bucket, seq int) {
	ms := id >> (l.BucketBits + l.SeqBits)
	return time.UnixMilli(l.Epoch.UnixMilli() + ms).UTC(), l.Bucket(id), int(id & (1<<l.SeqBits - 1))
}

// Bucket returns the bucket of an ID made with l.
func (l Layout) Bucket(id int64) int {
	return int(id >> l.SeqBits & (1<<l.BucketBits - 1))
}

// Generator issues IDs in one bucket of a [Layout]. Each ID is greater than
// the one before (so they are unique), with no lock: the state is one atomic
// word holding the millisecond and sequence of the last ID, and the next
// state is
//
//	max(now << SeqBits, last + 1)
//
// That one rule covers the two hard cases:
//
//   - The clock goes backwards (an NTP step, a VM migration): the generator
//     keeps the last millisecond and counts the sequence up, until the clock
//     passes it again. It never issues a smaller or repeated ID.
//   - The sequence overflows (more than 2^SeqBits IDs in a millisecond): the
//     carry moves the ID into the next millisecond, ahead of the clock.
//     The generator never sleeps; under sustained overload the time in the
//     IDs runs ahead of the clock and falls back in line once the rate
//     drops below 2^SeqBits per millisecond.
//
// IDs are unique only if each bucket has one issuer at a time: one
// Generator, in one process, or one database function ([Layout.FunctionSQL]).
// Two issuers of the same bucket count their sequences independently and
// will repeat IDs. Give every issuer its own bucket: with 1024 buckets over
// a few shards, each shard owns a range of buckets (chooser.Spread), a few
// buckets of that range belong to the shard's database function, and each
// application process takes its own from the rest (by an instance number
// assigned at deploy time).
//
// The state lives in memory. A new Generator for a bucket starts from the
// wall clock, so a restarted process does not repeat IDs of the previous run
// unless the clock has been set back past them.
//
// Generator is safe for concurrent use.
type Generator struct {
	layout  Layout
	bucket  int64
	epochMs int64
	// state is (ms << SeqBits) | seq of the last ID issued, 0 before the first.
	state atomic.Uint64
	// now reads the clock; tests replace it.
	now func() time.Time
}

// NewGenerator returns a Generator for bucket in layout l. It fails if l is
// invalid or bucket is outside [0, l.Buckets()).
func NewGenerator(l Layout, bucket int) (*Generator, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if bucket < 0 || bucket >= l.Buckets() {
		return nil, fmt.Errorf("identity: NewGenerator: bucket %d is outside layout %v; want 0 <= bucket < %d", bucket, l, l.Buckets())
	}
	return &Generator{layout: l, bucket: int64(bucket), epochMs: l.Epoch.UnixMilli(), now: time.Now}, nil
}

// Bucket returns the generator's bucket.
func (g *Generator) Bucket() int { return int(g.bucket) }

// Layout returns the generator's layout.
func (g *Generator) Layout() Layout { return g.layout }

// Next returns a new ID, greater than every ID g returned before. It fails
// only if the clock reads before the layout's Epoch when g has issued no ID
// yet, or if the IDs' time would pass the end of the layout's time range;
// both mean a wrong clock or a wrong layout, and retrying will not help.
func (g *Generator) Next() (int64, error) {
	l := &g.layout
	ms := g.now().UnixMilli() - g.epochMs
	// The clock is read once, outside the loop: it is only a floor, and a
	// lost race means another goroutine moved the state past it anyway.
	for {
		last := g.state.Load()
		if ms < 0 && last == 0 {
			return 0, fmt.Errorf("identity: clock reads %v, before the epoch of layout %v", time.UnixMilli(g.epochMs+ms).UTC(), *l)
		}
		next := last + 1
		if ms > 0 && uint64(ms)<<l.SeqBits > next {
			next = uint64(ms) << l.SeqBits
		}
		if next>>(l.SeqBits+l.TimeBits) != 0 {
			return 0, fmt.Errorf("identity: layout %v has run out of time: IDs cannot go past %v", *l, l.end())
		}
		if g.state.CompareAndSwap(last, next) {
			seqMask := uint64(1)<<l.SeqBits - 1
			return int64(next>>l.SeqBits)<<(l.BucketBits+l.SeqBits) | g.bucket<<l.SeqBits | int64(next&seqMask), nil
		}
	}
}

// FunctionSQL returns SQL that creates, in schema, a sequence name_seq and a
// function name() returning IDs in layout l, in the n buckets first, …,
// first+n-1, so that a shard's database can issue IDs itself:
//
//	CREATE TABLE app.orders (id bigint PRIMARY KEY DEFAULT app.next_id(), …)
//
// Run it once on each shard, each with buckets of its own. The statements
// are idempotent (CREATE … IF NOT EXISTS, CREATE OR REPLACE); schema and
// name are quoted identifiers, so they keep their case.
//
// The function is Instagram's, widened to n buckets. With v =
// nextval(sequence), it packs
//
//	time   = milliseconds since Epoch, from clock_timestamp()
//	bucket = first + (v >> SeqBits) mod n
//	seq    = v mod 2^SeqBits
//
// A sequence is the only state PostgreSQL sessions share without locks, so
// the function cannot be the strictly increasing [Generator]: it repeats an
// ID if n·2^SeqBits or more IDs are taken from it within one millisecond, or
// within a window in which the server's clock is set back and revisits a
// millisecond. A primary key turns that into a unique violation, never a
// silent duplicate. With [DefaultLayout] and n = 1 the limit is 4096 IDs per
// millisecond per shard; raise n for shards that insert faster. The function
// fails (RAISE) when the clock is outside the layout's time range.
//
// Never let a [Generator] and a database function share a bucket: their
// sequences are independent, so IDs made in the same millisecond collide.
// Reserve a bucket (or a few) of each shard's range for its function.
//
// FunctionSQL fails if l is invalid; n < 1 or the buckets are outside the
// layout; schema or name is empty, too long for PostgreSQL (63 bytes; name at
// most 59, to leave room for "_seq") or contains '$', a backslash or a NUL
// byte.
func (l Layout) FunctionSQL(schema, name string, first, n int) (string, error) {
	if err := l.Validate(); err != nil {
		return "", err
	}
	if n < 1 || first < 0 || first > l.Buckets()-n {
		return "", fmt.Errorf("identity: FunctionSQL: buckets %d to %d are outside layout %v; want 0 <= first, n >= 1 and first+n <= %d",
			first, first+n-1, l, l.Buckets())
	}
	if err := checkIdent("schema", schema, 63); err != nil {
		return "", err
	}
	if err := checkIdent("function name", name, 63-len("_seq")); err != nil {
		return "", err
	}
	seq := quoteIdent(schema) + "." + quoteIdent(name+"_seq")
	fn := quoteIdent(schema) + "." + quoteIdent(name)
	var b strings.Builder
	fmt.Fprintf(&b, "CREATE SEQUENCE IF NOT EXISTS %s;\n", seq)
	fmt.Fprintf(&b, "CREATE OR REPLACE FUNCTION %s() RETURNS bigint\nLANGUAGE plpgsql VOLATILE AS $bunshard$\n", fn)
	fmt.Fprintf(&b, "-- bunshard ID layout %s, buckets %d to %d\n", l, first, first+n-1)
	b.WriteString("DECLARE\n")
	fmt.Fprintf(&b, "\tms bigint := floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint - %d;\n", l.Epoch.UnixMilli())
	fmt.Fprintf(&b, "\tv bigint := nextval(%s);\n", quoteLiteral(seq))
	b.WriteString("BEGIN\n")
	fmt.Fprintf(&b, "\tIF ms < 0 OR ms >= %d THEN\n", int64(1)<<l.TimeBits)
	fmt.Fprintf(&b, "\t\tRAISE EXCEPTION 'bunshard: clock %% is outside the time range of ID layout %s', clock_timestamp();\n", l)
	b.WriteString("\tEND IF;\n")
	bucket := fmt.Sprintf("%d", first)
	if n > 1 {
		bucket = fmt.Sprintf("(%d + (v >> %d) %% %d)", first, l.SeqBits, n)
	}
	// PostgreSQL gives <<, | and & one precedence, left to right: every
	// term needs its parentheses.
	fmt.Fprintf(&b, "\tRETURN (ms << %d) | (%s::bigint << %d) | (v & %d);\n",
		l.BucketBits+l.SeqBits, bucket, l.SeqBits, int64(1)<<l.SeqBits-1)
	b.WriteString("END\n$bunshard$;\n")
	return b.String(), nil
}

func checkIdent(what, s string, max int) error {
	switch {
	case s == "":
		return fmt.Errorf("identity: FunctionSQL: empty %s", what)
	case len(s) > max:
		return fmt.Errorf("identity: FunctionSQL: %s %q is %d bytes; PostgreSQL allows %d here", what, s, len(s), max)
	case strings.ContainsAny(s, "$\\\x00"):
		return fmt.Errorf("identity: FunctionSQL: %s %q contains '$', a backslash or NUL", what, s)
	}
	return nil
}

func quoteIdent(s string) string { return `"` + strings.ReplaceAll(s, `"`, `""`) + `"` }

func quoteLiteral(s string) string { return `'` + strings.ReplaceAll(s, `'`, `''`) + `'` }
