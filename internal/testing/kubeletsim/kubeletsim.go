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

// Package kubeletsim stands in for kubelet's ConfigMap- and Secret-volume sync in local
// end-to-end tests and `make demo`, where an API server runs (envtest) but no kubelet does.
// It keeps a local directory projected from one ConfigMap or one Secret with
// projection.Writer (kubelet's AtomicWriter sequence) and with kubelet's timing, and it can
// publish the Pod status a kubelet would (running, ready, PodIP) so that the manager sees a
// live pod. A pod with several such volumes runs one Sim per volume; each follows the pod,
// so a pod update re-projects all of them, as one kubelet pod sync does.
//
// # Timing, as kubelet v1.37 does it
//
//   - A semantic change of the Pod — spec, labels, annotations, deletionTimestamp or
//     deletionGracePeriodSeconds (kubelet's podsDifferSemantically) — makes kubelet sync the
//     pod now, which remounts (re-projects) its ConfigMap volumes. This is why the manager
//     bumps a pod annotation after changing the ConfigMap. A status-only change (for
//     example MarkRunning) is a "reconcile" for kubelet and does not re-project.
//   - Otherwise the pod worker re-syncs every syncFrequency (60 s) jittered by up to +50 %
//     (wait.Jitter(resyncInterval, 0.5): 60–90 s). After a failed sync it retries after
//     10 s (backOffPeriod, capped at the sync period). The periodic timer restarts after
//     every sync, whatever triggered it, and only runs once the pod has been seen.
//   - Each sync reads the ConfigMap (or Secret) fresh (a GET; kubelet reads its watch-based
//     cache, which is as fresh) and projects every data and binaryData key (a Secret's data
//     keys) with the volume's defaultMode (0644 unless set). If the object is missing or
//     unreadable the last projection stays in place (kubelet keeps the old content of a
//     mounted volume) and the error goes to OnSync and the log.
//
// # Pod status and ports
//
// Every simulated pod's IP is 127.0.0.1 (PodIP), so pods are told apart by port: a test
// puts the local port its pluginhost process listens on in the pod spec, as the
// containerPort of a container port named "http" (HTTPPortName), and the manager reaches
// a pod at status.podIP + that named port (HTTPAddr shows the rule). MarkPodRunning
// writes phase Running, the IPs, the pod conditions and a containerStatuses entry per
// container through the status subresource. Nothing here binds the pod to a node
// (spec.nodeName); there is no scheduler either.
package kubeletsim

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"time"

	"github.com/go-logr/logr"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	"github.com/hotreload/plugin-operator/internal/testing/projection"
)

const (
	// DefaultSyncPeriod is kubelet's default syncFrequency.
	DefaultSyncPeriod = 60 * time.Second
	// DefaultJitter is kubelet's workerResyncIntervalJitterFactor: a sync period of 60 s
	// becomes 60–90 s.
	DefaultJitter = 0.5
	// ErrorBackoff is kubelet's backOffPeriod: the retry delay after a failed sync
	// (capped at the sync period).
	ErrorBackoff = 10 * time.Second
	// DefaultPodPollInterval is how often the Pod is polled when the client cannot watch.
	DefaultPodPollInterval = time.Second
	// PodIP is the IP every simulated pod reports: they all run on this machine.
	PodIP = "127.0.0.1"
	// HTTPPortName is the name of the container port that holds a pod's local HTTP port.
	HTTPPortName = "http"

	watchRetryDelay = time.Second
)

