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

// Command idle is a baseline for idle-CPU measurements (make bench). By default it does
// nothing. With -poll-floor=<file> it does the least any polling watcher must do: at every
// -poll-interval, stat the file and read the ..data link beside it — the floor a watcher of
// that file can reach.
package main

import (
	"flag"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

func main() {
	file := flag.String("poll-floor", "", "stat this file and read its directory's ..data link at every poll")
	poll := flag.Duration("poll-interval", 100*time.Millisecond, "poll interval with -poll-floor")
	flag.Parse()
	ch := make(chan os.Signal, 1)
	signal.Notify(ch, syscall.SIGTERM, os.Interrupt)
	if *file == "" {
		<-ch
		return
	}
	t := time.NewTicker(*poll)
	defer t.Stop()
	for {
		select {
		case <-ch:
			return
		case <-t.C:
			_, _ = os.Stat(*file)
			_, _ = os.Readlink(filepath.Join(filepath.Dir(*file), "..data"))
		}
	}
}
