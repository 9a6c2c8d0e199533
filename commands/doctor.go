package commands

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/formats"
	"github.com/keytree-dev/keytree/keystore"
	"github.com/keytree-dev/keytree/protect"
)

// errDoctorProblems ends a doctor run that found problems: the report says
// which, report adds one error line and exits with exitProblems.
type errDoctorProblems struct{ n int }

func (e *errDoctorProblems) Error() string {
	if e.n == 1 {
		return "doctor found 1 problem"
	}
	return fmt.Sprintf("doctor found %d problems", e.n)
}

// Finding statuses. Only a problem makes doctor exit non-zero; a note is
// worth knowing but needs nothing done.
const (
	findingOK      = "ok"
	findingProblem = "problem"
	findingNote    = "note"
)

type doctorFinding struct {
	Check  string `json:"check"`
	Status string `json:"status"`
	Text   string `json:"text"`
}

type doctorDir struct {
	Role string `json:"role"` // keystore, account, machine
	Path string `json:"path"`
	// Source is where the path came from: "flag" (SourceName the flag),
	// "environment" (SourceName the variable) or "default".
	Source     string `json:"source"`
	SourceName string `json:"sourceName,omitempty"`
	Exists     bool   `json:"exists"`
	Mode       string `json:"mode,omitempty"`  // "0700"
	Owner      string `json:"owner,omitempty"` // "alice (uid 1000)"; omitted where keytree does not check owners
}

type doctorReport struct {
	Directories []doctorDir     `json:"directories"`
	Findings    []doctorFinding `json:"findings"`
	Problems    int             `json:"problems"`
}

func (r *doctorReport) add(check, status, format string, args ...any) {
	r.Findings = append(r.Findings, doctorFinding{Check: check, Status: status, Text: fmt.Sprintf(format, args...)})
	if status == findingProblem {
		r.Problems++
	}
}

func (e *env) doctorCommand(runF func(*doctorOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "doctor",
		Usage: "check the keystore and its directories, and report what needs attention",
		UsageText: `keytree doctor [--json]

Reports where the keystore, account and machine directories come from (a flag,
an environment variable or the default), their permissions and owners,
whether each encryption of the service master key opens, orphaned values,
damaged databases, databases whose master key has no SMK encryption, when the
service master key and each database master key were last backed up (an SMK
never backed up is a problem), the size of the error log, and whether a stock age on PATH can recover the keystore's
files without keytree (docs/recovery.md).

It only reads: it takes the shared lock, and repairs, creates and writes
nothing (run keytree smk verify to repair an SMK encryption). It exits 0 when
it finds no problem, and 11 when it finds one; notes do not count.

Examples:
   keytree doctor
   keytree doctor --json | jq '.findings[] | select(.status == "problem")'`,
		Flags:  []cli.Flag{jsonFlag()},
		Action: action(parseDoctor, runF, e.doctorRun),
	}
}

type doctorOptions struct {
	Globals globalOptions
	JSON    bool
}

func parseDoctor(a *argv) *doctorOptions {
	a.noArgs()
	return &doctorOptions{Globals: a.globals(), JSON: a.bool(flagJSON)}
}

func (e *env) doctorRun(opts *doctorOptions) error {
	ko, err := e.keystoreOptions(opts.Globals)
	if err != nil {
		return err
	}
	r := e.doctor(opts.Globals, ko)
	if opts.JSON {
		if err := writeJSON(e.stdout, r); err != nil {
			return err
		}
	} else if err := r.write(e); err != nil {
		return err
	}
	if r.Problems > 0 {
		return &errDoctorProblems{n: r.Problems}
	}
	return nil
}

