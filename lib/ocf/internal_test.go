package ocf

import (
	"errors"
	"fmt"
	"log/slog"
	"log/syslog"
	"strings"
	"testing"
	"time"
)

func TestParseValue(t *testing.T) {
	tests := []struct {
		typ     Type
		in      string
		want    any
		wantErr string
	}{
		{String, " keep spaces ", " keep spaces ", ""},
		{Integer, "42", 42, ""},
		{Integer, " -7 ", -7, ""},
		{Integer, "4.2", nil, "not an integer"},
		{Integer, "0x10", nil, "not an integer"},
		{Integer, "99999999999999999999", nil, "out of range"},
		{Integer, "", nil, "not an integer"},
		{Boolean, "1", true, ""},
		{Boolean, "YES", true, ""},
		{Boolean, "True", true, ""},
		{Boolean, "on", true, ""},
		{Boolean, "0", false, ""},
		{Boolean, "No", false, ""},
		{Boolean, "FALSE", false, ""},
		{Boolean, " off ", false, ""},
		{Boolean, "y", nil, "not a boolean"},
		{Boolean, "ja", nil, "not a boolean"},
		{Boolean, "2", nil, "not a boolean"},
		{Duration, "30", 30 * time.Second, ""},
		{Duration, "0", time.Duration(0), ""},
		{Duration, "30s", 30 * time.Second, ""},
		{Duration, "30 sec", 30 * time.Second, ""},
		{Duration, "500ms", 500 * time.Millisecond, ""},
		{Duration, "500msec", 500 * time.Millisecond, ""},
		{Duration, "2min", 2 * time.Minute, ""},
		{Duration, "2m", 2 * time.Minute, ""},
		{Duration, "1H", time.Hour, ""},
		{Duration, "1hr", time.Hour, ""},
		{Duration, "1m30s", 90 * time.Second, ""},
		{Duration, "1.5s", 1500 * time.Millisecond, ""},
		{Duration, "-5s", nil, "negative"},
		{Duration, "-5", nil, "not a time"},
		{Duration, "soon", nil, "not a time"},
		{Duration, "", nil, "not a time"},
		{Duration, "99999999999h", nil, "out of range"},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s/%q", tt.typ, tt.in), func(t *testing.T) {
			got, err := parseValue(tt.typ, tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("parseValue = %v, %v; want error containing %q", got, err, tt.wantErr)
				}
				if len(tt.in) > 2 && strings.Contains(err.Error(), tt.in) {
					t.Errorf("error %q quotes the value, which may be a secret", err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("parseValue = %#v, %v; want %#v", got, err, tt.want)
			}
		})
	}
}

