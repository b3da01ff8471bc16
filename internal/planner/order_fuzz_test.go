package planner

import (
	"cmp"
	"math/big"
	"reflect"
	"slices"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/uptrace/bun/dialect/pgdialect"

	"github.com/bunshard/bunshard/merge"
)

// fuzzRow holds the column types whose merge order the fuzz target checks:
// numeric text of any precision, char(6) as PostgreSQL returns it (padded
// with spaces), and a nullzero pointer that holds a real 0 apart from NULL.
type fuzzRow struct {
	ID   int64   `bun:",pk"`
	Dec  *string `bun:"type:numeric"`
	Code *string `bun:"type:char(6)"`
	Lvl  *int64  `bun:",nullzero"`
}

// fuzzOrders are the ORDER BY terms a fuzz input picks from.
var fuzzOrders = []string{"dec", "dec DESC", "dec NULLS FIRST", "dec DESC NULLS LAST",
	`code COLLATE "C"`, `code COLLATE "C" DESC`, `code COLLATE "C" NULLS FIRST`,
	"lvl", "lvl DESC", "lvl NULLS FIRST", "lvl DESC NULLS LAST"}

// fuzzInput turns bytes into rows and an order.
type fuzzInput struct {
	b []byte
}

func (in *fuzzInput) next() byte {
	if len(in.b) == 0 {
		return 0
	}
	c := in.b[0]
	in.b = in.b[1:]
	return c
}

func (in *fuzzInput) decimal() *string {
	c := in.next()
	switch c % 8 {
	case 0:
		return nil
	case 1:
		s := "NaN"
		return &s
	}
	var b strings.Builder
	if c&8 != 0 {
		b.WriteByte('-')
	}
	n := int(in.next() % 30)
	for i := 0; i <= n; i++ {
		b.WriteByte('0' + in.next()%10)
	}
	if f := int(in.next() % 30); f > 0 {
		b.WriteByte('.')
		for i := 0; i < f; i++ {
			b.WriteByte('0' + in.next()%10)
		}
	}
	s := b.String()
	return &s
}

func (in *fuzzInput) code() *string {
	c := in.next()
	if c%7 == 0 {
		return nil
	}
	alphabet := []string{"a", "b", " ", "\t", "!", "é", "\x01", "z"}
	var b strings.Builder
	for i := 0; i < int(c%7); i++ {
		b.WriteString(alphabet[in.next()%byte(len(alphabet))])
	}
	s := b.String()
	for utf8.RuneCountInString(s) < 6 {
		s += " " // PostgreSQL pads char(6) to six characters
	}
	return &s
}

func (in *fuzzInput) level() *int64 {
	c := in.next()
	if c%4 == 0 {
		return nil
	}
	v := int64(c%5) - 2 // includes a real 0
	return &v
}

// refLess is the reference order, written apart from the session's
// comparators: numerics by math/big.Rat (NaN above all), char(n) without
// trailing spaces, byte by byte, NULLs where the term puts them.
func refCompare(spec string, a, b fuzzRow) int {
	words := strings.Fields(spec)
	desc := strings.Contains(spec, "DESC")
	nullsFirst := desc
	if strings.Contains(spec, "NULLS FIRST") {
		nullsFirst = true
	}
	if strings.Contains(spec, "NULLS LAST") {
		nullsFirst = false
	}
	var an, bn bool
	var c int
	switch words[0] {
	case "dec":
		an, bn = a.Dec == nil, b.Dec == nil
		if !an && !bn {
			c = refNumeric(*a.Dec, *b.Dec)
		}
	case "code":
		an, bn = a.Code == nil, b.Code == nil
		if !an && !bn {
			c = strings.Compare(strings.TrimRight(*a.Code, " "), strings.TrimRight(*b.Code, " "))
		}
	case "lvl":
		an, bn = a.Lvl == nil, b.Lvl == nil
		if !an && !bn {
			c = cmp.Compare(*a.Lvl, *b.Lvl)
		}
	}
	switch {
	case an && bn:
		return 0
	case an != bn:
		if an == nullsFirst {
			return -1
		}
		return 1
	}
	if desc {
		return -c
	}
	return c
}

func refNumeric(a, b string) int {
	if a == "NaN" || b == "NaN" {
		return cmp.Compare(b2i(a == "NaN"), b2i(b == "NaN"))
	}
	x, _ := new(big.Rat).SetString(a)
	y, _ := new(big.Rat).SetString(b)
	return x.Cmp(y)
}

