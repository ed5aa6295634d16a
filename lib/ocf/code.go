package ocf

import (
	"errors"
	"fmt"
	"strconv"
)

// Code is an OCF exit code. A Code is also an error, so that a handler reports a
// state without a reason by returning it: `return ocf.NotRunning`. Success returned
// as an error is success.
type Code int

// The OCF exit codes (OCF 1.1, section "Exit codes"; Pacemaker's enum ocf_exitcode).
const (
	Success          Code = 0   // OCF_SUCCESS: the action succeeded; monitor: running
	ErrGeneric       Code = 1   // OCF_ERR_GENERIC: soft error, Pacemaker recovers
	ErrArgs          Code = 2   // OCF_ERR_ARGS: bad arguments on this node
	Unimplemented    Code = 3   // OCF_ERR_UNIMPLEMENTED: the action is not supported
	ErrPerm          Code = 4   // OCF_ERR_PERM: insufficient privileges
	NotInstalled     Code = 5   // OCF_ERR_INSTALLED: something needed is missing on this node
	ErrConfigured    Code = 6   // OCF_ERR_CONFIGURED: the configuration is invalid everywhere
	NotRunning       Code = 7   // OCF_NOT_RUNNING: cleanly stopped
	RunningPromoted  Code = 8   // OCF_RUNNING_PROMOTED (OCF_RUNNING_MASTER)
	FailedPromoted   Code = 9   // OCF_FAILED_PROMOTED (OCF_FAILED_MASTER)
	Degraded         Code = 190 // OCF_DEGRADED: running, but not fully healthy
	DegradedPromoted Code = 191 // OCF_DEGRADED_PROMOTED
)

// String returns the code's OCF name, "OCF_NOT_RUNNING", or its number if it is not
// an OCF code.
func (c Code) String() string {
	switch c {
	case Success:
		return "OCF_SUCCESS"
	case ErrGeneric:
		return "OCF_ERR_GENERIC"
	case ErrArgs:
		return "OCF_ERR_ARGS"
	case Unimplemented:
		return "OCF_ERR_UNIMPLEMENTED"
	case ErrPerm:
		return "OCF_ERR_PERM"
	case NotInstalled:
		return "OCF_ERR_INSTALLED"
	case ErrConfigured:
		return "OCF_ERR_CONFIGURED"
	case NotRunning:
		return "OCF_NOT_RUNNING"
	case RunningPromoted:
		return "OCF_RUNNING_PROMOTED"
	case FailedPromoted:
		return "OCF_FAILED_PROMOTED"
	case Degraded:
		return "OCF_DEGRADED"
	case DegradedPromoted:
		return "OCF_DEGRADED_PROMOTED"
	}
	return strconv.Itoa(int(c))
}

// Error makes a Code an error; its text is the code's name.
func (c Code) Error() string { return c.String() }

// Valid reports whether c is one of the OCF exit codes.
func (c Code) Valid() bool {
	return c.String() != strconv.Itoa(int(c))
}

// Error is a result with a reason: the framework prints the reason as the
// `ocf-exit-reason:` line and exits with Code.
type Error struct {
	Code Code
	Err  error // its text is the reason
}

// Errorf returns an *Error with the given code and a reason formatted as fmt.Errorf
// does (so %w wraps).
func Errorf(code Code, format string, args ...any) error {
	return &Error{Code: code, Err: fmt.Errorf(format, args...)}
}

func (e *Error) Error() string {
	if e.Err == nil {
		return e.Code.String()
	}
	return e.Err.Error()
}

func (e *Error) Unwrap() error { return e.Err }

// CodeOf is the exit code an error stands for: Success for nil; the Code of the
// first *Error in the chain, else of the first Code in the chain; ErrGeneric for any
// other error.
func CodeOf(err error) Code {
	if err == nil {
		return Success
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Code
	}
	if c, ok := errors.AsType[Code](err); ok {
		return c
	}
	return ErrGeneric
}

// reasonOf is the exit reason for err: empty for nil and for a bare Code, the error's
// text otherwise.
func reasonOf(err error) string {
	if err == nil {
		return ""
	}
	if _, ok := err.(Code); ok {
		return ""
	}
	return err.Error()
}
