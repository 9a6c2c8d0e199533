//go:build windows

package fsio

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"unsafe"

	"golang.org/x/sys/windows"
)

// On Windows, "owner-only" is an ACL rather than mode bits. keytree gives
// what it creates a protected DACL (one that inherits nothing from its
// directory) with full control for three SIDs: the account running keytree,
// named by its SID from the process token rather than the OWNER RIGHTS SID,
// so that the grant does not move with a change of owner; SYSTEM; and the
// local Administrators group, who can take any file anyway. These are the
// entries a user profile's folders carry, and the ones OpenSSH for Windows
// accepts on a private key. Directories pass the entries on to what is
// created in them (OICI), so a file is private from its creation, before
// fixMode replaces its DACL.
//
// A DACL is accepted when every entry that grants access, and applies to the
// object itself, names one of those three or the file's owner (the owner
// plays the part of the file's uid on Unix; who may own a keystore is
// the keystore's owner check). Entries that deny access are ignored. A missing or
// NULL DACL grants everyone everything and is refused.

var (
	sidSystem = mustSID(windows.WinLocalSystemSid)
	sidAdmins = mustSID(windows.WinBuiltinAdministratorsSid)
)

func mustSID(t windows.WELL_KNOWN_SID_TYPE) *windows.SID {
	sid, err := windows.CreateWellKnownSid(t)
	if err != nil {
		panic(err)
	}
	return sid
}

// CurrentUserSID is the SID of the account running keytree.
var CurrentUserSID = sync.OnceValues(func() (*windows.SID, error) {
	u, err := windows.GetCurrentProcessToken().GetTokenUser()
	if err != nil {
		return nil, fmt.Errorf("read the current account's SID: %w", err)
	}
	return u.User.Sid.Copy()
})

// PrivateSDDL is the security descriptor keytree gives its files (dir
// false) and directories, in SDDL.
func PrivateSDDL(user *windows.SID, dir bool) string {
	inherit := ""
	if dir {
		inherit = "OICI"
	}
	var b strings.Builder
	b.WriteString("D:P")
	for _, sid := range []string{user.String(), "SY", "BA"} {
		fmt.Fprintf(&b, "(A;%s;FA;;;%s)", inherit, sid)
	}
	return b.String()
}

// privateDACL builds the DACL of PrivateSDDL.
func privateDACL(dir bool) (*windows.ACL, error) {
	user, err := CurrentUserSID()
	if err != nil {
		return nil, err
	}
	sd, err := windows.SecurityDescriptorFromString(PrivateSDDL(user, dir))
	if err != nil {
		return nil, err
	}
	dacl, _, err := sd.DACL()
	return dacl, err
}

// setPrivate replaces the DACL of the file or directory f with keytree's
// protected one. f's own handle cannot change a DACL (os.OpenFile does not
// ask for WRITE_DAC), so the same file is opened again through it with
// ReOpenFile: no path is looked up, and no link or rename in between can
// make the DACL land on another file.
func setPrivate(f *os.File, dir bool) error {
	dacl, err := privateDACL(dir)
	if err != nil {
		return err
	}
	var flags uint32
	if dir {
		flags = windows.FILE_FLAG_BACKUP_SEMANTICS
	}
	h, err := reOpenFile(windows.Handle(f.Fd()), windows.READ_CONTROL|windows.WRITE_DAC,
		windows.FILE_SHARE_READ|windows.FILE_SHARE_WRITE|windows.FILE_SHARE_DELETE, flags)
	if err != nil {
		return &fs.PathError{Op: "set the ACL of", Path: f.Name(), Err: err}
	}
	defer func() { _ = windows.CloseHandle(h) }()
	err = windows.SetSecurityInfo(h, windows.SE_FILE_OBJECT,
		windows.DACL_SECURITY_INFORMATION|windows.PROTECTED_DACL_SECURITY_INFORMATION, nil, nil, dacl, nil)
	if err != nil {
		return &fs.PathError{Op: "set the ACL of", Path: f.Name(), Err: err}
	}
	return nil
}

var procReOpenFile = windows.NewLazySystemDLL("kernel32.dll").NewProc("ReOpenFile")

func reOpenFile(h windows.Handle, access, share, flags uint32) (windows.Handle, error) {
	r, _, err := procReOpenFile.Call(uintptr(h), uintptr(access), uintptr(share), uintptr(flags))
	if windows.Handle(r) == windows.InvalidHandle {
		return windows.InvalidHandle, err
	}
	return windows.Handle(r), nil
}

// fileSecurity reads the owner and DACL of f, or of path when f is nil.
func fileSecurity(path string, f *os.File) (*windows.SECURITY_DESCRIPTOR, error) {
	const info = windows.OWNER_SECURITY_INFORMATION | windows.DACL_SECURITY_INFORMATION
	var sd *windows.SECURITY_DESCRIPTOR
	var err error
	if f != nil {
		sd, err = windows.GetSecurityInfo(windows.Handle(f.Fd()), windows.SE_FILE_OBJECT, info)
	} else {
		sd, err = windows.GetNamedSecurityInfo(path, windows.SE_FILE_OBJECT, info)
	}
	if err != nil {
		return nil, &fs.PathError{Op: "read the ACL of", Path: path, Err: err}
	}
	return sd, nil
}