// doctor checks the keystore that opts names; g is what the global flags
// (or their variables) gave, to say where each directory came from.
func (e *env) doctor(g globalOptions, opts keystore.Options) *doctorReport {
	r := &doctorReport{Directories: []doctorDir{}, Findings: []doctorFinding{}}
	dirs := []struct {
		role, flag, env, given, path string
	}{
		{"keystore", flagKeystore, "KEYTREE_DIR", g.Keystore, opts.Keystore},
		{"account", flagAccountDir, "KEYTREE_ACCOUNT_DIR", g.AccountDir, opts.Account},
		{"machine", flagMachineDir, "KEYTREE_MACHINE_DIR", g.MachineDir, opts.Machine},
	}
	dirProblems := 0
	keystoreRefused := false // reported above: opening it would say it again
	for _, d := range dirs {
		dd := doctorDir{Role: d.role, Path: d.path, Source: "default"}
		if abs, err := filepath.Abs(d.path); err == nil {
			dd.Path = abs
		}
		// A flag wins over its variable (urfave/cli reads the variable
		// into the flag): the value is the variable's unless a flag
		// changed it.
		if v := d.given; v != "" {
			if v == os.Getenv(d.env) {
				dd.Source, dd.SourceName = "environment", d.env
			} else {
				dd.Source, dd.SourceName = "flag", "--"+d.flag
			}
		}
		fi, err := os.Stat(d.path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			dirProblems++
			if d.role == "keystore" {
				r.add("directories", findingProblem, "the keystore directory %s does not exist: create a keystore with keytree init, or point --keystore or KEYTREE_DIR at yours", escape(dd.Path))
			} else {
				r.add("directories", findingProblem, "the %s directory %s does not exist, so the %s encryption of the service master key cannot open here: check %s (a typo, or HOME pointing elsewhere), or create it with keytree --create-protector-dirs smk verify", d.role, escape(dd.Path), d.role, d.env)
			}
		case err != nil:
			dirProblems++
			r.add("directories", findingProblem, "the %s directory %s cannot be read: %v", d.role, escape(dd.Path), err)
		case !fi.IsDir():
			dirProblems++
			r.add("directories", findingProblem, "the %s directory %s is not a directory", d.role, escape(dd.Path))
		default:
			dd.Exists = true
			dd.Mode = fmt.Sprintf("%04o", fi.Mode().Perm())
			dd.Owner = keystore.DirectoryOwner(fi)
			// The same checks, and the same advice, as the commands
			// that use the directory.
			if err := keystore.CheckDirectory(opts, d.role); err != nil {
				dirProblems++
				if d.role == "keystore" {
					keystoreRefused = true
				}
				r.add("directories", findingProblem, "%s", escape(errorText(err)))
			}
		}
		r.Directories = append(r.Directories, dd)
	}
	if dirProblems == 0 {
		r.add("directories", findingOK, "the three directories exist, are owner-only and are yours")
	}

	var algs []protect.Algorithm
	var err error
	var ks *keystore.Keystore
	if !keystoreRefused {
		ks, err = keystore.Open(opts)
	}
	if !keystoreRefused && err == nil {
		var d *keystore.Diagnosis
		d, err = ks.Diagnose()
		if err == nil {
			r.addDiagnosis(d)
			algs = d.Algorithms
		}
	}
	if err != nil && !(errors.Is(err, keystore.ErrNotFound) && !r.hasKeystoreDir()) {
		// A missing keystore directory is reported above already.
		r.add("keystore", findingProblem, "%s", escape(errorText(err)))
	}

	r.checkAge(algs)
	return r
}

func (r *doctorReport) hasKeystoreDir() bool {
	return len(r.Directories) > 0 && r.Directories[0].Exists
}

// errorText is an error as report would put it, on one line and without
// the exit status: the number, the plain words and the text, the details,
// and the hint where it has one.
func errorText(err error) string {
	var ke *keystore.Error
	if errors.As(err, &ke) {
		s := ke.Error()
		for _, d := range ke.Detail {
			s += "; " + d
		}
		if h := hintText(ke); h != "" {
			s += " (" + h + ")"
		}
		return s
	}
	return err.Error()
}

