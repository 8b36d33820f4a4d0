//go:build e2e

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

package e2e

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/clientcmd"
	watchtools "k8s.io/client-go/tools/watch"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/controllers"
	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/internal/testing/testutil"
)

var (
	pluginsGVR     = v1alpha1.GroupVersion.WithResource("plugins")
	pluginHostsGVR = v1alpha1.GroupVersion.WithResource("pluginhosts")
)

// apiClients makes the client-go clients of the suite's kubeconfig: edits are written and
// their stages watched through them, so no kubectl start-up is in the figures.
func (s *suite) apiClients() {
	s.t.Helper()
	cfg, err := clientcmd.BuildConfigFromFlags("", s.kubeconfig)
	s.must(err)
	// The edits' watches and writes must not wait for client-side rate limiting.
	cfg.QPS, cfg.Burst = 200, 400
	s.kube, err = kubernetes.NewForConfig(cfg)
	s.must(err)
	s.dyn, err = dynamic.NewForConfig(cfg)
	s.must(err)
}

// event is a watched object with the time its event reached the test.
type event struct {
	at  time.Time
	obj runtime.Object
}

// eventLog keeps every Added or Modified event of one watch, in order.
type eventLog struct {
	what   string
	mu     sync.Mutex
	events []event
	// more is closed, and replaced, when an event is added or the watch ends.
	more  chan struct{}
	ended error
}

func (l *eventLog) add(obj runtime.Object) {
	at := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.events = append(l.events, event{at, obj})
	close(l.more)
	l.more = make(chan struct{})
}

func (l *eventLog) end(err error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.ended = err
	close(l.more)
	l.more = make(chan struct{})
}

// mark is the position of the next event.
func (l *eventLog) mark() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.events)
}

// await returns the first event from position from on that match accepts, waiting for it
// until timeout.
func (l *eventLog) await(ctx context.Context, from int, timeout time.Duration, match func(runtime.Object) bool) (event, error) {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	for {
		l.mu.Lock()
		for ; from < len(l.events); from++ {
			if match(l.events[from].obj) {
				ev := l.events[from]
				l.mu.Unlock()
				return ev, nil
			}
		}
		more, ended := l.more, l.ended
		l.mu.Unlock()
		if ended != nil {
			return event{}, fmt.Errorf("the watch of %s ended: %w", l.what, ended)
		}
		select {
		case <-more:
		case <-ctx.Done():
			return event{}, fmt.Errorf("%s: no matching event within %s", l.what, timeout)
		}
	}
}

// seen reports whether an event from position from on was accepted by match, without
// waiting.
func (l *eventLog) seen(from int, match func(runtime.Object) bool) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ev := range l.events[from:] {
		if match(ev.obj) {
			return true
		}
	}
	return false
}

// watchLog lists what listOpts selects, to learn the resource version to watch from, then
// watches it (a RetryWatcher, which resumes a closed watch from the last version seen)
// until ctx ends.
func (s *suite) watchLog(ctx context.Context, what string, listOpts metav1.ListOptions,
	list func(context.Context, metav1.ListOptions) (string, error),
	watchFn func(context.Context, metav1.ListOptions) (watch.Interface, error)) *eventLog {
	s.t.Helper()
	l := &eventLog{what: what, more: make(chan struct{})}
	rv, err := list(ctx, listOpts)
	s.must(err)
	rw, err := watchtools.NewRetryWatcherWithContext(ctx, rv, &cache.ListWatch{
		WatchFuncWithContext: func(ctx context.Context, o metav1.ListOptions) (watch.Interface, error) {
			o.LabelSelector, o.FieldSelector = listOpts.LabelSelector, listOpts.FieldSelector
			return watchFn(ctx, o)
		},
	})
	s.must(err)
	go func() {
		defer rw.Stop()
		for {
			select {
			case <-ctx.Done():
				l.end(ctx.Err())
				return
			case ev, ok := <-rw.ResultChan():
				if !ok {
					l.end(fmt.Errorf("result channel closed"))
					return
				}
				switch ev.Type {
				case watch.Added, watch.Modified:
					l.add(ev.Object)
				case watch.Error:
					l.end(fmt.Errorf("%v", ev.Object))
					return
				}
			}
		}
	}()
	return l
}

// editWatch records the objects an edit of a sample Plugin goes through, from before the
// edit: the host's ConfigMap, its pods, the PluginHost and the Plugin.
type editWatch struct {
	cm, pods, host, plugin *eventLog
	stop                   context.CancelFunc
}

type editMarks struct{ cm, pods, host, plugin int }

func (w *editWatch) mark() editMarks {
	return editMarks{w.cm.mark(), w.pods.mark(), w.host.mark(), w.plugin.mark()}
}

