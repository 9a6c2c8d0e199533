package formats

import (
	"bytes"
	"fmt"
	"unicode/utf8"
)

// Limits on the shape of a TOML metadata file, checked by scanTOML before the
// TOML decoder sees the file.
//
// The decoder's work grows with the square of a key's depth: it keeps every
// key as its full path, and a file of 40 KB of nested inline tables
// (a = {a = {a = ...}}) costs it more than a minute and gigabytes, with an
// error listing every one of those paths. keytree's own files need far less:
// the deepest key is two parts (password.id, retired.kept_encryptions), the
// deepest value three levels (retired = [{kept_encryptions = ["..."]}], a
// hand-written form of [[retired]]), and the longest key 18 bytes. The
// limits leave room above that, and below them the decoder's work is linear
// in the size of the file.
const (
	// MaxTOMLNesting bounds the arrays and inline tables open around a value.
	MaxTOMLNesting = 4
	// MaxTOMLKeyDepth bounds the parts of a key's full path: its table's
	// name, its own dotted parts and those of the inline tables around it.
	MaxTOMLKeyDepth = 4
	// MaxTOMLKeyLength bounds one part of a key, in bytes as written (with
	// quotes and escapes).
	MaxTOMLKeyLength = 64
	// MaxTOMLKeys bounds the keys of a file (key/value pairs and table
	// headers). keytree writes at most about 5,200: a database.toml with
	// MaxPasswords password encryptions and MaxRetired retired generations.
	MaxTOMLKeys = 10000
	// MaxTOMLArrayValues bounds the values in all the arrays of a file
	// together: as many as pending.toml may list (Pending.Validate).
	MaxTOMLArrayValues = 100000
)

// scanError is what scanTOML finds wrong; limit tells a file over a limit
// from one that is not TOML, for the fuzz tests, which check that the
// decoder refuses whatever the scanner calls invalid.
type scanError struct {
	limit  bool
	line   int
	reason string
}

// scanTOML checks, in one pass over the bytes, that data stays within the
// limits above. It follows TOML's grammar exactly where the grammar decides
// what is structure (strings, comments, keys, brackets and braces, line
// ends), and loosely elsewhere (numbers, dates, escapes): it must never
// read as text what the decoder reads as structure, or it would miss
// brackets. Where it finds the file not TOML it stops and refuses it; the
// decoder would refuse it too.
func scanTOML(data []byte) *scanError { return scanTOMLKeys(data, MaxTOMLKeys) }

// scanTOMLKeys is scanTOML with maxKeys keys at most instead of MaxTOMLKeys.
func scanTOMLKeys(data []byte, maxKeys int) *scanError {
	// The decoder skips a byte order mark, and refuses invalid UTF-8,
	// control characters other than tab, and a carriage return that does
	// not end a line, wherever they are: refusing them here too keeps the
	// scanner simple and its reading of the file the decoder's.
	switch {
	case bytes.HasPrefix(data, []byte("\xff\xfe")), bytes.HasPrefix(data, []byte("\xfe\xff")):
		data = data[2:]
	case bytes.HasPrefix(data, []byte("\xef\xbb\xbf")):
		data = data[3:]
	}
	s := &scanner{data: data, maxKeys: maxKeys}
	if !utf8.Valid(data) {
		return s.invalid("invalid UTF-8")
	}
	for i, c := range data {
		if c < 0x20 && c != '\t' && c != '\n' && !(c == '\r' && i+1 < len(data) && data[i+1] == '\n') || c == 0x7f {
			s.pos = i
			return s.invalid("a control character")
		}
	}
	return s.document()
}

type scanner struct {
	data    []byte
	pos     int
	keys    int // key/value pairs and table headers so far
	maxKeys int
	values  int // array values so far
}

func (s *scanner) fail(limit bool, format string, args ...any) *scanError {
	line := 1 + bytes.Count(s.data[:min(s.pos, len(s.data))], []byte("\n"))
	return &scanError{limit: limit, line: line, reason: fmt.Sprintf(format, args...)}
}

func (s *scanner) invalid(what string) *scanError { return s.fail(false, "%s", what) }

func (s *scanner) eof() bool { return s.pos >= len(s.data) }

