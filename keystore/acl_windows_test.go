//go:build windows

package keystore

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"github.com/keytree-dev/keytree/protect"
	"golang.org/x/sys/windows"
)

// P13 on Windows: what keytree creates gets a protected DACL for the
// account running keytree, SYSTEM and Administrators, and keytree refuses a
// keystore or protector file or directory whose DACL lets anyone else in.
//
// Wine, which runs these tests on Linux, does not store DACLs: it maps one
// to the file's Unix mode bits, only ever adding bits, and builds the DACL
// it reports from the mode (SYSTEM, the owner, and Everyone for the
// "other" bits). A DACL that grants Everyone read therefore reads back as
// granting Everyone read, and the refusals are tested under Wine; the exact
// DACL keytree sets is not, and that test runs on Windows only
// (docs/security.md, section 6.3).

func onWine() bool {
	return windows.NewLazySystemDLL("ntdll.dll").NewProc("wine_get_version").Find() == nil
}

func testUserSID(t *testing.T) *windows.SID {
	t.Helper()
	sid, err := fsio.CurrentUserSID()
	if err != nil {
		t.Fatal(err)
	}
	return sid
}

// TestCreatedPrivate checks the DACL of what keytree creates: a keystore
// directory, its subdirectories and files, protector directories and
// secrets. Windows only: Wine does not store DACLs.
func TestCreatedPrivate(t *testing.T) {
	if onWine() {
		t.Skip("Wine does not store DACLs (docs/security.md, section 6.3)")
	}
	d := testDirs(t)
	base := d
	// Directories keytree creates itself, not the test's.
	d.Keystore = filepath.Join(base.Keystore, "ks")
	d.Account = filepath.Join(base.Account, "account")
	d.Machine = filepath.Join(base.Machine, "machine")
	_, ks := initTestKeystore(t, d)
	setTestCredential(t, ks, "c", "u", []byte("v"))
	user := testUserSID(t)
	check := func(p string, dir bool) {
		t.Helper()
		sd, err := windows.GetNamedSecurityInfo(p, windows.SE_FILE_OBJECT, windows.DACL_SECURITY_INFORMATION)
		if err != nil {
			t.Fatal(err)
		}
		want, err := windows.SecurityDescriptorFromString(fsio.PrivateSDDL(user, dir))
		if err != nil {
			t.Fatal(err)
		}
		if sd.String() != want.String() {
			t.Errorf("%s: DACL %s, want %s", p, sd, want)
		}
		if c, _, err := sd.Control(); err != nil || c&windows.SE_DACL_PROTECTED == 0 {
			t.Errorf("%s: DACL not protected (control %#x, %v)", p, c, err)
		}
	}
	for _, p := range []string{d.Keystore, filepath.Join(d.Keystore, smkDir), filepath.Join(d.Keystore, credentialsDir), d.Account, d.Machine} {
		check(p, true)
	}
	for _, p := range []string{
		filepath.Join(d.Keystore, keystoreFile), filepath.Join(d.Keystore, smkFile),
		filepath.Join(d.Keystore, credentialsDir, "c.toml"),
		filepath.Join(d.Account, protect.AccountSecretName),
		filepath.Join(d.Machine, protect.MachineSecretName),
	} {
		check(p, false)
	}
}

// grantEveryone replaces p's DACL with one that also lets Everyone read,
// and checks that the DACL read back says so (under Wine too: it maps the
// grant to the mode's "other" bits).
func grantEveryone(t *testing.T, p string, dir bool) {
	t.Helper()
	inherit := ""
	if dir {
		inherit = "OICI"
	}
	me := testUserSID(t).String()
	setDACL(t, p, "D:P(A;"+inherit+";FA;;;"+me+")(A;"+inherit+";FR;;;WD)")
	sd, err := windows.GetNamedSecurityInfo(p, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION|windows.DACL_SECURITY_INFORMATION)
	if err != nil {
		t.Fatal(err)
	}
	if others, err := fsio.OthersAllowed(sd); err != nil || !slices.Contains(others, "S-1-1-0") {
		t.Fatalf("%s: granting Everyone read did not take: DACL %s", p, sd)
	}
}

func setDACL(t *testing.T, p, sddl string) {
	t.Helper()
	sd, err := windows.SecurityDescriptorFromString(sddl)
	if err != nil {
		t.Fatal(err)
	}
	dacl, _, err := sd.DACL()
	if err != nil {
		t.Fatal(err)
	}
	err = windows.SetNamedSecurityInfo(p, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		t.Fatal(err)
	}
}

// TestACLRefusals lets Everyone read one file or directory at a time and
// expects the commands that read it to refuse with ErrPermissions, leaving
// the file as it is.
func TestACLRefusals(t *testing.T) {
	targets := map[string]func(d Dirs, ks *Keystore) (string, bool){
		"keystore dir": func(d Dirs, _ *Keystore) (string, bool) { return d.Keystore, true },
		"account dir":  func(d Dirs, _ *Keystore) (string, bool) { return d.Account, true },
		"machine dir":  func(d Dirs, _ *Keystore) (string, bool) { return d.Machine, true },
		"keystore.toml": func(d Dirs, _ *Keystore) (string, bool) {
			return filepath.Join(d.Keystore, keystoreFile), false
		},
		"smk.toml": func(d Dirs, _ *Keystore) (string, bool) { return filepath.Join(d.Keystore, smkFile), false },
		"account secret": func(d Dirs, _ *Keystore) (string, bool) {
			return filepath.Join(d.Account, protect.AccountSecretName), false
		},
		"machine secret": func(d Dirs, _ *Keystore) (string, bool) {
			return filepath.Join(d.Machine, protect.MachineSecretName), false
		},
		"credential": func(d Dirs, _ *Keystore) (string, bool) {
			return filepath.Join(d.Keystore, credentialsDir, "c.toml"), false
		},
	}
	for name, target := range targets {
		t.Run(name, func(t *testing.T) {
			d, ks := newTestKeystore(t)
			setTestCredential(t, ks, "c", "u", []byte("v"))
			p, dir := target(d, ks)
			before, _ := os.ReadFile(p) // nil for a directory
			grantEveryone(t, p, dir)
			ops := map[string]func(ks *Keystore) error{
				"smk verify":     func(ks *Keystore) error { _, err := ks.VerifySMK(); return err },
				"credential get": func(ks *Keystore) error { _, _, err := ks.GetCredential("c"); return err },
			}
			if name == "credential" {
				delete(ops, "smk verify") // reads no credential
			}
			wantPermissionRefusals(t, d, name+" readable by Everyone", ops)
			if after, _ := os.ReadFile(p); !bytes.Equal(before, after) {
				t.Error("the refused file was rewritten")
			}
			if onWine() {
				return // Wine cannot take the grant back (see above)
			}
			inherit := ""
			if dir {
				inherit = "OICI"
			}
			me := testUserSID(t).String()
			setDACL(t, p, "D:P(A;"+inherit+";FA;;;"+me+")(A;"+inherit+";FA;;;SY)")
			wantCredential(t, ks, "c", "v", "after making it private again")
		})
	}
}
