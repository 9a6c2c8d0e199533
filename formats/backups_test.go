package formats_test

import (
	"strings"
	"testing"
	"time"

	"github.com/keytree-dev/keytree/formats"
)

// backupsFixture is backups.toml as keytree writes it (docs/format.md): it
// must keep loading.
const backupsFixture = `version = 1

[[backup]]
  thumbprint = "0123456789abcdef0123456789abcdef01234567"
  time = 2026-11-22T10:00:00Z
  file = "/media/usb/smk-2026-11.age"

[[backup]]
  thumbprint = "fedcba9876543210fedcba9876543210fedcba98"
  time = 2026-11-23T09:30:15Z
  file = "C:\\Users\\ops\\smk.age"
`

func TestBackupsFixture(t *testing.T) {
	b, err := formats.DecodeBackups([]byte(backupsFixture))
	if err != nil {
		t.Fatal(err)
	}
	want := &formats.Backups{Version: 1, Backups: []formats.BackupRecord{
		{Thumbprint: thumbA, Time: t0, File: "/media/usb/smk-2026-11.age"},
		{Thumbprint: thumbB, Time: t1, File: `C:\Users\ops\smk.age`},
	}}
	if !sameValue(b, want) {
		t.Fatalf("decoded %+v, want %+v", b, want)
	}
	again, err := formats.DecodeBackups(mustEncode(t, b))
	if err != nil || !sameValue(again, want) {
		t.Fatalf("round trip: %+v, %v", again, err)
	}
	if r, ok := b.Last(thumbA); !ok || r.File != "/media/usb/smk-2026-11.age" {
		t.Errorf("Last(A) = %+v, %v", r, ok)
	}
	if _, ok := b.Last(thumbC); ok {
		t.Error("Last of a key never backed up found a record")
	}
}

func TestBackupsStrict(t *testing.T) {
	bad := map[string]string{
		"unknown key":       strings.Replace(backupsFixture, "version = 1", "version = 1\nextra = 2", 1),
		"unknown field":     strings.Replace(backupsFixture, `file = "/media`, `size = 3`+"\n  "+`file = "/media`, 1),
		"no version":        strings.Replace(backupsFixture, "version = 1\n", "", 1),
		"version 2":         strings.Replace(backupsFixture, "version = 1", "version = 2", 1),
		"short thumbprint":  strings.Replace(backupsFixture, `"0123456789abcdef0123456789abcdef01234567"`, `"0123"`, 1),
		"control character": strings.Replace(backupsFixture, "smk-2026-11.age", `smk\u001b[2J.age`, 1),
		"empty file":        strings.Replace(backupsFixture, `"/media/usb/smk-2026-11.age"`, `""`, 1),
	}
	for name, data := range bad {
		_, err := formats.DecodeBackups([]byte(data))
		wantCorrupt(t, err, name)
	}
}

func TestBackupsBounded(t *testing.T) {
	b := &formats.Backups{Version: formats.Version}
	for i := range formats.MaxBackupRecords + 5 {
		b.Add(formats.BackupRecord{Thumbprint: thumbA, Time: t0.Add(time.Duration(i) * time.Hour), File: "/b"})
	}
	if len(b.Backups) != formats.MaxBackupRecords {
		t.Fatalf("%d records kept, want %d", len(b.Backups), formats.MaxBackupRecords)
	}
	if last := b.Backups[len(b.Backups)-1]; !last.Time.Equal(t0.Add(time.Duration(formats.MaxBackupRecords+4) * time.Hour)) {
		t.Errorf("newest record lost: %v", last.Time)
	}
	b.Backups = append(b.Backups, b.Backups[0])
	if _, err := b.Encode(); err == nil {
		t.Error("encoded more than the maximum number of records")
	}
}
