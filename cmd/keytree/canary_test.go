package main

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf16"
)

// TestCanarySecrets checks P13 with a canary: every credential value,
// secret value and password holds one unique random string, and keytree
// runs every command on them, failing ones included (wrong passwords, weak
// passwords, damaged files, both SMK encryptions invalid, --force runs that
// orphan values, heals, recoveries). The canary, raw or hex, base64 or
// UTF-16 encoded, must then appear in no file that keytree wrote (the
// keystore with its error log, the account and machine directories, backups
// and exports) and in no output but the standard output of `credential get`
// and `secret get`. keytree starts no other process, so there is no child's
// argv or environment to check; its own argv and environment carry file
// names only, never a value or a password.
//
// KEYTREE_RELIABILITY=full runs the whole sequence five times, each with a
// new canary and keystore. docs/reliability.md reports the figures it logs.
func TestCanarySecrets(t *testing.T) {
	rounds := 1
	if reliabilityFull() {
		rounds = 5
	}
	commands, failing, outputs, files := 0, 0, 0, 0
	for i := 0; i < rounds; i++ {
		c, f, o, n := canaryRound(t)
		commands, failing, outputs, files = commands+c, failing+f, outputs+o, files+n
	}
	t.Logf("canary: %d rounds, %d commands (%d of them failing on purpose), %d bytes of output and %d files searched, no canary found",
		rounds, commands, failing, outputs, files)
}

// canaryForms are the canary and the encodings in which a leak might hide.
func canaryForms(canary string) [][]byte {
	forms := [][]byte{[]byte(canary), []byte(strings.ToLower(canary)), []byte(hex.EncodeToString([]byte(canary)))}
	// base64 at each of the three alignments, without the partial groups
	// at the ends.
	for skip := 0; skip < 3; skip++ {
		enc := base64.StdEncoding.EncodeToString([]byte(canary[skip:]))
		forms = append(forms, []byte(enc[:len(enc)-4]))
		enc = base64.RawURLEncoding.EncodeToString([]byte(canary[skip:]))
		forms = append(forms, []byte(enc[:len(enc)-4]))
	}
	var u16 bytes.Buffer
	for _, r := range utf16.Encode([]rune(canary)) {
		u16.WriteByte(byte(r))
		u16.WriteByte(byte(r >> 8))
	}
	return append(forms, u16.Bytes())
}

func findCanary(data []byte, forms [][]byte) bool {
	for _, f := range forms {
		if bytes.Contains(data, f) {
			return true
		}
	}
	return false
}