func (r *doctorReport) addDiagnosis(d *keystore.Diagnosis) {
	switch {
	case d.SMK == nil:
		r.add("smk", findingProblem, "%s", escape(d.SMKProblem))
	default:
		var bad, good []string
		for _, enc := range d.SMK.Encryptions {
			switch {
			case !enc.Enabled:
			case enc.Valid:
				good = append(good, string(enc.Protector))
			default:
				bad = append(bad, fmt.Sprintf("the %s encryption does not open it (%s)", enc.Protector, escape(enc.Reason)))
			}
		}
		switch {
		case len(good) == 0:
			r.add("smk", findingProblem, "error %d: no encryption of the service master key %s opens it: %s; restore it from a backup: keytree smk restore --file BACKUP --force", keystore.MsgDecryption, d.SMK.Thumbprint, strings.Join(bad, "; "))
		case len(bad) > 0:
			r.add("smk", findingProblem, "the service master key %s opens, but %s; keytree smk verify re-creates it", d.SMK.Thumbprint, strings.Join(bad, "; "))
		default:
			r.add("smk", findingOK, "the service master key %s (%s, generation %d) opens with each of its encryptions: %s", d.SMK.Thumbprint, d.SMK.Algorithm, d.SMK.Generation, strings.Join(good, ", "))
		}
		if !d.SMK.MachineProtection {
			r.add("smk", findingNote, "machine protection is off: only the account encryption protects the service master key")
		}
	}

	for _, b := range d.Backups {
		what := "the service master key"
		cmd := "keytree smk backup --file FILE"
		if db, ok := strings.CutPrefix(b.Key, "dmk/"); ok {
			what = fmt.Sprintf("the master key of database '%s'", escape(db))
			cmd = fmt.Sprintf("keytree dmk backup --db %s --file FILE", escape(db))
		}
		switch {
		case b.Problem != "":
			r.add("backups", findingProblem, "the backup records of %s cannot be read: %s", what, escape(b.Problem))
		case b.Time.IsZero() && b.Key == "smk":
			// Without a backup, losing both protectors loses every
			// credential and every DMK without a password.
			r.add("backups", findingProblem, "%s (%s) was never backed up, or its backup was not recorded: %s", what, b.Thumbprint, cmd)
		case b.Time.IsZero():
			// A DMK's password opens it without the SMK.
			r.add("backups", findingNote, "%s (%s) was never backed up, or its backup was not recorded: %s", what, b.Thumbprint, cmd)
		default:
			r.add("backups", findingOK, "%s (%s) was last backed up %s to %s", what, b.Thumbprint, timeString(b.Time), escape(b.File))
		}
	}
	switch {
	case d.AuthProblem != "":
		r.add("format", findingProblem, "%s; if you restored the keystore from an older copy on purpose: keytree keystore accept-rollback; otherwise restore it from a backup", escape(d.AuthProblem))
	case d.Format == formats.Version:
		r.add("format", findingNote, "the keystore is of format 1: its value files are not bound to their items, and a rollback goes unnoticed; keytree upgrade moves it to format 2 (docs/security.md, section 5.1)")
	case d.Format == formats.Authenticated:
		r.add("format", findingOK, "the keystore is of format 2: values bound, metadata signed, commits counted")
	}
	if d.UnfinishedBatch > 0 {
		r.add("batch", findingProblem, "an import of %s was committed, but the keytree that made it stopped before it moved them all into place: the counts below may miss some of them; any other keytree command (keytree status, say) finishes it, or says what stops it", plural(d.UnfinishedBatch, "item"))
	}
	r.add("items", findingOK, "%d credentials, %d databases, %d secrets", d.Credentials, d.Databases, d.Secrets)
	if len(d.Orphans) == 0 {
		r.add("orphans", findingOK, "no orphaned values")
	} else {
		var items []string
		for _, o := range d.Orphans {
			items = append(items, fmt.Sprintf("%s needs key %s (generation %d)", escape(o.Item), o.Thumbprint, o.Generation))
		}
		r.add("orphans", findingProblem, "%d orphaned values cannot be read until a backup of their key recovers them (keytree smk recover / dmk recover): %s", len(d.Orphans), strings.Join(items, "; "))
	}
	for _, dm := range d.Damaged {
		r.add("damaged", findingProblem, "%s: %s", escape(dm.Item), escape(dm.Problem))
	}
	if len(d.NoSMKEncryption) == 0 {
		r.add("dmk-smk-encryption", findingOK, "every database master key has an SMK encryption")
	} else {
		r.add("dmk-smk-encryption", findingNote, "database master keys without an SMK encryption, which open only with their password (--open-password-file): %s; to open them with the SMK: keytree dmk add-encryption --db DB --by smk", strings.Join(d.NoSMKEncryption, ", "))
	}
	r.add("errorlog", findingOK, "the error log holds %d bytes (it is rotated past %d bytes; keytree errorlog prints it)", d.ErrorLogSize, keystore.ErrorLogRotateSize)
}

