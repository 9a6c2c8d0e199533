package main

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// syncTree makes everything written to the filesystem holding dir durable,
// with one syncfs(2), as keytree's batches do on Linux.
func syncTree(b *testing.B, dir string) {
	b.Helper()
	f, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := unix.Syncfs(int(f.Fd())); err != nil {
		b.Fatal(err)
	}
}