// peek returns the next byte, or 0 at the end (NUL never reaches here).
func (s *scanner) peek() byte {
	if s.eof() {
		return 0
	}
	return s.data[s.pos]
}

func (s *scanner) accept(c byte) bool {
	if s.peek() == c {
		s.pos++
		return true
	}
	return false
}

func (s *scanner) skipSpace() {
	for c := s.peek(); c == ' ' || c == '\t'; c = s.peek() {
		s.pos++
	}
}

// skipComment skips a comment up to, not including, its line end.
func (s *scanner) skipComment() {
	if i := bytes.IndexByte(s.data[s.pos:], '\n'); i >= 0 {
		s.pos += i
		if s.data[s.pos-1] == '\r' {
			s.pos--
		}
	} else {
		s.pos = len(s.data)
	}
}

// skipBlank skips spaces, line ends and comments: what may stand between
// the values of an array or the pairs of an inline table.
func (s *scanner) skipBlank() {
	for {
		switch s.peek() {
		case ' ', '\t', '\r', '\n': // a '\r' is always followed by '\n'
			s.pos++
		case '#':
			s.skipComment()
		default:
			return
		}
	}
}

func (s *scanner) countKey() *scanError {
	s.keys++
	if s.keys > s.maxKeys {
		return s.fail(true, "more than %d keys", s.maxKeys)
	}
	return nil
}

// document reads the file statement by statement: table headers and
// key/value pairs, each on a line of its own.
func (s *scanner) document() *scanError {
	table := 0 // parts of the current table's name
	for {
		s.skipSpace()
		switch c := s.peek(); {
		case s.eof():
			return nil
		case c == '\r' || c == '\n':
			s.pos++
			continue
		case c == '#':
			s.skipComment()
			continue
		case c == '[':
			s.pos++
			array := s.accept('[') // [[name]], an array of tables
			n, err := s.key(0)
			if err != nil {
				return err
			}
			s.skipSpace()
			if !s.accept(']') || array && !s.accept(']') {
				return s.invalid("a table header does not end with ]")
			}
			table = n
			if err := s.countKey(); err != nil {
				return err
			}
		default:
			if err := s.pair(table, 0); err != nil {
				return err
			}
		}
		// A statement ends its line.
		s.skipSpace()
		if s.peek() == '#' {
			s.skipComment()
		}
		switch {
		case s.eof():
			return nil
		case s.accept('\n'), s.accept('\r') && s.accept('\n'):
		default:
			return s.invalid("expected the end of the line")
		}
	}
}

// key reads a dotted key whose full path begins with path parts, and
// returns the number of parts it adds.
func (s *scanner) key(path int) (int, *scanError) {
	n := 0
	for {
		s.skipSpace()
		start := s.pos
		switch c := s.peek(); {
		case c == '"':
			if err := s.basicString(); err != nil {
				return 0, err
			}
		case c == '\'':
			if err := s.literalString(); err != nil {
				return 0, err
			}
		case isBareKeyByte(c):
			for isBareKeyByte(s.peek()) {
				s.pos++
			}
		default:
			return 0, s.invalid("expected a key")
		}
		if s.pos-start > MaxTOMLKeyLength {
			s.pos = start
			return 0, s.fail(true, "a key of more than %d bytes", MaxTOMLKeyLength)
		}
		n++
		if path+n > MaxTOMLKeyDepth {
			return 0, s.fail(true, "a key nested more than %d deep", MaxTOMLKeyDepth)
		}
		s.skipSpace()
		if !s.accept('.') {
			return n, nil
		}
	}
}

func isBareKeyByte(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '_' || c == '-'
}

// pair reads "key = value"; path and depth are those of the table it is in.
func (s *scanner) pair(path, depth int) *scanError {
	n, err := s.key(path)
	if err != nil {
		return err
	}
	if err := s.countKey(); err != nil {
		return err
	}
	s.skipSpace()
	if !s.accept('=') {
		return s.invalid("expected = after a key")
	}
	s.skipSpace()
	return s.value(path+n, depth)
}

