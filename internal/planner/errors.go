package planner

import "fmt"

// Fault says what kind of mistake an [Error] reports, so that the caller
// can map it onto its own sentinel errors (package session's
// ErrInvalidArgument and ErrUnsupported).
type Fault uint8

const (
	// Invalid is bad input: a term that does not follow the grammar, a
	// column the model lacks, a value of the wrong type, a foreign cursor.
	Invalid Fault = iota + 1
	// Unsupported is a statement the merge cannot answer exactly across
	// shards (a column without an exact Go comparison, text without
	// COLLATE "C"); it works on one shard.
	Unsupported
)

// Error is a planning error: nothing has been sent. Msg names the model,
// column, term or value at fault and how to fix it.
type Error struct {
	Fault Fault
	Msg   string
}

// Error returns Msg.
func (e *Error) Error() string { return e.Msg }

func invalid(format string, args ...any) error {
	return &Error{Fault: Invalid, Msg: fmt.Sprintf(format, args...)}
}

func unsupported(format string, args ...any) error {
	return &Error{Fault: Unsupported, Msg: fmt.Sprintf(format, args...)}
}
