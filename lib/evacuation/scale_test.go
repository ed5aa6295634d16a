package evacuation_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/novaha/novaha/lib/clock/clocktest"
	"github.com/novaha/novaha/lib/evacuation"
	"github.com/novaha/novaha/lib/evacuation/fakenova"
)

// The scale of the target: 1,000 compute hosts, 20,000 instances.
const (
	scaleHosts     = 1000
	scaleInstances = 20000
)

// bigCloud builds the fake cloud and fences the first fenced hosts.
func bigCloud(fenced int) (*clocktest.Fake, *fakenova.Nova) {
	clk := clocktest.New(t0)
	f := fakenova.New(clk)
	per := scaleInstances / scaleHosts
	for h := range scaleHosts {
		name := fmt.Sprintf("cmp%04d", h)
		f.AddHost(name, 96, 512*1024)
		for i := range per {
			st := "ACTIVE"
			if i%7 == 0 {
				st = "SHUTOFF"
			}
			f.AddServer(fakenova.ServerSpec{ID: fmt.Sprintf("%s-%02d", name, i), Host: name, Status: st,
				Metadata: map[string]string{"owner": "someone", evacuation.DefaultPriorityKey: fmt.Sprint(i % 3)},
				VCPUs:    2, RAMMB: 4096})
		}
	}
	for h := range fenced {
		name := fmt.Sprintf("cmp%04d", h)
		f.Crash(name)
		f.Fence(name, clk.Now())
	}
	return clk, f
}

func quietConfig(f *fakenova.Nova, clk *clocktest.Fake) evacuation.Config {
	return evacuation.Config{Nova: f, Clock: clk, Log: slog.New(slog.DiscardHandler), MaxInFlight: 64}
}

// TestScale evacuates 20 and then 100 fenced hosts of the big cloud to the end and
// reports the API calls per evacuated instance (target: at most 3), the controller's
// CPU per round, and the heap. Only the call count is checked: CPU and memory are
// measurements (the benchmarks below), not assertions.
func TestScale(t *testing.T) {
	if testing.Short() {
		t.Skip("scale test")
	}
	for _, fenced := range []int{20, 100} {
		t.Run(fmt.Sprintf("%d fenced", fenced), func(t *testing.T) {
			clk, f := bigCloud(fenced)
			heap0 := heapInUse()
			ctl, err := evacuation.New(quietConfig(f, clk))
			if err != nil {
				t.Fatal(err)
			}
			var cpu time.Duration
			var rounds, worst int
			var worstRound time.Duration
			for ; rounds < 2000; rounds++ {
				u0 := cpuTime()
				st := ctl.Round(context.Background())
				d := cpuTime() - u0
				cpu += d
				if d > worstRound {
					worstRound, worst = d, rounds
				}
				if !st.NovaOK || st.Guard {
					t.Fatalf("status %+v", st)
				}
				if len(st.Hosts) > 0 && allEvacuated(st) {
					break
				}
				clk.Sleep(context.Background(), time.Second)
			}
			moved := 0
			for h := range fenced {
				m := f.Migrations(fmt.Sprintf("cmp%04d", h))
				moved += len(m)
			}
			calls := f.Calls()
			total := 0
			for _, n := range calls {
				total += n
			}
			heap1 := heapInUse()
			runtime.KeepAlive(f)
			runtime.KeepAlive(ctl)
			perInst := float64(total) / float64(moved)
			t.Logf("%d hosts, %d instances, %d fenced: %d instances evacuated in %d rounds (%v simulated); "+
				"%d API calls, %.2f per instance %v; CPU per round: mean %v, worst %v (round %d) [controller and fake Nova]; "+
				"heap in use %d MB with the fake Nova, of which %+d kB since the controller started; RSS %s",
				scaleHosts, scaleInstances, fenced, moved, rounds+1, clk.Now().Sub(t0), total, perInst, calls,
				cpu/time.Duration(rounds+1), worstRound, worst, heap1>>20, (int64(heap1)-int64(heap0))>>10, rss())
			if moved != fenced*scaleInstances/scaleHosts {
				t.Errorf("%d evacuated, want %d", moved, fenced*scaleInstances/scaleHosts)
			}
			if perInst > 3 {
				t.Errorf("%.2f API calls per evacuated instance, want at most 3", perInst)
			}
		})
	}
}

func allEvacuated(st evacuation.Status) bool {
	for _, h := range st.Hosts {
		if h.Phase != "evacuated" {
			return false
		}
	}
	return true
}

// BenchmarkRound is one reconcile round of the big cloud with 20 hosts fenced and
// their evacuation under way: every destination busy, every fenced host read.
func BenchmarkRound(b *testing.B) {
	clk, f := bigCloud(20)
	f.RebuildTime = 24 * time.Hour // keep the evacuations in flight
	ctl, err := evacuation.New(quietConfig(f, clk))
	if err != nil {
		b.Fatal(err)
	}
	for range 3 {
		ctl.Round(context.Background())
		clk.Sleep(context.Background(), time.Second)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		ctl.Round(context.Background())
	}
	b.StopTimer()
	reportMemory(b, f, ctl)
}

// BenchmarkFirstRound is the busiest round: 100 hosts just fenced, 2,000 instances
// read and the first 64 evacuations requested.
func BenchmarkFirstRound(b *testing.B) {
	b.ReportAllocs()
	var keep []any
	for b.Loop() {
		b.StopTimer()
		clk, f := bigCloud(100)
		keep = []any{f}
		ctl, err := evacuation.New(quietConfig(f, clk))
		if err != nil {
			b.Fatal(err)
		}
		keep = append(keep, ctl)
		b.StartTimer()
		ctl.Round(context.Background())
	}
	b.StopTimer()
	reportMemory(b, keep...)
}

func reportMemory(b *testing.B, keep ...any) {
	b.ReportMetric(float64(heapInUse())/(1<<20), "heap-MB")
	runtime.KeepAlive(keep)
}

func heapInUse() uint64 {
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}

// cpuTime is the process's user and system CPU time.
func cpuTime() time.Duration {
	var ru rusage
	if getrusage(&ru) != nil {
		return 0
	}
	return ru.total()
}

// rss is the process's resident memory, from /proc.
func rss() string {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return "unknown"
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			return strings.TrimSpace(v)
		}
	}
	return "unknown"
}
