package commands

import (
	"bytes"
	"errors"
	"runtime"
	"strings"
	"testing"
)

// TestReadHiddenValue: what a terminal in raw mode sends for a value typed or
// pasted at the prompt becomes the value, every line of it, up to Ctrl-D.
func TestReadHiddenValue(t *testing.T) {
	pem := "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----"
	for _, tc := range []struct {
		name, in, want string
	}{
		{"one line, Enter, Ctrl-D", "hunter2\r\x04", "hunter2"},
		{"one line, Ctrl-D", "hunter2\x04", "hunter2"},
		{"pasted PEM, CR line ends", strings.ReplaceAll(pem, "\n", "\r") + "\r\x04", pem},
		{"pasted PEM, LF line ends", pem + "\n\x04", pem},
		{"pasted PEM, CR LF line ends", strings.ReplaceAll(pem, "\n", "\r\n") + "\r\n\x04", pem},
		{"two final line ends keep one", "a\r\r\x04", "a\n"},
		{"backspace within a line", "hunx\x7fter2\x08\x082\r\x04", "hunte2"},
		{"backspace removes a whole character", "caf\xc3\xa9\x7fe\x04", "cafe"},
		{"backspace stops at the line start", "a\r\x7f\x7fb\x04", "a\nb"},
		{"Ctrl-U clears the line", "first\rwrong\x15second\x04", "first\nsecond"},
		{"tab and UTF-8 kept", "k\tv 日本\x04", "k\tv 日本"},
		{"nothing after Ctrl-D", "value\x04trailing", "value"},
		{"end of input ends it too", "value\r", "value"},
	} {
		got, err := readHiddenValue(strings.NewReader(tc.in))
		if err != nil || string(got) != tc.want {
			t.Errorf("%s: got %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
	interrupts := []string{"hunter2\x03", "a\rb\x1c"}
	if runtime.GOOS == "windows" {
		// Ctrl-Z ends input there, as it does for Windows programs.
		if got, err := readHiddenValue(strings.NewReader("secret\x1atrailing")); err != nil || string(got) != "secret" {
			t.Errorf("Ctrl-Z: got %q, %v", got, err)
		}
	} else {
		// Ctrl-Z would suspend keytree with the terminal in raw mode.
		interrupts = append(interrupts, "secret\x1a\x04")
	}
	for _, in := range interrupts {
		if got, err := readHiddenValue(strings.NewReader(in)); !errors.Is(err, errInterrupted) || got != nil {
			t.Errorf("%q: got %q, %v; want errInterrupted", in, got, err)
		}
	}
	big := bytes.Repeat([]byte("x"), 64<<20+1)
	if _, err := readHiddenValue(bytes.NewReader(append(big, 4))); err == nil || !strings.Contains(err.Error(), "larger than 67108864 bytes") {
		t.Errorf("a value over the limit: %v", err)
	}
}

// runWith runs keytree in the test's keystore with an env the test set up.
func (c *testCLI) runWith(e *env, args ...string) int {
	return e.run(append([]string{"keytree", "--keystore", c.keystore, "--account-dir", c.account, "--machine-dir", c.machine}, args...))
}

// TestValueToTerminal: on a terminal, get refuses a value that is not text
// and ends text with a newline; off a terminal it writes the bytes as they
// are.
func TestValueToTerminal(t *testing.T) {
	c := newTestCLI(t)
	if code, _, stderr := c.run("Str0ng!Passw0rd-db", "dmk", "create", "--db", "app", "--password-file", "-"); code != 0 {
		t.Fatalf("dmk create: exit %d\n%s", code, stderr)
	}
	values := map[string]string{
		"text":      "hunter2",
		"endsInNL":  "line one\nline two\n",
		"crlf":      "a\r\nb",
		"utf8":      "mot de passe é 日本",
		"zero":      "a\x00b",
		"invalid":   "\xff\xfe",
		"escape":    "\x1b]0;title\x07",
		"c1":        "a\u009bb",
		"backspace": "abc\x08",
	}
	for name, v := range values {
		if code, _, stderr := c.run(v, "credential", "set", name, "--identity", "u"); code != 0 {
			t.Fatalf("credential set %s: exit %d\n%s", name, code, stderr)
		}
		if code, _, stderr := c.run(v, "secret", "set", "app/"+name); code != 0 {
			t.Fatalf("secret set %s: exit %d\n%s", name, code, stderr)
		}
	}
	for name, v := range values {
		binary := strings.ContainsAny(v, "\x00\x1b\x08\u009b") || name == "invalid"
		want := v
		if !strings.HasSuffix(v, "\n") {
			want += "\n"
		}
		for _, args := range [][]string{{"credential", "get", name}, {"secret", "get", "app/" + name}} {
			var stdout, stderr bytes.Buffer
			e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, stdoutTTY: true}
			code := c.runWith(e, args...)
			if binary {
				wantErr := "keytree: error: refusing to output binary to the terminal\nkeytree: hint: redirect or pipe it: keytree " + strings.Join(args, " ") + " > FILE, or keytree " + strings.Join(args, " ") + " | xxd to look at it\n"
				if code != exitRefused || stdout.Len() != 0 || stderr.String() != wantErr {
					t.Errorf("%v to a terminal: exit %d, stdout %q\n%s", args, code, stdout.String(), stderr.String())
				}
			} else if code != 0 || stdout.String() != want {
				t.Errorf("%v to a terminal: exit %d, stdout %q, want %q\n%s", args, code, stdout.String(), want, stderr.String())
			}
			// Off a terminal: byte for byte, nothing added.
			code, out, errs := c.run("", args...)
			if code != 0 || out != v {
				t.Errorf("%v to a pipe: exit %d, %q, want %q\n%s", args, code, out, v, errs)
			}
		}
	}
}
