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
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
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

// BenchmarkScale runs the real manager binary against envtest with PluginHosts each served
// by a real pluginhost process (kubeletsim), creates Plugins spread evenly over them with 16
// writers, and measures the time until every Plugin is Ready (applied by its pod and served),
// the manager's CPU and resident memory, and the writes the API server counted. Each size
// first measures, in the same run and without a manager, the floor: what the API server
// alone needs to create the Plugins and write one status update to each with 16 writers.
// Then, unless SCALE_RESTART=0, it restarts the manager over the converged Plugins and
// counts what the new one writes until idle, and how soon it acts on an edit.
//
//	go test ./controllers/ -run '^$' -bench Scale -benchtime 1x
//	SCALE_SIZES=1000/10,10000/100 go test ./controllers/ -run '^$' -bench Scale -benchtime 1x -timeout 60m
//
// SCALE_SIZES are plugins/hosts pairs (default 1000/10); make bench-scale runs the curve.
// SCALE_DEBUG=1 prints progress every second and the manager's reconcile and client metrics
// to stderr;
// SCALE_PPROF=host:port serves the manager's /debug/pprof there; SCALE_MANAGER_GOMEMLIMIT
// sets the manager's GOMEMLIMIT (its soft memory limit, e.g. 100MiB); SCALE_MANAGER_ARGS adds
// flags to the manager's command line (e.g. --max-render-pace=5s); SCALE_APISERVER_PROFILE=file
// writes a CPU profile of the kube-apiserver over the first minute of the Plugins' creates.
func BenchmarkScale(b *testing.B) {
	needEnv(b)
	for _, sz := range scaleSizes(b) {
		b.Run(fmt.Sprintf("plugins=%d,hosts=%d", sz[0], sz[1]), func(b *testing.B) {
			for range b.N {
				scaleRun(b, sz[1], sz[0]/sz[1])
			}
		})
	}
}

// scaleSizes parses SCALE_SIZES: comma-separated plugins/hosts pairs.
func scaleSizes(b *testing.B) [][2]int {
	spec := os.Getenv("SCALE_SIZES")
	if spec == "" {
		spec = "1000/10"
	}
	var out [][2]int
	for _, f := range strings.Split(spec, ",") {
		p, h, ok := strings.Cut(strings.TrimSpace(f), "/")
		plugins, err1 := strconv.Atoi(p)
		hosts, err2 := strconv.Atoi(h)
		if !ok || err1 != nil || err2 != nil || hosts < 1 || plugins < hosts || plugins%hosts != 0 {
			b.Fatalf("SCALE_SIZES: %q is not plugins/hosts with plugins a multiple of hosts", f)
		}
		out = append(out, [2]int{plugins, hosts})
	}
	return out
}

// scaleFloor creates n Plugins in a namespace of their own with 16 writers, each writing
// one status update (conditions as the manager writes them) right after its create, with
// no manager running, and returns how long that took.
func scaleFloor(b *testing.B, n int) time.Duration {
	ns := newNamespace(b)
	c := fastClient(b)
	ctx := context.Background()
	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan *v1alpha1.Plugin)
	for range 16 {
		wg.Go(func() {
			for p := range work {
				if err := c.Create(ctx, p); err != nil {
					b.Error(err)
					continue
				}
				before := p.DeepCopy()
				now := metav1.Now()
				p.Status.ObservedGeneration, p.Status.Host = p.Generation, "floor"
				p.Status.URL = "http://floor." + ns + ".svc:8080/plugins/" + p.Name
				p.Status.AppliedRevision = "0123456789abcdef"
				for _, typ := range []string{v1alpha1.ConditionAccepted, v1alpha1.ConditionApplied, v1alpha1.ConditionReady} {
					p.Status.Conditions = append(p.Status.Conditions, metav1.Condition{Type: typ, Status: metav1.ConditionTrue,
						ObservedGeneration: p.Generation, LastTransitionTime: now, Reason: "Floor", Message: "Written by the floor of BenchmarkScale"})
				}
				if err := c.Status().Patch(ctx, p, client.MergeFrom(before)); err != nil {
					b.Error(err)
				}
			}
		})
	}
	for i := range n {
		work <- newPlugin(ns, fmt.Sprintf("p%05d", i), "floor", int32(i))
	}
	close(work)
	wg.Wait()
	return time.Since(start)
}

// scaleManager is the manager binary of BenchmarkScale, with its metrics served over HTTP.
type scaleManager struct {
	cmd *exec.Cmd
	*clusterManager
}

