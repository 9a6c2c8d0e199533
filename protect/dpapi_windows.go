//go:build windows

package protect

import (
	"errors"
	"fmt"
	"unsafe"

	"filippo.io/age"
	"golang.org/x/sys/windows"
)

// dpapiProtector seals age file keys with DPAPI. Its stanza, in the age
// header, carries the DPAPI blob:
//
//	-> keytree-dpapi-account
//	<DPAPI blob of the 16-byte file key>
//
// The optional entropy is the account secret (for the account protector) or
// the keystore's 256 bytes of entropy (for the machine protector), so that a
// DPAPI blob opens only for the keystore and account directory it was made
// for, and another program running as the same account cannot open it with a
// plain CryptUnprotectData call.
type dpapiProtector struct {
	kind    Kind
	stanza  string
	flags   uint32
	entropy []byte
}

func (p *dpapiProtector) Kind() Kind { return p.kind }

func (p *dpapiProtector) Wrap(fileKey []byte) ([]*age.Stanza, error) {
	blob, err := dpapiProtect(fileKey, p.entropy, p.flags)
	if err != nil {
		return nil, fmt.Errorf("DPAPI (%s): %w", p.kind, err)
	}
	return []*age.Stanza{{Type: p.stanza, Body: blob}}, nil
}

func (p *dpapiProtector) Unwrap(stanzas []*age.Stanza) ([]byte, error) {
	for _, s := range stanzas {
		if s.Type != p.stanza {
			continue
		}
		if len(s.Args) != 0 {
			return nil, errors.New("invalid " + p.stanza + " stanza")
		}
		key, err := dpapiUnprotect(s.Body, p.entropy, p.flags)
		if err != nil {
			return nil, fmt.Errorf("%w: DPAPI (%s): %v", age.ErrIncorrectIdentity, p.kind, err)
		}
		if len(key) != 16 {
			return nil, errors.New("DPAPI returned a file key of the wrong size")
		}
		return key, nil
	}
	return nil, age.ErrIncorrectIdentity
}

func blobOf(b []byte) *windows.DataBlob {
	if len(b) == 0 {
		return &windows.DataBlob{}
	}
	return &windows.DataBlob{Size: uint32(len(b)), Data: &b[0]}
}

func dpapiProtect(data, entropy []byte, flags uint32) ([]byte, error) {
	var out windows.DataBlob
	err := windows.CryptProtectData(blobOf(data), nil, blobOf(entropy), 0, nil, flags, &out)
	if err != nil {
		return nil, err
	}
	return takeBlob(&out), nil
}

func dpapiUnprotect(data, entropy []byte, flags uint32) ([]byte, error) {
	var out windows.DataBlob
	err := windows.CryptUnprotectData(blobOf(data), nil, blobOf(entropy), 0, nil, flags, &out)
	if err != nil {
		return nil, err
	}
	return takeBlob(&out), nil
}

// takeBlob copies a DPAPI output buffer into Go memory, wipes it and frees it.
func takeBlob(b *windows.DataBlob) []byte {
	if b.Data == nil {
		return nil
	}
	src := unsafe.Slice(b.Data, b.Size)
	out := make([]byte, len(src))
	copy(out, src)
	clear(src)
	_, _ = windows.LocalFree(windows.Handle(unsafe.Pointer(b.Data)))
	return out
}
