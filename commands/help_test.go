package commands

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/urfave/cli/v2"
)

// docSection returns section "## N. Title" of docs/cli-abi.md.
func docSection(t *testing.T, heading string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "docs", "cli-abi.md"))
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(data), "\n## "+heading+"\n")
	if !ok {
		t.Fatalf("docs/cli-abi.md has no section %q", heading)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	return section
}

// TestExitStatusTopicDocumented: keytree help exit-codes and keytree(1)
// print the statuses, with the meanings, that docs/cli-abi.md section 3
// gives (TestExitStatusesDocumented checks those against the code).
func TestExitStatusTopicDocumented(t *testing.T) {
	section := docSection(t, "3. Exit statuses")
	var doc, table []string
	for _, m := range regexp.MustCompile(`(?m)^\| (\d+) \| ([^|]*) \|`).FindAllStringSubmatch(section, -1) {
		doc = append(doc, m[1]+" "+m[2])
	}
	for _, s := range exitStatuses {
		table = append(table, strconv.Itoa(s.code)+" "+s.meaning)
	}
	if !slices.Equal(doc, table) {
		t.Fatalf("docs/cli-abi.md section 3 lists\n%q\nkeytree help exit-codes lists\n%q", doc, table)
	}
}

// TestEnvironmentTopic: the variables keytree help environment lists with
// a flag are exactly the global flags' variables, and docs/cli-abi.md
// section 7 lists the same variables with the same flags.
func TestEnvironmentTopic(t *testing.T) {
	var fromFlags, table []string
	for _, f := range (&env{}).newApp().Flags {
		d, ok := f.(cli.DocGenerationFlag)
		if !ok {
			continue
		}
		for _, v := range d.GetEnvVars() {
			fromFlags = append(fromFlags, v+" --"+f.Names()[0])
		}
	}
	for _, v := range environment {
		table = append(table, v.name+" --"+v.flag)
	}
	var doc []string
	for _, m := range regexp.MustCompile("(?m)^\\| `(KEYTREE_[A-Z_]+)` \\| `(--[a-z-]+)` \\|").FindAllStringSubmatch(docSection(t, "7. Environment and default directories"), -1) {
		doc = append(doc, m[1]+" "+m[2])
	}
	slices.Sort(fromFlags)
	slices.Sort(doc)
	sorted := slices.Sorted(slices.Values(table))
	if !slices.Equal(sorted, fromFlags) {
		t.Errorf("keytree help environment lists %q; the global flags read %q", sorted, fromFlags)
	}
	if !slices.Equal(sorted, doc) {
		t.Errorf("keytree help environment lists %q; docs/cli-abi.md section 7 lists %q", sorted, doc)
	}
}

func runKeytree(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
	code := e.run(append([]string{"keytree"}, args...))
	return code, stdout.String(), stderr.String()
}

func TestHelpTopics(t *testing.T) {
	code, out, errOut := runKeytree("help", "exit-codes")
	if code != 0 || errOut != "" {
		t.Fatalf("help exit-codes: exit %d, stderr %q", code, errOut)
	}
	for _, s := range exitStatuses {
		want := regexp.MustCompile(`(?m)^ +` + strconv.Itoa(s.code) + `  ` + regexp.QuoteMeta(s.meaning) + `$`)
		if !want.MatchString(out) {
			t.Errorf("help exit-codes does not list status %d (%s):\n%s", s.code, s.meaning, out)
		}
	}
	code, out, errOut = runKeytree("h", "environment")
	if code != 0 || errOut != "" {
		t.Fatalf("h environment: exit %d, stderr %q", code, errOut)
	}
	for _, v := range append(slices.Clone(environment), environmentDefaults...) {
		if !strings.Contains(out, "\n  "+v.name) {
			t.Errorf("help environment does not list %s:\n%s", v.name, out)
		}
	}
	// Commands' help is urfave/cli's, as before.
	if code, out, _ = runKeytree("help", "smk"); code != 0 || !strings.Contains(out, "keytree smk - manage the service master key") {
		t.Errorf("help smk: exit %d\n%s", code, out)
	}
	if code, out, _ = runKeytree("help"); code != 0 || !strings.Contains(out, "exit-codes, environment") {
		t.Errorf("help: exit %d, topics not listed\n%s", code, out)
	}
	if code, _, errOut = runKeytree("help", "nope"); code != exitError || !strings.Contains(errOut, "No help topic for 'nope'") {
		t.Errorf("help nope: exit %d, stderr %q; want 1 and No help topic", code, errOut)
	}
	if code, _, _ = runKeytree("help", "exit-codes", "extra"); code != exitUsage {
		t.Errorf("help exit-codes extra: exit %d, want %d", code, exitUsage)
	}
}

