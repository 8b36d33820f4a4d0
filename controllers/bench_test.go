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

package controllers_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
)

// fastClient is a client without client-side rate limiting, for creating many objects.
func fastClient(b testing.TB) client.WithWatch {
	b.Helper()
	cfg := rest.CopyConfig(env.Config)
	cfg.QPS, cfg.Burst = -1, 0
	c, err := client.NewWithWatch(cfg, client.Options{Scheme: env.Scheme})
	if err != nil {
		b.Fatal(err)
	}
	return c
}

func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(float64(len(sorted))*p+0.5) - 1
	return sorted[min(max(i, 0), len(sorted)-1)]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// BenchmarkReconcileLatency measures Plugin edit → ConfigMap updated: the time from the
// Plugin update's response to the watch event of <host>-config carrying the new content,
// over 100 sequential edits per iteration, with the reconcilers in-process against envtest.
//
//	go test ./controllers/ -run '^$' -bench ReconcileLatency -benchtime 1x
func BenchmarkReconcileLatency(b *testing.B) {
	needEnv(b)
	const edits = 100
	ns := newNamespace(b)
	startManager(b, ns, benchOptions())
	c := fastClient(b)
	ctx := context.Background()
	p := newPlugin(ns, "p", "lat", 1)
	create(b, newHost(ns, "lat", "lat"), p)
	advertise(b, ns, "lat")
	for i := range 20 { // a realistic host: other Plugins in the rendered config
		create(b, newPlugin(ns, fmt.Sprintf("other-%02d", i), "lat", 1))
	}
	configMapData(b, ns, "lat", contains(`"other-19"`, `"p"`))

	w, err := c.Watch(ctx, &corev1.ConfigMapList{}, client.InNamespace(ns),
		client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", "lat-config")})
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()
	var lat []time.Duration
	inc := int32(1)
	b.ResetTimer()
	for b.Loop() {
		for range edits {
			inc++
			want := fmt.Sprintf(`"increment": %d`, inc)
			patch := client.RawPatch(types.MergePatchType, fmt.Appendf(nil, `{"spec":{"options":{"increment":%d}}}`, inc))
			if err := c.Patch(ctx, p, patch); err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			deadline := time.After(wait)
		events:
			for {
				select {
				case ev, ok := <-w.ResultChan():
					if !ok {
						b.Fatal("ConfigMap watch ended")
					}
					if ev.Type != watch.Modified && ev.Type != watch.Added {
						continue
					}
					if strings.Contains(ev.Object.(*corev1.ConfigMap).Data["config.json"], want) {
						lat = append(lat, time.Since(start))
						break events
					}
				case <-deadline:
					b.Fatalf("ConfigMap never carried %s", want)
				}
			}
		}
	}
	b.StopTimer()
	slices.Sort(lat)
	b.ReportMetric(ms(percentile(lat, 0.50)), "p50-ms")
	b.ReportMetric(ms(percentile(lat, 0.99)), "p99-ms")
	b.ReportMetric(ms(lat[len(lat)-1]), "max-ms")
	b.Logf("Plugin edit → ConfigMap updated over %d edits: p50 %v, p99 %v, max %v",
		len(lat), percentile(lat, 0.50), percentile(lat, 0.99), lat[len(lat)-1])
}

// benchOptions are the manager's defaults, with the test image.
func benchOptions() (o controllers.Options) {
	o = testOptions()
	o.StatusPollInterval = time.Second
	return o
}

// BenchmarkScale runs the real manager binary against envtest with 10 PluginHosts, each with
// a real pluginhost pod (kubeletsim), then creates 1,000 Plugins (100 per host) and measures
// the time until every Plugin is Ready (applied by its pod and served), and the manager
// process's resident memory (peak and final).
//
//	go test ./controllers/ -run '^$' -bench Scale -benchtime 1x
//
// SCALE_DEBUG=1 logs progress every second and the manager's reconcile and client metrics.
func BenchmarkScale(b *testing.B) {
	needEnv(b)
	const hosts, perHost = 10, 100
	for range b.N {
		scaleRun(b, hosts, perHost)
	}
}

func scaleRun(b *testing.B, hosts, perHost int) {
	b.StopTimer()
	ns := newNamespace(b)
	c := fastClient(b)
	ctx := context.Background()

	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	mgr := exec.Command(managerBin, "--kubeconfig="+env.Kubeconfig, "--watch-namespaces="+ns,
		"--metrics-bind-address="+metricsAddr, "--metrics-secure=false", "--health-probe-bind-address=0", "--zap-log-level=error")
	mgr.Stderr = os.Stderr
	if err := mgr.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() { _ = mgr.Process.Signal(os.Interrupt); _ = mgr.Wait() }()

	for h := range hosts {
		create(b, newHost(ns, fmt.Sprintf("h%02d", h), fmt.Sprintf("h%02d", h))) // pollInterval 250ms by default
	}
	for h := range hosts {
		name := fmt.Sprintf("h%02d", h)
		configMapData(b, ns, name, contains(`"plugins"`))
		startPod(b, ns, name, name+"-0")
	}
	for h := range hosts {
		hostCondition(b, ns, fmt.Sprintf("h%02d", h), v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonRolledOut)
	}
	baseRSS, _ := procMemory(mgr.Process.Pid)
	baseCPU := procCPU(mgr.Process.Pid)

	// Plugins are followed with a watch: listing 1,000 objects several times a second would
	// load the API server more than the operator does.
	w, err := c.Watch(ctx, &v1alpha1.PluginList{}, client.InNamespace(ns))
	if err != nil {
		b.Fatal(err)
	}
	defer w.Stop()

	b.StartTimer()
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan *v1alpha1.Plugin)
	for range 16 {
		wg.Go(func() {
			for p := range work {
				if err := c.Create(ctx, p); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range hosts * perHost {
		h := i % hosts
		work <- newPlugin(ns, fmt.Sprintf("p%04d", i), fmt.Sprintf("h%02d", h), int32(i))
	}
	close(work)
	wg.Wait()
	created := time.Since(start)

	ready := map[string]bool{}
	timeout := time.After(5 * time.Minute)
	progress := time.NewTicker(time.Second)
	defer progress.Stop()
	n := 0
	for n < hosts*perHost {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok {
				b.Fatal("Plugin watch ended")
			}
			p, isPlugin := ev.Object.(*v1alpha1.Plugin)
			if !isPlugin {
				continue
			}
			cnd := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
			ready[p.Name] = cnd != nil && cnd.Status == metav1.ConditionTrue && cnd.ObservedGeneration == p.Generation
			n = 0
			for _, r := range ready {
				if r {
					n++
				}
			}
		case <-progress.C:
			if os.Getenv("SCALE_DEBUG") != "" {
				b.Logf("%6.2fs: %d Plugins seen, %d Ready", time.Since(start).Seconds(), len(ready), n)
			}
		case <-timeout:
			b.Fatalf("not every Plugin Ready after %v", time.Since(start))
		}
	}
	converged := time.Since(start)
	b.StopTimer()
	rss, peak := procMemory(mgr.Process.Pid)
	cpu := procCPU(mgr.Process.Pid) - baseCPU
	if os.Getenv("SCALE_DEBUG") != "" {
		if resp, err := http.Get("http://" + metricsAddr + "/metrics"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(l, "controller_runtime_reconcile_total") || strings.HasPrefix(l, "controller_runtime_reconcile_time_seconds_sum") ||
					strings.HasPrefix(l, "controller_runtime_reconcile_time_seconds_count") || strings.HasPrefix(l, "workqueue_queue_duration_seconds_sum") ||
					strings.HasPrefix(l, "rest_client_requests_total") {
					b.Log(l)
				}
			}
		}
	}
	b.ReportMetric(converged.Seconds(), "converge-s")
	b.ReportMetric((converged - created).Seconds(), "after-last-create-s")
	b.ReportMetric(created.Seconds(), "create-s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
	b.ReportMetric(cpu.Seconds(), "manager-cpu-s")
	b.Logf("%d Plugins on %d hosts: created in %v, all Ready %v after the first create (%v after the last); manager CPU %v, RSS %.1f MiB before, %.1f MiB after (peak %.1f MiB)",
		hosts*perHost, hosts, created.Round(time.Millisecond), converged.Round(time.Millisecond), (converged - created).Round(time.Millisecond),
		cpu.Round(time.Millisecond), float64(baseRSS)/(1<<20), float64(rss)/(1<<20), float64(peak)/(1<<20))
}

// procMemory reads VmRSS and VmHWM (peak RSS) of a process, in bytes.
func procMemory(pid int) (rss, peak int64) {
	f, err := os.Open(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		k, v, ok := strings.Cut(s.Text(), ":")
		if !ok {
			continue
		}
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
		switch k {
		case "VmRSS":
			rss = kb << 10
		case "VmHWM":
			peak = kb << 10
		}
	}
	return rss, peak
}

// procCPU reads the user and system CPU time a process has used.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name, in parentheses, may contain spaces: fields start after it.
	s := string(b)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * time.Second / 100 // USER_HZ
}
