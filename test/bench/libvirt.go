package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/novaha/novaha/lib/virt/virttest"
)

// libvirtSuite compares fence_libvirt with fence_virsh on one real QEMU/KVM guest under
// the machine's libvirtd. fence_virsh logs in over SSH to 127.0.0.1 (an sshd of our own,
// with a key) and runs virsh there; fence_libvirt talks to the same libvirtd through
// libvirt's API, locally and, for a like-for-like transport, over the same SSH.
func libvirtSuite(ctx context.Context, bin string, n int) (suite, error) {
	ours := filepath.Join(bin, "fence_libvirt")
	if _, err := os.Stat(ours); err != nil {
		return suite{}, fmt.Errorf("%s: build the agents first (make build)", ours)
	}
	if err := virttest.Available(); err != nil {
		return suite{}, err
	}
	var stops []func()
	stop := func() {
		for i := len(stops) - 1; i >= 0; i-- {
			stops[i]()
		}
	}
	fail := func(err error) (suite, error) {
		stop()
		return suite{}, err
	}
	sys, err := virttest.StartSystem(ctx)
	if err != nil {
		return fail(fmt.Errorf("starting libvirtd: %w", err))
	}
	stops = append(stops, sys.Stop)
	sshd, err := virttest.StartSSHD(ctx)
	if err != nil {
		return fail(fmt.Errorf("starting sshd: %w", err))
	}
	stops = append(stops, sshd.Stop)
	g, err := virttest.NewGuest(ctx, sys.URI, false)
	if err != nil {
		return fail(fmt.Errorf("starting the guest: %w", err))
	}
	stops = append(stops, func() { _ = g.Remove(context.Background()) })

	stdin := func(action string, conn ...string) string {
		return strings.Join(append([]string{"action=" + action, "plug=" + g.Name}, conn...), "\n") + "\n"
	}
	local := []string{"uri=" + sys.URI}
	ssh := []string{"ip=" + sshd.Host, fmt.Sprintf("ipport=%d", sshd.Port), "username=" + sshd.User,
		"identity_file=" + sshd.KeyFile, "ssh_path=" + sshd.SSHCommand}
	python := []string{"PYTHONWARNINGS=ignore"}
	virsh, haveVirsh := lookPath("fence_virsh")
	theirs := func(action string, codes ...int) *command {
		if !haveVirsh {
			return nil
		}
		argv := []string{virsh}
		in := stdin(action, ssh...)
		if action == "metadata" {
			argv, in = []string{virsh, "-o", "metadata"}, ""
		}
		return &command{label: "fence_virsh (ssh)", argv: argv, stdin: in, env: python, codes: codes}
	}
	oursAt := func(label, action string, conn []string, codes ...int) command {
		return command{label: label, argv: []string{ours}, stdin: stdin(action, conn...), codes: codes}
	}

	kind := "QEMU emulation"
	if g.KVM {
		kind = "KVM"
	}
	version, _ := virttest.Virsh(ctx, sys.URI, "version", "--daemon")
	version = strings.Join(strings.Fields(strings.ReplaceAll(version, "\n", "; ")), " ")
	s := suite{
		setup: fmt.Sprintf("%s; guest %s (%s, 32 MiB, running); fence_virsh and fence_libvirt (ssh) log in to sshd on %s:%d with a key",
			version, g.Name, kind, sshd.Host, sshd.Port),
		stop: stop,
		pairs: []pair{
			{title: "metadata", n: n,
				ours:   command{label: "fence_libvirt", argv: []string{ours, "-o", "metadata"}, codes: []int{0}},
				theirs: theirs("metadata", 0)},
			{title: "status", n: n,
				ours:   oursAt("fence_libvirt (qemu:///system)", "status", local, 0, 2),
				theirs: theirs("status", 0, 2)},
			{title: "status, both over ssh", n: n,
				ours:   oursAt("fence_libvirt (qemu+ssh)", "status", ssh, 0, 2),
				theirs: theirs("status", 0, 2)},
			{title: "list-status", n: n,
				ours:   oursAt("fence_libvirt (qemu:///system)", "list-status", local, 0),
				theirs: theirs("list-status", 0)},
			{title: "monitor", n: n,
				ours:   oursAt("fence_libvirt (qemu:///system)", "monitor", local, 0),
				theirs: theirs("monitor", 0)},
			{title: "reboot (destroy, start)", n: max(3, n/4),
				ours:   oursAt("fence_libvirt (qemu:///system)", "reboot", local, 0),
				theirs: theirs("reboot", 0)},
		},
	}
	if !haveVirsh {
		s.note = "fence_virsh is not installed (make deps): no comparison"
	}
	return s, nil
}
