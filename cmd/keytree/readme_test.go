package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestReadmeTour runs the five-minute tour of README.md, every shell block of
// it in order, as one script against keytree, then checks where it left the
// two keystores: the tour must keep working as the code changes.
func TestReadmeTour(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("the tour is a POSIX shell session")
	}
	script := tourScript(t, filepath.Join("..", "..", "README.md"))
	work := t.TempDir()
	signing := []byte("-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEI\n-----END PRIVATE KEY-----\n")
	if err := os.WriteFile(filepath.Join(work, "signing.pem"), signing, 0o600); err != nil {
		t.Fatal(err)
	}
	const dbPassword = "s3cret-for-cron"
	env := append(os.Environ(), "DB_PASSWORD="+dbPassword)
	cmd := exec.Command("sh", "-eux", "-c", script)
	cmd.Dir = work
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("the tour failed: %v\n%s", err, out)
	}
	for _, want := range []string{
		"error 15466: An error occurred during decryption.",
		"exit status 3",
		"account encryption (0x01):  was invalid",
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("the tour's output lacks %q\n%s", want, out)
		}
	}

	keytree := func(keystore string, args ...string) []byte {
		t.Helper()
		c := exec.Command("keytree", args...)
		c.Dir = work
		c.Env = append(env,
			"KEYTREE_DIR="+filepath.Join(work, "tour", keystore),
			"KEYTREE_ACCOUNT_DIR="+filepath.Join(work, "tour", "account"),
			"KEYTREE_MACHINE_DIR="+filepath.Join(work, "tour", "machine"))
		got, err := c.Output()
		if err != nil {
			t.Fatalf("keytree %s in %s: %v", strings.Join(args, " "), keystore, err)
		}
		return got
	}
	if got := keytree("keystore", "credential", "get", "backup-db"); string(got) != dbPassword {
		t.Errorf("credential backup-db = %q, want %q", got, dbPassword)
	}
	if got := keytree("keystore", "errorlog"); !bytes.Contains(got, []byte("error 15466")) {
		t.Errorf("the error log lacks 15466:\n%s", got)
	}
	// The imported database opens by the second keystore's SMK.
	if got := keytree("keystore2", "secret", "get", "payroll/signing-key"); !bytes.Equal(got, signing) {
		t.Errorf("imported secret = %q, want %q", got, signing)
	}
}

// tourScript returns the ```sh blocks under README.md's "A five-minute tour"
// heading, in order, as one script.
func tourScript(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	inTour, inBlock, blocks := false, false, 0
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case strings.HasPrefix(line, "## "):
			inTour = line == "## A five-minute tour"
		case inTour && !inBlock && line == "```sh":
			inBlock = true
			blocks++
		case inBlock && line == "```":
			inBlock = false
		case inBlock:
			sb.WriteString(line + "\n")
		}
	}
	if blocks < 5 {
		t.Fatalf("README.md's tour has %d shell blocks; the heading or the blocks moved", blocks)
	}
	return sb.String()
}
