package commands

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/keytree-dev/keytree/keystore"
	"github.com/keytree-dev/keytree/protect"
)

func algorithmFlag(usage string) *cli.StringFlag {
	return &cli.StringFlag{Name: flagAlgorithm, Usage: usage + ": x25519 or mlkem768x25519 (post-quantum hybrid)", Value: string(protect.X25519)}
}

func jsonFlag() *cli.BoolFlag {
	return &cli.BoolFlag{Name: flagJSON, Usage: "print JSON"}
}

func (e *env) initCommand(runF func(*initOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "init",
		Usage: "create a keystore and its service master key",
		UsageText: `keytree init [--algorithm x25519|mlkem768x25519]

Creates the keystore directory (owner-only) and a service master key protected
by your account and by this machine. Back the key up next: keytree smk backup.

Examples:
   keytree init
   keytree --keystore /srv/keys init --algorithm mlkem768x25519`,
		Flags:  []cli.Flag{algorithmFlag("the service master key's algorithm")},
		Action: action(parseInit, runF, e.initRun),
	}
}

type initOptions struct {
	Globals   globalOptions
	Algorithm protect.Algorithm
}

func parseInit(a *argv) *initOptions {
	a.noArgs()
	return &initOptions{Globals: a.globals(), Algorithm: a.algorithm()}
}

func (e *env) initRun(opts *initOptions) error {
	ko, err := e.keystoreOptions(opts.Globals)
	if err != nil {
		return err
	}
	res, err := keystore.Init(ko, opts.Algorithm)
	if err != nil {
		return err
	}
	e.say("Created keystore %s\nService master key %s (%s)\nBack it up now: keytree smk backup --file FILE", res.Dir, res.Thumbprint, res.Algorithm)
	return nil
}

type encryptionJSON struct {
	Protector  string `json:"protector"`
	Thumbprint string `json:"thumbprint"`
	Enabled    bool   `json:"enabled"`
	Valid      bool   `json:"valid"`
	Reason     string `json:"reason,omitempty"`
	Recreated  bool   `json:"recreated"`
	RepairErr  string `json:"repairError,omitempty"`
}

type smkJSON struct {
	Thumbprint        string           `json:"thumbprint"`
	Algorithm         string           `json:"algorithm"`
	Generation        int              `json:"generation"`
	Created           string           `json:"created"`
	MachineProtection bool             `json:"machineProtection"`
	Encryptions       []encryptionJSON `json:"encryptions"`
}

func smkInfoJSON(info *keystore.SMKInfo) *smkJSON {
	if info == nil {
		return nil
	}
	return &smkJSON{Thumbprint: info.Thumbprint, Algorithm: string(info.Algorithm), Generation: info.Generation,
		Created: info.Created, MachineProtection: info.MachineProtection,
		Encryptions: jsonList(info.Encryptions, func(enc keystore.EncryptionState) encryptionJSON {
			return encryptionJSON{Protector: string(enc.Protector), Thumbprint: enc.Thumbprint,
				Enabled: enc.Enabled, Valid: enc.Valid, Reason: enc.Reason, Recreated: enc.Recreated, RepairErr: enc.RepairErr}
		})}
}

// encryptionLines describes the SMK's encryptions for people.
func encryptionLines(info *keystore.SMKInfo) [][]string {
	var rows [][]string
	for _, enc := range info.Encryptions {
		state := "valid"
		switch {
		case !enc.Enabled:
			state = "off"
		case !enc.Valid && enc.Recreated:
			state = "was invalid (" + enc.Reason + "); re-created"
		case !enc.Valid && enc.RepairErr != "":
			state = "invalid (" + enc.Reason + "); could not re-create: " + enc.RepairErr
		case !enc.Valid:
			state = "invalid (" + enc.Reason + ")"
		}
		rows = append(rows, []string{"  " + string(enc.Protector) + " encryption (" + enc.Thumbprint + "):", state})
	}
	return rows
}

type statusJSON struct {
	Keystore   string        `json:"keystore"`
	ID         string        `json:"id"`
	Created    string        `json:"created"`
	AccountDir string        `json:"accountDir"`
	MachineDir string        `json:"machineDir"`
	SMK        *smkJSON      `json:"smk"`
	SMKState   string        `json:"smkState"`
	Counts     countsJSON    `json:"counts"`
	Orphans    []orphanJSON  `json:"orphans"`
	Damaged    []damagedJSON `json:"damaged"`
	Backups    []backupJSON  `json:"backups"`
}

// backupJSON is the last recorded backup of a key in use.
type backupJSON struct {
	Key        string `json:"key"` // "smk" or "dmk/DB"
	Thumbprint string `json:"thumbprint"`
	BackedUp   bool   `json:"backedUp"`
	LastBackup string `json:"lastBackup"` // RFC 3339, or "never"
	File       string `json:"file"`
	Problem    string `json:"problem,omitempty"`
}

