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

package localcluster

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/internal/testing/kubeletsim"
)

// Kubelet's timing for a container that exits: restart at once the first time, then back
// off 10 s, doubling up to 5 min; a container that ran 10 min resets the back-off.
const (
	restartBackoffInitial = 10 * time.Second
	restartBackoffMax     = 5 * time.Minute
	restartBackoffReset   = 10 * time.Minute
	// defaultGracePeriod is a pod's terminationGracePeriodSeconds default.
	defaultGracePeriod = 30 * time.Second
	// firstProbeInterval is how often readiness is probed until the first success (kubelet
	// waits periodSeconds between probes; starting faster makes tests and the demo quick).
	firstProbeInterval = 50 * time.Millisecond
	// LogFileName is the file in a pod's directory that receives the process's output.
	LogFileName = "pluginhost.log"
)

// Host describes the process that runs a PluginHost's pod.
type Host struct {
	// Namespace and Name are the PluginHost's (the value of the plugins.hotreload.io/host label).
	Namespace, Name string
	// Pod is the name of the pod.
	Pod string
	// URL is where the process serves the plugins' API: http://127.0.0.1:<port>.
	URL string
	// OpsURL is where it serves /status, /plugins and /metrics: the pod's port "ops" (its
	// --ops-addr), or URL when the pod has none.
	OpsURL string
	// PID is the process id of the running process (0 while it is down).
	PID int
	// Restarts is the container's restartCount.
	Restarts int32
	// Ready is the last readiness probe result.
	Ready bool
	// Dir is the pod's directory: config/, secrets/, state/, tmp/ and the log.
	Dir string
	// Log is the file that receives the process's stdout and stderr.
	Log string
}

// hostPod is one pod of a Deployment, run on this machine: its projected volumes (kubeletsim),
// its container as a local process, restarted when it exits, and its readiness probe.
type hostPod struct {
	deployment types.NamespacedName
	host       string
	pod        *corev1.Pod
	hash       string
	port       int32
	dir        string
	vols       []localVolume
	proc       process
	binary     string
	grace      time.Duration
	probe      *corev1.Probe
	syncPeriod time.Duration
	// c reads and writes the API directly (the Sims need fresh reads and a watch).
	c client.WithWatch
	// log is the pod's logger; volumeLog the agent's, for kubeletsim (which names the pod).
	log, volumeLog logr.Logger
	onReady        func(Host)

	cancel   context.CancelFunc
	done     chan struct{}
	restarts chan chan error

	mu      sync.Mutex
	pid     int
	count   int32
	ready   bool
	waiters []chan struct{}
}

// info returns the pod's Host.
func (h *hostPod) info() Host {
	h.mu.Lock()
	defer h.mu.Unlock()
	url, opsURL := "http://"+kubeletsim.PodIP+":"+strconv.Itoa(int(h.port)), ""
	for _, p := range h.pod.Spec.Containers[0].Ports {
		if p.Name == opsPortName {
			opsURL = "http://" + kubeletsim.PodIP + ":" + strconv.Itoa(int(p.ContainerPort))
		}
	}
	if opsURL == "" {
		opsURL = url
	}
	return Host{
		Namespace: h.deployment.Namespace, Name: h.host, Pod: h.pod.Name, URL: url, OpsURL: opsURL,
		PID: h.pid, Restarts: h.count, Ready: h.ready, Dir: h.dir, Log: filepath.Join(h.dir, LogFileName),
	}
}

// start runs the pod until stop.
func (h *hostPod) start() {
	ctx, cancel := context.WithCancel(context.Background())
	h.cancel, h.done, h.restarts = cancel, make(chan struct{}), make(chan chan error)
	go func() {
		defer close(h.done)
		h.run(ctx)
	}()
}

// stop kills the process (SIGTERM, then SIGKILL after the grace period) and stops the
// volume syncs. It returns once everything has stopped.
func (h *hostPod) stop() {
	h.cancel()
	<-h.done
}

