package session_test

import (
	"context"
	"database/sql"
	"strings"
	"testing"

	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/driver/pgdriver"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/internal/weather"
	"github.com/bunshard/bunshard/session"
)

// builderInputs are the builder calls FuzzBuilderSQL feeds text to, each
// with valid inputs whose SQL shows the shapes the text may take.
var builderInputs = []struct {
	name  string
	build func(q *session.SelectQuery, text string) *session.SelectQuery
	valid []string
	model any // (*weather.Report)(nil) when nil
}{
	{"Order", func(q *session.SelectQuery, x string) *session.SelectQuery { return q.Order(x) },
		[]string{"id", "temperature DESC", "id NULLS FIRST", "id asc nulls last", `id COLLATE "C"`, `id COLLATE "POSIX" DESC NULLS LAST`, "id DESC NULLS FIRST"}, nil},
	{"Column", func(q *session.SelectQuery, x string) *session.SelectQuery { return q.Column(x) },
		[]string{"id", "x", "x.y", "x.y.z", "*", "x.*", "x.y.*"}, nil},
	{"ExcludeColumn", func(q *session.SelectQuery, x string) *session.SelectQuery { return q.ExcludeColumn(x) },
		[]string{"id", "temperature", "*"}, nil},
	{"Group", func(q *session.SelectQuery, x string) *session.SelectQuery { return q.Column("location_id").Group(x) },
		[]string{"location_id", "x", "x.y", "x.y.z"}, nil},
	{"GroupBy", func(q *session.SelectQuery, x string) *session.SelectQuery {
		return q.GroupBy(x).Aggregate(session.CountAll())
	}, []string{"location_id"}, nil},
	{"Sum", func(q *session.SelectQuery, x string) *session.SelectQuery { return q.Aggregate(session.Sum(x)) },
		[]string{"temperature", "id"}, nil},
	{"Max", func(q *session.SelectQuery, x string) *session.SelectQuery { return q.Aggregate(session.Max(x)) },
		[]string{"temperature", "report_time"}, nil},
	{"As", func(q *session.SelectQuery, x string) *session.SelectQuery {
		return q.GroupBy("location_id").Aggregate(session.Count("id").As(x))
	}, []string{"n"}, nil},
	{"HavingAgg name", func(q *session.SelectQuery, x string) *session.SelectQuery {
		return q.GroupBy("location_id").Aggregate(session.Count("id").As("n")).HavingAgg(x, ">", 1)
	}, []string{"n"}, nil},
	{"HavingAgg op", func(q *session.SelectQuery, x string) *session.SelectQuery {
		return q.GroupBy("location_id").Aggregate(session.Count("id").As("n")).HavingAgg("n", x, 1)
	}, []string{">"}, nil},
	{"grouped Order", func(q *session.SelectQuery, x string) *session.SelectQuery {
		return q.GroupBy("location_id").Aggregate(session.Count("id").As("n")).Order(x)
	}, []string{"n"}, nil},
	{"WhereShardKey column", func(q *session.SelectQuery, x string) *session.SelectQuery { return q.WhereShardKey(x, 1) },
		[]string{"location_id", "id"}, nil},
	{"WhereShardKey value", func(q *session.SelectQuery, x string) *session.SelectQuery {
		return q.WhereShardKey("continent", x, x+"'")
	}, []string{"x"}, (*weather.Location)(nil)},
}

// skeleton replaces every double-quoted identifier of sql with "?" and every
// single-quoted literal with '?', doubled quotes included, leaving what the
// session and Bun wrote themselves. An unterminated quote is left as it is,
// so that its skeleton matches no valid one.
func skeleton(sql string) string {
	var b strings.Builder
	for i := 0; i < len(sql); i++ {
		c := sql[i]
		if c != '"' && c != '\'' {
			b.WriteByte(c)
			continue
		}
		end := -1
		for j := i + 1; j < len(sql); j++ {
			if sql[j] == c {
				if j+1 < len(sql) && sql[j+1] == c {
					j++
					continue
				}
				end = j
				break
			}
		}
		if end < 0 {
			b.WriteString(sql[i:])
			break
		}
		b.WriteByte(c)
		b.WriteByte('?')
		b.WriteByte(c)
		i = end
	}
	return b.String()
}

// offlineSession is a one-shard session whose database is never dialled:
// Bun renders SQL from the dialect alone.
func offlineSession(tb testing.TB) *session.Session {
	db := bun.NewDB(sql.OpenDB(pgdriver.NewConnector(pgdriver.WithDSN("postgres://fuzz@127.0.0.1:1/fuzz?sslmode=disable"))), pgdialect.New())
	tb.Cleanup(func() { db.Close() })
	weather.Register(db)
	s, err := session.New(map[session.ShardID]bun.IDB{"a": db}, weather.ShardChooser, chooser.All, chooser.All)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// FuzzBuilderSQL checks issue #8's "no SQL from builder text": text given to
// Order, Column, ExcludeColumn, Group, GroupBy, an aggregate's column or
// alias, HavingAgg's name or operator, or WhereShardKey's column or value
// gives an error, or SQL whose skeleton (the SQL without its quoted
// identifiers and literals) is one that a valid input gives too: the text
// reached SQL only as a quoted identifier or a bound value, or not at all.
// It needs no server. Seeds are in testdata/fuzz/FuzzBuilderSQL.
func FuzzBuilderSQL(f *testing.F) {
	ctx := context.Background()
	s := offlineSession(f)
	render := func(m int, text string) (string, error) {
		model := builderInputs[m].model
		if model == nil {
			model = (*weather.Report)(nil)
		}
		q := builderInputs[m].build(s.NewSelect().Model(model), text)
		return q.String(ctx, "a")
	}
	shapes := make([]map[string]bool, len(builderInputs))
	for m, in := range builderInputs {
		shapes[m] = map[string]bool{}
		for _, v := range in.valid {
			sql, err := render(m, v)
			if err != nil {
				f.Fatalf("%s(%q), a valid input: %v", in.name, v, err)
			}
			shapes[m][skeleton(sql)] = true
		}
	}
	for m := range builderInputs {
		for _, x := range []string{"id; DROP TABLE victim; --", `id"; DROP TABLE victim; --`, "id*id", "x'y", "lower(city)"} {
			f.Add(uint8(m), x)
		}
	}
	f.Fuzz(func(t *testing.T, method uint8, text string) {
		m := int(method) % len(builderInputs)
		sql, err := render(m, text)
		if err != nil {
			return
		}
		if sk := skeleton(sql); !shapes[m][sk] {
			t.Fatalf("%s(%q) renders\n\t%s\nwhose skeleton\n\t%s\nno valid input gives (%v)", builderInputs[m].name, text, sql, sk, shapes[m])
		}
	})
}
