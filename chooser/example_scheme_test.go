package chooser_test

import (
	"context"
	"fmt"

	"github.com/bunshard/bunshard/chooser"
	"github.com/bunshard/bunshard/identity"
)

// A scheme routes each model by its own key column: a tenant by its id,
// its projects by their tenant_id, through one hash, so a tenant's rows
// share a shard; plans are a reference table on every shard.
func ExampleNewScheme() {
	ctx := context.Background()
	shards := []identity.ShardID{"s0", "s1", "s2", "s3"}
	byTenant, err := chooser.NewHash("tenant_id", chooser.Spread(1024, shards...))
	if err != nil {
		panic(err)
	}
	scheme, err := chooser.NewScheme(shards,
		chooser.Distributed((*sTenant)(nil), "id", byTenant),
		chooser.Distributed((*sProject)(nil), "tenant_id", byTenant),
		chooser.Reference((*sPlan)(nil)),
	)
	if err != nil {
		panic(err)
	}
	tenant, _ := scheme.ChooseShard(ctx, tableOf[sTenant](), &sTenant{ID: 42})
	project, _ := scheme.ChooseShard(ctx, tableOf[sProject](), &sProject{ID: 7, TenantID: 42})
	plans, _ := scheme.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: tableOf[sPlan]()})
	_, err = scheme.ChooseExecute(ctx, &chooser.Statement{Op: chooser.OpSelect, Table: tableOf[sOther]()})
	fmt.Println(scheme)
	fmt.Println("tenant 42:", tenant, "its project:", project)
	fmt.Println("plans are read from", plans)
	fmt.Println(err != nil)
	// Output:
	// chooser.Scheme(sTenant.id, sProject.tenant_id, sPlan reference)
	// tenant 42: s3 its project: s3
	// plans are read from [s0]
	// true
}
