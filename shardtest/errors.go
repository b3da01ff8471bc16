package shardtest

import "errors"

// EnvVar is the environment variable that names external servers to use instead of
// starting clusters: a comma-separated list of superuser DSNs, one per server.
const EnvVar = "BUNSHARD_TEST_PG"

// ErrExternal is returned (wrapped, naming the server and the operation) by [Server.Stop],
// [Server.Kill], [Server.Start] and [Server.StartReplica] on a server named in
// BUNSHARD_TEST_PG: shardtest did not start it and cannot stop or copy it.
var ErrExternal = errors.New("shardtest: external server (named in " + EnvVar + ") cannot be stopped, killed, restarted or replicated")

// ErrClosed is returned (wrapped, naming the server) by operations on a server whose [Set]
// has been closed.
var ErrClosed = errors.New("shardtest: set is closed")
