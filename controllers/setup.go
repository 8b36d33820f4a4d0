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
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/selection"
	"k8s.io/apimachinery/pkg/types"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/cache"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// Options are the manager-wide settings of the reconcilers (the manager's flags).
type Options struct {
	// DefaultHostImage is the runtime image of PluginHosts without spec.image.
	DefaultHostImage string
	// AllowedHostImages are the images, besides DefaultHostImage, that a PluginHost's
	// spec.image may name: "*" for any, a registry, a repository prefix (whole path
	// segments), or a repository with a tag or a digest, compared as parsed references (see
	// imageRule). Empty allows DefaultHostImage only; an invalid entry is an error of
	// NewManager (ValidateAllowedHostImages).
	AllowedHostImages []string
	// PodNudge annotates host pods with a new revision so that kubelet re-projects the
	// ConfigMap at once. Off for clusters that forbid the operator to patch pods.
	PodNudge bool
	// ConfigPush pushes each configuration the manager renders to the host's running pods
	// (PUT /config on their operational port, config_push.go) as soon as the ConfigMap is
	// written, so they serve it without waiting for kubelet to project it. Off, the pods
	// read it from the ConfigMap volume only.
	ConfigPush bool
	// StatusPollInterval is how often a host's pods are read while they have not all applied
	// the desired revision; a host whose spec.pollInterval is shorter is read at that pace
	// while a change is in flight (see statusPollInterval).
	StatusPollInterval time.Duration
	// StatusTimeout bounds one GET /status.
	StatusTimeout time.Duration
	// MaxConcurrentProbes bounds the GET /status requests in flight, over all hosts. Each
	// reconcile worker may use an equal share of them (at least one).
	MaxConcurrentProbes int
	// MaxStatusBytes bounds one /status reply; a longer reply is an error, never read whole.
	MaxStatusBytes int64
	// RenderPace and MaxRenderPace space the reconciles that Plugin changes bring to a host
	// (renderPacer): by RenderPace × the hosts reconciled within the last 2 s, at most
	// MaxRenderPace. RenderPace 0 reconciles at every change.
	RenderPace    time.Duration
	MaxRenderPace time.Duration
	// MaxConcurrentReconciles is the number of workers of the PluginHost controller.
	MaxConcurrentReconciles int
	// MaxConcurrentPluginReconciles is the number of workers of the Plugin controller. Its
	// work is one status patch per Plugin and transition, bound by API server latency rather
	// than CPU, and a host's rollout makes all its Plugins transition at once: it needs more
	// workers than the host controller.
	MaxConcurrentPluginReconciles int
	// SecretsMountPath is where host pods mount <host>-credentials, and so the directory of the
	// credential files in the rendered configuration. Tests that run the runtime outside a
	// pod point it at a local directory.
	SecretsMountPath string
	// ManagerNamespace is the namespace of the manager's pods, and ManagerPodLabels their
	// labels: a host's NetworkPolicy admits those pods to the runtime's operational port.
	// With no namespace the policy admits pods with those labels in the host's namespace.
	ManagerNamespace string
	ManagerPodLabels map[string]string
}

