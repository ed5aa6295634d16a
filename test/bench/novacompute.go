package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/novaha/novaha/lib/daemon"
	"github.com/novaha/novaha/lib/systemd/systemdtest"
)

// novacomputeSuite measures NovaCompute's shallow monitor, the action that runs every
// 10 s on every compute node (target: under 50 ms and 20 MB): in process mode against a
// running stand-in for nova-compute, and in systemd mode against lib/systemd's fake
// manager on a private dbus-daemon (DBUS_SYSTEM_BUS_ADDRESS points the agent to it: two
// bus connections, Hello, AddMatch and three property reads, as with the real systemd).
// There is no Python agent to compare with on Debian (resource-agents does not ship
// ocf:openstack:NovaCompute).
func novacomputeSuite(ctx context.Context, bin string, n int) (suite, error) {
	agent := filepath.Join(bin, "NovaCompute")
	if _, err := os.Stat(agent); err != nil {
		return suite{}, fmt.Errorf("%s: build the agents first (make build)", agent)
	}
	dir, err := os.MkdirTemp("", "novaha-bench-novacompute")
	if err != nil {
		return suite{}, err
	}
	spec := daemon.Spec{Command: "sleep", Args: []string{"3600"}, PidFile: filepath.Join(dir, "NovaCompute-bench.pid"),
		LogFile: filepath.Join(dir, "nova-compute.log")}
	if _, err := daemon.Start(spec); err != nil {
		os.RemoveAll(dir)
		return suite{}, fmt.Errorf("starting the stand-in nova-compute: %w", err)
	}
	stop := func() {
		_ = daemon.Stop(context.Background(), spec, 0)
		os.RemoveAll(dir)
	}
	base := []string{"OCF_ROOT=/usr/lib/ocf", "OCF_RESOURCE_INSTANCE=bench", "HA_RSCTMP=" + dir,
		"OCF_RESKEY_CRM_meta_interval=10000", "OCF_RESKEY_CRM_meta_timeout=20000",
		"OCF_RESKEY_auth_url=http://127.0.0.1:9/v3", "OCF_RESKEY_username=admin", "OCF_RESKEY_password=unused"}
	process := append([]string{"OCF_RESKEY_service_manager=process", "OCF_RESKEY_command=sleep", "OCF_RESKEY_args=3600"}, base...)
	pairs := []pair{
		{title: "monitor, process mode", n: n, ours: command{label: "NovaCompute", argv: []string{agent, "monitor"}, env: process, codes: []int{0}}},
		{title: "meta-data", n: n, ours: command{label: "NovaCompute", argv: []string{agent, "meta-data"}, codes: []int{0}}},
	}
	note := ""
	sd, err := systemdtest.New(dir)
	if err != nil {
		note = "systemd mode not measured: " + err.Error()
	} else {
		sd.AddUnit("nova-compute.service", "active")
		env := append([]string{"DBUS_SYSTEM_BUS_ADDRESS=" + sd.Address, "OCF_RESKEY_service_manager=systemd",
			"OCF_RESKEY_unit=nova-compute.service"}, base...)
		pairs = append(pairs, pair{title: "monitor, systemd mode (fake manager)", n: n,
			ours: command{label: "NovaCompute", argv: []string{agent, "monitor"}, env: env, codes: []int{0}}})
		prev := stop
		stop = func() { sd.Close(); prev() }
	}
	return suite{setup: "stand-in nova-compute (sleep) in process mode; fake systemd on a private bus", pairs: pairs, note: note, stop: stop}, nil
}
