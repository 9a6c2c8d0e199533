package commands

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestExitStatusesDocumented: the statuses docs/cli-abi.md section 3 lists
// are exactly the ones commands.Main returns.
func TestExitStatusesDocumented(t *testing.T) {
	code := []int{exitOK, exitError, exitUsage, exitDecryption, exitNotFound, exitExists, exitCorrupt,
		exitLocked, exitPermissions, exitRefused, exitOrphaned, exitProblems}
	data, err := os.ReadFile(filepath.Join("..", "docs", "cli-abi.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## 3. Exit statuses\n")
	if !ok {
		t.Fatal("docs/cli-abi.md has no section 3. Exit statuses")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	var documented []int
	for _, m := range regexp.MustCompile(`(?m)^\| (\d+) \|`).FindAllStringSubmatch(section, -1) {
		n, _ := strconv.Atoi(m[1])
		documented = append(documented, n)
	}
	slices.Sort(code)
	if !slices.Equal(documented, code) {
		t.Fatalf("docs/cli-abi.md section 3 lists statuses %v; the code returns %v", documented, code)
	}
}

// TestLeftOrphansStatus: a forced operation that orphaned values exits 10
// and report adds no line to what the command printed; wrapped, it is still
// 10.
func TestLeftOrphansStatus(t *testing.T) {
	for _, err := range []error{errLeftOrphans, fmt.Errorf("smk regenerate: %w", errLeftOrphans)} {
		var stdout, stderr bytes.Buffer
		e := &env{stdout: &stdout, stderr: &stderr}
		if got := e.report(err); got != exitOrphaned {
			t.Fatalf("report(%v) = %d, want %d", err, got, exitOrphaned)
		}
		if stdout.Len() > 0 || stderr.Len() > 0 {
			t.Fatalf("report printed %q, %q; want nothing", stdout.String(), stderr.String())
		}
	}
}
