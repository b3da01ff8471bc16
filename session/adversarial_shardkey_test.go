package session_test

import (
	"context"
	"errors"
	"testing"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/session"
)

// otherTenant returns a tenant id above 1000 whose shard is (want true) or
// is not (want false) the shard of tenant tn.
func (f *schFixture) otherTenant(t *testing.T, tn int64, same bool) int64 {
	t.Helper()
	for x := int64(1001); x < 5000; x++ {
		if (f.owner(x) == f.owner(tn)) == same {
			return x
		}
	}
	t.Fatalf("no tenant found with same shard = %v as tenant %d", same, tn)
	return 0
}

// TestShardKeyChangedIsRefused: under a chooser.Scheme that declares
// tenant_id the shard key, every way of updating a row so that its key
// routes to another shard is refused with ErrShardKeyChanged before
// anything is sent (the row stays as it was, and a read by its old key
// still finds it); a key change that stays on the shard is written; and
// the documented way to move a row (delete + insert in one unit) works.
func TestShardKeyChangedIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	f.seed(t, newSchData())
	s := f.sess

	load := func(id int64) *SchProject {
		t.Helper()
		var p SchProject
		must(t, s.NewSelect().Model(&p).Where("id = ?", id).Scan(ctx))
		return &p
	}
	const pid = 301 // tenant 3's first project
	far := f.otherTenant(t, 3, false)
	near := f.otherTenant(t, 3, true)
	home := f.owner(3)

	// stored returns the tenant of project pid on every shard that holds it.
	stored := func() map[session.ShardID]int64 {
		t.Helper()
		out := map[session.ShardID]int64{}
		for _, id := range schShards {
			var tn []int64
			if err := f.shards[id].NewSelect().Table("sch_projects").Column("tenant_id").Where("id = ?", pid).Scan(ctx, &tn); err != nil {
				t.Fatal(err)
			}
			for _, v := range tn {
				out[id] = v
			}
		}
		return out
	}
	unchanged := func(what string) {
		t.Helper()
		// (A unit's refused Commit leaves its transactions to Rollback.)
		n := f.total()
		for _, qs := range f.like("ROLLBACK") {
			n -= len(qs)
		}
		if n != 0 {
			t.Errorf("%s: %d statements sent; want none", what, n)
		}
		if got := stored(); len(got) != 1 || got[home] != 3 {
			t.Errorf("%s: project %d is stored as %v; want tenant 3 on %s only", what, pid, got, home)
		}
	}

	refusals := []struct {
		name string
		run  func() error
	}{
		{"Session.Update", func() error {
			p := load(pid)
			p.TenantID = far
			f.reset()
			return s.Update(ctx, p)
		}},
		{"Session.Update of a slice", func() error {
			a, b := load(pid), load(302)
			a.TenantID = far
			f.reset()
			return s.Update(ctx, &[]*SchProject{b, a})
		}},
		{"NewUpdate of an object", func() error {
			p := load(pid)
			p.TenantID = far
			f.reset()
			_, err := s.NewUpdate().Model(p).Exec(ctx)
			return err
		}},
		{"NewUpdate of an object, Column with the key", func() error {
			p := load(pid)
			p.TenantID = far
			f.reset()
			_, err := s.NewUpdate().Model(p).Column("name", "tenant_id").Exec(ctx)
			return err
		}},
		{"NewUpdate Bulk", func() error {
			a, b := load(pid), load(302)
			a.TenantID = far
			f.reset()
			_, err := s.NewUpdate().Model(&[]*SchProject{a, b}).Bulk().Exec(ctx)
			return err
		}},
		{"Update pinned to the row's shard by the context", func() error {
			p := load(pid)
			p.TenantID = far
			f.reset()
			return s.Update(session.WithShardID(ctx, home), p)
		}},
		{"unit flush of a changed object", func() error {
			u := s.Begin()
			defer u.Rollback(ctx)
			var p *SchProject
			must(t, u.Get(ctx, &p, int64(pid)))
			p.TenantID = far
			f.reset()
			return u.Commit(ctx)
		}},
		{"statement-form Set", func() error {
			f.reset()
			_, err := s.NewUpdate().Model((*SchProject)(nil)).Set("tenant_id = ?", far).
				WhereShardKey("tenant_id", 3).Where("id = ?", pid).Exec(ctx)
			return err
		}},
		{"statement-form Set, quoted, after another", func() error {
			f.reset()
			_, err := s.NewUpdate().Model((*SchProject)(nil)).Set(`name = 'x', "tenant_id"=?`, far).
				WhereShardKey("tenant_id", 3).Exec(ctx)
			return err
		}},
		{"statement-form Set of a row", func() error {
			f.reset()
			_, err := s.NewUpdate().Model((*SchProject)(nil)).Set("(name, tenant_id) = (?, ?)", "x", far).
				WhereShardKey("tenant_id", 3).Exec(ctx)
			return err
		}},
		{"statement-form Apply with Set", func() error {
			f.reset()
			_, err := s.NewUpdate().Model((*SchProject)(nil)).Apply(func(b *bun.UpdateQuery) *bun.UpdateQuery {
				return b.Set("tenant_id = ?", far)
			}).WhereShardKey("tenant_id", 3).Where("id = ?", pid).Exec(ctx)
			return err
		}},
		{"statement-form Apply with SetColumn", func() error {
			f.reset()
			_, err := s.NewUpdate().Model((*SchProject)(nil)).Apply(func(b *bun.UpdateQuery) *bun.UpdateQuery {
				return b.SetColumn("tenant_id", "?", far)
			}).WhereShardKey("tenant_id", 3).Where("id = ?", pid).Exec(ctx)
			return err
		}},
		{"Apply with Value on an UPDATE of objects", func() error {
			p := load(pid)
			f.reset()
			_, err := s.NewUpdate().Model(p).Apply(func(b *bun.UpdateQuery) *bun.UpdateQuery {
				return b.Value("tenant_id", "?", far)
			}).Exec(ctx)
			return err
		}},
		{"Apply adding the key to an UPDATE of objects' Column list", func() error {
			p := load(pid)
			p.TenantID = far
			f.reset()
			_, err := s.NewUpdate().Model(p).Column("name").Apply(func(b *bun.UpdateQuery) *bun.UpdateQuery {
				return b.Column("tenant_id")
			}).Exec(ctx)
			return err
		}},
		{"Set on an UPDATE of objects", func() error {
			p := load(pid)
			f.reset()
			_, err := s.NewUpdate().Model(p).Column("name").Set("tenant_id = ?", far).Exec(ctx)
			return err
		}},
	}
	for _, c := range refusals {
		err := c.run()
		if !errors.Is(err, session.ErrShardKeyChanged) {
			t.Errorf("%s with tenant 3 -> %d = %v; want ErrShardKeyChanged", c.name, far, err)
			continue
		}
		wantIn(t, err, "SchProject", "tenant_id")
		unchanged(c.name)
	}
	// The Update error names both shards and the way out.
	p := load(pid)
	p.TenantID = far
	wantIn(t, s.Update(ctx, p), string(home), string(f.owner(far)), "delete it and insert it")

	// A key change that routes to the same shard is written there.
	p = load(pid)
	p.TenantID = near
	f.reset()
	must(t, s.Update(ctx, p))
	if got := stored(); len(got) != 1 || got[home] != near {
		t.Errorf("after a same-shard key change, project %d is stored as %v; want tenant %d on %s", pid, got, near, home)
	}
	p.TenantID = 3
	must(t, s.Update(ctx, p))

	// PinWins, with the pin on the row's shard, writes it there anyway (a
	// row deliberately kept off its key's shard).
	p.TenantID = far
	must(t, s.Update(ctx, p, session.SetShardID(home), session.PinWins()))
	if got := stored(); got[home] != far {
		t.Errorf("after Update with PinWins, project %d is stored as %v; want tenant %d on %s", pid, got, far, home)
	}
	p.TenantID = 3
	must(t, s.Update(ctx, p, session.SetShardID(home), session.PinWins()))

	// Moving a row: delete it and insert a copy without the Token, in one unit.
	u := s.Begin()
	var old *SchProject
	must(t, u.Get(ctx, &old, int64(pid)))
	must(t, u.Delete(old))
	moved := &SchProject{ID: old.ID, TenantID: far, PlanID: old.PlanID, Name: old.Name}
	must(t, u.Add(moved))
	must(t, u.Commit(ctx))
	if got := stored(); len(got) != 1 || got[f.owner(far)] != far {
		t.Errorf("after delete + insert, project %d is stored as %v; want tenant %d on %s only", pid, got, far, f.owner(far))
	}
	var again []*SchProject
	must(t, s.NewSelect().Model(&again).WhereShardKey("tenant_id", far).Scan(ctx))
	if len(again) != 1 || again[0].ID != pid {
		t.Errorf("read by the new key found %d rows; want project %d", len(again), pid)
	}
}

