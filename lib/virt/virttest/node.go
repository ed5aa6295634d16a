package virttest

import (
	_ "embed"
	"os"
	"path/filepath"
	"testing"
)

// nodeXML is a hypervisor for libvirt's test driver, with domains in several states:
// web1 (running), db1 (paused), off1 (shut off), tmp1 (running, transient), and
// "has space" (running, a name Pacemaker cannot take). Their UUIDs are
// 11111111-2222-3333-4444-555555555555, 22222222-..., and so on in that order.
//
//go:embed node.xml
var nodeXML []byte

// NodeURI writes the test hypervisor to a file for this test and returns its URI,
// test:///<path>. It runs in the process that connects (libvirt's test driver needs no
// daemon), and every connection starts from the state in the file.
func NodeURI(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "node.xml")
	if err := os.WriteFile(path, nodeXML, 0o600); err != nil {
		t.Fatal(err)
	}
	return "test://" + path
}
