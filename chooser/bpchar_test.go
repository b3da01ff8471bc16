package chooser_test

import (
	"context"
	"testing"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

type bpCode struct {
	Code string `bun:",pk,type:char(4)"`
}

type textCode struct {
	Code string `bun:",pk"`
}

// TestBlankPaddedKeysRouteAlike: on a char(n) column, "US" and the
// blank-padded "US  " PostgreSQL returns are one key (it compares them
// without the padding), so every path routes them alike; on a text
// column they are two keys, routed as they are.
func TestBlankPaddedKeysRouteAlike(t *testing.T) {
	ctx := context.Background()
	shards := []identity.ShardID{"a", "b", "c", "d"}
	h, err := chooser.NewHash("code", chooser.Spread(64, shards...))
	if err != nil {
		t.Fatal(err)
	}
	bp, text := tableOf[bpCode](), tableOf[textCode]()
	differ := 0
	for _, code := range []string{"US", "FR", "DE", "JP", "BR", "IN", "CN", "ZA", "A", "ABC"} {
		padded := code + "    "[len(code):]
		want, err := h.ChooseShard(ctx, bp, &bpCode{Code: code})
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.ChooseShard(ctx, bp, &bpCode{Code: padded})
		if err != nil || got != want {
			t.Errorf("ChooseShard(char(4) %q) = %s, %v; want %s as for %q", padded, got, err, want, code)
		}
		tg, err := h.ChooseIdentity(ctx, chooser.Key{Table: bp, PK: []any{padded}})
		if err != nil || tg.List()[0] != want {
			t.Errorf("ChooseIdentity(char(4) %q) = %v, %v; want %s", padded, tg, err, want)
		}
		tg, err = h.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: bp,
			Criteria: []chooser.Criterion{{Column: "code", Values: []any{padded}}}})
		if err != nil || tg.List()[0] != want {
			t.Errorf("ChooseExecute(char(4) %q) = %v, %v; want %s", padded, tg, err, want)
		}
		plain, _ := h.ChooseShard(ctx, text, &textCode{Code: code})
		spaced, _ := h.ChooseShard(ctx, text, &textCode{Code: padded})
		if plain != want {
			t.Errorf("text %q routes to %s, char(4) %q to %s; want the same shard", code, plain, code, want)
		}
		if plain != spaced && len(code) < 4 {
			differ++
		}
	}
	if differ == 0 {
		t.Errorf("text keys with and without trailing blanks always routed alike: a text column's blanks are part of its key")
	}
}
