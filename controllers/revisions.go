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
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/predicate"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// Configuration revisions. Each distinct config.json a host serves is kept in an immutable
// ControllerRevision <host>-<16 hex digits of its hash>, controlled by the host and labelled
// with the host label (so the manager's cache, which selects that label, holds it). Its
// data (revisionData) is what was served and what it was made from; what happened to it
// later (pods that applied or refused it) goes into its annotations, since data cannot
// change. The same bytes find the same revision: a restarted manager creates none.

// MaxHistoryInStatus bounds status.history: a few hundred bytes per entry, far inside the
// status budget that MaxListedPlugins and MaxStatusMessageBytes set.
const MaxHistoryInStatus = 10

// revisionHashDigits is how many hex digits of the hash name a revision: 64 bits, so that two
// configurations of one host never share a name in practice (a clash is a ChildConflict).
const revisionHashDigits = 16

// revisionData is the immutable content of a host's ControllerRevision.
type revisionData struct {
	// Revision is the configuration revision: "sha256:" and the hash of Config.
	Revision string `json:"revision"`
	// FirstRendered is when the manager first rendered it.
	FirstRendered metav1.Time `json:"firstRendered"`
	// Config is config.json as served, byte for byte; nil when it holds inline credentials
	// (ConfigOmitted says which), which never enter a revision.
	Config *string `json:"config,omitempty"`
	// ConfigOmitted says why Config is absent.
	ConfigOmitted string `json:"configOmitted,omitempty"`
	// PluginCount is the number of plugins in Config.
	PluginCount int32 `json:"pluginCount"`
	// Plugins are the Plugins whose entries it holds.
	Plugins []revisionSource `json:"plugins,omitempty"`
	// ConfigMap is spec.configMapRef's ConfigMap as read: name@resourceVersion.
	ConfigMap string `json:"configMap,omitempty"`
	// From is the number of the revision this one was derived from, by leaving out the
	// entries of Plugins whose credentials were withdrawn (Revoked): a pinned revision, or
	// the last one of a host that renders nothing new.
	From int64 `json:"from,omitempty"`
	// Revoked name the Plugins left out of From.
	Revoked []string `json:"revoked,omitempty"`
}

// revisionSource is one Plugin a revision holds an entry of.
type revisionSource struct {
	Name       string    `json:"name"`
	UID        types.UID `json:"uid,omitempty"`
	Generation int64     `json:"generation,omitempty"`
	// LastGood is set when the entry is the Plugin's last accepted one, kept while its
	// generation is refused (Generation is then the refused one).
	LastGood bool `json:"lastGood,omitempty"`
}

// servedConfig is what a reconcile wrote into <host>-config, for reconcileRevisions.
type servedConfig struct {
	data      []byte
	sources   []revisionSource
	configMap string
	// from is set when data was derived from a recorded revision (pinned or frozen).
	from    *ownedRevision
	revoked []string
	// pinned: data is (derived from) the pinned revision from, which is not renumbered.
	pinned bool
	// facts are known when data was rendered here; otherwise recordRevision decodes data.
	facts *configFacts
}

// configFacts is what a revision records of its config.json besides its bytes: how many
// entries it has, and those that carry inline credentials.
type configFacts struct {
	plugins int
	inline  []string
}

// ownedRevision is a ControllerRevision of the host, made by the operator, decoded but for
// its config and the Plugins it holds (load reads them when the revision is served from).
type ownedRevision struct {
	obj  *appsv1.ControllerRevision
	data revisionData
	// hasConfig: data.Config is in obj, not decoded.
	hasConfig bool
	// loaded: data.Config (when hasConfig) and data.Plugins are decoded.
	loaded bool
}

// load decodes the revision's config.json and the Plugins it holds, once. The cache holds
// revisions without their data (stripForCache), and the revisionBook their headers without
// the Plugins, so both are read from the API server: only a revision that is served from (a
// pin, or the last one while nothing new is rendered) needs them.
func (o *ownedRevision) load(ctx context.Context, api client.Reader) error {
	if o.loaded {
		return nil
	}
	raw := o.obj.Data.Raw
	if raw == nil {
		live := &appsv1.ControllerRevision{}
		if err := api.Get(ctx, client.ObjectKeyFromObject(o.obj), live); err != nil {
			if apierrors.IsNotFound(err) {
				return nil // gone: read as recorded without a configuration
			}
			return fmt.Errorf("reading ControllerRevision %s: %w", o.obj.Name, err)
		}
		if live.UID != o.obj.UID {
			return nil
		}
		raw = live.Data.Raw
	}
	var d struct {
		Config  *string          `json:"config"`
		Plugins []revisionSource `json:"plugins"`
	}
	if err := json.Unmarshal(raw, &d); err != nil {
		return nil //nolint:nilerr // unreadable: reported as a configuration that cannot be read
	}
	o.data.Config, o.data.Plugins, o.loaded = d.Config, d.Plugins, true
	return nil
}

