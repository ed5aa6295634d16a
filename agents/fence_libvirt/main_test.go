package main

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/novaha/novaha/lib/fence"
	"github.com/novaha/novaha/lib/virt/virttest"
)

// These tests run the agent (the front) in this process, offline or against libvirt's
// test driver: it hands the device actions to the built backend, run as a child.

func runAgent(t *testing.T, args []string, stdin string) (int, string, string) {
	t.Helper()
	return runAgentWith(t, agentBuild.LibexecDir(t), args, stdin)
}

// runAgentWith runs the agent with its backends looked up in libexec.
func runAgentWith(t *testing.T, libexec string, args []string, stdin string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	code := agent().Run(context.Background(), fence.Invocation{Args: args, Stdin: strings.NewReader(stdin), Stdout: &out, Stderr: &errb,
		Getenv: func(k string) string {
			if k == fence.LibexecDirEnv {
				return libexec
			}
			return ""
		}})
	return code, out.String(), errb.String()
}

func TestDeclaration(t *testing.T) {
	if err := agent().Check(); err != nil {
		t.Fatal(err)
	}
}

// The point of the front: it must not link the libvirt binding, whose initialisation
// loads libvirt.so.0 in every process.
func TestFrontDoesNotLinkLibvirt(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-tags", "libvirt_dlopen", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	deps := strings.Fields(string(out))
	if !slices.Contains(deps, "github.com/novaha/novaha/lib/fence") {
		t.Fatalf("go list -deps does not list lib/fence: %q", out)
	}
	for _, dep := range deps {
		if strings.HasPrefix(dep, "libvirt.org/") || dep == "github.com/novaha/novaha/lib/virt" {
			t.Errorf("fence_libvirt depends on %s", dep)
		}
	}
}

// Without its backend the agent still describes and validates itself, and fails a device
// action with one line that names the missing program.
func TestMissingBackend(t *testing.T) {
	empty := t.TempDir()
	for _, args := range [][]string{{"-o", "metadata"}, {"-o", "validate-all", "--uri", "qemu+tls://hv1/system"}, {"--help"}} {
		if code, _, stderr := runAgentWith(t, empty, args, ""); code != 0 {
			t.Errorf("%v without the backend: exit %d %q", args, code, stderr)
		}
	}
	for _, stdin := range []string{"action=status\nplug=vm1\npassword=hunter2\n", "action=list\n", "action=monitor\n"} {
		code, stdout, stderr := runAgentWith(t, empty, nil, stdin)
		if code != 1 || stdout != "" || strings.Count(stderr, "\n") != 1 || !strings.Contains(stderr, backend+" is not installed") ||
			!strings.Contains(stderr, filepath.Join(empty, backend)) {
			t.Errorf("%q without the backend: exit %d, stdout %q, stderr %q", stdin, code, stdout, stderr)
		}
		if strings.Contains(stderr, "hunter2") {
			t.Errorf("the password leaked into %q", stderr)
		}
	}
	// Option errors are the front's to answer.
	if code, _, stderr := runAgentWith(t, empty, []string{"-o", "status", "--no-such-flag"}, ""); code != 1 || strings.Contains(stderr, "not installed") {
		t.Errorf("a bad flag: exit %d %q", code, stderr)
	}
	if code, _, stderr := runAgentWith(t, empty, nil, "action=explode\n"); code != 1 || !strings.Contains(stderr, "Unrecognised action") {
		t.Errorf("an unknown action: exit %d %q", code, stderr)
	}
}

// A device definition written for fence_virsh must be understood as it is: the agent
// name is the only thing an operator changes.
func TestFenceVirshParameterNames(t *testing.T) {
	stdin := `action=validate-all
ipaddr=hv1.example.com
login=root
passwd=secret
identity_file=/root/.ssh/id_rsa
ipport=2222
secure=1
ssh_options=-t '/bin/bash -c "PS1=\\[EXPECT\\]# /bin/bash --noprofile --norc"'
cmd_prompt=[EXPECT]#
use_sudo=0
sudo_path=/usr/bin/sudo
ssh_path=/usr/bin/ssh
inet4_only=1
inet6_only=0
separator=,
plug_separator=,
missing_as_off=1
power_wait=3
power_timeout=30
login_timeout=10
shell_timeout=5
delay=2
nodename=compute-1
port=compute-1
`
	code, _, stderr := runAgent(t, nil, stdin)
	if code != 0 || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
}

