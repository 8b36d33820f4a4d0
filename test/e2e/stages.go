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
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// Stage is a step of a Plugin edit on its way from the API write to Ready, in the order
// they happen.
type Stage int

// The stages of an edit. Each is timed from the moment the test sent the patch.
const (
	// StageWritten: the patch's response arrived (the API write's round trip).
	StageWritten Stage = iota
	// StageConfigMap: <host>-config holds the new config (a watch event).
	StageConfigMap
	// StageAnnotated: the pod carries the new revision annotation, the nudge (a watch event).
	StageAnnotated
	// StageProjected: kubelet swapped the pod's ConfigMap volume to the new config (the
	// mtime of the volume's ..data link; only where the test can read the node's files).
	StageProjected
	// StageApplied: the host applied the revision (appliedAt of its /status).
	StageApplied
	// StageServed: the test's /status long-poll answered with the new value.
	StageServed
	// StageStatusRead: the PluginHost reports the pod at the revision, so the manager read
	// it (a watch event).
	StageStatusRead
	// StageReady: the Plugin is Ready for its new generation (a watch event).
	StageReady
	// NumStages counts the stages.
	NumStages
)

var stageNames = [NumStages]string{
	"API write returned (the patch's round trip)",
	"ConfigMap `<host>-config` written (watch)",
	"pod annotated with the revision, the nudge (watch)",
	"volume projected by kubelet (`..data` link's mtime)",
	"applied by the host (its /status `appliedAt`)",
	"served (the test's /status long-poll shows the new value)",
	"status read by the manager (PluginHost `status.pods[].appliedRevision`, watch)",
	"Plugin Ready for its generation (watch)",
}

var stageShort = [NumStages]string{"written", "configmap", "annotated", "projected", "applied", "served", "status-read", "ready"}

func (s Stage) String() string {
	if s < 0 || s >= NumStages {
		return fmt.Sprintf("Stage(%d)", int(s))
	}
	return stageShort[s]
}

// Interval is the time between two stages of the same edit: the part one component takes,
// for the edits that When (if set) holds for.
type Interval struct {
	Name     string
	From, To Stage
	When     func(e *EditTiming) bool
}

// Intervals are the parts reported besides the stages: each names whose time it is. The
// host applies an edit from the manager's push (PUT /config) or, when that did not land
// first, from kubelet's projection: each edit counts in the interval of the path that
// brought it.
var Intervals = []Interval{
	{"kubelet: pod annotated → volume projected", StageAnnotated, StageProjected, nil},
	{"manager and host: ConfigMap written → applied, pushed (PUT /config)", StageConfigMap, StageApplied, appliedBeforeProjected},
	{"host: volume projected → applied (its config poll, then the apply)", StageProjected, StageApplied,
		func(e *EditTiming) bool { return !appliedBeforeProjected(e) }},
	{"manager: applied → status read", StageApplied, StageStatusRead, nil},
	{"Ready − served, per edit", StageServed, StageReady, nil},
}

// appliedBeforeProjected reports whether the host applied the edit before kubelet projected
// it (or with no projection timed): the manager's push brought it.
func appliedBeforeProjected(e *EditTiming) bool {
	applied, ok := e.At(StageApplied)
	projected, projectedOK := e.At(StageProjected)
	return ok && (!projectedOK || applied < projected)
}

// EditTiming is one edit's stages, each as the time since the patch was sent.
type EditTiming struct {
	// Increment is the value the edit set; Revision the config revision it produced.
	Increment int64
	Revision  string
	at        [NumStages]time.Duration
	seen      [NumStages]bool
}

// Set records when stage happened, as the time since the patch was sent.
func (e *EditTiming) Set(stage Stage, d time.Duration) {
	e.at[stage], e.seen[stage] = d, true
}

// At returns when stage happened and whether it was recorded.
func (e *EditTiming) At(stage Stage) (time.Duration, bool) {
	return e.at[stage], e.seen[stage]
}

// Missing returns the stages of want that were not recorded.
func (e *EditTiming) Missing(want []Stage) []Stage {
	var missing []Stage
	for _, s := range want {
		if !e.seen[s] {
			missing = append(missing, s)
		}
	}
	return missing
}

// String lists the recorded stages in order, in milliseconds.
func (e *EditTiming) String() string {
	var parts []string
	for s := range NumStages {
		if e.seen[s] {
			parts = append(parts, fmt.Sprintf("%s %s", s, e.at[s].Round(time.Millisecond)))
		}
	}
	return fmt.Sprintf("increment %d: %s", e.Increment, strings.Join(parts, ", "))
}

// StageSummaries returns one row per stage recorded in any edit (its name and Summarize of
// its times from the patch), then one per Interval recorded in any edit, labelled with
// prefix.
func StageSummaries(prefix string, edits []EditTiming) [][2]string {
	var rows [][2]string
	for s := range NumStages {
		var d []time.Duration
		for _, e := range edits {
			if at, ok := e.At(s); ok {
				d = append(d, at)
			}
		}
		if len(d) > 0 {
			rows = append(rows, [2]string{prefix + "API write → " + stageNames[s], Summarize(d).String()})
		}
	}
	for _, iv := range Intervals {
		var d []time.Duration
		for _, e := range edits {
			from, ok1 := e.At(iv.From)
			to, ok2 := e.At(iv.To)
			if ok1 && ok2 && (iv.When == nil || iv.When(&e)) {
				d = append(d, to-from)
			}
		}
		if len(d) > 0 {
			rows = append(rows, [2]string{prefix + iv.Name, Summarize(d).String()})
		}
	}
	return rows
}

// Slowest returns up to n edits that recorded stage, slowest to it first.
func Slowest(edits []EditTiming, stage Stage, n int) []EditTiming {
	var with []EditTiming
	for _, e := range edits {
		if _, ok := e.At(stage); ok {
			with = append(with, e)
		}
	}
	slices.SortStableFunc(with, func(a, b EditTiming) int { return cmp.Compare(b.at[stage], a.at[stage]) })
	return with[:min(n, len(with))]
}
