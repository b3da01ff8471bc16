// Package pgtest is the name bunshard's own tests, benchmarks and examples have used for
// the PostgreSQL test harness, which now is the public package
// github.com/bunshard/bunshard/shardtest. Every identifier here is an alias of
// shardtest's: one implementation, documented there. New code imports shardtest.
package pgtest

import (
	"testing"
	"time"

	"github.com/bunshard/bunshard/shardtest"
)

// Set is [shardtest.Set].
type Set = shardtest.Set

// Server is [shardtest.Server].
type Server = shardtest.Server

// Option is [shardtest.Option].
type Option = shardtest.Option

// EnvVar is [shardtest.EnvVar].
const EnvVar = shardtest.EnvVar

// ErrExternal is [shardtest.ErrExternal].
var ErrExternal = shardtest.ErrExternal

// ErrClosed is [shardtest.ErrClosed].
var ErrClosed = shardtest.ErrClosed

// Main is [shardtest.Main]; it fails (exit code 1, saying what to install) when no server
// can be had.
func Main(m *testing.M, n int, after ...func() error) int { return shardtest.Main(m, n, after...) }

// Shared is [shardtest.Shared]; it panics outside Main.
func Shared() *Set { return shardtest.Shared() }

// Start is [shardtest.Start]; its error says what to install when there is no server.
func Start(n int, opts ...Option) (*Set, error) { return shardtest.Start(n, opts...) }

// WithStartTimeout is [shardtest.WithStartTimeout].
func WithStartTimeout(d time.Duration) Option { return shardtest.WithStartTimeout(d) }

// WithBinDir is [shardtest.WithBinDir].
func WithBinDir(dir string) Option { return shardtest.WithBinDir(dir) }

// WithSetting is [shardtest.WithSetting].
func WithSetting(name, value string) Option { return shardtest.WithSetting(name, value) }
