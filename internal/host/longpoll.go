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

package host

import (
	"fmt"
	"net/http"
	"time"

	"github.com/hotreload/plugin-operator/internal/hostapi"
)

// Long-poll of GET /status: ?after=<revision>&wait=<duration> answers at once when the applied
// revision differs from <revision>, and otherwise when the applied revision or the last reload
// error changes, or when wait has passed; the answer is the /status document either way.
const (
	// MaxStatusWait bounds the wait parameter.
	MaxStatusWait = 30 * time.Second
	// MaxStatusWaiters bounds the long-polls held at once; beyond it /status answers at once.
	MaxStatusWaiters = 16
	// LongPollHeader is set on the answers to a long-poll.
	LongPollHeader = hostapi.LongPollHeader
)

// statusWait parses ?after= and ?wait=: both or neither.
func statusWait(r *http.Request) (after string, wait time.Duration, longPoll bool, err error) {
	q := r.URL.Query()
	afters, hasAfter := q["after"]
	waits, hasWait := q["wait"]
	if !hasAfter && !hasWait {
		return "", 0, false, nil
	}
	if !hasAfter || !hasWait {
		return "", 0, false, fmt.Errorf("/status takes after=<revision> and wait=<duration> together (a long-poll), or neither")
	}
	if len(afters) != 1 || len(waits) != 1 {
		return "", 0, false, fmt.Errorf("/status takes after= and wait= once each")
	}
	after = afters[0]
	if len(after) > 128 {
		return "", 0, false, fmt.Errorf("after=: a revision is at most 128 bytes (sha256:<64 hex>, or empty for none)")
	}
	wait, err = time.ParseDuration(waits[0])
	if err != nil || wait <= 0 || wait > MaxStatusWait {
		return "", 0, false, fmt.Errorf("wait=%q: want a Go duration greater than 0 and at most %v (e.g. 10s)", waits[0], MaxStatusWait)
	}
	return after, wait, true, nil
}

func (h *Host) serveStatus(w http.ResponseWriter, r *http.Request) {
	after, wait, longPoll, err := statusWait(r)
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	if longPoll {
		h.awaitStatus(r, after, wait)
		// Tells the caller that this runtime serves the long-poll (an older one ignores the
		// parameters and answers at once without it).
		w.Header().Set(LongPollHeader, "1")
	}
	writeJSON(w, http.StatusOK, h.Status())
}

// awaitStatus returns when the applied revision differs from after, when it or the last
// reload error changes, when wait has passed, the client has gone or the host drains; at
// once when MaxStatusWaiters long-polls are already held.
func (h *Host) awaitStatus(r *http.Request, after string, wait time.Duration) {
	h.statusMu.Lock()
	changed := h.statusChanged
	h.statusMu.Unlock()
	// The channel is taken before the revision is read: a reload committed after the read
	// closes it.
	if g := h.current.Load(); g != nil && g.revision != after || g == nil && after != "" {
		return
	}
	if h.statusWaiters.Add(1) > MaxStatusWaiters {
		h.statusWaiters.Add(-1)
		return
	}
	defer h.statusWaiters.Add(-1)
	select {
	case h.awaited <- struct{}{}:
	default:
	}
	t := time.NewTimer(wait)
	defer t.Stop()
	select {
	case <-changed:
	case <-t.C:
	case <-r.Context().Done():
	case <-h.drained:
	}
}