// config returns the revision's config.json, or false when it was recorded without it.
func (o *ownedRevision) config(ctx context.Context, api client.Reader) (string, bool, error) {
	if o.data.Config != nil {
		return *o.data.Config, true, nil
	}
	if !o.hasConfig {
		return "", false, nil
	}
	if err := o.load(ctx, api); err != nil {
		return "", false, err
	}
	if o.data.Config == nil {
		return "", false, nil
	}
	return *o.data.Config, true, nil
}

// present records that a JSON field is there, without decoding or keeping it.
type present bool

func (p *present) UnmarshalJSON([]byte) error {
	*p = true
	return nil
}

// revisionHeader is revisionData without the config and the Plugins it holds: what every
// reconcile reads of every revision, decoded once per UID and kept (revisionBook.headers).
// The config, up to the size of a ConfigMap, and the Plugins, one entry per Plugin, are read
// only when the revision is served from (ownedRevision.load): kept for every revision of
// every host, the Plugins alone were 5–7 MB of the manager's live heap at 10,000 Plugins.
type revisionHeader struct {
	Revision      string      `json:"revision"`
	FirstRendered metav1.Time `json:"firstRendered"`
	Config        present     `json:"config"`
	ConfigOmitted string      `json:"configOmitted"`
	PluginCount   int32       `json:"pluginCount"`
	ConfigMap     string      `json:"configMap"`
	From          int64       `json:"from"`
	Revoked       []string    `json:"revoked"`
}

// revisionState is one reconcile's view of the host's revisions.
type revisionState struct {
	// listed is true once list holds the host's revisions, oldest first.
	listed bool
	list   []*ownedRevision
	served *servedConfig
	// configMap is spec.configMapRef's ConfigMap as read: name@resourceVersion.
	configMap string
	// outcomes are the annotation patches of recordOutcomes, written after the host's status
	// (writeOutcomes): status.history shows them already, and the Plugins' Ready, which
	// follows that status, does not wait for them.
	outcomes []outcomePatch
}

// outcomePatch is a change of a revision's outcome annotations.
type outcomePatch struct {
	rev         *ownedRevision
	annotations map[string]*string
}

// revisionBook is what the manager remembers of revisions between reconciles: which
// ControllerRevisions the operator made (checked once per UID, from the API server's
// managedFields) and the highest number it gave each host, which the cache may not show yet.
type revisionBook struct {
	mu      sync.Mutex
	authors map[types.UID]bool
	headers map[types.UID]revisionHeader
	highest map[types.NamespacedName]hostNumber
	// written are the outcome annotations this manager last wrote to each revision, until the
	// cache shows them: the next reconcile may read the revision before its watch event, and
	// a count compared with the cache's older value was not written again (a revision left
	// at one applied pod, found by TestRestartWritesNothing).
	written map[types.UID]map[string]string
}

// outcomes returns a revision's outcome annotations: the cache's, with those this manager
// wrote and the cache does not show yet.
func (b *revisionBook) outcomes(uid types.UID, cached map[string]string) map[string]string {
	b.mu.Lock()
	defer b.mu.Unlock()
	w, ok := b.written[uid]
	if !ok {
		return cached
	}
	out := maps.Clone(cached)
	if out == nil {
		out = map[string]string{}
	}
	behind := false
	for k, v := range w {
		if out[k] != v {
			out[k], behind = v, true
		}
	}
	if !behind {
		delete(b.written, uid) // the cache caught up
	}
	return out
}

// wrote records outcome annotations written to a revision.
func (b *revisionBook) wrote(uid types.UID, annotations map[string]*string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.written == nil {
		b.written = map[types.UID]map[string]string{}
	}
	w := b.written[uid]
	if w == nil {
		w = map[string]string{}
		b.written[uid] = w
	}
	for k, v := range annotations {
		w[k] = *v
	}
}

func (b *revisionBook) header(uid types.UID) (revisionHeader, bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	h, ok := b.headers[uid]
	return h, ok
}

func (b *revisionBook) setHeader(uid types.UID, h revisionHeader) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.headers == nil {
		b.headers = map[types.UID]revisionHeader{}
	}
	b.headers[uid] = h
}

type hostNumber struct {
	uid types.UID
	n   int64
}

func (b *revisionBook) author(uid types.UID) (made, known bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	made, known = b.authors[uid]
	return made, known
}

func (b *revisionBook) setAuthor(uid types.UID, made bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.authors == nil {
		b.authors = map[types.UID]bool{}
	}
	b.authors[uid] = made
}

// drop forgets a deleted revision.
func (b *revisionBook) drop(uid types.UID) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.authors, uid)
	delete(b.headers, uid)
	delete(b.written, uid)
}

