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

// Package host is the plugin runtime: it applies config.json in place (diffing plugins,
// keeping state), serves the HTTP API, watches the config file with Argus, persists state
// and reports what it applied. Every reload — a config change or rotated credentials — takes
// one path: build the next applied config without touching anything live, then commit it by
// swapping one pointer.
package host

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/agilira/argus"

	"github.com/hotreload/plugin-operator/internal/audit"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
	"github.com/hotreload/plugin-operator/pkg/plugin"
)

// Options configure a Host.
type Options struct {
	// Registry holds the plugin types the host can run.
	Registry *Registry
	// Logger receives structured logs; a plugin's logger adds its name.
	Logger *slog.Logger
	// Metrics records requests and reloads; nil creates a private registry.
	Metrics *Metrics
	// Audit receives one record per applied or refused config and credentials rotation
	// (also settable later: SetAudit).
	Audit *Audit
	// MaxBodyBytes bounds request bodies (default DefaultMaxBodyBytes).
	MaxBodyBytes int64
	// Now is the clock (tests); defaults to time.Now.
	Now func() time.Time
	// PushTokenFile holds the bearer token that PUT /config requires (push.go); empty
	// turns config push off.
	PushTokenFile string
}

// DefaultMaxBodyBytes is the documented request body limit; larger bodies get 413.
const DefaultMaxBodyBytes = 4 << 10

// Host runs plugin instances and swaps their configuration in place.
type Host struct {
	opts Options
	log  *slog.Logger

	// current is read lock-free by every request and swapped whole by Apply.
	current atomic.Pointer[appliedConfig]
	// draining makes /readyz fail during shutdown.
	draining atomic.Bool
	// waitingLock is the state dir lock's path while another process holds it and this host
	// waits, listening but serving no plugin (nil otherwise).
	waitingLock atomic.Pointer[string]
	// baseDir resolves relative credential file paths: the config file's directory.
	baseDir atomic.Value

	// applyMu serializes Apply and ReloadCredentials; live and restored are only touched
	// under it.
	applyMu sync.Mutex
	// sequence is the highest delivery sequence applied (0: none; see ApplySequenced).
	// Written under applyMu; read by /status without it.
	sequence atomic.Uint64
	// pushedAt is when the last pushed config was applied (under applyMu).
	pushedAt time.Time
	// live are the current config's instances by name and type: the ones the next build
	// reconfigures, so state survives reloads.
	live map[string]liveInstance
	// restored is saved state waiting for a plugin of that name and type to appear.
	restored map[string]SavedPlugin

	// stateDirty is set when plugin state may differ from the last snapshot; stateChanged
	// receives each time it goes from unset to set (see StateChanged).
	stateDirty   atomic.Bool
	stateChanged chan struct{}

	statusMu sync.Mutex
	status   reloadStatus
	// statusChanged is closed and replaced, under statusMu, whenever the applied revision or
	// the last reload error changes: it releases the long-polls of GET /status?after=.
	statusChanged chan struct{}
	// statusWaiters counts the long-polls held (at most MaxStatusWaiters).
	statusWaiters atomic.Int32
	// awaited receives when a long-poll starts to be held: someone awaits a change, which the
	// config watch then looks for more often (ConfigSource.Watch).
	awaited chan struct{}
	// drained is closed by Drain: held long-polls answer at once.
	drained     chan struct{}
	drainedOnce sync.Once

	// audit is set once the trail is open (after the state dir lock, where it lives).
	audit atomic.Pointer[Audit]
	// watch is Argus' Settings while the config is watched; watchChanges and watchErrors
	// count its reports.
	watch        atomic.Pointer[argus.Settings]
	watchChanges atomic.Uint64
	watchErrors  atomic.Uint64
}

type liveInstance struct {
	typ  string
	inst plugin.Instance
}

