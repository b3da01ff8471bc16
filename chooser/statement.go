package chooser

import (
	"github.com/uptrace/bun/schema"

	"github.com/bunshard/bunshard/identity"
)

// Op is the kind of statement being routed.
type Op uint8

// The statement kinds an [ExecuteChooser] sees.
const (
	OpSelect Op = iota + 1
	OpUpdate
	OpDelete
)

// String returns "select", "update" or "delete".
func (op Op) String() string {
	switch op {
	case OpSelect:
		return "select"
	case OpUpdate:
		return "update"
	case OpDelete:
		return "delete"
	}
	return "op(?)"
}

// Criterion is a shard-key predicate the caller declared on a statement:
// Column = Values[0], or Column IN (Values...). The session gives each value
// the Go type of the model's column before a chooser sees it (an int64 for
// an int64 column, whether the caller wrote 42, int32(42) or "42"), as it
// does for the PK values of a [Key].
type Criterion struct {
	Column string
	Values []any
}

// Statement describes a statement to an [ExecuteChooser]. It is built by the
// session for each call and must not be retained or modified by choosers.
type Statement struct {
	Op    Op
	Table *schema.Table
	// Criteria are the shard-key predicates declared through the builder
	// (WhereShardKey), one per column; they are ANDed. The session folds
	// several declarations on one column into one, the intersection of
	// their values, and never asks a chooser about an empty intersection.
	Criteria []Criterion
	// LoadedFrom is the parent's shard when the statement loads a relation of
	// objects from that shard (SQLAlchemy's lazy_loaded_from), and ""
	// otherwise. The ready-made choosers answer Shards(LoadedFrom) when they
	// have no criterion to go by, so related rows are read from their
	// parent's shard; a chooser can route a relation that lives elsewhere by
	// design.
	LoadedFrom identity.ShardID
	// Parents are the objects (pointers to model structs) whose relation the
	// statement loads, all of them on LoadedFrom, and nil otherwise: Django's
	// instance hint. The session loads a relation with one statement per
	// shard for every parent there, so a router is asked once for them all;
	// Parents[0] is what Django passes as instance for a prefetch (its first
	// instance). A router must not modify them.
	Parents []any
}

// Values returns the declared values for column, and false if the statement
// declares no criterion on it.
func (s *Statement) Values(column string) ([]any, bool) {
	for _, c := range s.Criteria {
		if c.Column == column {
			return c.Values, true
		}
	}
	return nil, false
}
