package keystore

import (
	"crypto/rand"
	"flag"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"filippo.io/age"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/protect"
)

// What trying a password costs at the shipped scrypt work factor, recorded
// in docs/reliability.md ("Password encryptions"). It takes minutes, so it
// runs only when asked:
//
//	go test -count=1 -v -timeout 60m -run TestScryptCostReport ./keystore -args -scrypt-report
//
// Wall times depend on the machine and its load, so the report starts with
// the time of one scrypt, measured in the same run.
var scryptReport = flag.Bool("scrypt-report", false, "measure password trials at the shipped scrypt work factor")

func TestScryptCostReport(t *testing.T) {
	if !*scryptReport {
		t.Skip("run with -scrypt-report")
	}
	protect.SetScryptWorkFactorForTesting(shippedScryptWorkFactor)
	defer protect.SetScryptWorkFactorForTesting(testScryptWorkFactor)
	d, ks := newTestKeystore(t)
	probe := openTestKeystore(t, Options{Dirs: d, LockTimeout: 30 * time.Minute})
	opts := DMKOptions{SkipPasswordPolicy: true}

	oneScrypt := func() time.Duration {
		r, _ := age.NewScryptRecipient("password")
		r.SetWorkFactor(shippedScryptWorkFactor)
		key := make([]byte, 16)
		rand.Read(key)
		s := time.Now()
		if _, err := r.Wrap(key); err != nil {
			t.Fatal(err)
		}
		return time.Since(s)
	}
	t.Logf("one scrypt at work factor %d: %v", shippedScryptWorkFactor, oneScrypt().Round(time.Millisecond))

	if _, err := ks.CreateDMK("probe", []byte("password-0"), opts); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.SetSecret("probe", "s", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.CreateDMK("big", []byte("password-0"), opts); err != nil {
		t.Fatal(err)
	}
	for i := 1; i < formats.MaxPasswords; i++ {
		addUntaggedPassword(t, ks, "big", fmt.Sprintf("password-%d", i), 0)
	}
	if _, err := ks.SetSecret("big", "s", []byte("v"), nil); err != nil {
		t.Fatal(err)
	}
	if _, err := ks.CreateDMK("hostile", []byte("password-0"), opts); err != nil {
		t.Fatal(err)
	}
	addUntaggedPassword(t, ks, "hostile", "hostile", 22)

	m := &scryptMeasure{t: t, probe: probe}
	m.run("64 untagged password encryptions, secret set, wrong password", func() error {
		_, err := ks.SetSecret("big", "s", []byte("v"), []byte("wrong"))
		return err
	})
	m.run("64 untagged password encryptions, secret get, wrong password", func() error {
		_, err := ks.GetSecret("big", "s", []byte("wrong"))
		return err
	})
	m.run("a password encryption at work factor 22, secret set, wrong password", func() error {
		_, err := ks.SetSecret("hostile", "s", []byte("v"), []byte("wrong"))
		return err
	})
	if status, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "VmHWM") {
				t.Logf("peak resident memory of the test process so far: %s", strings.Join(strings.Fields(l)[1:], " "))
			}
		}
	}
	if scryptReportTags != nil {
		scryptReportTags(t, ks, m)
	}
	t.Logf("one scrypt at work factor %d: %v", shippedScryptWorkFactor, oneScrypt().Round(time.Millisecond))
}

// scryptReportTags, if set, adds the report's part on tags.
var scryptReportTags func(t *testing.T, ks *Keystore, m *scryptMeasure)

// scryptMeasure runs one command with a reader and a writer (both by the
// SMK, on another database) probing the lock all along: the longest each
// waited is about how long the command held the lock it needs.
type scryptMeasure struct {
	t     *testing.T
	probe *Keystore
}

func (m *scryptMeasure) run(what string, cmd func() error) {
	var wg sync.WaitGroup
	done := make(chan struct{})
	var readWait, writeWait time.Duration
	loop := func(max *time.Duration, op func() error) {
		defer wg.Done()
		for {
			select {
			case <-done:
				return
			default:
			}
			s := time.Now()
			if err := op(); err != nil {
				m.t.Error(err)
				return
			}
			if w := time.Since(s); w > *max {
				*max = w
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	wg.Add(2)
	go loop(&readWait, func() error { _, err := m.probe.GetSecret("probe", "s", nil); return err })
	go loop(&writeWait, func() error { _, err := m.probe.SetSecret("probe", "s", []byte("v"), nil); return err })
	time.Sleep(50 * time.Millisecond)
	s := time.Now()
	err := cmd()
	took := time.Since(s)
	close(done)
	wg.Wait()
	msg := "ok"
	if err != nil {
		msg = strings.ReplaceAll(err.Error(), "\n", " ")
	}
	m.t.Logf("%s: %v (%s); longest wait: reader %v, writer %v", what, took.Round(time.Millisecond), msg,
		readWait.Round(time.Millisecond), writeWait.Round(time.Millisecond))
}
