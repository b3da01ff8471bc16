package chooser_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// router is a test router that gives the same answer to every question and
// records what it was asked.
type router struct {
	name    string
	target  chooser.Target
	err     error
	verdict chooser.Verdict
	asked   *[]string
	stmts   *[]*chooser.Statement
	writes  *[]*chooser.Write
}

func (r router) note(q string) {
	if r.asked != nil {
		*r.asked = append(*r.asked, r.name+"."+q)
	}
}

func (r router) RouteRead(_ context.Context, stmt *chooser.Statement) (chooser.Target, error) {
	r.note("read")
	if r.stmts != nil {
		*r.stmts = append(*r.stmts, stmt)
	}
	return r.target, r.err
}

func (r router) RouteWrite(_ context.Context, w *chooser.Write) (chooser.Target, error) {
	r.note("write")
	if r.writes != nil {
		*r.writes = append(*r.writes, w)
	}
	return r.target, r.err
}

func (r router) AllowRelation(context.Context, chooser.Object, chooser.Object) chooser.Verdict {
	r.note("relation")
	return r.verdict
}

func (r router) AllowMigrate(context.Context, identity.ShardID, *schema.Table) chooser.Verdict {
	r.note("migrate")
	return r.verdict
}

func (r router) String() string { return r.name }

// readOnly has only the ReadRouter ability.
type readOnly struct{ r router }

func (r readOnly) RouteRead(ctx context.Context, stmt *chooser.Statement) (chooser.Target, error) {
	return r.r.RouteRead(ctx, stmt)
}

func TestRoutersRead(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	noOpinion := fmt.Errorf("not mine: %w", chooser.ErrNoOpinion)
	boom := errors.New("boom")
	def := fixed{name: "def", target: chooser.Shards("d")}
	tests := []struct {
		name      string
		routers   []router
		def       any
		want      chooser.Target
		wantErr   error
		wantAsked string
	}{
		{"first answer wins", []router{{name: "a", target: chooser.Shards("s1")}, {name: "b", target: chooser.Shards("s2")}}, def, chooser.Shards("s1"), nil, "a.read"},
		{"none abstains", []router{{name: "a"}, {name: "b", target: chooser.Shards("s2")}}, def, chooser.Shards("s2"), nil, "a.read b.read"},
		{"no opinion abstains", []router{{name: "a", err: noOpinion}, {name: "b", target: chooser.Shards("s2")}}, def, chooser.Shards("s2"), nil, "a.read b.read"},
		{"all is final", []router{{name: "a", target: chooser.AllShards()}, {name: "b", target: chooser.Shards("s2")}}, def, chooser.AllShards(), nil, "a.read"},
		{"other errors stop", []router{{name: "a", err: boom}, {name: "b", target: chooser.Shards("s2")}}, def, chooser.Target{}, boom, "a.read"},
		{"the default answers last", []router{{name: "a"}, {name: "b", err: noOpinion}}, def, chooser.Shards("d"), nil, "a.read b.read def"},
		{"no default: all shards", []router{{name: "a"}}, nil, chooser.AllShards(), nil, "a.read"},
	}
	for _, tt := range tests {
		for _, role := range []string{"ChooseIdentity", "ChooseExecute"} {
			t.Run(tt.name+"/"+role, func(t *testing.T) {
				var asked []string
				rs := make([]any, len(tt.routers))
				for i, r := range tt.routers {
					r.asked = &asked
					rs[i] = r
				}
				d := tt.def
				if f, ok := d.(fixed); ok {
					f.asked = &asked
					d = f
				}
				c := chooser.NewRouters(d, rs...)
				var got chooser.Target
				var err error
				if role == "ChooseIdentity" {
					got, err = c.ChooseIdentity(ctx, chooser.Key{Table: users, PK: []any{int64(1)}})
				} else {
					got, err = c.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: users})
				}
				if !reflect.DeepEqual(got, tt.want) || !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
					t.Errorf("%s = %v, %v; want %v, %v", role, got, err, tt.want, tt.wantErr)
				}
				if tt.wantErr != nil && !strings.Contains(fmt.Sprint(err), "router a") {
					t.Errorf("%s error = %v; want it to name router a", role, err)
				}
				if strings.Join(asked, " ") != tt.wantAsked {
					t.Errorf("%s asked %v; want %s", role, asked, tt.wantAsked)
				}
			})
		}
	}
}

// TestRoutersGetAsSelect checks what a ReadRouter sees for a Get: a select
// whose criteria are the primary-key columns, and the parent's shard.
func TestRoutersGetAsSelect(t *testing.T) {
	ctx := context.Background()
	orders := tableOf[Order]()
	var stmts []*chooser.Statement
	c := chooser.NewRouters(nil, router{name: "r", stmts: &stmts})
	if _, err := c.ChooseIdentity(ctx, chooser.Key{Table: orders, PK: []any{int64(7), int64(9)}, LoadedFrom: "s3"}); err != nil {
		t.Fatal(err)
	}
	if len(stmts) != 1 {
		t.Fatalf("the router was asked %d times; want 1", len(stmts))
	}
	got := stmts[0]
	want := &chooser.Statement{Op: chooser.OpSelect, Table: orders, LoadedFrom: "s3", Criteria: []chooser.Criterion{
		{Column: "user_id", Values: []any{int64(7)}}, {Column: "id", Values: []any{int64(9)}},
	}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("RouteRead saw %+v; want %+v", got, want)
	}
}

