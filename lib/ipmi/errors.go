package ipmi

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"time"

	"github.com/bougou/go-ipmi/pkg/client"
	"github.com/bougou/go-ipmi/pkg/types"
)

// Kinds of failure; an *Error wraps at most one of them. Test with errors.Is.
var (
	// ErrAuth: the BMC refused the credentials (unknown user, wrong password, wrong Kg).
	ErrAuth = errors.New("authentication failed")
	// ErrTimeout: no (usable) answer before the deadline: the BMC is unreachable, or
	// nothing listens on its port, or the context's deadline passed. The message always
	// contains "timed out", which Pacemaker looks for.
	ErrTimeout = errors.New("timed out")
	// ErrCipherSuite: the BMC does not accept the cipher suite(s) asked for.
	ErrCipherSuite = errors.New("cipher suite refused")
	// ErrPrivilege: the user may not have the session privilege level asked for, or
	// the level is too low for the command (power control needs operator).
	ErrPrivilege = errors.New("insufficient privilege")
	// ErrRejected: the BMC answered a command with an error completion code.
	ErrRejected = errors.New("request rejected by the BMC")
	// ErrClosed: the Client was used after Close.
	ErrClosed = errors.New("client is closed")
)

// Error is the error of every network operation of this package.
type Error struct {
	Op   string // "connect", "power status", "power on", "power off", "power cycle", "close"
	Addr string // host:port of the BMC
	Kind error  // one of the Err* kinds above, or nil when unclassified

	msg    string // final text, secrets already removed
	cause  error
	ctxErr error // the caller's context error, when it ended the operation
}

// Error returns one line: "ipmi <op> <addr>: <kind>: <detail>".
func (e *Error) Error() string { return e.msg }

// Unwrap gives errors.Is and errors.As the kind and the underlying error (go-ipmi's, or
// the context's).
func (e *Error) Unwrap() []error {
	var errs []error
	if e.Kind != nil {
		errs = append(errs, e.Kind)
	}
	if e.cause != nil {
		errs = append(errs, e.cause)
	}
	if e.ctxErr != nil {
		errs = append(errs, e.ctxErr)
	}
	return errs
}

// failure describes one failed operation, for classify.
type failure struct {
	op        string
	addr      string
	cfg       Config // for user, privilege, cipher suite, version; without secrets
	redact    func(string) string
	err       error
	ctxErr    error // the operation's context error, if it ended
	elapsed   time.Duration
	attempts  int // how many times a request was sent (timeouts)
	abandoned bool
}

// newError builds an *Error whose text can never contain a secret of cfg.
func newError(f failure, kind error, detail string) *Error {
	msg := fmt.Sprintf("ipmi %s %s", f.op, f.addr)
	if kind != nil {
		msg += ": " + kind.Error()
	}
	if detail != "" {
		msg += ": " + detail
	}
	if f.redact != nil {
		msg = f.redact(msg)
	}
	e := &Error{Op: f.op, Addr: f.addr, Kind: kind, msg: msg, cause: f.err}
	if kind == ErrTimeout {
		e.ctxErr = f.ctxErr
	}
	return e
}

// redactor returns a function that removes c's password and Kg from a text. We never
// format them into a message; this is a second line of defence against a dependency
// doing so. The secrets live only in the closure, which no fmt verb prints, so a Client
// keeps this instead of them. Very short secrets are left alone, as replacing every "a"
// would garble messages without protecting much.
func redactor(c Config) func(string) string {
	var secrets []string
	for _, s := range []string{c.Password, c.KgHex, strings.ToLower(c.KgHex), strings.ToUpper(c.KgHex)} {
		if len(s) >= 4 {
			secrets = append(secrets, s)
		}
	}
	return func(text string) string {
		for _, s := range secrets {
			text = strings.ReplaceAll(text, s, "<redacted>")
		}
		return text
	}
}

// withoutSecrets is c for keeping: classify needs the rest.
func (c Config) withoutSecrets() Config {
	c.Password, c.KgHex = "", ""
	return c
}