// Config configures a Sim.
type Config struct {
	// Client reads the ConfigMap and the Pod. If it implements client.WithWatch
	// (client.NewWithWatch), the Pod is watched; otherwise it is polled every
	// PodPollInterval. Use a direct (uncached) client for fresh reads.
	Client client.Client
	// Namespace, PodName and ConfigMapName name the pod and the ConfigMap projected for it.
	Namespace, PodName, ConfigMapName string
	// SecretName, set instead of ConfigMapName, projects that Secret (a secret volume).
	SecretName string
	// DefaultMode is the mode of the projected files, the volume's defaultMode. Zero means
	// 0644, kubelet's default for ConfigMap and Secret volumes.
	DefaultMode os.FileMode
	// Dir is the volume's directory (created if missing).
	Dir string
	// SyncPeriod is the periodic re-sync interval. Zero means kubelet's defaults:
	// DefaultSyncPeriod with DefaultJitter (unless Jitter is set).
	SyncPeriod time.Duration
	// Jitter stretches each period by a random fraction in [0, Jitter). Zero with an
	// explicit SyncPeriod means no jitter; negative means no jitter.
	Jitter float64
	// PodPollInterval applies only to a client without Watch; zero means
	// DefaultPodPollInterval.
	PodPollInterval time.Duration
	// Logger receives progress and errors; the zero Logger discards.
	Logger logr.Logger
	// OnSync, if set, is called after every sync attempt with whether the directory
	// changed and the error, if any (a missing ConfigMap is an error; the old projection
	// is kept).
	OnSync func(changed bool, err error)
}

// Sim keeps Config.Dir projected from the ConfigMap like kubelet does for a pod's volume.
type Sim struct {
	cfg    Config
	writer *projection.Writer
	syncMu sync.Mutex
}

// New returns a Sim for cfg, with defaults filled in. It does not touch the API server
// or the directory; call Run (or SyncNow).
func New(cfg Config) *Sim {
	if cfg.SyncPeriod <= 0 {
		cfg.SyncPeriod = DefaultSyncPeriod
		if cfg.Jitter == 0 {
			cfg.Jitter = DefaultJitter
		}
	}
	if cfg.Jitter < 0 {
		cfg.Jitter = 0
	}
	if cfg.PodPollInterval <= 0 {
		cfg.PodPollInterval = DefaultPodPollInterval
	}
	if cfg.DefaultMode == 0 {
		cfg.DefaultMode = projection.DefaultMode
	}
	if cfg.SecretName != "" {
		cfg.Logger = cfg.Logger.WithValues("namespace", cfg.Namespace, "pod", cfg.PodName, "secret", cfg.SecretName)
	} else {
		cfg.Logger = cfg.Logger.WithValues("namespace", cfg.Namespace, "pod", cfg.PodName, "configMap", cfg.ConfigMapName)
	}
	return &Sim{cfg: cfg, writer: projection.NewWriter(cfg.Dir)}
}

// Config returns the effective configuration (defaults filled in).
func (s *Sim) Config() Config { return s.cfg }

// Writer returns the projection writer of the volume directory, for fault injection
// (hooks, WriteRaw, Remove) in tests.
func (s *Sim) Writer() *projection.Writer { return s.writer }

// Run blocks until ctx is done, keeping the directory projected: it syncs when the Pod is
// first seen, at each semantic change of the Pod, and every SyncPeriod (jittered) after
// the last sync. It returns nil when ctx is cancelled.
func (s *Sim) Run(ctx context.Context) error {
	if s.cfg.Client == nil {
		return errors.New("kubeletsim: Config.Client is nil")
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	podChanged := make(chan struct{}, 1)
	notify := func() {
		select {
		case podChanged <- struct{}{}:
		default:
		}
	}
	var wg sync.WaitGroup
	defer wg.Wait()
	wg.Go(func() { s.followPod(ctx, notify) })

	var timer *time.Timer
	var tick <-chan time.Time
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		reason := "pod changed"
		select {
		case <-ctx.Done():
			return nil
		case <-podChanged:
		case <-tick:
			reason = "periodic resync"
		}
		s.cfg.Logger.V(1).Info("syncing volume", "reason", reason)
		next := s.jittered(s.cfg.SyncPeriod)
		if err := s.SyncNow(ctx); err != nil {
			next = s.jittered(min(ErrorBackoff, s.cfg.SyncPeriod))
		}
		if timer == nil {
			timer = time.NewTimer(next)
			tick = timer.C
		} else {
			timer.Reset(next)
		}
	}
}

func (s *Sim) jittered(d time.Duration) time.Duration {
	if s.cfg.Jitter <= 0 {
		return d
	}
	return d + time.Duration(rand.Float64()*s.cfg.Jitter*float64(d))
}

