//go:build unix && !linux

package main

import "os"

func syncFS(f *os.File) error { return f.Sync() }
