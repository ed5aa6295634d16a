package virt

import (
	"bytes"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"testing"
)

func TestConfigValidate(t *testing.T) {
	if err := (Config{}).Validate(); err != nil {
		t.Errorf("the zero Config (default URI): %v", err)
	}
	for _, c := range []Config{
		{URI: "qemu:system"},
		{Username: "a\x00b"},
		{KeepAliveInterval: 500 * 1000 * 1000},
	} {
		if err := c.Validate(); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("%v: %v, want ErrInvalidConfig", c, err)
		}
	}
}

// The password must not come out of a Config by any fmt verb or by slog.
func TestConfigHidesPassword(t *testing.T) {
	c := Config{URI: "qemu+tcp://hv1/system", Username: "fencer", Password: "s3cr3t-pw"}
	var out []string
	for _, verb := range []string{"%v", "%+v", "%#v", "%s", "%q", "%x", "%d"} {
		out = append(out, fmt.Sprintf(verb, c))
	}
	var buf bytes.Buffer
	slog.New(slog.NewTextHandler(&buf, nil)).Info("cfg", "config", c)
	slog.New(slog.NewJSONHandler(&buf, nil)).Info("cfg", "config", c)
	out = append(out, buf.String())
	for _, s := range out {
		if strings.Contains(s, "s3cr3t") || strings.Contains(s, fmt.Sprintf("%x", "s3cr3t")) {
			t.Errorf("password leaked: %s", s)
		}
		if !strings.Contains(s, "fencer") && !strings.Contains(s, fmt.Sprintf("%x", "fencer")) {
			t.Errorf("user name missing: %s", s)
		}
	}
}

func TestStateOff(t *testing.T) {
	for s := NoState; s <= PMSuspended; s++ {
		if s.Off() != (s == Shutoff) {
			t.Errorf("%s: Off() = %t", s, s.Off())
		}
		if s.String() == "unknown" {
			t.Errorf("state %d has no name", int(s))
		}
	}
}
