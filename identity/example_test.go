package identity_test

import (
	"fmt"
	"reflect"

	"github.com/bunshard/bunshard/identity"
)

type Location struct {
	identity.Token
	ID   int64
	City string
}

func ExampleMap() {
	t := reflect.TypeFor[Location]()
	var m identity.Map[*Location]

	// The same primary key on two shards is two objects.
	m.Add(identity.NewKey(t, "asia", int64(7)), &Location{ID: 7, City: "Tokyo"})
	m.Add(identity.NewKey(t, "europe", int64(7)), &Location{ID: 7, City: "Oslo"})

	// A row loaded again does not replace the tracked object.
	got, added := m.Add(identity.NewKey(t, "asia", 7), &Location{ID: 7, City: "Tokyo (reloaded)"})
	fmt.Println(got.City, added)

	// Keys are canonical: int, int32 and int64 7 are one key.
	loc, ok := m.Get(identity.NewKey(t, "europe", int32(7)))
	fmt.Println(loc.City, ok, m.Len())
	fmt.Println(identity.NewKey(t, "europe", 7))
	// Output:
	// Tokyo false
	// Oslo true 2
	// Location(7)@europe
}

func ExampleToken_PinShard() {
	var loc Location
	loc.PinShard("asia") // loaded by a statement pinned with SetShardID
	id, _ := loc.Shard()
	fmt.Println(id, loc.Pinned())
	loc.SetShard("europe")
	fmt.Println(loc.Pinned())
	// Output:
	// asia true
	// false
}
