//go:build windows

package keystore

import (
	"io/fs"
)

// checkOwner does nothing on Windows yet: a keystore's DACL is checked
// (checkPrivate, acl_windows.go), its owner is not (docs/security.md,
// section 6.3).
func (ks *Keystore) checkOwner() error { return nil }

func fileOwner(fs.FileInfo) (int, bool) { return 0, false }

// linkCount is 1 on Windows, where os.FileInfo does not carry it.
func linkCount(fs.FileInfo) uint64 { return 1 }

// ownerName is not needed on Windows, where fileOwner reports no owner.
func ownerName(uid int) string { return "" }
