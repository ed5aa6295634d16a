package virt

import (
	"errors"
	"fmt"
	"strings"

	"libvirt.org/go/libvirt"
)

// Kinds of failure. Test with errors.Is.
var (
	// ErrNoDomain: the hypervisor has no domain of that name or UUID.
	ErrNoDomain = errors.New("no such domain")
	// ErrNoLibrary: libvirt's client library, libvirt.so.0, could not be loaded.
	ErrNoLibrary = errors.New("libvirt.so.0 cannot be loaded: install libvirt's client library (Debian: libvirt0, RHEL: libvirt-libs)")
	// ErrPending: the context ended while libvirt was still carrying out a request
	// that had been sent. The request may yet take effect; only a later state read
	// tells. Errors that wrap ErrPending also wrap the context's error.
	ErrPending = errors.New("request still in progress")
	// ErrClosed: the Client was used after Close.
	ErrClosed = errors.New("connection is closed")
)

// libvirtError is a libvirt error worded for people: libvirt's own message, without the
// binding's "virError(Code=..., Domain=..., Message='...')" wrapping. It unwraps to the
// binding's libvirt.Error, so errors.Is(err, libvirt.ERR_AUTH_FAILED) works.
type libvirtError struct{ e libvirt.Error }

func (l libvirtError) Error() string {
	msg := strings.TrimSpace(l.e.Message)
	if msg == "" {
		msg = fmt.Sprintf("libvirt error %d", int(l.e.Code))
	}
	return msg
}

func (l libvirtError) Unwrap() error { return l.e }

// noDomainError is libvirt's "domain not found", as ErrNoDomain.
type noDomainError struct{ libvirtError }

func (n noDomainError) Unwrap() []error { return []error{ErrNoDomain, n.e} }

// wrap words err from libvirt for the operation op ("looking up domain x").
func wrap(op string, err error) error {
	var le libvirt.Error
	if !errors.As(err, &le) {
		return fmt.Errorf("%s: %w", op, err)
	}
	if le.Code == libvirt.ERR_NO_DOMAIN {
		return fmt.Errorf("%s: %w", op, noDomainError{libvirtError{le}})
	}
	return fmt.Errorf("%s: %w", op, libvirtError{le})
}

// libraryMissing reports whether err says that the dlopen build found no libvirt.so.0.
// The binding then answers every call with an internal error that names the library
// ("Failed to open libvirt.so.0", or dlerror's "libvirt.so.0: cannot open shared
// object file").
func libraryMissing(err error) bool {
	var le libvirt.Error
	return errors.As(err, &le) && le.Code == libvirt.ERR_INTERNAL_ERROR && strings.Contains(le.Message, "libvirt.so.0")
}
