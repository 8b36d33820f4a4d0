/*
Copyright 2026 The plugin-operator Authors.

Licensed under the Apache License, Version 2.0 (the "License");
you may not use this file except in compliance with the License.
You may obtain a copy of the License at

    http://www.apache.org/licenses/LICENSE-2.0

Unless required by applicable law or agreed to in writing, software
distributed under the License is distributed on an "AS IS" BASIS,
WITHOUT WARRANTIES OR CONDITIONS OF ANY KIND, either express or implied.
See the License for the specific language governing permissions and
limitations under the License.
*/

package loadtest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
	"golang.org/x/sys/unix"

	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/projection"
)

// ack is one acknowledged increment: the value sent and the counter value returned.
type ack struct {
	sent, got int64
	at        time.Time
}

// acks collects the 200 answers of increments on one plugin.
type acks struct {
	mu   sync.Mutex
	list []ack
	bad  []string // unparseable 200 answers
}

func (a *acks) add(r *vegeta.Result) {
	u, err := url.Parse(r.URL)
	if err != nil {
		return
	}
	sent, _ := strconv.ParseInt(u.Query().Get("v"), 10, 64)
	got, err := parseValue(r.Body)
	a.mu.Lock()
	defer a.mu.Unlock()
	if err != nil {
		a.bad = append(a.bad, err.Error())
		return
	}
	a.list = append(a.list, ack{sent: sent, got: got, at: r.End()})
}

// steps reconstructs, from the acknowledged answers alone, the increment in force for
// each request. The counter changes atomically and only through these requests, so the
// answers sorted by value form a chain from start: each difference is exactly what one
// request added, value × the increment it was served with. It returns the steps found
// (step → requests), the sum of value × step, and the links that do not decompose into a
// value sent × an allowed step (duplicates, gaps from unacknowledged increments, or a
// step nobody configured).
func (a *acks) steps(start int64, allowed map[int64]bool) (map[int64]int, int64, []string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	l := append([]ack(nil), a.list...)
	sort.Slice(l, func(i, j int) bool { return l[i].got < l[j].got })
	seen := map[int64]int{}
	var sum int64
	var bad []string
	prev := start
	for _, k := range l {
		d := k.got - prev
		prev = k.got
		if k.sent == 0 || d%k.sent != 0 || !allowed[d/k.sent] {
			if len(bad) < 10 {
				bad = append(bad, fmt.Sprintf("value %d answered %d: +%d is not %d × an allowed increment", k.sent, k.got, d, k.sent))
			} else if len(bad) == 10 {
				bad = append(bad, "…")
			}
			continue
		}
		seen[d/k.sent]++
		sum += k.sent * (d / k.sent)
	}
	return seen, sum, bad
}

func (a *acks) max() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	var m int64
	for _, k := range a.list {
		m = max(m, k.got)
	}
	return m
}

func (a *acks) since(t time.Time) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, k := range a.list {
		if !k.at.Before(t) {
			n++
		}
	}
	return n
}

func (a *acks) len() int { a.mu.Lock(); defer a.mu.Unlock(); return len(a.list) }

// ReloadOptions configures ReloadUnderLoad.
type ReloadOptions struct {
	Binary  string
	Reloads int           // config changes written (default 100)
	Every   time.Duration // between changes (default 100 ms)
	Poll    time.Duration // --poll-interval (default 100 ms)
	Workers int           // closed-loop clients (default 4)
}

// ReloadResult is what ReloadUnderLoad measured.
type ReloadResult struct {
	Writes, ValidWrites, InvalidWrites, Toggles int
	Applied, Refused                            int // the host's own counts (/status)
	Stable                                      Summary
	Other                                       Summary // counter-2, added and removed
	Acked                                       int
	Final, Expected                             int64
	StepsSeen                                   map[int64]int
	Mismatches                                  []string
	ServedInvalid                               bool            // an increment only an invalid config had was served
	FinalRevision                               bool            // the host ended on the last content written
	ReloadLatencies                             []time.Duration // swap → applied or refused, per change seen
	Restarted                                   bool
	Duration                                    time.Duration
}