func TestFormatDuration(t *testing.T) {
	tests := []struct {
		in   time.Duration
		want string
	}{
		{20 * time.Second, "20s"},
		{2 * time.Minute, "120s"},
		{0, "0s"},
		{1500 * time.Millisecond, "1500ms"},
		{1500 * time.Microsecond, "1.5ms"},
	}
	for _, tt := range tests {
		if got := formatDuration(tt.in); got != tt.want {
			t.Errorf("formatDuration(%s) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestSafetyMargin(t *testing.T) {
	tests := []struct{ timeout, want time.Duration }{
		{20 * time.Second, 2 * time.Second},
		{5 * time.Second, time.Second},
		{2 * time.Second, time.Second},
		{time.Second, 500 * time.Millisecond},
		{200 * time.Millisecond, 100 * time.Millisecond},
		{60 * time.Second, 5 * time.Second},
		{10 * time.Minute, 5 * time.Second},
	}
	for _, tt := range tests {
		if got := safetyMargin(tt.timeout); got != tt.want {
			t.Errorf("safetyMargin(%s) = %s, want %s", tt.timeout, got, tt.want)
		}
	}
}

func TestXMLEscape(t *testing.T) {
	tests := []struct{ in, want string }{
		{`a & b < c > d "e" 'f'`, "a &amp; b &lt; c &gt; d &quot;e&quot; &apos;f&apos;"},
		{"two\nlines\tand tab", "two\nlines\tand tab"},
		{"bell\x07", "bell?"},
		{"bad \xff utf8", "bad ? utf8"},
		{"real \uFFFD kept", "real \uFFFD kept"},
		{"ünïcödé ✓", "ünïcödé ✓"},
	}
	for _, tt := range tests {
		if got := xmlEscape(tt.in); got != tt.want {
			t.Errorf("xmlEscape(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestEnviron(t *testing.T) {
	env := environ([]string{"A=1", "B=x=y", "A=2", "NOEQUALS", "=weird", "EMPTY="})
	want := map[string]string{"A": "1", "B": "x=y", "EMPTY": ""}
	if len(env) != len(want) {
		t.Errorf("environ = %v, want %v", env, want)
	}
	for k, v := range want {
		if env[k] != v {
			t.Errorf("environ[%s] = %q, want %q", k, env[k], v)
		}
	}
}

func TestCodeOf(t *testing.T) {
	tests := []struct {
		name       string
		err        error
		want       Code
		wantReason string
	}{
		{"nil", nil, Success, ""},
		{"bare code", NotRunning, NotRunning, ""},
		{"Errorf", Errorf(ErrPerm, "no access to %s", "x"), ErrPerm, "no access to x"},
		{"plain error", errors.New("boom"), ErrGeneric, "boom"},
		{"wrapped Errorf", fmt.Errorf("ctx: %w", Errorf(NotInstalled, "no libvirt")), NotInstalled, "ctx: no libvirt"},
		{"wrapped code", fmt.Errorf("pid gone: %w", NotRunning), NotRunning, "pid gone: OCF_NOT_RUNNING"},
		{"Errorf wrapping a code", Errorf(ErrConfigured, "bad: %w", NotInstalled), ErrConfigured, "bad: OCF_ERR_INSTALLED"},
		{"Error without Err", &Error{Code: ErrArgs}, ErrArgs, "OCF_ERR_ARGS"},
		{"joined", errors.Join(errors.New("a"), Degraded), Degraded, "a\nOCF_DEGRADED"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := CodeOf(tt.err); got != tt.want {
				t.Errorf("CodeOf = %s, want %s", got, tt.want)
			}
			if got := reasonOf(tt.err); got != tt.wantReason {
				t.Errorf("reasonOf = %q, want %q", got, tt.wantReason)
			}
		})
	}
}

func TestCodeNames(t *testing.T) {
	for c, want := range map[Code]string{
		Success: "OCF_SUCCESS", ErrGeneric: "OCF_ERR_GENERIC", ErrArgs: "OCF_ERR_ARGS",
		Unimplemented: "OCF_ERR_UNIMPLEMENTED", ErrPerm: "OCF_ERR_PERM",
		NotInstalled: "OCF_ERR_INSTALLED", ErrConfigured: "OCF_ERR_CONFIGURED",
		NotRunning: "OCF_NOT_RUNNING", RunningPromoted: "OCF_RUNNING_PROMOTED",
		FailedPromoted: "OCF_FAILED_PROMOTED", Degraded: "OCF_DEGRADED",
		DegradedPromoted: "OCF_DEGRADED_PROMOTED",
	} {
		if c.String() != want || !c.Valid() {
			t.Errorf("Code(%d) = %q (valid %v), want %q", int(c), c.String(), c.Valid(), want)
		}
	}
	if c := Code(42); c.Valid() || c.String() != "42" {
		t.Errorf("Code(42) = %q, valid %v", c.String(), c.Valid())
	}
}

func TestSyslogFacility(t *testing.T) {
	tests := []struct {
		env  map[string]string
		want syslog.Priority
		ok   bool
	}{
		{map[string]string{}, 0, false},
		{map[string]string{"HA_LOGFACILITY": "none"}, 0, false},
		{map[string]string{"HA_logfacility": "daemon"}, syslog.LOG_DAEMON, true},
		{map[string]string{"HA_LOGFACILITY": "local7", "HA_logfacility": "daemon"}, syslog.LOG_LOCAL7, true},
		{map[string]string{"HA_LOGFACILITY": "Local3"}, syslog.LOG_LOCAL3, true},
		{map[string]string{"HA_LOGFACILITY": "strange"}, syslog.LOG_DAEMON, true},
	}
	for _, tt := range tests {
		got, ok := syslogFacility(tt.env)
		if got != tt.want || ok != tt.ok {
			t.Errorf("syslogFacility(%v) = %v, %v; want %v, %v", tt.env, got, ok, tt.want, tt.ok)
		}
	}
}

type fakeSyslog struct{ lines []string }

func (f *fakeSyslog) Err(m string) error     { f.lines = append(f.lines, "err "+m); return nil }
func (f *fakeSyslog) Warning(m string) error { f.lines = append(f.lines, "warning "+m); return nil }
func (f *fakeSyslog) Info(m string) error    { f.lines = append(f.lines, "info "+m); return nil }
func (f *fakeSyslog) Debug(m string) error   { f.lines = append(f.lines, "debug "+m); return nil }
func (f *fakeSyslog) Close() error           { return nil }

func TestSyslogHandler(t *testing.T) {
	w := &fakeSyslog{}
	log := slog.New(newSyslogHandler(w, slog.LevelInfo)).With("rsc", "r1")
	log.Debug("hidden")
	log.Info("hello", "k", "two words")
	log.Warn("careful")
	log.WithGroup("g").Error("failed", "n", 3)
	want := []string{
		`info msg=hello rsc=r1 k="two words"`,
		`warning msg=careful rsc=r1`,
		`err msg=failed rsc=r1 g.n=3`,
	}
	if strings.Join(w.lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("syslog got:\n%s\nwant:\n%s", strings.Join(w.lines, "\n"), strings.Join(want, "\n"))
	}

	w = &fakeSyslog{}
	slog.New(newSyslogHandler(w, slog.LevelDebug)).Debug("shown")
	if len(w.lines) != 1 || w.lines[0] != "debug msg=shown" {
		t.Errorf("debug level: %q", w.lines)
	}
}

func TestLogDestinations(t *testing.T) {
	attrs := []any{"rsc", "r1"}
	tests := []struct {
		name       string
		env        map[string]string
		dialErr    error
		wantStderr string
		wantSyslog string
		wantTag    string
	}{
		{
			name:       "no facility: stderr only",
			env:        map[string]string{},
			wantStderr: "level=INFO msg=info rsc=r1|level=WARN msg=warn rsc=r1|level=ERROR msg=error rsc=r1",
		},
		{
			name:       "debug",
			env:        map[string]string{"HA_debug": "1"},
			wantStderr: "level=DEBUG msg=debug rsc=r1|level=INFO msg=info rsc=r1|level=WARN msg=warn rsc=r1|level=ERROR msg=error rsc=r1",
		},
		{
			name:       "syslog: stderr keeps warnings and errors",
			env:        map[string]string{"HA_logfacility": "daemon"},
			wantStderr: "level=WARN msg=warn rsc=r1|level=ERROR msg=error rsc=r1",
			wantSyslog: "info msg=info rsc=r1|warning msg=warn rsc=r1|err msg=error rsc=r1",
			wantTag:    "Test(r1)",
		},
		{
			name:       "syslog with debug",
			env:        map[string]string{"HA_LOGFACILITY": "local0", "HA_debug": "yes"},
			wantStderr: "level=WARN msg=warn rsc=r1|level=ERROR msg=error rsc=r1",
			wantSyslog: "debug msg=debug rsc=r1|info msg=info rsc=r1|warning msg=warn rsc=r1|err msg=error rsc=r1",
			wantTag:    "Test(r1)",
		},
		{
			name:       "syslog unreachable",
			env:        map[string]string{"HA_LOGFACILITY": "daemon"},
			dialErr:    errors.New("no /dev/log"),
			wantStderr: "level=INFO msg=info rsc=r1|level=WARN msg=warn rsc=r1|level=ERROR msg=error rsc=r1",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr strings.Builder
			fake := &fakeSyslog{}
			var tag string
			dial := func(_ syslog.Priority, tg string) (syslogWriter, error) {
				tag = tg
				if tt.dialErr != nil {
					return nil, tt.dialErr
				}
				return fake, nil
			}
			l := newLogs(&stderr, tt.env, dial, "Test(r1)", attrs)
			l.all.Debug("debug")
			l.all.Info("info")
			l.all.Warn("warn")
			l.all.Error("error")
			l.close()
			got := strings.ReplaceAll(strings.TrimSuffix(stderr.String(), "\n"), "\n", "|")
			if got != tt.wantStderr {
				t.Errorf("stderr:\n%s\nwant:\n%s", got, tt.wantStderr)
			}
			if got := strings.Join(fake.lines, "|"); got != tt.wantSyslog {
				t.Errorf("syslog:\n%s\nwant:\n%s", got, tt.wantSyslog)
			}
			if tt.wantTag != "" && tag != tt.wantTag {
				t.Errorf("syslog tag %q, want %q", tag, tt.wantTag)
			}
			if (l.sys != nil) != (tt.wantSyslog != "") {
				t.Errorf("exit reasons to syslog: %v", l.sys != nil)
			}
		})
	}
}

func TestDaemonLoggerWithSyslog(t *testing.T) {
	sys := &fakeSyslog{}
	var tag string
	dial := func(_ syslog.Priority, t string) (syslogWriter, error) { tag = t; return sys, nil }
	var b strings.Builder
	log, closeLog := daemonLogger(&b, map[string]string{"HA_LOGFACILITY": "daemon"}, dial, "X(r)", false, []any{"rsc", "r"})
	log.Debug("hidden")
	log.Info("routine")
	log.Warn("careful")
	closeLog()
	if tag != "X(r)" || strings.Join(sys.lines, "|") != "info msg=routine rsc=r|warning msg=careful rsc=r" {
		t.Errorf("syslog %q as %q", sys.lines, tag)
	}
	if got := b.String(); strings.Contains(got, "routine") || !strings.Contains(got, "level=WARN msg=careful rsc=r") || !strings.HasPrefix(got, "time=") {
		t.Errorf("file %q: want only the warning, with its time", got)
	}
}
