package virturi

import (
	"errors"
	"strings"
	"testing"
)

func TestCheck(t *testing.T) {
	for _, tc := range []struct {
		uri  string
		want string // "" for valid, else a piece of the error
	}{
		{"qemu:///system", ""},
		{"qemu:///session", ""},
		{"qemu+ssh://root@hv1.example.com/system", ""},
		{"qemu+ssh://root@hv1:2222/system?keyfile=/root/.ssh/id_ed25519&no_tty=1", ""},
		{"qemu+tls://hv1.example.com/system", ""},
		{"qemu+tcp://[fd00::1]:16509/system", ""},
		{"test+unix:///default?socket=/tmp/x/libvirt-sock", ""},
		{"test:///default", ""},
		{"xen", ""}, // an alias from libvirt.conf
		{"hv-1.rack_2", ""},
		{"", "empty"},
		{"qemu:system", "lacks the //"},
		{"QEMU:///system", "driver"},
		{"1qemu:///system", "driver"},
		{"qemu+ssh://root:hunter2@hv1/system", "contains a password"},
		{"QEMU+ssh://root:hunter2@hv1/system", "root:<redacted>@hv1"},
		{"qemu+ssh://hv1:99999/system", "invalid port"},
		{"qemu:///system extra", "spaces"},
		{"qemu:///sys\ntem", "control"},
		{"not an alias", "spaces"},
		{"a/b", "neither"},
	} {
		err := Check(tc.uri)
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%q: %v", tc.uri, err)
		case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
			t.Errorf("%q: error %v, want one containing %q", tc.uri, err, tc.want)
		case err != nil && !errors.Is(err, ErrInvalid):
			t.Errorf("%q: %v does not wrap ErrInvalid", tc.uri, err)
		}
		if err != nil && strings.Contains(err.Error(), "hunter2") {
			t.Errorf("the password in the URI leaked into %q", err)
		}
	}
}

func TestSSHURI(t *testing.T) {
	for _, tc := range []struct {
		ssh  SSH
		want string
	}{
		{SSH{Host: "hv1"}, "qemu+ssh://hv1/system?no_tty=1"},
		{SSH{Host: "hv1", User: "root", Port: 2222}, "qemu+ssh://root@hv1:2222/system?no_tty=1"},
		{SSH{Host: "10.0.0.5", User: "root", KeyFile: "/root/.ssh/fence key"},
			"qemu+ssh://root@10.0.0.5/system?keyfile=%2Froot%2F.ssh%2Ffence+key&no_tty=1"},
		{SSH{Host: "fd00::5", Port: 22}, "qemu+ssh://[fd00::5]:22/system?no_tty=1"},
		{SSH{Host: "[fd00::5]"}, "qemu+ssh://[fd00::5]/system?no_tty=1"},
		{SSH{Host: "hv1", Command: "/opt/bin/ssh"}, "qemu+ssh://hv1/system?command=%2Fopt%2Fbin%2Fssh&no_tty=1"},
		{SSH{Host: "hv1", User: "root", Libssh: true, KnownHosts: "/etc/kh", Command: "/ignored"},
			"qemu+libssh://root@hv1/system?known_hosts=%2Fetc%2Fkh&known_hosts_verify=normal"},
	} {
		got, err := tc.ssh.URI()
		if err != nil {
			t.Errorf("%+v: %v", tc.ssh, err)
			continue
		}
		if got != tc.want {
			t.Errorf("%+v:\n got %s\nwant %s", tc.ssh, got, tc.want)
		}
		if err := Check(got); err != nil {
			t.Errorf("%s does not pass CheckURI: %v", got, err)
		}
	}
	t.Setenv("HOME", "/home/fencer")
	got, err := SSH{Host: "hv1", Libssh: true}.URI()
	if err != nil || !strings.Contains(got, "known_hosts=%2Fhome%2Ffencer%2F.ssh%2Fknown_hosts") {
		t.Errorf("libssh's known_hosts default: %s, %v", got, err)
	}
	for _, bad := range []SSH{{}, {Host: "hv 1"}, {Host: "hv1/x"}, {Host: "hv1", Port: 70000}, {Host: "hv1", User: "a@b"},
		{Host: "hv1", User: "root\n"}} {
		if _, err := bad.URI(); !errors.Is(err, ErrInvalid) {
			t.Errorf("%+v: error %v, want ErrInvalid", bad, err)
		}
	}
}

func TestCheckUser(t *testing.T) {
	for _, ok := range []string{"", "fencer", "fencer@EXAMPLE.COM", "a b"} {
		if err := CheckUser(ok); err != nil {
			t.Errorf("%q: %v", ok, err)
		}
	}
	for _, bad := range []string{"a\x00b", "fencer\n", "\x7f"} {
		if err := CheckUser(bad); !errors.Is(err, ErrInvalid) {
			t.Errorf("%q: %v, want ErrInvalid", bad, err)
		}
	}
}
