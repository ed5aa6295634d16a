// Command fence_libvirt is a Pacemaker fence agent that powers libvirt domains off and
// on through the libvirt API (libvirt's own client library, by the official Go binding),
// locally or over qemu+ssh, qemu+tls or qemu+tcp with SASL. It takes fence_virsh's
// parameters, so an existing device definition works by changing the agent name: with ip
// and username and no uri it connects to qemu+ssh://username@ip/system, where fence_virsh
// would log in with ssh and parse virsh's output.
//
// This program does not link libvirt: the binding loads libvirt.so.0 as a program
// starts, which would make metadata (run by Pacemaker at every start) and validate-all
// slow. It answers those itself and replaces itself with fence_libvirt-backend
// (agents/fence_libvirt/backend) for the device actions.
package main

import (
	"github.com/novaha/novaha/agents/fence_libvirt/internal/spec"
	"github.com/novaha/novaha/lib/fence"
)

// backend is the program that carries out the device actions, in /usr/libexec/novaha
// (make build: bin/libexec).
const backend = "fence_libvirt-backend"

func agent() *fence.Agent {
	a := spec.Agent()
	a.Backend = backend
	return a
}

func main() { agent().Main() }
