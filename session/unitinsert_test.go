package session_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"

	"github.com/bunshard/bunshard/session"
)

// getTenant is u.Get of tenant id, with the statements it sent per shard.
func (f *schFixture) getTenant(t *testing.T, u *session.UnitOfWork, id int64) (*SchTenant, map[session.ShardID]int) {
	t.Helper()
	f.reset()
	var got *SchTenant
	if err := u.Get(context.Background(), &got, id); err != nil {
		t.Fatalf("Get tenant %d = %v", id, err)
	}
	sent := map[session.ShardID]int{}
	for _, s := range schShards {
		for _, q := range f.counts[s].statements() {
			if q != "BEGIN" { // a new transaction's, when Get is the first statement on its shard
				sent[s]++
			}
		}
	}
	return got, sent
}

// TestUnitNewInsertJoinsIdentityMap: objects inserted through a unit's
// NewInsert (one object, a *[]*T, a *[]T) are tracked on their shards as
// objects Add and a flush inserted are: Get returns the same pointer with
// no statement, a later change is flushed by Commit, and the map survives
// Commit (expired by default: one SELECT on the object's shard reloads it
// into the same pointer; none with ExpireOnCommit(false)). Rollback
// expunges them with their rows.
func TestUnitNewInsertJoinsIdentityMap(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	f.seed(t, newSchData())
	for _, keep := range []bool{false, true} {
		t.Run(fmt.Sprintf("ExpireOnCommit(%v)", !keep), func(t *testing.T) {
			base := int64(1000)
			if keep {
				base = 2000
			}
			u := f.sess.Begin(session.ExpireOnCommit(!keep))
			one := &SchTenant{ID: base + 1, Name: "one"}
			ptrs := []*SchTenant{{ID: base + 2, Name: "two"}, {ID: base + 3, Name: "three"}, {ID: base + 4, Name: "four"}, {ID: base + 5, Name: "five"}}
			vals := []SchTenant{{ID: base + 6, Name: "six"}, {ID: base + 7, Name: "seven"}}
			for _, m := range []any{one, &ptrs, &vals} {
				if _, err := u.NewInsert().Model(m).Exec(ctx); err != nil {
					t.Fatalf("NewInsert = %v", err)
				}
			}
			want := append([]*SchTenant{one}, ptrs...)
			want = append(want, &vals[0], &vals[1])
			for _, w := range want {
				got, sent := f.getTenant(t, u, w.ID)
				if got != w || len(sent) != 0 {
					t.Errorf("Get tenant %d after NewInsert = %p (sent %v); want the inserted object %p with no statement", w.ID, got, sent, w)
				}
				k, err := u.IdentityKey(w)
				if err != nil || k.Shard() != f.owner(w.ID) {
					t.Errorf("IdentityKey(tenant %d) = %v, %v; want shard %s", w.ID, k, err, f.owner(w.ID))
				}
			}
			one.Name = "one, renamed"
			f.reset()
			must(t, u.Commit(ctx))
			if ups := f.like(`UPDATE "sch_tenants"`)[f.owner(one.ID)]; len(ups) != 1 {
				t.Errorf("Commit after renaming an inserted tenant ran UPDATEs %q on its shard; want one", ups)
			}
			for _, w := range want {
				got, sent := f.getTenant(t, u, w.ID)
				wantSent := map[session.ShardID]int{f.owner(w.ID): 1}
				if keep {
					wantSent = map[session.ShardID]int{}
				}
				if got != w || fmt.Sprint(sent) != fmt.Sprint(wantSent) {
					t.Errorf("Get tenant %d after Commit = %p (sent %v); want the inserted object %p, sent %v", w.ID, got, sent, w, wantSent)
				}
			}
			if got, _ := f.getTenant(t, u, one.ID); got.Name != "one, renamed" {
				t.Errorf("tenant %d after Commit is named %q; want the renamed one", one.ID, got.Name)
			}
			must(t, u.Rollback(ctx))

			// Rollback: the rows are gone, and so are the objects.
			gone := &SchTenant{ID: base + 9, Name: "rolled back"}
			if _, err := u.NewInsert().Model(gone).Exec(ctx); err != nil {
				t.Fatal(err)
			}
			must(t, u.Rollback(ctx))
			var got *SchTenant
			if err := u.Get(ctx, &got, gone.ID); !errors.Is(err, sql.ErrNoRows) {
				t.Errorf("Get of a tenant whose NewInsert was rolled back = %p, %v; want sql.ErrNoRows", got, err)
			}
			must(t, u.Rollback(ctx))
		})
	}
}