// DefaultOptions are the defaults of the manager's flags.
func DefaultOptions() Options {
	return Options{
		DefaultHostImage:   "ghcr.io/hotreload/plugin-operator:dev",
		PodNudge:           true,
		ConfigPush:         true,
		StatusPollInterval: time.Second,
		StatusTimeout:      2 * time.Second,
		// Two /status reads in flight per host worker, as before the workers went to 16.
		MaxConcurrentProbes: 32,
		MaxStatusBytes:      DefaultMaxStatusBytes,
		RenderPace:          defaultRenderPace,
		MaxRenderPace:       defaultMaxRenderPace,
		// A host's reconcile waits on the API server (a ConfigMap apply, a status patch, a
		// pod annotation) far more than it computes: at 10,000 Plugins on 100 hosts, 4
		// workers reconciled each host every 15–25 s under load (BenchmarkScale).
		MaxConcurrentReconciles:       16,
		MaxConcurrentPluginReconciles: 16,
		SecretsMountPath:              DefaultSecretsMountPath,
		ManagerPodLabels:              map[string]string{"control-plane": "controller-manager"},
	}
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.DefaultHostImage == "" {
		o.DefaultHostImage = d.DefaultHostImage
	}
	if o.StatusPollInterval <= 0 {
		o.StatusPollInterval = d.StatusPollInterval
	}
	if o.StatusTimeout <= 0 {
		o.StatusTimeout = d.StatusTimeout
	}
	if o.MaxConcurrentProbes <= 0 {
		o.MaxConcurrentProbes = d.MaxConcurrentProbes
	}
	if o.MaxStatusBytes <= 0 {
		o.MaxStatusBytes = d.MaxStatusBytes
	}
	if o.MaxConcurrentReconciles <= 0 {
		o.MaxConcurrentReconciles = d.MaxConcurrentReconciles
	}
	if o.MaxRenderPace <= 0 {
		o.MaxRenderPace = d.MaxRenderPace
	}
	if o.MaxConcurrentPluginReconciles <= 0 {
		o.MaxConcurrentPluginReconciles = d.MaxConcurrentPluginReconciles
	}
	if o.SecretsMountPath == "" {
		o.SecretsMountPath = d.SecretsMountPath
	}
	if len(o.ManagerPodLabels) == 0 {
		// An empty selector would admit every pod to the operational port.
		o.ManagerPodLabels = d.ManagerPodLabels
	}
	return o
}

// cacheOptions returns the manager's cache settings: the watched namespaces (all when
// empty), label selectors applied by the API server, and a transform.
//
// Unrelated objects never reach the manager: every kind it watches is selected on the server
// side, since a transform runs only after a list has been decoded.
//   - The children's kinds (childKinds) but ConfigMaps and Secrets, and Pods and
//     ReplicaSets: those with the host label, which the operator sets on its children (and
//     the Deployment on its ReplicaSets and pods).
//   - ConfigMaps and Secrets (the metadataOnly kinds), watched as metadata only (see
//     clientOptions): those with the
//     consent label LabelPluginAuth, whatever its value. A user's Secret or ConfigMap carries
//     it with "true" when its owner lets Plugins and PluginHosts use it; the operator's own
//     <host>-credentials and <host>-config carry it with ChildConsentValue, which consents
//     to nothing.
//
// Anything else (a foreign object with a child's name, an unmarked Secret or ConfigMap) is
// read from the API server when a reconcile needs it (ownership.go, readUserConfig,
// readSecrets). The transform drops managedFields and the last-applied-configuration
// annotation of client-side kubectl apply from everything cached: nothing here reads them.
func cacheOptions(namespaces []string) cache.Options {
	owned := cache.ByObject{Label: labelExists(v1alpha1.LabelHost)}
	consented := cache.ByObject{Label: labelExists(v1alpha1.LabelPluginAuth)}
	opts := cache.Options{
		ByObject: map[client.Object]cache.ByObject{
			// Not children, but the Deployment's: they carry the host label too.
			&corev1.Pod{}:        owned,
			&appsv1.ReplicaSet{}: owned,
			// A host's configuration revisions (revisions.go).
			&appsv1.ControllerRevision{}: owned,
		},
		DefaultTransform: stripForCache,
	}
	for _, k := range childKinds {
		if k.metadataOnly {
			opts.ByObject[k.newObject()] = consented
		} else {
			opts.ByObject[k.newObject()] = owned
		}
	}
	if len(namespaces) > 0 {
		opts.DefaultNamespaces = map[string]cache.Config{}
		for _, ns := range namespaces {
			opts.DefaultNamespaces[ns] = cache.Config{}
		}
	}
	return opts
}

// labelExists selects the objects that carry the label key, whatever its value.
func labelExists(key string) labels.Selector {
	req, err := labels.NewRequirement(key, selection.Exists, nil)
	if err != nil {
		panic(err) // a constant label key
	}
	return labels.NewSelector().Add(*req)
}