func startScaleManager(b *testing.B, ns string) *scaleManager {
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	probe := fmt.Sprintf("127.0.0.1:%d", freePort(b))
	args := []string{"--kubeconfig=" + env.Kubeconfig, "--watch-namespaces=" + ns,
		"--metrics-bind-address=" + metricsAddr, "--metrics-secure=false", "--health-probe-bind-address=" + probe, "--zap-log-level=error"}
	if addr := os.Getenv("SCALE_PPROF"); addr != "" {
		args = append(args, "--pprof-bind-address="+addr)
	}
	args = append(args, strings.Fields(os.Getenv("SCALE_MANAGER_ARGS"))...)
	cmd := exec.Command(managerBin, args...)
	cmd.Stderr = os.Stderr
	if limit := os.Getenv("SCALE_MANAGER_GOMEMLIMIT"); limit != "" {
		// The manager's alone: the test process and envtest's API server keep their own.
		cmd.Env = append(os.Environ(), "GOMEMLIMIT="+limit)
	}
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	m := &scaleManager{cmd: cmd, clusterManager: &clusterManager{cmd: cmd, metricsAddr: metricsAddr}}
	var once sync.Once
	m.stop = func() { once.Do(func() { _ = cmd.Process.Signal(os.Interrupt); _ = cmd.Wait() }) }
	b.Cleanup(m.stop)
	testutil.Eventually(b, wait, "the manager's /readyz", func() error {
		resp, err := http.Get("http://" + probe + "/readyz")
		if err != nil {
			return err
		}
		_ = resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz: %s", resp.Status)
		}
		return nil
	})
	return m
}