// TestUnitNewInsertConflictTracking: what a unit's NewInsert with a
// conflict clause or other builder calls tracks. Ignore of a row that
// exists tracks nothing (the row is not the object's) and leaves the
// object as it was; Ignore of a slice where one row was skipped tracks none
// of that shard's objects; an upsert on the primary key is tracked expired
// (Get reloads the row into the same pointer, one SELECT); an upsert on
// another target, or a Column list without the key, is not tracked unless
// Returning brings the key back; Returning alone tracks expired.
func TestUnitNewInsertConflictTracking(t *testing.T) {
	ctx := context.Background()
	f := newSchFixture(t)
	f.seed(t, newSchData()) // tenants 1..12 exist
	for _, id := range schShards {
		if _, err := f.shards[id].NewRaw("CREATE UNIQUE INDEX sch_tenants_id_name ON sch_tenants (id, name)").Exec(ctx); err != nil {
			t.Fatal(err)
		}
	}
	f.reset()
	u := f.sess.Begin()
	defer u.Rollback(ctx)

	// Ignore of tenant 1, which exists: skipped, not tracked.
	dup := &SchTenant{ID: 1, Name: "not me"}
	res, err := u.NewInsert().Model(dup).Ignore().Exec(ctx)
	must(t, err)
	if res.RowsAffected != 0 {
		t.Fatalf("Ignore of an existing tenant affected %d rows; want 0", res.RowsAffected)
	}
	got, sent := f.getTenant(t, u, 1)
	if got == dup || got.Name != "tenant 1" || sent[f.owner(1)] != 1 {
		t.Errorf("Get tenant 1 after a skipped Ignore = %p %q (sent %v); want another object holding the row, one SELECT", got, got.Name, sent)
	}
	if dup.Name != "not me" {
		t.Errorf("the skipped object's Name became %q; want it untouched", dup.Name)
	}

	// Ignore of a new tenant: inserted, tracked expired.
	fresh := &SchTenant{ID: 3001, Name: "fresh"}
	res, err = u.NewInsert().Model(fresh).Ignore().Exec(ctx)
	must(t, err)
	if res.RowsAffected != 1 {
		t.Fatalf("Ignore of a new tenant affected %d rows; want 1", res.RowsAffected)
	}
	if got, sent := f.getTenant(t, u, 3001); got != fresh || len(sent) != 1 || sent[f.owner(3001)] != 1 {
		t.Errorf("Get tenant 3001 after Ignore = %p (sent %v); want %p, reloaded with one SELECT on %s", got, sent, fresh, f.owner(3001))
	}

	// A slice with Ignore where one row conflicts: that shard's objects are
	// not tracked (which was skipped is not known); a shard where none
	// conflicted tracks its objects.
	var same []*SchTenant // two new tenants on tenant 2's shard, and tenant 2 itself
	var other *SchTenant
	for id := int64(3100); len(same) < 2 || other == nil; id++ {
		switch {
		case f.owner(id) == f.owner(2) && len(same) < 2:
			same = append(same, &SchTenant{ID: id, Name: "new"})
		case f.owner(id) != f.owner(2) && other == nil:
			other = &SchTenant{ID: id, Name: "other"}
		}
	}
	batch := []*SchTenant{same[0], {ID: 2, Name: "not me"}, same[1], other}
	res, err = u.NewInsert().Model(&batch).Ignore().Returning("NULL").Exec(ctx)
	must(t, err)
	if res.RowsAffected != 3 {
		t.Fatalf("Ignore of a batch with one existing tenant affected %d rows; want 3", res.RowsAffected)
	}
	for _, w := range same {
		if got, _ := f.getTenant(t, u, w.ID); got == w {
			t.Errorf("Get tenant %d, inserted beside a skipped row on its shard, returned the inserted object; want it untracked", w.ID)
		}
	}
	if got, sent := f.getTenant(t, u, 2); got == batch[1] || got.Name != "tenant 2" || len(sent) != 1 {
		t.Errorf("Get tenant 2 after its skipped insert = %p %q (sent %v); want the row, read once", got, got.Name, sent)
	}
	if got, _ := f.getTenant(t, u, other.ID); got != other {
		t.Errorf("Get tenant %d, alone on its shard in the batch, = %p; want the inserted object %p", other.ID, got, other)
	}

	// An upsert on the primary key of a row the unit does not track:
	// tracked expired; Get reloads the row as the upsert left it.
	up := &SchTenant{ID: 5, Name: "upserted"}
	_, err = u.NewInsert().Model(up).On("CONFLICT (id) DO UPDATE").Set("name = EXCLUDED.name || '!'").Exec(ctx)
	must(t, err)
	if got, sent := f.getTenant(t, u, 5); got != up || got.Name != "upserted!" || sent[f.owner(5)] != 1 {
		t.Errorf("Get tenant 5 after an upsert on id = %p %q (sent %v); want %p named \"upserted!\" after one SELECT", got, got.Name, sent, up)
	}

	// An upsert on another target: the row updated may not be the
	// object's key; not tracked. With RETURNING of the key it is.
	byName := &SchTenant{ID: 3201, Name: "by name"}
	_, err = u.NewInsert().Model(byName).On("CONFLICT (id, name) DO UPDATE").Exec(ctx)
	must(t, err)
	if got, _ := f.getTenant(t, u, 3201); got == byName {
		t.Errorf("Get tenant 3201 after an upsert on (id, name) returned the inserted object; want it untracked")
	}
	ret := &SchTenant{ID: 3202, Name: "returned"}
	_, err = u.NewInsert().Model(ret).On("CONFLICT (id, name) DO UPDATE").Returning("id, name").Exec(ctx)
	must(t, err)
	if got, _ := f.getTenant(t, u, 3202); got != ret {
		t.Errorf("Get tenant 3202 after an upsert returning id = %p; want the inserted object %p", got, ret)
	}
	// Returning alone: tracked, expired.
	r := &SchTenant{ID: 3203, Name: "returning"}
	_, err = u.NewInsert().Model(r).Returning("*").Exec(ctx)
	must(t, err)
	if got, sent := f.getTenant(t, u, 3203); got != r || sent[f.owner(3203)] != 1 {
		t.Errorf("Get tenant 3203 after an INSERT ... RETURNING * = %p (sent %v); want %p, reloaded with one SELECT", got, sent, r)
	}
}