// restart replaces the process with a new one (restartCount + 1), as kubelet does when a
// container is killed, and returns once the new process is ready.
func (h *hostPod) restart(ctx context.Context) error {
	reply := make(chan error, 1)
	select {
	case h.restarts <- reply:
	case <-h.done:
		return errors.New("the pod has stopped")
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case err := <-reply:
		return err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// waitReady returns a channel closed at the next time the process is ready (at once if it
// is ready now).
func (h *hostPod) waitReady() <-chan struct{} {
	h.mu.Lock()
	defer h.mu.Unlock()
	ch := make(chan struct{})
	if h.ready {
		close(ch)
	} else {
		h.waiters = append(h.waiters, ch)
	}
	return ch
}

func (h *hostPod) run(ctx context.Context) {
	var wg sync.WaitGroup
	defer wg.Wait()
	simCtx, stopSims := context.WithCancel(ctx)
	defer stopSims()
	if !h.mountVolumes(simCtx, &wg) {
		return
	}

	backoff := time.Duration(0)
	for attempt := 0; ; attempt++ {
		if attempt > 0 {
			h.mu.Lock()
			h.count++
			h.mu.Unlock()
		}
		started := time.Now()
		exited, err := h.startProcess()
		if err != nil {
			h.log.Error(err, "Cannot start the container process", "retryIn", restartBackoffInitial)
			if !sleep(ctx, restartBackoffInitial) {
				return
			}
			continue
		}
		h.publish(ctx, false)
		probeCtx, stopProbe := context.WithCancel(ctx)
		probed := make(chan struct{})
		go func() { defer close(probed); h.probeReadiness(probeCtx) }()
		stopProbing := func() { stopProbe(); <-probed }

		select {
		case <-ctx.Done():
			stopProbing()
			h.kill(exited)
			return
		case reply := <-h.restarts:
			stopProbing()
			h.kill(exited)
			backoff = 0
			ready := h.waitReady() // registered while down: closed when the next process is ready
			go func() {
				select {
				case <-ready:
					reply <- nil
				case <-ctx.Done():
					reply <- errors.New("the pod stopped before the restarted process was ready")
				}
			}()
		case status := <-exited:
			stopProbing()
			h.setDown()
			ran := time.Since(started)
			h.log.Info("Container process exited; restarting it", "status", status, "ranFor", ran.Round(time.Millisecond), "backoff", backoff)
			h.publish(ctx, false)
			if ran > restartBackoffReset {
				backoff = 0
			}
			if backoff > 0 && !sleep(ctx, backoff) {
				return
			}
			backoff = min(max(2*backoff, restartBackoffInitial), restartBackoffMax)
		}
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

// mountVolumes creates the pod's directories and starts a kubeletsim.Sim per ConfigMap and
// Secret volume. Like kubelet, it waits until every volume has been projected once before
// the container starts; it returns false if ctx ends first.
func (h *hostPod) mountVolumes(ctx context.Context, wg *sync.WaitGroup) bool {
	var mounted []chan struct{}
	for _, v := range h.vols {
		if err := os.MkdirAll(v.dir, 0o755); err != nil {
			h.log.Error(err, "Cannot create volume directory", "volume", v.name)
		}
		if v.kind == volumeDir {
			continue
		}
		ch := make(chan struct{})
		mounted = append(mounted, ch)
		var once sync.Once
		cfg := kubeletsim.Config{
			Client: h.c, Namespace: h.pod.Namespace, PodName: h.pod.Name, Dir: v.dir, DefaultMode: v.mode,
			SyncPeriod: h.syncPeriod, Jitter: kubeletsim.DefaultJitter, Logger: h.volumeLog.WithValues("volume", v.name),
			OnSync: func(_ bool, err error) {
				if err == nil {
					once.Do(func() { close(ch) })
				}
			},
		}
		if v.kind == volumeSecret {
			cfg.SecretName = v.object
		} else {
			cfg.ConfigMapName = v.object
		}
		sim := kubeletsim.New(cfg)
		wg.Go(func() { _ = sim.Run(ctx) })
	}
	for _, ch := range mounted {
		select {
		case <-ch:
		case <-ctx.Done():
			return false
		}
	}
	return true
}

// startProcess starts the container's process; exited receives its exit status.
func (h *hostPod) startProcess() (<-chan string, error) {
	logFile, err := os.OpenFile(filepath.Join(h.dir, LogFileName), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	defer logFile.Close() // the child has its own descriptor
	cmd := exec.Command(h.binary, h.proc.args...)
	cmd.Dir = h.dir
	cmd.Env = h.proc.env
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = sysProcAttr()
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	h.mu.Lock()
	h.pid = cmd.Process.Pid
	h.mu.Unlock()
	h.log.Info("Started container process", "pid", cmd.Process.Pid, "args", h.proc.args)
	exited := make(chan string, 1)
	go func() {
		err := cmd.Wait()
		status := "exit status 0"
		if err != nil {
			status = err.Error()
		}
		exited <- status
	}()
	return exited, nil
}

// kill stops the process like kubelet stops a container: SIGTERM, then SIGKILL after the
// pod's termination grace period.
func (h *hostPod) kill(exited <-chan string) {
	h.mu.Lock()
	pid := h.pid
	h.mu.Unlock()
	if pid > 0 {
		_ = syscall.Kill(pid, syscall.SIGTERM)
	}
	select {
	case status := <-exited:
		h.log.Info("Container process stopped", "pid", pid, "status", status)
	case <-time.After(h.grace):
		_ = syscall.Kill(pid, syscall.SIGKILL)
		h.log.Info("Container process killed after the grace period", "pid", pid, "status", <-exited)
	}
	h.setDown()
}

func (h *hostPod) setDown() {
	h.mu.Lock()
	h.pid, h.ready = 0, false
	h.mu.Unlock()
}

// probeReadiness runs the container's readiness probe (an HTTP GET on the named port) until
// ctx ends: quickly until the first success, then every periodSeconds, turning not ready
// after failureThreshold failures in a row. Each change is published to the pod's status.
func (h *hostPod) probeReadiness(ctx context.Context) {
	period, threshold, timeout, path := 10*time.Second, 3, time.Second, "/readyz"
	if p := h.probe; p != nil {
		if p.PeriodSeconds > 0 {
			period = time.Duration(p.PeriodSeconds) * time.Second
		}
		if p.FailureThreshold > 0 {
			threshold = int(p.FailureThreshold)
		}
		if p.TimeoutSeconds > 0 {
			timeout = time.Duration(p.TimeoutSeconds) * time.Second
		}
		if p.HTTPGet != nil && p.HTTPGet.Path != "" {
			path = p.HTTPGet.Path
		}
	}
	hc := &http.Client{Timeout: timeout, Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true}}
	url := h.info().URL + path
	probe := func() bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false
		}
		resp, err := hc.Do(req)
		if err != nil {
			return false
		}
		_ = resp.Body.Close()
		return resp.StatusCode >= 200 && resp.StatusCode < 400
	}

	ready, failures := false, 0
	for {
		interval := period
		if !ready && failures == 0 {
			interval = firstProbeInterval
		}
		ok := probe()
		if ctx.Err() != nil {
			return
		}
		switch {
		case ok && !ready:
			ready, failures = true, 0
			h.setReady(ctx, true)
		case ok:
			failures = 0
		case ready:
			if failures++; failures >= threshold {
				ready, failures = false, 0
				h.log.Info("Readiness probe failed; the pod is not ready", "failures", threshold)
				h.setReady(ctx, false)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(interval):
		}
	}
}

// setReady records and publishes a readiness change. A host turning ready is handed to
// onReady before anything else can see it ready (Host, WaitForHost, the pod's status), so
// whoever observes a ready host also finds it already reported to onReady.
func (h *hostPod) setReady(ctx context.Context, ready bool) {
	if ready && h.onReady != nil {
		info := h.info()
		info.Ready = true
		h.onReady(info)
	}
	h.mu.Lock()
	h.ready = ready
	h.mu.Unlock()
	h.publish(ctx, ready)
	if !ready {
		return
	}
	h.mu.Lock()
	waiters := h.waiters
	h.waiters = nil
	h.mu.Unlock()
	for _, ch := range waiters {
		close(ch)
	}
}

// publish writes the pod's status as kubelet would (kubeletsim.MarkPodRunning).
func (h *hostPod) publish(ctx context.Context, ready bool) {
	h.mu.Lock()
	count := h.count
	h.mu.Unlock()
	pod := &corev1.Pod{}
	pod.Namespace, pod.Name = h.pod.Namespace, h.pod.Name
	if err := kubeletsim.MarkPodRunning(ctx, h.c, pod, ready, count); err != nil && ctx.Err() == nil {
		h.log.Error(err, "Cannot update the pod's status")
	}
}

func (h *hostPod) String() string {
	return fmt.Sprintf("%s/%s", h.pod.Namespace, h.pod.Name)
}
