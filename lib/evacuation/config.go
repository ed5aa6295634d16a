package evacuation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/novaha/novaha/lib/clock"
)

// Selection is the rule that picks the evacuable instances of a fenced host.
type Selection string

// Selection rules.
const (
	// SelectAll evacuates every instance.
	SelectAll Selection = "all"
	// SelectTagged is fence_evacuate's rule: the instances whose flavor has the extra
	// spec evacuable=true or whose image has the property evacuable=true or the tag
	// evacuable; when no instance of the host is tagged so, all of them. (fence_evacuate
	// looks at every flavor and image of the cloud; the controller sees those of the
	// host's instances: see selectInstances.)
	SelectTagged Selection = "tagged"
	// SelectHAEnabled is Masakari's rule: the instances whose metadata has
	// HA_Enabled=True.
	SelectHAEnabled Selection = "ha_enabled"
)

// Defaults of Config.
const (
	DefaultInterval         = time.Second
	DefaultCallTimeout      = 30 * time.Second
	DefaultPerDestination   = 4
	DefaultMaxInFlight      = 16
	DefaultMaxFencedPercent = 50
	DefaultMaxAttempts      = 3
	DefaultRetryTimeout     = 10 * time.Minute
	DefaultPriorityKey      = "novaha:priority"
	DefaultRetryBase        = 2 * time.Second
	DefaultRetryMax         = time.Minute
)

// StockEvacuate is the Pacemaker node attribute "evacuate" that the stock
// fence_compute sets to yes on the hosts it fences, and that the stock NovaEvacuate
// sets to no once their evacuation is finished (see AttrdStock for the
// attrd_updater implementation).
type StockEvacuate interface {
	// Requested lists the hosts whose attribute is yes.
	Requested(ctx context.Context) ([]string, error)
	// Done sets the host's attribute to no.
	Done(ctx context.Context, host string) error
}

// Config is the controller's configuration. The zero value of every optional field
// means its default.
type Config struct {
	// Nova is the cloud; required.
	Nova Nova
	// Stock, when set, adds the hosts that a stock fence_compute fenced (forced down,
	// attribute evacuate=yes, no novaha marker) and clears the attribute once a host
	// is evacuated.
	Stock StockEvacuate
	// Clock is the time; nil means the wall clock.
	Clock clock.Clock
	// Log receives one record per decision; nil discards them.
	Log *slog.Logger
	// StatusFile, when set, is replaced after every round with the Status as JSON.
	StatusFile string
	// PID is written in the status; 0 means none.
	PID int

	// Interval is the pause between two rounds (DefaultInterval). Each round lists the
	// services once, and each fenced host's instances and migrations once.
	Interval time.Duration
	// CallTimeout bounds every call to Nova (DefaultCallTimeout).
	CallTimeout time.Duration

	// Select is the selection rule (SelectAll when empty).
	Select Selection
	// IncludeError evacuates the instances in ERROR too; by default they are left
	// where they are and not counted.
	IncludeError bool
	// Stopped leaves the evacuated instances stopped on their new host (Nova
	// microversion 2.95 or later). By default the controller evacuates at a
	// microversion up to 2.94, where Nova restores each instance's state: an ACTIVE one
	// comes back running, a SHUTOFF one is rebuilt and kept off.
	Stopped bool
	// PriorityKey is the server metadata key of an instance's priority, an integer
	// (DefaultPriorityKey; instances without it have priority 0). Higher goes first:
	// no instance starts rebuilding while one of a higher priority is not finished.
	PriorityKey string
	// TargetHosts, when set, are the only destinations (reserved hosts): they must be
	// enabled and up to be used. By default every healthy compute host is one.
	TargetHosts []string
	// Delay is how long after the fence (its marker's time; for a host fenced without
	// a marker, from when this process first sees it) a host's evacuation starts:
	// evacuate_delay of the stock NovaEvacuate.
	Delay time.Duration

	// PerDestination is how many evacuations one destination host is given at once
	// (DefaultPerDestination). A compute host rebuilds its evacuated instances one
	// after another; a few queued hide the time a new request takes to reach it (two
	// left the sandbox's hosts idle a third of the time: 141 s for 100 instances over
	// two hosts, against 57 s with four and 87 s for all at once).
	PerDestination int
	// MaxInFlight bounds the evacuations in flight over the whole cloud
	// (DefaultMaxInFlight).
	MaxInFlight int
	// MaxFencedPercent is the mass-failure guard: when more than this share of the
	// compute hosts is fenced at once, nothing is evacuated (DefaultMaxFencedPercent).
	// 100 disables the guard.
	MaxFencedPercent int
	// MaxAttempts is how many evacuations of one instance may fail (Nova's migration
	// records say so) before it is recorded as failed (DefaultMaxAttempts).
	MaxAttempts int
	// RetryTimeout is how long an instance whose evacuate request keeps failing
	// transiently (409 task_state conflicts, server errors, no answer), or that stays
	// busy with another task, is retried before it is recorded as failed
	// (DefaultRetryTimeout). It keeps one instance from holding its host back forever.
	// An evacuation Nova accepted that makes no progress for as long is reported
	// stuck, but keeps holding its host back (see Status's Stuck).
	RetryTimeout time.Duration
	// RetryBase and RetryMax: the pause before retrying one instance starts at
	// RetryBase and doubles up to RetryMax (DefaultRetryBase, DefaultRetryMax).
	RetryBase, RetryMax time.Duration
}

