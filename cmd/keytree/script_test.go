package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"
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
// name keytree it is keytree (and under the name runhelper, the program
// the run_* scenarios give keytree run); otherwise it puts copies of itself
// with those names on $PATH and runs the tests. Unlike testscript.Main it ignores a
// failure to remove that copy afterwards, which Wine cannot do
// (.ci/wine/README.md), so the Windows build's tests can pass under Wine.
func TestMain(m *testing.M) {
	protect.SetScryptWorkFactorForTesting(8)
	switch strings.TrimSuffix(filepath.Base(os.Args[0]), ".exe") {
	case "keytree":
		os.Exit(commands.Main(os.Args))
	case runHelperName:
		os.Exit(runHelperMain(os.Args[1:]))
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
	for _, name := range []string{"keytree", runHelperName} {
		if err != nil {
			break
		}
		if runtime.GOOS == "windows" {
			name += ".exe"
		}
		err = copyFile(self, filepath.Join(bin, name))
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "put keytree and its run helper on PATH:", err)
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
	snapshots := &snapshotStore{m: map[string]map[string]string{}}
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
			// keytree run's files go to $XDG_RUNTIME_DIR/keytree (on
			// Windows, %TEMP%\keytree-run), the script's own, never to the
			// machine's /dev/shm; RUNBASE names that directory.
			xdg := filepath.Join(env.WorkDir, "xdg")
			if err := os.Mkdir(xdg, 0o700); err != nil {
				return err
			}
			env.Setenv("XDG_RUNTIME_DIR", xdg)
			if runtime.GOOS == "windows" {
				env.Setenv("RUNBASE", filepath.Join(env.WorkDir, ".tmp", "keytree-run"))
			} else {
				env.Setenv("RUNBASE", filepath.Join(xdg, "keytree"))
			}
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
			"exitcode":  cmdExitCode,
			"treegrep":  cmdTreeGrep,
			"treehas":   cmdTreeHas,
			"modes":     cmdModes,
			"copytree":  cmdCopyTree,
			"writehex":  cmdWriteHex,
			"sub":       cmdSub,
			"capture":   cmdCapture,
			"randfile":  cmdRandFile,
			"rmtree":    cmdRmtree,
			"waitfile":  cmdWaitFile,
			"signalrun": cmdSignalRun,
			"chown":     cmdChown,
			"dirents":   cmdDirents,
		},
	}
}

// rmtree PATH... removes each PATH and everything under it, one entry at a
// time, deepest first. testscript's rm uses os.RemoveAll, which fails under
// Wine (.ci/wine/README.md).
func cmdRmtree(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: rmtree PATH...")
	}
	for _, arg := range args {
		var paths []string
		err := filepath.WalkDir(ts.MkAbs(arg), func(p string, _ fs.DirEntry, err error) error {
			if err != nil {
				return err
			}
			paths = append(paths, p)
			return nil
		})
		ts.Check(err)
		// WalkDir lists a directory before what it holds.
		for i := len(paths) - 1; i >= 0; i-- {
			ts.Check(os.Remove(paths[i]))
		}
	}
}

// snapshotStore holds the snapshots of every script; scripts run in
// parallel.
type snapshotStore struct {
	mu sync.Mutex
	m  map[string]map[string]string
}

func (s *snapshotStore) put(name string, digest map[string]string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[name] = digest
}

func (s *snapshotStore) get(name string) (map[string]string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	d, ok := s.m[name]
	return d, ok
}

// snapshot DIR NAME records every file under DIR (path, mode and content),
// except the lock file and the error log, which a failing command may touch.
func cmdSnapshot(ts *testscript.TestScript, neg bool, args []string, snaps *snapshotStore) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: snapshot DIR NAME")
	}
	snaps.put(ts.Name()+"/"+args[1], treeDigest(ts, ts.MkAbs(args[0])))
}

// unchanged DIR NAME fails if DIR differs from the snapshot NAME.
func cmdUnchanged(ts *testscript.TestScript, neg bool, args []string, snaps *snapshotStore) {
	if len(args) != 2 {
		ts.Fatalf("usage: unchanged DIR NAME")
	}
	before, ok := snaps.get(ts.Name() + "/" + args[1])
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
	off, err := strconv.Atoi(args[1])
	ts.Check(err)
	editFile(ts, args[0], func(data []byte) []byte {
		if off < 0 {
			off += len(data)
		}
		if off < 0 || off >= len(data) {
			ts.Fatalf("offset %s outside %s (%d bytes)", args[1], args[0], len(data))
		}
		data[off] ^= 0xff
		return data
	})
}