func TestMetadataHasFenceVirshNames(t *testing.T) {
	code, md, _ := runAgent(t, []string{"-o", "metadata"}, "")
	if code != 0 {
		t.Fatal("metadata failed")
	}
	for _, name := range []string{"uri", "ip", "ipaddr", "ipport", "username", "login", "password", "passwd",
		"password_script", "passwd_script", "identity_file", "plug", "port", "missing_as_off", "ssh", "secure",
		"ssh_options", "use_sudo", "sudo", "sudo_path", "ssh_path", "inet4_only", "inet6_only", "command_prompt",
		"cmd_prompt", "separator", "plug_separator", "power_wait", "power_timeout", "delay"} {
		if !strings.Contains(md, `<parameter name="`+name+`"`) {
			t.Errorf("metadata lacks %s", name)
		}
	}
	for _, a := range []string{"on", "off", "reboot", "status", "list", "list-status", "monitor", "metadata", "validate-all"} {
		if !strings.Contains(md, `<action name="`+a+`"`) {
			t.Errorf("metadata lacks action %s", a)
		}
	}
}

func TestValidationErrors(t *testing.T) {
	for _, tc := range []struct{ stdin, want string }{
		{"uri=qemu:system\n", "lacks the //"},
		{"uri=QEMU:///system\n", "libvirt driver"},
		{"uri=qemu+ssh://root:hunter2@hv1/system\n", "contains a password"},
		{"ip=hv 1\n", "not an IP address"},
		{"ip=hv1\nipport=70000\n", "out of range"},
		{"ip=hv1\nusername=a@b\n", "user name"},
	} {
		for _, action := range []string{"validate-all", "status"} {
			code, _, stderr := runAgent(t, nil, "action="+action+"\nplug=x\n"+tc.stdin)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("%s %q: exit %d, stderr %q (want %q)", action, tc.stdin, code, stderr, tc.want)
			}
			if strings.Contains(stderr, "hunter2") {
				t.Errorf("the password leaked into %q", stderr)
			}
		}
	}
	// pcs validates with no plug, or a dummy one.
	if code, _, stderr := runAgent(t, nil, "action=validate-all\nuri=qemu+tls://hv1/system\n"); code != 0 {
		t.Errorf("validate-all without a plug: exit %d %q", code, stderr)
	}
	if code, _, stderr := runAgent(t, nil, "action=status\n"); code != 1 || !strings.Contains(stderr, "plug") {
		t.Errorf("status without a plug: exit %d %q", code, stderr)
	}
}

// closedPort is a TCP port on 127.0.0.1 where nothing listens.
func closedPort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	return port
}

// fence_virsh's ip, username, ipport, identity_file and ssh_path make a qemu+ssh URI;
// with a password, libvirt's libssh transport, which can send it; uri wins over ip. The
// URI shows in the connection error (nothing listens on the port).
func TestURIFromFenceVirshParameters(t *testing.T) {
	virttest.Require(t, "ssh")
	port := closedPort(t)
	t.Setenv("HOME", "/nonexistent/home")
	for _, tc := range []struct{ stdin, want string }{
		{fmt.Sprintf("ip=127.0.0.1\nipport=%d\nusername=root\n", port),
			fmt.Sprintf("qemu+ssh://root@127.0.0.1:%d/system?no_tty=1", port)},
		{fmt.Sprintf("ip=127.0.0.1\nipport=%d\nlogin=root\nidentity_file=/etc/fence/key\nssh_path=/usr/bin/ssh\n", port),
			fmt.Sprintf("qemu+ssh://root@127.0.0.1:%d/system?command=%%2Fusr%%2Fbin%%2Fssh&keyfile=%%2Fetc%%2Ffence%%2Fkey&no_tty=1", port)},
		{fmt.Sprintf("ip=127.0.0.1\nipport=%d\nusername=root\npassword=hunter2\n", port),
			fmt.Sprintf("qemu+libssh://root@127.0.0.1:%d/system?known_hosts=%%2Fnonexistent%%2Fhome%%2F.ssh%%2Fknown_hosts&known_hosts_verify=normal", port)},
		{fmt.Sprintf("ip=127.0.0.1\nipport=%d\nusername=root\npassword_script=printf hun%%sr2 te\n", port),
			fmt.Sprintf("qemu+libssh://root@127.0.0.1:%d/system?", port)},
		{fmt.Sprintf("ip=hv1\nusername=root\nuri=qemu+tcp://127.0.0.1:%d/system\n", port),
			fmt.Sprintf("qemu+tcp://127.0.0.1:%d/system", port)},
		{fmt.Sprintf("ip=127.0.0.1\nipport=%d\nusername=root\nuri=\n", port),
			fmt.Sprintf("qemu+ssh://root@127.0.0.1:%d/system?no_tty=1", port)},
	} {
		code, _, stderr := runAgent(t, nil, "action=status\nplug=vm1\nlogin_timeout=10\n"+tc.stdin)
		if code != 1 || !strings.Contains(stderr, "connecting to "+tc.want) {
			t.Errorf("%q: exit %d, stderr %q, want the URI %s", tc.stdin, code, stderr, tc.want)
		}
		if strings.Contains(stderr, "hunter2") {
			t.Errorf("the password leaked into %q", stderr)
		}
	}
}

