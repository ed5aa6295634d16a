package main

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/novaha/novaha/lib/fence"
)

func runOffline(t *testing.T, args []string, stdin string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := agent().Run(context.Background(), fence.Invocation{Args: args, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb})
	return code, out.String(), errb.String()
}

func TestDeclaration(t *testing.T) {
	if err := agent().Check(); err != nil {
		t.Fatal(err)
	}
}

// fence_ipmilan's parameter names, as existing device definitions use them, must all
// be understood: the agent name is the only thing an operator changes.
func TestFenceIpmilanParameterNames(t *testing.T) {
	stdin := `action=validate-all
ipaddr=10.0.0.11
login=admin
passwd=secret
lanplus=1
cipher=3
privlvl=OPERATOR
hexadecimal_kg=0a0b0c0d
ipport=6230
method=cycle
power_wait=4
power_timeout=30
auth=password
ipmitool_path=/usr/bin/ipmitool
use_sudo=0
nodename=compute-1
port=compute-1
`
	code, _, stderr := runOffline(t, nil, stdin)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestValidationErrors(t *testing.T) {
	for _, tc := range []struct{ stdin, want string }{
		{"action=validate-all\n", "fence address"},
		{"action=validate-all\nip=h\ncipher=99\n", "cipher"},
		{"action=validate-all\nip=h\nhexadecimal_kg=xyz\n", "hexadecimal"},
		{"action=validate-all\nip=h\nprivlvl=root\n", "privlvl"},
		{"action=validate-all\nip=h\nipport=70000\n", "port"},
		{"action=validate-all\nip=h\ntarget=0x82\n", "bridging"},
		{"action=validate-all\nip=h\npassword=" + strings.Repeat("p", 21) + "\n", "password"},
	} {
		code, _, stderr := runOffline(t, nil, tc.stdin)
		if code != 1 || !strings.Contains(strings.ToLower(stderr), tc.want) {
			t.Errorf("%q: exit %d, stderr %q (want %q)", tc.stdin, code, stderr, tc.want)
		}
		if strings.Contains(stderr, "xyz") {
			t.Errorf("the Kg key leaked into %q", stderr)
		}
	}
}

func TestPortAsIP(t *testing.T) {
	code, _, stderr := runOffline(t, nil, "action=validate-all\nport_as_ip=1\nusername=a\npassword=b\n")
	if code != 0 {
		t.Fatalf("validate-all with port_as_ip and no plug: exit %d %q", code, stderr)
	}
}

func TestMetadataMatchesFenceIpmilan(t *testing.T) {
	code, md, _ := runOffline(t, []string{"-o", "metadata"}, "")
	if code != 0 {
		t.Fatal("metadata failed")
	}
	for _, name := range []string{"ip", "ipaddr", "ipport", "username", "login", "password", "passwd", "password_script",
		"passwd_script", "lanplus", "cipher", "privlvl", "hexadecimal_kg", "method", "power_wait", "power_timeout",
		"auth", "ipmitool_path", "use_sudo", "sudo", "port_as_ip", "plug", "port", "delay", "retry_on"} {
		if !strings.Contains(md, `<parameter name="`+name+`"`) {
			t.Errorf("metadata lacks %s", name)
		}
	}
	if strings.Contains(md, `name="hexadecimal_kg" unique="0" required="0">`+"\n\t\t<getopt mixed=\"--hexadecimal-kg=[key]\" />\n\t\t<content type=\"string\" default") {
		t.Errorf("the Kg key has a default")
	}
}
