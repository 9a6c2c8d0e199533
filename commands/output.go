package commands

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"unicode"
	"unicode/utf8"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore"
)

// Everything keytree prints may hold text that came from disk: a file name
// in an error, an identity in a listing. A hostile keystore must not be able
// to drive the terminal (ESC and OSC sequences, U+009B) or disguise what it
// shows (bidirectional overrides), so the output points below escape control
// and bidirectional formatting characters (formats.IsControlOrBidi) and
// invalid UTF-8. Ordinary Unicode (é, 日本) is left as it is. Values
// (credential get, secret get) are written byte for byte: they are the
// user's data, not text for the terminal.

// escape writes the control and bidirectional formatting characters of s,
// and its invalid UTF-8 bytes, as Go escapes (\x1b, \u202e).
func escape(s string) string {
	i := strings.IndexFunc(s, func(r rune) bool { return r == utf8.RuneError || formats.IsControlOrBidi(r) })
	if i < 0 {
		return s
	}
	var sb strings.Builder
	sb.WriteString(s[:i])
	for rest := s[i:]; rest != ""; {
		r, n := utf8.DecodeRuneInString(rest)
		switch {
		case r == utf8.RuneError && n == 1:
			fmt.Fprintf(&sb, `\x%02x`, rest[0])
		case formats.IsControlOrBidi(r):
			q := strconv.QuoteRuneToASCII(r) // '\x1b', '\u202e'
			sb.WriteString(q[1 : len(q)-1])
		default:
			sb.WriteString(rest[:n])
		}
		rest = rest[n:]
	}
	return sb.String()
}

// writeJSON prints v as indented JSON. encoding/json escapes C0 controls
// and replaces invalid UTF-8, but writes DEL, C1 controls and bidirectional
// formatting characters raw; they are written as \u escapes here, which
// decode to the same strings.
func writeJSON(w io.Writer, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(v); err != nil {
		return err
	}
	// The encoder's output is valid UTF-8, and outside strings holds only
	// ASCII punctuation, spaces and newlines: every other rune replaced here
	// is inside a string.
	var out bytes.Buffer
	for _, r := range buf.String() {
		if r != '\n' && formats.IsControlOrBidi(r) {
			fmt.Fprintf(&out, `\u%04x`, r)
		} else {
			out.WriteRune(r)
		}
	}
	_, err := w.Write(out.Bytes())
	return err
}

// printList prints what a listing command lists: with --json (asJSON) an
// array of one object per item, made by toJSON; otherwise a table under
// header, a row per item.
func printList[T, J any](w io.Writer, asJSON bool, items []T, header []string, toJSON func(T) J, row func(T) []string) error {
	if asJSON {
		return writeJSON(w, jsonList(items, toJSON))
	}
	rows := make([][]string, 0, len(items))
	for _, it := range items {
		rows = append(rows, row(it))
	}
	return table(w, header, rows)
}

// jsonList is items as a JSON array, [] rather than null when there are
// none, so that jq '.[]' works on an empty keystore.
func jsonList[T, J any](items []T, toJSON func(T) J) []J {
	out := make([]J, 0, len(items))
	for _, it := range items {
		out = append(out, toJSON(it))
	}
	return out
}

// orphanJSONFields are what a listing's JSON says of an item a --force
// left under an older key.
type orphanJSONFields struct {
	Orphaned bool   `json:"orphaned"`
	NeedsKey string `json:"needsKey,omitempty"`
}

func orphanFields(o *keystore.Orphan) orphanJSONFields {
	if o == nil {
		return orphanJSONFields{}
	}
	return orphanJSONFields{Orphaned: true, NeedsKey: o.Thumbprint}
}

// orphanState is a listing's last column: empty, or the key an orphaned
// item needs.
func orphanState(o *keystore.Orphan) string {
	if o == nil {
		return ""
	}
	return "orphaned: needs key " + o.Thumbprint
}

// table prints rows aligned in columns, each cell escaped.
func table(w io.Writer, header []string, rows [][]string) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	if header != nil {
		fmt.Fprintln(tw, strings.Join(header, "\t"))
	}
	for _, r := range rows {
		cells := make([]string, len(r))
		for i, c := range r {
			cells[i] = escape(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// say prints success chatter, which only a person at a terminal wants.
func (e *env) say(format string, args ...any) {
	if e.stdoutTTY {
		fmt.Fprintf(e.stdout, format+"\n", args...)
	}
}

// writeValue writes a credential's or secret's value to standard output.
// Off a terminal (a pipe, a file, $(...)) it goes byte for byte, nothing
// added. On a terminal it is text for a person: a value that is not text
// (invalid UTF-8, or control characters other than tab and line ends, which
// could also drive the terminal) is refused, as age refuses to print binary,
// and text gets a final newline so the shell's prompt does not run into it.
func (e *env) writeValue(value []byte, getCommand string) error {
	if !e.stdoutTTY {
		_, err := e.stdout.Write(value)
		return err
	}
	if !isText(value) {
		return &keystore.Error{Text: "refusing to output binary to the terminal", Kind: keystore.ErrRefused,
			Hint: fmt.Sprintf("redirect or pipe it: %s > FILE, or %s | xxd to look at it", getCommand, getCommand)}
	}
	out := value
	if len(out) > 0 && out[len(out)-1] != '\n' {
		out = append(out[:len(out):len(out)], '\n')
	}
	_, err := e.stdout.Write(out)
	return err
}

// isText reports whether v is UTF-8 text without control characters other
// than tab, LF and CR.
func isText(v []byte) bool {
	if !utf8.Valid(v) {
		return false
	}
	for _, r := range string(v) {
		if unicode.IsControl(r) && r != '\t' && r != '\n' && r != '\r' {
			return false
		}
	}
	return true
}