// The actions on libvirt's test driver, each in one connection (each run starts from
// the hypervisor in virttest's node.xml).
func TestActions(t *testing.T) {
	uri := virttest.NodeURI(t)
	for _, tc := range []struct {
		name   string
		args   []string
		code   int
		stdout string
		stderr string
	}{
		{"status of a running domain", []string{"-o", "status", "-n", "web1"}, 0, "Status: ON\n", ""},
		{"status by UUID", []string{"-o", "status", "-n", "11111111-2222-3333-4444-555555555555"}, 0, "Status: ON\n", ""},
		{"a paused domain is on", []string{"-o", "status", "-n", "db1"}, 0, "Status: ON\n", ""},
		{"status of a shut off domain", []string{"-o", "status", "-n", "off1"}, 2, "Status: OFF\n", ""},
		{"unknown domain", []string{"-o", "status", "-n", "nosuch"}, 1, "", "Domain not found"},
		{"unknown domain, missing_as_off", []string{"-o", "status", "-n", "nosuch", "--missing-as-off"}, 2, "Status: OFF\n", ""},
		{"off", []string{"-o", "off", "-n", "web1"}, 0, "Success: Powered OFF\n", ""},
		{"off by UUID, paused", []string{"-o", "off", "-n", "22222222-2222-3333-4444-555555555555"}, 0, "Success: Powered OFF\n", ""},
		{"off, already", []string{"-o", "off", "-n", "off1"}, 0, "Success: Already OFF\n", ""},
		{"off, transient domain", []string{"-o", "off", "-n", "tmp1"}, 0, "Success: Powered OFF\n", ""},
		{"off, unknown domain", []string{"-o", "off", "-n", "nosuch"}, 1, "", "Domain not found"},
		{"off, unknown domain, missing_as_off", []string{"-o", "off", "-n", "nosuch", "--missing-as-off"}, 0, "Success: Already OFF\n", ""},
		{"on", []string{"-o", "on", "-n", "off1"}, 0, "Success: Powered ON\n", ""},
		{"on, already", []string{"-o", "on", "-n", "web1"}, 0, "Success: Already ON\n", ""},
		{"on, unknown domain, missing_as_off", []string{"-o", "on", "-n", "nosuch", "--missing-as-off"}, 1, "", "Domain not found"},
		{"reboot", []string{"-o", "reboot", "-n", "web1"}, 0, "Success: Rebooted\n", ""},
		{"reboot a shut off domain", []string{"-o", "reboot", "-n", "off1"}, 0, "Success: Rebooted\n", ""},
		{"list", []string{"-o", "list"}, 0, "web1,11111111-2222-3333-4444-555555555555\n", `has space`},
		{"list-status", []string{"-o", "list-status"}, 0, "off1,33333333-2222-3333-4444-555555555555,OFF\n", ""},
		{"monitor", []string{"-o", "monitor"}, 0, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, stdout, stderr := runAgent(t, append(tc.args, "--uri", uri), "")
			if code != tc.code || !strings.Contains(stdout, tc.stdout) || !strings.Contains(stderr, tc.stderr) {
				t.Errorf("exit %d (want %d)\nstdout %q (want %q)\nstderr %q (want %q)", code, tc.code, stdout, tc.stdout,
					stderr, tc.stderr)
			}
		})
	}
	code, stdout, _ := runAgent(t, []string{"-o", "list-status", "--uri", uri}, "")
	want := []string{"web1,11111111-2222-3333-4444-555555555555,ON", "db1,22222222-2222-3333-4444-555555555555,ON",
		"off1,33333333-2222-3333-4444-555555555555,OFF", "tmp1,44444444-2222-3333-4444-555555555555,ON"}
	if code != 0 || len(strings.Split(strings.TrimSpace(stdout), "\n")) != len(want) {
		t.Errorf("list-status: exit %d\n%s", code, stdout)
	}
	for _, w := range want {
		if !strings.Contains(stdout, w+"\n") {
			t.Errorf("list-status lacks %s:\n%s", w, stdout)
		}
	}
}

func TestPasswordNeverLogged(t *testing.T) {
	uri := virttest.NodeURI(t)
	for _, stdin := range []string{
		"action=status\nplug=web1\nverbose=1\npassword=hunter2\nuri=" + uri + "\n",
		// The script's text is no secret, its output is.
		"action=status\nplug=web1\nverbose=1\npassword_script=printf hun%sr2 te\nuri=" + uri + "\n",
		"action=status\nplug=web1\nverbose=1\npassword=hunter2\nuri=nosuchdriver:///x\n",
	} {
		_, stdout, stderr := runAgent(t, nil, stdin)
		if strings.Contains(stdout+stderr, "hunter2") {
			t.Errorf("the password is in the output of %q:\n%s%s", stdin, stdout, stderr)
		}
	}
}
