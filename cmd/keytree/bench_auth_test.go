//go:build unix

package main

import (
	"bytes"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// BenchmarkAuthentication: the cost of format 2 (P17). The fixture of
// format 1 is copied twice and one copy upgraded (keytree upgrade), so that
// both hold the same keys and values; secret get (the DMK opened by the SMK)
// and credential get then run interleaved on the two. Target: secret get
// within 1.05x of format 1.
//
//	go test -run '^$' -bench Authentication -benchtime 300x ./cmd/keytree/
func BenchmarkAuthentication(b *testing.B) {
	keytree, _ := releaseBinaries(b)
	v1, v2 := fixtureBenchKeystore(b, keytree), fixtureBenchKeystore(b, keytree)
	pw := filepath.Join(v2.root, "pw")
	if err := os.WriteFile(pw, []byte("Fixture-Passw0rd-1"), 0o600); err != nil {
		b.Fatal(err)
	}
	v2.run(b, nil, "upgrade", "--open-password-file", "hr="+pw)
	if !bytes.Contains(readBench(b, v2.path("smk.toml")), []byte("version = 2")) ||
		!bytes.Contains(readBench(b, v1.path("smk.toml")), []byte("version = 1")) {
		b.Fatal("the copies are not of formats 1 and 2")
	}
	// Both items written again after the upgrade, with the values they
	// had, so that the account and machine directories hold a record of
	// each (docs/format.md, section 18.3), which every read compares.
	cred := v2.run(b, nil, "credential", "get", "backup-db")
	v2.run(b, cred, "credential", "set", "backup-db", "--identity", "svc_backup-db")
	v2.run(b, []byte("t0ken"), "secret", "set", "payroll/token")
	if records, _ := filepath.Glob(filepath.Join(v2.root, "account", "*.item")); len(records) != 2 {
		b.Fatalf("item records after the sets: %v", records)
	}
	if got := v2.run(b, nil, "credential", "get", "backup-db"); !bytes.Equal(got, cred) {
		b.Fatalf("credential get after the set: %q, want %q", got, cred)
	}
	for _, k := range []*benchKeystore{v1, v2} {
		if got := k.run(b, nil, "secret", "get", "payroll/token"); string(got) != "t0ken" {
			b.Fatalf("secret get: %q", got)
		}
	}
	var s1, s2, c1, c2 []time.Duration
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		s1 = append(s1, timeCmd(b, v1.command(nil, "secret", "get", "payroll/token")))
		s2 = append(s2, timeCmd(b, v2.command(nil, "secret", "get", "payroll/token")))
		c1 = append(c1, timeCmd(b, v1.command(nil, "credential", "get", "backup-db")))
		c2 = append(c2, timeCmd(b, v2.command(nil, "credential", "get", "backup-db")))
	}
	b.StopTimer()
	b.ReportMetric(ms(median(s1)), "get-v1-ms")
	b.ReportMetric(ms(median(s2)), "get-v2-ms")
	b.ReportMetric(float64(median(s2))/float64(median(s1)), "get-v2/v1")
	b.ReportMetric(float64(median(c2))/float64(median(c1)), "cred-v2/v1")
}

// fixtureBenchKeystore is a copy of testdata/fixtures/keystore-v1.
func fixtureBenchKeystore(b *testing.B, bin string) *benchKeystore {
	b.Helper()
	root := b.TempDir()
	src := filepath.Join("..", "..", "testdata", "fixtures", "keystore-v1")
	err := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		r, _ := filepath.Rel(src, p)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(root, r), 0o700)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, r), data, 0o600)
	})
	if err != nil {
		b.Fatal(err)
	}
	return &benchKeystore{root: root, bin: bin, env: append(os.Environ(),
		"KEYTREE_DIR="+filepath.Join(root, "keystore"),
		"KEYTREE_ACCOUNT_DIR="+filepath.Join(root, "account"),
		"KEYTREE_MACHINE_DIR="+filepath.Join(root, "machine"))}
}

func readBench(b *testing.B, path string) []byte {
	b.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	return data
}
