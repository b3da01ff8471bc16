package session

import (
	"context"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestLSN(t *testing.T) {
	tests := []struct {
		text string
		lsn  LSN
	}{
		{"0/0", 0},
		{"0/3000090", 0x3000090},
		{"16/B374D848", 0x16_B374D848},
		{"FFFFFFFF/FFFFFFFF", primaryOnly},
	}
	for _, tt := range tests {
		got, err := parseLSN(tt.text)
		if err != nil || got != tt.lsn {
			t.Errorf("parseLSN(%q) = %v, %v; want %#x", tt.text, got, err, uint64(tt.lsn))
		}
		if s := tt.lsn.String(); s != tt.text {
			t.Errorf("LSN(%#x).String() = %q; want %q", uint64(tt.lsn), s, tt.text)
		}
	}
	for _, bad := range []string{"", "0", "x/1", "1/", "1/100000000", "100000000/0"} {
		if _, err := parseLSN(bad); err == nil {
			t.Errorf("parseLSN(%q) succeeded; want an error", bad)
		}
	}
}

func TestReplicaFailure(t *testing.T) {
	dial := &net.OpError{Op: "dial", Net: "tcp", Err: syscall.ECONNREFUSED}
	read := &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}
	tests := []struct {
		name        string
		err         error
		completed   bool
		down, retry bool
	}{
		{"refused", fmt.Errorf("wrapped: %w", dial), false, true, true},
		{"refused after a statement", dial, true, true, true},
		{"eof", io.EOF, false, true, true},
		{"eof after a statement", io.EOF, true, true, false},
		{"unexpected eof", io.ErrUnexpectedEOF, false, true, true},
		{"bad conn", driver.ErrBadConn, false, true, true},
		{"reset", read, false, true, true},
		{"reset after a statement", read, true, true, false},
		{"epipe", syscall.EPIPE, false, true, true},
		{"closed", net.ErrClosed, false, true, true},
		{"canceled", context.Canceled, false, false, false},
		{"other", errors.New("syntax error"), false, false, false},
		// PostgreSQL's own errors, as pgx's database/sql driver returns them.
		{"pgx shutdown", fmt.Errorf("w: %w", &pgconn.PgError{Code: "57P01"}), false, true, true},
		{"pgx shutdown after a statement", &pgconn.PgError{Code: "57P01"}, true, true, false},
		{"pgx starting up", &pgconn.PgError{Code: "57P03"}, true, true, true},
		{"pgx connection failure", &pgconn.PgError{Code: "08006"}, false, true, true},
		{"pgx recovery conflict", &pgconn.PgError{Code: "40001"}, false, false, true},
		{"pgx syntax error", &pgconn.PgError{Code: "42601"}, false, false, false},
	}
	for _, tt := range tests {
		if down, retry := replicaFailure(tt.err, tt.completed); down != tt.down || retry != tt.retry {
			t.Errorf("replicaFailure(%s, completed %v) = %v, %v; want %v, %v", tt.name, tt.completed, down, retry, tt.down, tt.retry)
		}
	}
}