// lastAppliedAnnotation is what client-side `kubectl apply` stores: a copy of the whole
// object as last applied, as large as the object itself.
const lastAppliedAnnotation = "kubectl.kubernetes.io/last-applied-configuration"

// stripForCache is the cache's transform: it drops managedFields and the
// last-applied-configuration annotation before an object is stored. Code that needs either
// reads the object from the API server (mgr.GetAPIReader()).
func stripForCache(in any) (any, error) {
	obj, err := meta.Accessor(in)
	if err != nil {
		return in, nil //nolint:nilerr // not an object (a tombstone): stored as it is
	}
	// Only when set, as in cache.TransformStripManagedFields (kubernetes/kubernetes#124337).
	if obj.GetManagedFields() != nil {
		obj.SetManagedFields(nil)
	}
	if a := obj.GetAnnotations(); a != nil {
		if _, ok := a[lastAppliedAnnotation]; ok {
			delete(a, lastAppliedAnnotation)
			obj.SetAnnotations(a)
		}
	}
	// A revision's data is a whole config.json (up to 1 MiB), revisionHistoryLimit of them
	// per host: the manager reads its header once per UID and its config only when pinned,
	// from the API server (controllers/revisions.go).
	if cr, ok := in.(*appsv1.ControllerRevision); ok {
		cr.Data = runtime.RawExtension{}
	}
	return in, nil
}

// clientOptions returns the manager's client settings: ConfigMaps and Secrets are read from
// the API server, never from the cache, so that the operator holds no Secret's or
// ConfigMap's data in memory (the cache has the metadata of the selected ones only, for the
// watches); it reads the few a reconcile needs.
func clientOptions() client.Options {
	return client.Options{Cache: &client.CacheOptions{DisableFor: []client.Object{&corev1.ConfigMap{}, &corev1.Secret{}}}}
}

// Field indexes.
const (
	indexConfigMapRef = "spec.configMapRef.name"
	indexSecretRef    = "spec.auth.secretRef.name"
	// indexPluginLabel indexes Plugins by each of their labels, as "key=value": a host's
	// Plugins are listed through one pair of its matchLabels rather than by matching the
	// selector against every Plugin of the namespace (selectedPlugins).
	indexPluginLabel = "metadata.labels"
	// indexHostSelects indexes PluginHosts by one "key=value" pair of their selector's
	// matchLabels, which every Plugin they select carries, or by anyLabels when the selector
	// has none: a Plugin's hosts are listed through its own labels (candidateHosts) rather
	// than by matching every host of the namespace, which copied each of them out of the cache
	// at every Plugin event (BenchmarkScale at 100 hosts: 12 % of the manager's CPU).
	indexHostSelects = "spec.pluginSelector.matchLabels"
	anyLabels        = "*"
)

// hostSelectsKey is a host's indexHostSelects value: the smallest key of its matchLabels,
// or anyLabels. A host without a selector selects nothing and is not indexed.
func hostSelectsKey(host *v1alpha1.PluginHost) []string {
	ps := host.Spec.PluginSelector
	switch {
	case ps == nil:
		return nil
	case len(ps.MatchLabels) == 0:
		return []string{anyLabels}
	}
	k := slices.Min(slices.Collect(maps.Keys(ps.MatchLabels)))
	return []string{k + "=" + ps.MatchLabels[k]}
}

