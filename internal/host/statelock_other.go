//go:build !unix

package host

import "os"

// tryLock does not lock where flock(2) does not exist: the runtime is built for Linux pods;
// elsewhere it runs standalone with one process per state dir.
func tryLock(*os.File) error { return nil }