// lastBackupText is when a key was last backed up, for people.
func lastBackupText(b keystore.LastBackup) string {
	switch {
	case b.Problem != "":
		return "unknown (" + b.Problem + ")"
	case b.Time.IsZero():
		return "never"
	}
	return timeString(b.Time) + " to " + b.File
}

type damagedJSON struct {
	Item    string `json:"item"`
	Path    string `json:"path"`
	Problem string `json:"problem"`
}

type countsJSON struct {
	Credentials int `json:"credentials"`
	Databases   int `json:"databases"`
	Secrets     int `json:"secrets"`
	Orphaned    int `json:"orphaned"`
	Damaged     int `json:"damaged"`
}

type orphanJSON struct {
	Item       string `json:"item"`
	Generation int    `json:"generation"`
	Thumbprint string `json:"thumbprint"`
}

func (e *env) statusCommand(runF func(*reportOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "status",
		Usage: "describe the keystore, its service master key and its encryptions",
		UsageText: `keytree status [--json]

Opens the service master key (re-creating an invalid encryption from the valid
one, as every command does) and shows whether each encryption was valid, with
counts of what the keystore holds, any orphaned items, and when the service
master key and each database master key in use were last backed up ("never"
if no backup of that key is recorded).

On a damaged keystore it goes through every item all the same: each damaged,
missing or exposed file is listed under "damaged" (item, path, problem), the
rest is described, and it then exits 6 (8 for loose permissions), so that a
script notices. It changes nothing else.

Examples:
   keytree status
   keytree status --json | jq .smk.encryptions
   keytree status --json | jq -r '.damaged[] | "\(.item): \(.path)"'`,
		Flags:  []cli.Flag{jsonFlag()},
		Action: keystoreAction(e, parseReport, runF, e.statusRun),
	}
}

func (e *env) statusRun(in *invocation, opts *reportOptions) error {
	st, err := in.ks.Status()
	if st == nil {
		return err
	}
	if perr := e.printStatus(st, opts.JSON); perr != nil {
		return perr
	}
	return err
}

func (e *env) printStatus(st *keystore.Status, asJSON bool) error {
	if asJSON {
		out := statusJSON{Keystore: st.Dir, ID: st.ID, Created: timeString(st.Created), AccountDir: st.AccountDir,
			MachineDir: st.MachineDir, SMK: smkInfoJSON(st.SMK), SMKState: string(st.SMKState),
			Counts: countsJSON{Credentials: st.Credentials, Databases: st.Databases, Secrets: st.Secrets, Orphaned: len(st.Orphans), Damaged: len(st.Damaged)},
			Orphans: jsonList(st.Orphans, func(o keystore.OrphanItem) orphanJSON {
				return orphanJSON{Item: o.Item, Generation: o.Generation, Thumbprint: o.Thumbprint}
			}),
			Damaged: jsonList(st.Damaged, func(d keystore.DamagedItem) damagedJSON {
				return damagedJSON{Item: d.Item, Path: d.Path, Problem: d.Problem}
			}),
			Backups: jsonList(st.Backups, func(b keystore.LastBackup) backupJSON {
				j := backupJSON{Key: b.Key, Thumbprint: b.Thumbprint, BackedUp: !b.Time.IsZero(), LastBackup: "never", File: b.File, Problem: b.Problem}
				if j.BackedUp {
					j.LastBackup = timeString(b.Time)
				}
				return j
			})}
		return writeJSON(e.stdout, out)
	}
	rows := [][]string{
		{"keystore:", st.Dir},
		{"id:", st.ID},
		{"account dir:", st.AccountDir},
		{"machine dir:", st.MachineDir},
	}
	rows = append(rows, smkStatusLines(st)...)
	rows = append(rows,
		[]string{"credentials:", strconv.Itoa(st.Credentials)},
		[]string{"databases:", strconv.Itoa(st.Databases)})
	for _, b := range st.Backups {
		if db, ok := strings.CutPrefix(b.Key, "dmk/"); ok {
			rows = append(rows, []string{"  " + db + ":", "last backup " + lastBackupText(b)})
		}
	}
	rows = append(rows,
		[]string{"secrets:", strconv.Itoa(st.Secrets)},
		[]string{"orphaned:", strconv.Itoa(len(st.Orphans))})
	for _, o := range st.Orphans {
		rows = append(rows, []string{"  " + o.Item + ":", fmt.Sprintf("needs key %s (generation %d)", o.Thumbprint, o.Generation)})
	}
	// Only when there is damage: the lines scripts already parse stay as
	// they are.
	if len(st.Damaged) > 0 {
		rows = append(rows, []string{"damaged:", strconv.Itoa(len(st.Damaged))})
		for _, d := range st.Damaged {
			what := d.Problem
			if d.Path != "" {
				what = d.Path + ": " + d.Problem
			}
			rows = append(rows, []string{"  " + d.Item + ":", what})
		}
	}
	return table(e.stdout, nil, rows)
}

