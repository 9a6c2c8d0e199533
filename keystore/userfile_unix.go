//go:build !windows

package keystore

import "golang.org/x/sys/unix"

// nonBlock makes opening a FIFO return at once, with or without a writer,
// so that openRegular can refuse it.
const nonBlock = unix.O_NONBLOCK
