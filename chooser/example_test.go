package chooser_test

import (
	"context"
	"fmt"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

func ExampleFollowParent() {
	ctx := context.Background()
	// Countries are placed by continent; cities and streets follow their
	// parents (belongs-to relations), whatever their own columns say.
	place := chooser.NewFollowParent(chooser.NewValueMap("continent", map[string]identity.ShardID{
		"Asia": "asia", "Europe": "europe",
	}))
	japan := &Country{ID: 1, Continent: "Asia"}
	tokyo := &City{ID: 10, Country: japan}
	ginza := &Street{ID: 100, City: tokyo}

	id, err := place.ChooseShard(ctx, table[Street](), ginza)
	fmt.Println(id, err)

	tokyo.SetShard("europe") // a parent's token wins: it says where the row is
	id, err = place.ChooseShard(ctx, table[Street](), ginza)
	fmt.Println(id, err)
	// Output:
	// asia <nil>
	// europe <nil>
}
