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
	"fmt"
	"math"
	"regexp"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/hostapi"
)

// maxChainIDBytes bounds a pod's audit chain ID in the status (the CRD's MaxLength).
const maxChainIDBytes = 128

var auditHashPattern = regexp.MustCompile(`^[0-9a-f]{64}$`)

// auditHead is the pod's audit head as the PluginHost status keeps it, or nil when the pod
// reports none or one the API server would refuse (a pod's reply is untrusted: one bad
// field must not cost the whole status write).
func auditHead(a *hostapi.AuditStatus) *v1alpha1.AuditHead {
	if a == nil || a.Chain == "" || len(a.Chain) > maxChainIDBytes || !auditHashPattern.MatchString(a.Head) || a.Sequence > math.MaxInt64 {
		return nil
	}
	h := &v1alpha1.AuditHead{ChainID: a.Chain, Sequence: int64(a.Sequence), Hash: a.Head, Verified: a.Verified}
	if b := a.Broken; b != nil && b.Sequence <= math.MaxInt64 {
		seq := int64(b.Sequence)
		h.BrokenAt = &seq
		h.BrokenReason = truncateText(b.Kind+": "+b.Reason, MaxReportedTextBytes)
	}
	return h
}

// auditRegression says how a pod's audit head went backwards from prev to cur in the same
// chain ("" when it did not): a lower sequence (records cut), or another hash at the same
// sequence (a record rewritten). Another chain is a new trail, not a regression.
func auditRegression(prev, cur *v1alpha1.AuditHead) string {
	if prev == nil || cur == nil || prev.ChainID != cur.ChainID {
		return ""
	}
	switch {
	case cur.Sequence < prev.Sequence:
		return fmt.Sprintf("the head of audit chain %s went back from sequence %d to %d: records were cut", cur.ChainID, prev.Sequence, cur.Sequence)
	case cur.Sequence == prev.Sequence && cur.Hash != prev.Hash:
		return fmt.Sprintf("record %d of audit chain %s changed its hash from %s to %s: the trail was rewritten", cur.Sequence, cur.ChainID, prev.Hash[:12], cur.Hash[:12])
	}
	return ""
}

// newAuditBreak reports whether cur reports a break prev did not.
func newAuditBreak(prev, cur *v1alpha1.AuditHead) bool {
	if cur == nil || cur.BrokenAt == nil {
		return false
	}
	return prev == nil || prev.ChainID != cur.ChainID || prev.BrokenAt == nil || *prev.BrokenAt != *cur.BrokenAt
}
