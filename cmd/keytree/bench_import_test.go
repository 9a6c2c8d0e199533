//go:build unix

package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// BenchmarkImport: setting 300 credentials with one credential import of an
// env file against 300 credential set commands, as a script would run them,
// and reading them back with one credential get --json of all 300 names
// against 300 credential get commands. Each b.N iteration sets (and reads)
// the same 300 names again, so every set after the first replaces. It
// reports the medians and the ratios.
func BenchmarkImport(b *testing.B) {
	const n = 300
	bin, _ := releaseBinaries(b)
	k := newBenchKeystore(b, bin)
	var env strings.Builder
	names := make([]string, n)
	for i := range names {
		names[i] = fmt.Sprintf("cred%03d", i)
		fmt.Fprintf(&env, "%s=value-%d\n", names[i], i)
	}
	envFile := filepath.Join(k.root, "creds.env")
	if err := os.WriteFile(envFile, []byte(env.String()), 0o600); err != nil {
		b.Fatal(err)
	}
	var imports, sets, getAll, gets []time.Duration
	for b.Loop() {
		imports = append(imports, timeCmd(b, k.command(nil, "credential", "import", "--file", envFile, "--identity", "svc")))
		getAll = append(getAll, timeCmd(b, k.command(nil, append(append([]string{"credential", "get"}, names...), "--json")...)))
		start := time.Now()
		for i, name := range names {
			timeCmd(b, k.command([]byte(fmt.Sprint("value-", i)), "credential", "set", name, "--identity", "svc"))
		}
		sets = append(sets, time.Since(start))
		start = time.Now()
		for _, name := range names {
			timeCmd(b, k.command(nil, "credential", "get", name))
		}
		gets = append(gets, time.Since(start))
	}
	b.ReportMetric(ms(median(imports)), "import-ms")
	b.ReportMetric(ms(median(sets)), "300sets-ms")
	b.ReportMetric(float64(median(sets))/float64(median(imports)), "sets/import")
	b.ReportMetric(ms(median(getAll)), "getjson-ms")
	b.ReportMetric(ms(median(gets)), "300gets-ms")
	b.ReportMetric(float64(median(gets))/float64(median(getAll)), "gets/getjson")
}
