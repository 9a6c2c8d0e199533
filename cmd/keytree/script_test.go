package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"

	"github.com/keytree-dev/keytree/commands"
	"github.com/keytree-dev/keytree/protect"
)

// TestMain makes keytree's real Main the "keytree" command of the scripts,
// so the end-to-end tests run exactly what users run. Only the scrypt cost
// is lowered, through a hook that exists for tests alone.
//
// It does what testscript.Main does: when the test binary runs under the
// name keytree it is keytree; otherwise it puts a copy of itself named
// keytree on $PATH and runs the tests. Unlike testscript.Main it ignores a
// failure to remove that copy afterwards, which Wine cannot do
// (.ci/wine/README.md), so the Windows build's tests can pass under Wine.
func TestMain(m *testing.M) {
	protect.SetScryptWorkFactorForTesting(10)
	if strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe") == "keytree" {
		os.Exit(commands.Main(os.Args))
	}
	os.Exit(runWithKeytreeOnPath(m))
}

func runWithKeytreeOnPath(m *testing.M) int {
	bin, err := os.MkdirTemp("", "keytree-bin")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer removeTree(bin)
	self, err := os.Executable()
	if err == nil {
		name := "keytree"
		if runtime.GOOS == "windows" {
			name += ".exe"
		}
		err = copyFile(self, filepath.Join(bin, name))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "put keytree on PATH:", err)
		return 1
	}
	os.Setenv("PATH", bin+string(filepath.ListSeparator)+os.Getenv("PATH"))
	return m.Run()
}

func copyFile(from, to string) error {
	data, err := os.ReadFile(from)
	if err != nil {
		return err
	}
	return os.WriteFile(to, data, 0o755)
}

// removeTree removes a directory file by file, ignoring errors.
func removeTree(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		os.Remove(filepath.Join(dir, e.Name()))
	}
	os.Remove(dir)
}

func TestScripts(t *testing.T) {
	testscript.Run(t, scriptParams(t))
}

func scriptParams(t *testing.T) testscript.Params {
	snapshots := map[string]map[string]string{}
	return testscript.Params{
		Dir:                 filepath.Join("..", "..", "testdata", "script"),
		RequireExplicitExec: true,
		RequireUniqueNames:  true,
		Setup: func(env *testscript.Env) error {
			home := filepath.Join(env.WorkDir, "home")
			env.Setenv("HOME", home)
			env.Setenv("USERPROFILE", home)
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(home, ".config"))
			env.Setenv("XDG_DATA_HOME", filepath.Join(home, ".local", "share"))
			env.Setenv("XDG_STATE_HOME", filepath.Join(home, ".local", "state"))
			env.Setenv("KEYTREE_DIR", filepath.Join(env.WorkDir, "keystore"))
			env.Setenv("KEYTREE_ACCOUNT_DIR", filepath.Join(env.WorkDir, "account"))
			env.Setenv("KEYTREE_MACHINE_DIR", filepath.Join(env.WorkDir, "machine"))
			env.Setenv("KEYTREE_LOCK_TIMEOUT", "10s")
			return nil
		},
		Condition: func(cond string) (bool, error) {
			switch cond {
			case "root":
				return runtime.GOOS != "windows" && os.Geteuid() == 0, nil
			}
			return false, fmt.Errorf("unknown condition %q", cond)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"snapshot":  func(ts *testscript.TestScript, neg bool, args []string) { cmdSnapshot(ts, neg, args, snapshots) },
			"unchanged": func(ts *testscript.TestScript, neg bool, args []string) { cmdUnchanged(ts, neg, args, snapshots) },
			"mode":      cmdMode,
			"flipbyte":  cmdFlipByte,
			"truncate":  cmdTruncate,
			"filecount": cmdFileCount,
		},
	}
}

// snapshot DIR NAME records every file under DIR (path, mode and content),
// except the lock file and the error log, which a failing command may touch.
func cmdSnapshot(ts *testscript.TestScript, neg bool, args []string, snaps map[string]map[string]string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: snapshot DIR NAME")
	}
	snaps[ts.Name()+"/"+args[1]] = treeDigest(ts, ts.MkAbs(args[0]))
}

// unchanged DIR NAME fails if DIR differs from the snapshot NAME.
func cmdUnchanged(ts *testscript.TestScript, neg bool, args []string, snaps map[string]map[string]string) {
	if len(args) != 2 {
		ts.Fatalf("usage: unchanged DIR NAME")
	}
	before, ok := snaps[ts.Name()+"/"+args[1]]
	if !ok {
		ts.Fatalf("no snapshot %q", args[1])
	}
	after := treeDigest(ts, ts.MkAbs(args[0]))
	var diffs []string
	for p, d := range before {
		if a, ok := after[p]; !ok {
			diffs = append(diffs, "removed "+p)
		} else if a != d {
			diffs = append(diffs, "changed "+p)
		}
	}
	for p := range after {
		if _, ok := before[p]; !ok {
			diffs = append(diffs, "added "+p)
		}
	}
	sort.Strings(diffs)
	if neg {
		if len(diffs) == 0 {
			ts.Fatalf("%s is unchanged since snapshot %s", args[0], args[1])
		}
		return
	}
	if len(diffs) > 0 {
		ts.Fatalf("%s changed since snapshot %s:\n%s", args[0], args[1], strings.Join(diffs, "\n"))
	}
}

func treeDigest(ts *testscript.TestScript, root string) map[string]string {
	out := map[string]string{}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(root, p)
		r = filepath.ToSlash(r)
		if r == "lock" || r == "errorlog" {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		sum := info.Mode().String()
		if d.Type().IsRegular() {
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			h := sha256.Sum256(data)
			sum += " " + hex.EncodeToString(h[:])
		}
		out[r] = sum
		return nil
	})
	ts.Check(err)
	return out
}

// mode PATH PERM checks a file's permission bits (Unix only; on Windows it
// passes, permissions there are ACLs).
func cmdMode(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: mode PATH PERM")
	}
	if runtime.GOOS == "windows" {
		return
	}
	want, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	fi, err := os.Stat(ts.MkAbs(args[0]))
	ts.Check(err)
	got := uint64(fi.Mode().Perm())
	if (got == want) == neg {
		ts.Fatalf("%s has mode %04o, want %s%04o", args[0], got, map[bool]string{true: "not ", false: ""}[neg], want)
	}
}

// flipbyte FILE OFFSET inverts one byte; a negative offset counts from the
// end.
func cmdFlipByte(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: flipbyte FILE OFFSET")
	}
	p := ts.MkAbs(args[0])
	data, err := os.ReadFile(p)
	ts.Check(err)
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	if off < 0 {
		off += len(data)
	}
	if off < 0 || off >= len(data) {
		ts.Fatalf("offset %s outside %s (%d bytes)", args[1], args[0], len(data))
	}
	data[off] ^= 0xff
	ts.Check(writeKeepMode(p, data))
}

// truncate FILE SIZE cuts a file to SIZE bytes.
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: truncate FILE SIZE")
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	ts.Check(os.Truncate(ts.MkAbs(args[0]), n))
}

// filecount DIR N checks how many files (not directories) lie under DIR.
func cmdFileCount(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: filecount DIR N")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	n := 0
	ts.Check(filepath.WalkDir(ts.MkAbs(args[0]), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			n++
		}
		return err
	}))
	if (n == want) == neg {
		ts.Fatalf("%s holds %d files, want %d", args[0], n, want)
	}
}

func writeKeepMode(p string, data []byte) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	return os.WriteFile(p, data, fi.Mode().Perm())
}
