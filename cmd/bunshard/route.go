package main

import (
	"fmt"
	"reflect"
	"regexp"
	"strconv"
	"strings"

	"github.com/spf13/cobra"
	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/session"
)

// fullChooser is what each of the ready-made column choosers is.
type fullChooser interface {
	chooser.ShardChooser
	chooser.IdentityChooser
	chooser.ExecuteChooser
}

// routeJSON is where one key goes.
type routeJSON struct {
	Table  string   `json:"table"`
	Column string   `json:"column"`
	Key    string   `json:"key"`
	Insert string   `json:"insert"` // the shard an INSERT of a row with this key goes to
	Select []string `json:"select"` // the shards a select WhereShardKey(column, key) runs on
	By     string   `json:"by"`
}

func (a *app) routeCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "route TABLE KEY...",
		Short: "Explain where rows of TABLE with these shard keys go, under the config's [[route]] scheme",
		Long: `route builds the chooser a [[route]] entry declares (hash, jump, ranges or values) with
bunshard's own chooser package, and asks a session, as the app's code would: the shard an
INSERT of a row with that key goes to (ShardChooser), and the shards of a select with
WhereShardKey(column, key) (SelectQuery.Route). An app whose choosers are written in Go gets
the same answer from its own session: sess.NewSelect().Model(...).WhereShardKey(col, key).Route(ctx).
Keys are converted to the column's type (type = "int" or "string") as the session converts
them: a key that does not convert exactly is an error (exit 2).`,
		Args: args(cobra.MinimumNArgs(2)),
		RunE: func(cmd *cobra.Command, argv []string) error {
			f, err := a.fleet()
			if err != nil {
				return err
			}
			defer f.close()
			r, err := f.cfg.route(argv[0])
			if err != nil {
				return err
			}
			ch, keyType, err := r.build(f.cfg.ids())
			if err != nil {
				return err
			}
			model, err := syntheticModel(r.Table, r.Column, keyType)
			if err != nil {
				return err
			}
			sess, err := f.session(sessionChoosers{shard: ch, identity: ch, execute: ch})
			if err != nil {
				return configErrorf("%v", err)
			}
			ctx := cmd.Context()
			var out []routeJSON
			for _, key := range argv[1:] {
				v, err := parseKey(key, keyType)
				if err != nil {
					return configErrorf("table %s: key %q: %v", r.Table, key, err)
				}
				obj := reflect.New(model)
				obj.Elem().Field(1).Set(reflect.ValueOf(v))
				insert, err := ch.ChooseShard(ctx, sess.Table(obj.Interface()), obj.Interface())
				if err != nil {
					return configErrorf("table %s: key %q: %v", r.Table, key, err)
				}
				rt, err := sess.NewSelect().Model(obj.Interface()).WhereShardKey(r.Column, v).Route(ctx)
				if err != nil {
					return configErrorf("table %s: key %q: %v", r.Table, key, err)
				}
				sel := make([]string, len(rt.Shards))
				for i, id := range rt.Shards {
					sel[i] = string(id)
				}
				out = append(out, routeJSON{Table: r.Table, Column: r.Column, Key: key, Insert: string(insert), Select: sel, By: r.describe()})
			}
			if a.jsonOut {
				return a.printJSON(out)
			}
			var rows [][]string
			for _, o := range out {
				rows = append(rows, []string{o.Table, o.Column, o.Key, o.Insert, strings.Join(o.Select, " "), o.By})
			}
			a.printTable([]string{"table", "column", "key", "insert", "select", "scheme"}, rows)
			return nil
		},
	}
}

// describe names the route's scheme.
func (r RouteConfig) describe() string {
	switch r.Scheme {
	case "hash":
		return fmt.Sprintf("hash, %d buckets", r.buckets())
	case "jump":
		return "jump hash"
	case "ranges":
		return fmt.Sprintf("ranges (%d)", len(r.Ranges))
	}
	return fmt.Sprintf("values (%d)", len(r.Values))
}

func (r RouteConfig) buckets() int {
	if r.Buckets == 0 {
		return 1024
	}
	return r.Buckets
}

