package chooser_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

func TestFromID(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	l := identity.DefaultLayout()
	// Shard s0 owns buckets 0-511, s1 owns 512-1023.
	c, err := chooser.NewFromID("id", l, chooser.Spread(l.Buckets(), "s0", "s1"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
	id := func(bucket int) int64 {
		t.Helper()
		v, err := l.Encode(now, bucket, 7)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	tests := []struct {
		name      string
		id        int64
		want      identity.ShardID
		wantErr   string
		noOpinion bool
	}{
		{"first bucket", id(0), "s0", "", false},
		{"last bucket of s0", id(511), "s0", "", false},
		{"first bucket of s1", id(512), "s1", "", false},
		{"last bucket", id(1023), "s1", "", false},
		{"zero", 0, "", "FromID(id): the ID is zero", true},
		{"negative", -5, "", "User.id: value -5 is not an ID of layout", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := c.ChooseShard(ctx, users, &User{ID: tt.id})
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) || errors.Is(err, chooser.ErrNoOpinion) != tt.noOpinion {
					t.Errorf("ChooseShard(%d) = %v, %v; want an error containing %q (no opinion: %v)", tt.id, got, err, tt.wantErr, tt.noOpinion)
				}
				return
			}
			if got != tt.want || err != nil {
				t.Errorf("ChooseShard(%d) = %v, %v; want %v", tt.id, got, err, tt.want)
			}
			target, err := c.ChooseIdentity(ctx, chooser.Key{Table: users, PK: []any{tt.id}})
			if err != nil || target.String() != "["+string(tt.want)+"]" {
				t.Errorf("ChooseIdentity(%d) = %v, %v; want [%v]", tt.id, target, err, tt.want)
			}
		})
	}
}

func TestFromIDGenerated(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	l := identity.DefaultLayout()
	c, err := chooser.NewFromID("id", l, chooser.Spread(l.Buckets(), "s0", "s1", "s2", "s3"))
	if err != nil {
		t.Fatal(err)
	}
	for _, bucket := range []int{0, 255, 256, 700, 1023} {
		g, err := identity.NewGenerator(l, bucket)
		if err != nil {
			t.Fatal(err)
		}
		want := c.Buckets()[bucket]
		for range 100 {
			id, err := g.Next()
			if err != nil {
				t.Fatal(err)
			}
			if got, err := c.ChooseShard(ctx, users, &User{ID: id}); got != want || err != nil {
				t.Fatalf("ChooseShard(ID %d from bucket %d) = %v, %v; want %v", id, bucket, got, err, want)
			}
		}
	}
}

func TestFromIDPartialAssignment(t *testing.T) {
	ctx := context.Background()
	users := tableOf[User]()
	l := identity.Layout{Epoch: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), TimeBits: 41, BucketBits: 4, SeqBits: 10}
	c, err := chooser.NewFromID("id", l, []identity.ShardID{"a", "b"})
	if err != nil {
		t.Fatal(err)
	}
	id, _ := l.Encode(time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC), 9, 0)
	_, err = c.ChooseShard(ctx, users, &User{ID: id})
	if err == nil || !strings.Contains(err.Error(), "is in bucket 9, which has no shard (buckets 0-1 are assigned)") || !errors.Is(err, chooser.ErrNoOpinion) {
		t.Errorf("ChooseShard(bucket 9) error = %v; want one naming bucket 9 and wrapping ErrNoOpinion", err)
	}
}

func TestNewFromIDErrors(t *testing.T) {
	l := identity.DefaultLayout()
	tests := []struct {
		name   string
		column string
		layout identity.Layout
		assign []identity.ShardID
		want   string
	}{
		{"no column", "", l, []identity.ShardID{"a"}, "empty column"},
		{"bad layout", "id", identity.Layout{}, []identity.ShardID{"a"}, "Epoch is not set"},
		{"no buckets", "id", l, nil, "0 buckets assigned"},
		{"too many", "id", l, chooser.Spread(l.Buckets()+1, "a"), "1025 buckets assigned; layout"},
		{"empty shard", "id", l, []identity.ShardID{"a", ""}, "bucket 1 has the empty shard ID"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := chooser.NewFromID(tt.column, tt.layout, tt.assign)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("NewFromID error = %v; want one containing %q", err, tt.want)
			}
		})
	}
}

func TestFromIDChooseExecute(t *testing.T) {
	l := identity.Layout{Epoch: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), TimeBits: 41, BucketBits: 2, SeqBits: 10}
	c, err := chooser.NewFromID("id", l, []identity.ShardID{"s0", "s1", "s2", "s3"})
	if err != nil {
		t.Fatal(err)
	}
	// checkExecute's keys are small integers, read as time 0, bucket v>>10,
	// sequence v&1023: keys from 1024 up are in the next bucket.
	checkExecute(t, c, func(v int64) identity.ShardID {
		return c.Buckets()[l.Bucket(v)]
	})
}
