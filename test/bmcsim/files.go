package bmcsim

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeFiles writes lan.conf, sim.emu, the chassis program and the hook scripts, and the
// initial power state.
func writeFiles(dir string, port int, o Options) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("bmcsim: %w", err)
	}
	files := []struct {
		name string
		data string
		mode os.FileMode
	}{
		{LanConf, lanConf(port, o), 0o600},
		{EmuFile, simEmu, 0o644},
		{ChassisProg, chassisScript(dir, o), 0o755},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(dir, f.name), []byte(f.data), f.mode); err != nil {
			return fmt.Errorf("bmcsim: %w", err)
		}
	}
	for name, cmd := range map[string]string{onScript: o.OnCommand, offScript: o.OffCommand} {
		path := filepath.Join(dir, name)
		if cmd == "" {
			if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("bmcsim: %w", err)
			}
			continue
		}
		if err := os.WriteFile(path, []byte(cmd+"\n"), 0o755); err != nil {
			return fmt.Errorf("bmcsim: %w", err)
		}
	}
	power := filepath.Join(dir, PowerFile)
	if _, err := os.Stat(power); o.InitiallyOff || err != nil {
		return writeAtomic(power, []byte(powerValue(!o.InitiallyOff)+"\n"), 0o644)
	}
	return nil
}

// lanConf is ipmi_sim's configuration (ipmi_lan(5)): one LAN channel on o.Host, MD5
// for IPMI 1.5 sessions, the administrator as user 2 (user 1 is the anonymous user).
func lanConf(port int, o Options) string {
	var b strings.Builder
	fmt.Fprintf(&b, `# Written by novaha's bmcsim; see ipmi_lan(5).
name "bmcsim"
set_working_mc 0x20
  startlan 1
    addr %s %d
    priv_limit admin
    allowed_auths_callback md5
    allowed_auths_user md5
    allowed_auths_operator md5
    allowed_auths_admin md5
    guid 6e6f76616861626d6373696d00000001
`, o.Host, port)
	if o.BMCKey != "" {
		fmt.Fprintf(&b, "    bmc_key \"%s\"\n", o.BMCKey)
	}
	// ipmi_sim runs the program through popen() in its working directory, which Start
	// sets to the state directory: a relative path needs no shell quoting.
	b.WriteString("  endlan\n  chassis_control \"./" + ChassisProg + " 0x20\"\n")
	fmt.Fprintf(&b, "  user 2 true \"%s\" \"%s\" admin 10 md5\n", o.Username, o.Password)
	for i, u := range o.Users {
		fmt.Fprintf(&b, "  user %d true \"%s\" \"%s\" %s 10 md5\n", i+3, u.Name, u.Password, u.Privilege)
	}
	return b.String()
}

// simEmu declares the BMC itself (ipmi_sim_cmd(5)): a management controller at 0x20.
const simEmu = `# Written by novaha's bmcsim; see ipmi_sim_cmd(5).
mc_setbmc 0x20
mc_add 0x20 0 no-device-sdrs 0x23 9 8 0x9f 0x1291 0xf02
mc_enable 0x20
`

// chassisScript is the chassis_control program. ipmi_sim runs it synchronously, as
//
//	chassis_control 0x20 get power        (prints "power:1")
//	chassis_control 0x20 set power "0"    (prints nothing on success)
//
// and a power cycle is "set power 0", then "set power 1" a second later.
func chassisScript(dir string, o Options) string {
	return `#!/bin/bash
# Written by novaha's bmcsim: ipmi_sim's chassis_control program.
# ipmi_sim's UDP socket is not close-on-exec: close every inherited descriptor but stdio,
# or a host process started from here would keep the simulator's port after it stops.
for fd in /proc/$$/fd/*; do
  fd=${fd##*/}
  if [ "$fd" -gt 2 ] 2>/dev/null; then eval "exec $fd>&-" 2>/dev/null; fi
done

export BMCSIM_DIR=` + shellQuote(dir) + `
cd "$BMCSIM_DIR" || exit 1
# Every run holds this lock (fd 9), so that Stop can wait for runs in progress; the
# hooks and the boot job must not inherit it.
exec 9>>` + lockFile + ` && flock 9 || exit 1
boot_delay=` + fmt.Sprintf("%.3f", o.BootDelay.Seconds()) + `

record() { echo "$(date +%s.%N) $*" >> ` + LogFile + `; }
power() { [ "$(cat ` + PowerFile + ` 2>/dev/null)" = 0 ] && echo 0 || echo 1; }
setpower() { echo "$1" > ` + PowerFile + `.tmp && mv -f ` + PowerFile + `.tmp ` + PowerFile + `; }
# Every power transition bumps the generation; a pending boot only proceeds if none
# happened since it was scheduled.
bump() {
  local g=$(( $(cat power.gen 2>/dev/null || echo 0) + 1 ))
  echo "$g" > power.gen.tmp && mv -f power.gen.tmp power.gen
  echo "$g"
}
# The hooks' output must not reach ipmi_sim, which reads ours until EOF.
hook() {
  [ -f "$1" ] || return 0
  bash "$1" </dev/null >>` + CommandsLog + ` 2>&1 9>&-
  local rc=$?
  [ $rc = 0 ] || echo "$(date +%s.%N) $1 exited $rc" >>` + CommandsLog + `
}

halt() {
  [ "$(power)" = 0 ] && return
  bump >/dev/null
  hook ` + offScript + `
  setpower 0
}
boot() {
  [ "$(power)" = 1 ] && return
  local g; g=$(bump)
  setpower 1
  schedule_boot "$g"
}
# The boot job is registered (under the lock) so that Stop can end it.
schedule_boot() {
  (
    exec 9>&-
    trap 'kill $sp 2>/dev/null; exit 0' TERM
    sleep "$boot_delay" &
    sp=$!
    wait $sp
    [ -e ` + stoppedMark + ` ] && exit 0
    exec 9>>` + lockFile + ` && flock 9 || exit 0
    [ -e ` + stoppedMark + ` ] && exit 0
    [ "$(cat power.gen 2>/dev/null)" = "$1" ] || exit 0
    hook ` + onScript + `
    record booted
  ) </dev/null >>` + CommandsLog + ` 2>&1 &
  echo $! >>` + bootJobs + `
}
reset() {
  [ "$(power)" = 0 ] && return
  hook ` + offScript + `
  schedule_boot "$(bump)"
}

shift # the MC address
op=$1
shift
case $op in
get)
  for p in "$@"; do
    case $p in
    power) v=$(power); echo "power:$v"; record status "$v" ;;
    boot) echo "boot:default" ;;
    *) echo "Invalid parameter: $p"; exit 1 ;;
    esac
  done
  ;;
set)
  while [ $# -gt 0 ]; do
    p=$1
    if [ $# -lt 2 ]; then echo "No value present for parameter $p"; exit 1; fi
    v=$2
    shift 2
    case $p in
    power) if [ "$v" = 0 ]; then halt; record off; else boot; record on; fi ;;
    reset) reset; record reset ;;
    shutdown) halt; record soft-off ;;
    boot | identify) record "set-$p" "$v" ;;
    *) echo "Invalid parameter: $p"; exit 1 ;;
    esac
  done
  ;;
check) exit 1 ;;
*) echo "Unknown operation: $op"; exit 1 ;;
esac
exit 0
`
}

// shellQuote quotes s for bash, whatever it contains.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