// flatten makes a go-ipmi error message one line.
func flatten(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// go-ipmi v0.9.1 reports the login step only in its messages, and its RMCP+ login
// (Connect20) formats the errors of the suites it tried with %v, which cuts the error
// chain: errors.Is and errors.As cannot see ErrRAKPAuthentication or an RMCP+ status
// there. These are the phrases it writes (pkg/client/interface_lan.go,
// session_setup.go, types/errors.go).
const (
	stepOpenSession    = "RMCP+ Open Session failed"
	stepActivate15     = "ActivateSession failed"
	stepSetPrivilege   = "SetSessionPrivilegeLevel"
	rakp2Mismatch      = "RAKP2 authentication code mismatch"
	rakp4Mismatch      = "RAKP4 integrity check value does not match"
	rmcpStatusPrefix   = "RMCP+ status "
	noDatagramMatched  = "no datagram matched"
	noMatchingResponse = "no matching IPMI response"
)

// rmcpStatus finds the RMCP+ status code of a failed login, through the chain or, where
// go-ipmi cut it, in the text ("RMCP+ status 0x0d: Unauthorized name").
func rmcpStatus(err error) (types.RmcpStatusCode, bool) {
	var rs *types.RmcpStatusError
	if errors.As(err, &rs) {
		return rs.StatusCode(), true
	}
	msg := err.Error()
	i := strings.Index(msg, rmcpStatusPrefix)
	if i < 0 {
		return 0, false
	}
	var code uint8
	if _, err := fmt.Sscanf(msg[i+len(rmcpStatusPrefix):], "%v", &code); err != nil {
		return 0, false
	}
	return types.RmcpStatusCode(code), true
}

// classify turns a go-ipmi error into an *Error with a kind and a message an operator
// can act on.
func classify(f failure) *Error {
	err, c := f.err, f.cfg
	msg := err.Error()
	user := fmt.Sprintf("user %q", c.Username)
	if c.Username == "" {
		user = "the anonymous user"
	}
	priv, _ := parsePrivilege(c.Privilege)

	var resp *types.ResponseError
	code, isRMCP := rmcpStatus(err)
	switch {
	case f.abandoned || f.ctxErr != nil:
		// Whatever go-ipmi made of it, the caller's deadline (or cancellation) ended it.
		why := "deadline exceeded"
		if errors.Is(f.ctxErr, context.Canceled) {
			why = "canceled"
		}
		detail := fmt.Sprintf("%s after %v%s", why, f.elapsed.Round(time.Millisecond), waitingFor(msg))
		if isRefused(err) {
			detail += fmt.Sprintf(" (UDP %s refused the requests: no IPMI service listens there)", f.addr)
		}
		return newError(f, ErrTimeout, detail)

	case errors.Is(err, client.ErrRAKPAuthentication) && strings.Contains(msg, "RAKP4"), strings.Contains(msg, rakp4Mismatch):
		// RAKP 2 proved the password; RAKP 4 is keyed with Kg (or the password when
		// there is no Kg), so a mismatch there is a Kg the two sides disagree on.
		return newError(f, ErrAuth, fmt.Sprintf("wrong BMC key (Kg) for %s", user))

	case errors.Is(err, client.ErrRAKPAuthentication), strings.Contains(msg, rakp2Mismatch):
		return newError(f, ErrAuth, fmt.Sprintf("wrong password for %s", user))

	case isRMCP:
		switch code {
		case types.RmcpStatusCodeUnauthorizedName, types.RmcpStatusCodeInvalidNameLength:
			return newError(f, ErrAuth, fmt.Sprintf("the BMC does not know %s", user))
		case types.RmcpStatusCodeInvalidIntegrityCheckValue:
			return newError(f, ErrAuth, fmt.Sprintf("wrong password or BMC key (Kg) for %s", user))
		case types.RmcpStatusCodeInvalidRole, types.RmcpStatusCodeUnauthorizedRoleOfPriLevel, types.RmcpStatusCodeNoResToCreateSessAtRole:
			return newError(f, ErrPrivilege, fmt.Sprintf("privilege level %s is not allowed for %s (%s)", priv, user, code))
		case types.RmcpStatusCodeInvalidAuthAlg, types.RmcpStatusCodeInvalidIntegrityAlg,
			types.RmcpStatusCodeNoMatchingAuthPayload, types.RmcpStatusCodeNoMatchingIntegrityPayload,
			types.RmcpStatusCodeInvalidConfidentAlg, types.RmcpStatusCodeNoCipherSuiteMatch:
			return newError(f, ErrCipherSuite, fmt.Sprintf("the BMC does not accept %s (%s)", suites(c), code))
		default:
			return newError(f, nil, fmt.Sprintf("the BMC refused the session: RMCP+ status %#02x (%s)", uint8(code), code))
		}

	case errors.As(err, &resp):
		return classifyCompletion(f, resp, user, priv)

	case isRefused(err):
		return newError(f, ErrTimeout, fmt.Sprintf("no IPMI service answered on UDP %s: connection refused (%s in %v)",
			f.addr, attempts(f.attempts), f.elapsed.Round(time.Millisecond)))

	case isTimeout(err):
		switch {
		case f.op == "connect" && !c.Lanplus && strings.Contains(msg, stepActivate15):
			// The BMC answered Get Session Challenge, so it is reachable: IPMI 1.5 BMCs
			// silently drop an Activate Session whose MD5 digest is wrong.
			return newError(f, ErrAuth, fmt.Sprintf("wrong password for %s (the BMC answered the session challenge, then ignored the activation, which is how IPMI 1.5 BMCs treat a wrong password)", user))
		case f.op == "connect" && strings.Contains(msg, stepOpenSession):
			return newError(f, ErrTimeout, fmt.Sprintf("no answer to RMCP+ Open Session with %s after %s of %v (a BMC may ignore a cipher suite it does not support)",
				suites(c), attempts(f.attempts), c.Timeout))
		}
		return newError(f, ErrTimeout, fmt.Sprintf("no answer from the BMC after %s of %v%s (is it reachable, and IPMI over LAN enabled?)",
			attempts(f.attempts), c.Timeout, waitingFor(msg)))

	case f.op == "connect" && strings.Contains(msg, stepOpenSession):
		// ipmi_sim, for one, answers an unsupported suite with a reply go-ipmi cannot
		// parse, so the failure shows up as a decoding error of Open Session.
		return newError(f, ErrCipherSuite, fmt.Sprintf("the BMC does not accept %s (RMCP+ Open Session failed)", suites(c)))
	}
	return newError(f, nil, flatten(err))
}

// classifyCompletion handles an IPMI completion code (types.ResponseError).
func classifyCompletion(f failure, resp *types.ResponseError, user string, priv privilegeLevel) *Error {
	cc := uint8(resp.CompletionCode())
	msg := f.err.Error()
	switch {
	case strings.Contains(msg, "GetSessionChallenge") && (cc == 0x81 || cc == 0x82):
		// IPMI 1.5 Get Session Challenge: 81h invalid user name, 82h null user disabled.
		return newError(f, ErrAuth, fmt.Sprintf("the BMC does not know %s", user))
	case strings.Contains(msg, stepActivate15) && cc == 0x86,
		strings.Contains(msg, stepSetPrivilege) && (cc == 0x80 || cc == 0x81):
		// Activate Session 86h, Set Session Privilege Level 80h/81h: level not allowed.
		return newError(f, ErrPrivilege, fmt.Sprintf("privilege level %s is not allowed for %s", priv, user))
	case strings.Contains(msg, stepActivate15) && cc >= 0x81 && cc <= 0x83:
		return newError(f, ErrRejected, fmt.Sprintf("the BMC has no free session slot (completion code %#02x)", cc))
	}
	if cc == 0xd4 {
		return newError(f, ErrPrivilege, fmt.Sprintf("%s needs a higher privilege level than %s (power control needs operator)", f.op, priv))
	}
	return newError(f, ErrRejected, fmt.Sprintf("completion code %#02x (%s)", cc, types.CompletionCode(cc)))
}

// isTimeout recognises go-ipmi's ways of saying that no answer came.
func isTimeout(err error) bool {
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, noDatagramMatched) || strings.Contains(msg, noMatchingResponse) || strings.Contains(msg, "timed out")
}

// waitingFor names the login step an error happened in, when go-ipmi says.
func waitingFor(msg string) string {
	for _, s := range []struct{ marker, step string }{
		{"Get Channel Authentication Capabilities", "Get Channel Authentication Capabilities"},
		{stepOpenSession, "RMCP+ Open Session"},
		{"rakp1", "RAKP 1"},
		{"rakp3", "RAKP 3"},
		{"GetSessionChallenge", "Get Session Challenge"},
		{stepActivate15, "Activate Session"},
		{stepSetPrivilege, "Set Session Privilege Level"},
	} {
		if strings.Contains(msg, s.marker) {
			return " waiting for " + s.step
		}
	}
	return ""
}

func attempts(n int) string {
	if n == 1 {
		return "1 attempt"
	}
	return fmt.Sprintf("%d attempts", n)
}

func suites(c Config) string {
	if c.CipherSuite == CipherSuiteAuto {
		return "cipher suites 17 and 3"
	}
	return fmt.Sprintf("cipher suite %d", c.CipherSuite)
}
