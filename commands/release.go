package commands

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// completionFiles names the file each shell's completion script is written
// to in a release: bash-completion looks up a command's own name, zsh's
// fpath wants _keytree, fish wants keytree.fish.
var completionFiles = []struct{ shell, file string }{
	{"bash", "keytree.bash"},
	{"zsh", "_keytree"},
	{"fish", "keytree.fish"},
	{"powershell", "keytree.ps1"},
}

// WriteCompletions writes the completion script of every shell that keytree
// completion supports into dir, which it creates, as keytree completion
// SHELL prints it, and returns the names of the files written.
func WriteCompletions(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	var names []string
	for _, c := range completionFiles {
		var stdout, stderr bytes.Buffer
		e := &env{stdin: strings.NewReader(""), stdout: &stdout, stderr: &stderr}
		if code := e.run([]string{"keytree", "completion", c.shell}); code != exitOK || stdout.Len() == 0 {
			return nil, fmt.Errorf("keytree completion %s: exit status %d: %s", c.shell, code, strings.TrimSpace(stderr.String()))
		}
		if err := os.WriteFile(filepath.Join(dir, c.file), stdout.Bytes(), 0o644); err != nil {
			return nil, err
		}
		names = append(names, c.file)
	}
	return names, nil
}