// appliedConfig is one applied config: immutable once published. A reload builds the next
// one beside it and swaps one pointer; requests that loaded the old one finish
// on it, with its instances, credentials and slots.
type appliedConfig struct {
	revision  string
	appliedAt time.Time
	// data are the config bytes, built again when credential files rotate.
	data    []byte
	config  *pluginconfig.Config
	entries map[string]*entry
	// unknownAuth is the auth of the first plugin of this config that has some (nil if none):
	// a request for an unknown plugin name is answered 401 with its method and challenge, as
	// a known plugin answers a request without credentials, so that plugin names cannot be
	// listed anonymously.
	unknownAuth *authenticator
}

// reloadStatus is what /status reports about reloads.
type reloadStatus struct {
	lastAttempt    *ReloadRecord
	lastError      string
	lastErrorRev   string
	appliedCount   uint64
	refusedCount   uint64
	configPath     string
	stateDir       string
	lastSnapshot   time.Time
	lastStateError string
}

// New returns a Host with no config applied; it is not ready until the first Apply.
func New(opts Options) *Host {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Metrics == nil {
		opts.Metrics = NewMetrics(nil)
	}
	if opts.MaxBodyBytes <= 0 {
		opts.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &Host{
		opts:         opts,
		log:          opts.Logger,
		live:         map[string]liveInstance{},
		restored:     map[string]SavedPlugin{},
		stateChanged: make(chan struct{}, 1),
		// Closed and replaced by notifyStatus.
		statusChanged: make(chan struct{}),
		awaited:       make(chan struct{}, 1),
		drained:       make(chan struct{}),
	}
	h.baseDir.Store("")
	h.SetAudit(opts.Audit)
	opts.Metrics.watchFrom(h)
	// The first snapshot writes the state file whatever happens.
	h.markStateChanged()
	return h
}

// Result describes one Apply.
type Result struct {
	Revision         string
	PreviousRevision string
	Added            []string
	Removed          []string
	Changed          []string
	// Unchanged is true when the bytes equal the applied config: nothing was done.
	Unchanged bool
}

// Apply parses, validates and applies config bytes in place. On any error nothing changes:
// the last good config keeps serving. Plugins that stay keep their state; added ones start
// (with restored state if any), removed ones stop. The bytes carry no delivery sequence:
// they apply whatever sequence was applied before (ApplySequenced).
func (h *Host) Apply(data []byte) (Result, error) {
	return h.ApplySequenced(data, 0, false)
}

// StaleError is a sequenced config older than the one applied: it is not applied, and not
// recorded as refused.
type StaleError struct {
	Sequence, Applied uint64
}

func (e *StaleError) Error() string {
	return fmt.Sprintf("delivery sequence %d is older than the applied %d", e.Sequence, e.Applied)
}

// ApplySequenced is Apply for config bytes delivered with a sequence number: the order in
// which the operator rendered them. A config reaches a pod twice, pushed over the ops port
// (PUT /config, push set) and later through kubelet's projection of the ConfigMap, which may
// still hold an older one when the push lands: bytes with a sequence below the highest
// applied one are not applied (a *StaleError), so the host does not go back to an older
// config. The file is the durable copy, though: a file older than the applied sequence for
// longer than PushLeadLimit since the last push is applied all the same, so that no push (a
// writer's clock far ahead, a leaked token) keeps a pod off its ConfigMap. Sequence 0 means
// unsequenced: applied as by Apply. A refused config is recorded (status, metrics, audit)
// unless pushed: the projection brings the same bytes later and decides (a config can fail
// only because the credential files it names are not projected yet).
func (h *Host) ApplySequenced(data []byte, seq uint64, push bool) (Result, error) {
	h.applyMu.Lock()
	defer h.applyMu.Unlock()

	rev := pluginconfig.Revision(data)
	prev := h.current.Load()
	res := Result{Revision: rev, PreviousRevision: prev.revisionOrEmpty()}
	applied := h.sequence.Load()
	next := max(applied, seq)
	if seq != 0 && seq < applied {
		if push || h.opts.Now().Sub(h.pushedAt) < PushLeadLimit {
			res.Unchanged = true
			return res, &StaleError{Sequence: seq, Applied: applied}
		}
		h.log.Warn("The config file stayed older than a pushed config for longer than the push lead limit; applying the file, which the operator keeps",
			"sequence", seq, "pushedSequence", applied, "limit", PushLeadLimit.String())
		next = seq
	}
	if prev != nil && prev.revision == rev {
		res.Unchanged = true
		h.sequence.Store(next)
		h.recovered(rev)
		return res, nil
	}
	built, err := h.build(data, rev, prev, &res)
	if err != nil {
		if !push {
			h.refuse(audit.KindConfig, rev, res.PreviousRevision, err)
		}
		return res, err
	}
	h.sequence.Store(next)
	if push {
		h.pushedAt = h.opts.Now()
	}
	h.commit(built, prev)
	h.applied(built, prev, res)
	return res, nil
}

// PushLeadLimit is how long a pushed config may stay ahead of the config file: kubelet
// projects a ConfigMap change at its next sync of the pod, within its sync period (one
// minute, plus up to half of it in jitter) even without the operator's pod nudge.
const PushLeadLimit = 2 * time.Minute

// Sequence is the highest delivery sequence applied (0: none).
func (h *Host) Sequence() uint64 { return h.sequence.Load() }

// Refuse records a config that could not even be read (missing file, unreadable).
func (h *Host) Refuse(rev string, err error) {
	h.applyMu.Lock()
	defer h.applyMu.Unlock()
	prev := ""
	if g := h.current.Load(); g != nil {
		prev = g.revision
	}
	h.refuse(audit.KindConfig, rev, prev, err)
}

// build prepares the next applied config from config bytes: it parses and validates them,
// reads credentials, and makes every instance the config will run — new ones for added plugins
// or changed types, reconfigured copies (sharing state) for changed specs. It changes
// nothing live: no instance, no metric series, no slot, no bookkeeping. Everything that can
// fail fails here.
func (h *Host) build(data []byte, rev string, prev *appliedConfig, res *Result) (*appliedConfig, error) {
	cfg, err := pluginconfig.Parse(data, h.opts.Registry)
	if err != nil {
		return nil, err
	}
	next := &appliedConfig{revision: rev, appliedAt: h.opts.Now(), data: data, config: cfg, entries: make(map[string]*entry, len(cfg.Plugins))}
	var errs []error
	for i := range cfg.Plugins {
		spec := cfg.Plugins[i]
		factory, _ := h.opts.Registry.Factory(spec.Type) // Parse checked the type and its options
		auth, err := newAuthenticator(spec.Auth, h.baseDir.Load().(string))
		if err != nil {
			errs = append(errs, fmt.Errorf("plugins[%d].auth: %w", i, err))
			continue
		}
		e := newEntry(spec, factory, auth)
		next.entries[spec.Name] = e
		if next.unknownAuth == nil {
			next.unknownAuth = auth
		}

		var old *entry
		if prev != nil {
			old = prev.entries[spec.Name]
		}
		same := old != nil && reflect.DeepEqual(old.spec, spec)
		switch {
		case old == nil:
			res.Added = append(res.Added, spec.Name)
		case !same:
			res.Changed = append(res.Changed, spec.Name)
		}

		if e.inst, e.fresh, err = h.instanceFor(spec, same && old.inst == h.live[spec.Name].inst); err != nil {
			errs = append(errs, fmt.Errorf("plugins[%d] (%s): %w", i, spec.Name, err))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	if prev != nil {
		for name := range prev.entries {
			if _, ok := next.entries[name]; !ok {
				res.Removed = append(res.Removed, name)
			}
		}
	}
	sort.Strings(res.Added)
	sort.Strings(res.Removed)
	sort.Strings(res.Changed)
	return next, nil
}

// instanceFor returns the instance a plugin entry runs in the config being built:
// the live one when its spec is unchanged, a reconfigured copy sharing its state when the
// type can reconfigure in place, else a new one (with saved state restored, if any; fresh).
func (h *Host) instanceFor(spec pluginconfig.Plugin, unchanged bool) (inst plugin.Instance, fresh bool, err error) {
	li, ok := h.live[spec.Name]
	if ok && li.typ == spec.Type && unchanged {
		return li.inst, false, nil
	}
	pspec, err := pluginSpec(spec)
	if err != nil {
		return nil, false, err
	}
	if ok && li.typ == spec.Type {
		if r, can := plugin.As[plugin.Reconfigurer](li.inst); can {
			if inst, err = r.Reconfigure(pspec); err != nil {
				return nil, false, fmt.Errorf("cannot be reconfigured in place: %w", err)
			}
			return inst, false, nil
		}
		h.log.Info("Plugin type cannot reconfigure in place; the changed plugin starts with a new instance and its state is reset", "plugin", spec.Name, "type", spec.Type)
	}
	factory, _ := h.opts.Registry.Factory(spec.Type)
	if inst, err = factory.New(pspec, h.log.With("plugin", spec.Name)); err != nil {
		return nil, false, err
	}
	if saved, ok := h.restored[spec.Name]; ok && saved.Type == spec.Type {
		if s, stateful := plugin.As[plugin.Stateful](inst); stateful {
			if err := s.Restore(saved.State); err != nil {
				h.log.Warn("Discarding saved state that does not restore", "plugin", spec.Name, "err", err)
			}
		}
	}
	return inst, true, nil
}

// pluginSpec is the part of an entry its type sees, with the options as JSON.
func pluginSpec(spec pluginconfig.Plugin) (plugin.Spec, error) {
	opts := json.RawMessage("{}")
	if len(spec.Options) > 0 {
		b, err := json.Marshal(spec.Options)
		if err != nil {
			return plugin.Spec{}, fmt.Errorf("options: %w", err)
		}
		opts = b
	}
	return plugin.Spec{Name: spec.Name, Type: spec.Type, Options: opts}, nil
}

// commit publishes a built config; it cannot fail. It gives each entry its metric series
// and its connection slots — the previous config's channel when max_connections is
// unchanged, so that requests in flight on the old config still count against the bound —
// swaps the pointer, and only then drops what the new config no longer has.
func (h *Host) commit(next, prev *appliedConfig) {
	for name, e := range next.entries {
		var old *entry
		if prev != nil {
			old = prev.entries[name]
		}
		if old != nil && cap(old.slots) == e.spec.Connection.MaxConnections {
			e.slots = old.slots
		} else {
			e.slots = make(chan struct{}, e.spec.Connection.MaxConnections)
		}
		for i := range e.routes {
			e.routes[i].metrics = h.opts.Metrics.forRoute(name, e.routes[i].op.Name)
		}
		h.live[name] = liveInstance{typ: e.spec.Type, inst: e.inst}
		if e.fresh {
			delete(h.restored, name)
		}
	}
	h.current.Store(next)
	h.markStateChanged() // a new config may add or remove plugins, which a snapshot holds

	for name := range h.live {
		if _, ok := next.entries[name]; !ok {
			delete(h.live, name)
		}
	}
	if prev != nil {
		for name, old := range prev.entries {
			for _, rt := range old.routes {
				if e := next.entries[name]; e == nil || e.route(rt.op.Name) == nil {
					h.opts.Metrics.forgetRoute(name, rt.op.Name)
				}
			}
		}
	}
}

// applied records a committed config change in status, metrics, the log and the audit log.
func (h *Host) applied(next, prev *appliedConfig, res Result) {
	rec := ReloadRecord{
		Time: next.appliedAt, Result: ReloadApplied, Revision: res.Revision, PreviousRevision: res.PreviousRevision,
		Added: res.Added, Removed: res.Removed, Changed: res.Changed, Plugins: len(next.entries),
	}
	h.statusMu.Lock()
	h.status.lastAttempt = &rec
	h.status.lastError, h.status.lastErrorRev = "", ""
	h.status.appliedCount++
	// The record before the long-polls are released: the /status they answer with carries
	// the audit head that includes this change.
	h.audit.Load().Record(h.log, h.opts.Metrics, audit.KindConfig, rec)
	h.notifyStatus()
	h.statusMu.Unlock()
	h.opts.Metrics.reloaded(ReloadApplied, res.Revision, prev.revisionOrEmpty(), next)
}

// refuse records a refused config change or credentials rotation (kind).
func (h *Host) refuse(kind, rev, prev string, err error) {
	rec := ReloadRecord{Time: h.opts.Now(), Result: ReloadRefused, Revision: rev, PreviousRevision: prev, Error: err.Error()}
	h.statusMu.Lock()
	if h.status.lastError == rec.Error && h.status.lastErrorRev == rev {
		// A retry that failed the same way: already counted, logged and audited.
		h.statusMu.Unlock()
		return
	}
	h.status.lastAttempt = &rec
	h.status.lastError, h.status.lastErrorRev = err.Error(), rev
	h.status.refusedCount++
	h.audit.Load().Record(h.log, h.opts.Metrics, kind, rec) // before the long-polls, as in applied
	h.notifyStatus()
	h.statusMu.Unlock()
	h.opts.Metrics.reloaded(ReloadRefused, "", "", nil)
}

// SetAudit makes a receive the audit records from now on (nil: log only).
func (h *Host) SetAudit(a *Audit) {
	h.audit.Store(a)
	h.opts.Metrics.auditOpened(a)
}

// recovered clears a reload error when the file is back to the applied content.
func (h *Host) recovered(rev string) {
	h.statusMu.Lock()
	defer h.statusMu.Unlock()
	if h.status.lastError == "" {
		return
	}
	h.log.Info("Config file is valid again and equals the applied revision", "revision", pluginconfig.ShortRevision(rev))
	h.status.lastError, h.status.lastErrorRev = "", ""
	h.notifyStatus()
	h.opts.Metrics.lastReloadOK.Set(1)
}

// notifyStatus releases the held long-polls of /status; statusMu must be held.
func (h *Host) notifyStatus() {
	close(h.statusChanged)
	h.statusChanged = make(chan struct{})
}

func (g *appliedConfig) revisionOrEmpty() string {
	if g == nil {
		return ""
	}
	return g.revision
}

// Revision returns the applied revision, or "" before the first successful Apply.
func (h *Host) Revision() string { return h.current.Load().revisionOrEmpty() }

// Ready reports whether a config is applied and the host is not draining.
func (h *Host) Ready() bool { return h.current.Load() != nil && !h.draining.Load() }

// Drain makes the host report not ready, ahead of shutdown.
func (h *Host) Drain() {
	h.draining.Store(true)
	h.drainedOnce.Do(func() { close(h.drained) })
}

// WaitingForLock marks the host as waiting for the lock of state dir dir, at path, held by
// another process: /readyz, /status and plugin requests say so until LockTaken.
func (h *Host) WaitingForLock(dir, path string) {
	h.statusMu.Lock()
	h.status.stateDir = dir
	h.statusMu.Unlock()
	h.waitingLock.Store(&path)
}

// LockTaken ends what WaitingForLock started.
func (h *Host) LockTaken() { h.waitingLock.Store(nil) }

// waitingFor returns the lock's path while the host waits for it, else "".
func (h *Host) waitingFor() string {
	if p := h.waitingLock.Load(); p != nil {
		return *p
	}
	return ""
}

// Instance returns the live instance of a plugin (tests and benchmarks).
func (h *Host) Instance(name string) (plugin.Instance, bool) {
	g := h.current.Load()
	if g == nil {
		return nil, false
	}
	e, ok := g.entries[name]
	if !ok {
		return nil, false
	}
	return e.inst, true
}