// TestShardKeyOfCopiedTokenIsRefused: a struct copy of a loaded object
// carries its Token; inserting the copy with another shard key (a new
// row, or the "move" recipe done with a copy that kept the Token) would
// place the row on the Token's shard, where reads by its key never look.
// Session.Insert, NewInsert and a unit's Add refuse it with
// ErrShardKeyChanged and send nothing; with the Token cleared the copy
// goes to its key's shard.
func TestShardKeyOfCopiedTokenIsRefused(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	f.seed(t, newSchData())
	s := f.sess
	var p SchProject
	must(t, s.NewSelect().Model(&p).Where("id = ?", 301).Scan(ctx))
	far := f.otherTenant(t, 3, false)
	home := f.owner(3)

	fresh := func(id int64) *SchProject {
		c := p // carries p's Token: home
		c.ID, c.TenantID, c.Name = id, far, "copy"
		return &c
	}
	cases := []struct {
		name string
		run  func(c *SchProject) error
	}{
		{"Session.Insert", func(c *SchProject) error { return s.Insert(ctx, c) }},
		{"Session.Insert of a slice", func(c *SchProject) error { return s.Insert(ctx, &[]*SchProject{c}) }},
		{"NewInsert", func(c *SchProject) error { _, err := s.NewInsert().Model(c).Exec(ctx); return err }},
		{"unit Add", func(c *SchProject) error {
			u := s.Begin()
			defer u.Rollback(ctx)
			must(t, u.Add(c))
			return u.Commit(ctx)
		}},
	}
	for i, c := range cases {
		id := int64(9000 + i)
		obj := fresh(id)
		f.reset()
		err := c.run(obj)
		if !errors.Is(err, session.ErrShardKeyChanged) {
			t.Errorf("%s of a copy with tenant %d and %s's Token = %v; want ErrShardKeyChanged", c.name, far, home, err)
		} else {
			wantIn(t, err, "SchProject", "tenant_id", string(home), string(f.owner(far)))
		}
		for _, sh := range schShards {
			if n := len(f.like("INSERT")[sh]); n != 0 {
				t.Errorf("%s: %d INSERTs on %s; want none", c.name, n, sh)
			}
		}
	}
	// Cleared, the copy goes where its key routes.
	c := fresh(9100)
	c.SetShard("")
	must(t, s.Insert(ctx, c))
	if got, _ := c.Shard(); got != f.owner(far) {
		t.Errorf("Insert of a copy without Token went to %s; want %s", got, f.owner(far))
	}
}