// numbered records n as given to host, and returns the highest number given to it.
func (b *revisionBook) numbered(host *v1alpha1.PluginHost, n int64) int64 {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.highest == nil {
		b.highest = map[types.NamespacedName]hostNumber{}
	}
	key := types.NamespacedName{Namespace: host.Namespace, Name: host.Name}
	if h, ok := b.highest[key]; ok && h.uid == host.UID && h.n > n {
		return h.n
	}
	b.highest[key] = hostNumber{uid: host.UID, n: n}
	return n
}

// forget drops what is remembered of a deleted host (its revisions' authors go with their
// UIDs, never reused).
func (b *revisionBook) forget(host types.NamespacedName) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.highest, host)
}

// revisionName is the name of the ControllerRevision of revision rev of host.
func revisionName(host *v1alpha1.PluginHost, rev string) string {
	h := strings.TrimPrefix(rev, pluginconfig.RevisionPrefix)
	if len(h) > revisionHashDigits {
		h = h[:revisionHashDigits]
	}
	return host.Name + "-" + h
}

// historyLimit is spec.revisionHistoryLimit with its default.
func historyLimit(host *v1alpha1.PluginHost) int {
	if l := host.Spec.RevisionHistoryLimit; l != nil && *l > 0 {
		return int(*l)
	}
	return v1alpha1.DefaultRevisionHistoryLimit
}

