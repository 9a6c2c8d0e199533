package keystore

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// cliWords matches what names keytree's command line: "keytree " and one of
// its top-level commands (commands/main.go), a long flag, or one of its
// environment variables.
var cliWords = regexp.MustCompile(`keytree (init|status|key-encryptions|errorlog|keystore|smk|credential|dmk|db|secret|doctor|version|completion|help)\b|--[A-Za-z]|KEYTREE_`)

// cliWordsAllowed are the strings of package keystore that name the command
// line and stay, by file and exact value. None is a hint (hints name it
// through a Remedy).
var cliWordsAllowed = map[string]string{
	// The warning of a machine encryption that smk.toml disowns. Warnings
	// reach the CLI as words (Options.Warning), with no remedy.
	"smk.go: run 'keytree smk machine-protection on' to turn machine protection back on, or 'keytree smk machine-protection off' to remove it": "warning",
	// An error's text, not its hint: what keytree does with a missing
	// protector directory, which the text states with the flag.
	"protectors.go: the %s %s does not exist, and keytree creates one only at init or when given --create-protector-dirs": "error text",
	// Not a command: "a keytree keystore backup" is a kind of file, a
	// backup of a keytree keystore.
	"keystorebackup.go: %s is not a keytree keystore backup: %s": "file kind",
}

// TestNoCLIWords fails when a string of package keystore (and the packages
// beneath it, but for the vendored estimator) names keytree's commands,
// flags or environment variables: that wording belongs to the commands
// package, to which keystore hands a Remedy (ARCHITECTURE.md). It reads
// every non-test file, for every GOOS, and checks each string literal and
// each concatenation of literals.
func TestNoCLIWords(t *testing.T) {
	used := map[string]bool{}
	files := 0
	err := filepath.WalkDir(".", func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if d.Name() == "testdata" || d.Name() == "zxcvbn" {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		files++
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		for _, s := range cliStrings(f) {
			key := filepath.ToSlash(path) + ": " + s.value
			if _, ok := cliWordsAllowed[key]; ok {
				used[key] = true
				continue
			}
			t.Errorf("%s: %q names keytree's command line (%q): give the error a Remedy, worded in commands/remedy.go",
				fset.Position(s.pos), s.value, s.match)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 40 {
		t.Fatalf("read only %d files of package keystore", files)
	}
	for key := range cliWordsAllowed {
		if !used[key] {
			t.Errorf("allowed string not found (remove it from cliWordsAllowed): %s", key)
		}
	}
}

type cliString struct {
	pos   token.Pos
	value string
	match string
}

// cliStrings returns the strings of f that match cliWords: a literal, or a
// concatenation of literals ("keytree " + "smk") whose match spans two of
// them.
func cliStrings(f *ast.File) []cliString {
	var found []cliString
	inChain := map[ast.Node]bool{} // a + inside a chain already checked
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if n.Kind != token.STRING {
				return true
			}
			s, err := strconv.Unquote(n.Value)
			if err != nil {
				return true
			}
			if m := cliWords.FindString(s); m != "" {
				found = append(found, cliString{n.Pos(), s, m})
			}
		case *ast.BinaryExpr:
			if n.Op != token.ADD || inChain[n] {
				return true
			}
			var pieces []string
			concatPieces(n, &pieces, inChain)
			joined := strings.Join(pieces, "")
			for _, loc := range cliWords.FindAllStringIndex(joined, -1) {
				if !withinOnePiece(pieces, loc[0], loc[1]) {
					found = append(found, cliString{n.Pos(), joined, joined[loc[0]:loc[1]]})
				}
			}
			// The operands (literals, calls) are checked on their own.
		}
		return true
	})
	return found
}

// concatPieces flattens a chain of + into its operands: a string literal's
// value, or "\x00" for anything else, so that no match spans it. It marks
// the chain's inner + in inChain.
func concatPieces(e ast.Expr, pieces *[]string, inChain map[ast.Node]bool) {
	switch e := e.(type) {
	case *ast.ParenExpr:
		concatPieces(e.X, pieces, inChain)
		return
	case *ast.BinaryExpr:
		if e.Op == token.ADD {
			inChain[e] = true
			concatPieces(e.X, pieces, inChain)
			concatPieces(e.Y, pieces, inChain)
			return
		}
	case *ast.BasicLit:
		if e.Kind == token.STRING {
			if s, err := strconv.Unquote(e.Value); err == nil {
				*pieces = append(*pieces, s)
				return
			}
		}
	}
	*pieces = append(*pieces, "\x00")
}

// withinOnePiece reports whether [start, end) of the joined pieces lies
// inside one of them.
func withinOnePiece(pieces []string, start, end int) bool {
	off := 0
	for _, p := range pieces {
		if off <= start && end <= off+len(p) {
			return true
		}
		off += len(p)
	}
	return false
}
