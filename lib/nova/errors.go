package nova

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"

	"github.com/gophercloud/gophercloud/v2"
)

// Sentinel errors, wrapped by the errors of this package's calls so that callers can
// tell the cases apart with errors.Is.
var (
	// ErrUnreachable: Keystone or Nova could not be reached, or did not answer.
	ErrUnreachable = errors.New("unreachable")
	// ErrUnauthorized: Keystone refused the credentials, or Nova the token or the role.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrNoSuchHost: no nova-compute service matches the host name.
	ErrNoSuchHost = errors.New("no such compute host")
	// ErrAmbiguousHost: several nova-compute services match the host name.
	ErrAmbiguousHost = errors.New("ambiguous compute host name")
	// ErrWaiting: a lifecycle step cannot be taken yet but will be later (the host's
	// evacuation is not finished, its nova-compute has not restarted). Wrapped by
	// the *WaitError values of Unfence.
	ErrWaiting = errors.New("waiting")
)

// Error is a failed exchange with Keystone or Nova, worded for an operator on one line:
// which service, doing what, and what happened. It never carries a request body, so
// no secret can reach it.
type Error struct {
	Service string // "Keystone" or "Nova"
	Op      string // what was being done: "authenticating", "listing compute services"
	Status  int    // the HTTP status, or 0 when there was no answer
	Message string // the service's own explanation, shortened, or the connection error
	URL     string // the request's URL, without credentials
	kind    error  // ErrUnreachable, ErrUnauthorized or nil
	err     error  // the underlying error, for errors.Is (context deadlines)
}

func (e *Error) Error() string {
	var b strings.Builder
	switch {
	case e.Status == 0 && errors.Is(e.err, context.DeadlineExceeded):
		fmt.Fprintf(&b, "%s did not answer in time while %s", e.Service, e.Op)
	case e.Status == 0:
		fmt.Fprintf(&b, "%s is unreachable while %s", e.Service, e.Op)
	case e.kind == ErrUnauthorized && e.Service == "Keystone":
		fmt.Fprintf(&b, "Keystone refused the credentials (HTTP %d) while %s", e.Status, e.Op)
	default:
		fmt.Fprintf(&b, "%s answered HTTP %d %s while %s", e.Service, e.Status, http.StatusText(e.Status), e.Op)
	}
	if e.URL != "" {
		fmt.Fprintf(&b, " (%s)", e.URL)
	}
	if e.Message != "" {
		b.WriteString(": ")
		b.WriteString(e.Message)
	}
	return b.String()
}

// Unwrap gives errors.Is the kind (ErrUnreachable, ErrUnauthorized) and the cause.
func (e *Error) Unwrap() []error {
	var out []error
	if e.kind != nil {
		out = append(out, e.kind)
	}
	if e.err != nil {
		out = append(out, e.err)
	}
	return out
}

// StatusCode is the HTTP status Nova or Keystone answered, or 0.
func StatusCode(err error) int {
	var e *Error
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

// wrapErr turns an error of gophercloud or of the transport into an *Error.
func wrapErr(service, op string, err error) error {
	if err == nil {
		return nil
	}
	var already *Error
	if errors.As(err, &already) || errors.Is(err, ErrNoSuchHost) || errors.Is(err, ErrAmbiguousHost) {
		return err
	}
	var reauth *gophercloud.ErrUnableToReauthenticate
	if errors.As(err, &reauth) && reauth.ErrReauth != nil {
		return wrapErr("Keystone", "authenticating again", reauth.ErrReauth)
	}
	e := &Error{Service: service, Op: op, err: err}
	var code gophercloud.ErrUnexpectedResponseCode
	var uerr *url.Error
	switch {
	case errors.As(err, &code):
		e.Status = code.Actual
		e.URL = redactURL(code.URL)
		e.Message = serviceMessage(code.Body)
		e.err = nil
		if code.Actual == http.StatusUnauthorized || code.Actual == http.StatusForbidden {
			e.kind = ErrUnauthorized
		}
	case errors.As(err, &uerr):
		e.URL = redactURL(uerr.URL)
		e.Message = connMessage(uerr.Err)
		e.kind = ErrUnreachable
	case errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled):
		e.kind = ErrUnreachable
	default:
		e.Message = oneLine(err.Error())
	}
	return e
}

// connMessage words a transport error briefly: "connection refused", "no such host".
func connMessage(err error) string {
	var dnsErr *net.DNSError
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return "timed out"
	case errors.Is(err, context.Canceled):
		return "interrupted"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, syscall.ECONNRESET):
		return "connection reset"
	case errors.As(err, &dnsErr):
		return "cannot resolve " + dnsErr.Name
	}
	return oneLine(err.Error())
}

// serviceMessage extracts the explanation from an OpenStack error body:
// {"badRequest": {"message": "..."}} (Nova) or {"error": {"message": "..."}} (Keystone).
func serviceMessage(body []byte) string {
	var doc map[string]json.RawMessage
	if json.Unmarshal(body, &doc) == nil {
		for _, v := range doc {
			var inner struct {
				Message string `json:"message"`
			}
			if json.Unmarshal(v, &inner) == nil && inner.Message != "" {
				return oneLine(inner.Message)
			}
		}
	}
	s := strings.TrimSpace(string(body))
	if strings.HasPrefix(s, "<") {
		return "" // an HTML error page from a proxy says nothing more than its status
	}
	return oneLine(s)
}

// oneLine keeps a message on one line and at a readable length.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	const maxLen = 300
	if len(s) > maxLen {
		s = s[:maxLen] + "..."
	}
	return s
}

// redactURL removes credentials from a URL, should an operator have put them there.
func redactURL(s string) string {
	u, err := url.Parse(s)
	if err != nil {
		return "(unparsable URL)"
	}
	if u.User != nil {
		u.User = nil
	}
	return u.String()
}
