package main

import (
	"os"

	"golang.org/x/sys/unix"
)

func syncFS(f *os.File) error { return unix.Syncfs(int(f.Fd())) }