// minimumAge is the first release of age that decrypts files under keys of
// each algorithm, and password-encrypted (scrypt) files.
var minimumAge = map[protect.Algorithm][3]int{
	protect.X25519:         {1, 0, 0},
	protect.MLKEM768X25519: {1, 3, 0},
}

// checkAge looks for a stock age on PATH that can decrypt the keystore's
// files (docs/recovery.md): it runs "age --version", with a time limit, and
// compares the version with what the keystore's algorithms need.
func (r *doctorReport) checkAge(algs []protect.Algorithm) {
	need := [3]int{1, 0, 0}
	for _, a := range algs {
		if v, ok := minimumAge[a]; ok && versionLess(need, v) {
			need = v
		}
	}
	needText := fmt.Sprintf("v%d.%d.%d", need[0], need[1], need[2])
	path, err := exec.LookPath("age")
	if err != nil {
		r.add("age", findingNote, "no age on PATH: install age %s or later to be able to recover this keystore's files without keytree (docs/recovery.md)", needText)
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, path, "--version")
	cmd.Stdin = nil
	out, err := cmd.Output()
	version := strings.TrimSpace(string(out))
	if err != nil {
		r.add("age", findingNote, "%s --version failed (%v): it may not be the age that recovery needs (%s or later)", escape(path), err, needText)
		return
	}
	v, ok := parseAgeVersion(version)
	switch {
	case !ok:
		r.add("age", findingNote, "%s --version says %q, which is not a release version: recovery needs age %s or later", escape(path), escape(version), needText)
	case versionLess(v, need):
		r.add("age", findingNote, "%s is age %s, too old to decrypt this keystore's files: recovery needs %s or later", escape(path), escape(version), needText)
	default:
		r.add("age", findingOK, "%s is age %s, which can decrypt this keystore's files without keytree (docs/recovery.md)", escape(path), escape(version))
	}
}

// parseAgeVersion reads "v1.2.3" (or "1.2.3", with anything after a "-" or
// "+" ignored).
func parseAgeVersion(s string) ([3]int, bool) {
	var v [3]int
	s = strings.TrimPrefix(strings.TrimSpace(s), "v")
	if i := strings.IndexAny(s, "-+ "); i >= 0 {
		s = s[:i]
	}
	parts := strings.Split(s, ".")
	if len(parts) != 3 {
		return v, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil || n < 0 {
			return v, false
		}
		v[i] = n
	}
	return v, true
}

func versionLess(a, b [3]int) bool {
	for i := range a {
		if a[i] != b[i] {
			return a[i] < b[i]
		}
	}
	return false
}

// write prints the report as text: the directories, then one line per
// finding, its status first.
func (r *doctorReport) write(e *env) error {
	var rows [][]string
	for _, d := range r.Directories {
		from := "default"
		if d.SourceName != "" {
			from = "from " + d.SourceName
		}
		state := "missing"
		if d.Exists {
			state = d.Mode
			if d.Owner != "" {
				state += " " + d.Owner
			}
		}
		rows = append(rows, []string{d.Role, d.Path, from, state})
	}
	if err := table(e.stdout, []string{"DIRECTORY", "PATH", "SOURCE", "MODE/OWNER"}, rows); err != nil {
		return err
	}
	fmt.Fprintln(e.stdout)
	for _, f := range r.Findings {
		// Texts were escaped where they hold what came from disk.
		if _, err := fmt.Fprintf(e.stdout, "%-8s %s: %s\n", f.Status, f.Check, f.Text); err != nil {
			return err
		}
	}
	return nil
}