// editFile replaces the contents of the script's file name with what edit
// makes of them, keeping the file's mode.
func editFile(ts *testscript.TestScript, name string, edit func(data []byte) []byte) {
	p := ts.MkAbs(name)
	data, err := os.ReadFile(p)
	ts.Check(err)
	ts.Check(writeKeepMode(p, edit(data)))
}

// truncate FILE SIZE cuts a file to SIZE bytes; a negative SIZE cuts that
// many bytes off the end.
func cmdTruncate(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: truncate FILE SIZE")
	}
	n, err := strconv.ParseInt(args[1], 10, 64)
	ts.Check(err)
	p := ts.MkAbs(args[0])
	if n < 0 {
		fi, err := os.Stat(p)
		ts.Check(err)
		n += fi.Size()
		if n < 0 {
			ts.Fatalf("%s has only %d bytes", args[0], fi.Size())
		}
	}
	ts.Check(os.Truncate(p, n))
}

// filecount DIR N [REGEXP] checks how many files (not directories) lie under
// DIR, counting only those whose name matches REGEXP if it is given.
func cmdFileCount(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 && len(args) != 3 {
		ts.Fatalf("usage: filecount DIR N [REGEXP]")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	match := regexp.MustCompile("")
	if len(args) == 3 {
		match = regexp.MustCompile("^(?:" + args[2] + ")$")
	}
	n := 0
	ts.Check(filepath.WalkDir(ts.MkAbs(args[0]), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && match.MatchString(d.Name()) {
			n++
		}
		return err
	}))
	if (n == want) == neg {
		ts.Fatalf("%s holds %d files matching %q, want %d", args[0], n, match, want)
	}
}

func writeKeepMode(p string, data []byte) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	return os.WriteFile(p, data, fi.Mode().Perm())
}

// exitcode N PROG [ARGS...] runs PROG, as exec does, and checks that it
// exits with status N. Its stdout and stderr are kept for stdout and stderr.
func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG [ARGS...]")
	}
	want, err := strconv.Atoi(args[0])
	ts.Check(err)
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("run %s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// walkFiles calls fn with every regular file under root.
func walkFiles(ts *testscript.TestScript, root string, fn func(path string, data []byte)) {
	ts.Check(filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		fn(p, data)
		return nil
	}))
}

// treegrep DIR REGEXP succeeds if some file under DIR matches REGEXP; with !,
// if none does.
func cmdTreeGrep(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: treegrep DIR REGEXP")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	checkHits(ts, neg, args[0], func(_ string, data []byte) bool { return re.Match(data) },
		fmt.Sprintf("%q found in", args[1]), fmt.Sprintf("%q found in no file under %s", args[1], args[0]))
}

// treehas DIR FILE succeeds if some file under DIR (other than FILE itself)
// contains all of FILE's bytes; with !, if none does.
func cmdTreeHas(ts *testscript.TestScript, neg bool, args []string) {
	if len(args) != 2 {
		ts.Fatalf("usage: treehas DIR FILE")
	}
	needlePath := ts.MkAbs(args[1])
	needle, err := os.ReadFile(needlePath)
	ts.Check(err)
	if len(needle) == 0 {
		ts.Fatalf("%s is empty", args[1])
	}
	checkHits(ts, neg, args[0], func(p string, data []byte) bool { return p != needlePath && bytes.Contains(data, needle) },
		fmt.Sprintf("the contents of %s are in", args[1]), fmt.Sprintf("no file under %s contains %s", args[0], args[1]))
}

// checkHits collects the files under dir that match accepts. With neg it
// fails the script if there are any (the message is found and their list),
// without, if there are none (the message is none).
func checkHits(ts *testscript.TestScript, neg bool, dir string, match func(p string, data []byte) bool, found, none string) {
	var hits []string
	walkFiles(ts, ts.MkAbs(dir), func(p string, data []byte) {
		if match(p, data) {
			hits = append(hits, p)
		}
	})
	switch {
	case neg && len(hits) > 0:
		ts.Fatalf("%s %s", found, strings.Join(hits, ", "))
	case !neg && len(hits) == 0:
		ts.Fatalf("%s", none)
	}
}

