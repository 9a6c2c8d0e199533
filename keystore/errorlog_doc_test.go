package keystore

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// TestErrorLogLinesDocumented: the messages docs/cli-abi.md section 13
// lists are exactly the ones keystore writes to the error log. The code's
// side is every call of logEvent in the package, with the format of the
// message it logs (a fmt.Sprintf in the call, or assigned to the variable
// it passes); each must match a documented line, and each documented line
// must be matched by one.
func TestErrorLogLinesDocumented(t *testing.T) {
	documented := documentedErrorLogLines(t)
	formats := logEventFormats(t)
	if len(formats) == 0 {
		t.Fatal("found no call of logEvent")
	}
	used := make([]bool, len(documented))
	for _, f := range formats {
		re := formatRegexp(f.format)
		found := false
		for i, d := range documented {
			if re.MatchString(d) {
				found, used[i] = true, true
			}
		}
		if !found {
			t.Errorf("%s logs %q, which docs/cli-abi.md section 13 does not list", f.pos, f.format)
		}
	}
	for i, d := range documented {
		if !used[i] {
			t.Errorf("docs/cli-abi.md section 13 lists %q, which no call of logEvent writes", d)
		}
	}
}

// documentedErrorLogLines returns the lines of the code block in
// docs/cli-abi.md section 13.
func documentedErrorLogLines(t *testing.T) []string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "cli-abi.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## 13. The error log\n")
	if !ok {
		t.Fatal("docs/cli-abi.md has no section 13. The error log")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	_, block, ok := strings.Cut(section, "\n```\n")
	if !ok {
		t.Fatal("docs/cli-abi.md section 13 has no code block of messages")
	}
	block, _, _ = strings.Cut(block, "\n```")
	return strings.Split(block, "\n")
}

type logFormat struct {
	pos    string
	format string
}

// logEventFormats finds every call of logEvent in the package's non-test
// files and the format of its message.
func logEventFormats(t *testing.T) []logFormat {
	t.Helper()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	var out []logFormat
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, decl := range f.Decls {
			fn, ok := decl.(*ast.FuncDecl)
			if !ok || fn.Body == nil {
				continue
			}
			// The formats assigned to each variable in this function.
			assigned := map[string][]string{}
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				as, ok := n.(*ast.AssignStmt)
				if !ok || len(as.Lhs) != len(as.Rhs) {
					return true
				}
				for i, lhs := range as.Lhs {
					if id, ok := lhs.(*ast.Ident); ok {
						if format, ok := sprintfFormat(as.Rhs[i]); ok {
							assigned[id.Name] = append(assigned[id.Name], format)
						}
					}
				}
				return true
			})
			ast.Inspect(fn.Body, func(n ast.Node) bool {
				call, ok := n.(*ast.CallExpr)
				if !ok {
					return true
				}
				sel, ok := call.Fun.(*ast.SelectorExpr)
				if !ok || sel.Sel.Name != "logEvent" || len(call.Args) != 1 {
					return true
				}
				pos := fset.Position(call.Pos()).String()
				if format, ok := sprintfFormat(call.Args[0]); ok {
					out = append(out, logFormat{pos, format})
					return true
				}
				id, ok := call.Args[0].(*ast.Ident)
				if !ok || len(assigned[id.Name]) == 0 {
					t.Errorf("%s: cannot tell what logEvent logs; pass it fmt.Sprintf with a literal format, or a variable assigned one", pos)
					return true
				}
				for _, format := range assigned[id.Name] {
					out = append(out, logFormat{pos, format})
				}
				return true
			})
		}
	}
	return out
}

// sprintfFormat returns the literal format of a fmt.Sprintf call.
func sprintfFormat(e ast.Expr) (string, bool) {
	call, ok := e.(*ast.CallExpr)
	if !ok || len(call.Args) == 0 {
		return "", false
	}
	sel, ok := call.Fun.(*ast.SelectorExpr)
	if !ok || sel.Sel.Name != "Sprintf" {
		return "", false
	}
	if pkg, ok := sel.X.(*ast.Ident); !ok || pkg.Name != "fmt" {
		return "", false
	}
	lit, ok := call.Args[0].(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	s, err := strconv.Unquote(lit.Value)
	return s, err == nil
}

// formatRegexp matches what a format can produce: each verb stands for any
// text.
func formatRegexp(format string) *regexp.Regexp {
	parts := regexp.MustCompile(`%[-+# 0-9.]*[a-zA-Z]`).Split(format, -1)
	for i, p := range parts {
		parts[i] = regexp.QuoteMeta(p)
	}
	return regexp.MustCompile("^" + strings.Join(parts, ".+") + "$")
}