func (s *suite) startEditWatch(plugin string) *editWatch {
	s.t.Helper()
	ctx, cancel := context.WithCancel(s.ctx)
	ns := SamplesNamespace
	byName := func(name string) metav1.ListOptions {
		return metav1.ListOptions{FieldSelector: "metadata.name=" + name}
	}
	dynList := func(gvr schema.GroupVersionResource) func(context.Context, metav1.ListOptions) (string, error) {
		r := s.dyn.Resource(gvr).Namespace(ns)
		return func(ctx context.Context, o metav1.ListOptions) (string, error) {
			l, err := r.List(ctx, o)
			if err != nil {
				return "", err
			}
			return l.GetResourceVersion(), nil
		}
	}
	dynWatch := func(gvr schema.GroupVersionResource) func(context.Context, metav1.ListOptions) (watch.Interface, error) {
		return s.dyn.Resource(gvr).Namespace(ns).Watch
	}
	cms, pods := s.kube.CoreV1().ConfigMaps(ns), s.kube.CoreV1().Pods(ns)
	cmName := hostName + "-config"
	w := &editWatch{stop: cancel}
	w.cm = s.watchLog(ctx, "ConfigMap "+cmName, byName(cmName),
		func(ctx context.Context, o metav1.ListOptions) (string, error) {
			l, err := cms.List(ctx, o)
			if err != nil {
				return "", err
			}
			return l.ResourceVersion, nil
		}, cms.Watch)
	w.pods = s.watchLog(ctx, "the pods of PluginHost "+hostName, metav1.ListOptions{LabelSelector: v1alpha1.LabelHost + "=" + hostName},
		func(ctx context.Context, o metav1.ListOptions) (string, error) {
			l, err := pods.List(ctx, o)
			if err != nil {
				return "", err
			}
			return l.ResourceVersion, nil
		}, pods.Watch)
	w.host = s.watchLog(ctx, "PluginHost "+hostName, byName(hostName), dynList(pluginHostsGVR), dynWatch(pluginHostsGVR))
	w.plugin = s.watchLog(ctx, "Plugin "+plugin, byName(plugin), dynList(pluginsGVR), dynWatch(pluginsGVR))
	return w
}

// typed converts a watched object of the dynamic client into T.
func typed[T any](s *suite, obj runtime.Object) *T {
	var out T
	u, ok := obj.(*unstructured.Unstructured)
	if !ok {
		s.t.Errorf("a watch delivered %T, want *unstructured.Unstructured", obj)
		return &out
	}
	if err := runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &out); err != nil {
		s.t.Errorf("decoding %s: %v", u.GetName(), err)
	}
	return &out
}

type servedAnswer struct {
	at  time.Time
	st  *hostapi.Status
	err error
}

// awaitServed long-polls the host's /status from revision after on until the plugin is
// applied with increment.
func (s *suite) awaitServed(ctx context.Context, after, plugin string, increment int64) servedAnswer {
	for {
		st, err := s.client.AwaitStatus(ctx, after, 25*time.Second)
		if err != nil {
			return servedAnswer{err: err}
		}
		if got, ok := AppliedIncrement(st, plugin); ok && got == increment {
			return servedAnswer{at: time.Now(), st: st}
		}
		after = st.Revision
	}
}

// edit changes options.increment of a sample Plugin with client-go and times its stages
// (Stage) from the moment the patch is sent: the watches of w were started before it, the
// host's /status is long-polled from the revision it serves before the patch. Every stage
// must happen within reloadTimeout; the pod annotation only with the nudge, and the volume
// projection only where the test reads the node's files, and within projectionWait (it
// must happen when that is reloadTimeout).
func (s *suite) edit(w *editWatch, plugin string, increment int64, nudge bool, projectionWait time.Duration) EditTiming {
	s.t.Helper()
	e := EditTiming{Increment: increment}
	before, err := s.client.Status(s.ctx)
	s.must(err)
	marks := w.mark()
	ctx, cancel := context.WithTimeout(s.ctx, reloadTimeout)
	defer cancel()
	served := make(chan servedAnswer, 1)
	start := time.Now()
	go func() { served <- s.awaitServed(ctx, before.Revision, plugin, increment) }()
	patch := fmt.Appendf(nil, `{"spec":{"options":{"increment":%d}}}`, increment)
	patched, err := s.dyn.Resource(pluginsGVR).Namespace(SamplesNamespace).Patch(ctx, plugin, types.MergePatchType, patch, metav1.PatchOptions{})
	s.must(err)
	e.Set(StageWritten, time.Since(start))
	gen := patched.GetGeneration()

	ans := <-served
	if ans.err != nil {
		s.t.Fatalf("%s increment=%d: not served: %v", plugin, increment, ans.err)
	}
	e.Set(StageServed, ans.at.Sub(start))
	rev := ans.st.Revision
	e.Revision = rev
	if ans.st.AppliedAt == nil {
		s.t.Fatalf("the host's /status at %s has no appliedAt", rev)
	}
	e.Set(StageApplied, ans.st.AppliedAt.Sub(start)) // the pod's clock is this machine's

	stage := func(st Stage, l *eventLog, from int, match func(runtime.Object) bool) event {
		s.t.Helper()
		ev, err := l.await(ctx, from, reloadTimeout, match)
		if err != nil {
			s.t.Fatalf("%s increment=%d (%s): stage %q never happened: %v", plugin, increment, pluginconfig.ShortRevision(rev), st, err)
		}
		e.Set(st, ev.at.Sub(start))
		return ev
	}
	stage(StageConfigMap, w.cm, marks.cm, func(o runtime.Object) bool {
		cm := o.(*corev1.ConfigMap)
		return pluginconfig.Revision([]byte(cm.Data[controllers.ConfigFileName])) == rev
	})
	annotated := func(o runtime.Object) bool {
		p := o.(*corev1.Pod)
		return p.Name == s.hostBefore.name && p.Annotations[v1alpha1.ConfigRevisionAnnotation] == rev
	}
	if nudge {
		stage(StageAnnotated, w.pods, marks.pods, annotated)
	}
	ev := stage(StageStatusRead, w.host, marks.host, func(o runtime.Object) bool {
		for _, p := range typed[v1alpha1.PluginHost](s, o).Status.Pods {
			if p.Name == s.hostBefore.name && p.AppliedRevision == rev {
				return true
			}
		}
		return false
	})
	if desired := typed[v1alpha1.PluginHost](s, ev.obj).Status.ConfigRevision; desired != rev {
		s.t.Errorf("the PluginHost reports the pod at %s with configRevision %s", rev, desired)
	}
	stage(StageReady, w.plugin, marks.plugin, func(o runtime.Object) bool {
		p := typed[v1alpha1.Plugin](s, o)
		c := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionReady)
		return p.Generation == gen && c != nil && c.Status == metav1.ConditionTrue && c.ObservedGeneration == gen
	})
	// The manager pushes the configuration (PUT /config), so the pod may serve it before
	// kubelet projects the volume, the durable copy: the projection is awaited for up to
	// projectionWait and timed when it comes (kubelet projects only the latest ConfigMap, so
	// an edit followed at once by another may never be projected itself).
	if at, ok := s.awaitProjection(ctx, rev, projectionWait); ok {
		e.Set(StageProjected, at.Sub(start))
	} else if projectionWait >= reloadTimeout {
		s.t.Fatalf("%s increment=%d: kubelet never projected %s into the pod's volume", plugin, increment, pluginconfig.ShortRevision(rev))
	}
	if !nudge {
		// Everything above happened, so the pod events up to now are all the manager wrote.
		if w.pods.seen(marks.pods, annotated) {
			s.t.Errorf("pod nudge off, yet the pod was annotated with %s", rev)
		}
	}
	s.t.Logf("%s", e.String())
	return e
}

