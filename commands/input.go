package commands

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"runtime"
	"strings"
	"unicode/utf8"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	"github.com/keytree-dev/keytree/keystore"
)

// maxPasswordSize bounds a password read from a file or standard input.
const maxPasswordSize = 4096

func openTTY() (*os.File, error) {
	if runtime.GOOS == "windows" {
		return os.OpenFile("CONIN$", os.O_RDWR, 0)
	}
	return os.OpenFile("/dev/tty", os.O_RDWR, 0)
}

// stdinUse makes sure at most one input is read from standard input.
type stdinUse struct{ by string }

func (u *stdinUse) claim(flag string) error {
	if u.by != "" {
		return usagef("only one input can come from standard input, but both --%s and %s use -", flag, u.by)
	}
	u.by = "--" + flag
	return nil
}

// stdinOnce refuses, before anything is read, a command line that gives
// standard input (-) to two inputs: flags names, in order, the flag of
// each input given as -. Reading the first before the second claims
// standard input (stdinUse) would take, say, a password for the lines of
// an env file, and fail on them instead.
func stdinOnce(flags []string) error {
	if len(flags) > 1 {
		return usagef("only one input can come from standard input, but both --%s and --%s use -", flags[0], flags[1])
	}
	return nil
}

// passwordRequest says where a password comes from and how to ask for it.
type passwordRequest struct {
	flag    string // the flag that names a file, for messages
	path    string // its value: a file, "-" for standard input, or "" to prompt
	prompt  string // what to ask on the terminal
	confirm bool   // a new password: ask twice
}

// readPassword reads a password from a file, standard input or the
// terminal, without echo. It never comes from a flag's value or the
// environment, which other processes can read.
func (e *env) readPassword(req passwordRequest, stdin *stdinUse) ([]byte, error) {
	switch req.path {
	case "-":
		if err := stdin.claim(req.flag); err != nil {
			return nil, err
		}
		return readPasswordFrom(e.stdin, "standard input")
	case "":
		return e.promptPassword(req)
	}
	f, err := openInput(req.flag, req.path, maxPasswordSize)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return readPasswordFrom(f, req.path)
}

// openInput opens the file a flag names for a password or a value. Unlike a
// backup, it may be a pipe: process substitution (--file <(...)) and named
// pipes pass a secret without writing it to disk, so a pipe or device is
// read, through a LimitReader of max+1 bytes (readPasswordFrom,
// readAllLimited). A regular file larger than max is refused before a byte
// of it is read.
func openInput(flag, path string, max int64) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, inputFileError(flag, err)
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, inputFileError(flag, err)
	}
	if fi.IsDir() {
		f.Close()
		return nil, directoryError(flag)
	}
	if fi.Mode().IsRegular() && fi.Size() > max {
		f.Close()
		return nil, usagef("--%s %s is larger than %d bytes", flag, path, max)
	}
	return f, nil
}

// inputFileError reports a file named by --FLAG that cannot be opened,
// without its name: what was typed after --password-file (or --file) is
// often the password or the value itself, given where a file belongs, and
// must not end up in a terminal's scrollback or a log (P13).
func inputFileError(flag string, err error) error {
	what := inputWhat(flag)
	if errors.Is(err, fs.ErrNotExist) {
		return &keystore.Error{Text: what + " does not exist", Kind: keystore.ErrNotFound,
			Hint: "check the path; it is not shown in case a password or value was typed there by mistake (keytree reads those from files, standard input or the terminal)"}
	}
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return &keystore.Error{Text: fmt.Sprintf("cannot open %s: %v", what, err), Kind: keystore.ErrNotFound}
}

// inputWhat names the file --flag gives, for a message: a password file
// for --password-file, --open-password-file and --new-password-file, a file
// for the others (--file, --env-file, --input, --output).
func inputWhat(flag string) string {
	if strings.HasSuffix(flag, "password-file") {
		return "the password file given to --" + flag
	}
	return "the file given to --" + flag
}

// directoryError reports a directory given where a file belongs (--file,
// a password file): invalid input, refused before anything is read or
// written, and, as in inputFileError, without its name.
func directoryError(flag string) error {
	what := inputWhat(flag)
	return &keystore.Error{Text: what + " is a directory", Kind: keystore.ErrInvalid,
		Hint: "give a file, not a directory (the path is not shown, in case a password or value was typed there by mistake)"}
}

// notDirectory refuses a --file that names an existing directory.
func notDirectory(flag, path string) error {
	if fi, err := os.Stat(path); err == nil && fi.IsDir() {
		return directoryError(flag)
	}
	return nil
}

// existingFile checks that the file a command reads (a backup, an export)
// exists, before the keystore says so with the name in its message; see
// inputFileError.
func existingFile(path string) error {
	if _, err := os.Stat(path); err != nil {
		return inputFileError(flagFile, err)
	}
	return nil
}

