//go:build unix && !linux

package main

import (
	"os"
	"testing"
)

// syncTree makes dir's entries durable: elsewhere than on Linux keytree's
// batches sync each file as they write it, and then its directory.
func syncTree(b *testing.B, dir string) {
	b.Helper()
	f, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := f.Sync(); err != nil {
		b.Fatal(err)
	}
}