// invalidStep appears only in configs that are invalid for another reason: an answer
// carrying it would prove an invalid config was served.
const invalidStep = 7

// ReloadUnderLoad runs the binary on a kubelet-style projected config and, while
// closed-loop clients increment counter-1 (values 1..3) and get it, and increment
// counter-2, writes Reloads changes every Every cycling through: a new increment for
// counter-1 (a power of ten), a truncated file, adding or removing counter-2, an invalid
// value (increment 7 with max_idle_connections over max_connections), a non-integer
// increment, an empty file. The last write is a valid one.
func ReloadUnderLoad(o ReloadOptions) (*ReloadResult, error) {
	if o.Reloads == 0 {
		o.Reloads = 100
	}
	if o.Every == 0 {
		o.Every = 100 * time.Millisecond
	}
	if o.Poll == 0 {
		o.Poll = 100 * time.Millisecond
	}
	if o.Workers == 0 {
		o.Workers = 4
	}
	dir, err := TempDir()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	w := projection.NewWriter(filepath.Join(dir, "cfg"))
	var swapMu sync.Mutex
	var swapped time.Time
	w.SetHook(func(s string) {
		if s == projection.StepDataSwapped {
			swapMu.Lock()
			swapped = time.Now()
			swapMu.Unlock()
		}
	})
	step, withC2 := int64(1), false
	cfg := func() []byte {
		ps := []Plugin{{Name: "counter-1", Increment: strconv.FormatInt(step, 10)}}
		if withC2 {
			ps = append(ps, Plugin{Name: "counter-2", Increment: "2"})
		}
		return Config(ps...)
	}
	if _, err := w.WriteRaw("config.json", cfg()); err != nil {
		return nil, err
	}
	audit := filepath.Join(dir, "audit.jsonl")
	p, err := Start(o.Binary, dir, "--config="+filepath.Join(dir, "cfg", "config.json"), "--poll-interval="+o.Poll.String(), "--audit-log="+audit)
	if err != nil {
		return nil, err
	}
	defer p.Kill()
	pid := p.Cmd.Process.Pid
	res := &ReloadResult{}
	allowed := map[int64]bool{1: true}
	var ok1 acks
	var mu sync.Mutex
	base := "http://" + p.Addr
	began := time.Now()
	atk := Begin(Load{Workers: o.Workers, Target: func(i uint64, t *vegeta.Target) {
		switch i % 8 {
		case 6:
			Get(t, base, "counter-1")
		case 7:
			Increment(t, base, "counter-2", 1)
		default:
			Increment(t, base, "counter-1", int64(i%3)+1)
		}
	}}, func(r *vegeta.Result) {
		if strings.Contains(r.URL, "/counter-2/") {
			mu.Lock()
			res.Other.Add(r)
			mu.Unlock()
			return
		}
		mu.Lock()
		res.Stable.Add(r)
		mu.Unlock()
		if r.Code == 200 && strings.HasSuffix(strings.SplitN(r.URL, "?", 2)[0], "/increment") {
			ok1.add(r)
		}
	})
	type write struct {
		rev string
		at  time.Time // kubelet's ..data swap
	}
	var written []write
	pow := int64(1)
	for i := range o.Reloads {
		time.Sleep(o.Every)
		var b []byte
		valid := true
		kind := i % 6
		if i == o.Reloads-1 {
			kind = 0
		}
		switch kind {
		case 0:
			pow *= 10
			if pow > 100000 {
				pow = 10
			}
			step = pow
			allowed[step] = true
			b = cfg()
		case 1:
			full := cfg()
			b, valid = full[:len(full)/2], false
		case 2:
			withC2 = !withC2
			b = cfg()
			res.Toggles++
		case 3:
			b, valid = Config(Plugin{Name: "counter-1", Increment: strconv.Itoa(invalidStep), MaxIdle: 2000}), false
		case 4:
			b, valid = Config(Plugin{Name: "counter-1", Increment: "5.5"}), false
		case 5:
			b, valid = nil, false
		}
		if _, err := w.WriteRaw("config.json", b); err != nil {
			atk.Stop()
			return nil, err
		}
		res.Writes++
		swapMu.Lock()
		written = append(written, write{pluginconfig.Revision(b), swapped})
		swapMu.Unlock()
		if valid {
			res.ValidWrites++
		} else {
			res.InvalidWrites++
		}
	}
	final := pluginconfig.Revision(cfg())
	// The load keeps running until the host serves the last write.
	res.FinalRevision = Eventually(30*time.Second, func() bool {
		st, err := p.Status()
		return err == nil && st.Revision == final
	})
	atk.Stop()
	res.Duration = time.Since(began)
	res.Restarted = p.Exited() || p.Cmd.Process.Pid != pid
	st, err := p.Status()
	if err != nil {
		return nil, err
	}
	res.Applied, res.Refused = int(st.Reloads.Applied), int(st.Reloads.Refused)
	if res.Final, err = p.Value("counter-1"); err != nil {
		return nil, err
	}
	res.Acked = ok1.len()
	res.StepsSeen, res.Expected, res.Mismatches = ok1.steps(0, allowed)
	res.Mismatches = append(res.Mismatches, ok1.bad...)
	res.ServedInvalid = res.StepsSeen[invalidStep] > 0
	if err := p.Stop(syscall.SIGTERM); err != nil {
		return nil, fmt.Errorf("exit after SIGTERM: %v", err)
	}
	// Reload latency: from kubelet's ..data swap to the audit record of the change
	// (applied or refused), matching records to writes in order.
	f, err := os.Open(audit)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	next := 0
	for sc.Scan() {
		var rec struct {
			Time             time.Time
			Result, Revision string
		}
		if json.Unmarshal(sc.Bytes(), &rec) != nil {
			continue
		}
		for k := next; k < len(written); k++ {
			if written[k].rev == rec.Revision {
				if d := rec.Time.Sub(written[k].at); d >= 0 {
					res.ReloadLatencies = append(res.ReloadLatencies, d)
					next = k + 1
				}
				break
			}
		}
	}
	return res, nil
}

