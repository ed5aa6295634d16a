// Command fence_libvirt is a Pacemaker fence agent that powers libvirt domains off and
// on through the libvirt API (libvirt's own client library, by the official Go binding),
// locally or over qemu+ssh, qemu+tls or qemu+tcp with SASL. It takes fence_virsh's
// parameters, so an existing device definition works by changing the agent name: with ip
// and username and no uri it connects to qemu+ssh://username@ip/system, where fence_virsh
// would log in with ssh and parse virsh's output.
package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/novaha/novaha/lib/fence"
	"github.com/novaha/novaha/lib/virt"
)

// Parameter names of this agent, beyond the framework's.
const (
	paramURI          = "uri"
	paramIdentityFile = "identity_file"
	paramSSHPath      = "ssh_path"
)

func agent() *fence.Agent {
	// Shared by every session of one run, so that a transient domain this run
	// destroyed (libvirt forgets it once it stops) reads as OFF after a reconnection.
	destroyed := &virt.DestroyedSet{}
	ip := fence.IP(false)
	ip.Help = "Hypervisor to log in to over SSH, as fence_virsh does (used when uri is not set)"
	port := fence.IPPort(22)
	port.Help = "SSH port of the hypervisor (with ip)"
	user := fence.Username(false)
	user.Help = "Login name: the SSH user with ip, the SASL user name with uri"
	password := fence.Password()
	password.Help = "Password: for SASL with uri; with ip, the SSH password or key passphrase"
	ignored := func(name, old, help string) fence.Param {
		return fence.Param{Name: name, Deprecated: old, Type: fence.String, Ignored: true,
			Help: "Ignored (fence_virsh compatibility): " + help}
	}
	return &fence.Agent{
		Name:      "fence_libvirt",
		ShortDesc: "Fence agent for libvirt domains, through the libvirt API",
		LongDesc: `fence_libvirt powers libvirt domains (virtual machines) off and on through libvirt's
API, with libvirt's own client library: locally (qemu:///system), or remotely over SSH, TLS or
TCP with SASL, authenticated as libvirt authenticates (SSH keys, TLS certificates, SASL user
name and password). Off destroys the domain (an immediate hard power-off) and succeeds only
once libvirt reports it shut off; on starts it again. The plug is the domain's name or UUID.
Every libvirt call is bounded by login_timeout or shell_timeout: a hypervisor that stops
answering fails the action, it never hangs it.

It is a drop-in replacement for fence_virsh: with ip (and username, identity_file, ipport)
and no uri it connects to qemu+ssh://username@ip:ipport/system, with libvirt's libssh
transport when a password is given. The host key must already be known
(~/.ssh/known_hosts): unknown keys are refused. fence_virsh's shell, prompt and sudo
parameters are accepted and ignored.`,
		VendorURL: "https://github.com/novaha/novaha",
		Params: []fence.Param{
			{Name: paramURI, ArgName: "uri", Type: fence.String, Default: virt.DefaultURI,
				Help: "libvirt connection URI: qemu:///system, qemu+ssh://root@host/system, qemu+tls://host/system, " +
					"test+unix:///default, or an alias from libvirt.conf. Without it, ip makes " +
					"qemu+ssh://username@ip:ipport/system"},
			ip,
			port,
			user,
			password,
			fence.PasswordScript(),
			{Name: paramIdentityFile, Short: 'k', ArgName: "filename", Type: fence.String,
				Help: "Identity file (private key) for SSH (with ip)"},
			{Name: paramSSHPath, ArgName: "path", Type: fence.String,
				Help: "Path to ssh binary (with ip and no password; default: ssh from PATH)"},
			fence.Plug(true, "Name or UUID of the domain"),
			fence.MissingAsOff(),
			{Name: "ssh", Deprecated: "secure", Type: fence.Boolean, Ignored: true,
				Help: "Ignored (fence_virsh compatibility): with ip, SSH is always used"},
			ignored("ssh_options", "", "put SSH options in ~/.ssh/config"),
			{Name: "use_sudo", Deprecated: "sudo", Type: fence.Boolean, Ignored: true,
				Help: "Ignored (fence_virsh compatibility): give the SSH user access to libvirt instead (group libvirt)"},
			ignored("sudo_path", "", "fence_libvirt runs no command on the hypervisor"),
			{Name: "inet4_only", Type: fence.Boolean, Ignored: true,
				Help: "Ignored (fence_virsh compatibility): use AddressFamily in ~/.ssh/config"},
			{Name: "inet6_only", Type: fence.Boolean, Ignored: true,
				Help: "Ignored (fence_virsh compatibility): use AddressFamily in ~/.ssh/config"},
			ignored("command_prompt", "cmd_prompt", "fence_libvirt runs no shell"),
			ignored("separator", "", "list output is always comma-separated"),
			ignored("plug_separator", "", "list output is always comma-separated"),
		},
		Lists:    true,
		Validate: validate,
		Open: func(ctx context.Context, o *fence.Options) (fence.Device, error) {
			return open(ctx, o, destroyed)
		},
	}
}

