package session_test

import (
	"context"
	"errors"
	"fmt"
	"log"

	"github.com/uptrace/bun"

	"github.com/bunshard/bunshard/session"
)

type Shop struct {
	bun.BaseModel `bun:"table:shops"`
	session.Token

	ID     int64        `bun:",pk"`
	Region string       `bun:",notnull"`
	Orders []*ShopOrder `bun:"rel:has-many,join:id=shop_id"`
}

type ShopOrder struct {
	bun.BaseModel `bun:"table:shop_orders"`
	session.Token

	ID     int64 `bun:",pk"`
	ShopID int64 `bun:",notnull"`
	Total  int64 `bun:",notnull"`
}

// A unit of work that moves stock between two shops on two shards, all or
// nothing. It needs running PostgreSQL servers, so it is compiled but not
// run.
func ExampleUnitOfWork() {
	ctx := context.Background()
	var sess *session.Session // built with session.New over the shards

	// At start-up: finish the two-phase commits a crash left half-done.
	if rec, err := sess.Recover(ctx); err != nil {
		log.Printf("recover: %v (resolved %+v)", err, rec)
	}

	uow := sess.Begin(session.TwoPhase())
	defer uow.Rollback(ctx) // does nothing once committed

	var tokyo, paris *Shop
	if err := uow.Get(ctx, &tokyo, 1); err != nil { // asks the IdentityChooser's shards
		log.Fatal(err)
	}
	if err := uow.Get(ctx, &paris, 2); err != nil {
		log.Fatal(err)
	}
	// New orders go to their shop's shard: they are in its has-many.
	tokyo.Orders = append(tokyo.Orders, &ShopOrder{ID: 10, Total: -5})
	paris.Orders = append(paris.Orders, &ShopOrder{ID: 11, Total: 5})
	tokyo.Region = "Kanto" // an UPDATE of this one column

	err := uow.Commit(ctx)
	if ce, ok := errors.AsType[*session.CommitError](err); ok {
		// With TwoPhase: ce.Decision says what every shard ends with, and
		// ce.Pending lists the shards Recover will bring there.
		fmt.Println(ce.Decision, ce.Committed, ce.Pending)
	}
}

// Loading the orders of shops already in memory: one statement per shard.
func ExampleSession_LoadRelation() {
	ctx := context.Background()
	var sess *session.Session // built with session.New over the shards

	var shops []*Shop
	if err := sess.NewSelect().Model(&shops).Scan(ctx); err != nil {
		log.Fatal(err)
	}
	if err := sess.LoadRelation(ctx, &shops, "Orders"); err != nil {
		log.Fatal(err)
	}
	for _, s := range shops {
		shard, _ := s.Shard()
		fmt.Println(s.ID, shard, len(s.Orders))
	}
}