// canaryRound runs the whole sequence once on a new keystore.
func canaryRound(t *testing.T) (commands, failing, outputs, files int) {
	t.Helper()
	raw := make([]byte, 12)
	rand.Read(raw)
	canary := "CANARY" + strings.ToUpper(hex.EncodeToString(raw))
	forms := canaryForms(canary)

	k := newProcKeystore(t, "keytree-canary-")
	in := filepath.Join(k.root, "inputs") // what the test gives keytree: not searched
	if err := os.Mkdir(in, 0o700); err != nil {
		t.Fatal(err)
	}
	input := func(name, content string) string {
		p := filepath.Join(in, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	value := func(n int) string { return fmt.Sprintf("value %d %s \x00\xff\n", n, canary) }
	pw := func(n int) string { return input(fmt.Sprintf("pw%d", n), fmt.Sprintf("Pw%d-%s-x", n, canary)) }
	pw1, pw2, pw3, pw4, pw5 := pw(1), pw(2), pw(3), pw(4), pw(5)
	backupPW, wrongPW := pw(6), pw(7)
	weakPW := input("weak", strings.Repeat(canary, 5)) // over 128 characters: fails the policy
	valueFile := input("value", value(0))
	out := filepath.Join(k.root, "out") // backups and exports keytree writes: searched
	if err := os.Mkdir(out, 0o700); err != nil {
		t.Fatal(err)
	}
	smkBackup, dmkBackup, export := filepath.Join(out, "smk.age"), filepath.Join(out, "dmk.age"), filepath.Join(out, "db1.tar")
	otherAccount, otherMachine := filepath.Join(k.root, "account2"), filepath.Join(k.root, "machine2")
	blob := func(glob string) string {
		m, _ := filepath.Glob(filepath.Join(k.opts.Keystore, glob))
		if len(m) != 1 {
			t.Fatalf("%s: %v", glob, m)
		}
		return m[0]
	}
	saved := map[string][]byte{}
	damage := func(glob string) {
		p := blob(glob)
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		saved[p] = data
		if err := os.WriteFile(p, data[:len(data)/2], 0o600); err != nil {
			t.Fatal(err)
		}
	}
	repair := func() {
		for p, data := range saved {
			if err := os.WriteFile(p, data, 0o600); err != nil {
				t.Fatal(err)
			}
		}
		clear(saved)
	}

	type step struct {
		args  []string
		stdin string
		fail  bool   // must fail
		force bool   // a --force that may orphan values: exit 0, or 10 where that reports orphans
		get   bool   // its standard output is a value
		do    func() // before it runs
	}
	ok := func(args ...string) step { return step{args: args} }
	bad := func(args ...string) step { return step{args: args, fail: true} }
	get := func(args ...string) step { return step{args: args, get: true} }
	force := func(args ...string) step { return step{args: args, force: true} }
	with := func(s step, stdin string) step { s.stdin = stdin; return s }
	before := func(do func(), s step) step { s.do = do; return s }
	// elsewhere runs a step with another account's and another machine's
	// directories, where neither encryption of the SMK opens.
	elsewhere := func(s step) step {
		s.args = append([]string{"--account-dir", otherAccount, "--machine-dir", otherMachine}, s.args...)
		return s
	}

	steps := []step{
		// values in, out and listed
		with(ok("credential", "set", "c1", "--identity", "svc"), value(1)),
		ok("credential", "set", "c2", "--identity", "svc", "--file", valueFile),
		get("credential", "get", "c1"),
		with(ok("credential", "set", "c1", "--identity", "svc"), value(2)),
		ok("credential", "list"), ok("credential", "list", "--json"),
		with(bad("credential", "set", "bad/name", "--identity", "svc"), value(3)),
		bad("credential", "get", "missing"),
		// databases, passwords and secrets
		ok("dmk", "create", "--db", "db1", "--password-file", pw1),
		ok("dmk", "create", "--db", "db2", "--password-file", pw2, "--no-smk-encryption"),
		bad("dmk", "create", "--db", "db3", "--password-file", weakPW),
		with(ok("secret", "set", "db1/s1"), value(4)),
		ok("secret", "set", "db2/s2", "--file", valueFile, "--open-password-file", pw2),
		with(bad("secret", "set", "db2/s3"), value(5)),
		with(bad("secret", "set", "db2/s3", "--open-password-file", wrongPW), value(5)),
		get("secret", "get", "db1/s1"),
		get("secret", "get", "db1/s1", "--open-password-file", pw1),
		get("secret", "get", "db2/s2", "--open-password-file", pw2),
		bad("secret", "get", "db2/s2", "--open-password-file", wrongPW),
		bad("secret", "get", "db2/s2", "--open-password-file", weakPW),
		ok("secret", "list"), ok("secret", "list", "db1", "--json"),
		ok("dmk", "add-encryption", "--db", "db1", "--by", "password", "--password-file", pw3),
		bad("dmk", "add-encryption", "--db", "db1", "--by", "password", "--password-file", pw3),
		bad("dmk", "add-encryption", "--db", "db1", "--by", "password", "--password-file", weakPW),
		ok("dmk", "drop-encryption", "--db", "db1", "--by", "password", "--password-file", pw3),
		bad("dmk", "drop-encryption", "--db", "db1", "--by", "password", "--password-file", pw1),
		bad("dmk", "drop-encryption", "--db", "db1", "--by", "password", "--password-file", wrongPW),
		bad("dmk", "add-encryption", "--db", "db2", "--by", "smk", "--open-password-file", wrongPW),
		ok("dmk", "add-encryption", "--db", "db2", "--by", "smk", "--open-password-file", pw2),
		ok("dmk", "drop-encryption", "--db", "db2", "--by", "smk"),
		// backups, regenerations, restores
		ok("smk", "backup", "--file", smkBackup, "--password-file", backupPW),
		bad("smk", "backup", "--file", smkBackup, "--password-file", backupPW),
		bad("smk", "backup", "--file", filepath.Join(out, "weak.age"), "--password-file", weakPW),
		ok("smk", "restore", "--file", smkBackup, "--password-file", backupPW), // the key in use: 15588, nothing to do
		bad("smk", "restore", "--file", smkBackup, "--password-file", wrongPW),
		ok("smk", "regenerate"),
		ok("smk", "restore", "--file", smkBackup, "--password-file", backupPW),
		ok("smk", "regenerate", "--algorithm", "mlkem768x25519"),
		ok("smk", "verify"), ok("smk", "verify", "--json"),
		ok("dmk", "backup", "--db", "db1", "--file", dmkBackup, "--password-file", backupPW),
		bad("dmk", "backup", "--db", "db2", "--file", filepath.Join(out, "dmk2.age"), "--password-file", backupPW, "--open-password-file", wrongPW),
		ok("dmk", "regenerate", "--db", "db1", "--password-file", pw4),
		bad("dmk", "restore", "--db", "db1", "--file", dmkBackup, "--password-file", wrongPW),
		ok("dmk", "restore", "--db", "db1", "--file", dmkBackup, "--password-file", backupPW, "--new-password-file", pw1),
		ok("dmk", "regenerate", "--db", "db2", "--password-file", pw4, "--open-password-file", pw2, "--algorithm", "mlkem768x25519"),
		// export and import
		ok("db", "export", "--db", "db1", "--file", export),
		ok("db", "import", "--file", export, "--db", "db1copy", "--open-password-file", pw1),
		bad("secret", "get", "db1copy/s1"),
		get("secret", "get", "db1copy/s1", "--open-password-file", pw1),
		ok("dmk", "add-encryption", "--db", "db1copy", "--by", "smk", "--open-password-file", pw1),
		ok("db", "list"), ok("db", "list", "--json"),
		// damaged values and heals
		before(func() { damage("credentials/c1.*.age") }, bad("credential", "get", "c1")),
		bad("smk", "regenerate"),
		ok("status"), // an unreadable value is not a damaged keystore
		before(repair, get("credential", "get", "c1")),
		before(func() { damage("databases/db1/secrets/s1.*.age") }, bad("secret", "get", "db1/s1")),
		before(repair, get("secret", "get", "db1/s1")),
		before(func() { damage("databases/db2/password.*.age") }, bad("secret", "get", "db2/s2", "--open-password-file", pw4)),
		before(repair, ok("smk", "verify")),
		before(func() { damage("smk/account.*.age") }, ok("smk", "verify")), // re-created from the machine encryption
		ok("credential", "set", "c3", "--identity", "svc", "--file", valueFile),
		// both encryptions invalid: 15466, logged
		elsewhere(bad("credential", "get", "c1")),
		with(elsewhere(bad("credential", "set", "c4", "--identity", "svc")), value(6)),
		elsewhere(bad("status")),
		// --force: orphans and kept encryptions, then recovery
		elsewhere(force("smk", "restore", "--file", smkBackup, "--password-file", backupPW, "--force")),
		bad("credential", "get", "c1"), // the restored key is the other account's now
		ok("smk", "alter", "--old-account-dir", otherAccount),
		bad("credential", "get", "c1"), // orphaned
		ok("smk", "recover"),           // with the encryptions restore --force kept
		get("credential", "get", "c1"),
		ok("smk", "alter", "--new-account-dir", otherAccount),
		ok("status"),
		ok("smk", "alter", "--old-account-dir", otherAccount),
		ok("smk", "machine-protection", "off"), ok("smk", "machine-protection", "on"),
		before(func() { damage("credentials/c2.*.age") }, force("smk", "regenerate", "--force")),
		before(repair, ok("smk", "recover", "--file", smkBackup, "--password-file", backupPW)),
		force("dmk", "regenerate", "--db", "db2", "--password-file", pw5, "--open-password-file", wrongPW, "--force"),
		bad("dmk", "recover", "--db", "db2", "--password-file", wrongPW, "--open-password-file", pw5),
		ok("dmk", "recover", "--db", "db2", "--password-file", pw4, "--open-password-file", pw5),
		get("secret", "get", "db2/s2", "--open-password-file", pw5),
		// everything listed, logged and removed
		ok("status"), ok("status", "--json"), ok("key-encryptions"), ok("key-encryptions", "--json"),
		ok("errorlog"),
		ok("credential", "rm", "c2"), ok("secret", "rm", "db1copy/s1"), ok("dmk", "drop", "--db", "db1copy"),
		ok("--help"), ok("--version"),
	}
	for _, s := range steps {
		if s.do != nil {
			s.do()
		}
		var stdin []byte
		if s.stdin != "" {
			stdin = []byte(s.stdin)
		}
		r := k.run(stdin, -1, s.args...)
		commands++
		outputs += len(r.stdout) + len(r.stderr)
		cmd := "keytree " + strings.Join(s.args, " ")
		if r.code == -1 {
			t.Fatalf("%s: %s", cmd, r.stderr)
		}
		switch {
		case s.force && (r.code == 0 || r.code == 10):
		case (r.code != 0) != s.fail || s.force:
			t.Fatalf("%s: exit %d, want failure %t\n%s%s", cmd, r.code, s.fail, r.stdout, r.stderr)
		}
		if s.fail {
			failing++
		}
		if crashOutput.Match(r.stderr) {
			t.Fatalf("%s: crash output:\n%s", cmd, r.stderr)
		}
		if findCanary(r.stderr, forms) {
			t.Fatalf("%s: the canary is on standard error:\n%s", cmd, r.stderr)
		}
		// A get prints the value, canary and all; nothing else prints it.
		if found, want := findCanary(r.stdout, forms), s.get && r.code == 0; found != want {
			t.Fatalf("%s: canary on standard output: %t, want %t\n%s", cmd, found, want, r.stdout)
		}
		if strings.Contains(strings.Join(s.args, " "), canary) {
			t.Fatalf("%s: the canary is in keytree's arguments", cmd)
		}
	}
	for _, e := range k.env {
		if strings.Contains(e, canary) {
			t.Fatal("the canary is in keytree's environment")
		}
	}

	// No file keytree wrote holds it: the keystore and its error log, the
	// protector directories, backups and exports.
	err := filepath.WalkDir(k.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if p == in {
			return filepath.SkipDir
		}
		if strings.Contains(p, canary) {
			t.Errorf("a file name holds the canary: %s", p)
		}
		if !d.Type().IsRegular() {
			return nil
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		files++
		if findCanary(data, forms) {
			t.Errorf("%s holds the canary", p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if log, err := os.ReadFile(filepath.Join(k.opts.Keystore, "errorlog")); err != nil || !bytes.Contains(log, []byte("15466")) {
		t.Errorf("the error log does not record the 15466 it was meant to: %v\n%s", err, log)
	}
	return commands, failing, outputs, files
}
