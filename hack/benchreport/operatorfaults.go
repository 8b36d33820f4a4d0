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
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
)

// operatorFaultLines runs go test with args and returns the metrics of its "FAULTS <name> k=v ..."
// lines by name.
func operatorFaultLines(args ...string) (map[string]map[string]string, string, error) {
	cmd := append([]string{"test", "-count=1", "-v"}, args...)
	fmt.Fprintln(os.Stderr, "+ go", strings.Join(cmd, " "))
	c := exec.Command("go", cmd...)
	var buf bytes.Buffer
	c.Stdout = &buf
	c.Stderr = os.Stderr
	if err := c.Run(); err != nil {
		return nil, "", fmt.Errorf("go %s: %w\n%s", strings.Join(cmd, " "), err, buf.String())
	}
	out := map[string]map[string]string{}
	sc := bufio.NewScanner(&buf)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "FAULTS" {
			continue
		}
		m := map[string]string{}
		for _, kv := range f[2:] {
			if k, v, ok := strings.Cut(kv, "="); ok {
				m[k] = v
			}
		}
		out[f[1]] = m
	}
	return out, "go " + strings.Join(cmd, " "), nil
}

// operatorFaults runs the operator's fault tests on envtest: the API server stopped and restarted
// under a running manager, and 1,000 Plugin creates/edits/deletes. Both tests assert the
// outcome (convergence, no leaked goroutines, bounded heap); this reports their figures.
func (r *report) operatorFaults() error {
	if os.Getenv("KUBEBUILDER_ASSETS") == "" {
		return fmt.Errorf("KUBEBUILDER_ASSETS is not set: run make bench, which builds the control plane")
	}
	const tests = "^(TestAPIServerRestartDuringReconciles|TestPluginChurn)$"
	res, _, err := operatorFaultLines("-run="+tests, "./controllers/")
	if err != nil {
		return err
	}
	// The command as one types it in a shell (make bench sets KUBEBUILDER_ASSETS).
	cmd := "KUBEBUILDER_ASSETS=$(pwd)/bin/k8s/<version>-linux-amd64 go test -count=1 -v -run '" + tests + "' ./controllers/"
	restart, churn := res["apiserver-restart"], res["churn"]
	if restart == nil || churn == nil {
		return fmt.Errorf("%s printed no FAULTS figures", cmd)
	}
	num := func(m map[string]string, k string) float64 {
		v, _ := strconv.ParseFloat(m[k], 64)
		return v
	}
	r.add("Operator under faults: API server restart and Plugin churn", cmd, fmt.Sprintf(`On envtest, the reconcilers in-process (one manager, never restarted).

**kube-apiserver stopped and restarted** while Plugins are edited without pause: SIGTERM,
killed after 3 s, down %.0f s more, restarted on the same port with the same certificates
(etcd keeps the data). Then one Plugin deleted and one created. The test passes when the
ConfigMap holds exactly the remaining Plugins with their last edits and the PluginHost's and
every Plugin's status describe the last generations.

| measure | value |
|---|---:|
| edits accepted / refused during the run | %s / %s |
| converged, from the API server's return | **%.1f s** |
| … from the last write | %.1f s |

The wait after the return is the manager's informers reconnecting: client-go backs off its
watches while the API server is down and each informer comes back on its own schedule (the
test logs what is still stale every 2 s: first the ConfigMap's content, then statuses).

**Plugin churn**: %s operations against one PluginHost (%s creates, %s edits, %s deletes, at
most 80 Plugins alive; %s left), as fast as one client sends them. Goroutines and heap of the
test process (manager included) after a 100-operation warm-up and after the run:

| measure | after warm-up | after churn | bound asserted |
|---|---:|---:|---|
| goroutines | %s | %s | + max(20, 10%%) |
| heap after GC | %.1f MiB | %.1f MiB | < 2× + 8 MiB |

Converged %.2f s after the last operation. Plugin write → ConfigMap carrying it, under churn
(%s writes not superseded before they reached the ConfigMap): p50 **%.0f ms**, p99 **%.0f ms**,
max %.0f ms.
`, num(restart, "down-s"), restart["edits"], restart["failed-edits"], num(restart, "converge-after-restart-s"),
		num(restart, "converge-after-last-write-s"),
		churn["ops"], churn["creates"], churn["edits"], churn["deletes"], churn["remaining"],
		churn["goroutines-before"], churn["goroutines-after"], num(churn, "heap-before-MiB"), num(churn, "heap-after-MiB"),
		num(churn, "converge-after-last-op-s"), churn["latency-samples"], num(churn, "p50-ms"), num(churn, "p99-ms"), num(churn, "max-ms")))
	return nil
}
