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
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"sync"
)

// Audit writes one record per config change to the log and, optionally, appends it as a
// JSON line to a file. A nil *Audit logs only.
type Audit struct {
	mu   sync.Mutex
	file *os.File
}

// OpenAudit appends records to path (created 0600 if missing); "" logs only.
func OpenAudit(path string) (*Audit, error) {
	if path == "" {
		return nil, nil
	}
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening audit log: %w", err)
	}
	return &Audit{file: f}, nil
}

// Record logs rec and appends it to the file. A failing file write is logged, not fatal:
// auditing must not stop the host from serving.
func (a *Audit) Record(log *slog.Logger, rec ReloadRecord) {
	if rec.Result == ReloadApplied {
		log.Info("Config applied", "reload", rec)
	} else {
		log.Warn("Config refused, keeping the last good config", "reload", rec)
	}
	if a == nil || a.file == nil {
		return
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, err := a.file.Write(append(b, '\n')); err != nil {
		log.Error("Writing audit record failed", "err", err)
	}
}

// Close closes the file.
func (a *Audit) Close() error {
	if a == nil || a.file == nil {
		return nil
	}
	return a.file.Close()
}
