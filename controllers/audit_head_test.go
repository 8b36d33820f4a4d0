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
	"strings"
	"testing"

	"k8s.io/utils/ptr"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/hostapi"
)

func TestAuditHeadFromStatus(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	for _, tc := range []struct {
		name string
		in   *hostapi.AuditStatus
		want *v1alpha1.AuditHead
	}{
		{"none", nil, nil},
		{"verified", &hostapi.AuditStatus{Chain: "p-0.1f", Sequence: 7, Head: hash, Verified: true},
			&v1alpha1.AuditHead{ChainID: "p-0.1f", Sequence: 7, Hash: hash, Verified: true}},
		{"broken", &hostapi.AuditStatus{Chain: "p-0.1f", Sequence: 9, Head: hash, Broken: &hostapi.AuditBreak{Sequence: 3, Kind: "edited", Reason: "hash mismatch"}},
			&v1alpha1.AuditHead{ChainID: "p-0.1f", Sequence: 9, Hash: hash, BrokenAt: ptr.To[int64](3), BrokenReason: "edited: hash mismatch"}},
		// A pod's reply is untrusted: what the API server would refuse is left out.
		{"hash not hex", &hostapi.AuditStatus{Chain: "c", Sequence: 1, Head: strings.Repeat("z", 64)}, nil},
		{"chain too long", &hostapi.AuditStatus{Chain: strings.Repeat("c", 129), Sequence: 1, Head: hash}, nil},
		{"no trail", &hostapi.AuditStatus{Path: "/state/audit.jsonl", LastError: "permission denied"}, nil},
		{"sequence over int64", &hostapi.AuditStatus{Chain: "c", Sequence: 1 << 63, Head: hash}, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := auditHead(tc.in)
			if (got == nil) != (tc.want == nil) || got != nil && (got.ChainID != tc.want.ChainID || got.Sequence != tc.want.Sequence ||
				got.Hash != tc.want.Hash || got.Verified != tc.want.Verified || got.BrokenReason != tc.want.BrokenReason ||
				(got.BrokenAt == nil) != (tc.want.BrokenAt == nil) || got.BrokenAt != nil && *got.BrokenAt != *tc.want.BrokenAt) {
				t.Fatalf("auditHead = %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestAuditRegression(t *testing.T) {
	h := func(chain string, seq int64, hash string) *v1alpha1.AuditHead {
		return &v1alpha1.AuditHead{ChainID: chain, Sequence: seq, Hash: strings.Repeat(hash, 64)}
	}
	for _, tc := range []struct {
		name      string
		prev, cur *v1alpha1.AuditHead
		want      string
	}{
		{"first read", nil, h("a", 3, "1"), ""},
		{"moved on", h("a", 3, "1"), h("a", 5, "2"), ""},
		{"unchanged", h("a", 3, "1"), h("a", 3, "1"), ""},
		{"new chain (new pod storage)", h("a", 9, "1"), h("b", 1, "2"), ""},
		{"cut", h("a", 9, "1"), h("a", 4, "2"), "went back from sequence 9 to 4: records were cut"},
		{"rewritten", h("a", 9, "1"), h("a", 9, "2"), "record 9 of audit chain a changed its hash"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := auditRegression(tc.prev, tc.cur)
			if tc.want == "" && got != "" || tc.want != "" && !strings.Contains(got, tc.want) {
				t.Fatalf("auditRegression = %q, want %q", got, tc.want)
			}
		})
	}
	broken := h("a", 9, "1")
	broken.BrokenAt = ptr.To[int64](4)
	if !newAuditBreak(h("a", 8, "1"), broken) || newAuditBreak(broken, broken) || newAuditBreak(nil, h("a", 1, "1")) {
		t.Fatal("newAuditBreak: want true for a break first seen, false for one seen before or none")
	}
}
