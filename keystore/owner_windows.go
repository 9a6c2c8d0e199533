//go:build windows

package keystore

import (
	"fmt"
	"io/fs"
	"sync"
	"unsafe"

	"github.com/keytree-dev/keytree/keystore/internal/fsio"
	"golang.org/x/sys/windows"
)

// checkOwner refuses a keystore directory that another account owns unless
// the caller allowed it, as on Unix (owner_unix.go). The directory's owner
// is accepted when it is the account running keytree, or the owner this
// process gives what it creates (its token's default owner): an elevated
// administrator's files belong to the Administrators group, not to the
// account. Anything else, another user's SID or the Administrators group
// for a process that is not elevated, is someone else's keystore.
func (ks *Keystore) checkOwner() error {
	if ks.allowOtherOwner {
		return nil
	}
	owner, err := dirOwner(ks.dir)
	if err != nil {
		return err
	}
	user, err := fsio.CurrentUserSID()
	if err != nil {
		return err
	}
	defaultOwner, err := tokenDefaultOwner()
	if err != nil {
		return err
	}
	if ownerAccepted(owner, user, defaultOwner) {
		return nil
	}
	return otherOwnerError(ks.dir, owner, user)
}

// dirOwner reads the owner SID of a directory. It is a variable for tests:
// Wine reports every file as owned by the account running it.
var dirOwner = func(dir string) (*windows.SID, error) {
	sd, err := windows.GetNamedSecurityInfo(dir, windows.SE_FILE_OBJECT, windows.OWNER_SECURITY_INFORMATION)
	if err != nil {
		return nil, &fs.PathError{Op: "read the owner of", Path: dir, Err: err}
	}
	owner, _, err := sd.Owner()
	if err != nil {
		return nil, &fs.PathError{Op: "read the owner of", Path: dir, Err: err}
	}
	return owner, nil
}

// ownerAccepted says whether a keystore owned by owner belongs to the
// account user, whose process creates files owned by defaultOwner. A
// keystore without an owner is not accepted.
func ownerAccepted(owner, user, defaultOwner *windows.SID) bool {
	if owner == nil || !owner.IsValid() {
		return false
	}
	return owner.Equals(user) || (defaultOwner != nil && owner.Equals(defaultOwner))
}

func otherOwnerError(dir string, owner, user *windows.SID) error {
	who := "no one"
	if owner != nil && owner.IsValid() {
		who = fsio.SIDName(owner.String())
	}
	return &Error{
		Text:   fmt.Sprintf("the keystore %s belongs to %s, not to %s, which runs keytree", dir, who, fsio.SIDName(user.String())),
		Remedy: Remedy{Kind: RemedyAllowOtherOwner},
		Kind:   ErrPermissions,
	}
}

// tokenDefaultOwner is the owner the process token gives the objects this
// process creates.
var tokenDefaultOwner = sync.OnceValues(func() (*windows.SID, error) {
	t := windows.GetCurrentProcessToken()
	var n uint32
	err := windows.GetTokenInformation(t, windows.TokenOwner, nil, 0, &n)
	if err != nil && err != windows.ERROR_INSUFFICIENT_BUFFER {
		return nil, fmt.Errorf("read the process token's default owner: %w", err)
	}
	buf := make([]byte, n)
	if err := windows.GetTokenInformation(t, windows.TokenOwner, &buf[0], n, &n); err != nil {
		return nil, fmt.Errorf("read the process token's default owner: %w", err)
	}
	// TOKEN_OWNER: a pointer to the SID, which follows it in buf.
	return (*struct{ Owner *windows.SID })(unsafe.Pointer(&buf[0])).Owner.Copy()
})

// ownerName is not needed on Windows, where fileOwner reports no owner.
func ownerName(uid int) string { return "" }
