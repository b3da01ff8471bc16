package shardtest

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
)

// installHint tells the reader how to provide PostgreSQL when none is found.
const installHint = "install the PostgreSQL server (any version from 13 on): " +
	"`apt-get install postgresql` or a version such as `apt-get install postgresql-15` (Debian, Ubuntu), " +
	"`dnf install postgresql-server` (Fedora, RHEL), `brew install postgresql@15` (macOS); " +
	"or set " + EnvVar + " to a comma-separated list of superuser DSNs of running servers, e.g. " +
	EnvVar + "=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable"

// findBinDir returns the directory holding initdb, postgres and pg_basebackup: dir when it is
// not empty, else the one "pg_config --bindir" names, else the highest-versioned
// /usr/lib/postgresql/*/bin, else the directory of initdb on PATH. It fails, saying how to
// install PostgreSQL, when none holds them.
func findBinDir(dir string) (string, error) {
	if dir != "" {
		if !hasServerBinaries(dir) {
			return "", fmt.Errorf("shardtest: WithBinDir(%q): no initdb and postgres executables there; %s", dir, installHint)
		}
		return dir, nil
	}
	var tried []string
	if out, err := exec.Command("pg_config", "--bindir").Output(); err == nil {
		d := strings.TrimSpace(string(out))
		if hasServerBinaries(d) {
			return d, nil
		}
		tried = append(tried, d+" (from pg_config --bindir)")
	}
	dirs, _ := filepath.Glob("/usr/lib/postgresql/*/bin")
	// Highest major version first: "15" before "9.6", numerically.
	sort.Slice(dirs, func(i, j int) bool {
		return versionOf(dirs[i]) > versionOf(dirs[j])
	})
	for _, d := range dirs {
		if hasServerBinaries(d) {
			return d, nil
		}
	}
	tried = append(tried, "/usr/lib/postgresql/*/bin")
	if p, err := exec.LookPath("initdb"); err == nil {
		d := filepath.Dir(p)
		if hasServerBinaries(d) {
			return d, nil
		}
	}
	tried = append(tried, "PATH")
	return "", fmt.Errorf("shardtest: no PostgreSQL server binaries (initdb, postgres) found in %s: %s",
		strings.Join(tried, ", "), installHint)
}

// versionOf returns the major version in a /usr/lib/postgresql/VERSION/bin path, or 0.
func versionOf(dir string) float64 {
	v, _ := strconv.ParseFloat(filepath.Base(filepath.Dir(dir)), 64)
	return v
}

// hasServerBinaries reports whether dir holds the initdb and postgres executables.
func hasServerBinaries(dir string) bool {
	for _, name := range []string{"initdb", "postgres"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil || fi.IsDir() || fi.Mode()&0o111 == 0 {
			return false
		}
	}
	return true
}

// account is the OS user that runs the PostgreSQL programs: nil cred means the current user.
type account struct {
	cred     *syscall.Credential
	uid, gid int
}

// currentAccount returns the current user when not root, and the OS user postgres when root
// (initdb and postgres refuse to run as root). It fails when root and there is no such user.
func currentAccount() (account, error) {
	if os.Geteuid() != 0 {
		return account{uid: -1, gid: -1}, nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return account{}, fmt.Errorf("shardtest: running as root, and PostgreSQL refuses to run as root, "+
			"but there is no OS user postgres to run it as (%v): create one (`useradd --system postgres`) "+
			"or install the server with `apt-get install postgresql`, which creates it", err)
	}
	uid, err1 := strconv.Atoi(u.Uid)
	gid, err2 := strconv.Atoi(u.Gid)
	if err1 != nil || err2 != nil {
		return account{}, fmt.Errorf("shardtest: OS user postgres has non-numeric uid %q or gid %q", u.Uid, u.Gid)
	}
	return account{cred: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}, uid: uid, gid: gid}, nil
}

// chown gives path to the account's user; it does nothing when running as the current user.
func (a account) chown(path string) error {
	if a.cred == nil {
		return nil
	}
	if err := os.Chown(path, a.uid, a.gid); err != nil {
		return fmt.Errorf("shardtest: give %s to OS user postgres: %w", path, err)
	}
	return nil
}

// childEnv returns the environment for PostgreSQL programs: the current one without PG*
// variables (PGPORT, PGDATA and the like would override the flags shardtest passes), in the C
// locale.
func childEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "PG") || strings.HasPrefix(kv, "LC_") || strings.HasPrefix(kv, "LANG=") {
			continue
		}
		env = append(env, kv)
	}
	return append(env, "LC_ALL=C", "LANG=C")
}

// runHelper runs a short-lived program (initdb, pg_basebackup, cp) as the account, in dir,
// and fails with its combined output when it exits non-zero.
func runHelper(ctx context.Context, acct account, dir string, asUser bool, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = childEnv()
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	cred := acct.cred
	if !asUser {
		cred = nil
	}
	cmd.SysProcAttr = helperAttr(cred)
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("shardtest: %s %s: %w\n%s", filepath.Base(name), strings.Join(args, " "), err, tailString(out.String(), 3000))
	}
	return nil
}

// tailString returns the last limit bytes of s, starting at a line boundary when it can.
func tailString(s string, limit int) string {
	if len(s) <= limit {
		return s
	}
	s = s[len(s)-limit:]
	if i := strings.IndexByte(s, '\n'); i >= 0 && i < len(s)-1 {
		s = s[i+1:]
	}
	return "..." + "\n" + s
}

// logTail returns the last few kilobytes of the log file at path, for error messages.
func logTail(path string) string {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Sprintf("(no log: %v)", err)
	}
	defer f.Close()
	const size = 4000
	fi, err := f.Stat()
	if err != nil {
		return fmt.Sprintf("(log unreadable: %v)", err)
	}
	off := fi.Size() - size
	if off < 0 {
		off = 0
	}
	buf := make([]byte, fi.Size()-off)
	n, _ := f.ReadAt(buf, off)
	s := string(buf[:n])
	if off > 0 {
		s = tailString(s, size-1)
	}
	return strings.TrimRight(s, "\n")
}