// smkStatusLines describes the service master key for status: only what
// could be read, and never "none" for a key whose smk.toml is damaged.
func smkStatusLines(st *keystore.Status) [][]string {
	if st.SMK == nil {
		return [][]string{{"service master key:", "unknown: smk.toml cannot be read (see damaged)"}}
	}
	rows := [][]string{
		{"service master key:", st.SMK.Thumbprint},
		{"  algorithm:", string(st.SMK.Algorithm)},
		{"  generation:", strconv.Itoa(st.SMK.Generation)},
		{"  created:", st.SMK.Created},
	}
	if st.SMKState == keystore.SMKUnchecked {
		rows = append(rows, []string{"  encryptions:", "not checked (see damaged)"})
	} else {
		rows = append(rows, encryptionLines(st.SMK)...)
	}
	for _, b := range st.Backups {
		if b.Key == "smk" {
			rows = append(rows, []string{"  last backup:", lastBackupText(b)})
		}
	}
	return rows
}

type keyEncryptionJSON struct {
	Key           string `json:"key"`
	Thumbprint    string `json:"thumbprint"`
	CryptType     string `json:"cryptType"`
	CryptTypeDesc string `json:"cryptTypeDesc"`
	Protector     string `json:"protector"`
	State         string `json:"state"`
}

func (e *env) keyEncryptionsCommand(runF func(*reportOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "key-encryptions",
		Usage: "list every encryption of every key, like SQL Server's sys.key_encryptions",
		UsageText: `keytree key-encryptions [--json]

One row per encryption: the service master key's two (thumbprint 0x01 for the
account, 0x03 for the machine), each credential's by the service master key,
each database master key's by password (ESKP) and by the service master key
(ESKM), each secret's by its database master key. STATE is valid or invalid
(the SMK's encryptions, checked now), off, current, or orphaned.

Examples:
   keytree key-encryptions
   keytree key-encryptions --json`,
		Flags:  []cli.Flag{jsonFlag()},
		Action: keystoreAction(e, parseReport, runF, e.keyEncryptionsRun),
	}
}

func (e *env) keyEncryptionsRun(in *invocation, opts *reportOptions) error {
	rows, err := in.ks.KeyEncryptions()
	if rows == nil && err != nil {
		return err
	}
	perr := printList(e.stdout, opts.JSON, rows, []string{"KEY", "THUMBPRINT", "CRYPT_TYPE", "CRYPT_TYPE_DESC", "PROTECTOR", "STATE"},
		func(r keystore.KeyEncryption) keyEncryptionJSON {
			return keyEncryptionJSON{Key: r.Key, Thumbprint: r.Thumbprint, CryptType: r.CryptType,
				CryptTypeDesc: r.CryptTypeDesc, Protector: r.Protector, State: r.State}
		},
		func(r keystore.KeyEncryption) []string {
			tp := r.Thumbprint
			if tp == "" {
				tp = "-"
			}
			return []string{r.Key, tp, r.CryptType, r.CryptTypeDesc, r.Protector, r.State}
		})
	if perr != nil {
		return perr
	}
	return err
}

func (e *env) errorlogCommand(runF func(*noOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "errorlog",
		Usage: "print the keystore's error log",
		UsageText: `keytree errorlog

The error log records what SQL Server writes to its errorlog: error 15466 when
neither encryption of the service master key opens, and every encryption keytree
re-created on its own (or could not). It also records smk alter, and every
regenerate, restore and recover of a master key, with the key now in use.

Example:
   keytree errorlog | tail`,
		Action: keystoreAction(e, parseNoArgs, runF, e.errorlogRun),
	}
}

func (e *env) errorlogRun(in *invocation, _ *noOptions) error {
	log, err := in.ks.ErrorLog()
	if err != nil {
		return err
	}
	_, err = fmt.Fprint(e.stdout, log)
	return err
}