func TestRoutersWrite(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	var writes []*chooser.Write
	var asked []string
	one := router{name: "one", target: chooser.Shards("s1"), writes: &writes, asked: &asked}
	obj := &User{ID: 1}

	// An object goes where the first answering router says.
	c := chooser.NewRouters(fixed{name: "def", shard: "d"}, router{name: "quiet", asked: &asked}, one)
	if got, err := c.ChooseShard(ctx, users, obj); got != "s1" || err != nil {
		t.Errorf("ChooseShard = %v, %v; want s1", got, err)
	}
	if len(writes) != 1 || writes[0].Obj != obj || writes[0].Stmt != nil || writes[0].Table != users {
		t.Errorf("RouteWrite saw %+v; want the object and no statement", writes)
	}
	if got := strings.Join(asked, " "); got != "quiet.write one.write" {
		t.Errorf("asked %s; want quiet.write one.write", got)
	}

	// An object cannot go to several shards, nor to all.
	for _, target := range []chooser.Target{chooser.Shards("s1", "s2"), chooser.AllShards()} {
		c := chooser.NewRouters(nil, router{name: "wide", target: target})
		if _, err := c.ChooseShard(ctx, users, obj); err == nil || !strings.Contains(err.Error(), "exactly one shard") {
			t.Errorf("ChooseShard when a router answers %v: error = %v; want 'exactly one shard'", target, err)
		}
	}

	// Nobody answers: the default, else ErrNoOpinion.
	c = chooser.NewRouters(fixed{name: "def", shard: "d"}, router{name: "quiet"})
	if got, err := c.ChooseShard(ctx, users, obj); got != "d" || err != nil {
		t.Errorf("ChooseShard with the default = %v, %v; want d", got, err)
	}
	c = chooser.NewRouters(chooser.All, router{name: "quiet"})
	if _, err := c.ChooseShard(ctx, users, obj); !errors.Is(err, chooser.ErrNoOpinion) {
		t.Errorf("ChooseShard without a placing default: error = %v; want ErrNoOpinion", err)
	}

	// A statement-form UPDATE or DELETE asks the write routers, never the
	// read routers, and may go everywhere.
	asked, writes = nil, nil
	c = chooser.NewRouters(nil, readOnly{router{name: "reader", target: chooser.Shards("r"), asked: &asked}},
		router{name: "writer", target: chooser.AllShards(), asked: &asked, writes: &writes})
	for _, op := range []chooser.Op{chooser.OpUpdate, chooser.OpDelete} {
		stmt := &chooser.Statement{Op: op, Table: users}
		if got, err := c.ChooseExecute(ctx, stmt); !got.IsAll() || err != nil {
			t.Errorf("ChooseExecute(%v) = %v, %v; want all", op, got, err)
		}
	}
	if got := strings.Join(asked, " "); got != "writer.write writer.write" {
		t.Errorf("asked %s; want the writer twice", got)
	}
	if len(writes) != 2 || writes[0].Stmt == nil || writes[0].Obj != nil {
		t.Errorf("RouteWrite saw %+v; want the statements and no object", writes)
	}
	// A select asks the read routers only.
	asked = nil
	if got, err := c.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: users}); got.String() != "[r]" || err != nil {
		t.Errorf("ChooseExecute(select) = %v, %v; want [r]", got, err)
	}
	if got := strings.Join(asked, " "); got != "reader.read" {
		t.Errorf("asked %s; want reader.read", got)
	}
}

func TestRoutersSplitValues(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	accounts := tableOf[Account]()
	parts := map[identity.ShardID][]any{"s1": {1}, "s2": {2}}
	def := fixed{name: "def", parts: parts}
	// accountsOnly answers for accounts and abstains for everything else.
	accountsOnly := chooser.ReadRouterFunc(func(_ context.Context, stmt *chooser.Statement) (chooser.Target, error) {
		if stmt.Table == accounts {
			return chooser.Shards("main"), nil
		}
		return chooser.None(), nil
	})
	c := chooser.NewRouters(def, accountsOnly)
	if got, err := c.SplitValues(ctx, users, "id", []any{1, 2}); !reflect.DeepEqual(got, parts) || err != nil {
		t.Errorf("SplitValues(users) = %v, %v; want the default's split %v", got, err, parts)
	}
	if got, err := c.SplitValues(ctx, accounts, "slug", []any{1, 2}); got != nil || err != nil {
		t.Errorf("SplitValues(accounts) = %v, %v; want no split (a router owns accounts)", got, err)
	}
	writesAccounts := chooser.WriteRouterFunc(func(_ context.Context, w *chooser.Write) (chooser.Target, error) {
		if w.Table == accounts {
			return chooser.Shards("main"), nil
		}
		return chooser.None(), nil
	})
	c = chooser.NewRouters(def, writesAccounts)
	if got, err := c.SplitValues(ctx, accounts, "slug", []any{1, 2}); got != nil || err != nil {
		t.Errorf("SplitValues(accounts) with a write router = %v, %v; want no split", got, err)
	}
	c = chooser.NewRouters(chooser.All, accountsOnly)
	if got, err := c.SplitValues(ctx, users, "id", []any{1, 2}); got != nil || err != nil {
		t.Errorf("SplitValues without a splitting default = %v, %v; want nil, nil", got, err)
	}
}

