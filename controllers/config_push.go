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
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// Config push: the manager hands each running pod of a host the configuration it just
// wrote to <host>-config (PUT /config on the pod's operational port, docs/pluginhost.md),
// so the pod serves it without waiting for kubelet to project the volume. Kubelet syncs a
// pod's volumes only when it syncs the pod, and a pod synced less than a second before waits
// for the next relist of its PLEG (docs/performance.md, "The status handoff"): edits in
// quick succession were served up to a second apart. The ConfigMap stays the durable copy:
// a pod that restarts reads it, and the pushed bytes, projected later, change nothing.
//
// Each rendered configuration carries a delivery sequence (the ConfigMap's key
// config.json.sequence, mirrored in ConfigSequenceAnnotation for the manager's
// metadata-only cache): the runtime does not apply a configuration older than one it
// applied, pushed or projected, but for a projected file that stays behind a push for
// longer than host.PushLeadLimit (the ConfigMap is the source of truth).

// ConfigSequenceKey is the key of <host>-config that holds the configuration's delivery
// sequence: the runtime reads it beside config.json (host.SequencePath).
const ConfigSequenceKey = ConfigFileName + ".sequence"

// ConfigSequenceAnnotation on <host>-config is its delivery sequence, and
// v1alpha1.ConfigRevisionAnnotation its configuration revision: what the manager reads from
// its cache, which holds the metadata of ConfigMaps only.
const ConfigSequenceAnnotation = "plugins.hotreload.io/config-sequence"

// PushTokenField is the key of <host>-credentials that holds the bearer token of the
// pods' PUT /config: derived from the host's revision key, so that it is as stable (a
// restarted manager computes the same) and reveals nothing of the key. Like the key, it is
// no credential (a Plugin's name cannot start with "_").
const PushTokenField = "_push-token"

// pushToken is the host's config push token: HMAC-SHA256 of a fixed label, keyed by the
// host's revision key.
func pushToken(revisionKey []byte) []byte {
	h := hmac.New(sha256.New, revisionKey)
	h.Write([]byte("plugin-operator config push v1"))
	return []byte(hex.EncodeToString(h.Sum(nil)))
}

// configSequences hands out delivery sequences, by host. A configuration keeps its
// sequence as long as its content does not change (a restarted manager reads it from the
// cached ConfigMap and writes nothing); new content gets a sequence above every one this
// manager or the ConfigMap shows, and not below the time in microseconds, so that another
// manager (after a failover, with a cache that may lag) still hands out higher ones.
type configSequences struct {
	mu   sync.Mutex
	last map[types.NamespacedName]renderedSequence
}

type renderedSequence struct {
	uid      types.UID
	revision string
	sequence uint64
}

// next returns the sequence of revision rev for host, given the ConfigMap's cached metadata
// (nil if none).
func (s *configSequences) next(host *v1alpha1.PluginHost, rev string, live *metav1.PartialObjectMetadata, now time.Time) uint64 {
	key := types.NamespacedName{Namespace: host.Namespace, Name: host.Name}
	s.mu.Lock()
	defer s.mu.Unlock()
	var liveSeq uint64
	liveRev := ""
	if live != nil {
		liveSeq, _ = strconv.ParseUint(live.Annotations[ConfigSequenceAnnotation], 10, 64)
		liveRev = live.Annotations[v1alpha1.ConfigRevisionAnnotation]
	}
	last, ok := s.last[key]
	if ok && last.uid != host.UID {
		ok = false
	}
	switch {
	case ok && last.revision == rev:
		return last.sequence
	case !ok && liveSeq > 0 && liveRev == rev:
		return liveSeq
	}
	seq := max(liveSeq+1, uint64(now.UnixMicro()))
	if ok {
		seq = max(seq, last.sequence+1)
	}
	return seq
}

// rendered remembers the sequence of the configuration just applied to host's ConfigMap.
func (s *configSequences) rendered(host *v1alpha1.PluginHost, rev string, seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.last == nil {
		s.last = map[types.NamespacedName]renderedSequence{}
	}
	s.last[types.NamespacedName{Namespace: host.Namespace, Name: host.Name}] = renderedSequence{uid: host.UID, revision: rev, sequence: seq}
}

func (s *configSequences) forget(host types.NamespacedName) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.last, host)
}

// configPush is the configuration a reconcile applied to the host's ConfigMap, to push.
type configPush struct {
	data     []byte
	revision string
	sequence uint64
}

// applyConfigMap applies <host>-config with data and its delivery sequence, keeps what to
// push to the pods, and returns data's revision.
func (r *PluginHostReconciler) applyConfigMap(ctx context.Context, rc *hostReconcile, data []byte) (string, error) {
	host := rc.host
	rev := pluginconfig.Revision(data)
	live := &metav1.PartialObjectMetadata{}
	live.SetGroupVersionKind(corev1.SchemeGroupVersion.WithKind("ConfigMap"))
	if err := r.applier.cache.Get(ctx, types.NamespacedName{Namespace: host.Namespace, Name: configMapName(host)}, live); err != nil {
		live = nil // none yet, or not in the cache: a new sequence
	}
	seq := r.sequences.next(host, rev, live, time.Now())
	if err := r.applier.apply(ctx, renderConfigMap(host, data, rev, seq)); err != nil {
		return "", err
	}
	r.sequences.rendered(host, rev, seq)
	rc.push = &configPush{data: data, revision: rev, sequence: seq}
	return rev, nil
}