// withRevisionWatch adds the deletion of a host's ControllerRevision to b: a pinned revision
// that someone deletes makes the host Stalled at once. The operator's own writes of its
// revisions are not events here.
func withRevisionWatch(b *builder.Builder) *builder.Builder {
	return b.Owns(&appsv1.ControllerRevision{}, builder.WithPredicates(predicate.Funcs{
		CreateFunc:  func(event.CreateEvent) bool { return false },
		UpdateFunc:  func(event.UpdateEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}))
}

// hostRevisions returns the host's revisions, oldest first, listed once per reconcile from
// the cache: the ControllerRevisions with the host label that the host controls and the
// operator made (madeByOperator on their managedFields, read once per UID from the API
// server). A ControllerRevision that someone else made with the label and a controller
// reference to the host is neither served, nor trimmed, nor listed.
func (r *PluginHostReconciler) hostRevisions(ctx context.Context, rc *hostReconcile) ([]*ownedRevision, error) {
	if rc.revs.listed {
		return rc.revs.list, nil
	}
	host := rc.host
	list := &appsv1.ControllerRevisionList{}
	if err := r.List(ctx, list, client.InNamespace(host.Namespace), client.MatchingLabels{v1alpha1.LabelHost: host.Name}); err != nil {
		return nil, fmt.Errorf("listing ControllerRevisions: %w", err)
	}
	var out []*ownedRevision
	for i := range list.Items {
		cr := &list.Items[i]
		rev, err := r.ownRevision(ctx, host, cr)
		if err != nil {
			return nil, err
		}
		if rev != nil {
			out = append(out, rev)
		}
	}
	sortRevisions(out)
	rc.revs.listed, rc.revs.list = true, out
	return out, nil
}

// ownRevision decodes cr if it is host's and the operator made it; nil otherwise.
func (r *PluginHostReconciler) ownRevision(ctx context.Context, host *v1alpha1.PluginHost, cr *appsv1.ControllerRevision) (*ownedRevision, error) {
	ref := metav1.GetControllerOfNoCopy(cr)
	if ref == nil || ref.UID != host.UID || ref.Kind != "PluginHost" {
		return nil, nil
	}
	made, known := r.revBook.author(cr.UID)
	h, haveHeader := r.revBook.header(cr.UID)
	if !known || (made && !haveHeader) {
		// Once per UID: who made it (managedFields) and its header, from the API server; the
		// cache holds neither (stripForCache).
		live := &appsv1.ControllerRevision{}
		if err := r.applier.api.Get(ctx, client.ObjectKeyFromObject(cr), live); err != nil {
			if apierrors.IsNotFound(err) {
				return nil, nil
			}
			return nil, fmt.Errorf("reading ControllerRevision %s: %w", cr.Name, err)
		}
		if live.UID != cr.UID {
			return nil, nil // replaced since the cache saw it: the next event tells of the new one
		}
		if !known {
			made = madeByOperator(&metav1.PartialObjectMetadata{ObjectMeta: live.ObjectMeta}, ref)
			r.revBook.setAuthor(cr.UID, made)
			if !made {
				ctrl.LoggerFrom(ctx).Info("Ignoring a ControllerRevision that claims to be the host's but that the operator did not make",
					"controllerRevision", klog.KObj(cr))
			}
		}
		if made && !haveHeader {
			if err := json.Unmarshal(live.Data.Raw, &h); err != nil || h.Revision == "" {
				return nil, nil //nolint:nilerr // not a revision this manager can read: not served
			}
			r.revBook.setHeader(cr.UID, h)
		}
	}
	if !made {
		return nil, nil
	}
	return &ownedRevision{obj: cr, hasConfig: bool(h.Config), data: revisionData{
		Revision: h.Revision, FirstRendered: h.FirstRendered, ConfigOmitted: h.ConfigOmitted, PluginCount: h.PluginCount,
		ConfigMap: h.ConfigMap, From: h.From, Revoked: h.Revoked,
	}}, nil
}

func sortRevisions(revs []*ownedRevision) {
	slices.SortFunc(revs, func(a, b *ownedRevision) int {
		if a.obj.Revision != b.obj.Revision {
			return int(a.obj.Revision - b.obj.Revision)
		}
		return strings.Compare(a.obj.Name, b.obj.Name)
	})
}

// findRevision returns the revision whose configuration revision is rev, or nil.
func findRevision(revs []*ownedRevision, rev string) *ownedRevision {
	for _, o := range revs {
		if o.data.Revision == rev {
			return o
		}
	}
	return nil
}

// resolvePin returns the revision that pin (spec.pinnedRevision) names, or why none is
// served: not recorded, ambiguous, or recorded without its configuration.
func resolvePin(pin string, revs []*ownedRevision) (*ownedRevision, string) {
	var match []*ownedRevision
	if n, err := strconv.ParseInt(pin, 10, 64); err == nil {
		for _, o := range revs {
			if o.obj.Revision == n {
				match = append(match, o)
			}
		}
	} else {
		for _, o := range revs {
			if strings.HasPrefix(o.data.Revision, pin) {
				match = append(match, o)
			}
		}
	}
	switch {
	case len(match) == 0:
		return nil, fmt.Sprintf("spec.pinnedRevision %q names no recorded revision of this PluginHost (recorded: %s); "+
			"keeping the configuration it serves: pin a recorded revision (status.history), or unset it", pin, recordedNumbers(revs))
	case len(match) > 1:
		return nil, fmt.Sprintf("spec.pinnedRevision %q names %d recorded revisions; give more digits of the hash, or the number", pin, len(match))
	case !match[0].hasConfig && match[0].data.Config == nil:
		return nil, fmt.Sprintf("spec.pinnedRevision %q names revision %d, recorded without its configuration (%s); keeping the configuration it serves",
			pin, match[0].obj.Revision, match[0].data.ConfigOmitted)
	}
	return match[0], ""
}

// recordedNumbers lists the numbers of revs, short: "3, 4, 5" or "3 … 12".
func recordedNumbers(revs []*ownedRevision) string {
	switch len(revs) {
	case 0:
		return "none"
	case 1, 2, 3:
		s := make([]string, len(revs))
		for i, o := range revs {
			s[i] = strconv.FormatInt(o.obj.Revision, 10)
		}
		return strings.Join(s, ", ")
	}
	return fmt.Sprintf("%d revisions, %d to %d", len(revs), revs[0].obj.Revision, revs[len(revs)-1].obj.Revision)
}

// inlineCredentials names, sorted, the entries that carry a credential inline (the user's
// ConfigMap may; a Plugin's entry reads its credentials from files): a configuration with one
// is recorded without its bytes.
func inlineCredentials(entries ...[]pluginconfig.Plugin) []string {
	var names []string
	for _, list := range entries {
		for _, e := range list {
			if e.Auth.APIKey != "" || e.Auth.Token != "" || e.Auth.Username != "" || e.Auth.Password != "" {
				names = append(names, e.Name)
			}
		}
	}
	slices.Sort(names)
	return names
}

// servePinned serves the revision that spec.pinnedRevision names: its config.json byte for
// byte, with the current credentials of the entries that read some. An entry whose
// credentials may no longer be used (its Plugin is gone, its Secret is gone or unmarked or
// lacks a key) is left out, as revokeWhileFrozen does: a pin never brings back a withdrawn
// credential. A pin that names no usable revision changes nothing served but revocations,
// and says why (PinnedRevisionNotFound).
func (r *PluginHostReconciler) servePinned(ctx context.Context, rc *hostReconcile) error {
	host := rc.host
	revs, err := r.hostRevisions(ctx, rc)
	if err != nil {
		return err
	}
	pinned, why := resolvePin(host.Spec.PinnedRevision, revs)
	if pinned == nil {
		rc.facts.ConfigReason, rc.facts.ConfigMessage = v1alpha1.ReasonPinnedRevisionNotFound, why
		host.Status.PinnedRevision = 0
		return r.revokeWhileFrozen(ctx, rc)
	}
	config, ok, err := pinned.config(ctx, r.applier.api)
	if err != nil {
		return err
	}
	if !ok {
		rc.facts.ConfigReason = v1alpha1.ReasonPinnedRevisionNotFound
		rc.facts.ConfigMessage = fmt.Sprintf("spec.pinnedRevision %q names revision %d, whose configuration cannot be read", host.Spec.PinnedRevision, pinned.obj.Revision)
		host.Status.PinnedRevision = 0
		return r.revokeWhileFrozen(ctx, rc)
	}
	data := []byte(config)
	cfg, err := pluginconfig.Decode(data)
	if err != nil {
		rc.facts.ConfigReason = v1alpha1.ReasonPinnedRevisionNotFound
		rc.facts.ConfigMessage = fmt.Sprintf("spec.pinnedRevision %q names revision %d, whose configuration cannot be read: %v", host.Spec.PinnedRevision, pinned.obj.Revision, err)
		host.Status.PinnedRevision = 0
		return r.revokeWhileFrozen(ctx, rc)
	}
	creds := map[string][]byte{}
	var kept []pluginconfig.Plugin
	var revoked []string
	for _, e := range cfg.Plugins {
		ok, err := r.currentCredentials(ctx, host.Namespace, e, creds)
		if err != nil {
			return err
		}
		if ok {
			kept = append(kept, e)
		} else {
			revoked = append(revoked, e.Name)
		}
	}
	if len(revoked) > 0 {
		cfg.Plugins = kept
		if cfg.Plugins == nil {
			cfg.Plugins = []pluginconfig.Plugin{}
		}
		if data, err = pluginconfig.Encode(cfg); err != nil {
			return fmt.Errorf("encoding configuration: %w", err)
		}
	}
	key, err := r.revKeys.get(ctx, r.Client, host)
	if err != nil {
		return err
	}
	// The credentials first, as a render does: the configuration refers to their files.
	if err := r.applier.apply(ctx, renderCredentials(host, withRevisionKey(creds, key))); err != nil {
		return err
	}
	rc.credentialsRevision = credentialsDigest(key, creds)
	rev, err := r.applyConfigMap(ctx, rc, data)
	if err != nil {
		return err
	}
	if rev != host.Status.ConfigRevision {
		ctrl.LoggerFrom(ctx).Info("Serving the pinned revision", "revision", pinned.obj.Revision, "hash", short(rev), "revoked", revoked)
		at := r.clock.renderedAt(client.ObjectKeyFromObject(host), rev, time.Now())
		host.Status.ConfigRevisionTime = &metav1.Time{Time: at}
	}
	host.Status.ConfigRevision = rev
	host.Status.PluginCount = int32(len(cfg.Plugins))
	host.Status.PinnedRevision = pinned.obj.Revision
	rc.revs.served = &servedConfig{data: data, from: pinned, revoked: revoked, pinned: true}
	return nil
}

// currentCredentials adds to creds the current credentials of config entry e, and reports
// whether e may be served: it reads no credential file, or its Plugin exists and its auth
// Secret still provides every file it reads.
func (r *PluginHostReconciler) currentCredentials(ctx context.Context, namespace string, e pluginconfig.Plugin, creds map[string][]byte) (bool, error) {
	files := pluginCredentialFiles(e, r.Options.SecretsMountPath)
	if len(files) == 0 {
		return true, nil
	}
	p := &v1alpha1.Plugin{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: e.Name}, p); err != nil {
		if apierrors.IsNotFound(err) {
			return false, nil
		}
		return false, fmt.Errorf("getting Plugin %s: %w", e.Name, err)
	}
	secrets, err := r.readSecrets(ctx, namespace, []v1alpha1.Plugin{*p})
	if err != nil {
		return false, err
	}
	found := map[string][]byte{}
	if reason, _ := readCredentials(p, secrets, found); reason != "" {
		return false, nil
	}
	for _, f := range files {
		if _, ok := found[f]; !ok {
			return false, nil
		}
	}
	for _, f := range files {
		creds[f] = found[f]
	}
	return true, nil
}

