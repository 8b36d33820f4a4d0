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

package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	"github.com/hotreload/plugin-operator/internal/testing/loadtest"
)

func (r *report) hostBinary() (string, error) {
	return filepath.Abs(filepath.Join(r.bin, "pluginhost"))
}

// reloadUnderLoad: 100 kubelet-style config changes every 100 ms while clients run, with
// the exact accounting the test asserts, and the reload-latency histogram.
func (r *report) reloadUnderLoad() error {
	bin, err := r.hostBinary()
	if err != nil {
		return err
	}
	n := 100
	if r.quick {
		n = 30
	}
	fmt.Fprintln(os.Stderr, "+ reload under load:", n, "changes")
	res, err := loadtest.ReloadUnderLoad(loadtest.ReloadOptions{Binary: bin, Reloads: n, Every: 100 * time.Millisecond, Workers: 4})
	if err != nil {
		return err
	}
	lat := make([]float64, len(res.ReloadLatencies))
	for i, d := range res.ReloadLatencies {
		lat[i] = float64(d) / 1e6
	}
	sort.Float64s(lat)
	q := func(p float64) float64 {
		if len(lat) == 0 {
			return 0
		}
		return lat[int(p*float64(len(lat)-1))]
	}
	link, err := writeFigure("reload-latency.svg", histogram(
		fmt.Sprintf("Reload latency under load (%d changes, applied or refused)", len(lat)),
		"ms from kubelet's ..data swap to the host's audit record (poll 100 ms)", lat, 5,
		fmt.Sprintf("p50 %.1f ms\np99 %.1f ms\nmax %.1f ms", q(0.5), q(0.99), q(1))))
	if err != nil {
		return err
	}
	ok := func(b bool) string {
		if b {
			return "yes"
		}
		return "**NO**"
	}
	var steps []string
	for s, c := range res.StepsSeen {
		steps = append(steps, fmt.Sprintf("%d×%d", s, c))
	}
	sort.Strings(steps)
	body := fmt.Sprintf(`The real binary (`+"`--poll-interval=100ms`"+`, the documented default) on a config projected
exactly as kubelet does (internal/testing/projection), changed **%d times, every 100 ms**, cycling
through: a new `+"`increment`"+` for counter-1 (powers of ten), a truncated file, counter-2
added or removed, an invalid value (`+"`increment: 7`"+` with `+"`max_idle_connections`"+` over
`+"`max_connections`"+`), a non-integer increment, an empty file. Meanwhile 4 closed-loop vegeta
clients send increments of counter-1 (values 1, 2, 3), gets of counter-1 and increments of
counter-2. Exact accounting: the answers of counter-1's increments, sorted by value, form a
chain; each difference must be the value sent × an increment a valid config set, and the
final counter must equal their sum.

| measure | value |
|---|---:|
| changes written: valid / invalid (counter-2 toggles) | %d / %d (%d) |
| host's count: applied / refused | %d / %d |
| counter-1 requests (increment + get) | %d (%.0f/s) |
| counter-1 non-2xx | **%d** |
| counter-1 latency p50 / p99 / max during reloads | %s / **%s** / %s |
| counter-2 answers (200 while present, 404 while removed) | %s |
| acknowledged increments of counter-1 | %d |
| final counter / Σ value × increment in force | %d / %d (%s) |
| increments served (step × requests) | %s |
| chain links not explained by a valid config | %d |
| increment 7 (only in invalid configs) ever served | %s |
| ended on the last content written | %s |

Reload latency, from the `+"`..data`"+` swap to the host's audit record of the change (applied or
refused; %d of %d changes matched), under this load: p50
**%.1f ms**, p99 **%.1f ms**, max %.1f ms (uniform over one poll when idle; see above).

![reload latency histogram](%s)

Asserted in `+"`make test`"+` by `+"`TestReloadUnderLoad`"+` (cmd/pluginhost, same scenario against the
race-built binary).
`, res.Writes, res.ValidWrites, res.InvalidWrites, res.Toggles, res.Applied, res.Refused,
		res.Stable.Requests, float64(res.Stable.Requests)/res.Duration.Seconds(), res.Stable.Non2xx(),
		ms(res.Stable.Quantile(0.5)), ms(res.Stable.Quantile(0.99)), ms(res.Stable.Quantile(1)),
		res.Other.CodesString(), res.Acked, res.Final, res.Expected, map[bool]string{true: "equal", false: "**DIFFERENT**"}[res.Final == res.Expected],
		strings.Join(steps, ", "), len(res.Mismatches), map[bool]string{true: "**YES**", false: "no"}[res.ServedInvalid], ok(res.FinalRevision),
		len(lat), res.Writes, q(0.5), q(0.99), q(1), link)
	r.add("Reload under load", "go test -run TestReloadUnderLoad -v ./cmd/pluginhost/    # assertions\nmake bench (hack/benchreport: reloadUnderLoad)       # figures", body)
	return nil
}

