package keystore

import (
	"fmt"
	"testing"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// The part of TestScryptCostReport on tags and the ceiling: the same 64
// password encryptions given the tags a keytree with tags writes, and a
// file at a work factor over the ceiling.
func init() {
	scryptReportTags = func(t *testing.T, ks *Keystore, m *scryptMeasure) {
		editDatabaseMeta(t, ks, "big", func(meta *formats.Database) {
			for i := range meta.Passwords {
				p, err := protect.NewPassword([]byte(fmt.Sprintf("password-%d", i)))
				if err != nil {
					t.Fatal(err)
				}
				logN := protect.ScryptWorkFactor()
				tag, err := p.Tag(meta.Thumbprint, logN, meta.Passwords[i].ID)
				if err != nil {
					t.Fatal(err)
				}
				meta.Passwords[i].Tag = formats.PasswordTag(logN, tag)
			}
		})
		var runs []int
		protect.SetScryptHookForTesting(func(logN int) { runs = append(runs, logN) })
		defer protect.SetScryptHookForTesting(nil)
		for _, c := range []struct {
			what string
			cmd  func() error
		}{
			{"64 tagged password encryptions, secret set, wrong password", func() error {
				_, err := ks.SetSecret("big", "s", []byte("v"), []byte("wrong"))
				return err
			}},
			{"64 tagged password encryptions, secret set, the last one's password", func() error {
				_, err := ks.SetSecret("big", "s", []byte("v"), []byte("password-63"))
				return err
			}},
			{"64 tagged password encryptions, secret get, wrong password", func() error {
				_, err := ks.GetSecret("big", "s", []byte("wrong"))
				return err
			}},
			{"64 tagged password encryptions, dmk drop-encryption --by password, the last one's", func() error {
				return ks.DropDMKEncryption("big", ByPassword, []byte("password-63"))
			}},
			{"63 tagged password encryptions, dmk add-encryption --by password (key opened by the SMK)", func() error {
				return ks.AddDMKEncryption("big", ByPassword, []byte("password-new"), DMKOptions{SkipPasswordPolicy: true})
			}},
		} {
			runs = nil
			m.run(c.what, c.cmd)
			t.Logf("    scrypts: %d at work factors %v", len(runs), runs)
		}
	}
}
