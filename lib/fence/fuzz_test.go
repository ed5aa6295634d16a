package fence

import (
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzStdin checks that no stdin can crash the parser, that every stored value belongs
// to a declared parameter, and that booleans are always normalised.
func FuzzStdin(f *testing.F) {
	for _, s := range []string{
		"action=off\nip=10.0.0.1\n", "# c\n\n  passwd=\"x\"\n", "power-timeout=3\n=\n==\n", "lanplus=YES\nquiet=maybe\n",
		"\"\"\n=\"\n", "port=a=b\noption=status\r\n", strings.Repeat("x", 100),
	} {
		f.Add(s)
	}
	params := testAgent(nil, nil).allParams()
	f.Fuzz(func(t *testing.T, in string) {
		o := newOptions(params)
		if err := o.parseStdin(strings.NewReader(in)); err != nil {
			if !strings.Contains(err.Error(), "longer than") {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		for name := range o.given {
			p := o.lookup[name]
			if p == nil || p.Name != name {
				t.Fatalf("stored undeclared name %q", name)
			}
			if p.Type == Boolean && o.raw[name] != "0" && o.raw[name] != "1" {
				t.Fatalf("boolean %s = %q", name, o.raw[name])
			}
		}
		o.applyDefaults(nil)
		_ = o.typecheck()
		for _, w := range o.warnings {
			if !utf8.ValidString(in) {
				continue
			}
			if strings.Contains(w, "\n") {
				t.Fatalf("multi-line warning %q", w)
			}
		}
	})
}
