//go:build !linux

package fsio

import "os"

// syncfs is only used on Linux (see batch).
func syncfs(f *os.File) error { return f.Sync() }