// Results of a config push (plugin_operator_config_pushes_total).
const (
	pushApplied   = "applied"
	pushUnchanged = "unchanged"
	pushStale     = "stale"
	pushRefused   = "refused"
	// pushUnsupported: the pod's runtime has no config push, or it is off there (404, 403).
	pushUnsupported = "unsupported"
	pushFailed      = "failed"
)

var configPushes = prometheus.NewCounterVec(prometheus.CounterOpts{
	Name: "plugin_operator_config_pushes_total",
	Help: "Configurations pushed to host pods (PUT /config), by result: applied, unchanged (the pod had it), " +
		"stale (the pod applied a newer one), refused (it does not apply; the projected file decides), " +
		"unsupported (the pod's runtime has no config push, or it is off there) or failed (no answer, or an unexpected one).",
}, []string{"result"})

// pushConfig pushes the configuration this reconcile applied to every running pod whose
// /status does not report it (nor a refusal of it), all at once, and takes the status of
// those that applied it from their answers (or from /status, for a runtime whose answer
// lacks it), so that this reconcile reports them. A push that fails changes nothing:
// kubelet's projection brings the same configuration.
func (r *PluginHostReconciler) pushConfig(ctx context.Context, rc *hostReconcile) {
	push := rc.push
	if !r.Options.ConfigPush || push == nil {
		return
	}
	key, err := r.revKeys.get(ctx, r.Client, rc.host)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot push the configuration: no push token; the pods read it from the ConfigMap")
		return
	}
	token := pushToken(key)
	var wg sync.WaitGroup
	for i, pod := range rc.running {
		st := rc.results[i].status
		if rc.results[i].err != nil || st == nil || st.Revision == push.revision || st.LastErrorRevision == push.revision {
			continue
		}
		wg.Go(func() {
			result, st, err := r.pusher.push(ctx, pod, push, token)
			configPushes.WithLabelValues(result).Inc()
			if err != nil {
				ctrl.LoggerFrom(ctx).V(1).Info("Config push not applied; the pod reads the configuration from the ConfigMap", "pod", klog.KObj(pod), "result", result, "error", err.Error())
				return
			}
			if st == nil {
				// A runtime that does not answer with its status (hostapi.PushStatusHeader).
				st, err = r.reader.readFresh(ctx, pod)
			}
			rc.results[i] = probeResult{status: st, err: err}
		})
	}
	wg.Wait()
}

// configPusher sends PUT /config to pods.
type configPusher struct {
	client *http.Client
	// maxBytes bounds an answer, which carries the pod's status (--max-status-bytes).
	maxBytes int64
}

func newConfigPusher(timeout time.Duration, maxBytes int64) *configPusher {
	if maxBytes <= 0 {
		maxBytes = DefaultMaxStatusBytes
	}
	return &configPusher{client: newStatusClient(timeout), maxBytes: maxBytes}
}

// push sends push to pod and returns the result's label and, when it applied (or had
// applied it), the pod's status as of the answer, nil from a runtime that does not answer
// with it; with an error unless it applied.
func (p *configPusher) push(ctx context.Context, pod *corev1.Pod, push *configPush, token []byte) (string, *hostapi.Status, error) {
	addr, err := podAddress(pod)
	if err != nil {
		return pushFailed, nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, "http://"+addr+hostapi.ConfigPath, bytes.NewReader(push.data))
	if err != nil {
		return pushFailed, nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+string(token))
	req.Header.Set(hostapi.SequenceHeader, strconv.FormatUint(push.sequence, 10))
	req.Header.Set(hostapi.PushStatusHeader, "1")
	resp, err := p.client.Do(req)
	if err != nil {
		return pushFailed, nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<10))
		return pushResultOf(resp.StatusCode), nil, fmt.Errorf("%s: %s", resp.Status, bytes.TrimSpace(body))
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, p.maxBytes+1))
	if err != nil {
		return pushFailed, nil, fmt.Errorf("reading the answer to a push of revision %s: %w", push.revision, err)
	}
	if int64(len(body)) > p.maxBytes {
		return pushFailed, nil, fmt.Errorf("the answer to a push of revision %s is over %d bytes (--max-status-bytes); not read", push.revision, p.maxBytes)
	}
	var res hostapi.PushResult
	if err := json.Unmarshal(body, &res); err != nil || res.Revision != push.revision {
		return pushFailed, nil, fmt.Errorf("unexpected answer to a push of revision %s: %.200q", push.revision, body)
	}
	if res.Status != nil {
		if err := checkStatus(res.Status); err != nil {
			return pushFailed, nil, fmt.Errorf("the answer to a push of revision %s: %w", push.revision, err)
		}
	}
	if res.Unchanged {
		return pushUnchanged, res.Status, nil
	}
	return pushApplied, res.Status, nil
}

// pushResultOf is the result's label of a push answered with status code other than 200.
func pushResultOf(code int) string {
	switch code {
	case http.StatusConflict:
		return pushStale
	case http.StatusUnprocessableEntity:
		return pushRefused
	case http.StatusNotFound, http.StatusForbidden:
		return pushUnsupported
	}
	return pushFailed
}