// awaitProjection polls the node's copy of the pod's config volume until it holds rev, for
// up to wait (once if wait is 0), and returns when kubelet swapped it in.
func (s *suite) awaitProjection(ctx context.Context, rev string, wait time.Duration) (time.Time, bool) {
	s.t.Helper()
	deadline := time.Now().Add(wait)
	for {
		at, ok, err := s.cluster.projectedAt(SamplesNamespace, s.hostBefore.uid, rev)
		switch {
		case errors.Is(err, errNoNodeFiles):
			return time.Time{}, false
		case err != nil:
			s.t.Fatalf("the projection of %s: %v", pluginconfig.ShortRevision(rev), err)
		case ok:
			return at, true
		case !time.Now().Before(deadline):
			return time.Time{}, false
		}
		select {
		case <-time.After(10 * time.Millisecond):
		case <-ctx.Done():
			return time.Time{}, false
		}
	}
}

// measureEdits changes counter-1's increment n times (to first, first+1, …), checks each
// change is counted with, and records the stages of each (edit) and the slowest edits. With
// a spacing, each edit starts that long after the previous one was Ready (a load model, like
// a user's pace: see EditSpacing); without, at once.
func (s *suite) measureEdits(n int, first int64, nudge bool, spacing time.Duration, label string) {
	s.t.Helper()
	if n == 0 {
		return
	}
	s.step("Change %s's increment %d times, %s", counter1, n, label)
	w := s.startEditWatch(counter1)
	defer w.stop()
	load := testutil.LoadAverage()
	var edits []EditTiming
	// The first edit is spaced too: from the series' start, after whatever came before it
	// (the back-to-back series, whose last edit kubelet has just synced).
	ready := time.Now()
	for i := range n {
		if spacing > 0 {
			select {
			case <-time.After(time.Until(ready.Add(spacing))):
			case <-s.ctx.Done():
				s.t.Fatal(s.ctx.Err())
			}
		}
		inc := first + int64(i)
		// Back to back, the next edit follows at once and the projection is timed only if
		// already there; spaced, it is awaited within the spacing; without the nudge (kubelet's
		// periodic sync), always.
		wait := spacing
		if !nudge {
			wait = reloadTimeout
		}
		edits = append(edits, s.edit(w, counter1, inc, nudge, wait))
		ready = time.Now()
		s.value += inc
		s.expectValue(s.client.Increment, counter1, 1, s.value)
	}
	s.checkHostUnchanged()
	s.result(label+": load average (`/proc/loadavg`) before → after the edits", load+" → "+testutil.LoadAverage())
	for _, r := range StageSummaries(label+": ", edits) {
		s.result(r[0], r[1])
	}
	for i, e := range Slowest(edits, StageServed, 3) {
		s.result(fmt.Sprintf("%s: slowest edit to served, #%d", label, i+1), e.String())
	}
}