// CrashOptions configures Crash.
type CrashOptions struct {
	Binary           string
	Signal           syscall.Signal
	SnapshotInterval time.Duration // default 1 s
	Workers          int           // default 4
	Rate             int           // requests/s; 0: closed loop
	Before           time.Duration // load before the signal (default 3 s)
}

// CrashResult is what Crash measured.
type CrashResult struct {
	Requests, Acked int
	AckedMax        int64 // the highest value answered: every increment up to it was applied
	// AckedInWindow counts increments acknowledged in the last snapshot interval before
	// the signal: the documented loss bound for SIGKILL.
	AckedInWindow int
	Restored      int64
	Loss          int64 // AckedMax - Restored (negative: applied but unanswered increments were saved)
	ExitErr       string
	Mismatches    []string
}

// Crash loads counter-1 (increment 1, value 1) on a host with a state dir, sends sig
// under load, restarts the binary on the same state dir and compares the restored value
// with what was acknowledged.
func Crash(o CrashOptions) (*CrashResult, error) {
	if o.SnapshotInterval == 0 {
		o.SnapshotInterval = time.Second
	}
	if o.Workers == 0 {
		o.Workers = 4
	}
	if o.Before == 0 {
		o.Before = 3 * time.Second
	}
	dir, err := TempDir()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), Config(Plugin{Name: "counter-1", Increment: "1"}), 0o644); err != nil {
		return nil, err
	}
	args := []string{"--state-dir=state", "--snapshot-interval=" + o.SnapshotInterval.String()}
	p, err := Start(o.Binary, dir, args...)
	if err != nil {
		return nil, err
	}
	defer p.Kill()
	base := "http://" + p.Addr
	var ok acks
	var sum Summary
	atk := Begin(Load{Workers: o.Workers, Rate: o.Rate, Target: func(_ uint64, t *vegeta.Target) {
		Increment(t, base, "counter-1", 1)
	}}, func(r *vegeta.Result) {
		sum.Add(r)
		if r.Code == 200 {
			ok.add(r)
		}
	})
	time.Sleep(o.Before)
	killed := time.Now()
	exitErr := p.Stop(o.Signal)
	atk.Stop()
	res := &CrashResult{Requests: sum.Requests, Acked: ok.len(), AckedMax: ok.max(), AckedInWindow: ok.since(killed.Add(-o.SnapshotInterval))}
	if exitErr != nil {
		res.ExitErr = exitErr.Error()
	}
	_, _, res.Mismatches = ok.steps(0, map[int64]bool{1: true})
	p2, err := Start(o.Binary, dir, args...)
	if err != nil {
		return nil, err
	}
	defer p2.Kill()
	if res.Restored, err = p2.Value("counter-1"); err != nil {
		return nil, err
	}
	res.Loss = res.AckedMax - res.Restored
	return res, p2.Stop(syscall.SIGTERM)
}