func (e *env) keystoreBackupCommand(runF func(*keystoreBackupOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "backup",
		Usage: "write a consistent copy of the whole keystore to one tar file",
		UsageText: `keytree keystore backup --file F

Writes every file of the keystore as it is (metadata in TOML, keys and values
still age-encrypted) into F, a tar archive. No key is opened and no password
is asked for. The copy is taken under the keystore's shared lock, so no
regenerate, restore or set runs meanwhile: it holds one consistent state,
which a tar of a live keystore does not. F is created owner-only beside its
final name and appears only when whole; an existing F is refused (error 15240).
With --file - the archive goes to standard output (not to a terminal).

Left out: the lock file, the error log and temporary files. A file keytree
does not write is left out with a warning.

The copy alone opens nothing (its keys are protected by your account and this
machine, outside the keystore): a full backup is this copy, an SMK backup
(keytree smk backup) and that backup's password, each kept apart.

Examples:
   keytree keystore backup --file /media/usb/keystore-2026-11.tar
   keytree keystore backup --file - | ssh backup-host 'cat > keystore.tar'`,
		Flags:  []cli.Flag{fileFlag("the archive `FILE` to create (- for standard output)")},
		Action: keystoreAction(e, e.parseKeystoreBackup, runF, e.keystoreBackupRun),
	}
}

type keystoreBackupOptions struct {
	File string // "-": standard output
}

// parseKeystoreBackup refuses standard output when it is a terminal, as
// gh's NewCmdX refuses a prompt without one: before anything else is
// looked at.
func (e *env) parseKeystoreBackup(a *argv) *keystoreBackupOptions {
	file := a.fileOrStdio()
	a.check(func() error {
		if file == "-" && e.stdoutTTY {
			return &keystore.Error{Text: "refusing to write a keystore archive to the terminal", Kind: keystore.ErrRefused,
				Hint: "redirect or pipe it: keytree keystore backup --file - > FILE, or give a file name"}
		}
		return nil
	})
	a.noArgs()
	return &keystoreBackupOptions{File: file}
}

func (e *env) keystoreBackupRun(in *invocation, opts *keystoreBackupOptions) error {
	var res *keystore.CopyResult
	var err error
	if opts.File == "-" {
		res, err = in.ks.BackupKeystoreTo(e.stdout)
	} else {
		res, err = in.ks.BackupKeystore(opts.File)
	}
	if err != nil {
		return err
	}
	for _, p := range res.Left {
		fmt.Fprintf(e.stderr, "keytree: warning: left %s out of the copy: keytree keeps no such file in a keystore\n", escape(p))
	}
	if opts.File != "-" {
		e.say("Wrote a copy of keystore %s (%d files) to %s.", res.ID, res.Files, opts.File)
	}
	return nil
}

func (e *env) keystoreRestoreCommand(runF func(*keystoreRestoreOptions) error) *cli.Command {
	return &cli.Command{
		Name:  "restore",
		Usage: "bring back a keystore from a copy made by keytree keystore backup",
		UsageText: `keytree keystore restore --file F

Unpacks F, an archive written by keytree keystore backup, into the keystore
directory (--keystore, KEYTREE_DIR), which must not exist or must be empty:
keytree never restores over a keystore. Every entry is checked (only the files
and directories keytree writes, no links, no paths outside the keystore, sizes
within keytree's limits) and unpacked into a directory beside the keystore's,
which takes the keystore's name only once all of it was accepted; all of it is
made owner-only, whatever the archive says. With --file - the archive is read
from standard input.

The next command opens the service master key through your account and this
machine, as usual. If their encryptions do not open it (another account or
machine, lost protector directories: error 15466), restore the key from its
backup: keytree smk restore --file SMK_BACKUP, which says, with nothing
changed, whether it needs --force.

Examples:
   keytree --keystore ~/keystore-restored keystore restore --file /media/usb/keystore-2026-11.tar
   ssh backup-host 'cat keystore.tar' | keytree keystore restore --file -`,
		Flags:  []cli.Flag{fileFlag("the archive `FILE` to read (- for standard input)")},
		Action: action(parseKeystoreRestore, runF, e.keystoreRestoreRun),
	}
}

type keystoreRestoreOptions struct {
	Globals globalOptions
	File    string // "-": standard input
}

func parseKeystoreRestore(a *argv) *keystoreRestoreOptions {
	a.noArgs()
	return &keystoreRestoreOptions{Globals: a.globals(), File: a.fileOrStdio()}
}

func (e *env) keystoreRestoreRun(opts *keystoreRestoreOptions) error {
	ko, err := e.keystoreOptions(opts.Globals)
	if err != nil {
		return err
	}
	var res *keystore.CopyResult
	if opts.File == "-" {
		res, err = keystore.RestoreKeystore(ko, e.stdin, "standard input")
	} else {
		if err := existingFile(opts.File); err != nil {
			return err
		}
		res, err = keystore.RestoreKeystoreFile(ko, opts.File)
	}
	if err != nil {
		return err
	}
	e.say("Restored keystore %s (%d files) into %s.\nIf its service master key does not open here, restore it from its backup: keytree smk restore --file SMK_BACKUP", res.ID, res.Files, ko.Keystore)
	return nil
}
