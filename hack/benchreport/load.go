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
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"

	"github.com/hotreload/plugin-operator/internal/testing/loadtest"
)

// load measures throughput and latency of increment and get with vegeta (as a library)
// against the real pluginhost binary and the bare net/http baseline (hack/barehost), at
// several concurrencies (closed loop) and fixed rates, same generator, same run.
func (r *report) load() error {
	d, repeats, concurrencies, rates := 2*time.Second, 3, []int{1, 4, 16, 64}, []int{1000, 4000}
	if r.quick {
		d, repeats, concurrencies, rates = time.Second, 1, []int{1, 16}, []int{1000}
	}
	dir, err := os.MkdirTemp("", "bench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	bare := filepath.Join(dir, "barehost")
	if out, err := exec.Command("go", "build", "-o", bare, "./hack/barehost").CombinedOutput(); err != nil {
		return fmt.Errorf("building hack/barehost: %v\n%s", err, out)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), loadtest.Config(loadtest.Plugin{Name: "counter-1", Increment: "1"}), 0o644); err != nil {
		return err
	}
	host, err := filepath.Abs(filepath.Join(r.bin, "pluginhost"))
	if err != nil {
		return err
	}
	fmt.Fprintln(os.Stderr, "+ load: vegeta against", host, "and hack/barehost")
	hp, err := loadtest.Start(host, dir)
	if err != nil {
		return err
	}
	defer hp.Kill()
	bp, err := loadtest.Start(bare, dir)
	if err != nil {
		return err
	}
	defer bp.Kill()
	loadBefore := loadAvg()
	servers := []string{"pluginhost", "bare"}
	bases := map[string]string{"pluginhost": "http://" + hp.Addr, "bare": "http://" + bp.Addr}
	pts := loadtest.Throughput(servers, bases, concurrencies, d, repeats)

	var sb strings.Builder
	fmt.Fprintf(&sb, `vegeta v12.13.0 as a library, keep-alive, one connection per client, against the real
binary (`+"`bin/pluginhost`"+`, one counter, `+"`max_connections: 1000`"+`) and a bare net/http server
doing the same work (hack/barehost: read the body, parse `+"`{\"value\": N}`"+`, one atomic add,
write the JSON answer). Closed loop: each client sends its next request when the answer
arrives, for %s per run, %d runs per point (the median is shown), servers alternating at
every run. Generator and servers share the machine's %d cores, so absolute figures are a
floor; the ratio is the comparison.

| operation | clients | pluginhost req/s | bare req/s | **ratio** | pluginhost p50 / p99 | bare p50 / p99 | non-2xx |
|---|---:|---:|---:|---:|---:|---:|---:|
`, d, repeats, runtime.NumCPU())
	chart := map[string][]float64{}
	for i := 0; i < len(pts); i += 2 {
		h, b := pts[i], pts[i+1]
		ht, bt := h.Summary.Throughput(), b.Summary.Throughput()
		fmt.Fprintf(&sb, "| %s | %d | %.0f | %.0f | **%.2f** | %s / %s | %s / %s | %d |\n", h.Op, h.Workers, ht, bt, ht/bt,
			ms(h.Summary.Quantile(0.5)), ms(h.Summary.Quantile(0.99)), ms(b.Summary.Quantile(0.5)), ms(b.Summary.Quantile(0.99)),
			h.Summary.Non2xx()+b.Summary.Non2xx())
		chart[h.Server+" "+h.Op] = append(chart[h.Server+" "+h.Op], ht)
		chart[b.Server+" "+b.Op] = append(chart[b.Server+" "+b.Op], bt)
	}
	var xs []string
	for _, c := range concurrencies {
		xs = append(xs, fmt.Sprint(c))
	}
	link, err := writeFigure("throughput.svg", lineChart("Throughput vs concurrency (vegeta, closed loop)", "concurrent clients", "requests/s", xs, []series{
		{name: "pluginhost increment", ys: chart["pluginhost increment"], color: 0},
		{name: "bare increment", ys: chart["bare increment"], color: 0, dash: true},
		{name: "pluginhost get", ys: chart["pluginhost get"], color: 1},
		{name: "bare get", ys: chart["bare get"], color: 1, dash: true},
	}))
	if err != nil {
		return err
	}
	fmt.Fprintf(&sb, "\n![throughput vs concurrency](%s)\n\nIncrement at fixed offered rates (open loop, up to 64 clients, %s per point): latency when neither server is saturated.\n\n| rate | pluginhost p50 / p99 / max | bare p50 / p99 / max | non-2xx |\n|---:|---:|---:|---:|\n", link, d)
	for _, rate := range rates {
		var row []string
		bad := 0
		for _, s := range servers {
			base := bases[s]
			sum := loadtest.Run(loadtest.Load{Workers: 64, Rate: rate, Duration: d, Target: func(_ uint64, t *vegeta.Target) {
				loadtest.Increment(t, base, "counter-1", 1)
			}})
			row = append(row, fmt.Sprintf("%s / %s / %s", ms(sum.Quantile(0.5)), ms(sum.Quantile(0.99)), ms(sum.Quantile(1))))
			bad += sum.Non2xx()
		}
		fmt.Fprintf(&sb, "| %d/s | %s | %s | %d |\n", rate, row[0], row[1], bad)
	}
	fmt.Fprintf(&sb, "\nMachine load average (1 min, /proc/loadavg) before / after these runs: %s / %s; above the core count, other work competed for the CPU and figures are noisier.\n", loadBefore, loadAvg())
	if err := hp.Stop(syscall.SIGTERM); err != nil {
		return fmt.Errorf("pluginhost exit: %v", err)
	}
	r.add("Load: pluginhost against a bare net/http server (vegeta)", "make bench (hack/benchreport: load; internal/testing/loadtest.Throughput)", sb.String())
	return nil
}

// loadAvg is the 1-minute load average, or "?".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	return strings.Fields(string(b))[0]
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }
