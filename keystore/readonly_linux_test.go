package keystore

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestReadOnlyKeystore: readers work on a keystore on a read-only file
// system (a mounted backup, a read-only bind mount), with its lock file or
// without; writers fail cleanly. The test runs itself again in a mount
// namespace of its own, where the keystore is bind-mounted read-only.
func TestReadOnlyKeystore(t *testing.T) {
	if dirs := os.Getenv("KEYTREE_TEST_READONLY_DIRS"); dirs != "" {
		readOnlyChild(t, dirs)
		return
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1) for a mount namespace")
	}
	for _, withLock := range []bool{true, false} {
		d, ks := linkTestKeystore(t)
		if !withLock {
			if err := os.Remove(ks.path(lockFile)); err != nil {
				t.Fatal(err)
			}
		}
		before := treeSnapshot(t, d.Keystore)
		enc, _ := json.Marshal(d)
		// -r maps the caller to root in a new user namespace where it may
		// mount; as root, -m alone is enough.
		ns := "-rm"
		if os.Geteuid() == 0 {
			ns = "-m"
		}
		script := `mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && exec "$2" -test.run '^TestReadOnlyKeystore$' -test.count=1`
		cmd := exec.Command("unshare", ns, "sh", "-c", script, "sh", d.Keystore, os.Args[0])
		cmd.Env = append(os.Environ(), "KEYTREE_TEST_READONLY_DIRS="+string(enc))
		out, err := cmd.CombinedOutput()
		if strings.Contains(string(out), "mount:") || strings.Contains(string(out), "unshare:") {
			t.Skipf("no read-only bind mount here: %s", out)
		}
		if err != nil {
			t.Fatalf("lock file present: %v; readers on a read-only keystore: %v\n%s", withLock, err, out)
		}
		if diff := diffSnapshots(before, treeSnapshot(t, d.Keystore)); diff != "" {
			t.Fatalf("the keystore changed: %s", diff)
		}
	}
}

func readOnlyChild(t *testing.T, enc string) {
	var d Dirs
	if err := json.Unmarshal([]byte(enc), &d); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(d.Keystore, "probe"), nil, 0o600); err == nil {
		t.Fatal("the keystore is writable: the mount did not take")
	}
	ks := openTestKeystore(t, Options{Dirs: d})
	wantCredential(t, ks, "c", "credential value", "credential get")
	if v, err := ks.GetSecret("hr", "s", nil); err != nil || string(v) != "secret value" {
		t.Fatalf("secret get: %q, %v", v, err)
	}
	if _, err := ks.Status(); err != nil {
		t.Fatalf("status: %v", err)
	}
	if _, err := ks.ListCredentials(); err != nil {
		t.Fatalf("credential list: %v", err)
	}
	if _, err := ks.SetCredential("c", "u", []byte("new")); err == nil {
		t.Fatal("credential set on a read-only keystore succeeded")
	}
}
