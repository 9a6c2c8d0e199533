package fsio

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Files a user hands keytree (a master key backup, a database export) are
// keys, not streams, and are read as hostile input: a 10 GiB sparse file or
// /dev/zero must not be read into memory, and a named pipe with no writer
// must not hang keytree. (The user-named value files and password files of
// the command line are different: there a pipe is a legitimate way to pass a
// secret without writing it to disk.)

var (
	ErrNotRegular = errors.New("it is not a regular file")
	ErrTooLarge   = errors.New("it is too large")
)

// OpenRegular opens path for reading and refuses anything but a regular
// file before a byte is read. The open does not block (O_NONBLOCK where the
// system has it), so a FIFO is refused rather than waited on; the fstat of
// the open file, not a stat of the path, decides, so nothing can be
// swapped in between. O_NONBLOCK has no effect on reads from a regular file.
func OpenRegular(path string) (*os.File, fs.FileInfo, error) {
	f, err := os.OpenFile(path, os.O_RDONLY|NonBlock, 0)
	if err != nil {
		return nil, nil, err
	}
	fi, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	if !fi.Mode().IsRegular() {
		f.Close()
		return nil, nil, ErrNotRegular
	}
	return f, fi, nil
}

// ReadRegular reads the regular file path, refusing one larger than max
// bytes. The size is checked before reading, and the read itself stops at
// max+1 bytes, so a file that grows (or a filesystem that misreports its
// size) still costs at most max+1 bytes of memory.
func ReadRegular(path string, max int64) ([]byte, error) {
	f, fi, err := OpenRegular(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	if fi.Size() > max {
		return nil, ErrTooLarge
	}
	data, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if int64(len(data)) > max {
		return nil, ErrTooLarge
	}
	return data, nil
}