// OthersAllowed lists who, besides the owner, the account running keytree,
// SYSTEM and Administrators, the DACL of sd lets in: SIDs as strings, or
// "everyone" for a missing or NULL DACL, or a description of an entry
// keytree does not read. Empty means private.
func OthersAllowed(sd *windows.SECURITY_DESCRIPTOR) ([]string, error) {
	user, err := CurrentUserSID()
	if err != nil {
		return nil, err
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return nil, err
	}
	dacl, _, err := sd.DACL()
	if errors.Is(err, windows.ERROR_OBJECT_NOT_FOUND) || (err == nil && dacl == nil) {
		return []string{"everyone (it has no DACL)"}, nil
	}
	if err != nil {
		return nil, err
	}
	var others []string
	for i := range uint32(dacl.AceCount) {
		var ace *windows.ACCESS_ALLOWED_ACE
		if err := windows.GetAce(dacl, i, &ace); err != nil {
			return nil, err
		}
		if ace.Header.AceFlags&windows.INHERIT_ONLY_ACE != 0 {
			continue // for what is created inside, not for this object
		}
		switch ace.Header.AceType {
		case windows.ACCESS_DENIED_ACE_TYPE:
			continue
		case windows.ACCESS_ALLOWED_ACE_TYPE:
		default:
			others = append(others, fmt.Sprintf("an access entry of type %d", ace.Header.AceType))
			continue
		}
		if ace.Mask == 0 {
			continue
		}
		sid := (*windows.SID)(unsafe.Pointer(&ace.SidStart))
		if sid.Equals(user) || sid.Equals(sidSystem) || sid.Equals(sidAdmins) || (owner != nil && sid.Equals(owner)) {
			continue
		}
		others = append(others, sid.String())
	}
	return others, nil
}

// CheckPrivate refuses a file or directory whose DACL lets in anyone but
// its owner, the account running keytree, SYSTEM and Administrators, as
// OpenSSH for Windows refuses such a private key. The DACL is read from f
// when keytree has the file open, else from path.
func (f FS) CheckPrivate(path string, h *os.File, fi fs.FileInfo) error {
	sd, err := fileSecurity(path, h)
	if err != nil {
		return err
	}
	others, err := OthersAllowed(sd)
	if err != nil {
		return &fs.PathError{Op: "read the ACL of", Path: path, Err: err}
	}
	if len(others) == 0 {
		return nil
	}
	return f.report(aclError(path, fi, others))
}

// aclError reports a file or directory that others can use, with the
// icacls command that makes it private: inheritance off, full control for
// the account running keytree, SYSTEM and Administrators (by SID, which
// does not depend on the system's language), and the others' entries
// removed.
func aclError(path string, fi fs.FileInfo, others []string) *ExposedError {
	inherit := ""
	if fi.IsDir() {
		inherit = "(OI)(CI)"
	}
	fix := fmt.Sprintf("icacls %s /inheritance:r", shellQuote(path))
	if user, err := CurrentUserSID(); err == nil {
		fix += fmt.Sprintf(" /grant:r *%s:%sF", user, inherit)
	}
	fix += fmt.Sprintf(" *S-1-5-18:%sF *S-1-5-32-544:%sF", inherit, inherit)
	for _, sid := range others {
		if strings.HasPrefix(sid, "S-") {
			fix += " /remove:g *" + sid
		}
	}
	who := make([]string, len(others))
	for i, sid := range others {
		who[i] = SIDName(sid)
	}
	return &ExposedError{Path: path, Mode: fi.Mode(), Others: who, Fix: fix}
}

// SIDName turns a SID string into "DOMAIN\name (SID)" where the system
// knows the account.
func SIDName(s string) string {
	sid, err := windows.StringToSid(s)
	if err != nil {
		return s
	}
	name, domain, _, err := sid.LookupAccount("")
	if err != nil || name == "" {
		return s
	}
	if domain != "" {
		name = domain + `\` + name
	}
	return fmt.Sprintf("%s (%s)", name, s)
}

// fixOwnFile makes a file keytree changes in place (the lock, the error log)
// private if it is not: only if it belongs to the account running keytree,
// as on Unix; someone else's file that others can use is refused.
func (f FS) fixOwnFile(path string, h *os.File, fi fs.FileInfo) error {
	err := f.CheckPrivate(path, h, fi)
	if err == nil {
		return nil
	}
	sd, serr := fileSecurity(path, h)
	if serr != nil {
		return err
	}
	owner, _, oerr := sd.Owner()
	user, uerr := CurrentUserSID()
	if oerr != nil || uerr != nil || owner == nil || !owner.Equals(user) {
		return err
	}
	if setPrivate(h, false) != nil {
		return err
	}
	return nil
}
