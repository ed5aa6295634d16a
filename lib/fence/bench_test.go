package fence

import (
	"context"
	"io"
	"strings"
	"testing"
)

// Pacemaker's stdin for a typical IPMI device.
const benchStdin = `action=reboot
nodename=compute-1
plug=compute-1
ip=10.0.0.11
username=admin
password=secret
power_timeout=20
delay=0
`

func BenchmarkParseStdin(b *testing.B) {
	params := testAgent(nil, nil).allParams()
	b.ReportAllocs()
	for b.Loop() {
		o := newOptions(params)
		if err := o.parseStdin(strings.NewReader(benchStdin)); err != nil {
			b.Fatal(err)
		}
		o.applyDefaults(nil)
		if err := o.typecheck(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMetadata(b *testing.B) {
	a := testAgent(nil, nil)
	b.ReportAllocs()
	for b.Loop() {
		if err := a.WriteMetadata(io.Discard); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStatusAction is a whole status run against an in-memory device: the
// framework's own cost per Pacemaker monitor.
func BenchmarkStatusAction(b *testing.B) {
	a := testAgent(&fakeDevice{state: On}, newFakeClock())
	b.ReportAllocs()
	for b.Loop() {
		code := a.Run(context.Background(), Invocation{Stdin: strings.NewReader(benchStdin + "action=status\n"), Stdout: io.Discard, Stderr: io.Discard})
		if code != ExitSuccess {
			b.Fatalf("exit %d", code)
		}
	}
}
