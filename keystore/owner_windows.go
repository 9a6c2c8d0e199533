//go:build windows

package keystore

import (
	"io/fs"
)

// checkOwner does nothing on Windows yet: a keystore's owner and ACL are
// checked through its security descriptor, not mode bits and a uid
// (docs/security.md).
func (ks *Keystore) checkOwner() error { return nil }

func fileOwner(fs.FileInfo) (int, bool) { return 0, false }

// linkCount is 1 on Windows, where os.FileInfo does not carry it.
func linkCount(fs.FileInfo) uint64 { return 1 }

// ownerName is not needed on Windows, where fileOwner reports no owner.
func ownerName(uid int) string { return "" }
