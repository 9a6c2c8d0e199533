package keystore

import (
	"os"
	"strings"
	"syscall"
	"testing"
)

// TestReadFaultAtEveryRead: P18 under injected I/O errors. A forced
// regenerate is run once per read it makes, with that one read failing
// (EIO), as a failing disk or a transient network file system error would.
// Whatever the operation did, and whether it succeeded, nothing is lost:
// after the next writer's clean-up, and a recover with the current
// protectors (or the old password) for whatever it orphaned, every value
// reads back exactly.
func TestReadFaultAtEveryRead(t *testing.T) {
	t.Parallel()
	const (
		hrPassword  = "Database-Passw0rd-1"
		hrNew       = "Database-Passw0rd-2"
		pwdPassword = "Database-Passw0rd-3"
	)
	base := testDirs(t)
	_, ks := initTestKeystore(t, base)
	values := map[string]string{}
	for _, n := range []string{"mail", "db"} {
		values["credential/"+n] = "value of " + n
		if _, err := ks.SetCredential(n, "svc", []byte(values["credential/"+n])); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := ks.CreateDMK("hr", []byte(hrPassword), DMKOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.CreateDMK("pwd", []byte(pwdPassword), DMKOptions{NoSMKEncryption: true}); err != nil {
		t.Fatal(err)
	}
	for _, s := range []struct{ db, name string }{{"hr", "a"}, {"hr", "b"}, {"pwd", "c"}} {
		values[s.db+"/"+s.name] = "value of " + s.db + "/" + s.name
		var open []byte
		if s.db == "pwd" {
			open = []byte(pwdPassword)
		}
		if _, err := ks.SetSecret(s.db, s.name, []byte(values[s.db+"/"+s.name]), open); err != nil {
			t.Fatal(err)
		}
	}

	ops := []struct {
		name string
		run  func(ks *Keystore) error
		// recover brings back what the operation may have orphaned; with
		// nothing orphaned it fails, and the read-back below checks either way.
		recover func(ks *Keystore)
	}{
		{"smk regenerate --force", func(ks *Keystore) error {
			_, err := ks.RegenerateSMK(SMKOptions{Force: true})
			return err
		}, func(ks *Keystore) {
			_, _ = ks.RecoverSMK("", nil, SMKOptions{})
		}},
		{"dmk regenerate --force", func(ks *Keystore) error {
			_, err := ks.RegenerateDMK("hr", []byte(hrNew), DMKOptions{Force: true})
			return err
		}, func(ks *Keystore) {
			_, _ = ks.RecoverDMK("hr", "", []byte(hrPassword), DMKOptions{})
			_, _ = ks.RecoverSMK("", nil, SMKOptions{})
		}},
	}
	runs := 0
	for _, op := range ops {
		t.Run(op.name, func(t *testing.T) {
			// Count the reads of an undisturbed run.
			reads := 0
			d := copyDirs(t, base)
			ks := openTestKeystore(t, Options{Dirs: d})
			ks.setFault(serialized(func(kind, path string) error {
				if kind == "read" {
					reads++
				}
				return nil
			}))
			err := op.run(ks)
			if err != nil {
				t.Fatalf("undisturbed run: %v", err)
			}
			if reads < 5 {
				t.Fatalf("only %d reads counted", reads)
			}
			for n := 1; n <= reads; n++ {
				d := copyDirs(t, base)
				ks := openTestKeystore(t, Options{Dirs: d})
				seen, failed := 0, ""
				ks.setFault(serialized(func(kind, path string) error {
					if kind != "read" {
						return nil
					}
					seen++
					if seen == n {
						failed = path
						return &os.PathError{Op: "read", Path: path, Err: syscall.EIO}
					}
					return nil
				}))
				opErr := op.run(ks)
				runs++
				ks = openTestKeystore(t, Options{Dirs: d})
				if _, err := ks.SetCredential("after-fault", "svc", []byte("x")); err != nil {
					t.Fatalf("read %d (%s) failed, op error %v; next writer: %v", n, failed, opErr, err)
				}
				op.recover(ks)
				for item, want := range values {
					if got, err := readBack(ks, item, hrPassword, hrNew, pwdPassword); err != nil || got != want {
						t.Fatalf("read %d (%s) failed, op error %v: %s = %q, %v; want %q", n, failed, opErr, item, got, err, want)
					}
				}
			}
		})
	}
	t.Logf("%d forced operations, each with one read failing", runs)
}

// readBack reads a credential ("credential/NAME") or a secret ("DB/NAME"),
// trying the SMK first and then each password.
func readBack(ks *Keystore, item string, passwords ...string) (string, error) {
	db, name, _ := strings.Cut(item, "/")
	if db == "credential" {
		_, v, err := ks.GetCredential(name)
		return string(v), err
	}
	v, err := ks.GetSecret(db, name, nil)
	for _, p := range passwords {
		if err == nil {
			break
		}
		v, err = ks.GetSecret(db, name, []byte(p))
	}
	return string(v), err
}

// copyDirs copies a keystore and its two protector directories into new
// directories, modes included.
func copyDirs(t *testing.T, d Dirs) Dirs {
	t.Helper()
	c := testDirs(t)
	for _, p := range [][2]string{{d.Keystore, c.Keystore}, {d.Account, c.Account}, {d.Machine, c.Machine}} {
		if err := copyTree(p[0], p[1]); err != nil {
			t.Fatal(err)
		}
	}
	return c
}