// uri is the uri parameter; or, when only ip is given (an empty uri counts as not
// given), the qemu+ssh URI that reaches the hypervisor as fence_virsh would log in to it.
func uri(o *fence.Options) (string, error) {
	explicit := o.IsSet(paramURI) && o.String(paramURI) != ""
	if explicit || o.String(fence.ParamIP) == "" {
		return o.String(paramURI), nil
	}
	ssh := virt.SSH{
		Host:    o.String(fence.ParamIP),
		User:    o.String(fence.ParamUsername),
		KeyFile: o.String(paramIdentityFile),
		Command: o.String(paramSSHPath),
		// The ssh command cannot be given a password; libvirt's libssh asks for it.
		Libssh: o.String(fence.ParamPassword) != "" || o.String(fence.ParamPasswordScript) != "",
	}
	if o.IsSet(fence.ParamIPPort) {
		ssh.Port = o.Int(fence.ParamIPPort)
	}
	return ssh.URI()
}

// config maps the options onto the libvirt client's configuration.
func config(o *fence.Options) (virt.Config, error) {
	u, err := uri(o)
	if err != nil {
		return virt.Config{}, err
	}
	return virt.Config{
		URI:      u,
		Username: o.String(fence.ParamUsername),
		Password: o.Password(),
		// Reading needs no more: the read-only socket, the least privilege.
		ReadOnly: readOnly(o.Action()),
	}, nil
}

func readOnly(action string) bool {
	switch action {
	case "status", "list", "list-status", "monitor":
		return true
	}
	return false
}

func validate(o *fence.Options) error {
	cfg, err := config(o)
	if err == nil {
		err = cfg.Validate()
	}
	if err != nil {
		return fmt.Errorf("invalid libvirt settings: %w", err)
	}
	return nil
}

func open(ctx context.Context, o *fence.Options, destroyed *virt.DestroyedSet) (fence.Device, error) {
	cfg, err := config(o)
	if err != nil {
		return nil, err
	}
	cfg.Destroyed = destroyed
	c, err := virt.Dial(ctx, cfg)
	if err != nil {
		return nil, err
	}
	return hypervisor{c}, nil
}

// hypervisor adapts the libvirt client to the framework: a plug is a domain.
type hypervisor struct{ c *virt.Client }

func (h hypervisor) Status(ctx context.Context, plug string) (fence.State, error) {
	s, err := h.c.State(ctx, plug)
	switch {
	case errors.Is(err, virt.ErrNoDomain):
		return fence.Unknown, noSuchPlug{err}
	case err != nil:
		return fence.Unknown, err
	case s.Off():
		return fence.Off, nil
	}
	return fence.On, nil
}

// noSuchPlug reads as libvirt's "domain not found" and is fence.ErrNoSuchPlug, so that
// missing_as_off applies.
type noSuchPlug struct{ err error }

func (n noSuchPlug) Error() string   { return n.err.Error() }
func (n noSuchPlug) Unwrap() []error { return []error{fence.ErrNoSuchPlug, n.err} }

func (h hypervisor) SetPower(ctx context.Context, plug string, on bool) error {
	var err error
	if on {
		err = h.c.Start(ctx, plug)
	} else {
		err = h.c.Destroy(ctx, plug)
	}
	if errors.Is(err, virt.ErrPending) && errors.Is(err, context.DeadlineExceeded) {
		// Sent, and libvirt is still at it (destroy waits for QEMU to exit, start for
		// it to boot): the framework's status polling tells whether it took effect.
		return nil
	}
	return err
}

func (h hypervisor) List(ctx context.Context) ([]fence.Outlet, error) {
	doms, err := h.c.Domains(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]fence.Outlet, 0, len(doms))
	for _, d := range doms {
		st := fence.On
		if d.State.Off() {
			st = fence.Off
		}
		out = append(out, fence.Outlet{Name: d.Name, Alias: d.UUID, State: st})
	}
	return out, nil
}

func (h hypervisor) Close(ctx context.Context) error { return h.c.Close(ctx) }

func main() { agent().Main() }