// candidateHosts lists from the cache the PluginHosts of namespace that may select a Plugin
// with these labels: those indexed under one of its labels or under anyLabels. Each host
// that selects it is among them, once (a host has one index value); selectingHosts tells
// which do.
func candidateHosts(ctx context.Context, c client.Reader, namespace string, pluginLabels map[string]string, opts ...client.ListOption) ([]v1alpha1.PluginHost, error) {
	var out []v1alpha1.PluginHost
	add := func(value string) error {
		hosts := &v1alpha1.PluginHostList{}
		if err := c.List(ctx, hosts, append([]client.ListOption{client.InNamespace(namespace), client.MatchingFields{indexHostSelects: value}}, opts...)...); err != nil {
			return fmt.Errorf("listing PluginHosts: %w", err)
		}
		if out == nil {
			out = hosts.Items // most Plugins have one candidate list: not copied again
		} else {
			out = append(out, hosts.Items...)
		}
		return nil
	}
	if err := add(anyLabels); err != nil {
		return nil, err
	}
	for k, v := range pluginLabels {
		if err := add(k + "=" + v); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// selectedPlugins lists from the cache the Plugins of host's namespace that sel (host's
// selector) selects, through indexPluginLabel when the selector has matchLabels.
func selectedPlugins(ctx context.Context, c client.Reader, host *v1alpha1.PluginHost, sel labels.Selector, opts ...client.ListOption) (*v1alpha1.PluginList, error) {
	opts = append(opts, client.InNamespace(host.Namespace), client.MatchingLabelsSelector{Selector: sel})
	if ps := host.Spec.PluginSelector; ps != nil && len(ps.MatchLabels) > 0 {
		k := slices.Min(slices.Collect(maps.Keys(ps.MatchLabels)))
		opts = append(opts, client.MatchingFields{indexPluginLabel: k + "=" + ps.MatchLabels[k]})
	}
	plugins := &v1alpha1.PluginList{}
	return plugins, c.List(ctx, plugins, opts...)
}

// setupControllers registers the field indexes and both reconcilers with mgr.
func setupControllers(ctx context.Context, mgr ctrl.Manager, opts Options) error {
	opts = opts.withDefaults()
	if err := ValidateAllowedHostImages(opts.AllowedHostImages); err != nil {
		return err
	}
	idx := mgr.GetFieldIndexer()
	if err := idx.IndexField(ctx, &v1alpha1.PluginHost{}, indexConfigMapRef, func(o client.Object) []string {
		if ref := o.(*v1alpha1.PluginHost).Spec.ConfigMapRef; ref != nil {
			return []string{ref.Name}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &v1alpha1.PluginHost{}, indexHostSelects, func(o client.Object) []string {
		return hostSelectsKey(o.(*v1alpha1.PluginHost))
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &v1alpha1.Plugin{}, indexSecretRef, func(o client.Object) []string {
		if name := authSecretName(o.(*v1alpha1.Plugin)); name != "" {
			return []string{name}
		}
		return nil
	}); err != nil {
		return err
	}
	if err := idx.IndexField(ctx, &v1alpha1.Plugin{}, indexPluginLabel, func(o client.Object) []string {
		out := make([]string, 0, len(o.GetLabels()))
		for k, v := range o.GetLabels() {
			out = append(out, k+"="+v)
		}
		return out
	}); err != nil {
		return err
	}
	recorder := mgr.GetEventRecorder("plugin-operator")
	reader := newStatusReader(opts.StatusTimeout, opts.MaxConcurrentProbes, opts.MaxConcurrentReconciles, opts.MaxStatusBytes)
	hosts := &PluginHostReconciler{
		Client: mgr.GetClient(), Recorder: recorder, Options: opts,
		reader:  reader,
		poller:  newLongPoller(reader, opts.StatusTimeout, opts.StatusPollInterval),
		applier: newApplier(mgr.GetClient(), mgr.GetCache(), mgr.GetAPIReader()),
		pacer:   newRenderPacer(opts.RenderPace, opts.MaxRenderPace),
		handoff: newStatusHandoff(),
		pusher:  newConfigPusher(opts.StatusTimeout, opts.MaxStatusBytes),
	}
	if err := mgr.Add(hosts.poller); err != nil {
		return err
	}
	if err := hosts.setupWithManager(mgr); err != nil {
		return err
	}
	plugins := &PluginReconciler{Client: mgr.GetClient(), handoff: hosts.handoff, writes: newUnseenStatusWrites()}
	hosts.handoff.pluginsOf = plugins.pluginsOfHost
	return plugins.setupWithManager(mgr, opts)
}

func (r *PluginHostReconciler) setupWithManager(mgr ctrl.Manager) error {
	if r.reader == nil || r.applier == nil || r.handoff == nil || r.pusher == nil {
		return errors.New("PluginHostReconciler: use NewManager")
	}
	specChanged := builder.WithPredicates(predicate.GenerationChangedPredicate{})
	b := ctrl.NewControllerManagedBy(mgr).
		Named("pluginhost").
		// Our own status writes do not change the generation, so they do not come back here.
		For(&v1alpha1.PluginHost{}, specChanged).
		// Another host's creation, deletion or selector change can move Plugins between hosts.
		Watches(&v1alpha1.PluginHost{}, handler.EnqueueRequestsFromMapFunc(r.hostsOfNamespace), specChanged)
	// A pod that applied the desired revision, heard through a long-poll of its /status.
	b = r.withLongPolls(b)
	b = withRevisionWatch(b)
	for _, k := range childKinds {
		if k.metadataOnly {
			b = b.Owns(k.newObject(), builder.OnlyMetadata)
		} else {
			b = b.Owns(k.newObject())
		}
	}
	return b.
		// Spec and label changes only: the Plugin reconciler's status writes are not inputs.
		// Paced: a burst of Plugin changes costs a few renders of each host (renderPacer).
		Watches(&v1alpha1.Plugin{}, pacedHandler{inner: handler.EnqueueRequestsFromMapFunc(r.hostsOfPlugin), pacer: r.pacer},
			builder.WithPredicates(predicate.Or[client.Object](predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		Watches(&corev1.ConfigMap{}, handler.EnqueueRequestsFromMapFunc(r.hostsOfConfigMap), builder.OnlyMetadata).
		Watches(&corev1.Secret{}, handler.EnqueueRequestsFromMapFunc(r.hostsOfSecret), builder.OnlyMetadata).
		// Pod status (running, IP, Ready) decides what is read and reported; the manager's
		// own nudge brings nothing new.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(r.hostOfPod), builder.WithPredicates(notOnlyNudged)).
		// A ReplicaSet of the host's Deployment decides which pods are trusted: its creation,
		// deletion and a change of its controller or labels; not its status (replica counts).
		Watches(&appsv1.ReplicaSet{}, handler.EnqueueRequestsFromMapFunc(r.hostOfReplicaSet),
			builder.WithPredicates(predicate.Or[client.Object](controllerChanged, predicate.LabelChangedPredicate{}))).
		WithOptions(controller.Options{MaxConcurrentReconciles: r.Options.MaxConcurrentReconciles}).
		Complete(r)
}

// withLongPolls adds the long-poller's events (a pod applied or refused a revision) to b.
func (r *PluginHostReconciler) withLongPolls(b *builder.Builder) *builder.Builder {
	if r.poller == nil {
		return b
	}
	return b.WatchesRawSource(source.Channel(r.poller.events, &handler.EnqueueRequestForObject{}))
}

func requestsFor(hosts []v1alpha1.PluginHost, keep func(*v1alpha1.PluginHost) bool) []reconcile.Request {
	var reqs []reconcile.Request
	for i := range hosts {
		if keep(&hosts[i]) {
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: hosts[i].Namespace, Name: hosts[i].Name}})
		}
	}
	return reqs
}

// hostsOfNamespace maps a PluginHost to every PluginHost of its namespace.
func (r *PluginHostReconciler) hostsOfNamespace(ctx context.Context, o client.Object) []reconcile.Request {
	hosts := &v1alpha1.PluginHostList{}
	if err := r.List(ctx, hosts, client.InNamespace(o.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot list PluginHosts")
		return nil
	}
	return requestsFor(hosts.Items, func(h *v1alpha1.PluginHost) bool { return h.Name != o.GetName() })
}

// hostsOfPlugin maps a Plugin to the PluginHosts that select its labels; called with the
// old and the new object on updates, so a host that stops selecting a Plugin hears of it.
func (r *PluginHostReconciler) hostsOfPlugin(ctx context.Context, o client.Object) []reconcile.Request {
	hosts, err := candidateHosts(ctx, r, o.GetNamespace(), o.GetLabels(), client.UnsafeDisableDeepCopy)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot list PluginHosts")
		return nil
	}
	return requestsFor(hosts, func(h *v1alpha1.PluginHost) bool { return selects(h, o.GetLabels()) })
}

// hostsOfConfigMap maps a user ConfigMap to the PluginHosts whose configMapRef names it.
func (r *PluginHostReconciler) hostsOfConfigMap(ctx context.Context, o client.Object) []reconcile.Request {
	hosts := &v1alpha1.PluginHostList{}
	if err := r.List(ctx, hosts, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexConfigMapRef: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot list PluginHosts")
		return nil
	}
	return append(requestsFor(hosts.Items, func(*v1alpha1.PluginHost) bool { return true }),
		r.hostOfForeignChild(ctx, o, configMapName)...)
}

// hostOfForeignChild maps an object that no PluginHost controls to the PluginHost whose child
// (named by childName) would have its name: a host stalled by a ChildConflict hears at once
// when a foreign ConfigMap or Secret that the cache selects (it carries the consent label's
// key) goes; an unlabelled one is never seen, and conflictRecheckInterval finds it gone.
// (The operator's own children reach their host through Owns.)
func (r *PluginHostReconciler) hostOfForeignChild(ctx context.Context, o client.Object, childName func(*v1alpha1.PluginHost) string) []reconcile.Request {
	if ref := metav1.GetControllerOfNoCopy(o); ref != nil && ref.Kind == "PluginHost" {
		return nil
	}
	probe := &v1alpha1.PluginHost{}
	probe.Name = "x"
	suffix := strings.TrimPrefix(childName(probe), probe.Name)
	name, ok := strings.CutSuffix(o.GetName(), suffix)
	if !ok || name == "" {
		return nil
	}
	key := types.NamespacedName{Namespace: o.GetNamespace(), Name: name}
	if err := r.Get(ctx, key, &v1alpha1.PluginHost{}); err != nil {
		return nil
	}
	return []reconcile.Request{{NamespacedName: key}}
}

// hostsOfSecret maps an auth Secret to the PluginHosts that select a Plugin naming it.
func (r *PluginHostReconciler) hostsOfSecret(ctx context.Context, o client.Object) []reconcile.Request {
	foreign := r.hostOfForeignChild(ctx, o, credentialsName)
	plugins := &v1alpha1.PluginList{}
	if err := r.List(ctx, plugins, client.InNamespace(o.GetNamespace()), client.MatchingFields{indexSecretRef: o.GetName()}, client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot list Plugins")
		return foreign
	}
	if len(plugins.Items) == 0 {
		return foreign
	}
	hosts := &v1alpha1.PluginHostList{}
	if err := r.List(ctx, hosts, client.InNamespace(o.GetNamespace()), client.UnsafeDisableDeepCopy); err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot list PluginHosts")
		return nil
	}
	return append(requestsFor(hosts.Items, func(h *v1alpha1.PluginHost) bool {
		for i := range plugins.Items {
			if selects(h, plugins.Items[i].Labels) {
				return true
			}
		}
		return false
	}), foreign...)
}

// controllerChanged passes creations, deletions and the updates that change an object's
// controller reference.
var controllerChanged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	a, b := metav1.GetControllerOfNoCopy(e.ObjectOld), metav1.GetControllerOfNoCopy(e.ObjectNew)
	return (a == nil) != (b == nil) || (a != nil && a.UID != b.UID)
}}

// notOnlyNudged passes every pod event but an update that changes nothing except the
// nudge's annotations: the manager's own write (nudge), after the reconcile that decided it,
// which holds nothing a host reconcile reads. It brought one more reconcile of the host
// when none was queued yet: without it, 2.04 host reconciles per rendered revision at
// 10,000 Plugins on 100 hosts, 1.79 with it (BenchmarkScale).
var notOnlyNudged = predicate.Funcs{UpdateFunc: func(e event.UpdateEvent) bool {
	a, okA := e.ObjectOld.(*corev1.Pod)
	b, okB := e.ObjectNew.(*corev1.Pod)
	if !okA || !okB || !sameButNudge(a.Annotations, b.Annotations) {
		return true
	}
	// The old pod with the new one's annotations and version (a copy: the cached object
	// stays as it is) equals the new one when nothing else changed.
	old := *a
	old.Annotations, old.ResourceVersion, old.ManagedFields = b.Annotations, b.ResourceVersion, b.ManagedFields
	return !equality.Semantic.DeepEqual(&old, b)
}}

// sameButNudge reports whether two pods' annotations are the same but for those the nudge
// writes.
func sameButNudge(a, b map[string]string) bool {
	nudge := func(k string) bool {
		return k == v1alpha1.ConfigRevisionAnnotation || k == v1alpha1.CredentialsRevisionAnnotation
	}
	for k, v := range a {
		if w, ok := b[k]; !nudge(k) && (!ok || w != v) {
			return false
		}
	}
	for k := range b {
		if _, ok := a[k]; !nudge(k) && !ok {
			return false
		}
	}
	return true
}

// hostOfReplicaSet maps a ReplicaSet that the host's Deployment controls (by name and UID,
// read from the cache) to the host named by its host label. The Deployment controller
// creates the ReplicaSet just before its pods, and the pod informer may deliver a pod before
// the ReplicaSet informer has cached its owner: hostOfPod then maps nothing, and this event
// is the one that brings the reconcile which trusts the pod.
func (r *PluginHostReconciler) hostOfReplicaSet(ctx context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[v1alpha1.LabelHost]
	ref := metav1.GetControllerOfNoCopy(o)
	if name == "" || ref == nil || ref.Kind != "Deployment" {
		return nil
	}
	host := &v1alpha1.PluginHost{ObjectMeta: metav1.ObjectMeta{Namespace: o.GetNamespace(), Name: name}}
	if ref.Name != deploymentName(host) {
		return nil
	}
	deploy := &appsv1.Deployment{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: host.Namespace, Name: ref.Name}, deploy); err != nil || deploy.UID != ref.UID {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: host.Namespace, Name: name}}}
}

