package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"testing"
)

// tourInstallLine is the tour's first line. It is the one line the test
// does not run: it would fetch keytree over the network (@latest), and the
// test must check this tree. The test puts what it would install, keytree
// built from this tree, where it would install it, and runs every other
// line of the tour as written.
const tourInstallLine = "go install github.com/keytree-dev/keytree/cmd/keytree@latest   # in a clone: go install ./cmd/keytree"

// TestReadmeTour runs the five-minute tour of README.md, every shell block
// of it in order, as one script, in a shell started with env -i: no
// variable but a fresh HOME and PATH=/usr/bin:/bin, no file the tour does
// not create itself. The tour must keep working
// as the code changes, as written: a reader pastes it into a new shell.
//
// The keytree it installs is this test binary (keytree's own Main, with
// the scrypt cost lowered for tests, see TestMain), copied to
// $HOME/go/bin/keytree under the fresh HOME: where the install line puts
// keytree (go install's default, GOBIN and GOPATH being unset).
func TestReadmeTour(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the tour is a POSIX shell session")
	}
	blocks := tourBlocks(t, filepath.Join("..", "..", "README.md"))
	first, rest, _ := strings.Cut(blocks[0], "\n")
	if first != tourInstallLine {
		t.Fatalf("the tour's first line is %q; the test replaces only %q (update tourInstallLine with the README)", first, tourInstallLine)
	}
	script := ": keytree is installed, by the test, where the install line puts it\n" + rest + strings.Join(blocks[1:], "")

	self, err := exec.LookPath("keytree") // TestMain's copy of this binary
	if err != nil {
		t.Fatal(err)
	}
	home := t.TempDir()
	if err := os.MkdirAll(filepath.Join(home, "go", "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyFile(self, filepath.Join(home, "go", "bin", "keytree")); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("env", "-i", "HOME="+home, "PATH=/usr/bin:/bin", "sh", "-eux", "-c", script)
	cmd.Dir = home
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the tour failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"error 15466: An error occurred during decryption.",
		"exit status 3",
		"account encryption (0x01):  was invalid",
		`"name": "backup-db"`,
		"svc_backup got a password of 24 characters",
		"user = svc_backup",
		"\nidentities: 2\n",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the tour's output lacks %q\n%s", want, out)
		}
	}
	// Each secret get in the tour compares the value with the file it
	// came from, and says so.
	if n := bytes.Count(out, []byte("\nthe same bytes\n")); n != 3 {
		t.Errorf("the tour's values came back intact %d times, want 3\n%s", n, out)
	}

	// It cleaned up after itself: its scratch directory is gone, and it
	// touched no default keytree directory under HOME.
	m := regexp.MustCompile(`(?m)^\+ tour=(.+)$`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("the tour's trace does not show its scratch directory\n%s", out)
	}
	if _, err := os.Stat(string(m[1])); !os.IsNotExist(err) {
		t.Errorf("the tour left its scratch directory %s behind (%v)", m[1], err)
	}
	for _, p := range []string{".local", filepath.Join(".config", "keytree")} {
		if _, err := os.Stat(filepath.Join(home, p)); !os.IsNotExist(err) {
			t.Errorf("the tour created ~/%s: it must use only its scratch directory", p)
		}
	}
}

// TestReadmeFirstCommands: the README opens with the two commands that work
// in a fresh clone: one that installs and runs keytree, and the tests.
func TestReadmeFirstCommands(t *testing.T) {
	data, err := os.ReadFile(filepath.Join("..", "..", "README.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, block, _ := strings.Cut(string(data), "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	var cmds []string
	for _, line := range strings.Split(strings.TrimSpace(block), "\n") {
		cmd, _, _ := strings.Cut(line, "#")
		cmds = append(cmds, strings.TrimSpace(cmd))
	}
	want := []string{`go install ./cmd/keytree && "$(go env GOPATH)/bin/keytree" version`, "go test ./..."}
	if strings.Join(cmds, "\n") != strings.Join(want, "\n") {
		t.Errorf("README.md opens with %q, want %q", cmds, want)
	}
}

// tourBlocks returns the ```sh blocks under README.md's "A five-minute
// tour" heading, in order, each with its final newline.
func tourBlocks(t *testing.T, path string) []string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var blocks []string
	var sb strings.Builder
	inTour, inBlock := false, false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			inTour = line == "## A five-minute tour"
		case inTour && !inBlock && line == "```sh":
			inBlock = true
			sb.Reset()
		case inBlock && line == "```":
			inBlock = false
			blocks = append(blocks, sb.String())
		case inBlock:
			sb.WriteString(line + "\n")
		}
	}
	if len(blocks) < 5 {
		t.Fatalf("README.md's tour has %d shell blocks; the heading or the blocks moved", len(blocks))
	}
	return blocks
}