// renderedSources are the Plugins whose entries a render of ev holds.
func renderedSources(ev evaluation, plugins map[string]*v1alpha1.Plugin) []revisionSource {
	status := make(map[string]v1alpha1.SelectedPluginStatus, len(ev.Plugins))
	for _, e := range ev.Plugins {
		status[e.Name] = e
	}
	var out []revisionSource
	for _, a := range ev.Accepted {
		e, ok := status[a.Name]
		if !ok {
			continue
		}
		src := revisionSource{Name: e.Name, UID: e.UID, Generation: e.Generation, LastGood: e.Reason != v1alpha1.ReasonAccepted}
		if p := plugins[e.Name]; p != nil && src.UID == "" {
			src.UID = p.UID
		}
		out = append(out, src)
	}
	return out
}

// reconcileRevisions records the served configuration as a revision (found when its bytes
// were recorded before; renumbered when an older one is served again, as a DaemonSet's
// revisions are), writes what the pods made of the recorded revisions into their
// annotations, trims the history to spec.revisionHistoryLimit and reports it in status.
func (r *PluginHostReconciler) reconcileRevisions(ctx context.Context, rc *hostReconcile) error {
	host := rc.host
	revs, err := r.hostRevisions(ctx, rc)
	if err != nil {
		return err
	}
	if s := rc.revs.served; s != nil {
		if revs, err = r.recordRevision(ctx, rc, revs, s); err != nil {
			return err
		}
	}
	r.recordOutcomes(rc, revs)
	if revs, err = r.trimRevisions(ctx, rc, revs); err != nil {
		return err
	}
	rc.revs.list = revs

	host.Status.Revision = 0
	if cur := findRevision(revs, host.Status.ConfigRevision); cur != nil {
		host.Status.Revision = cur.obj.Revision
	}
	if host.Spec.PinnedRevision == "" {
		host.Status.PinnedRevision = 0
	}
	host.Status.History = historyOf(revs, min(historyLimit(host), MaxHistoryInStatus))
	return nil
}