// FuzzMergeTypes: rows split over shards, each shard sorted as PostgreSQL
// would (the reference order), merged by the session's comparator, come
// out in the reference order of all rows.
func FuzzMergeTypes(f *testing.F) {
	f.Add([]byte{3, 0, 1, 7, 2, 9, 1, 5, 1, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16})
	f.Add([]byte("numeric 1 and 1.00 and 10.5 and 9.5, char(n) with tabs, and real zeros"))
	f.Add([]byte{0xff, 0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0x80, 0x90, 0xa0, 0xb0, 0xc0, 0xd0, 0xe0, 0xf0})
	table := pgdialect.New().Tables().Get(reflect.TypeFor[fuzzRow]())
	f.Fuzz(func(t *testing.T, data []byte) {
		in := &fuzzInput{b: data}
		nShards := 1 + int(in.next()%4)
		var specs []string
		for range 1 + int(in.next()%3) {
			specs = append(specs, fuzzOrders[int(in.next())%len(fuzzOrders)])
		}
		specs = append(specs, "id")
		var keys []Key
		for _, s := range specs {
			k, err := ParseOrder(table, s)
			if err != nil {
				t.Fatalf("ParseOrder(%q): %v", s, err)
			}
			keys = append(keys, k)
		}
		if err := Mergeable(keys); err != nil {
			t.Fatalf("ORDER BY %v: %v", specs, err)
		}
		ref := func(a, b fuzzRow) int {
			for _, s := range specs[:len(specs)-1] {
				if c := refCompare(s, a, b); c != 0 {
					return c
				}
			}
			return cmp.Compare(a.ID, b.ID)
		}
		var all []fuzzRow
		parts := make([][]fuzzRow, nShards)
		for id := int64(1); len(in.b) > 0 && id <= 64; id++ {
			r := fuzzRow{ID: id, Dec: in.decimal(), Code: in.code(), Lvl: in.level()}
			s := int(in.next()) % nShards
			parts[s] = append(parts[s], r)
			all = append(all, r)
		}
		vparts := make([][]reflect.Value, nShards)
		for i, p := range parts {
			slices.SortFunc(p, ref) // what each shard's PostgreSQL returns
			for j := range p {
				vparts[i] = append(vparts[i], reflect.ValueOf(&p[j]).Elem())
			}
		}
		slices.SortFunc(all, ref)
		got := merge.Slices(vparts, func(a, b reflect.Value) int { return CompareRows(keys, a, b) }, 0, -1)
		if len(got) != len(all) {
			t.Fatalf("ORDER BY %v: merged %d rows; want %d", specs, len(got), len(all))
		}
		for i, v := range got {
			if id := v.Interface().(fuzzRow).ID; id != all[i].ID {
				t.Fatalf("ORDER BY %v: row %d is id %d; want id %d (%s)", specs, i, id, all[i].ID, fuzzDescribe(all))
			}
		}
	})
}

func fuzzDescribe(rows []fuzzRow) string {
	var b strings.Builder
	for _, r := range rows {
		b.WriteString("\n  ")
		b.WriteString(strings.Join([]string{fuzzItoa(r.ID), fuzzDec(r.Dec), fuzzCode(r.Code), fuzzLvl(r.Lvl)}, " "))
	}
	return b.String()
}

func fuzzItoa(i int64) string { return big.NewInt(i).String() }

func fuzzDec(s *string) string {
	if s == nil {
		return "NULL"
	}
	return *s
}

func fuzzCode(s *string) string {
	if s == nil {
		return "NULL"
	}
	return "'" + *s + "'"
}

func fuzzLvl(p *int64) string {
	if p == nil {
		return "NULL"
	}
	return fuzzItoa(*p)
}

// TestMergeableTypes: the refusals and acceptances of the merge's type
// rules, by model field, without a server.
func TestMergeableTypes(t *testing.T) {
	type model struct {
		ID    int64    `bun:",pk"`
		Dec   string   `bun:"type:numeric(20,4),notnull"`
		DecF  float64  `bun:"type:numeric"`
		DecI  int64    `bun:"type:decimal(20,0)"`
		Code  string   `bun:"type:char(3)"`
		Name  string   `bun:"type:varchar(20)"`
		UUID  string   `bun:"type:uuid"`
		Doc   string   `bun:"type:jsonb"`
		Tags  []string `bun:",array"`
		Cit   string   `bun:"type:citext"`
		Flat  int64    `bun:",nullzero"`
		Seen  int64    `bun:",nullzero,notnull,default:0"`
		Raw   []byte
		Money string `bun:"type:money"`
	}
	table := pgdialect.New().Tables().Get(reflect.TypeFor[model]())
	for _, c := range []struct {
		spec string
		ok   bool
		want string
	}{
		{"dec", true, ""}, {"dec DESC NULLS LAST", true, ""}, {"deci", true, ""}, {"dec NULLS FIRST", true, ""},
		{"decf", false, "numeric"}, {"code", false, "COLLATE"}, {`code COLLATE "C"`, true, ""},
		{"name", false, "COLLATE"}, {`name COLLATE "C"`, true, ""}, {"uuid", true, ""},
		{"doc", false, "jsonb"}, {`doc COLLATE "C"`, false, "jsonb"}, {"tags", false, "tags"},
		{"cit", false, "citext"}, {`cit COLLATE "C"`, false, "citext"}, {"flat", false, "pointer"},
		{"seen", true, ""}, {"raw", true, ""}, {"money", false, "money"},
	} {
		k, err := ParseOrder(table, c.spec)
		if err != nil {
			t.Fatalf("ParseOrder(%q): %v", c.spec, err)
		}
		err = Mergeable([]Key{k})
		switch {
		case c.ok && err != nil:
			t.Errorf("ORDER BY %s: %v; want it merged", c.spec, err)
		case !c.ok && (err == nil || !strings.Contains(err.Error(), c.want) ||
			!strings.Contains(err.Error(), strings.Fields(c.spec)[0])):
			t.Errorf("ORDER BY %s: err = %v; want ErrUnsupported naming the column and %q", c.spec, err, c.want)
		}
	}
}