// StateDirResult is what UnwritableStateDir measured.
type StateDirResult struct {
	Load                 Summary
	StatusError, LogLine string // the error in /status and the log line, while unwritable
	Recovered            bool   // state.lastError cleared once the dir came back
	AckedMax, Restored   int64  // after SIGTERM and a restart
}

// ErrNoTmpfs is returned by UnwritableStateDir(…, full=true) when the process may not mount
// a tmpfs (it lacks CAP_SYS_ADMIN: mount(2) answers EPERM). Any other mount error is a real
// failure and is returned as is.
var ErrNoTmpfs = errors.New("cannot mount a tmpfs: needs CAP_SYS_ADMIN (run as root)")

// UnwritableStateDir loads a host whose state dir becomes unusable mid-run, then usable
// again. full=false: the dir is replaced by a file (fails for root too, unlike
// permissions). full=true: the dir is a 256 KiB tmpfs that gets filled up (ENOSPC), then
// freed; it needs root (ErrNoTmpfs otherwise).
func UnwritableStateDir(bin string, workers int, full bool) (*StateDirResult, error) {
	dir, err := TempDir()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "config.json"), Config(Plugin{Name: "counter-1", Increment: "1"}), 0o644); err != nil {
		return nil, err
	}
	state := filepath.Join(dir, "state")
	filler := filepath.Join(state, "filler")
	if full {
		if err := os.Mkdir(state, 0o700); err != nil {
			return nil, err
		}
		if err := syscall.Mount("tmpfs", state, "tmpfs", 0, "size=256k"); errors.Is(err, syscall.EPERM) {
			return nil, fmt.Errorf("%w: %v", ErrNoTmpfs, err)
		} else if err != nil {
			return nil, fmt.Errorf("mounting a tmpfs on %s: %w", state, err)
		}
		defer func() { _ = syscall.Unmount(state, syscall.MNT_DETACH) }()
	}
	args := []string{"--state-dir=state", "--snapshot-interval=50ms"}
	p, err := Start(bin, dir, args...)
	if err != nil {
		return nil, err
	}
	defer p.Kill()
	base := "http://" + p.Addr
	res := &StateDirResult{}
	var ok acks
	atk := Begin(Load{Workers: workers, Target: func(_ uint64, t *vegeta.Target) { Increment(t, base, "counter-1", 1) }},
		func(r *vegeta.Result) {
			res.Load.Add(r)
			if r.Code == 200 {
				ok.add(r)
			}
		})
	stop := func(err error) (*StateDirResult, error) { atk.Stop(); return nil, err }
	time.Sleep(300 * time.Millisecond)
	if full {
		if err := fill(filler); err != nil {
			return stop(err)
		}
	} else {
		// Swap the directory and a file in one step (renameat2 RENAME_EXCHANGE): a rename
		// away and a write would leave a moment with no state path at all, and a snapshot
		// landing there fails with ENOENT instead of the ENOTDIR this scenario is about.
		if err := os.WriteFile(state+".away", []byte("not a directory"), 0o600); err != nil {
			return stop(err)
		}
		if err := exchange(state, state+".away"); err != nil {
			return stop(err)
		}
	}
	topUps := 0
	if !Eventually(15*time.Second, func() bool {
		if full {
			// The host frees a page at every snapshot's rename; if the filler ran while a
			// snapshot held two pages, the host could keep finding one free. Take any freed
			// page again until the host's write fails.
			topUps++
			_ = fill(fmt.Sprintf("%s-%d", filler, topUps))
		}
		st, err := p.Status()
		if err == nil && st.State != nil && st.State.LastError != "" {
			res.StatusError = st.State.LastError
		}
		return res.StatusError != ""
	}) {
		return stop(errors.New("no state error in /status within 15s"))
	}
	for _, l := range strings.Split(p.Logs(), "\n") {
		if strings.Contains(l, "Saving plugin state failed") {
			res.LogLine = l
			break
		}
	}
	time.Sleep(300 * time.Millisecond) // serving continues while unwritable
	if full {
		fillers, _ := filepath.Glob(filler + "*")
		for _, f := range fillers {
			if err := os.Remove(f); err != nil {
				return stop(err)
			}
		}
	} else {
		if err := exchange(state, state+".away"); err != nil {
			return stop(err)
		}
		if err := os.Remove(state + ".away"); err != nil {
			return stop(err)
		}
	}
	res.Recovered = Eventually(15*time.Second, func() bool {
		st, err := p.Status()
		return err == nil && st.State != nil && st.State.LastError == ""
	})
	atk.Stop()
	res.AckedMax = ok.max()
	if err := p.Stop(syscall.SIGTERM); err != nil {
		return nil, fmt.Errorf("exit after SIGTERM: %v", err)
	}
	p2, err := Start(bin, dir, args...)
	if err != nil {
		return nil, err
	}
	defer p2.Kill()
	if res.Restored, err = p2.Value("counter-1"); err != nil {
		return nil, err
	}
	return res, p2.Stop(syscall.SIGTERM)
}

