package session

import (
	"context"
	"fmt"
)

// Autoflush sets whether the unit flushes its pending changes before each
// statement it runs (the default is true, as SQLAlchemy's autoflush): a
// select, Count, Iter, a Get that misses the identity map, LoadRelation, a
// statement-form write or raw SQL run through the unit first writes what
// Add, Delete and changes to tracked objects have left unflushed, inside
// the unit's transactions, so the statement sees them. With false the unit
// flushes only at Flush and Commit. [UnitOfWork.NoAutoflush] turns it off
// for a few statements. Refresh and the reload of an expired object never
// autoflush: the object's own changes are what they set aside or keep.
func Autoflush(on bool) UnitOption { return func(c *unitConfig) { c.noAutoflush = !on } }

// NoAutoflush runs fn with autoflush off (SQLAlchemy's no_autoflush): the
// unit's statements in fn do not flush first; the changes stay pending for
// the next Flush, Commit, or statement after fn. It returns fn's error.
// Calls may nest.
func (u *UnitOfWork) NoAutoflush(fn func() error) error {
	u.noflush++
	defer func() { u.noflush-- }()
	return fn()
}

// statement is called at the start of every fan-out of the unit's view: the
// outermost one flushes the unit first (autoflush), unless the unit is
// flushing already or autoflush is off. The returned func ends the
// statement. Why a counter and the outermost only: a fan-out's shards may
// run nested fan-outs (relation loads) on goroutines of their own, which
// must not touch the unit's state; the counter was raised before they
// started, so they skip.
func (u *UnitOfWork) statement(ctx context.Context) (func(), error) {
	if u.depth.Add(1) == 1 && !u.cfg.noAutoflush && u.noflush == 0 && u.done == nil && u.pending == nil {
		if err := u.flush(ctx); err != nil {
			u.depth.Add(-1)
			return nil, fmt.Errorf("session: autoflush: %w", err)
		}
	}
	return func() { u.depth.Add(-1) }, nil
}
