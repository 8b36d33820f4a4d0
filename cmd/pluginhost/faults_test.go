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

package main

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hotreload/plugin-operator/internal/testing/loadtest"
)

// SIGKILL under load, restart on the same state dir: what is lost is at most what was
// acknowledged after the last snapshot (documented window: one --snapshot-interval).
func TestSIGKILLUnderLoadLossWithinTheSnapshotWindow(t *testing.T) {
	const interval = 500 * time.Millisecond
	res, err := loadtest.Crash(loadtest.CrashOptions{Binary: binary, Signal: syscall.SIGKILL, SnapshotInterval: interval,
		Workers: 2, Rate: 400, Before: 2250 * time.Millisecond}) // mid-interval: off the snapshot ticks
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.ExitErr == "" {
		t.Error("SIGKILL exit reported success")
	}
	if len(res.Mismatches) > 0 {
		t.Errorf("increments before the kill: %v", res.Mismatches)
	}
	if res.Acked == 0 {
		t.Fatal("no increment acknowledged")
	}
	// Restored may exceed AckedMax by the increments applied but unanswered at the kill.
	if res.Restored > res.AckedMax+2 {
		t.Errorf("restored %d, more than acknowledged %d + in flight", res.Restored, res.AckedMax)
	}
	// The snapshot loop runs on a ticker: allow one more interval for a snapshot that
	// was due but not yet written when the kill came on a busy machine.
	if res.Loss > int64(2*res.AckedInWindow) {
		t.Errorf("lost %d increments; %d were acknowledged in the last snapshot interval", res.Loss, res.AckedInWindow)
	}
}

// SIGTERM under load: drained requests are answered and saved, nothing acknowledged is lost.
func TestSIGTERMUnderLoadLosesNothing(t *testing.T) {
	res, err := loadtest.Crash(loadtest.CrashOptions{Binary: binary, Signal: syscall.SIGTERM, SnapshotInterval: time.Hour,
		Workers: 4, Before: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%+v", *res)
	if res.ExitErr != "" {
		t.Errorf("exit after SIGTERM: %s", res.ExitErr)
	}
	if len(res.Mismatches) > 0 {
		t.Errorf("accounting: %v", res.Mismatches)
	}
	if res.Acked == 0 || int64(res.Acked) != res.AckedMax {
		t.Errorf("%d acknowledged, highest value %d", res.Acked, res.AckedMax)
	}
	if res.Restored != res.AckedMax {
		t.Errorf("restored %d, acknowledged %d", res.Restored, res.AckedMax)
	}
}

// The state dir becomes unusable under load — replaced by a file, or full (a tmpfs filled
// up; needs root) — : serving continues with no error answer, the error is in /status and
// the log, snapshots recover when the dir is usable again, and nothing acknowledged is lost
// across a SIGTERM and restart.
func TestUnwritableStateDirUnderLoad(t *testing.T) {
	for _, tc := range []struct {
		name  string
		full  bool
		cause string
	}{{"replaced by a file", false, "not a directory"}, {"full", true, "no space left on device"}} {
		t.Run(tc.name, func(t *testing.T) {
			res, err := loadtest.UnwritableStateDir(binary, 2, tc.full)
			if errors.Is(err, loadtest.ErrNoTmpfs) {
				t.Skip(err)
			}
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("load %d %s; status %q; log %s; restored %d of %d", res.Load.Requests, res.Load.CodesString(), res.StatusError, res.LogLine, res.Restored, res.AckedMax)
			if n := res.Load.Non2xx(); n != 0 || res.Load.OK == 0 {
				t.Errorf("%d non-2xx of %d: %s", n, res.Load.Requests, res.Load.CodesString())
			}
			// The error names the state path and the cause (which step failed depends on
			// when the snapshot ran: creating, writing or renaming the temporary file).
			if !strings.Contains(res.StatusError, "state") || !strings.Contains(res.StatusError, tc.cause) {
				t.Errorf("status error %q", res.StatusError)
			}
			if !strings.Contains(res.LogLine, tc.cause) {
				t.Errorf("log line %q", res.LogLine)
			}
			if !res.Recovered {
				t.Error("state.lastError not cleared after the dir came back")
			}
			if res.Restored != res.AckedMax {
				t.Errorf("restored %d, acknowledged %d", res.Restored, res.AckedMax)
			}
		})
	}
}

// The config file flaps between valid and invalid content every 2 ms for 2 s, in place,
// under load: no error answer, no invalid config ever served, no crash, and the host ends
// on the final content.
func TestConfigFlappingUnderLoad(t *testing.T) {
	res, err := loadtest.Flapping(binary, 2*time.Millisecond, 2*time.Second, 2, 500)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("writes %d (valid %d); applied %d, refused %d; load %s; steps %v; final step %d", res.Writes, res.ValidWrites, res.Applied, res.Refused, res.Load.CodesString(), res.StepsSeen, res.FinalStep)
	if n := res.Load.Non2xx(); n != 0 || res.Load.OK == 0 {
		t.Errorf("%d non-2xx: %s", n, res.Load.CodesString())
	}
	if res.ServedInvalid || len(res.Mismatches) > 0 {
		t.Errorf("served an increment no valid config had: %v %v", res.StepsSeen, res.Mismatches)
	}
	if !res.FinalRevision || res.FinalStep != 1000 {
		t.Errorf("final content not served (revision %v, step %d)", res.FinalRevision, res.FinalStep)
	}
	if res.Exited {
		t.Error("the host exited")
	}
	if res.Refused == 0 {
		t.Error("no invalid content was seen by the host")
	}
}