// faults: SIGKILL and SIGTERM under load with a state dir, the state dir made unusable
// under load, and a config file flapping between valid and invalid content.
func (r *report) faults() error {
	bin, err := r.hostBinary()
	if err != nil {
		return err
	}
	var sb strings.Builder
	fmt.Fprintln(os.Stderr, "+ faults: SIGKILL, SIGTERM, unwritable state dir, flapping config")
	sb.WriteString(`Against the real binary under vegeta load on counter-1 (increment 1, so the highest
value answered is the number of increments applied up to it).

| fault | load | acknowledged | restored after restart | lost | bound |
|---|---|---:|---:|---:|---|
`)
	type run struct {
		what, bound string
		o           loadtest.CrashOptions
	}
	runs := []run{
		{"SIGKILL, `--snapshot-interval=1s` (default)", "acknowledged in the last interval: %d", loadtest.CrashOptions{Signal: syscall.SIGKILL, SnapshotInterval: time.Second, Workers: 4, Rate: 2000, Before: 3500 * time.Millisecond}},
		{"SIGKILL, closed loop", "acknowledged in the last interval: %d", loadtest.CrashOptions{Signal: syscall.SIGKILL, SnapshotInterval: time.Second, Workers: 4, Before: 3500 * time.Millisecond}},
		{"SIGTERM, `--snapshot-interval=1h`", "nothing", loadtest.CrashOptions{Signal: syscall.SIGTERM, SnapshotInterval: time.Hour, Workers: 4, Before: 2 * time.Second}},
	}
	for _, rn := range runs {
		rn.o.Binary = bin
		res, err := loadtest.Crash(rn.o)
		if err != nil {
			return err
		}
		load := "closed loop, 4 clients"
		if rn.o.Rate > 0 {
			load = fmt.Sprintf("%d/s, 4 clients", rn.o.Rate)
		}
		bound := rn.bound
		if strings.Contains(bound, "%d") {
			bound = fmt.Sprintf(bound, res.AckedInWindow)
		}
		fmt.Fprintf(&sb, "| %s | %s | %d | %d | **%d** | %s |\n", rn.what, load, res.AckedMax, res.Restored, res.Loss, bound)
	}
	for _, full := range []bool{false, true} {
		what := "replaced by a file"
		if full {
			what = "full (a 256 KiB tmpfs filled up)"
		}
		sd, err := loadtest.UnwritableStateDir(bin, 2, full)
		if errors.Is(err, loadtest.ErrNoTmpfs) {
			fmt.Fprintf(&sb, "\n**State dir %s**: not run (%v).\n", what, err)
			continue
		}
		if err != nil {
			return err
		}
		fmt.Fprintf(&sb, `
**State dir %s under load** (2 clients incrementing, `+"`--snapshot-interval=50ms`"+`, then
made usable again): %d requests, **%d non-2xx**; `+"`/status`"+` said `+"`state.lastError: %q`"+` and
the log said `+"`Saving plugin state failed; serving continues…`"+`; recovered (error cleared)
when usable again: %v; after SIGTERM and a restart the counter is %d of %d acknowledged.
`, what, sd.Load.Requests, sd.Load.Non2xx(), sd.StatusError, sd.Recovered, sd.Restored, sd.AckedMax)
	}
	fl, err := loadtest.Flapping(bin, 2*time.Millisecond, 3*time.Second, 2, 1000)
	if err != nil {
		return err
	}
	fmt.Fprintf(&sb, `
**Config flapping** (rewritten in place for 3 s with a 2 ms pause between writes — one write
every %.1f ms — alternating valid increments 1/10 with an invalid value and a truncated file;
`+"`--poll-interval=10ms`"+`; increments at 1,000/s): %d writes, the host applied %d and refused %d; %d requests, **%d non-2xx**; increments served
%v (7 exists only in the invalid content); %d answers not explained by a valid config; ended on
the final content: %v (increment %d); process exited: %v.
`, 3000/float64(fl.Writes), fl.Writes, fl.Applied, fl.Refused, fl.Load.Requests, fl.Load.Non2xx(), fl.StepsSeen, len(fl.Mismatches), fl.FinalRevision, fl.FinalStep, fl.Exited)
	r.add("Faults under load: SIGKILL, SIGTERM, unusable state dir, flapping config",
		"go test -run 'UnderLoad|Flapping' -v ./cmd/pluginhost/    # assertions\nmake bench (hack/benchreport: faults)                      # figures", sb.String())
	return nil
}
