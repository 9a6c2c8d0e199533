package commands

import (
	"bytes"
	"errors"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/keystore"
)

// TestExitStatusesDocumented: the statuses docs/cli-abi.md section 3 lists
// are exactly the ones commands.Main can return. The code's side is taken
// from the code, not from a list kept here: every exit* constant declared in
// main.go, and every status report returns, for success, a usage error, the
// orphans status, an unclassified error and each error category keystore
// declares. A status documented but never returned, returned but not
// documented, or declared but never returned, fails.
func TestExitStatusesDocumented(t *testing.T) {
	documented := documentedExitStatuses(t)
	declared := declaredExitConstants(t)
	produced := map[int]string{}
	e := &env{stdout: io.Discard, stderr: io.Discard}
	for what, err := range map[string]error{
		"success":                nil,
		"a usage error":          usagef("x"),
		"values left orphans":    errLeftOrphans,
		"an unclassified error":  errors.New("x"),
		"doctor's problems":      &errDoctorProblems{n: 1},
		"a program not found":    startError("x", exec.ErrNotFound),
		"a program not runnable": startError("x", fs.ErrPermission),
	} {
		produced[e.report(err)] = what
	}
	for name, kind := range keystoreKinds(t) {
		produced[e.report(&keystore.Error{Text: "x", Kind: kind})] = "keystore." + name
	}
	var producedCodes []int
	for code := range produced {
		producedCodes = append(producedCodes, code)
	}
	slices.Sort(producedCodes)
	if !slices.Equal(documented, producedCodes) {
		t.Errorf("docs/cli-abi.md section 3 lists statuses %v; report returns %v (%v)", documented, producedCodes, produced)
	}
	if !slices.Equal(declared, producedCodes) {
		t.Errorf("main.go declares exit statuses %v; report returns %v", declared, producedCodes)
	}
}

// documentedExitStatuses returns the statuses of the table in
// docs/cli-abi.md section 3, in order.
func documentedExitStatuses(t *testing.T) []int {
	t.Helper()
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
	if !slices.IsSorted(documented) {
		t.Errorf("docs/cli-abi.md section 3 lists statuses out of order: %v", documented)
	}
	return documented
}

// declaredExitConstants returns the values of the exit* constants that
// main.go declares, sorted.
func declaredExitConstants(t *testing.T) []int {
	t.Helper()
	var codes []int
	for _, vs := range valueSpecs(t, "main.go", token.CONST) {
		for i, name := range vs.Names {
			if !strings.HasPrefix(name.Name, "exit") || i >= len(vs.Values) {
				continue
			}
			lit, ok := vs.Values[i].(*ast.BasicLit)
			if !ok || lit.Kind != token.INT {
				t.Fatalf("main.go: %s is not an integer literal", name.Name)
			}
			n, _ := strconv.Atoi(lit.Value)
			codes = append(codes, n)
		}
	}
	slices.Sort(codes)
	return codes
}

// valueSpecs returns the constants (tok token.CONST) or variables
// (token.VAR) declared at the top level of the Go file at path.
func valueSpecs(t *testing.T, path string, tok token.Token) []*ast.ValueSpec {
	t.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, 0)
	if err != nil {
		t.Fatal(err)
	}
	var specs []*ast.ValueSpec
	for _, decl := range f.Decls {
		if gd, ok := decl.(*ast.GenDecl); ok && gd.Tok == tok {
			for _, spec := range gd.Specs {
				specs = append(specs, spec.(*ast.ValueSpec))
			}
		}
	}
	return specs
}

// keystoreKinds returns keystore's error categories by name, and checks
// that they are all the Err* variables keystore/errors.go declares: a new
// category must be added here, and so get its status checked.
func keystoreKinds(t *testing.T) map[string]error {
	t.Helper()
	kinds := map[string]error{
		"ErrDecryption":  keystore.ErrDecryption,
		"ErrNotFound":    keystore.ErrNotFound,
		"ErrExists":      keystore.ErrExists,
		"ErrCorrupt":     keystore.ErrCorrupt,
		"ErrLocked":      keystore.ErrLocked,
		"ErrPermissions": keystore.ErrPermissions,
		"ErrRefused":     keystore.ErrRefused,
		"ErrInvalid":     keystore.ErrInvalid,
	}
	var declared []string
	for _, vs := range valueSpecs(t, filepath.Join("..", "keystore", "errors.go"), token.VAR) {
		for _, name := range vs.Names {
			if strings.HasPrefix(name.Name, "Err") && name.IsExported() {
				declared = append(declared, name.Name)
			}
		}
	}
	slices.Sort(declared)
	known := slices.Sorted(maps.Keys(kinds))
	if !slices.Equal(declared, known) {
		t.Fatalf("keystore/errors.go declares error categories %v; this test knows %v", declared, known)
	}
	return kinds
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
