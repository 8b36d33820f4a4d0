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

	"github.com/hotreload/plugin-operator/internal/hostapi"
)

// maxStatusBytes bounds a /status response; it lists every plugin of the host.
const maxStatusBytes = 16 << 20

// statusReader reads the runtime's GET /status from host pods, with a timeout per request and
// a bound on the requests in flight shared by all reconciles.
type statusReader struct {
	client *http.Client
	slots  chan struct{}
}

func newStatusReader(timeout time.Duration, maxConcurrent int) *statusReader {
	if maxConcurrent < 1 {
		maxConcurrent = 1
	}
	transport := http.DefaultTransport.(*http.Transport).Clone()
	transport.Proxy = nil // pod IPs are never reached through a proxy
	transport.MaxIdleConnsPerHost = 1
	transport.IdleConnTimeout = 90 * time.Second
	return &statusReader{
		client: &http.Client{Timeout: timeout, Transport: transport},
		slots:  make(chan struct{}, maxConcurrent),
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
	select {
	case s.slots <- struct{}{}:
		defer func() { <-s.slots }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+addr+"/status", nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
		return nil, fmt.Errorf("GET http://%s/status: %s", addr, resp.Status)
	}
	st := &hostapi.Status{}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxStatusBytes)).Decode(st); err != nil {
		return nil, fmt.Errorf("decoding http://%s/status: %w", addr, err)
	}
	return st, nil
}

// probeResult is one pod's answer.
type probeResult struct {
	status *hostapi.Status
	err    error
}

// readAll reads the /status of every pod concurrently (within the shared bound); results are
// in the order of pods.
func (s *statusReader) readAll(ctx context.Context, pods []*corev1.Pod) []probeResult {
	out := make([]probeResult, len(pods))
	var wg sync.WaitGroup
	for i, pod := range pods {
		wg.Go(func() {
			st, err := s.read(ctx, pod)
			out[i] = probeResult{status: st, err: err}
		})
	}
	wg.Wait()
	return out
}