// build returns the chooser the route declares and the Go type of its column.
func (r RouteConfig) build(all []string) (fullChooser, reflect.Type, error) {
	bad := func(format string, args ...any) (fullChooser, reflect.Type, error) {
		return nil, nil, configErrorf("route for table %q: "+format, append([]any{r.Table}, args...)...)
	}
	if !identRE.MatchString(r.Column) {
		return bad("column %q must be a lower-case SQL identifier", r.Column)
	}
	var typ reflect.Type
	switch r.Type {
	case "", "string":
		typ = reflect.TypeFor[string]()
	case "int":
		typ = reflect.TypeFor[int64]()
	default:
		return bad("type %q: use string or int", r.Type)
	}
	shards := r.Shards
	if len(shards) == 0 {
		shards = all
	}
	ids := make([]session.ShardID, len(shards))
	for i, s := range shards {
		ids[i] = session.ShardID(s)
	}
	switch r.Scheme {
	case "hash":
		if r.Buckets < 0 {
			return bad("buckets = %d must be positive", r.Buckets)
		}
		h, err := chooser.NewHash(r.Column, chooser.Spread(r.buckets(), ids...))
		if err != nil {
			return bad("%v", err)
		}
		return h, typ, nil
	case "jump":
		j, err := chooser.NewJump(r.Column, ids...)
		if err != nil {
			return bad("%v", err)
		}
		return j, typ, nil
	case "values":
		if len(r.Values) == 0 {
			return bad("scheme values needs a [route.values] table of key = shard")
		}
		if typ == reflect.TypeFor[string]() {
			m := map[string]session.ShardID{}
			for k, v := range r.Values {
				m[k] = session.ShardID(v)
			}
			return chooser.NewValueMap(r.Column, m), typ, nil
		}
		m := map[int64]session.ShardID{}
		for k, v := range r.Values {
			n, err := strconv.ParseInt(k, 10, 64)
			if err != nil {
				return bad("value %q is not an integer (type = int)", k)
			}
			m[n] = session.ShardID(v)
		}
		return chooser.NewValueMap(r.Column, m), typ, nil
	case "ranges":
		var c fullChooser
		var err error
		if typ == reflect.TypeFor[string]() {
			c, err = newRanges[string](r)
		} else {
			c, err = newRanges[int64](r)
		}
		if err != nil {
			return bad("%v", err)
		}
		return c, typ, nil
	}
	return bad("scheme %q: use hash, jump, ranges or values", r.Scheme)
}

// newRanges returns the chooser.Ranges of the route's ranges, failing for a bound of
// another type than the column's and as chooser.NewRanges does.
func newRanges[K int64 | string](r RouteConfig) (fullChooser, error) {
	var out []chooser.Range[K]
	for i, rg := range r.Ranges {
		from, ok := rg.From.(K)
		if !ok {
			return nil, fmt.Errorf("range %d: from = %v (%T) is not of the column's type %T", i+1, rg.From, rg.From, *new(K))
		}
		c := chooser.Range[K]{From: from, Shard: session.ShardID(rg.Shard), Unbounded: rg.To == nil}
		if rg.To != nil {
			if c.To, ok = rg.To.(K); !ok {
				return nil, fmt.Errorf("range %d: to = %v (%T) is not of the column's type %T", i+1, rg.To, rg.To, *new(K))
			}
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("scheme ranges needs [[route.ranges]] entries with from, to (none: unbounded) and shard")
	}
	return chooser.NewRanges(r.Column, out...)
}

// identRE matches the column names route accepts.
var identRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)

// tableRE matches the table names route accepts: name or schema.name.
var tableRE = regexp.MustCompile(`^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$`)

// syntheticModel returns a struct type standing for a model of table whose
// only field is the shard-key column, so that the session routes it as it
// routes the app's model.
func syntheticModel(table, column string, typ reflect.Type) (reflect.Type, error) {
	if !tableRE.MatchString(table) {
		return nil, configErrorf("table %q must be a lower-case SQL name (name or schema.name)", table)
	}
	return reflect.StructOf([]reflect.StructField{
		{Name: "BaseModel", Type: reflect.TypeFor[bun.BaseModel](), Anonymous: true, Tag: reflect.StructTag(`bun:"table:` + table + `"`)},
		{Name: "Key", Type: typ, Tag: reflect.StructTag(`bun:"` + column + `"`)},
	}), nil
}

// parseKey converts a command-line key to the column's Go type.
func parseKey(key string, typ reflect.Type) (any, error) {
	if typ == reflect.TypeFor[int64]() {
		n, err := strconv.ParseInt(key, 10, 64)
		if err != nil {
			return nil, fmt.Errorf("not an integer (the column's type is int)")
		}
		return n, nil
	}
	return key, nil
}
