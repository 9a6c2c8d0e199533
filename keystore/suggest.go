package keystore

import (
	"fmt"
	"sort"
	"strings"
)

// An unknown name is most often a typo or a wrong guess. The error that
// reports it says what exists instead: the nearest name, if one is close,
// else the names themselves if there are few. Only names are read (a
// directory listing, on the error path only); names come from disk and the
// CLI escapes them when it prints.

// maxListedNames is how many names a "not found" error lists in full.
const maxListedNames = 5

// nameSuggestion returns a detail line for an unknown name among names:
// "did you mean 'x'?", or the list of names when there are few, or "".
// plural names the kind ("credentials").
func nameSuggestion(name string, names []string, plural string) string {
	if len(names) == 0 {
		return fmt.Sprintf("there are no %s", plural)
	}
	if near := NearestName(name, names); near != "" {
		return fmt.Sprintf("did you mean '%s'?", near)
	}
	if len(names) > maxListedNames {
		return ""
	}
	sort.Strings(names)
	quoted := make([]string, len(names))
	for i, n := range names {
		quoted[i] = "'" + n + "'"
	}
	return fmt.Sprintf("the %s are: %s", plural, strings.Join(quoted, ", "))
}

// NearestName is the name closest to name by edit distance, if it is close
// enough to be a typo: at most 2 edits, and at most a third of the name.
// Case differences count as edits, but a name that differs only in case is
// always close. The CLI uses it for command names too.
func NearestName(name string, names []string) string {
	best, bestDist := "", -1
	for _, n := range names {
		if n == name {
			continue
		}
		d := editDistance(name, n)
		if strings.EqualFold(n, name) {
			d = 0
		}
		if bestDist < 0 || d < bestDist || (d == bestDist && n < best) {
			best, bestDist = n, d
		}
	}
	limit := min(2, max(1, len([]rune(name))/3))
	if bestDist < 0 || bestDist > limit {
		return ""
	}
	return best
}

// editDistance is the optimal string alignment distance between a and b,
// in runes: Levenshtein's insertions, deletions and substitutions, plus the
// swap of two adjacent runes, the commonest typo ("gte" for "get"), as one
// edit.
func editDistance(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	d := make([][]int, len(ra)+1)
	for i := range d {
		d[i] = make([]int, len(rb)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(ra); i++ {
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(ra)][len(rb)]
}

// suggestName adds to e, an error about the unknown name of a credential,
// database or secret (db/name), a detail line saying what exists. The
// names come from directory listings (names.go); one that cannot be listed
// gives none.
func (ks *Keystore) suggestName(e *Error, kind, name string) *Error {
	var line string
	switch kind {
	case "credential":
		names, _ := ks.CredentialNames()
		line = nameSuggestion(name, names, "credentials")
	case "database":
		names, _ := ks.DatabaseNames()
		line = nameSuggestion(name, names, "databases")
	case "secret":
		db, short, _ := strings.Cut(name, "/")
		names, _ := ks.SecretNames(db)
		line = nameSuggestion(short, names, fmt.Sprintf("secrets in database '%s'", db))
		if strings.HasPrefix(line, "did you mean '") {
			line = "did you mean '" + db + "/" + strings.TrimPrefix(line, "did you mean '")
		}
	}
	if line != "" {
		e.Detail = append(e.Detail, line)
	}
	// A remedy that creates the database under the mistyped name would
	// make a second database beside the one meant.
	if strings.HasPrefix(line, "did you mean") && e.Remedy.Kind != RemedyNone {
		e.Remedy.IfNew = true
	}
	return e
}
