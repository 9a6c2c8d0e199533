//go:build !windows

package commands

import (
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"strconv"
	"syscall"
)

// fileOwner names the account that owns a file, and says whether it is the
// one running keytree.
func fileOwner(fi fs.FileInfo) (owner string, mine, known bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return "", false, false
	}
	uid := strconv.FormatUint(uint64(st.Uid), 10)
	owner = "uid " + uid
	if u, err := user.LookupId(uid); err == nil {
		owner = fmt.Sprintf("%s (uid %s)", u.Username, uid)
	}
	return owner, int(st.Uid) == os.Geteuid(), true
}
