// Package spec declares fence_libvirt once for its two programs: the front, which
// Pacemaker runs and which answers metadata and validate-all without loading libvirt,
// and the backend, which carries out the device actions through libvirt.
package spec

import (
	"fmt"

	"github.com/novaha/novaha/lib/fence"
	"github.com/novaha/novaha/lib/virt/virturi"
)

// Parameter names of this agent, beyond the framework's.
const (
	paramURI          = "uri"
	paramIdentityFile = "identity_file"
	paramSSHPath      = "ssh_path"
)

// Agent declares fence_libvirt: its parameters, descriptions and offline validation. The
// front (the program Pacemaker runs) adds the Backend, the backend adds Open.
func Agent() *fence.Agent {
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
			{Name: paramURI, ArgName: "uri", Type: fence.String, Default: virturi.DefaultURI,
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
	}
}

// URI is the uri parameter; or, when only ip is given (an empty uri counts as not
// given), the qemu+ssh URI that reaches the hypervisor as fence_virsh would log in to it.
func URI(o *fence.Options) (string, error) {
	explicit := o.IsSet(paramURI) && o.String(paramURI) != ""
	if explicit || o.String(fence.ParamIP) == "" {
		return o.String(paramURI), nil
	}
	ssh := virturi.SSH{
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

// validate checks offline what the backend's connection will check again (virt.Config's
// Validate uses the same virturi functions).
func validate(o *fence.Options) error {
	u, err := URI(o)
	if err == nil && u != "" {
		err = virturi.Check(u)
	}
	if err == nil {
		err = virturi.CheckUser(o.String(fence.ParamUsername))
	}
	if err != nil {
		return fmt.Errorf("invalid libvirt settings: %w", err)
	}
	return nil
}