// recordRevision finds or creates the revision of s and returns revs with it.
func (r *PluginHostReconciler) recordRevision(ctx context.Context, rc *hostReconcile, revs []*ownedRevision, s *servedConfig) ([]*ownedRevision, error) {
	host := rc.host
	rev := pluginconfig.Revision(s.data)
	var highest int64
	for _, o := range revs {
		highest = max(highest, o.obj.Revision)
	}
	highest = r.revBook.numbered(host, highest)
	if o := findRevision(revs, rev); o != nil {
		// Served again after others (not by a pin): the newest, as a DaemonSet renumbers the
		// revision it rolls back to.
		if !s.pinned && o.obj.Revision < highest {
			if err := r.patchRevision(ctx, o.obj, nil, highest+1); err != nil {
				return nil, err
			}
			o.obj.Revision = highest + 1
			r.revBook.numbered(host, highest+1)
			sortRevisions(revs)
			ctrl.LoggerFrom(ctx).Info("Serving a recorded configuration again", "revision", o.obj.Revision, "hash", short(rev))
		}
		return revs, nil
	}

	data := revisionData{Revision: rev, Plugins: s.sources, ConfigMap: s.configMap, Revoked: s.revoked}
	if t := host.Status.ConfigRevisionTime; t != nil && host.Status.ConfigRevision == rev {
		data.FirstRendered = *t
	} else {
		data.FirstRendered = metav1.NewTime(time.Now().Truncate(time.Second))
	}
	if s.from != nil {
		data.From = s.from.obj.Revision
		if s.sources == nil {
			if err := s.from.load(ctx, r.applier.api); err != nil {
				return nil, err
			}
			data.Plugins = keptSources(s.from.data.Plugins, s.revoked)
		}
	}
	config := string(s.data)
	facts := s.facts
	if facts == nil {
		if cfg, err := pluginconfig.Decode(s.data); err == nil {
			facts = &configFacts{plugins: len(cfg.Plugins), inline: inlineCredentials(cfg.Plugins)}
		}
	}
	if facts != nil {
		data.PluginCount = int32(facts.plugins)
		if names := facts.inline; len(names) > 0 {
			data.ConfigOmitted = fmt.Sprintf("the entries of %s carry inline credentials (auth.api_key, token, username or password), which never enter a revision",
				strings.Join(names, ", "))
		} else {
			data.Config = &config
		}
	} else {
		data.Config = &config
	}
	raw, err := json.Marshal(data)
	if err != nil {
		return nil, fmt.Errorf("encoding revision: %w", err)
	}
	cr := &appsv1.ControllerRevision{
		ObjectMeta: objectMeta(host, revisionName(host, rev)),
		Data:       runtime.RawExtension{Raw: raw},
		Revision:   highest + 1,
	}
	// The outcomes known now go into the create, not into a patch right after it: at a
	// fleet-wide burst that patch was one write in three of the revisions' (BenchmarkScale).
	if outcomesKnown(rc.facts) {
		for k, v := range outcomeChanges(rc.facts, rev, nil, time.Now()) {
			if cr.Annotations == nil {
				cr.Annotations = map[string]string{}
			}
			cr.Annotations[k] = *v
		}
	}
	if err := r.Create(ctx, cr, client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		if !apierrors.IsAlreadyExists(err) {
			return nil, asRefusal("create ControllerRevision "+cr.Name, fmt.Errorf("creating ControllerRevision %s: %w", cr.Name, err))
		}
		// Made since the cache was read (by this manager, a moment ago), or someone else's.
		live := &appsv1.ControllerRevision{}
		if err := r.applier.api.Get(ctx, client.ObjectKeyFromObject(cr), live); err != nil {
			return nil, fmt.Errorf("reading ControllerRevision %s: %w", cr.Name, err)
		}
		o, err := r.ownRevision(ctx, host, live)
		if err != nil {
			return nil, err
		}
		if o == nil || o.data.Revision != rev {
			return nil, &childConflict{message: fmt.Sprintf("ControllerRevision %s exists and is not this PluginHost's revision %s", cr.Name, short(rev))}
		}
		r.revBook.numbered(host, o.obj.Revision)
		revs = append(revs, o)
		sortRevisions(revs)
		return revs, nil
	}
	r.revBook.setAuthor(cr.UID, true)
	hasConfig := data.Config != nil
	// Its header is known: no read of the revision back from the API server when the cache
	// shows it (at a fleet-wide burst, one GET of a whole config per render). Decoded from
	// what was sent, as that read would, so that the status computed from it compares equal
	// to the one written from it.
	var h revisionHeader
	if err := json.Unmarshal(raw, &h); err == nil {
		r.revBook.setHeader(cr.UID, h)
	}
	r.revBook.numbered(host, cr.Revision)
	data.Config = nil
	ctrl.LoggerFrom(ctx).Info("Recorded a configuration revision", "revision", cr.Revision, "hash", short(rev), "controllerRevision", cr.Name)
	revs = append(revs, &ownedRevision{obj: cr, data: data, hasConfig: hasConfig})
	sortRevisions(revs)
	return revs, nil
}

