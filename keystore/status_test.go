package keystore

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/protect"
)

func TestStatus(t *testing.T) {
	d := testDirs(t)
	res, ks := initTestKeystore(t, d)
	for _, n := range []string{"a", "b", "c"} {
		if _, err := ks.SetCredential(n, "u", []byte(n)); err != nil {
			t.Fatal(err)
		}
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
		if _, err := ks.SetCredential(n, "u", []byte(n)); err != nil {
			t.Fatal(err)
		}
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
	d := testDirs(t)
	_, ks := initTestKeystore(t, d)
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
	f.WriteString("\x1b[2J\x1b]0;pwned\x07 evil\r\n\xff\xfe\n")
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
