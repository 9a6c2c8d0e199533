package main

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"
)

// TestKillRegenerate kills a real `keytree smk regenerate` with SIGKILL at
// random moments, again and again, and checks after each kill that the
// keystore opens, every credential reads back with its value, the SMK is
// either the old one or a whole new generation, and the next command leaves
// no file behind. docs/reliability.md reports the figures it logs.
func TestKillRegenerate(t *testing.T) {
	skipInShortMode(t, "kills a process many times")
	const credentials = 300
	runs := 25
	if runtime.GOOS == "windows" && !reliabilityFull() {
		// A process start under Wine, which runs the Windows tests in
		// CI, takes tens of milliseconds, and each run starts several.
		runs = 5
	}
	k := newProcKeystore(t, "keytree-kill-")
	opts := k.opts
	ks, err := k.open()
	if err != nil {
		t.Fatal(err)
	}
	values := map[string][]byte{}
	for i := 0; i < credentials; i++ {
		name := fmt.Sprintf("c%03d", i)
		values[name] = []byte(fmt.Sprintf("value %d \x00\xff", i))
		if _, err := ks.SetCredential(name, "u", values[name]); err != nil {
			t.Fatal(err)
		}
	}
	regenerate := func() *exec.Cmd {
		cmd := exec.Command("keytree", "smk", "regenerate")
		cmd.Env = k.env
		return cmd
	}
	// How long an uninterrupted regenerate takes, to spread the kills over.
	start := time.Now()
	if out, err := regenerate().CombinedOutput(); err != nil {
		t.Fatalf("regenerate: %v\n%s", err, out)
	}
	full := time.Since(start)

	states := map[string]int{}
	for run := 0; run < runs; run++ {
		before, err := ks.Status()
		if err != nil {
			t.Fatal(err)
		}
		cmd := regenerate()
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		delay := time.Duration(rand.Int64N(int64(full * 6 / 5)))
		time.Sleep(delay)
		// Killed at a random point: it may have finished already, and its
		// exit status is that of a kill.
		_ = cmd.Process.Kill()
		_ = cmd.Wait()

		after, err := ks.Status()
		if err != nil {
			t.Fatalf("run %d (killed after %s): status: %v", run, delay, err)
		}
		state := "old"
		switch after.SMK.Generation {
		case before.SMK.Generation:
			if after.SMK.Thumbprint != before.SMK.Thumbprint {
				t.Fatalf("run %d: same generation, different key", run)
			}
		case before.SMK.Generation + 1:
			state = "new"
		default:
			t.Fatalf("run %d: generation %d after %d", run, after.SMK.Generation, before.SMK.Generation)
		}
		states[state]++
		for name, want := range values {
			_, got, err := ks.GetCredential(name)
			if err != nil || !bytes.Equal(got, want) {
				t.Fatalf("run %d (killed after %s, %s state): %s = %q, %v", run, delay, state, name, got, err)
			}
		}
		// The next writer cleans up: afterwards one value file per
		// credential, two SMK encryptions, nothing in tmp/, no pending.toml.
		if _, err := ks.SetCredential("sentinel", "u", []byte("x")); err != nil {
			t.Fatal(err)
		}
		if err := ks.RemoveCredential("sentinel"); err != nil {
			t.Fatal(err)
		}
		assertFileCount(t, filepath.Join(opts.Keystore, "credentials"), ".age", credentials)
		assertFileCount(t, filepath.Join(opts.Keystore, "smk"), ".age", 2)
		assertFileCount(t, filepath.Join(opts.Keystore, "tmp"), "", 0)
		if _, err := os.Stat(filepath.Join(opts.Keystore, "pending.toml")); err == nil {
			t.Fatalf("run %d: pending.toml survived the next writer", run)
		}
	}
	t.Logf("SIGKILL during smk regenerate over %d credentials (uninterrupted: %s): %d runs, %d left the old state, %d the new, 0 failures",
		credentials, full.Round(time.Millisecond), runs, states["old"], states["new"])
}

func assertFileCount(t *testing.T, dir, suffix string, want int) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range entries {
		if strings.HasSuffix(e.Name(), suffix) {
			n++
		}
	}
	if n != want {
		t.Fatalf("%s holds %d %s files, want %d", dir, n, suffix, want)
	}
}
