package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/keystore"
	"github.com/keytree-dev/keytree/protect"
)

// TestRecoveryWithoutKeytree runs the shell blocks of docs/recovery.md,
// exactly as written there, with the stock age CLI built from the age module
// keytree depends on, and checks that every credential comes back (P15).
func TestRecoveryWithoutKeytree(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("docs/recovery.md is a POSIX shell procedure; it needs sh and the Go toolchain to build age")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator),
		"filippo.io/age/cmd/age", "filippo.io/age/cmd/age-plugin-batchpass")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build age: %v\n%s", err, out)
	}

	opts := keystore.Options{Dirs: keystore.Dirs{
		Keystore: filepath.Join(root, "keystore"),
		Account:  filepath.Join(root, "account"),
		Machine:  filepath.Join(root, "machine"),
	}}
	if _, err := keystore.Init(opts, protect.MLKEM768X25519); err != nil {
		t.Fatal(err)
	}
	ks, err := keystore.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	values := map[string][]byte{
		"backup-db":   []byte("hunter2"),
		"binary.blob": {0, 1, 2, 0xff, 0xfe, '\n'},
		"empty":       {},
	}
	for name, v := range values {
		if _, err := ks.SetCredential(name, "svc", v); err != nil {
			t.Fatal(err)
		}
	}
	// A regeneration and a replaced value, so generation and revision are
	// not both 1.
	if _, err := ks.RegenerateSMK(keystore.SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	values["backup-db"] = []byte("hunter3")
	if _, err := ks.SetCredential("backup-db", "svc", values["backup-db"]); err != nil {
		t.Fatal(err)
	}
	backup := filepath.Join(root, "smk-backup.age")
	const password = "Recovery-Passw0rd"
	if _, err := ks.BackupSMK(backup, []byte(password), keystore.SMKOptions{}); err != nil {
		t.Fatal(err)
	}

	script := shellBlocks(t, filepath.Join("..", "..", "docs", "recovery.md"))
	work := filepath.Join(root, "work")
	if err := os.Mkdir(work, 0o700); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("sh", "-eu", "-c", script)
	cmd.Dir = work
	cmd.Env = append(os.Environ(),
		"PATH="+bin+string(filepath.ListSeparator)+os.Getenv("PATH"),
		"KEYSTORE="+opts.Keystore, "BACKUP="+backup, "AGE_PASSPHRASE="+password)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("docs/recovery.md failed: %v\n%s", err, out)
	}
	if !bytes.Contains(out, []byte("# kind: smk")) {
		t.Errorf("step 1 did not show the backup's comment lines:\n%s", out)
	}
	for name, want := range values {
		got, err := os.ReadFile(filepath.Join(work, "recovered", name))
		if err != nil {
			t.Fatalf("%s not recovered: %v\n%s", name, err, out)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("recovered %s = %q, want %q", name, got, want)
		}
	}
}

// shellBlocks returns the ```sh blocks of a markdown file, joined.
func shellBlocks(t *testing.T, path string) string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var sb strings.Builder
	in := false
	for _, line := range strings.Split(string(data), "\n") {
		switch {
		case !in && strings.TrimSpace(line) == "```sh":
			in = true
		case in && strings.TrimSpace(line) == "```":
			in = false
		case in:
			sb.WriteString(line + "\n")
		}
	}
	if sb.Len() == 0 {
		t.Fatalf("no ```sh block in %s", path)
	}
	return fmt.Sprint(sb.String())
}
