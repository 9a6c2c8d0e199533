//go:build windows

package keystore

// nonBlock is 0 on Windows: opening a named pipe (\\.\pipe\...) does not
// wait for its server, it fails or connects.
const nonBlock = 0
