package keystore

import (
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

func TestStatus(t *testing.T) {
	d := testDirs(t)
	res, ks := initTestKeystore(t, d)
	for _, n := range []string{"a", "b", "c"} {
		setTestCredential(t, ks, n, "u", []byte(n))
	}
	st, err := ks.Status()
	if err != nil {
		t.Fatal(err)
	}
	if st.Dir != d.Keystore || st.ID != res.ID || st.AccountDir != d.Account || st.MachineDir != d.Machine {
		t.Errorf("status dirs %+v", st)
	}
	if st.Created.IsZero() || time.Since(st.Created) > time.Hour {
		t.Errorf("created %v", st.Created)
	}
	if st.Credentials != 3 || len(st.Orphans) != 0 {
		t.Errorf("credentials %d, orphans %v", st.Credentials, st.Orphans)
	}
	if st.SMK == nil || st.SMK.Thumbprint != res.Thumbprint || st.SMK.Algorithm != protect.X25519 || st.SMK.Generation != 1 || !st.SMK.MachineProtection {
		t.Fatalf("smk %+v", st.SMK)
	}
	for _, e := range st.SMK.Encryptions {
		if !e.Enabled || !e.Valid {
			t.Errorf("encryption %+v", e)
		}
	}
	if err := ks.RemoveCredential("b"); err != nil {
		t.Fatal(err)
	}
	if st, err := ks.Status(); err != nil || st.Credentials != 2 {
		t.Fatalf("after rm: %+v, %v", st, err)
	}

	// Status repairs, as every command that opens the SMK does.
	d2 := d
	d2.Machine = newTestDir(t)
	st, err = openTestKeystore(t, Options{Dirs: d2}).Status()
	if err != nil || !st.SMK.Encryptions[1].Recreated {
		t.Fatalf("status on a new machine: %+v, %v", st, err)
	}
}

func TestKeyEncryptions(t *testing.T) {
	d := testDirs(t)
	res, ks := initTestKeystore(t, d)
	for _, n := range []string{"b", "a"} {
		setTestCredential(t, ks, n, "u", []byte(n))
	}
	rows, err := ks.KeyEncryptions()
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4 {
		t.Fatalf("rows %+v", rows)
	}
	// The service master key's encryptions come first, as in SQL Server's
	// sys.key_encryptions, then the values it encrypts.
	want := map[string]KeyEncryption{
		"account": {Key: "service master key", Thumbprint: AccountThumbprint, CryptType: "ESKM", CryptTypeDesc: "ENCRYPTION BY MASTER KEY", Protector: "account", State: "valid"},
		"machine": {Key: "service master key", Thumbprint: MachineThumbprint, CryptType: "ESKM", CryptTypeDesc: "ENCRYPTION BY MASTER KEY", Protector: "machine", State: "valid"},
	}
	for _, r := range rows[:2] {
		if w := want[r.Protector]; r != w {
			t.Errorf("row %+v, want %+v", r, w)
		}
		delete(want, r.Protector)
	}
	creds := map[string]bool{}
	for _, r := range rows[2:] {
		creds[r.Key] = true
		if r.Thumbprint != res.Thumbprint || r.Protector != "smk" || r.State != "current" || r.CryptType != "ESKM" {
			t.Errorf("credential row %+v", r)
		}
	}
	if !creds["credential/a"] || !creds["credential/b"] {
		t.Errorf("credential rows %v", creds)
	}

	if _, err := ks.SetMachineProtection(false); err != nil {
		t.Fatal(err)
	}
	rows, err = ks.KeyEncryptions()
	if err != nil {
		t.Fatal(err)
	}
	states := map[string]string{}
	for _, r := range rows {
		if r.Key == "service master key" {
			states[r.Protector] = r.State
		}
	}
	if states["account"] != "valid" || states["machine"] != "off" {
		t.Fatalf("machine protection off: %v", states)
	}
}

func TestErrorLog(t *testing.T) {
	d, ks := newTestKeystore(t)
	log, err := ks.ErrorLog()
	if err != nil || log != "" {
		t.Fatalf("fresh keystore's error log: %q, %v", log, err)
	}
	// A repair is logged with a timestamp.
	d2 := d
	d2.Account = newTestDir(t)
	if _, err := openTestKeystore(t, Options{Dirs: d2}).VerifySMK(); err != nil {
		t.Fatal(err)
	}
	lines := errorLogLines(t, ks, "re-created")
	if len(lines) != 1 {
		t.Fatalf("error log: %q", lines)
	}
	stamp, _, _ := strings.Cut(lines[0], " ")
	if _, err := time.Parse(time.RFC3339, stamp); err != nil {
		t.Errorf("log line %q does not start with a timestamp: %v", lines[0], err)
	}

	// The log is read from disk like any other file: a hostile one cannot
	// drive the terminal it is printed on.
	f, err := os.OpenFile(ks.path(errorlogFile), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("\x1b[2J\x1b]0;pwned\x07 evil\r\n\xff\xfe\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	log, err = ks.ErrorLog()
	if err != nil {
		t.Fatal(err)
	}
	for _, bad := range []string{"\x1b", "\x07", "\r", "\xff"} {
		if strings.Contains(log, bad) {
			t.Errorf("error log passes %q through", bad)
		}
	}
	if !strings.Contains(log, "evil") || !strings.Contains(log, "re-created") {
		t.Errorf("error log lost text: %q", log)
	}

	// A message with a newline stays one line.
	ks.logEvent("first\nsecond")
	if lines := errorLogLines(t, ks, "first"); len(lines) != 1 || !strings.Contains(lines[0], "second") {
		t.Errorf("multi-line message logged as %q", lines)
	}
}

// TestStatusGoesThroughDamage: status lists every damaged item, describes
// the rest, returns the first damage's error, and writes nothing.
func TestStatusGoesThroughDamage(t *testing.T) {
	_, ks := initTestKeystore(t, testDirs(t))
	for _, n := range []string{"a", "b"} {
		setTestCredential(t, ks, n, "u", []byte(n))
	}
	if _, err := ks.CreateDMK("db", []byte("Database-Passw0rd-1"), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"s1", "s2"} {
		if _, err := ks.SetSecret("db", n, []byte(n), nil); err != nil {
			t.Fatal(err)
		}
	}
	prependTo := func(p string) {
		t.Helper()
		writeTestFile(t, p, append([]byte("bogus = 1\n"), readTestFile(t, p)...))
	}
	prependTo(ks.path(smkFile))
	prependTo(ks.credentialMetaPath("b"))
	if err := os.Remove(ks.dbPath("db", secretsDir, "s2.1.1.age")); err != nil {
		t.Fatal(err)
	}
	before := treeSnapshot(t, ks.dir)

	st, err := ks.Status()
	if !errors.Is(err, ErrCorrupt) || !strings.Contains(err.Error(), "smk.toml") {
		t.Fatalf("status error %v, want smk.toml's damage", err)
	}
	if st == nil {
		t.Fatal("status returned nothing with the damage")
	}
	if st.SMK != nil || st.SMKState != SMKUnreadable {
		t.Errorf("smk %+v, state %q; want nil, unreadable", st.SMK, st.SMKState)
	}
	if st.Credentials != 2 || st.Databases != 1 || st.Secrets != 2 {
		t.Errorf("counts %d, %d, %d; want 2, 1, 2", st.Credentials, st.Databases, st.Secrets)
	}
	want := []struct{ item, path, problem string }{
		{"smk", ks.path(smkFile), "unknown key bogus"},
		{"credential/b", ks.credentialMetaPath("b"), "unknown key bogus"},
		{"secret/db/s2", ks.dbPath("db", secretsDir, "s2.1.1.age"), "is missing"},
	}
	if len(st.Damaged) != len(want) {
		t.Fatalf("damaged %+v, want %d items", st.Damaged, len(want))
	}
	for i, w := range want {
		d := st.Damaged[i]
		if d.Item != w.item || d.Path != w.path || d.Problem != w.problem || d.Err == nil {
			t.Errorf("damaged[%d] = %+v, want %+v", i, d, w)
		}
	}
	if diff := diffSnapshots(before, treeSnapshot(t, ks.dir)); diff != "" {
		t.Fatalf("status changed the keystore: %s", diff)
	}
}

func TestLeadingPath(t *testing.T) {
	for _, c := range []struct{ text, want string }{
		{"/ks/smk.toml: unknown key", "/ks/smk.toml"},
		{"/acc/account.key is accessible by group or others", "/acc/account.key"},
		{"/ks2/x: y", ""},
		{"no path here", ""},
	} {
		if got := leadingPath(c.text, "/ks", "/acc"); got != c.want {
			t.Errorf("leadingPath(%q) = %q, want %q", c.text, got, c.want)
		}
	}
}

// TestDiagnoseGoesThroughDamage: keytree doctor's walk, like status's,
// lists a missing value file as damage and still counts and describes the
// rest, with the last backups.
func TestDiagnoseGoesThroughDamage(t *testing.T) {
	_, ks := newTestKeystore(t)
	for _, c := range []string{"c1", "c2"} {
		setTestCredential(t, ks, c, "svc", []byte(c+" value"))
	}
	if _, err := ks.CreateDMK("app", []byte("a password for app"), DMKOptions{SkipPasswordPolicy: true, NoSMKEncryption: true}); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(ks.path(credentialsDir, formats.BlobName("c1", 1, 1))); err != nil {
		t.Fatal(err)
	}
	diag, err := ks.Diagnose()
	if err != nil {
		t.Fatalf("diagnose: %v", err)
	}
	if len(diag.Damaged) != 1 || diag.Damaged[0].Item != "credential/c1" {
		t.Fatalf("damaged: %+v", diag.Damaged)
	}
	if diag.Credentials != 2 || diag.Databases != 1 || diag.SMK == nil {
		t.Fatalf("the rest is not described: %+v", diag)
	}
	if len(diag.NoSMKEncryption) != 1 || diag.NoSMKEncryption[0] != "app" {
		t.Fatalf("databases without an SMK encryption: %v", diag.NoSMKEncryption)
	}
	if len(diag.Backups) != 2 || diag.Backups[0].Key != "smk" || diag.Backups[1].Key != "dmk/app" {
		t.Fatalf("backups: %+v", diag.Backups)
	}
}