// fill writes path until the file system is full.
func fill(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := f.Write(buf); err != nil {
			if errors.Is(err, syscall.ENOSPC) {
				return nil
			}
			return err
		}
	}
}

// FlapResult is what Flapping measured.
type FlapResult struct {
	Writes, ValidWrites int
	Applied, Refused    int
	Load                Summary
	StepsSeen           map[int64]int
	Mismatches          []string
	ServedInvalid       bool
	FinalRevision       bool // the host serves the final content
	FinalStep           int64
	Exited              bool
}

// Flapping rewrites the config file in place every `every` for `d`, alternating valid
// (increment 1 or 10) and invalid (truncated, or increment 7 with an invalid field)
// content, under load (rate requests/s; 0: closed loop); then writes a final valid config
// (increment 1000).
func Flapping(bin string, every, d time.Duration, workers, rate int) (*FlapResult, error) {
	dir, err := TempDir()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "config.json")
	if err := os.WriteFile(path, Config(Plugin{Name: "counter-1", Increment: "1"}), 0o644); err != nil {
		return nil, err
	}
	p, err := Start(bin, dir, "--poll-interval=10ms")
	if err != nil {
		return nil, err
	}
	defer p.Kill()
	pid := p.Cmd.Process.Pid
	base := "http://" + p.Addr
	res := &FlapResult{}
	var ok acks
	var mu sync.Mutex
	atk := Begin(Load{Workers: workers, Rate: rate, Target: func(i uint64, t *vegeta.Target) {
		Increment(t, base, "counter-1", int64(i%3)+1)
	}}, func(r *vegeta.Result) {
		mu.Lock()
		res.Load.Add(r)
		mu.Unlock()
		if r.Code == 200 {
			ok.add(r)
		}
	})
	variants := [][]byte{
		Config(Plugin{Name: "counter-1", Increment: "10"}),
		Config(Plugin{Name: "counter-1", Increment: strconv.Itoa(invalidStep), MaxIdle: 2000}),
		Config(Plugin{Name: "counter-1", Increment: "1"}),
		Config(Plugin{Name: "counter-1", Increment: "10"})[:50],
	}
	for end, i := time.Now().Add(d), 0; time.Now().Before(end); i++ {
		if err := os.WriteFile(path, variants[i%len(variants)], 0o644); err != nil {
			atk.Stop()
			return nil, err
		}
		res.Writes++
		if i%2 == 0 {
			res.ValidWrites++
		}
		time.Sleep(every)
	}
	atk.Stop()
	final := Config(Plugin{Name: "counter-1", Increment: "1000"})
	if err := os.WriteFile(path, final, 0o644); err != nil {
		return nil, err
	}
	res.Writes++
	res.ValidWrites++
	res.FinalRevision = Eventually(30*time.Second, func() bool {
		st, err := p.Status()
		return err == nil && st.Revision == pluginconfig.Revision(final)
	})
	before, err := p.Value("counter-1")
	if err != nil {
		return nil, err
	}
	r := Run(Load{Workers: 1, Rate: 10, Duration: 100 * time.Millisecond, Target: func(_ uint64, t *vegeta.Target) { Increment(t, base, "counter-1", 1) }})
	after, err := p.Value("counter-1")
	if err != nil {
		return nil, err
	}
	if r.OK > 0 {
		res.FinalStep = (after - before) / int64(r.OK)
	}
	res.StepsSeen, _, res.Mismatches = ok.steps(0, map[int64]bool{1: true, 10: true})
	res.Mismatches = append(res.Mismatches, ok.bad...)
	res.ServedInvalid = res.StepsSeen[invalidStep] > 0
	st, err := p.Status()
	if err != nil {
		return nil, err
	}
	res.Applied, res.Refused = int(st.Reloads.Applied), int(st.Reloads.Refused)
	res.Exited = p.Exited() || p.Cmd.Process.Pid != pid
	return res, p.Stop(syscall.SIGTERM)
}

