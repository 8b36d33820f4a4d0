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
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/types"

	"github.com/hotreload/plugin-operator/internal/hostapi"
)

// DefaultMaxStatusBytes bounds a /status reply (--max-status-bytes). A host with a thousand
// plugins answers about 150 KiB; whatever a pod sends beyond the bound is never read.
const DefaultMaxStatusBytes = 256 << 10

// maxResponseHeaderBytes bounds a /status reply's headers (Go's default is 1 MiB).
const maxResponseHeaderBytes = 16 << 10

// statusReader reads the runtime's GET /status from host pods. A pod's reply is untrusted
// input: it is bounded in time (timeout), size (maxBytes, headers included) and place (no
// redirect is followed). The requests in flight are bounded by slots, shared by all
// reconciles, and each readAll (one host) uses at most perHost of them, so that slow pods of
// one host cannot hold the slots the other hosts' reconciles need.
type statusReader struct {
	client   *http.Client
	slots    chan struct{}
	perHost  int
	maxBytes int64

	// fresh are replies of long-polls that brought news, by pod UID, each kept for the
	// reconcile it triggers: that reconcile reads it rather than asking the pod again a
	// moment later, which put a round trip between a pod's apply and the status that makes
	// its Plugins Ready.
	mu    sync.Mutex
	fresh map[types.UID]freshReply
}

// freshReply is a pod's /status reply from addr, received at.
type freshReply struct {
	addr   string
	status *hostapi.Status
	at     time.Time
}

// freshFor is how long a kept reply stands for a read of the pod: about the time between a
// long-poll's news and the reconcile it triggers, on a busy manager.
const freshFor = time.Second

// keep records a reply that a long-poll received from the pod uid at addr.
func (s *statusReader) keep(uid types.UID, addr string, st *hostapi.Status, at time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.fresh == nil || len(s.fresh) >= maxSupported {
		s.fresh = map[types.UID]freshReply{}
	}
	s.fresh[uid] = freshReply{addr: addr, status: st, at: at}
}

// take returns, once, the reply kept for the pod uid at addr if it is younger than freshFor.
func (s *statusReader) take(uid types.UID, addr string, now time.Time) (*hostapi.Status, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f, ok := s.fresh[uid]
	if !ok {
		return nil, false
	}
	delete(s.fresh, uid)
	if f.addr != addr || now.Sub(f.at) > freshFor {
		return nil, false
	}
	return f.status, true
}

// news takes, for each of pods, the reply a long-poll received since the pod was last read
// (nil where there is none).
func (s *statusReader) news(pods []*corev1.Pod) []*hostapi.Status {
	now := time.Now()
	out := make([]*hostapi.Status, len(pods))
	for i, pod := range pods {
		if addr, err := podAddress(pod); err == nil {
			out[i], _ = s.take(pod.UID, addr, now)
		}
	}
	return out
}

// newStatusReader returns a reader with maxConcurrent requests in flight in all, shared
// equally by the workers (reconciles that may run at once): each gets at least one.
func newStatusReader(timeout time.Duration, maxConcurrent, workers int, maxBytes int64) *statusReader {
	maxConcurrent = max(maxConcurrent, 1)
	workers = max(workers, 1)
	if maxBytes <= 0 {
		maxBytes = DefaultMaxStatusBytes
	}
	return &statusReader{
		client:   newStatusClient(timeout),
		slots:    make(chan struct{}, maxConcurrent),
		perHost:  max(maxConcurrent/workers, 1),
		maxBytes: maxBytes,
	}
}

