package formats_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/formats"
)

// TestAuthData: every field a MAC covers changes what it covers; the MAC
// itself, and a database's smk_encryption, do not.
func TestAuthData(t *testing.T) {
	smk := func() *formats.SMK {
		return &formats.SMK{Version: formats.Authenticated, Generation: 2, Thumbprint: strings.Repeat("ab", 20), Algorithm: "x25519",
			Created: t0, MachineProtection: true, Commit: 7, MAC: strings.Repeat("0", 64),
			Retired: []formats.Retired{{Generation: 1, Thumbprint: strings.Repeat("cd", 20), Algorithm: "x25519", Kept: []string{"account"}}}}
	}
	base, _ := smk().AuthData()
	for name, edit := range map[string]func(*formats.SMK){
		"version":            func(s *formats.SMK) { s.Version = 1 },
		"generation":         func(s *formats.SMK) { s.Generation = 3 },
		"thumbprint":         func(s *formats.SMK) { s.Thumbprint = strings.Repeat("ef", 20) },
		"algorithm":          func(s *formats.SMK) { s.Algorithm = "mlkem768x25519" },
		"created":            func(s *formats.SMK) { s.Created = t0.Add(time.Nanosecond) },
		"machine_protection": func(s *formats.SMK) { s.MachineProtection = false },
		"commit":             func(s *formats.SMK) { s.Commit = 8 },
		"retired":            func(s *formats.SMK) { s.Retired = nil },
		"kept":               func(s *formats.SMK) { s.Retired[0].Kept = []string{"machine"} },
	} {
		s := smk()
		edit(s)
		if got, _ := s.AuthData(); bytes.Equal(got, base) {
			t.Errorf("smk.toml: %s is not covered", name)
		}
	}
	s := smk()
	s.MAC = strings.Repeat("1", 64)
	s.Created = t0.In(time.FixedZone("x", 3600)) // the same instant
	if got, _ := s.AuthData(); !bytes.Equal(got, base) {
		t.Errorf("smk.toml: the MAC, or a time's zone, is covered")
	}

	dbase, _ := validDatabase().AuthData()
	for name, edit := range map[string]func(*formats.Database){
		"name":     func(d *formats.Database) { d.Name = "other" },
		"password": func(d *formats.Database) { d.Passwords = d.Passwords[:1] },
		"tag":      func(d *formats.Database) { d.Passwords[1].Tag = "" },
		"id":       func(d *formats.Database) { d.Passwords[0].ID = "0123456789abcdee" },
		"retired":  func(d *formats.Database) { d.Retired[0].Generation = 1 },
	} {
		d := validDatabase()
		edit(d)
		if got, _ := d.AuthData(); bytes.Equal(got, dbase) {
			t.Errorf("database.toml: %s is not covered", name)
		}
	}
	d := validDatabase()
	d.SMKEncryption = !d.SMKEncryption
	if got, _ := d.AuthData(); !bytes.Equal(got, dbase) {
		t.Errorf("database.toml: smk_encryption is covered (db import turns it off without the key)")
	}
}
