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
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"
)

// StateLockFileName is the lock file inside the state dir.
const StateLockFileName = ".lock"

// errLocked is what tryLock returns while another process holds the lock.
var errLocked = errors.New("locked by another process")

// LockStateDir takes an exclusive lock on the state directory, waiting while another
// pluginhost holds it, until ctx ends. A counter has one writer: when a host pod is
// deleted, its ReplicaSet starts the replacement at once, on the same volume, while the old
// pod still drains and writes its final snapshot. Without the lock the new pod restores the
// snapshot from before the old pod's last increments, and its own snapshots then overwrite
// them. The lock is an flock(2) on dir/.lock: it holds across containers on one node (the
// same inode, as for a ReadWriteOnce volume), and the kernel drops it when the holder
// exits, even on SIGKILL. waiting, if not nil, is called once with the lock's path when the
// lock is found held, before the wait; unlock releases it.
func LockStateDir(ctx context.Context, dir string, log *slog.Logger, waiting func(lock string)) (unlock func(), err error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("state dir: %w", err)
	}
	path := filepath.Join(dir, StateLockFileName)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("state dir lock: %w", err)
	}
	start := time.Now()
	for logged := false; ; {
		err := tryLock(f)
		if err == nil {
			break
		}
		if !errors.Is(err, errLocked) {
			_ = f.Close()
			return nil, fmt.Errorf("state dir lock %s: %w", path, err)
		}
		if !logged {
			log.Info("Waiting for the state directory: another pluginhost (the pod being replaced) still holds it", "lock", path)
			logged = true
			if waiting != nil {
				waiting(path)
			}
		}
		select {
		case <-ctx.Done():
			_ = f.Close()
			return nil, fmt.Errorf("state dir lock %s: still held by another process after %s: %w", path, time.Since(start).Round(time.Millisecond), ctx.Err())
		case <-time.After(50 * time.Millisecond):
		}
	}
	if waited := time.Since(start); waited > 50*time.Millisecond {
		log.Info("Took the state directory lock", "lock", path, "waited", waited.Round(time.Millisecond))
	}
	return func() { _ = f.Close() }, nil
}