// modes DIR FILEPERM DIRPERM checks the permission bits of DIR and of every
// file and directory under it (Unix only; on Windows it passes).
func cmdModes(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: modes DIR FILEPERM DIRPERM")
	}
	if runtime.GOOS == "windows" {
		return
	}
	filePerm, err := strconv.ParseUint(args[1], 8, 32)
	ts.Check(err)
	dirPerm, err := strconv.ParseUint(args[2], 8, 32)
	ts.Check(err)
	var bad []string
	n := 0
	ts.Check(filepath.WalkDir(ts.MkAbs(args[0]), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(filePerm)
		if d.IsDir() {
			want = fs.FileMode(dirPerm)
		}
		n++
		if info.Mode().Perm() != want {
			bad = append(bad, fmt.Sprintf("%s has mode %04o, want %04o", p, info.Mode().Perm(), want))
		}
		return nil
	}))
	if len(bad) > 0 {
		ts.Fatalf("%s", strings.Join(bad, "\n"))
	}
	ts.Logf("%d entries under %s have the expected modes", n, args[0])
}

// copytree SRC DST copies a directory tree to DST, which must not exist,
// keeping permission bits whatever the umask.
func cmdCopyTree(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: copytree SRC DST")
	}
	src, dst := ts.MkAbs(args[0]), ts.MkAbs(args[1])
	if _, err := os.Lstat(dst); err == nil {
		ts.Fatalf("%s exists", args[1])
	}
	ts.Check(filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, err := filepath.Rel(src, p)
		if err != nil {
			return err
		}
		to := filepath.Join(dst, r)
		info, err := d.Info()
		if err != nil {
			return err
		}
		switch {
		case d.IsDir():
			if err := os.Mkdir(to, 0o700); err != nil {
				return err
			}
		case d.Type().IsRegular():
			data, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(to, data, 0o600); err != nil {
				return err
			}
		default:
			return fmt.Errorf("%s is not a file or directory", p)
		}
		return os.Chmod(to, info.Mode().Perm())
	}))
}

// writehex FILE HEX... writes the bytes the HEX arguments spell, one after
// the other, to FILE.
func cmdWriteHex(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 2 {
		ts.Fatalf("usage: writehex FILE HEX...")
	}
	data, err := hex.DecodeString(strings.Join(args[1:], ""))
	ts.Check(err)
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), data, 0o644))
}

// sub FILE REGEXP REPLACEMENT replaces every match of REGEXP in FILE, keeping
// the file's mode; \n in REPLACEMENT is a newline. It fails if nothing
// matches, so an edit cannot silently miss.
func cmdSub(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: sub FILE REGEXP REPLACEMENT")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	repl := strings.ReplaceAll(args[2], `\n`, "\n")
	editFile(ts, args[0], func(data []byte) []byte {
		if !re.Match(data) {
			ts.Fatalf("%q does not occur in %s", args[1], args[0])
		}
		return re.ReplaceAll(data, []byte(repl))
	})
}

// capture VAR REGEXP sets the environment variable VAR to the first
// submatch of REGEXP in the last command's standard output.
func cmdCapture(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: capture VAR REGEXP")
	}
	re, err := regexp.Compile(args[1])
	ts.Check(err)
	m := re.FindStringSubmatch(ts.ReadFile("stdout"))
	if len(m) < 2 {
		ts.Fatalf("%q does not match stdout", args[1])
	}
	ts.Setenv(args[0], m[1])
}

// randfile FILE SIZE writes SIZE bytes of pseudo-random data, the same on
// every run, to FILE.
func cmdRandFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: randfile FILE SIZE")
	}
	n, err := strconv.Atoi(args[1])
	ts.Check(err)
	r := rand.NewChaCha8([32]byte{'k', 'e', 'y', 't', 'r', 'e', 'e'})
	data := make([]byte, n)
	_, _ = r.Read(data) // ChaCha8.Read always fills data and returns nil
	ts.Check(os.WriteFile(ts.MkAbs(args[0]), data, 0o644))
}