// withDefaults returns c with the defaults filled in.
func (c Config) withDefaults() Config {
	if c.Clock == nil {
		c.Clock = clock.Real{}
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	if c.Select == "" {
		c.Select = SelectAll
	}
	def := func(v *time.Duration, d time.Duration) {
		if *v == 0 {
			*v = d
		}
	}
	defInt := func(v *int, d int) {
		if *v == 0 {
			*v = d
		}
	}
	def(&c.Interval, DefaultInterval)
	def(&c.CallTimeout, DefaultCallTimeout)
	def(&c.RetryTimeout, DefaultRetryTimeout)
	def(&c.RetryBase, DefaultRetryBase)
	def(&c.RetryMax, DefaultRetryMax)
	defInt(&c.PerDestination, DefaultPerDestination)
	defInt(&c.MaxInFlight, DefaultMaxInFlight)
	defInt(&c.MaxFencedPercent, DefaultMaxFencedPercent)
	defInt(&c.MaxAttempts, DefaultMaxAttempts)
	if c.PriorityKey == "" {
		c.PriorityKey = DefaultPriorityKey
	}
	return c
}

// Validate checks the configuration, defaults applied, and says what is wrong with
// every bad value.
func (c Config) Validate() error {
	c = c.withDefaults()
	var errs []error
	bad := func(format string, a ...any) { errs = append(errs, fmt.Errorf(format, a...)) }
	if c.Nova == nil {
		bad("no Nova client")
	}
	switch c.Select {
	case SelectAll, SelectTagged, SelectHAEnabled:
	default:
		bad("selection rule %q is none of %s, %s, %s", c.Select, SelectAll, SelectTagged, SelectHAEnabled)
	}
	positive := func(name string, d time.Duration) {
		if d < 0 {
			bad("%s %v is negative", name, d)
		}
	}
	positive("interval", c.Interval)
	positive("call timeout", c.CallTimeout)
	positive("retry timeout", c.RetryTimeout)
	positive("retry base", c.RetryBase)
	positive("retry max", c.RetryMax)
	positive("delay", c.Delay)
	if c.RetryMax < c.RetryBase {
		bad("retry max %v is shorter than retry base %v", c.RetryMax, c.RetryBase)
	}
	if c.PerDestination < 1 {
		bad("per-destination parallelism %d is below 1", c.PerDestination)
	}
	if c.MaxInFlight < 1 {
		bad("maximum evacuations in flight %d is below 1", c.MaxInFlight)
	}
	if c.MaxFencedPercent < 1 || c.MaxFencedPercent > 100 {
		bad("max_fenced_percent %d is not between 1 and 100", c.MaxFencedPercent)
	}
	if c.MaxAttempts < 1 {
		bad("maximum attempts %d is below 1", c.MaxAttempts)
	}
	if strings.TrimSpace(c.PriorityKey) == "" {
		bad("the priority metadata key is blank")
	}
	for _, h := range c.TargetHosts {
		if strings.TrimSpace(h) == "" {
			bad("a target host name is empty")
		}
	}
	return errors.Join(errs...)
}
