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
	"slices"
	"strings"
)

// scaleSizes are the Plugins/hosts of the scale curve (SCALE_SIZES overrides them).
const (
	scaleSizes      = "1000/10,5000/50,10000/100,20000/200"
	scaleSizesQuick = "1000/10,5000/50"
)

// scale runs BenchmarkScale (controllers/bench_test.go) at each size of the curve: the real
// manager binary and a real pluginhost per host on envtest, with the API server's floor
// measured in the same run, the manager's CPU, peak RSS and the writes the API server
// counted, and a restart of the manager over the converged Plugins (make bench-scale).
func (r *report) scale() error {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return fmt.Errorf("KUBEBUILDER_ASSETS is not set: run make bench-scale, which builds the control plane")
	}
	sizes := os.Getenv("SCALE_SIZES")
	if sizes == "" {
		sizes = scaleSizes
		if r.quick {
			sizes = scaleSizesQuick
		}
		if err := os.Setenv("SCALE_SIZES", sizes); err != nil {
			return err
		}
	}
	loadBefore := loadAvg()
	// One go test per size, each with an envtest of its own: the objects of a smaller size
	// stay in etcd (envtest deletes no namespace), and 52,000 Plugins left from the smaller
	// sizes and their floors slowed the API server enough that the 20,000 / 200 hosts did not
	// start within the harness' waits.
	var bs []bench
	var cmd string
	for _, size := range strings.Split(sizes, ",") {
		if err := os.Setenv("SCALE_SIZES", strings.TrimSpace(size)); err != nil {
			return err
		}
		one, c, err := goBench("-bench=^BenchmarkScale$", "-benchtime=1x", "-count=1", "-timeout=180m", "./controllers/")
		if err != nil {
			return err
		}
		bs, cmd = append(bs, one...), c
	}
	if err := os.Setenv("SCALE_SIZES", sizes); err != nil {
		return err
	}
	loadAfter := loadAvg()
	var sb strings.Builder
	fmt.Fprintf(&sb, `On envtest (a real kube-apiserver and etcd on this machine): the real manager binary, a real
pluginhost process per PluginHost behind the kubelet stand-in (kubeletsim), Plugins created by
16 writers spread evenly over the hosts; all Ready is every Plugin's Ready condition True for its
generation, counted from a watch. **Floor**: in the same run, without a manager, the same number
of Plugins created and one status update written to each, 16 writers — what the API server alone
needs for the writes the result requires; the ratio to it is the target (≤ 1.25× at 10,000/100),
as absolute times move with the machine's load. **Writes**: the manager's, as the API server
counts them (apiserver_request_total, before and after; the Plugins' creates taken out).
**Restart**: the manager stopped over the converged Plugins and a new one started: its writes
until idle, the time until idle, then one Plugin edit → Ready. **Control plane CPU**: etcd and
kube-apiserver until all Ready, and the floor's for comparison; **pluginhosts CPU**: the host
processes meanwhile. The run's CPU of the whole machine is their sum with the manager's.

Command, once per size (each its own envtest): `+"`SCALE_SIZES=<size> %s`"+` for the sizes %s.

| Plugins / hosts | create | all Ready | ratio to floor (floor) | after last create | manager CPU | peak RSS | manager writes | control plane CPU (floor's) | pluginhosts CPU | restart: writes, idle after, edit → Ready |
|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|
`, cmd, sizes)
	var details strings.Builder
	for _, b := range bs {
		if !strings.HasPrefix(b.name, "BenchmarkScale/") {
			continue
		}
		m := b.metrics
		size := strings.TrimPrefix(b.name, "BenchmarkScale/")
		restart := "not run"
		if _, ok := m["restart-writes"]; ok {
			restart = fmt.Sprintf("%.0f, %.1f s, %.0f ms", m["restart-writes"], m["restart-idle-s"], m["restart-edit-ready-ms"])
		}
		fmt.Fprintf(&sb, "| %s | %.1f s | **%.1f s** | **%.2f×** (%.1f s) | %.1f s | %.1f s | %.0f MiB | %.0f | %.0f s (%.0f s) | %.0f s | %s |\n",
			size, m["create-s"], m["converge-s"], m["floor-ratio"], m["floor-s"], m["after-last-create-s"],
			m["manager-cpu-s"], m["peak-rss-MiB"], m["writes"], m["control-plane-cpu-s"], m["floor-control-plane-cpu-s"],
			m["pluginhosts-cpu-s"], restart)
		var kinds []string
		for unit := range m {
			if k, ok := strings.CutPrefix(unit, "writes:"); ok {
				kinds = append(kinds, fmt.Sprintf("%s %.0f", strings.ReplaceAll(k, ":", " "), m[unit]))
			}
		}
		slices.Sort(kinds)
		fmt.Fprintf(&details, "- %s: %s\n", size, strings.Join(kinds, ", "))
	}
	fmt.Fprintf(&sb, "\nThe manager's writes by verb and resource:\n\n%s\nMachine load average (1 min, /proc/loadavg) before / after: %s / %s; the API server, etcd, the\npluginhosts, the benchmark and the manager share this machine's cores.\n",
		details.String(), loadBefore, loadAfter)
	r.add("Operator at scale: the curve", cmd, sb.String())
	return nil
}
