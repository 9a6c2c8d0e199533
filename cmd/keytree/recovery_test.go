package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/keystore"
	"github.com/keytree-dev/keytree/protect"
)

// TestRecoveryWithoutKeytree runs every procedure of docs/recovery.md,
// exactly as written there, with the stock age CLI built from the age module
// keytree depends on, and checks that every credential and secret comes back
// (P15).
func TestRecoveryWithoutKeytree(t *testing.T) {
	if runtime.GOOS == "windows" {
		t.Skip("docs/recovery.md is a POSIX shell procedure; it needs sh, tar and the Go toolchain to build age")
	}
	root := t.TempDir()
	bin := filepath.Join(root, "bin")
	build := exec.Command("go", "build", "-o", bin+string(filepath.Separator),
		"filippo.io/age/cmd/age", "filippo.io/age/cmd/age-plugin-batchpass")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build age: %v\n%s", err, out)
	}

	opts := initKeystoreUnder(t, root, protect.MLKEM768X25519)
	ks, err := keystore.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	credentials := map[string][]byte{
		"backup-db":   []byte("hunter2"),
		"binary.blob": {0, 1, 2, 0xff, 0xfe, '\n'},
		"empty":       {},
	}
	for name, v := range credentials {
		if _, err := ks.SetCredential(name, "svc", v); err != nil {
			t.Fatal(err)
		}
	}
	const dbPassword = "Database-Passw0rd-1"
	if _, err := ks.CreateDMK("payroll", []byte(dbPassword), keystore.DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	secrets := map[string][]byte{
		"signing-key": []byte("-----BEGIN KEY-----\n\x00\xff\n"),
		"token":       []byte("t0ken"),
	}
	for name, v := range secrets {
		if _, err := ks.SetSecret("payroll", name, v, nil); err != nil {
			t.Fatal(err)
		}
	}
	// Regenerations and replaced values, so that no generation or revision
	// is 1 by accident.
	if _, err := ks.RegenerateSMK(keystore.SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.RegenerateDMK("payroll", []byte(dbPassword), keystore.DMKOptions{Algorithm: protect.MLKEM768X25519}); err != nil {
		t.Fatal(err)
	}
	credentials["backup-db"] = []byte("hunter3")
	if _, err := ks.SetCredential("backup-db", "svc", credentials["backup-db"]); err != nil {
		t.Fatal(err)
	}
	secrets["token"] = []byte("t0ken-2")
	if _, err := ks.SetSecret("payroll", "token", secrets["token"], nil); err != nil {
		t.Fatal(err)
	}
	// The keystore is of format 2: every value file carries a binding
	// stanza, which the stock age CLI must ignore (P15, P17).
	for _, pattern := range []string{"credentials/*.age", "databases/payroll/secrets/*.age"} {
		files, _ := filepath.Glob(filepath.Join(opts.Keystore, filepath.FromSlash(pattern)))
		if len(files) == 0 {
			t.Fatalf("no %s", pattern)
		}
		for _, f := range files {
			if data, err := os.ReadFile(f); err != nil || !strings.Contains(string(data), "\n-> keytree-binding 1\n") {
				t.Fatalf("%s is not a bound file (format 2): %v", f, err)
			}
		}
	}
	const backupPassword = "recovery granite tulip shovel"
	smkBackup := filepath.Join(root, "smk-backup.age")
	if _, err := ks.BackupSMK(smkBackup, []byte(backupPassword), keystore.SMKOptions{}); err != nil {
		t.Fatal(err)
	}
	dmkBackup := filepath.Join(root, "dmk-backup.age")
	if _, err := ks.BackupDMK("payroll", dmkBackup, []byte(backupPassword), keystore.DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	export := filepath.Join(root, "payroll.tar")
	if _, err := ks.ExportDatabase("payroll", export); err != nil {
		t.Fatal(err)
	}
	copyFile := filepath.Join(root, "keystore.tar")
	if _, err := ks.BackupKeystore(copyFile); err != nil {
		t.Fatal(err)
	}
	// From the keystore backup, KEYSTORE names no keystore: every value
	// must come from the archive.
	fromCopy := []string{"COPY=" + copyFile, "KEYSTORE=" + filepath.Join(root, "no-keystore")}

	blocks := shellBlocks(t, filepath.Join("..", "..", "docs", "recovery.md"))
	cases := []struct {
		before, block string // before: a block run first, in the same shell
		env           []string
		want          map[string][]byte // recovered file → value
	}{
		{"", "credentials", []string{"BACKUP=" + smkBackup, "AGE_PASSPHRASE=" + backupPassword}, credentials},
		{"", "database-by-smk", []string{"BACKUP=" + smkBackup, "AGE_PASSPHRASE=" + backupPassword, "DB=payroll"}, prefixed("payroll/", secrets)},
		{"", "database-by-password", []string{"AGE_PASSPHRASE=" + dbPassword, "DB=payroll"}, prefixed("payroll/", secrets)},
		{"", "database-from-export", []string{"EXPORT=" + export, "DMK_BACKUP=" + dmkBackup, "AGE_PASSPHRASE=" + backupPassword}, prefixed("payroll/", secrets)},
		{"from-keystore-backup", "credentials", append([]string{"BACKUP=" + smkBackup, "AGE_PASSPHRASE=" + backupPassword}, fromCopy...), credentials},
		{"from-keystore-backup", "database-by-smk", append([]string{"BACKUP=" + smkBackup, "AGE_PASSPHRASE=" + backupPassword, "DB=payroll"}, fromCopy...), prefixed("payroll/", secrets)},
		{"from-keystore-backup", "database-by-password", append([]string{"AGE_PASSPHRASE=" + dbPassword, "DB=payroll"}, fromCopy...), prefixed("payroll/", secrets)},
	}
	for _, c := range cases {
		name := c.block
		if c.before != "" {
			name = c.before + "/" + c.block
		}
		t.Run(name, func(t *testing.T) {
			script, ok := blocks[c.block]
			if !ok {
				t.Fatalf("docs/recovery.md has no block %q", c.block)
			}
			if c.before != "" {
				before, ok := blocks[c.before]
				if !ok {
					t.Fatalf("docs/recovery.md has no block %q", c.before)
				}
				script = before + script
			}
			work := t.TempDir()
			cmd := exec.Command("sh", "-eu", "-c", script)
			cmd.Dir = work
			// The case's variables last: they win over the defaults.
			cmd.Env = append(append(os.Environ(),
				"PATH="+bin+string(filepath.ListSeparator)+os.Getenv("PATH"), "KEYSTORE="+opts.Keystore), c.env...)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("the procedure failed: %v\n%s", err, out)
			}
			for name, want := range c.want {
				got, err := os.ReadFile(filepath.Join(work, "recovered", name))
				if err != nil {
					t.Fatalf("%s not recovered: %v\n%s", name, err, out)
				}
				if !bytes.Equal(got, want) {
					t.Errorf("recovered %s = %q, want %q", name, got, want)
				}
			}
		})
	}
}

func prefixed(prefix string, m map[string][]byte) map[string][]byte {
	out := map[string][]byte{}
	for k, v := range m {
		out[prefix+k] = v
	}
	return out
}

// shellBlocks returns the ```sh blocks of a markdown file that follow a
// "<!-- recovery: NAME -->" line, by NAME.
func shellBlocks(t *testing.T, path string) map[string]string {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	blocks := map[string]string{}
	label, in := "", false
	var sb strings.Builder
	for _, line := range strings.Split(string(data), "\n") {
		trimmed := strings.TrimSpace(line)
		switch {
		case strings.HasPrefix(trimmed, "<!-- recovery: "):
			label = strings.TrimSuffix(strings.TrimPrefix(trimmed, "<!-- recovery: "), " -->")
		case !in && trimmed == "```sh" && label != "":
			in = true
			sb.Reset()
		case in && trimmed == "```":
			blocks[label] = sb.String()
			in, label = false, ""
		case in:
			sb.WriteString(line + "\n")
		}
	}
	if len(blocks) == 0 {
		t.Fatalf("no labelled ```sh block in %s", path)
	}
	return blocks
}