func TestVersionCommand(t *testing.T) {
	code, out, errOut := runKeytree("version")
	if code != 0 || errOut != "" {
		t.Fatalf("version: exit %d, stderr %q", code, errOut)
	}
	want := regexp.MustCompile(`^keytree version \S+\ncommit: .+\ngo: ` + regexp.QuoteMeta(runtime.Version()) +
		`\nplatform: ` + runtime.GOOS + "/" + runtime.GOARCH + `\n$`)
	if !want.MatchString(out) {
		t.Fatalf("version printed %q", out)
	}
	_, flagOut, _ := runKeytree("--version")
	if first, _, _ := strings.Cut(out, "\n"); first+"\n" != flagOut {
		t.Errorf("version's first line %q differs from --version's %q", first, flagOut)
	}
	if code, _, _ := runKeytree("version", "extra"); code != exitUsage {
		t.Errorf("version extra: exit %d, want %d", code, exitUsage)
	}
}

// TestManPages: a page per command (hidden and help commands aside), each
// naming every flag of its command, roff that starts no line with a stray
// request, and keytree(1) with the exit statuses and the environment.
func TestManPages(t *testing.T) {
	app := (&env{}).newApp()
	pages := manPages(app, ManInfo{Version: "1.2.3", Date: "2026-01-31"})
	byName := map[string]string{}
	for _, p := range pages {
		byName[p.name] = string(p.text)
	}
	var walk func(path []string, cmds []*cli.Command)
	count := 1
	walk = func(path []string, cmds []*cli.Command) {
		for _, c := range cmds {
			if c.Hidden || c.Name == "help" {
				continue
			}
			p := append(append([]string(nil), path...), c.Name)
			name := "keytree-" + strings.Join(p, "-") + ".1"
			page, ok := byName[name]
			if !ok {
				t.Errorf("no manual page %s", name)
				continue
			}
			count++
			for _, f := range c.Flags {
				if !strings.Contains(page, `\fB`+roffText("--"+f.Names()[0])+`\fR`) {
					t.Errorf("%s does not describe --%s", name, f.Names()[0])
				}
			}
			if !strings.Contains(page, ".TH "+roffQuote(strings.ToUpper(strings.TrimSuffix(name, ".1")))+" 1 "+roffQuote("2026-01-31")+` "keytree 1.2.3"`) {
				t.Errorf("%s: no .TH header for its name", name)
			}
			walk(p, c.Subcommands)
		}
	}
	walk(nil, app.Commands)
	if count != len(pages) {
		t.Errorf("%d pages for %d commands and keytree(1)", len(pages), count)
	}
	for _, name := range []string{"keytree-smk-backup.1", "keytree-version.1"} {
		if _, ok := byName[name]; !ok {
			t.Errorf("no %s", name)
		}
	}
	main := byName["keytree.1"]
	for _, s := range exitStatuses {
		if !strings.Contains(main, ".B "+strconv.Itoa(s.code)+"\n"+roffText(s.meaning)+"\n") {
			t.Errorf("keytree.1 does not list exit status %d", s.code)
		}
	}
	for _, v := range environment {
		if !strings.Contains(main, ".B "+roffText(v.name)+"\n") {
			t.Errorf("keytree.1 does not list %s", v.name)
		}
	}
	request := regexp.MustCompile(`^\.(\\"|TH|SH|TP|PP|RS|RE|nf|fi|br|B|BR|nh|ad)( |$)`)
	for name, page := range byName {
		for i, line := range strings.Split(strings.TrimSuffix(page, "\n"), "\n") {
			if (strings.HasPrefix(line, ".") || strings.HasPrefix(line, "'")) && !request.MatchString(line) {
				t.Errorf("%s:%d: not a request this generator writes: %q", name, i+1, line)
			}
		}
	}
	// Where groff is installed, it reads every page without a warning.
	if _, err := exec.LookPath("groff"); err == nil {
		dir := tempDir(t)
		names, err := WriteManPages(dir, ManInfo{Version: "1.2.3"})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range names {
			out, err := exec.Command("groff", "-man", "-Tutf8", "-ww", "-z", filepath.Join(dir, n)).CombinedOutput()
			if err != nil || len(out) > 0 {
				t.Errorf("groff %s: %v\n%s", n, err, out)
			}
		}
	}
}

func TestRoffText(t *testing.T) {
	for in, want := range map[string]string{
		"--file":     `\-\-file`,
		`C:\keytree`: `C:\ekeytree`,
		".hidden":    `\&.hidden`,
		"'quoted'":   `\&'quoted'`,
	} {
		if got := roffText(in); got != want {
			t.Errorf("roffText(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestWriteCompletions(t *testing.T) {
	dir := tempDir(t)
	names, err := WriteCompletions(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"keytree.bash", "_keytree", "keytree.fish", "keytree.ps1"} {
		if !slices.Contains(names, want) {
			t.Errorf("WriteCompletions wrote %q, not %s", names, want)
		}
	}
	for _, n := range names {
		data, err := os.ReadFile(filepath.Join(dir, n))
		if err != nil || !bytes.Contains(data, []byte("keytree")) {
			t.Errorf("%s: %v, %d bytes", n, err, len(data))
		}
	}
}
