package commands

import (
	"slices"
	"strings"
	"testing"

	"github.com/keytree-dev/keytree/keystore"
)

// TestParseTemplateRefs: every call of ref is found, wherever the template
// puts it (actions, branches, range, with, define, nested pipelines), once
// per reference, in the order of first use; nothing else is.
func TestParseTemplateRefs(t *testing.T) {
	text := `a={{ ref "keytree://credential/db" }}
{{ if true }}{{ ref "keytree://secret/app/one" | printf "%q" }}{{ else }}{{ ref "keytree://credential/else" }}{{ end }}
{{ range $i, $x := slice "a" }}{{ ref "keytree://credential/db/identity" }}{{ end }}
{{ with ref "keytree://secret/app/two" }}{{ . }}{{ end }}
{{ define "inner" }}{{ printf "%s" (ref "keytree://secret/app/three") }}{{ end }}{{ template "inner" }}
{{ ref "keytree://credential/db" }} {{ "keytree://credential/not-a-call" }}`
	_, refs, err := parseTemplate("t", []byte(text))
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range refs {
		got = append(got, r.URI())
	}
	want := []string{
		"keytree://credential/db",
		"keytree://secret/app/one",
		"keytree://credential/else",
		"keytree://credential/db/identity",
		"keytree://secret/app/two",
		"keytree://secret/app/three",
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("references:\n got %q\nwant %q", got, want)
	}
}

// TestParseTemplateRefused: a ref whose reference is not written out in
// quotes cannot be read before rendering, so it is refused; so is a bad
// reference, without repeating it.
func TestParseTemplateRefused(t *testing.T) {
	for _, text := range []string{
		`{{ "keytree://credential/db" | ref }}`,
		`{{ $x := "keytree://credential/db" }}{{ ref $x }}`,
		`{{ ref }}`,
		`{{ ref "keytree://credential/a" "keytree://credential/b" }}`,
		`{{ printf "%s" ref }}`,
		`{{ ref (printf "keytree://credential/%s" "db") }}`,
		`{{ ref .Name }}`,
		`{{ if ref }}x{{ end }}`,
		`{{ ref "s3cret-pasted-here" }}`,
		`{{ ref "keytree://secret/../etc" }}`,
		`{{ ref "keytree://credential/db" `,
	} {
		_, _, err := parseTemplate("t", []byte(text))
		if err == nil {
			t.Errorf("%s: accepted", text)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("%s: the error repeats the text: %v", text, err)
		}
	}
}

// TestParseTemplateKinds: the three kinds of reference parse to what they
// name.
func TestParseTemplateKinds(t *testing.T) {
	_, refs, err := parseTemplate("t", []byte(`{{ ref "keytree://credential/db/identity" }}{{ ref "keytree://secret/app/k" }}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []keystore.Ref{{Kind: keystore.RefCredentialIdentity, Name: "db"}, {Kind: keystore.RefSecret, DB: "app", Name: "k"}}
	if !slices.Equal(refs, want) {
		t.Errorf("got %+v, want %+v", refs, want)
	}
}
