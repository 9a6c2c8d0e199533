package commands

import (
	"bytes"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// openPTY opens a pseudo-terminal pair: the master end, which plays the
// user's terminal emulator, and the path of the slave end, which keytree
// opens as its terminal (env.tty) the way it opens /dev/tty.
func openPTY(t *testing.T) (*os.File, string) {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Skip(err)
	}
	t.Cleanup(func() { master.Close() })
	fd := int(master.Fd())
	if err := unix.IoctlSetPointerInt(fd, unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetInt(fd, unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	return master, fmt.Sprintf("/dev/pts/%d", n)
}

// screen collects what keytree writes to the terminal.
type screen struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (s *screen) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.buf.String()
}

func (s *screen) waitFor(t *testing.T, text string) {
	t.Helper()
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(5 * time.Millisecond) {
		if strings.Contains(s.String(), text) {
			return
		}
	}
	t.Fatalf("no %q on the terminal; it shows %q", text, s.String())
}

// typeAtPrompt runs keytree with a terminal, types keys once the value
// prompt is up, and returns the exit status, standard error and what the
// terminal showed.
func (c *testCLI) typeAtPrompt(t *testing.T, keys string, args ...string) (int, string, string) {
	t.Helper()
	// The prompt is written after the terminal is in raw mode: keys typed
	// now are read as a person's would be.
	code, _, stderr, screen := c.atTerminal(t, "end with Ctrl-D on a new line): ", keys, args...)
	return code, stderr, screen
}

// atTerminal runs keytree with standard input on a terminal; once the
// terminal shows wait (if not empty) it types keys there. It returns the
// exit status, standard output, standard error and what the terminal
// showed, and fails the test if keytree left the terminal with echo or line
// editing off.
func (c *testCLI) atTerminal(t *testing.T, wait, keys string, args ...string) (int, string, string, string) {
	t.Helper()
	master, slave := openPTY(t)
	scr := &screen{}
	go func() {
		b := make([]byte, 4096)
		for {
			n, err := master.Read(b)
			scr.mu.Lock()
			scr.buf.Write(b[:n])
			scr.mu.Unlock()
			if err != nil {
				return
			}
		}
	}()
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr, stdinTTY: true,
		tty: func() (*os.File, error) { return os.OpenFile(slave, os.O_RDWR|unix.O_NOCTTY, 0) }}
	done := make(chan int, 1)
	go func() { done <- c.runWith(e, args...) }()
	if wait != "" {
		scr.waitFor(t, wait)
		if _, err := master.WriteString(keys); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case code := <-done:
		time.Sleep(20 * time.Millisecond) // let the reader catch the echo
		// The terminal is back as it was: echo and line editing on.
		if tty, err := os.OpenFile(slave, os.O_RDWR|unix.O_NOCTTY, 0); err == nil {
			tio, err := unix.IoctlGetTermios(int(tty.Fd()), unix.TCGETS)
			tty.Close()
			if err != nil || tio.Lflag&unix.ECHO == 0 || tio.Lflag&unix.ICANON == 0 {
				t.Errorf("the terminal was left with echo or line editing off (%v)", err)
			}
		}
		return code, stdout.String(), stderr.String(), scr.String()
	case <-time.After(20 * time.Second):
		t.Fatalf("keytree still waiting after 20 s; the terminal shows %q", scr.String())
	}
	return 0, "", "", ""
}

// TestMultiLineValueAtTerminal: a PEM key pasted at the hidden prompt is
// stored whole, not its first line with the rest left for the shell, and
// none of it is echoed; Ctrl-C stores nothing.
func TestMultiLineValueAtTerminal(t *testing.T) {
	c := newTestCLI(t)
	pem := "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIJ+DYvh6SEqVTm50DFtMDoQikTmiCqirVv9mWG9qfSnF\n-----END PRIVATE KEY-----"
	// A terminal emulator sends a pasted line end as CR, as it sends Enter.
	paste := strings.ReplaceAll(pem, "\n", "\r") + "\r"
	code, stderr, shown := c.typeAtPrompt(t, paste+"\x04", "credential", "set", "tls", "--identity", "web01")
	if code != 0 {
		t.Fatalf("credential set: exit %d\n%s", code, stderr)
	}
	if !strings.HasPrefix(shown, "Value for credential tls (input hidden; end with Ctrl-D on a new line): ") {
		t.Errorf("the prompt: %q", shown)
	}
	if strings.Contains(shown, "PRIVATE") || strings.Contains(shown, "MC4C") {
		t.Errorf("the value was echoed: %q", shown)
	}
	if code, got, stderr := c.run("", "credential", "get", "tls"); code != 0 || got != pem {
		t.Fatalf("credential get: exit %d, %q, want %q\n%s", code, got, pem, stderr)
	}

	// Ctrl-C halfway: nothing stored, the old value kept.
	code, stderr, _ = c.typeAtPrompt(t, "-----BEGIN\rhalf\x03", "credential", "set", "tls", "--identity", "web01")
	if code != exitError || !strings.Contains(stderr, "interrupted: nothing was stored") {
		t.Fatalf("Ctrl-C: exit %d\n%s", code, stderr)
	}
	if code, got, _ := c.run("", "credential", "get", "tls"); code != 0 || got != pem {
		t.Fatalf("after Ctrl-C: exit %d, %q", code, got)
	}

	// Only Ctrl-D: an empty value, refused.
	code, stderr, _ = c.typeAtPrompt(t, "\x04", "credential", "set", "empty", "--identity", "u")
	if code != exitUsage || !strings.Contains(stderr, "--allow-empty") {
		t.Fatalf("an empty value at the terminal: exit %d\n%s", code, stderr)
	}
}
