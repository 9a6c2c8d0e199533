package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/keystore"
	"github.com/keytree-dev/keytree/protect"
)

// Helpers of the reliability suite (docs/reliability.md) that drive the real
// binary: TestConcurrentProcesses and TestCanarySecrets. Each has a fast
// version, which `go test ./...` runs, and a full one, selected with
// KEYTREE_RELIABILITY=full.

// reliabilityFull reports whether KEYTREE_RELIABILITY=full asks for the
// long versions of the reliability tests.
func reliabilityFull() bool { return os.Getenv("KEYTREE_RELIABILITY") == "full" }

// skipInShortMode skips a reliability test in -short mode; what says what
// takes it long.
func skipInShortMode(t *testing.T, what string) {
	t.Helper()
	if testing.Short() {
		t.Skip(what + "; not in -short mode")
	}
}

// crashOutput matches what the Go runtime prints when a program panics or
// dies of a fatal error; keytree must never print it (P11).
var crashOutput = regexp.MustCompile(`panic|goroutine [0-9]+|runtime error|fatal error|\[signal `)

// procKeystore is a keystore, with its account and machine directories, for
// keytree processes: the test binary under the name keytree, which TestMain
// put on $PATH.
type procKeystore struct {
	root string
	opts keystore.Options
	env  []string
	// running counts keytree processes under way; maxRunning is the most
	// that ever overlapped.
	running, maxRunning atomic.Int64
}

func newProcKeystore(t *testing.T, prefix string) *procKeystore {
	t.Helper()
	root, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	if runtime.GOOS != "windows" {
		// Under Wine os.RemoveAll fails (.ci/wine/README.md).
		t.Cleanup(func() { os.RemoveAll(root) })
	}
	k := &procKeystore{root: root, opts: initKeystoreUnder(t, root, protect.X25519)}
	k.env = append(os.Environ(),
		"KEYTREE_DIR="+k.opts.Keystore, "KEYTREE_ACCOUNT_DIR="+k.opts.Account, "KEYTREE_MACHINE_DIR="+k.opts.Machine)
	return k
}

// initKeystoreUnder creates a keystore with an alg SMK in root/keystore,
// its account directory in root/account and its machine directory in
// root/machine.
func initKeystoreUnder(t *testing.T, root string, alg protect.Algorithm) keystore.Options {
	t.Helper()
	opts := keystore.Options{Dirs: keystore.Dirs{
		Keystore: filepath.Join(root, "keystore"),
		Account:  filepath.Join(root, "account"),
		Machine:  filepath.Join(root, "machine"),
	}}
	if _, err := keystore.Init(opts, alg); err != nil {
		t.Fatal(err)
	}
	return opts
}

// open opens the keystore in this process, through the Go API.
func (k *procKeystore) open() (*keystore.Keystore, error) { return keystore.Open(k.opts) }

// procResult is what one keytree process did.
type procResult struct {
	args           []string
	start, end     time.Time
	code           int  // exit status; -1 if it did not start
	killed         bool // SIGKILLed before it exited
	stdout, stderr []byte
}

// run runs keytree with args and stdin (nil: none). With killAfter >= 0 it
// sends SIGKILL (TerminateProcess on Windows) that long after the start, if
// the process is still running.
func (k *procKeystore) run(stdin []byte, killAfter time.Duration, args ...string) procResult {
	cmd := exec.Command("keytree", args...)
	cmd.Env = k.env
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	r := procResult{args: args, start: time.Now(), code: -1}
	if err := cmd.Start(); err != nil {
		r.end = time.Now()
		r.stderr = []byte(err.Error())
		return r
	}
	n := k.running.Add(1)
	for {
		m := k.maxRunning.Load()
		if n <= m || k.maxRunning.CompareAndSwap(m, n) {
			break
		}
	}
	var fired atomic.Bool
	var timer *time.Timer
	if killAfter >= 0 {
		timer = time.AfterFunc(killAfter, func() {
			fired.Store(true)
			_ = cmd.Process.Kill() // it may have exited already; Wait tells
		})
	}
	err := cmd.Wait()
	if timer != nil {
		timer.Stop()
	}
	k.running.Add(-1)
	r.end = time.Now()
	r.stdout, r.stderr = stdout.Bytes(), stderr.Bytes()
	r.code = 0
	if err != nil {
		r.code = -1
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		r.killed = fired.Load()
	}
	return r
}
