//go:build !windows

package keystore

import (
	"fmt"
	"os"
	"os/user"
	"strconv"

	"github.com/keytree-dev/keytree/keystore/internal/fsio"
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
	uid, ok := fsio.FileOwner(fi)
	if !ok || uid == os.Geteuid() || ks.allowOtherOwner {
		return nil
	}
	return &Error{
		Text:   fmt.Sprintf("the keystore %s belongs to %s, not to %s, which runs keytree", ks.dir, ownerName(uid), ownerName(os.Geteuid())),
		Remedy: Remedy{Kind: RemedyAllowOtherOwner},
		Kind:   ErrPermissions,
	}
}

func ownerName(uid int) string {
	if u, err := user.LookupId(strconv.Itoa(uid)); err == nil {
		return fmt.Sprintf("%s (uid %d)", u.Username, uid)
	}
	return fmt.Sprintf("uid %d", uid)
}
