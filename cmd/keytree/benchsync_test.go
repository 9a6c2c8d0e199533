//go:build unix

package main

import (
	"os"
	"testing"
)

// syncTree makes what the benchmark wrote under dir durable as keytree's
// batches do: one syncfs(2) on Linux, the directory's own sync elsewhere
// (keytree syncs each file as it writes it there, then its directory).
func syncTree(b *testing.B, dir string) {
	b.Helper()
	f, err := os.Open(dir)
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	if err := syncFS(f); err != nil {
		b.Fatal(err)
	}
}