func scaleRun(b *testing.B, hosts, perHost int) {
	b.StopTimer()
	n := hosts * perHost
	cp0 := childrenCPU(controlPlane...)
	floor := scaleFloor(b, n)
	floorCP := childrenCPU(controlPlane...) - cp0
	b.Logf("floor: %d Plugins created and one status update each, 16 writers, no manager: %v, control plane CPU %v (load %s)",
		n, floor.Round(time.Millisecond), floorCP.Round(time.Millisecond), testutil.LoadAverage())

	ns := newNamespace(b)
	c := fastClient(b)
	ctx := context.Background()
	mgr := startScaleManager(b, ns)
	pid := mgr.cmd.Process.Pid

	for h := range hosts {
		create(b, newHost(ns, fmt.Sprintf("h%03d", h), fmt.Sprintf("h%03d", h))) // pollInterval 250ms by default
	}
	for h := range hosts {
		name := fmt.Sprintf("h%03d", h)
		configMapData(b, ns, name, contains(`"plugins"`))
		startPod(b, ns, name, name+"-0")
	}
	// Every host rolled out before the Plugins come: at 200 hosts that takes the manager more
	// than the harness' usual wait for one object.
	testutil.Eventually(b, 10*time.Minute, "every PluginHost Progressing=False/RolledOut", func() error {
		for h := range hosts {
			host := &v1alpha1.PluginHost{}
			if err := get(b, host, ns, fmt.Sprintf("h%03d", h)); err != nil {
				return err
			}
			if err := condition(host.Status.Conditions, v1alpha1.ConditionProgressing, metav1.ConditionFalse, v1alpha1.ReasonRolledOut, host.Generation); err != nil {
				return fmt.Errorf("PluginHost %s: %w", host.Name, err)
			}
		}
		return nil
	})
	baseRSS, _ := procMemory(pid)
	baseCPU := procCPU(pid)
	baseCP, baseHosts := childrenCPU(controlPlane...), childrenCPU("pluginhost")

	// Plugins are followed with a watch, counted per event: listing 10,000 objects several
	// times a second would load the API server more than the operator does.
	ready := newReadyCounter(b, c, ns)
	defer ready.stop()
	writes0 := readAPIWrites(b)

	if file := os.Getenv("SCALE_APISERVER_PROFILE"); file != "" {
		go profileAPIServer(b, file, 60*time.Second)
	}
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
	for i := range n {
		h := i % hosts
		work <- newPlugin(ns, fmt.Sprintf("p%05d", i), fmt.Sprintf("h%03d", h), int32(i))
	}
	close(work)
	wg.Wait()
	created := time.Since(start)

	var tick func()
	if os.Getenv("SCALE_DEBUG") != "" {
		tick = func() {
			seen, n := ready.count()
			// To stderr: a benchmark's log keeps only its first lines.
			fmt.Fprintf(os.Stderr, "%6.2fs: %d Plugins seen, %d Ready\n", time.Since(start).Seconds(), seen, n)
		}
	}
	converged := ready.waitFor(b, n, 15*time.Minute, tick).Sub(start)
	b.StopTimer()
	rss, peak := procMemory(pid)
	cpu := procCPU(pid) - baseCPU
	cpCPU, hostsCPU := childrenCPU(controlPlane...)-baseCP, childrenCPU("pluginhost")-baseHosts
	// The manager's writes: everything the API server counted meanwhile but the Plugins'
	// creates (the benchmark's). Counted again once the manager is idle: the writes that
	// follow the last Ready (nothing should) belong to the run too.
	idle := &idleProbe{sum: mgr.metricSum, depth0: map[string]float64{}} // a process of its own: its queues started empty
	testutil.Eventually(b, wait, "the manager to be idle", func() error { return idle.idle(b) })
	writes := readAPIWrites(b).sub(writes0)
	writes["POST plugins"] -= float64(n)
	if writes["POST plugins"] == 0 {
		delete(writes, "POST plugins")
	}
	if os.Getenv("SCALE_DEBUG") != "" {
		if resp, err := http.Get("http://" + mgr.metricsAddr + "/metrics"); err == nil {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			for _, l := range strings.Split(string(body), "\n") {
				if strings.HasPrefix(l, "controller_runtime_reconcile_total") || strings.HasPrefix(l, "controller_runtime_reconcile_time_seconds_sum") ||
					strings.HasPrefix(l, "controller_runtime_reconcile_time_seconds_count") || strings.HasPrefix(l, "workqueue_queue_duration_seconds_sum") ||
					strings.HasPrefix(l, "rest_client_requests_total") {
					fmt.Fprintln(os.Stderr, l)
				}
			}
		}
	}
	b.ReportMetric(converged.Seconds(), "converge-s")
	b.ReportMetric(floor.Seconds(), "floor-s")
	b.ReportMetric(converged.Seconds()/floor.Seconds(), "floor-ratio")
	b.ReportMetric((converged - created).Seconds(), "after-last-create-s")
	b.ReportMetric(created.Seconds(), "create-s")
	b.ReportMetric(float64(peak)/(1<<20), "peak-rss-MiB")
	b.ReportMetric(float64(rss)/(1<<20), "rss-MiB")
	b.ReportMetric(cpu.Seconds(), "manager-cpu-s")
	b.ReportMetric(cpCPU.Seconds(), "control-plane-cpu-s")
	b.ReportMetric(floorCP.Seconds(), "floor-control-plane-cpu-s")
	b.ReportMetric(hostsCPU.Seconds(), "pluginhosts-cpu-s")
	b.ReportMetric(writes.total(), "writes")
	for k, v := range writes {
		b.ReportMetric(v, "writes:"+strings.ReplaceAll(k, " ", ":"))
	}
	b.Logf("%d Plugins on %d hosts: created in %v, all Ready %v after the first create (%v after the last) = %.2f× the floor of %v; manager CPU %v, RSS %.1f MiB before, %.1f MiB after (peak %.1f MiB); %d watch restarts; load %s",
		n, hosts, created.Round(time.Millisecond), converged.Round(time.Millisecond), (converged - created).Round(time.Millisecond),
		converged.Seconds()/floor.Seconds(), floor.Round(time.Millisecond),
		cpu.Round(time.Millisecond), float64(baseRSS)/(1<<20), float64(rss)/(1<<20), float64(peak)/(1<<20), ready.rewatchCount(), testutil.LoadAverage())
	b.Logf("CPU until all Ready: control plane (etcd, kube-apiserver) %v (the floor's: %v), the %d pluginhost processes %v",
		cpCPU.Round(time.Millisecond), floorCP.Round(time.Millisecond), hosts, hostsCPU.Round(time.Millisecond))
	b.Logf("API writes during the run, as the API server counts them (the Plugins' creates taken out): %.0f: %s", writes.total(), writes)
	// The work behind the writes: reconciles, as the manager counts them (its process
	// started with this run).
	var reconciles []string
	for _, ctl := range []string{"pluginhost", "plugin"} {
		total := mgr.metricSum(b, "controller_runtime_reconcile_total", map[string]string{"controller": ctl})
		b.ReportMetric(total, "reconciles:"+ctl)
		reconciles = append(reconciles, fmt.Sprintf("%s %.0f", ctl, total))
	}
	b.Logf("reconciles until idle: %s", strings.Join(reconciles, ", "))

	if os.Getenv("SCALE_RESTART") != "0" {
		scaleRestart(b, mgr, ns, c)
	}
}

