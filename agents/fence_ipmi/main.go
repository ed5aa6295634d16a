// Command fence_ipmi is a Pacemaker fence agent that powers hosts off and on through
// their BMC over IPMI 2.0 (RMCP+, "lanplus"), speaking the protocol itself: no ipmitool,
// no password on any command line. Its parameters are fence_ipmilan's, so an existing
// device definition works by changing the agent name.
package main

import (
	"context"
	"fmt"
	"strings"

	"github.com/novaha/novaha/lib/fence"
	"github.com/novaha/novaha/lib/ipmi"
)

// Parameter names of this agent, beyond the framework's.
const (
	paramLanplus = "lanplus"
	paramCipher  = "cipher"
	paramPrivlvl = "privlvl"
	paramKg      = "hexadecimal_kg"
	paramAuth    = "auth"
	paramTarget  = "target"
)

func agent() *fence.Agent {
	return &fence.Agent{
		Name:      "fence_ipmi",
		ShortDesc: "Fence agent for IPMI 2.0 (lanplus) BMCs, in pure Go",
		LongDesc: `fence_ipmi powers a host off and on through its baseboard management controller
over IPMI 2.0 (RMCP+). It is a drop-in replacement for fence_ipmilan: it accepts the same
parameter names, verifies that the host is really off before it reports success, and never
puts the password on a command line. The ipmitool and sudo parameters of fence_ipmilan are
accepted and ignored.`,
		VendorURL: "https://github.com/novaha/novaha",
		Params: []fence.Param{
			fence.IP(true),
			fence.Username(false),
			fence.Password(),
			{Name: paramLanplus, Short: 'P', Type: fence.Boolean, Default: "1",
				Help: "Use IPMI 2.0 (RMCP+, lanplus); 0 selects IPMI 1.5, which is insecure"},
			{Name: paramAuth, Short: 'A', ArgName: "auth", Type: fence.Select, Choices: []string{"md5", "password", "none"},
				Help: "IPMI 1.5 authentication type (only with lanplus=0)"},
			{Name: paramCipher, Short: 'C', ArgName: "cipher", Type: fence.Integer,
				Help: "Cipher suite ID (as ipmitool -C), e.g. 3 or 17; default: the strongest the BMC offers"},
			{Name: paramPrivlvl, Short: 'L', ArgName: "level", Type: fence.Select,
				Choices: []string{"callback", "user", "operator", "administrator"}, Default: "administrator",
				Help: "Privilege level on IPMI device"},
			{Name: paramKg, ArgName: "key", Type: fence.String, Secret: true,
				Help: "Hexadecimal-encoded Kg key (BMC key) for IPMIv2 authentication"},
			fence.IPPort(623),
			fence.PasswordScript(),
			fence.Method(),
			fence.Plug(false, "IP address or hostname of fencing device (together with --port-as-ip)"),
			fence.PortAsIP(),
			// Bridging to another target would power the wrong machine if ignored: it is
			// parsed so that a device still configured with it fails clearly.
			{Name: paramTarget, ArgName: "targetaddress", Type: fence.String, Hidden: true,
				Help: "IPMI bridging target (not supported)"},
			{Name: "ipmitool_path", ArgName: "path", Type: fence.String, Ignored: true,
				Help: "Ignored (fence_ipmilan compatibility): fence_ipmi needs no ipmitool"},
			{Name: "ipmitool_timeout", ArgName: "timeout", Type: fence.String, Ignored: true,
				Help: "Ignored (fence_ipmilan compatibility): use shell_timeout"},
			{Name: "use_sudo", Deprecated: "sudo", Type: fence.Boolean, Ignored: true,
				Help: "Ignored (fence_ipmilan compatibility): fence_ipmi needs no sudo"},
			{Name: "sudo_path", ArgName: "path", Type: fence.String, Ignored: true,
				Help: "Ignored (fence_ipmilan compatibility)"},
		},
		Validate: validate,
		Open:     open,
	}
}

// config maps the options onto the IPMI client's configuration.
func config(o *fence.Options) ipmi.Config {
	return ipmi.Config{
		Logger:      o.Log(),
		Host:        o.String(fence.ParamIP),
		Port:        o.Int(fence.ParamIPPort),
		Username:    o.String(fence.ParamUsername),
		Password:    o.Password(),
		Lanplus:     o.Bool(paramLanplus),
		CipherSuite: cipherSuite(o),
		Privilege:   o.String(paramPrivlvl),
		KgHex:       o.String(paramKg),
		AuthType:    o.String(paramAuth),
	}
}

// cipherSuite is -1 (negotiate) unless the operator chose one.
func cipherSuite(o *fence.Options) int {
	if !o.IsSet(paramCipher) || strings.TrimSpace(o.String(paramCipher)) == "" {
		return -1
	}
	return o.Int(paramCipher)
}

func validate(o *fence.Options) error {
	if o.String(paramTarget) != "" {
		return fmt.Errorf("IPMI bridging (target=%s) is not supported by fence_ipmi; keep fence_ipmilan for this device", o.String(paramTarget))
	}
	cfg := config(o)
	// The password is resolved from password_script only after validation; check the
	// one given directly.
	cfg.Password = o.String(fence.ParamPassword)
	if cfg.Host == "" {
		// port_as_ip without a plug: the address arrives with each request.
		cfg.Host = "placeholder.invalid"
	}
	if err := cfg.Validate(); err != nil {
		return fmt.Errorf("invalid IPMI settings: %w", err)
	}
	return nil
}

func open(ctx context.Context, o *fence.Options) (fence.Device, error) {
	c, err := ipmi.Dial(ctx, config(o))
	if err != nil {
		return nil, err
	}
	return bmc{c}, nil
}

// bmc adapts the IPMI client to the framework: one chassis, so the plug is unused.
type bmc struct{ c *ipmi.Client }

func (b bmc) Status(ctx context.Context, _ string) (fence.State, error) {
	on, err := b.c.PowerStatus(ctx)
	if err != nil {
		return fence.Unknown, err
	}
	if on {
		return fence.On, nil
	}
	return fence.Off, nil
}

func (b bmc) SetPower(ctx context.Context, _ string, on bool) error {
	if on {
		return b.c.PowerOn(ctx)
	}
	return b.c.PowerOff(ctx)
}

func (b bmc) Close(ctx context.Context) error { return b.c.Close(ctx) }

func main() { agent().Main() }
