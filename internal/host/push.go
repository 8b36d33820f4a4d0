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
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"

	"github.com/hotreload/plugin-operator/internal/hostapi"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// Results of PUT /config (pluginhost_config_pushes_total).
const (
	PushApplied      = "applied"
	PushUnchanged    = "unchanged"
	PushStale        = "stale"
	PushRefused      = "refused"
	PushUnauthorized = "unauthorized"
	PushInvalid      = "invalid"
	PushUnavailable  = "unavailable"
)

// servePush serves PUT /config: config bytes pushed with their delivery sequence
// (hostapi.SequenceHeader) and the bearer token of Options.PushTokenFile. The operator
// pushes what it rendered to a pod as soon as it wrote the ConfigMap, so the change applies
// without waiting for kubelet to project the volume (up to a second with the pod nudge,
// a minute or more without). The projection stays the durable copy: a pod that restarts
// reads it, and the same bytes arriving through it later change nothing. A pushed config
// that does not apply is answered 422 and not recorded as refused: the projection brings
// the same bytes and decides (they may need credential files kubelet has not projected yet).
func (h *Host) servePush(w http.ResponseWriter, r *http.Request) {
	status, result := h.push(w, r)
	h.opts.Metrics.pushed(result)
	if status >= 400 && status != http.StatusUnauthorized {
		h.log.Debug("Config push not applied", "status", status, "result", result)
	}
}

func (h *Host) push(w http.ResponseWriter, r *http.Request) (int, string) {
	if r.Method != http.MethodPut {
		w.Header().Set("Allow", http.MethodPut)
		return writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s takes PUT (config bytes, with the %s header and a bearer token), not %s", hostapi.ConfigPath, hostapi.SequenceHeader, r.Method)), PushInvalid
	}
	if h.opts.PushTokenFile == "" {
		return writeError(w, http.StatusForbidden, "config push is off: this pluginhost was started without --push-token-file"), PushUnauthorized
	}
	want, err := readPushToken(h.opts.PushTokenFile)
	if err != nil {
		return writeError(w, http.StatusServiceUnavailable, err.Error()), PushUnavailable
	}
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok || !sameToken(got, want) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="pluginhost config push"`)
		return writeError(w, http.StatusUnauthorized, "config push needs the bearer token of --push-token-file"), PushUnauthorized
	}
	seq, err := strconv.ParseUint(r.Header.Get(hostapi.SequenceHeader), 10, 64)
	if err != nil || seq == 0 {
		return writeError(w, http.StatusBadRequest, fmt.Sprintf("the %s header must hold the config's delivery sequence, a positive decimal number", hostapi.SequenceHeader)), PushInvalid
	}
	if !h.Ready() {
		// The first config comes from the file, after the saved state is restored: a config
		// pushed before would start its plugins without their state.
		return writeError(w, http.StatusServiceUnavailable, "no configuration applied yet (or draining): the first one is read from the config file"), PushUnavailable
	}
	if r.ContentLength > pluginconfig.MaxConfigBytes {
		return writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("config is %d bytes, over the %d-byte limit", r.ContentLength, pluginconfig.MaxConfigBytes)), PushInvalid
	}
	data, err := readAtMost(nil, r.Body, pluginconfig.MaxConfigBytes)
	switch {
	case errors.Is(err, errTooLarge):
		return writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("config is over the %d-byte limit", pluginconfig.MaxConfigBytes)), PushInvalid
	case err != nil:
		return writeError(w, http.StatusRequestTimeout, fmt.Sprintf("reading the config: %v", err)), PushInvalid
	}
	res, err := h.ApplySequenced(data, seq, true)
	if stale := (*StaleError)(nil); errors.As(err, &stale) {
		return writeError(w, http.StatusConflict, fmt.Sprintf("%v: a newer config is applied", err)), PushStale
	}
	if err != nil {
		return writeError(w, http.StatusUnprocessableEntity, fmt.Sprintf("the config does not apply, and the last good one keeps serving; the config file decides when kubelet projects it: %v", err)), PushRefused
	}
	out := hostapi.PushResult{Revision: res.Revision, Sequence: h.Sequence(), Unchanged: res.Unchanged}
	result := PushUnchanged
	if !res.Unchanged {
		out.PreviousRevision, result = res.PreviousRevision, PushApplied
		h.log.Info("Config pushed and applied", "revision", pluginconfig.ShortRevision(res.Revision), "sequence", seq,
			"added", res.Added, "removed", res.Removed, "changed", res.Changed)
		h.opts.Metrics.changeApplied(NoticedByPush)
	}
	if r.Header.Get(hostapi.PushStatusHeader) == "1" {
		// After the apply, which appended its audit record: the status the pusher would read.
		st := h.Status()
		out.Status = &st
	}
	writeJSON(w, http.StatusOK, out)
	return http.StatusOK, result
}

// readPushToken reads the push token file: read at each push, so that a rotated token (a
// Secret kubelet projects anew) takes effect at once.
func readPushToken(path string) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config push is unavailable: cannot read the push token file: %v", err)
	}
	b = bytes.TrimSpace(b)
	if len(b) == 0 {
		return nil, fmt.Errorf("config push is unavailable: the push token file %s is empty", path)
	}
	return b, nil
}

// sameToken compares in constant time; hashing first hides the token's length too.
func sameToken(got string, want []byte) bool {
	a, b := sha256.Sum256([]byte(got)), sha256.Sum256(want)
	return subtle.ConstantTimeCompare(a[:], b[:]) == 1
}
