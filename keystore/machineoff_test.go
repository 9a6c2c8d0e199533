package keystore

import (
	"bytes"
	"path/filepath"
	"strings"
	"testing"
)

// smk.toml is not authenticated: an edit to machine_protection = false must
// not be enough to delete the machine encryption. keytree keeps a machine
// encryption of the current generation that smk.toml says should not
// exist, says so on every command, opens the key with it if it can, and
// refuses to re-key until the user settles it; only smk machine-protection
// off removes it.

// editMachineProtectionOff sets machine_protection = false in smk.toml by
// hand, as someone who can write the keystore could. In a keystore of
// format 2 the edit is refused (auth_test.go); these tests keep format 1's
// behaviour, which such keystores keep until they are upgraded.
func editMachineProtectionOff(t *testing.T, d Dirs) {
	t.Helper()
	p := filepath.Join(d.Keystore, smkFile)
	data := readTestFile(t, p)
	edited := bytes.Replace(data, []byte("machine_protection = true"), []byte("machine_protection = false"), 1)
	if bytes.Equal(edited, data) {
		t.Fatalf("no machine_protection = true in %s", data)
	}
	writeTestFile(t, p, edited)
}

// wantDisagreementWarning checks that warnings holds one warning per
// command about the machine encryption that smk.toml disowns.
func wantDisagreementWarning(t *testing.T, what string, warnings []string, path string) {
	t.Helper()
	if len(warnings) != 1 {
		t.Fatalf("%s: warnings %q, want one", what, warnings)
	}
	w := warnings[0]
	if !strings.Contains(w, "smk.toml says machine protection is off") || !strings.Contains(w, path) ||
		!strings.Contains(w, "keeps it") || !strings.Contains(w, "smk machine-protection off") {
		t.Errorf("%s: warning %q", what, w)
	}
}

func TestMachineProtectionEditedOff(t *testing.T) {
	f := newFormat1HealFixture(t)
	machineBlob := filepath.Join(f.dirs.Keystore, smkDir, "machine.1.age")
	saved := f.blob(t, "machine")
	editMachineProtectionOff(t, f.dirs)

	var warnings []string
	ks := openTestKeystore(t, Options{Dirs: f.dirs, Warning: func(m string) { warnings = append(warnings, m) }})
	ops := []struct {
		name string
		op   func() error
	}{
		{"credential get", func() error { _, _, err := ks.GetCredential("sa"); return err }},
		{"credential set", func() error { _, err := ks.SetCredential("new", "u", []byte("v")); return err }},
		{"smk verify", func() error { _, err := ks.VerifySMK(); return err }},
		{"smk backup", func() error {
			_, err := ks.BackupSMK(filepath.Join(newTestDir(t), "b.age"), []byte("Backup-Passw0rd-7"), SMKOptions{})
			return err
		}},
		{"clean-up after an unreadable pending.toml (a full sweep)", func() error {
			writeTestFile(t, ks.path(pendingFile), []byte("garbage ["))
			_, err := ks.SetCredential("new2", "u", []byte("v"))
			return err
		}},
		// Re-keying would give the new key no machine encryption and
		// remove the old one with the old key: refused until the user
		// settles it.
		{"smk regenerate", func() error {
			before := treeSnapshot(t, f.dirs.Keystore, lockFile, errorlogFile)
			_, err := ks.RegenerateSMK(SMKOptions{Force: true})
			wantKind(t, err, ErrRefused)
			if ke := keystoreError(t, err); !strings.Contains(ke.Text, machineBlob) || ke.Remedy.Kind != RemedySettleMachineProtection {
				t.Errorf("regenerate: %q, remedy %+v", ke.Text, ke.Remedy)
			}
			if diff := diffSnapshots(before, treeSnapshot(t, f.dirs.Keystore, lockFile, errorlogFile)); diff != "" {
				t.Fatalf("a refused regenerate changed the keystore: %s", diff)
			}
			return nil
		}},
		{"smk machine-protection on", func() error { _, err := ks.SetMachineProtection(true); return err }},
	}
	for i, o := range ops {
		if o.name == "smk machine-protection on" {
			// on uses it again: a fresh machine encryption, smk.toml
			// agreeing, nothing more to warn of.
			warnings = nil
			if err := o.op(); err != nil {
				t.Fatalf("%s: %v", o.name, err)
			}
			wantDisagreementWarning(t, o.name, warnings, machineBlob)
			wantExists(t, machineBlob, true)
			warnings = nil
			f.checkOpens(t, f.dirs)
			if _, _, err := ks.GetCredential("sa"); err != nil || len(warnings) != 0 {
				t.Fatalf("after on: %v, warnings %q", err, warnings)
			}
			continue
		}
		warnings = nil
		if err := o.op(); err != nil {
			t.Fatalf("%s: %v", o.name, err)
		}
		wantDisagreementWarning(t, o.name, warnings, machineBlob)
		if got := readTestFile(t, machineBlob); !bytes.Equal(got, saved) {
			t.Fatalf("after %s (op %d) the machine encryption was removed or changed", o.name, i)
		}
	}
}

// TestMachineProtectionEditedOffOpens: with smk.toml edited and the account
// encryption lost too, the machine encryption still opens the key (the
// edit alone would have made it 15466) and the account one is healed from
// it.
func TestMachineProtectionEditedOffOpens(t *testing.T) {
	f := newFormat1HealFixture(t)
	editMachineProtectionOff(t, f.dirs)
	d := f.dirs
	d.Account = newTestDir(t)
	var warnings, notices []string
	ks := openTestKeystore(t, Options{Dirs: d,
		Warning: func(m string) { warnings = append(warnings, m) },
		Notice:  func(m string) { notices = append(notices, m) }})
	_, v, err := ks.GetCredential("sa")
	if err != nil || !bytes.Equal(v, f.value) {
		t.Fatalf("credential: %q, %v", v, err)
	}
	wantDisagreementWarning(t, "credential get", warnings, filepath.Join(d.Keystore, smkDir, "machine.1.age"))
	if len(notices) != 1 || !strings.Contains(notices[0], "re-created it from the machine encryption") {
		t.Errorf("notices %q", notices)
	}
}

// TestMachineProtectionOffRemovesDisowned: smk machine-protection off,
// which the user runs, removes a machine encryption that smk.toml already
// disowns (left by an edit, or by an off that stopped after its commit).
func TestMachineProtectionOffRemovesDisowned(t *testing.T) {
	f := newFormat1HealFixture(t)
	editMachineProtectionOff(t, f.dirs)
	var warnings []string
	ks := openTestKeystore(t, Options{Dirs: f.dirs, Warning: func(m string) { warnings = append(warnings, m) }})
	changed, err := ks.SetMachineProtection(false)
	if err != nil || !changed {
		t.Fatalf("off: changed %v, %v", changed, err)
	}
	wantExists(t, filepath.Join(f.dirs.Keystore, smkDir, "machine.1.age"), false)
	warnings = nil
	if changed, err := ks.SetMachineProtection(false); err != nil || changed {
		t.Fatalf("off again: changed %v, %v", changed, err)
	}
	if _, _, err := ks.GetCredential("sa"); err != nil || len(warnings) != 0 {
		t.Fatalf("after off: %v, warnings %q", err, warnings)
	}
}