// SyncNow reads the ConfigMap and projects all its data and binaryData keys (or the
// Secret's data keys), as one kubelet volume sync. If the object cannot be read the
// directory is left as it is.
// Calls are serialised. OnSync is called with the outcome.
func (s *Sim) SyncNow(ctx context.Context) error {
	s.syncMu.Lock()
	defer s.syncMu.Unlock()
	changed, err := s.syncLocked(ctx)
	if err != nil {
		s.cfg.Logger.Error(err, "volume sync failed; keeping the last projection")
	} else if changed {
		s.cfg.Logger.Info("volume projected", "dir", s.cfg.Dir)
	}
	if s.cfg.OnSync != nil {
		s.cfg.OnSync(changed, err)
	}
	return err
}

func (s *Sim) syncLocked(ctx context.Context) (bool, error) {
	if s.cfg.Client == nil {
		return false, errors.New("kubeletsim: Config.Client is nil")
	}
	files, err := s.read(ctx)
	if err != nil {
		return false, err
	}
	payload := make(map[string]projection.File, len(files))
	for k, v := range files {
		payload[k] = projection.File{Data: v, Mode: s.cfg.DefaultMode}
	}
	return s.writer.WriteFiles(payload)
}

// read returns the keys of the ConfigMap or Secret, as kubelet's volume plugins do.
func (s *Sim) read(ctx context.Context) (map[string][]byte, error) {
	if s.cfg.SecretName != "" {
		secret := &corev1.Secret{}
		key := client.ObjectKey{Namespace: s.cfg.Namespace, Name: s.cfg.SecretName}
		if err := s.cfg.Client.Get(ctx, key, secret); err != nil {
			return nil, fmt.Errorf("couldn't get secret %s: %w", key, err)
		}
		return secret.Data, nil
	}
	cm := &corev1.ConfigMap{}
	key := client.ObjectKey{Namespace: s.cfg.Namespace, Name: s.cfg.ConfigMapName}
	if err := s.cfg.Client.Get(ctx, key, cm); err != nil {
		return nil, fmt.Errorf("couldn't get configMap %s: %w", key, err)
	}
	files := make(map[string][]byte, len(cm.Data)+len(cm.BinaryData))
	for k, v := range cm.Data {
		files[k] = []byte(v)
	}
	for k, v := range cm.BinaryData {
		files[k] = v
	}
	return files, nil
}

// MarkRunning publishes this Sim's pod as running (see MarkPodRunning).
func (s *Sim) MarkRunning(ctx context.Context, ready bool, restartCount int32) error {
	pod := &corev1.Pod{ObjectMeta: metav1.ObjectMeta{Namespace: s.cfg.Namespace, Name: s.cfg.PodName}}
	return MarkPodRunning(ctx, s.cfg.Client, pod, ready, restartCount)
}

// followPod calls notify when the Pod is first seen and at each semantic change.
func (s *Sim) followPod(ctx context.Context, notify func()) {
	var last *corev1.Pod
	observe := func(pod *corev1.Pod) {
		if last == nil || podsDifferSemantically(last, pod) {
			notify()
		}
		last = pod
	}
	gone := func() {
		if last != nil {
			s.cfg.Logger.Info("pod deleted; keeping the volume as it is")
		}
		last = nil
	}
	if wc, ok := s.cfg.Client.(client.WithWatch); ok {
		s.watchPod(ctx, wc, observe, gone)
		return
	}
	_ = wait.PollUntilContextCancel(ctx, s.cfg.PodPollInterval, true, func(ctx context.Context) (bool, error) {
		pod := &corev1.Pod{}
		err := s.cfg.Client.Get(ctx, client.ObjectKey{Namespace: s.cfg.Namespace, Name: s.cfg.PodName}, pod)
		switch {
		case err == nil:
			observe(pod)
		case apierrors.IsNotFound(err):
			gone()
		case ctx.Err() == nil:
			s.cfg.Logger.Error(err, "getting pod")
		}
		return false, nil
	})
}

