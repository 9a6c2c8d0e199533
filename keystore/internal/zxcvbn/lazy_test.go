package zxcvbn

// keytree: this file is not part of upstream. It checks the one change
// keytree made to the copy (README.md): the dictionaries, adjacency graphs,
// frequency lists and regexps are built on first use, not when the program
// starts.

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// initBudget is the most a package of the copy may allocate in its package
// initialization, in bytes. What is left there is small: a few small maps
// in matching and scoring (about 3 and 4 KB with Go 1.26), nothing in the
// others. Built
// eagerly, the dictionaries cost about 10 MB in matching, the frequency
// lists 1.5 MB, the adjacency graphs 36 KB, the regexp2 regexps 17 KB, the
// standard library regexps of matching and scoring about 10 KB each.
func initBudget(pkg string) int {
	if pkg == "matching" || pkg == "scoring" {
		return 6 << 10
	}
	return 1 << 10
}

// TestNothingBuiltAtStart runs this test binary again, without running a
// test, with GODEBUG=inittrace=1, and reads what each package's
// initialization allocated: the child process calls nothing, so whatever a
// package of the copy allocated was built at program start.
func TestNothingBuiltAtStart(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	godebug := "inittrace=1"
	if v := os.Getenv("GODEBUG"); v != "" {
		godebug = v + "," + godebug
	}
	cmd.Env = append(os.Environ(), "GODEBUG="+godebug)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if out, err := cmd.Output(); err != nil {
		t.Fatalf("%s -test.run=^$: %v\nstdout:\n%s\nstderr:\n%s", os.Args[0], err, out, stderr.Bytes())
	}

	// Compiled here, not in a package-level variable, which would count
	// against this package's own budget.
	initTraceLine := regexp.MustCompile(`^init (\S+) @.* ([0-9]+) bytes, ([0-9]+) allocs$`)
	prefix := reflect.TypeFor[Result]().PkgPath()
	lines, ours := 0, 0
	sc := bufio.NewScanner(&stderr)
	for sc.Scan() {
		m := initTraceLine.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		lines++
		pkg := m[1]
		if pkg != prefix && !strings.HasPrefix(pkg, prefix+"/") {
			continue
		}
		ours++
		n, _ := strconv.Atoi(m[2])
		short := strings.TrimPrefix(strings.TrimPrefix(pkg, prefix), "/")
		if budget := initBudget(short); n > budget {
			t.Errorf("package %s allocates %d bytes (%s allocs) when the program starts, over its budget of %d: "+
				"a package-level variable builds something that should be built on first use (README.md)",
				pkg, n, m[3], budget)
		}
	}
	if lines == 0 {
		// The runtime's trace format changed, or GODEBUG was ignored: a
		// check that reads nothing must not pass.
		t.Fatalf("no line of GODEBUG=inittrace=1 output understood; stderr:\n%s", stderr.Bytes())
	}
	t.Logf("%d packages traced, %d of them in %s", lines, ours, prefix)
}

// TestBuiltOnFirstUse checks that what is no longer built at start is built
// when asked for: a dictionary word, a l33t spelling, a keyboard walk, a date
// and a repeat are still recognized.
func TestBuiltOnFirstUse(t *testing.T) {
	for _, tc := range []struct {
		password, pattern string
		l33t              bool
	}{
		{"correcthorse", "dictionary", false},
		{"p4$$w0rd", "dictionary", true},
		{"zxcvfdsaqwer", "spatial", false},
		{"13/05/1987", "date", false},
		{"abcabcabc", "repeat", false},
	} {
		res := PasswordStrength(tc.password, nil)
		found := false
		for _, m := range res.Sequence {
			if m.Pattern == tc.pattern && m.L33t == tc.l33t {
				found = true
			}
		}
		if !found {
			t.Errorf("PasswordStrength(%q): no %s match (l33t: %v) in %d matches", tc.password, tc.pattern, tc.l33t, len(res.Sequence))
		}
	}
}
