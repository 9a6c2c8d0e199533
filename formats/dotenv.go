package formats

import (
	"bytes"
	"fmt"
	"strings"
)

// EnvEntry is one NAME=VALUE of an env file.
type EnvEntry struct {
	Name  string
	Value string
	Line  int // where it starts, from 1
}

// MaxEnvFileSize bounds an env file: a thousand credentials fit many
// times over.
const MaxEnvFileSize = 16 << 20

// ParseEnvFile reads an env file (docs/cli-abi.md, "Env files"), the
// format of .env files, in the subset that every tool reading them agrees
// on:
//
//	# a comment, and blank lines, are skipped
//	NAME=value to the end of the line, # included; spaces around it trimmed
//	export NAME=value             (export is ignored)
//	NAME="a\nb \"quoted\" \\ \t"  (escapes \n \r \t \" \\; may span lines)
//	NAME='as it is'              (no escapes; may span lines)
//
// After a closing quote only spaces and a # comment may follow. A name is
// anything before the first =, spaces trimmed, and is not checked here: the
// caller knows what names it takes. A name given twice is an error.
// Errors name the line, never a value.
func ParseEnvFile(data []byte) ([]EnvEntry, error) {
	if len(data) > MaxEnvFileSize {
		return nil, fmt.Errorf("the file is larger than %d bytes", MaxEnvFileSize)
	}
	if bytes.IndexByte(data, 0) >= 0 {
		return nil, fmt.Errorf("the file holds a NUL byte: it is not an env file")
	}
	data = bytes.TrimPrefix(data, []byte("\ufeff"))
	p := &envParser{rest: string(data), line: 1}
	var out []EnvEntry
	seen := map[string]int{}
	for p.rest != "" {
		start := p.line
		text := p.nextLine()
		trimmed := strings.TrimLeft(text, " \t")
		if trimmed == "" || trimmed[0] == '#' {
			continue
		}
		if after, ok := strings.CutPrefix(trimmed, "export"); ok && after != "" && (after[0] == ' ' || after[0] == '\t') {
			trimmed = strings.TrimLeft(after, " \t")
		}
		name, value, ok := strings.Cut(trimmed, "=")
		name = strings.TrimRight(name, " \t")
		if !ok {
			return nil, fmt.Errorf("line %d: no = in it (want NAME=VALUE)", start)
		}
		if name == "" {
			return nil, fmt.Errorf("line %d: nothing before the =", start)
		}
		if strings.ContainsAny(name, " \t\"'") {
			return nil, fmt.Errorf("line %d: the name holds a space or a quote", start)
		}
		v, err := p.value(strings.TrimLeft(value, " \t"))
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", start, err)
		}
		if prev, ok := seen[name]; ok {
			return nil, fmt.Errorf("line %d: %s is given twice (first on line %d)", start, name, prev)
		}
		seen[name] = start
		out = append(out, EnvEntry{Name: name, Value: v, Line: start})
	}
	return out, nil
}

type envParser struct {
	rest string
	line int
}

// nextLine takes the next line off rest, without its LF or CR LF.
func (p *envParser) nextLine() string {
	text, rest, found := strings.Cut(p.rest, "\n")
	p.rest = rest
	if found {
		p.line++
	}
	return strings.TrimSuffix(text, "\r")
}

// value reads a value that starts with v, the rest of its first line; a
// quoted one may take further lines from p.
func (p *envParser) value(v string) (string, error) {
	if v == "" || (v[0] != '"' && v[0] != '\'') {
		return strings.TrimRight(v, " \t"), nil
	}
	quote := v[0]
	var b strings.Builder
	s := v[1:]
	for {
		i := 0
		for ; i < len(s); i++ {
			c := s[i]
			if c == quote {
				return b.String(), checkAfterQuote(s[i+1:])
			}
			if c == '\\' && quote == '"' {
				if i+1 == len(s) {
					return "", fmt.Errorf("a \\ at the end of a line")
				}
				i++
				switch s[i] {
				case 'n':
					b.WriteByte('\n')
				case 'r':
					b.WriteByte('\r')
				case 't':
					b.WriteByte('\t')
				case '"', '\\':
					b.WriteByte(s[i])
				default:
					return "", fmt.Errorf("unknown escape \\%c in a double-quoted value (\\n \\r \\t \\\" \\\\ are known)", s[i])
				}
				continue
			}
			b.WriteByte(c)
		}
		// The quoted value goes on on the next line.
		if p.rest == "" {
			return "", fmt.Errorf("the %c that opens the value is never closed", quote)
		}
		b.WriteByte('\n')
		s = p.nextLine()
	}
}

// checkAfterQuote allows spaces and a comment after a closing quote.
func checkAfterQuote(s string) error {
	s = strings.TrimLeft(s, " \t")
	if s != "" && s[0] != '#' {
		return fmt.Errorf("text after the closing quote")
	}
	return nil
}
