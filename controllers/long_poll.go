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

package controllers

import (
	"context"
	"net/http"
	"net/url"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/controller-runtime/pkg/event"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

const (
	// longPollWait is the wait= of a long-poll of a pod's /status (the runtime caps it at 30s).
	longPollWait = 10 * time.Second
	// maxLongPolls bounds the long-polls in flight, over all hosts. They do not take the
	// statusReader's slots, which the reconciles' own reads need; a pod beyond the bound is
	// read at the periodic pace only.
	maxLongPolls = 64
)

// longPoller learns that a pod applied a revision as soon as it does: while a pod awaits
// the desired revision, it holds GET /status?after=<the pod's last reported
// revision>&wait=10s to it (the runtime answers when its revision or reload error changes)
// and, when the answer differs, sends the host to the reconciler through events. The
// periodic requeue stays the fallback: a runtime without the long-poll answers at once with
// the same document, and that pod is not long-polled again before the next poll period.
type longPoller struct {
	reader *statusReader
	client *http.Client
	wait   time.Duration
	// retry is how soon a long-poll that ended without news (error, or an early answer
	// unchanged) may be sent again to the same pod for the same revision.
	retry  time.Duration
	events chan event.GenericEvent
	slots  chan struct{}

	mu    sync.Mutex
	ctx   context.Context // nil until Start, done once the manager stops
	hosts map[types.NamespacedName]map[types.UID]*podPoll
	// supported are the pods whose runtime answered a long-poll as one (hostapi.LongPollHeader).
	supported map[types.UID]struct{}
}

// maxSupported bounds longPoller.supported; beyond it, it starts again empty.
const maxSupported = 1 << 14

// podPoll is one pod's long-poll: in flight until idleSince is set.
type podPoll struct {
	uid               types.UID
	addr, after, want string
	cancel            context.CancelFunc
	idleSince         time.Time
}

// awaitedPod is a running pod that has not applied want; after is its last reported revision.
type awaitedPod struct {
	uid               types.UID
	addr, after, want string
}

func newLongPoller(reader *statusReader, statusTimeout, retry time.Duration) *longPoller {
	return &longPoller{
		reader: reader, client: newStatusClient(longPollWait + statusTimeout), wait: longPollWait, retry: retry,
		events: make(chan event.GenericEvent, 256), slots: make(chan struct{}, maxLongPolls),
		hosts: map[types.NamespacedName]map[types.UID]*podPoll{}, supported: map[types.UID]struct{}{},
	}
}

// Start runs until the manager stops, then ends every long-poll.
func (p *longPoller) Start(ctx context.Context) error {
	p.mu.Lock()
	p.ctx = ctx
	p.mu.Unlock()
	<-ctx.Done()
	p.mu.Lock()
	defer p.mu.Unlock()
	for key, pods := range p.hosts {
		for _, pp := range pods {
			pp.cancel()
		}
		delete(p.hosts, key)
	}
	return nil
}

// awaited lists the running pods of a reconcile that can be long-polled: answered, neither
// applied nor refused the desired revision.
func awaited(rc *hostReconcile) []awaitedPod {
	desired := rc.host.Status.ConfigRevision
	if desired == "" {
		return nil
	}
	var out []awaitedPod
	for i, pod := range rc.running {
		if i >= len(rc.results) {
			break
		}
		st := rc.results[i].status
		if rc.results[i].err != nil || st == nil || st.Revision == desired || st.LastError != "" && st.LastErrorRevision == desired {
			continue
		}
		addr, err := podAddress(pod)
		if err != nil {
			continue
		}
		out = append(out, awaitedPod{uid: pod.UID, addr: addr, after: st.Revision, want: desired})
	}
	return out
}

// sync makes the host's long-polls those of pods: it ends those of pods no longer awaited
// and starts the missing ones. covered reports that every pod has a long-poll in flight to
// a runtime known to serve it: the manager hears of an apply without reading again.
func (p *longPoller) sync(key types.NamespacedName, pods []awaitedPod) (covered bool) {
	if p == nil {
		return false
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ctx == nil || p.ctx.Err() != nil {
		return false
	}
	covered = len(pods) > 0
	cur := p.hosts[key]
	next := make(map[types.UID]*podPoll, len(pods))
	now := time.Now()
	for _, ap := range pods {
		if pp := cur[ap.uid]; pp != nil && pp.addr == ap.addr && pp.after == ap.after && pp.want == ap.want &&
			(pp.idleSince.IsZero() || now.Sub(pp.idleSince) < p.retry) {
			next[ap.uid] = pp
			if _, ok := p.supported[ap.uid]; !ok || !pp.idleSince.IsZero() {
				covered = false
			}
			continue
		}
		select {
		case p.slots <- struct{}{}:
		default:
			covered = false
			continue // over the bound: the periodic read covers this pod
		}
		if _, ok := p.supported[ap.uid]; !ok {
			covered = false
		}
		ctx, cancel := context.WithCancel(p.ctx)
		pp := &podPoll{uid: ap.uid, addr: ap.addr, after: ap.after, want: ap.want, cancel: cancel}
		next[ap.uid] = pp
		go p.run(ctx, key, pp)
	}
	for uid, pp := range cur {
		if next[uid] != pp {
			pp.cancel()
		}
	}
	if len(next) == 0 {
		delete(p.hosts, key)
	} else {
		p.hosts[key] = next
	}
	return covered
}

// forget ends the host's long-polls.
func (p *longPoller) forget(key types.NamespacedName) { _ = p.sync(key, nil) }

// run long-polls one pod until its answer differs, it ends without news, or ctx ends.
func (p *longPoller) run(ctx context.Context, key types.NamespacedName, pp *podPoll) {
	defer func() { <-p.slots }()
	query := "?after=" + url.QueryEscape(pp.after) + "&wait=" + p.wait.String()
	for {
		start := time.Now()
		st, served, err := p.reader.get(ctx, p.client, pp.addr, query)
		if ctx.Err() != nil {
			return
		}
		if served {
			p.mu.Lock()
			if len(p.supported) >= maxSupported {
				clear(p.supported)
			}
			p.supported[pp.uid] = struct{}{}
			p.mu.Unlock()
		}
		if err == nil && (st.Revision != pp.after || st.LastError != "" && st.LastErrorRevision == pp.want) {
			// News: the host is reconciled now, and its next reconcile decides what follows,
			// reading this reply rather than asking the pod again.
			p.reader.keep(pp.uid, pp.addr, st, time.Now())
			p.idle(pp)
			obj := &v1alpha1.PluginHost{ObjectMeta: metav1.ObjectMeta{Namespace: key.Namespace, Name: key.Name}}
			select {
			case p.events <- event.GenericEvent{Object: obj}:
			case <-ctx.Done():
			}
			return
		}
		if err != nil || time.Since(start) < p.wait/2 {
			// No long-poll there (an older runtime answers at once) or no answer: the
			// periodic read goes on, and this pod is not asked again before p.retry.
			p.idle(pp)
			return
		}
		// Held for the whole wait with nothing new: ask again.
	}
}

func (p *longPoller) idle(pp *podPoll) {
	p.mu.Lock()
	pp.idleSince = time.Now()
	p.mu.Unlock()
}