// newStatusClient is an HTTP client for pods' /status: no proxy, no redirect, bounded
// headers, each request within timeout.
func newStatusClient(timeout time.Duration) *http.Client {
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // pod IPs are never reached through a proxy
	transport.MaxIdleConnsPerHost = 1
	transport.IdleConnTimeout = 90 * time.Second
	transport.MaxResponseHeaderBytes = maxResponseHeaderBytes
	return &http.Client{
		Timeout: timeout, Transport: transport,
		// A redirect would send the manager wherever the pod wants, inside the cluster's
		// network; a 3xx is reported as an error instead.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// podAddress is where a pod serves the runtime's /status: status.podIP and the containerPort
// of the first container's port named "ops", or "http" in pods rendered before the
// operational endpoints had a port of their own.
func podAddress(pod *corev1.Pod) (string, error) {
	if pod.Status.PodIP == "" {
		return "", errors.New("pod has no IP yet")
	}
	if len(pod.Spec.Containers) == 0 {
		return "", errors.New("pod has no container")
	}
	for _, name := range []string{OpsPortName, HTTPPortName} {
		for _, p := range pod.Spec.Containers[0].Ports {
			if p.Name == name {
				return net.JoinHostPort(pod.Status.PodIP, strconv.Itoa(int(p.ContainerPort))), nil
			}
		}
	}
	return "", fmt.Errorf("container %q has no port named %q or %q", pod.Spec.Containers[0].Name, OpsPortName, HTTPPortName)
}

// podRunning reports whether a pod can be asked for its status: running, with an IP, and
// not being deleted.
func podRunning(pod *corev1.Pod) bool {
	return pod.DeletionTimestamp.IsZero() && pod.Status.Phase == corev1.PodRunning && pod.Status.PodIP != ""
}

// podReady reports the pod's Ready condition.
func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// read fetches one pod's /status.
func (s *statusReader) read(ctx context.Context, pod *corev1.Pod) (*hostapi.Status, error) {
	addr, err := podAddress(pod)
	if err != nil {
		return nil, err
	}
	if st, ok := s.take(pod.UID, addr, time.Now()); ok {
		return st, nil
	}
	return s.readFrom(ctx, addr)
}

// readFresh fetches one pod's /status from the pod, never from what a long-poll kept.
func (s *statusReader) readFresh(ctx context.Context, pod *corev1.Pod) (*hostapi.Status, error) {
	addr, err := podAddress(pod)
	if err != nil {
		return nil, err
	}
	return s.readFrom(ctx, addr)
}

// readFrom sends GET /status to addr within the reader's bound on requests in flight.
func (s *statusReader) readFrom(ctx context.Context, addr string) (*hostapi.Status, error) {
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	st, _, err := s.get(ctx, s.client, addr, "")
	return st, err
}

// get sends GET /status<query> to addr with client and checks the reply; longPoll reports
// the runtime's hostapi.LongPollHeader.
func (s *statusReader) get(ctx context.Context, client *http.Client, addr, query string) (_ *hostapi.Status, longPoll bool, _ error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status"+query, nil)
	if err != nil {
		return nil, false, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		return nil, false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		// The body is not read: closing it drops the connection.
		return nil, false, fmt.Errorf("GET http://%s/status: HTTP %d", addr, resp.StatusCode)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, s.maxBytes+1))
	if err != nil {
		return nil, false, fmt.Errorf("reading http://%s/status: %w", addr, err)
	}
	if int64(len(body)) > s.maxBytes {
		return nil, false, fmt.Errorf("GET http://%s/status: the reply is over %d bytes (--max-status-bytes); not read", addr, s.maxBytes)
	}
	st := &hostapi.Status{}
	if err := json.Unmarshal(body, st); err != nil {
		return nil, false, fmt.Errorf("decoding http://%s/status: %w", addr, err)
	}
	if err := checkStatus(st); err != nil {
		return nil, false, fmt.Errorf("GET http://%s/status: %w", addr, err)
	}
	return st, resp.Header.Get(hostapi.LongPollHeader) == "1", nil
}

// checkStatus checks what the operator takes from a pod's status document as it is: the
// revisions, which it compares and reports.
func checkStatus(st *hostapi.Status) error {
	for name, rev := range map[string]string{"revision": st.Revision, "lastErrorRevision": st.LastErrorRevision} {
		if rev != "" && !validRevision(rev) {
			return fmt.Errorf("%s is not a sha256: revision", name)
		}
	}
	return nil
}

// probeResult is one pod's answer.
type probeResult struct {
	status *hostapi.Status
	err    error
}

// readAll reads the /status of a host's pods, at most perHost at a time (and within the
// shared bound); results are in the order of pods.
func (s *statusReader) readAll(ctx context.Context, pods []*corev1.Pod) []probeResult {
	out := make([]probeResult, len(pods))
	next := make(chan int)
	var wg sync.WaitGroup
	for range min(s.perHost, len(pods)) {
		wg.Go(func() {
			for i := range next {
				st, err := s.read(ctx, pods[i])
				out[i] = probeResult{status: st, err: err}
			}
		})
	}
	for i := range pods {
		next <- i
	}
	close(next)
	wg.Wait()
	return out
}