func TestRoutersAllowRelation(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	obj := func(shard identity.ShardID) chooser.Object {
		return chooser.Object{Table: users, Obj: &User{}, Shard: shard}
	}
	plain := chooser.NewRouters(nil, router{name: "quiet"})
	tests := []struct {
		a, b identity.ShardID
		want chooser.Verdict
	}{
		{"s1", "s1", chooser.Allow},
		{"s1", "s2", chooser.Deny},
		{"", "s2", chooser.Allow},
		{"s1", "", chooser.Allow},
	}
	for _, tt := range tests {
		if got := plain.AllowRelation(ctx, obj(tt.a), obj(tt.b)); got != tt.want {
			t.Errorf("default AllowRelation(%q, %q) = %v; want %v", tt.a, tt.b, got, tt.want)
		}
	}
	var asked []string
	c := chooser.NewRouters(nil, router{name: "a", asked: &asked}, router{name: "b", verdict: chooser.Allow, asked: &asked},
		router{name: "c", verdict: chooser.Deny, asked: &asked})
	if got := c.AllowRelation(ctx, obj("s1"), obj("s2")); got != chooser.Allow {
		t.Errorf("AllowRelation = %v; want allow (router b)", got)
	}
	if got := strings.Join(asked, " "); got != "a.relation b.relation" {
		t.Errorf("asked %s; want a.relation b.relation", got)
	}
	c = chooser.NewRouters(nil, router{name: "deny", verdict: chooser.Deny})
	if got := c.AllowRelation(ctx, obj("s1"), obj("s1")); got != chooser.Deny {
		t.Errorf("AllowRelation on one shard with a denying router = %v; want deny", got)
	}
}

func TestRoutersAllowMigrate(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	accounts := tableOf[Account]()
	onlyMain := chooser.MigrateRouterFunc(func(_ context.Context, shard identity.ShardID, table *schema.Table) chooser.Verdict {
		if table == accounts {
			return chooser.VerdictOf(shard == "main")
		}
		return chooser.Abstain
	})
	c := chooser.NewRouters(nil, onlyMain)
	tests := []struct {
		shard identity.ShardID
		table *schema.Table
		want  chooser.Verdict
	}{
		{"main", accounts, chooser.Allow},
		{"s1", accounts, chooser.Deny},
		{"s1", users, chooser.Allow},
		{"main", users, chooser.Allow},
	}
	for _, tt := range tests {
		if got := c.AllowMigrate(ctx, tt.shard, tt.table); got != tt.want {
			t.Errorf("AllowMigrate(%s, %s) = %v; want %v", tt.shard, tt.table.TypeName, got, tt.want)
		}
	}
}

func TestNewRoutersPanics(t *testing.T) {
	tests := []struct {
		name string
		def  any
		rs   []any
		want string
	}{
		{"nil router", nil, []any{nil}, "router 0 is nil"},
		{"nil pointer router", nil, []any{(*chooser.Routers)(nil)}, "router 0 is a nil"},
		{"no ability", nil, []any{42}, "router 0 (int) is not a ReadRouter"},
		{"default without roles", "x", nil, "the default (string) is not a ShardChooser"},
		{"nil pointer default", (*chooser.Hash)(nil), nil, "the default is a nil"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() {
				r := recover()
				if r == nil || !strings.Contains(fmt.Sprint(r), tt.want) {
					t.Errorf("NewRouters panicked with %v; want %q", r, tt.want)
				}
			}()
			chooser.NewRouters(tt.def, tt.rs...)
		})
	}
}

func TestRoutersString(t *testing.T) {
	c := chooser.NewRouters(chooser.All, router{name: "a"}, chooser.MigrateRouterFunc(nil))
	if got, want := c.String(), "chooser.Routers(a, chooser.MigrateRouterFunc; default chooser.All)"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	if got, want := chooser.NewRouters(nil).String(), "chooser.Routers(; default none)"; got != want {
		t.Errorf("String() = %q; want %q", got, want)
	}
	for v, want := range map[chooser.Verdict]string{chooser.Abstain: "abstain", chooser.Allow: "allow", chooser.Deny: "deny", 9: "verdict(?)"} {
		if got := v.String(); got != want {
			t.Errorf("Verdict(%d).String() = %q; want %q", v, got, want)
		}
	}
}
