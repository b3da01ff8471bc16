package chooser

import "errors"

// ErrNoOpinion is returned, wrapped, by a chooser that is asked about a key
// its configuration does not cover: a value outside every range of [Ranges],
// a key missing from a [Lookup] directory, a zero ID or an unassigned bucket
// in [FromID]. Standing alone, such a chooser fails the call with an error
// that names the value; inside [First], the next member is asked instead.
// Test for it with errors.Is.
//
// A user-written chooser may return ErrNoOpinion (or wrap it) to say "not
// mine" in the same way.
var ErrNoOpinion = errors.New("chooser: no opinion")

// ErrUndeclared is returned, wrapped, by a [Scheme] asked about a model it
// has no declaration for. It does not wrap [ErrNoOpinion]: a model left out
// of the scheme is a mistake to fix, never a cue to fall back on another
// chooser or on every shard.
var ErrUndeclared = errors.New("chooser: model not declared in the scheme")

// ErrRefused is returned, wrapped, by [Routers] when one of its
// [WriteRouter]s answers a write with an error other than [ErrNoOpinion]: the
// router refuses the write (a shard in read-only maintenance, say). The
// error names the router, the model and, when decided, the shard. A session
// never falls back on a pin or a Token when a write is refused.
var ErrRefused = errors.New("chooser: write refused by a router")