// watchPod lists then watches the single pod (field selector metadata.name), relisting
// whenever the watch ends or fails.
func (s *Sim) watchPod(ctx context.Context, wc client.WithWatch, observe func(*corev1.Pod), gone func()) {
	opts := []client.ListOption{
		client.InNamespace(s.cfg.Namespace),
		client.MatchingFields{"metadata.name": s.cfg.PodName},
	}
	sleep := func() bool {
		select {
		case <-ctx.Done():
			return false
		case <-time.After(watchRetryDelay):
			return true
		}
	}
	for ctx.Err() == nil {
		list := &corev1.PodList{}
		if err := wc.List(ctx, list, opts...); err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Error(err, "listing pod")
			}
			if !sleep() {
				return
			}
			continue
		}
		if len(list.Items) > 0 {
			observe(&list.Items[0])
		} else {
			gone()
		}
		w, err := wc.Watch(ctx, &corev1.PodList{}, append(opts, &client.ListOptions{Raw: &metav1.ListOptions{
			ResourceVersion: list.ResourceVersion,
		}})...)
		if err != nil {
			if ctx.Err() == nil {
				s.cfg.Logger.Error(err, "watching pod")
			}
			if !sleep() {
				return
			}
			continue
		}
		s.consume(ctx, w, observe, gone)
		w.Stop()
	}
}

func (s *Sim) consume(ctx context.Context, w watch.Interface, observe func(*corev1.Pod), gone func()) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-w.ResultChan():
			if !ok {
				return
			}
			switch ev.Type {
			case watch.Added, watch.Modified:
				if pod, ok := ev.Object.(*corev1.Pod); ok {
					observe(pod)
				}
			case watch.Deleted:
				gone()
			case watch.Error:
				s.cfg.Logger.V(1).Info("pod watch error; relisting", "error", apierrors.FromObject(ev.Object))
				return
			}
		}
	}
}

// podsDifferSemantically is kubelet's test (pkg/kubelet/config): a pod update triggers a
// sync only if one of these changed. Kubelet's own local annotations
// (kubernetes.io/config.*) are not in API objects, so all annotations count here.
func podsDifferSemantically(a, b *corev1.Pod) bool {
	return !equality.Semantic.DeepEqual(a.Spec, b.Spec) ||
		!mapsEqual(a.Labels, b.Labels) ||
		!mapsEqual(a.Annotations, b.Annotations) ||
		!equality.Semantic.DeepEqual(a.DeletionTimestamp, b.DeletionTimestamp) ||
		!equality.Semantic.DeepEqual(a.DeletionGracePeriodSeconds, b.DeletionGracePeriodSeconds)
}

func mapsEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// MarkPodRunning sets pod's status the way kubelet reports a started pod, through the
// status subresource: phase Running, hostIP/podIP 127.0.0.1 (PodIP), startTime, the
// conditions PodReadyToStartContainers, Initialized and PodScheduled true and
// ContainersReady and Ready = ready, and for each spec container a containerStatuses
// entry (running, started, Ready = ready, RestartCount = restartCount; when restartCount
// grows, the running state restarts now and lastState records a terminated run).
// Transition times change only when a condition's status changes. It re-reads the pod
// and retries on conflicts; on success pod holds the updated object.
func MarkPodRunning(ctx context.Context, c client.Client, pod *corev1.Pod, ready bool, restartCount int32) error {
	if c == nil {
		return errors.New("kubeletsim: nil client")
	}
	key := client.ObjectKeyFromObject(pod)
	backoff := wait.Backoff{Steps: 10, Duration: 10 * time.Millisecond, Factor: 2, Jitter: 0.1}
	return retry.RetryOnConflict(backoff, func() error {
		cur := &corev1.Pod{}
		if err := c.Get(ctx, key, cur); err != nil {
			return err
		}
		setRunningStatus(cur, ready, restartCount, metav1.Now())
		if err := c.Status().Update(ctx, cur); err != nil {
			return err
		}
		cur.DeepCopyInto(pod)
		return nil
	})
}

