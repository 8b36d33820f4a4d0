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

package localcluster

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/go-logr/logr"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
)

// controller-runtime's and klog's package-level loggers are set once per process: setting
// them again at every Start raced with goroutines of an earlier cluster's manager that still
// log (the race detector caught it with -count=3). They go to a handler that forwards to the
// log of the cluster started last.
var (
	processLoggersOnce sync.Once
	processLogTarget   atomic.Pointer[slog.Handler]
)

// useProcessLog sends the package-level loggers to h from now on.
func useProcessLog(h slog.Handler) {
	processLogTarget.Store(&h)
	processLoggersOnce.Do(func() {
		l := logr.FromSlogHandler(forwardingHandler{})
		ctrl.SetLogger(l)
		klog.SetLogger(l.WithName("klog"))
	})
}

// forwardingHandler forwards to the current processLogTarget, with the attributes and
// groups it was derived with.
type forwardingHandler struct {
	derive []func(slog.Handler) slog.Handler
}

func (f forwardingHandler) current() slog.Handler {
	h := *processLogTarget.Load()
	for _, d := range f.derive {
		h = d(h)
	}
	return h
}

func (f forwardingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return f.current().Enabled(ctx, l)
}

func (f forwardingHandler) Handle(ctx context.Context, r slog.Record) error {
	return f.current().Handle(ctx, r)
}

func (f forwardingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return f.with(func(h slog.Handler) slog.Handler { return h.WithAttrs(attrs) })
}

func (f forwardingHandler) WithGroup(name string) slog.Handler {
	return f.with(func(h slog.Handler) slog.Handler { return h.WithGroup(name) })
}

func (f forwardingHandler) with(d func(slog.Handler) slog.Handler) forwardingHandler {
	derive := make([]func(slog.Handler) slog.Handler, len(f.derive), len(f.derive)+1)
	copy(derive, f.derive)
	return forwardingHandler{derive: append(derive, d)}
}