// fileArg refuses "-" as the --file of a backup or an export: those are
// written or read as whole files, so standard input or output cannot stand
// in for them, and a file named "-" is never what was meant.
func fileArg(command, path string) error {
	if path == "-" {
		return usagef("%s cannot use standard input or output: --file - is for values (credential set, secret set); give a file name (./- for a file named -)", command)
	}
	return notDirectory(flagFile, path)
}

func readPasswordFrom(r io.Reader, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, maxPasswordSize+1))
	if err != nil {
		return nil, fmt.Errorf("read password from %s: %w", what, err)
	}
	if len(data) > maxPasswordSize {
		return nil, usagef("the password in %s is longer than %d bytes", what, maxPasswordSize)
	}
	// One trailing newline is the end of the line, not part of the password.
	data = bytes.TrimSuffix(data, []byte("\n"))
	data = bytes.TrimSuffix(data, []byte("\r"))
	if len(data) == 0 {
		return nil, usagef("the password in %s is empty", what)
	}
	return data, nil
}

func (e *env) promptPassword(req passwordRequest) ([]byte, error) {
	if e.tty == nil || !e.stdinTTY {
		return nil, usagef("no password given: use --%s FILE (- for standard input), or run keytree on a terminal to be asked", req.flag)
	}
	tty, err := e.tty()
	if err != nil {
		return nil, usagef("no password given and no terminal to ask on (%v): use --%s FILE", err, req.flag)
	}
	defer tty.Close()
	ask := func(prompt string) ([]byte, error) {
		fmt.Fprintf(tty, "%s: ", prompt)
		pw, err := term.ReadPassword(int(tty.Fd()))
		fmt.Fprintln(tty)
		if err != nil {
			return nil, fmt.Errorf("read password: %w", err)
		}
		return pw, nil
	}
	pw, err := ask(req.prompt)
	if err != nil {
		return nil, err
	}
	if len(pw) == 0 {
		return nil, usagef("the password is empty")
	}
	if req.confirm {
		again, err := ask("Confirm " + lowerFirst(req.prompt))
		if err != nil {
			return nil, err
		}
		if !bytes.Equal(pw, again) {
			return nil, usagef("the passwords do not match")
		}
	}
	return pw, nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	b := []byte(s)
	if 'A' <= b[0] && b[0] <= 'Z' {
		b[0] += 'a' - 'A'
	}
	return string(b)
}

// readValue reads a credential or secret value, byte for byte, from --file
// or standard input. On a terminal it asks for the value without echo, and
// reads every line of it until Ctrl-D (readTerminalValue).
func (e *env) readValue(path, what string, stdin *stdinUse) ([]byte, error) {
	if path != "" && path != "-" {
		f, err := openInput(flagFile, path, keystore.MaxValueSize)
		if err != nil {
			return nil, err
		}
		defer f.Close()
		return readAllLimited(f, path)
	}
	if err := stdin.claim(flagFile + " (or standard input)"); err != nil {
		return nil, err
	}
	if e.stdinTTY && e.tty != nil {
		tty, err := e.tty()
		if err == nil {
			defer tty.Close()
			return readTerminalValue(tty, what)
		}
	}
	return readAllLimited(e.stdin, "standard input")
}

// endKey is what ends a value typed at the terminal, as the prompt names it.
func endKey() string {
	if runtime.GOOS == "windows" {
		return "Ctrl-Z or Ctrl-D"
	}
	return "Ctrl-D"
}

// readTerminalValue asks for a value at the terminal and reads it without
// echo until the end key. A value is often pasted, and a pasted PEM key or
// certificate has many lines: term.ReadPassword stops at the first newline,
// which stored the first line and left the rest, the key itself, for the
// shell to run and keep in its history. So the terminal is put in raw mode
// and everything up to Ctrl-D is read, whatever it holds (readHiddenValue).
// Raw mode also turns Ctrl-C into a byte, so an interrupted prompt restores
// the terminal rather than leaving echo off.
func readTerminalValue(tty *os.File, what string) ([]byte, error) {
	fd := int(tty.Fd())
	old, err := term.MakeRaw(fd)
	if err != nil {
		return nil, fmt.Errorf("read the value at the terminal: %w", err)
	}
	defer func() { _ = term.Restore(fd, old) }()
	fmt.Fprintf(tty, "Value for %s (input hidden; end with %s on a new line): ", what, endKey())
	v, err := readHiddenValue(tty)
	// Raw mode does not turn "\n" into "\r\n".
	fmt.Fprint(tty, "\r\n")
	return v, err
}

// errInterrupted is a value prompt abandoned with Ctrl-C.
var errInterrupted = errors.New("interrupted: nothing was stored")