// ThroughputPoint is one (server, operation, concurrency) measurement.
type ThroughputPoint struct {
	Server, Op string
	Workers    int
	Summary    Summary
}

// Throughput runs closed-loop attacks of d at each concurrency against each server
// (name → base URL), for increment and get on counter-1, alternating servers at every
// run so that both see the same machine state. Each point is run `repeats` times; the run
// with the median throughput is kept.
func Throughput(servers []string, bases map[string]string, concurrencies []int, d time.Duration, repeats int) []ThroughputPoint {
	var out []ThroughputPoint
	for _, op := range []string{"increment", "get"} {
		for _, c := range concurrencies {
			runs := map[string][]Summary{}
			for range max(repeats, 1) {
				for _, s := range servers {
					base := bases[s]
					runs[s] = append(runs[s], Run(Load{Workers: c, Duration: d, Target: func(_ uint64, t *vegeta.Target) {
						if op == "get" {
							Get(t, base, "counter-1")
						} else {
							Increment(t, base, "counter-1", 1)
						}
					}}))
				}
			}
			for _, s := range servers {
				rs := runs[s]
				sort.Slice(rs, func(i, j int) bool { return rs[i].Throughput() < rs[j].Throughput() })
				out = append(out, ThroughputPoint{Server: s, Op: op, Workers: c, Summary: rs[len(rs)/2]})
			}
		}
	}
	return out
}

// exchange swaps the entries at a and b atomically (Linux renameat2 RENAME_EXCHANGE; they may
// be a directory and a file).
func exchange(a, b string) error {
	if err := unix.Renameat2(unix.AT_FDCWD, a, unix.AT_FDCWD, b, unix.RENAME_EXCHANGE); err != nil {
		return fmt.Errorf("exchanging %s and %s: %w", a, b, err)
	}
	return nil
}
