package main

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/rogpeppe/go-internal/testscript"
)

// runHelperName is the name under which the test binary is the program
// that the run_* scenarios have keytree run start: it reports what it got
// (variables, files, its command line) and does what a program under
// keytree run may do (exit with a status, die of a signal, catch one,
// outlive keytree). TestMain puts it on PATH beside keytree; it is a Go
// program, so the scenarios that need no Unix feature run on Windows too.
const runHelperName = "runhelper"

// helperWait bounds every wait of the helper: a scenario that goes wrong
// fails after it instead of hanging.
const helperWait = 10 * time.Second

// runHelperMain is the helper's main; it returns the exit status.
//
//	env VAR...            VAR="value" (Go-quoted, byte for byte) or VAR unset, one a line
//	names                 the names of every variable, sorted, one a line
//	cat VAR...            the bytes of the files whose paths are in the VARs, one after the other
//	stat VAR              the path in VAR, its directory, and the kind and mode of the
//	                      file, the directory and the lock file beside it
//	args ARG...           its arguments, Go-quoted, one a line
//	proc VAR              (Linux) its own and its parent's command line, and whether
//	                      its environment holds VAR's value
//	touch FILE            creates FILE (a sign that it ran)
//	exit N                exits with status N
//	kill SIG              sends itself SIG (TERM, INT, HUP, KILL)
//	trap READY MARKER     catches SIGTERM, SIGHUP, SIGINT; writes its parent's pid to
//	                      READY, waits for a signal, writes its name to MARKER, exits 3
//	hold VAR READY RELEASE
//	                      prints path=<VAR's path> and dir=<its directory>, writes its
//	                      parent's pid to READY, waits until RELEASE exists or its parent
//	                      is gone ("parent gone"), then prints content=<the file's
//	                      content, Go-quoted> or "gone"
func runHelperMain(args []string) int {
	if len(args) == 0 {
		fmt.Fprintln(os.Stderr, "runhelper: no subcommand")
		return 90
	}
	cmd, args := args[0], args[1:]
	switch cmd {
	case "env":
		for _, name := range args {
			if v, ok := os.LookupEnv(name); ok {
				fmt.Printf("%s=%q\n", name, v)
			} else {
				fmt.Printf("%s unset\n", name)
			}
		}
	case "names":
		var names []string
		for _, kv := range os.Environ() {
			if name, _, ok := strings.Cut(kv, "="); ok && name != "" {
				names = append(names, name)
			}
		}
		sort.Strings(names)
		fmt.Println(strings.Join(names, "\n"))
	case "cat":
		for _, name := range args {
			data, err := os.ReadFile(os.Getenv(name))
			if err != nil {
				fmt.Fprintln(os.Stderr, "runhelper:", err)
				return 91
			}
			os.Stdout.Write(data)
		}
	case "stat":
		p := os.Getenv(args[0])
		fi, err1 := os.Lstat(p)
		di, err2 := os.Lstat(dirOf(p))
		li, err3 := os.Lstat(dirOf(p) + ".lock")
		if err := errors.Join(err1, err2, err3); err != nil {
			fmt.Fprintln(os.Stderr, "runhelper:", err)
			return 91
		}
		fmt.Printf("path=%s\ndir=%s\n", p, dirOf(p))
		fmt.Printf("file %s %04o\ndir %s %04o\nlock %s %04o\n", kind(fi), fi.Mode().Perm(), kind(di), di.Mode().Perm(), kind(li), li.Mode().Perm())
	case "args":
		for _, a := range args {
			fmt.Printf("%q\n", a)
		}
	case "proc":
		self, err1 := os.ReadFile("/proc/self/cmdline")
		parent, err2 := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", os.Getppid()))
		environ, err3 := os.ReadFile("/proc/self/environ")
		if err := errors.Join(err1, err2, err3); err != nil {
			fmt.Fprintln(os.Stderr, "runhelper:", err)
			return 91
		}
		fmt.Printf("self: %s\n", bytes.ReplaceAll(self, []byte{0}, []byte{' '}))
		fmt.Printf("parent: %s\n", bytes.ReplaceAll(parent, []byte{0}, []byte{' '}))
		v := os.Getenv(args[0])
		fmt.Printf("environ holds %s's value: %v\n", args[0], v != "" && bytes.Contains(environ, []byte(args[0]+"="+v)))
	case "touch":
		if err := os.WriteFile(args[0], []byte("ran\n"), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "runhelper:", err)
			return 91
		}
	case "exit":
		n, err := strconv.Atoi(args[0])
		if err != nil {
			return 90
		}
		fmt.Printf("runhelper exits with %d\n", n)
		return n
	case "kill":
		p, _ := os.FindProcess(os.Getpid())
		if err := p.Signal(signalNamed(args[0])); err != nil {
			fmt.Fprintln(os.Stderr, "runhelper:", err)
			return 91
		}
		time.Sleep(helperWait)
		return 92
	case "trap":
		ch := make(chan os.Signal, 1)
		signal.Notify(ch, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGINT)
		if err := writeReady(args[0]); err != nil {
			fmt.Fprintln(os.Stderr, "runhelper:", err)
			return 91
		}
		select {
		case sig := <-ch:
			name := strings.ToUpper(strings.TrimPrefix(sig.String(), "signal "))
			if err := os.WriteFile(args[1], []byte(name+"\n"), 0o644); err != nil {
				fmt.Fprintln(os.Stderr, "runhelper:", err)
				return 91
			}
			fmt.Printf("runhelper caught %s\n", name)
			return 3
		case <-time.After(helperWait):
			return 92
		}
	case "hold":
		ppid := os.Getppid()
		p := os.Getenv(args[0])
		fmt.Printf("path=%s\ndir=%s\n", p, dirOf(p))
		if err := writeReady(args[1]); err != nil {
			fmt.Fprintln(os.Stderr, "runhelper:", err)
			return 91
		}
		for deadline := time.Now().Add(helperWait); ; time.Sleep(10 * time.Millisecond) {
			if _, err := os.Stat(args[2]); err == nil {
				break
			}
			if os.Getppid() != ppid {
				fmt.Println("parent gone")
				break
			}
			if time.Now().After(deadline) {
				return 92
			}
		}
		if data, err := os.ReadFile(p); err == nil {
			fmt.Printf("content=%q\n", data)
		} else {
			fmt.Println("gone")
		}
	default:
		fmt.Fprintln(os.Stderr, "runhelper: unknown subcommand", cmd)
		return 90
	}
	return 0
}

