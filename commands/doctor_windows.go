package commands

import "io/fs"

// fileOwner: keytree does not check owners on Windows (docs/cli-abi.md
// section 3), so doctor does not report them.
func fileOwner(fs.FileInfo) (owner string, mine, known bool) { return "", false, false }
