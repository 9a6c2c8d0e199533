package commands

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"runtime"

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
		return nil, &keystore.Error{Text: fmt.Sprintf("read --%s: %v", flag, err), Kind: keystore.ErrNotFound}
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read --%s: %w", flag, err)
	}
	if fi.Mode().IsRegular() && fi.Size() > max {
		f.Close()
		return nil, usagef("--%s %s is larger than %d bytes", flag, path, max)
	}
	return f, nil
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
// or standard input. On a terminal it asks for one line without echo, so the
// value does not end up on the screen.
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
			fmt.Fprintf(tty, "Value for %s (input hidden): ", what)
			v, err := term.ReadPassword(int(tty.Fd()))
			fmt.Fprintln(tty)
			return v, err
		}
	}
	return readAllLimited(e.stdin, "standard input")
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