// kind names the kind of file fi describes.
func kind(fi os.FileInfo) string {
	switch t := fi.Mode().Type(); {
	case t == 0:
		return "regular"
	case t == os.ModeDir:
		return "dir"
	case t == os.ModeSymlink:
		return "symlink"
	default:
		return t.String()
	}
}

// dirOf is the directory of p, as the helper reports it.
func dirOf(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[:i]
	}
	return "."
}

// writeReady writes the parent's (keytree's) pid to path, whole: written
// to a temporary file and renamed, so that a poller never reads half of it.
func writeReady(path string) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(strconv.Itoa(os.Getppid())+"\n"), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}

func signalNamed(name string) os.Signal {
	switch name {
	case "TERM":
		return syscall.SIGTERM
	case "INT":
		return syscall.SIGINT
	case "HUP":
		return syscall.SIGHUP
	case "KILL":
		return syscall.SIGKILL
	}
	panic("unknown signal " + name)
}

// waitfile FILE waits (at most helperWait) until FILE exists.
func cmdWaitFile(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: waitfile FILE")
	}
	if !pollFile(ts.MkAbs(args[0]), helperWait, nil) {
		ts.Fatalf("%s did not appear within %s", args[0], helperWait)
	}
}

// pollFile waits until path exists and is not empty, for at most d or until
// cancel is closed.
func pollFile(path string, d time.Duration, cancel <-chan struct{}) bool {
	for deadline := time.Now().Add(d); time.Now().Before(deadline); {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 0 {
			return true
		}
		select {
		case <-cancel:
			return false
		case <-time.After(10 * time.Millisecond):
		}
	}
	return false
}

// signalrun SIG READY STATUS PROG [ARGS...] runs PROG, as exec does; once
// the file READY holds a pid (runhelper trap and hold write keytree's), it
// sends that process signal SIG (TERM, HUP, INT, KILL), and checks that PROG
// exits with status STATUS (128+N when signal N ended it, as a shell
// reports it). Its stdout and stderr are kept for stdout and stderr.
func cmdSignalRun(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 4 {
		ts.Fatalf("usage: signalrun SIG READY STATUS PROG [ARGS...]")
	}
	sig := signalNamed(args[0])
	ready := ts.MkAbs(args[1])
	want, err := strconv.Atoi(args[2])
	ts.Check(err)
	cancel := make(chan struct{})
	sent := make(chan error, 1)
	go func() {
		if !pollFile(ready, helperWait, cancel) {
			sent <- fmt.Errorf("%s was not written", args[1])
			return
		}
		data, err := os.ReadFile(ready)
		if err != nil {
			sent <- err
			return
		}
		pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
		if err != nil {
			sent <- err
			return
		}
		p, err := os.FindProcess(pid)
		if err == nil {
			err = p.Signal(sig)
		}
		sent <- err
	}()
	got := exitStatus(ts, args[3], ts.Exec(args[3], args[4:]...))
	close(cancel)
	if err := <-sent; err != nil {
		ts.Fatalf("signal %s: %v", args[0], err)
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[3], got, want)
	}
}

// exitStatus is a finished command's status as a shell reports it: 128+N
// when signal N ended it.
func exitStatus(ts *testscript.TestScript, prog string, err error) int {
	if err == nil {
		return 0
	}
	var ee *exec.ExitError
	if !errors.As(err, &ee) {
		ts.Fatalf("run %s: %v", prog, err)
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ee.ExitCode()
}

// chown PATH UID changes the owner of PATH, not following a link (as root).
func cmdChown(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: chown PATH UID")
	}
	uid, err := strconv.Atoi(args[1])
	ts.Check(err)
	ts.Check(os.Lchown(ts.MkAbs(args[0]), uid, -1))
}

// dirents DIR N [REGEXP] checks how many entries (of any kind) DIR itself
// holds, counting only those whose name matches REGEXP if it is given.
func cmdDirents(ts *testscript.TestScript, neg bool, args []string) {
	if neg || (len(args) != 2 && len(args) != 3) {
		ts.Fatalf("usage: dirents DIR N [REGEXP]")
	}
	want, err := strconv.Atoi(args[1])
	ts.Check(err)
	match := regexp.MustCompile("")
	if len(args) == 3 {
		match = regexp.MustCompile("^(?:" + args[2] + ")$")
	}
	entries, err := os.ReadDir(ts.MkAbs(args[0]))
	ts.Check(err)
	var names []string
	for _, e := range entries {
		if match.MatchString(e.Name()) {
			names = append(names, e.Name())
		}
	}
	if len(names) != want {
		ts.Fatalf("%s holds %d entries matching %q, want %d: %s", args[0], len(names), match, want, strings.Join(names, " "))
	}
}