func setRunningStatus(pod *corev1.Pod, ready bool, restartCount int32, now metav1.Time) {
	st := &pod.Status
	st.Phase = corev1.PodRunning
	st.HostIP = PodIP
	st.HostIPs = []corev1.HostIP{{IP: PodIP}}
	st.PodIP = PodIP
	st.PodIPs = []corev1.PodIP{{IP: PodIP}}
	if st.StartTime == nil {
		st.StartTime = &now
	}
	readyStatus := corev1.ConditionFalse
	if ready {
		readyStatus = corev1.ConditionTrue
	}
	for _, c := range []struct {
		t corev1.PodConditionType
		s corev1.ConditionStatus
	}{
		{corev1.PodReadyToStartContainers, corev1.ConditionTrue},
		{corev1.PodInitialized, corev1.ConditionTrue},
		{corev1.ContainersReady, readyStatus},
		{corev1.PodReady, readyStatus},
		{corev1.PodScheduled, corev1.ConditionTrue},
	} {
		setCondition(st, c.t, c.s, now)
	}

	prev := map[string]corev1.ContainerStatus{}
	for _, cs := range st.ContainerStatuses {
		prev[cs.Name] = cs
	}
	started := true
	statuses := make([]corev1.ContainerStatus, 0, len(pod.Spec.Containers))
	for _, c := range pod.Spec.Containers {
		old, had := prev[c.Name]
		startedAt := now
		if had && old.State.Running != nil && old.RestartCount == restartCount {
			startedAt = old.State.Running.StartedAt
		}
		cs := corev1.ContainerStatus{
			Name:         c.Name,
			Image:        c.Image,
			ImageID:      "kubeletsim://" + c.Image,
			ContainerID:  "kubeletsim://" + pod.Name + "/" + c.Name + "/" + strconv.Itoa(int(restartCount)),
			Ready:        ready,
			RestartCount: restartCount,
			Started:      &started,
			State:        corev1.ContainerState{Running: &corev1.ContainerStateRunning{StartedAt: startedAt}},
		}
		switch {
		case had && old.RestartCount == restartCount:
			cs.LastTerminationState = old.LastTerminationState
		case restartCount > 0:
			prevStart := now
			if had && old.State.Running != nil {
				prevStart = old.State.Running.StartedAt
			}
			cs.LastTerminationState = corev1.ContainerState{Terminated: &corev1.ContainerStateTerminated{
				ExitCode: 1, Reason: "Error", StartedAt: prevStart, FinishedAt: now,
			}}
		}
		statuses = append(statuses, cs)
	}
	st.ContainerStatuses = statuses
}

func setCondition(st *corev1.PodStatus, t corev1.PodConditionType, s corev1.ConditionStatus, now metav1.Time) {
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != s {
			c.Status = s
			c.LastTransitionTime = now
		}
		c.LastProbeTime = metav1.Time{}
		if t == corev1.PodReady || t == corev1.ContainersReady {
			c.Reason, c.Message = "", ""
			if s != corev1.ConditionTrue {
				c.Reason = "ContainersNotReady"
			}
		}
		return
	}
	c := corev1.PodCondition{Type: t, Status: s, LastTransitionTime: now}
	if (t == corev1.PodReady || t == corev1.ContainersReady) && s != corev1.ConditionTrue {
		c.Reason = "ContainersNotReady"
	}
	st.Conditions = append(st.Conditions, c)
}

// HTTPAddr returns host:port where a simulated pod serves HTTP: status.podIP and the
// containerPort of the first container port named HTTPPortName ("http") — the rule the
// manager follows to reach a pod's /status.
func HTTPAddr(pod *corev1.Pod) (string, error) {
	if pod.Status.PodIP == "" {
		return "", fmt.Errorf("pod %s/%s has no status.podIP yet", pod.Namespace, pod.Name)
	}
	for _, c := range pod.Spec.Containers {
		for _, p := range c.Ports {
			if p.Name == HTTPPortName {
				return net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(p.ContainerPort))), nil
			}
		}
	}
	return "", fmt.Errorf("pod %s/%s has no container port named %q", pod.Namespace, pod.Name, HTTPPortName)
}