// readHiddenValue reads what a terminal in raw mode sends until the end key
// (Ctrl-D; Ctrl-Z as well on Windows) or the end of input, doing the little
// of a line discipline that hidden typing needs:
//
//   - Enter (CR), and a pasted line end (CR, LF or CR LF), is one "\n";
//   - Backspace (DEL or BS) removes the last character of the current
//     line, Ctrl-U the whole current line;
//   - Ctrl-C and Ctrl-\ (and Ctrl-Z outside Windows, which would otherwise
//     suspend keytree) abandon the value;
//   - one final "\n" is dropped: it ends the last line typed, as Enter
//     ended the one line the prompt used to read.
//
// Every other byte, tabs and non-ASCII text included, is kept as sent.
func readHiddenValue(r io.Reader) ([]byte, error) {
	var v []byte
	buf := make([]byte, 4096)
	afterCR := false
	lineStart := func() int { return bytes.LastIndexByte(v, '\n') + 1 }
	for {
		n, err := r.Read(buf)
		for _, b := range buf[:n] {
			wasCR := afterCR
			afterCR = false
			switch {
			case b == 0x04 || (b == 0x1a && runtime.GOOS == "windows"):
				return trimLineEnd(v), nil
			case b == 0x03 || b == 0x1c || b == 0x1a:
				return nil, errInterrupted
			case b == '\r':
				v = append(v, '\n')
				afterCR = true
			case b == '\n':
				if !wasCR {
					v = append(v, '\n')
				}
			case b == 0x7f || b == 0x08:
				if i := lineStart(); len(v) > i {
					_, size := utf8.DecodeLastRune(v[i:])
					v = v[:len(v)-size]
				}
			case b == 0x15:
				v = v[:lineStart()]
			default:
				v = append(v, b)
			}
			if len(v) > keystore.MaxValueSize {
				return nil, usagef("the value typed is larger than %d bytes: give it with --file", keystore.MaxValueSize)
			}
		}
		if err == io.EOF {
			return trimLineEnd(v), nil
		}
		if err != nil {
			return nil, fmt.Errorf("read the value at the terminal: %w", err)
		}
	}
}

func trimLineEnd(v []byte) []byte {
	return bytes.TrimSuffix(v, []byte("\n"))
}

func readAllLimited(r io.Reader, what string) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, keystore.MaxValueSize+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", what, err)
	}
	if len(data) > keystore.MaxValueSize {
		return nil, usagef("the value in %s is larger than %d bytes", what, keystore.MaxValueSize)
	}
	return data, nil
}

// secretFlags are flags people reach for to give a password or a value on
// the command line. keytree has none of them, on purpose: other users see a
// process's arguments (ps, /proc), and shells keep them in their history.
var secretFlags = map[string]bool{
	"password": true, "passwd": true, "pass": true, "passphrase": true, "pw": true,
	"open-password": true, "new-password": true, "backup-password": true,
	"secret": true, "value": true, "token": true,
}

// secretFlagError explains, for a flag parse error over one of secretFlags,
// where keytree takes secrets instead; it returns nil for any other error.
// The flag's value is never in the text: urfave/cli stops at the unknown
// flag's name, and --password=VALUE is reported by name alone as well.
func secretFlagError(err error) error {
	name, ok := strings.CutPrefix(err.Error(), "flag provided but not defined: -")
	if !ok || !secretFlags[name] {
		return nil
	}
	return &keystore.Error{
		Text: fmt.Sprintf("keytree never takes a password or secret as a command-line argument: there is no --%s (what followed it was not used, and is not shown)", name),
		Kind: keystore.ErrInvalid,
		Detail: []string{
			"command-line arguments are visible to other users and stay in the shell's history; if that was a real password, treat it as exposed",
		},
		Hint: "give passwords with --password-file FILE or --open-password-file FILE (- for standard input) or at the prompt on a terminal, and values with --file FILE or on standard input; see 'keytree COMMAND --help'",
	}
}

const flagAllowEmpty = "allow-empty"

func allowEmptyFlag() *cli.BoolFlag {
	return &cli.BoolFlag{Name: flagAllowEmpty, Usage: "store an empty value (refused otherwise)"}
}

// checkValue refuses an empty value unless --allow-empty (allowEmpty): an
// empty value is almost always a mistake, such as printf '%s'
// "$UNSET_VARIABLE" | keytree credential set, and storing it would replace
// a good value with nothing.
func checkValue(allowEmpty bool, value []byte, what string) error {
	if len(value) > 0 || allowEmpty {
		return nil
	}
	return &keystore.Error{Text: fmt.Sprintf("the value for %s is empty; nothing was stored", what), Kind: keystore.ErrInvalid,
		Hint: "if it came from a variable or a command, check that it is set; to store an empty value on purpose, add --allow-empty"}
}
