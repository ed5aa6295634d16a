package ipmi

import (
	"errors"
	"reflect"
	"unsafe"

	"github.com/bougou/go-ipmi/pkg/client"
)

// errKgUnavailable reports that the pinned go-ipmi no longer has the field setBMCKey
// writes; TestKg against ipmi_sim catches that before a release does.
var errKgUnavailable = errors.New("this build's IPMI library cannot use a BMC key (Kg)")

// setBMCKey gives go-ipmi the BMC key Kg for RMCP+ two-key logins.
//
// go-ipmi v0.9.1 implements two-key logins (it keys the session integrity key with
// session.v20.bmcKey when set) but has no option to set that field. Until it has one,
// we write the unexported field, after checking that its path and type are exactly
// what v0.9.1 has (go.mod pins that version), so a different layout fails loudly
// instead of silently logging in without the key.
func setBMCKey(gc *client.Client, kg []byte) error {
	s := reflect.ValueOf(gc).Elem().FieldByName("session")
	if !s.IsValid() || s.Kind() != reflect.Pointer || s.IsNil() {
		return errKgUnavailable
	}
	v20 := s.Elem().FieldByName("v20")
	if !v20.IsValid() || v20.Kind() != reflect.Struct {
		return errKgUnavailable
	}
	key := v20.FieldByName("bmcKey")
	if !key.IsValid() || key.Type() != reflect.TypeFor[[]byte]() || !key.CanAddr() {
		return errKgUnavailable
	}
	reflect.NewAt(key.Type(), unsafe.Pointer(key.UnsafeAddr())).Elem().SetBytes(append([]byte(nil), kg...))
	return nil
}