// hostOfPod maps a host pod to its PluginHost, named by the host label, when the pod is
// trusted (trustedPod: its owner chain leads to the host's Deployment, read from the cache).
// A pod that merely carries the label triggers nothing, however often it changes: the
// reconcile would ignore it anyway. A pod whose ReplicaSet is not cached yet is not mapped:
// the ReplicaSet's own event, once cached, brings the reconcile (hostOfReplicaSet).
func (r *PluginHostReconciler) hostOfPod(ctx context.Context, o client.Object) []reconcile.Request {
	name := o.GetLabels()[v1alpha1.LabelHost]
	pod, ok := o.(*corev1.Pod)
	if name == "" || !ok {
		return nil
	}
	host := &v1alpha1.PluginHost{ObjectMeta: metav1.ObjectMeta{Namespace: pod.Namespace, Name: name}}
	deploy := &appsv1.Deployment{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: deploymentName(host)}, deploy); err != nil {
		return nil
	}
	var replicaSets map[string]*appsv1.ReplicaSet
	if ref := metav1.GetControllerOfNoCopy(pod); ref != nil && ref.Kind == "ReplicaSet" {
		rs := &appsv1.ReplicaSet{}
		if err := r.Get(ctx, types.NamespacedName{Namespace: pod.Namespace, Name: ref.Name}, rs); err == nil {
			replicaSets = map[string]*appsv1.ReplicaSet{rs.Name: rs}
		}
	}
	if !trustedPod(pod, deploy, replicaSets) {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: pod.Namespace, Name: name}}}
}