// value reads one value of a key with a path of path parts, inside depth
// arrays and inline tables.
func (s *scanner) value(path, depth int) *scanError {
	switch c := s.peek(); {
	case c == '"':
		if bytes.HasPrefix(s.data[s.pos:], []byte(`"""`)) {
			return s.multilineString('"')
		}
		return s.basicString()
	case c == '\'':
		if bytes.HasPrefix(s.data[s.pos:], []byte(`'''`)) {
			return s.multilineString('\'')
		}
		return s.literalString()
	case c == '[' || c == '{':
		if depth+1 > MaxTOMLNesting {
			return s.fail(true, "arrays or inline tables nested more than %d deep", MaxTOMLNesting)
		}
		s.pos++
		if c == '[' {
			return s.array(path, depth+1)
		}
		return s.inlineTable(path, depth+1)
	case isScalarByte(c):
		// A number, boolean or date, which holds no structure: its exact
		// form is the decoder's to check. A date and a time may be
		// separated by a space.
		for {
			for isScalarByte(s.peek()) {
				s.pos++
			}
			if s.peek() != ' ' || s.pos+1 >= len(s.data) || !isDigit(s.data[s.pos+1]) {
				return nil
			}
			s.pos++
		}
	}
	return s.invalid("expected a value")
}

func isScalarByte(c byte) bool {
	return isBareKeyByte(c) || c == '+' || c == '.' || c == ':'
}

func isDigit(c byte) bool { return '0' <= c && c <= '9' }

// array reads the rest of an array, after its '['.
func (s *scanner) array(path, depth int) *scanError {
	for {
		s.skipBlank()
		if s.accept(']') {
			return nil
		}
		s.values++
		if s.values > MaxTOMLArrayValues {
			return s.fail(true, "more than %d values in arrays", MaxTOMLArrayValues)
		}
		if err := s.value(path, depth); err != nil {
			return err
		}
		s.skipBlank()
		if s.accept(']') {
			return nil
		}
		if !s.accept(',') {
			return s.invalid("expected , or ] in an array")
		}
	}
}

// inlineTable reads the rest of an inline table, after its '{'. Like the
// decoder, it allows line ends, comments and a trailing comma (TOML 1.1).
func (s *scanner) inlineTable(path, depth int) *scanError {
	for {
		s.skipBlank()
		if s.accept('}') {
			return nil
		}
		if err := s.pair(path, depth); err != nil {
			return err
		}
		s.skipBlank()
		if s.accept('}') {
			return nil
		}
		if !s.accept(',') {
			return s.invalid("expected , or } in an inline table")
		}
	}
}

// basicString reads a "..." string, in which a backslash escapes the next
// character (the decoder checks which escapes are valid; none takes a quote
// or a backslash as an argument, so skipping one byte is enough here).
func (s *scanner) basicString() *scanError {
	s.pos++
	for !s.eof() {
		switch s.data[s.pos] {
		case '"':
			s.pos++
			return nil
		case '\\':
			s.pos++
			if c := s.peek(); c == '\n' || c == '\r' {
				return s.invalid("a line end in a string")
			}
		case '\n', '\r':
			return s.invalid("a line end in a string")
		}
		s.pos++
	}
	return s.invalid("a string does not end")
}

// literalString reads a '...' string: no escapes.
func (s *scanner) literalString() *scanError {
	s.pos++
	for !s.eof() {
		switch s.data[s.pos] {
		case '\'':
			s.pos++
			return nil
		case '\n', '\r':
			return s.invalid("a line end in a string")
		}
		s.pos++
	}
	return s.invalid("a string does not end")
}

// multilineString reads a multi-line string: basic (three double quotes,
// with escapes) or literal (three single quotes, without). It ends at the
// first run of three or more quotes, of which all but the last three belong
// to the string; TOML allows at most two such, and the decoder refuses a
// run of six or more.
func (s *scanner) multilineString(quote byte) *scanError {
	s.pos += 3
	for !s.eof() {
		switch c := s.data[s.pos]; {
		case c == quote:
			run := 0
			for s.peek() == quote {
				s.pos++
				run++
			}
			if run >= 6 {
				return s.invalid("six or more quotes in a multi-line string")
			}
			if run >= 3 {
				return nil
			}
			continue
		case c == '\\' && quote == '"':
			s.pos++ // skips the escaped byte below
		}
		s.pos++
	}
	return s.invalid("a multi-line string does not end")
}