// keptSources are srcs without the Plugins named in revoked.
func keptSources(srcs []revisionSource, revoked []string) []revisionSource {
	var out []revisionSource
	for _, s := range srcs {
		if !slices.Contains(revoked, s.Name) {
			out = append(out, s)
		}
	}
	return out
}

// patchRevision writes annotations and, when number > 0, the number of cr: the fields of a
// ControllerRevision that may change. The UID in the patch makes it fail on a replaced
// object.
func (r *PluginHostReconciler) patchRevision(ctx context.Context, cr *appsv1.ControllerRevision, annotations map[string]*string, number int64) error {
	p := map[string]any{"metadata": map[string]any{"uid": cr.UID}}
	if annotations != nil {
		p["metadata"].(map[string]any)["annotations"] = annotations
	}
	if number > 0 {
		p["revision"] = number
	}
	body, err := json.Marshal(p)
	if err != nil {
		return err
	}
	if err := r.Patch(ctx, cr.DeepCopy(), client.RawPatch(types.MergePatchType, body), client.FieldOwner(v1alpha1.FieldOwner)); err != nil {
		return client.IgnoreNotFound(fmt.Errorf("patching ControllerRevision %s: %w", cr.Name, err))
	}
	return nil
}

// recordOutcomes writes into each recorded revision's annotations how many running pods run
// it and refused it, and when every running pod first ran it: once per change, and only from
// a reconcile that read every running pod.
func (r *PluginHostReconciler) recordOutcomes(rc *hostReconcile, revs []*ownedRevision) {
	if !outcomesKnown(rc.facts) {
		return
	}
	for _, o := range revs {
		o.obj.Annotations = r.revBook.outcomes(o.obj.UID, o.obj.Annotations)
		want := outcomeChanges(rc.facts, o.data.Revision, o.obj.Annotations, time.Now())
		if len(want) == 0 {
			continue
		}
		rc.revs.outcomes = append(rc.revs.outcomes, outcomePatch{rev: o, annotations: want})
		if o.obj.Annotations == nil {
			o.obj.Annotations = map[string]string{}
		}
		for k, v := range want {
			o.obj.Annotations[k] = *v
		}
	}
}

// writeOutcomes writes the annotation patches of recordOutcomes. A failed one fails the
// reconcile, whose retry computes it again from the cache.
func (r *PluginHostReconciler) writeOutcomes(ctx context.Context, rc *hostReconcile) error {
	var errs []error
	for _, o := range rc.revs.outcomes {
		if err := r.patchRevision(ctx, o.rev.obj, o.annotations, 0); err != nil {
			errs = append(errs, err)
			continue
		}
		r.revBook.wrote(o.rev.obj.UID, o.annotations)
	}
	rc.revs.outcomes = nil
	return errors.Join(errs...)
}

// outcomesKnown reports whether this reconcile read every running pod, so that the outcomes
// it counts are the host's.
func outcomesKnown(f hostFacts) bool {
	unread := slices.ContainsFunc(f.Running, func(p podFact) bool { return p.Err != nil })
	return !unread && len(f.Running) > 0 && f.Conflicts == nil && f.Refusal == ""
}

