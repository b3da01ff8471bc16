package main

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/session"
	"github.com/bunshard/bunshard/shardtest"
)

// routes declares one table per scheme, over shards a and b.
const routes = `
[[route]]
table = "accounts"
column = "region"
scheme = "values"
[route.values]
eu = "a"
us = "b"

[[route]]
table = "users"
column = "user_id"
type = "int"
scheme = "hash"
buckets = 64

[[route]]
table = "orders"
column = "order_id"
type = "int"
scheme = "ranges"
[[route.ranges]]
from = 0
to = 1000
shard = "a"
[[route.ranges]]
from = 1000
shard = "b"

[[route]]
table = "events"
column = "tenant"
scheme = "jump"
shards = ["b", "a"]
`

// User is the model an app would route with chooser.NewHash("user_id", Spread(64, a, b)).
type User struct {
	bun.BaseModel `bun:"table:users"`
	session.Token
	ID     int64 `bun:",pk"`
	UserID int64
}

// TestRoute checks route's answers for each scheme (golden), and that they are the answers
// the app's own session gives for the same chooser in Go.
func TestRoute(t *testing.T) {
	cfg, _ := fleetConfig(t, routes)
	env := map[string]string{}
	var out strings.Builder
	for _, c := range [][]string{
		{"accounts", "eu", "us"},
		{"users", "1", "2", "3", "42", "-7"},
		{"orders", "0", "999", "1000", "9223372036854775807"},
		{"events", "acme", "globex", "initech"},
	} {
		// "--" lets keys start with "-".
		r := bunshard(t, env, append([]string{"--config", cfg, "route", "--"}, c...)...).want(t, exitOK)
		out.WriteString(r.stdout)
	}
	golden(t, "route", out.String())

	// The app's side: its model, the same chooser built in Go, its own session.
	shards := shardtest.Shared().NewShards(t, "route", shardtest.WithNames("a", "b"))
	hash, err := chooser.NewHash("user_id", chooser.Spread(64, "a", "b"))
	if err != nil {
		t.Fatal(err)
	}
	sess, err := session.New(shards.IDBs(), hash, hash, hash)
	if err != nil {
		t.Fatal(err)
	}
	r := bunshard(t, env, "--config", cfg, "--json", "route", "--", "users", "1", "2", "3", "42", "-7", "100000").want(t, exitOK)
	var got []routeJSON
	if err := json.Unmarshal([]byte(r.stdout), &got); err != nil {
		t.Fatal(err)
	}
	for _, g := range got {
		var key int64
		fmt.Sscan(g.Key, &key)
		rt, err := sess.NewSelect().Model((*User)(nil)).WhereShardKey("user_id", key).Route(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		place, err := hash.ChooseShard(t.Context(), sess.Table((*User)(nil)), &User{UserID: key})
		if err != nil {
			t.Fatal(err)
		}
		want := []string{}
		for _, id := range rt.Shards {
			want = append(want, string(id))
		}
		if !slices.Equal(g.Select, want) || g.Insert != string(place) {
			t.Errorf("route users %d = insert %s, select %v; the app's session says %s, %v", key, g.Insert, g.Select, place, want)
		}
	}
	if len(got) != 6 {
		t.Fatalf("route printed %d answers; want 6", len(got))
	}
}

// TestRouteErrors checks that bad keys and unknown tables are usage errors naming the fault.
func TestRouteErrors(t *testing.T) {
	cfg, _ := fleetConfig(t, routes)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"route", "users", "12x"}, `key "12x": not an integer`},
		{[]string{"route", "accounts", "mars"}, "mars"},
		{[]string{"route", "--", "orders", "-1"}, "-1"},
		{[]string{"route", "planets", "1"}, `no route is declared for table "planets"`},
		{[]string{"route", "users"}, "requires at least 2 arg(s)"},
		{[]string{"migrate", "up", "--no-such-flag"}, "unknown flag: --no-such-flag"},
		{[]string{"--progress", "fancy", "check"}, `--progress "fancy"`},
		{[]string{"chek"}, `unknown command "chek"`},
		{[]string{"migrate", "sideways"}, `unknown command "sideways"`},
	} {
		r := bunshard(t, map[string]string{}, append([]string{"--config", cfg}, tc.args...)...)
		if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("bunshard %v = exit %d, stderr %q; want exit 2 and %q", tc.args, r.code, r.stderr, tc.want)
		}
	}
}

// TestConfigErrors checks that a bad configuration is exit code 2 with a message naming the
// fault, and that the environment alone can name the shards.
func TestConfigErrors(t *testing.T) {
	dsns := shardtest.Shared().NewDatabases(t.Context(), t, "cfg")
	for _, tc := range []struct {
		name, file string
		env        map[string]string
		want       string
	}{
		{"nothing", "", nil, "no shards"},
		{"misspelt key", "[[shard]]\nname = \"a\"\ndns = \"x\"\n", nil, "unknown key(s) shard.dns"},
		{"no dsn", "[[shard]]\nname = \"a\"\n", nil, `shard "a" has no dsn`},
		{"twice", "[[shard]]\nname = \"a\"\ndsn = \"x\"\n[[shard]]\nname = \"a\"\ndsn = \"y\"\n", nil, `shard "a" is listed twice`},
		{"coordinator", "coordinator = \"z\"\n[[shard]]\nname = \"a\"\ndsn = \"x\"\n", nil, `coordinator "z" is not a shard`},
		{"driver", "driver = \"mysql\"\n[[shard]]\nname = \"a\"\ndsn = \"x\"\n", nil, `driver "mysql"`},
		{"route shard", "[[shard]]\nname = \"a\"\ndsn = \"x\"\n[[route]]\ntable = \"t\"\nscheme = \"jump\"\nshards = [\"q\"]\n", nil, `names shard "q"`},
		{"env entry", "", map[string]string{envShards: "a"}, "entry 1 must be name=dsn"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"check"}
			if tc.file != "" {
				path := t.TempDir() + "/c.toml"
				if err := writeFile(path, tc.file); err != nil {
					t.Fatal(err)
				}
				args = append([]string{"--config", path}, args...)
			}
			r := bunshard(t, tc.env, args...)
			if r.code != exitUsage || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", r.code, r.stderr, tc.want)
			}
		})
	}
	// BUNSHARD_SHARDS alone, with the pgx driver from BUNSHARD_DRIVER.
	env := map[string]string{envShards: "x=" + dsns[0] + ", y=" + dsns[1], envDriver: "pgx"}
	r := bunshard(t, env, "--json", "check").want(t, exitOK)
	var res []shardCheck
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res) != 2 || res[0].Shard != "x" || res[1].Shard != "y" {
		t.Errorf("check from the environment = %+v, %v; want shards x and y", res, err)
	}
}
