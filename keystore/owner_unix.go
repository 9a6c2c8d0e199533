//go:build !windows

package keystore

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// checkOwner refuses a keystore directory that another account owns, root
// included, unless the caller allowed it: someone else's keystore is input
// keytree does not control, and files it wrote there would belong to the
// wrong account.
func (ks *Keystore) checkOwner() error {
	fi, err := os.Stat(ks.dir)
	if err != nil {
		return err
	}
	uid, ok := fileOwner(fi)
	if !ok || uid == os.Geteuid() || ks.allowOtherOwner {
		return nil
	}
	return &Error{
		Text: fmt.Sprintf("the keystore %s belongs to %s, not to %s, which runs keytree", ks.dir, ownerName(uid), ownerName(os.Geteuid())),
		Hint: "run keytree as the keystore's owner; to use it anyway (root inspecting a user's keystore), set KEYTREE_ALLOW_OTHER_OWNER=1",
		Kind: ErrPermissions,
	}
}

func fileOwner(fi fs.FileInfo) (int, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, false
	}
	return int(st.Uid), true
}

// linkCount is the number of hard links to a file.
func linkCount(fi fs.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return uint64(st.Nlink)
	}
	return 1
}

func ownerName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}