// scaleRestart stops the manager over the converged Plugins, starts a new one, waits until
// it is idle (every startup reconcile done) and counts the writes the API server saw
// meanwhile; then edits one Plugin and times Plugin edit → Ready.
func scaleRestart(b *testing.B, old *scaleManager, ns string, c client.WithWatch) {
	old.stop()
	writes0 := readAPIWrites(b)
	start := time.Now()
	mgr := startScaleManager(b, ns)
	synced := time.Since(start)
	idle := &idleProbe{sum: mgr.metricSum, depth0: map[string]float64{}}
	testutil.Eventually(b, 5*time.Minute, "the restarted manager to be idle", func() error { return idle.idle(b) })
	drained := time.Since(start)
	writes := readAPIWrites(b).sub(writes0)
	// The API server's own leases are not the manager's.
	ours := writes.of(operatorResources)

	// Watched from the list's resourceVersion, not the Plugin's own: that one is as old as
	// the Plugin's last write, which etcd may have compacted away in a long run (410).
	byName := client.MatchingFieldsSelector{Selector: fields.OneTermEqualSelector("metadata.name", "p00000")}
	list := &v1alpha1.PluginList{}
	if err := c.List(context.Background(), list, client.InNamespace(ns), byName); err != nil || len(list.Items) != 1 {
		b.Fatalf("listing the Plugin to edit: %d found, %v", len(list.Items), err)
	}
	p := &list.Items[0]
	watchFrom := func(rv string) watch.Interface {
		w, err := c.Watch(context.Background(), &v1alpha1.PluginList{}, client.InNamespace(ns), byName,
			&client.ListOptions{Raw: &metav1.ListOptions{ResourceVersion: rv}})
		if err != nil {
			b.Fatal(err)
		}
		return w
	}
	rv := list.ResourceVersion
	w := watchFrom(rv)
	defer func() { w.Stop() }()
	patch := client.RawPatch(types.MergePatchType, []byte(`{"spec":{"options":{"increment":424242}}}`))
	if err := c.Patch(context.Background(), p, patch); err != nil {
		b.Fatal(err)
	}
	edited := time.Now()
	gen := p.Generation
	deadline := time.After(wait)
	for done := false; !done; {
		select {
		case ev, ok := <-w.ResultChan():
			if !ok { // the API server ended the watch: again from the last event
				w = watchFrom(rv)
				continue
			}
			q, isPlugin := ev.Object.(*v1alpha1.Plugin)
			if !isPlugin {
				b.Fatalf("watching the edited Plugin: %v", ev.Object)
			}
			rv = q.ResourceVersion
			done = q.Generation == gen && pluginReadyCondition(q)
		case <-deadline:
			b.Fatalf("the edited Plugin was not Ready after %v", wait)
		}
	}
	editReady := time.Since(edited)
	b.ReportMetric(ours.total(), "restart-writes")
	b.ReportMetric(drained.Seconds(), "restart-idle-s")
	b.ReportMetric(ms(editReady), "restart-edit-ready-ms")
	b.Logf("restart: caches synced %v after the start, idle after %v, writing %.0f (%s); then Plugin edit → Ready %v; load %s",
		synced.Round(time.Millisecond), drained.Round(time.Millisecond), ours.total(), ours, editReady.Round(time.Millisecond), testutil.LoadAverage())
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

// procStat reads a process's command, parent and user plus system CPU time from
// /proc/<pid>/stat; ok is false when it cannot.
func procStat(pid int) (comm string, ppid int, cpu time.Duration, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return "", 0, 0, false
	}
	// The command name, in parentheses, may contain spaces: fields start after it.
	s := string(b)
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return "", 0, 0, false
	}
	fields := strings.Fields(s[closing+1:])
	if len(fields) < 13 {
		return "", 0, 0, false
	}
	ppid, _ = strconv.Atoi(fields[1])
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return s[open+1 : closing], ppid, time.Duration(utime+stime) * time.Second / 100, true // USER_HZ
}

// procCPU reads the user and system CPU time a process has used.
func procCPU(pid int) time.Duration {
	_, _, cpu, _ := procStat(pid)
	return cpu
}

// controlPlane are the commands of envtest's control plane.
var controlPlane = []string{"etcd", "kube-apiserver"}

// childrenCPU is the CPU time of this process's children whose command is one of names:
// the envtest control plane (etcd, kube-apiserver) or the pluginhost processes.
func childrenCPU(names ...string) time.Duration {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0
	}
	self := os.Getpid()
	var sum time.Duration
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if comm, ppid, cpu, ok := procStat(pid); ok && ppid == self && slices.Contains(names, comm) {
			sum += cpu
		}
	}
	return sum
}

// profileAPIServer writes a CPU profile of the envtest kube-apiserver (its /debug/pprof, as
// an administrator) over d to file.
func profileAPIServer(b *testing.B, file string, d time.Duration) {
	rc, err := rest.HTTPClientFor(env.Config)
	if err != nil {
		b.Error(err)
		return
	}
	rc.Timeout = d + 30*time.Second
	resp, err := rc.Get(fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", strings.TrimSuffix(env.Config.Host, "/"), int(d.Seconds())))
	if err != nil {
		b.Errorf("profiling the API server: %v", err)
		return
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err == nil {
		err = os.WriteFile(file, body, 0o644)
	}
	if err != nil {
		b.Errorf("profiling the API server: %v", err)
	}
}