// outcomeChanges are the outcome annotations of the revision rev that differ from have: how
// many running pods run it and refused it, the refusal, and when every running pod first ran
// it.
func outcomeChanges(f hostFacts, rev string, have map[string]string, now time.Time) map[string]*string {
	applied, refused, refusal := 0, 0, ""
	for _, p := range f.Running {
		if p.Applied == rev {
			applied++
		}
		if p.Refused != "" && rev == f.DesiredRevision {
			refused++
			refusal = p.Refused
		}
	}
	want := map[string]*string{}
	set := func(key, value string) {
		if have[key] != value {
			want[key] = &value
		}
	}
	set(v1alpha1.RevisionAppliedPodsAnnotation, strconv.Itoa(applied))
	if rev == f.DesiredRevision {
		set(v1alpha1.RevisionRefusedPodsAnnotation, strconv.Itoa(refused))
		if refusal != "" {
			set(v1alpha1.RevisionRefusalAnnotation, truncateText(refusal, MaxReportedTextBytes))
		}
		if f.rolledOut() && have[v1alpha1.RevisionAppliedAtAnnotation] == "" {
			set(v1alpha1.RevisionAppliedAtAnnotation, now.UTC().Truncate(time.Second).Format(time.RFC3339))
		}
	}
	return want
}

// trimRevisions deletes the oldest revisions beyond spec.revisionHistoryLimit, never the
// served one or the pinned one.
func (r *PluginHostReconciler) trimRevisions(ctx context.Context, rc *hostReconcile, revs []*ownedRevision) ([]*ownedRevision, error) {
	host := rc.host
	excess := len(revs) - historyLimit(host)
	if excess <= 0 {
		return revs, nil
	}
	keep := make([]*ownedRevision, 0, len(revs))
	for _, o := range revs {
		protected := o.data.Revision == host.Status.ConfigRevision ||
			(host.Status.PinnedRevision != 0 && o.obj.Revision == host.Status.PinnedRevision)
		if excess == 0 || protected {
			keep = append(keep, o)
			continue
		}
		uid := o.obj.UID
		if err := r.Delete(ctx, o.obj.DeepCopy(), client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return nil, fmt.Errorf("deleting ControllerRevision %s beyond spec.revisionHistoryLimit: %w", o.obj.Name, err)
		}
		r.revBook.drop(uid)
		excess--
		ctrl.LoggerFrom(ctx).V(1).Info("Deleted a revision beyond spec.revisionHistoryLimit", "revision", o.obj.Revision, "controllerRevision", o.obj.Name)
	}
	return keep, nil
}

// historyOf is status.history: the newest n revisions, newest first.
func historyOf(revs []*ownedRevision, n int) []v1alpha1.RevisionHistoryEntry {
	var out []v1alpha1.RevisionHistoryEntry
	for i := len(revs) - 1; i >= 0 && len(out) < n; i-- {
		o := revs[i]
		a := o.obj.Annotations
		e := v1alpha1.RevisionHistoryEntry{
			Revision: o.obj.Revision, Hash: short(o.data.Revision), Name: o.obj.Name,
			FirstRendered: o.data.FirstRendered, Plugins: o.data.PluginCount,
			AppliedPods: atoi32(a[v1alpha1.RevisionAppliedPodsAnnotation]),
			RefusedPods: atoi32(a[v1alpha1.RevisionRefusedPodsAnnotation]),
		}
		if t, err := time.Parse(time.RFC3339, a[v1alpha1.RevisionAppliedAtAnnotation]); err == nil {
			e.AppliedAt = &metav1.Time{Time: t}
		}
		out = append(out, e)
	}
	return out
}

func atoi32(s string) int32 {
	n, err := strconv.ParseInt(s, 10, 32)
	if err != nil || n < 0 {
		return 0
	}
	return int32(n)
}

// appliedFromPinned sets, while the host serves a pinned revision that every running pod
// runs, each Plugin's appliedGeneration to the generation that revision holds of it (0 when
// it holds none).
func appliedFromPinned(host *v1alpha1.PluginHost, s *servedConfig) {
	if s == nil || s.from == nil || !s.pinned {
		return
	}
	// s.from was loaded when servePinned read its config.
	gens := map[string]revisionSource{}
	for _, src := range s.from.data.Plugins {
		if !slices.Contains(s.revoked, src.Name) {
			gens[src.Name] = src
		}
	}
	for i := range host.Status.Plugins {
		e := &host.Status.Plugins[i]
		e.AppliedGeneration = 0
		if src, ok := gens[e.Name]; ok && (src.UID == "" || src.UID == e.UID) && !src.LastGood {
			e.AppliedGeneration = src.Generation
		}
	}
}

// servedFrozen records what revokeWhileFrozen served: the last configuration, prev, without
// the entries of revoked Plugins.
func (r *PluginHostReconciler) servedFrozen(ctx context.Context, rc *hostReconcile, prev string, data []byte, revoked []string) error {
	revs, err := r.hostRevisions(ctx, rc)
	if err != nil {
		return err
	}
	rc.revs.served = &servedConfig{data: data, from: findRevision(revs, prev), revoked: revoked}
	return nil
}
