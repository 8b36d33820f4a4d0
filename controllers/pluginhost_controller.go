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
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/recorder"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/pluginconfig"
)

// PluginHostReconciler renders a PluginHost's configuration, applies its workload, nudges
// its pods and reports what each pod applied. See the package documentation.
type PluginHostReconciler struct {
	client.Client
	Recorder recorder.EventRecorder
	Options  Options

	types   typesCache
	reader  *statusReader
	poller  *longPoller
	applier *applier
	pacer   *renderPacer
	clock   rolloutClock
	revKeys revisionKeys
	revBook revisionBook
	// sequences and pusher deliver configurations to the pods (config_push.go).
	sequences configSequences
	pusher    *configPusher
	// handoff passes the status being written to the Plugin reconciler.
	handoff *statusHandoff
	// looked are the hosts this process has reconciled since it started (see patchStatus).
	looked sync.Map
}

// afterOwnershipCheck, nil but in tests, runs between the ownership check and the writes
// of a reconcile: where an object created by someone else must not be taken over.
var afterOwnershipCheck atomic.Pointer[func(host *v1alpha1.PluginHost)]

// conflictRecheckInterval is how often a host whose child name is taken looks again. The
// cache holds children with the host label only, and ConfigMaps and Secrets with the consent
// label only (cacheOptions, to keep memory bounded by what the operator manages on large
// clusters), so no event announces that a foreign, unlabelled one is gone; each look costs
// one metadata GET per missing child.
const conflictRecheckInterval = 10 * time.Second

// hostReconcile carries one reconcile's state between its steps.
type hostReconcile struct {
	host   *v1alpha1.PluginHost
	before *v1alpha1.PluginHost
	// plugins are the selected Plugins, by name, for events.
	plugins map[string]*v1alpha1.Plugin
	// pods are the host's trusted pods, by name, for events.
	pods map[string]*corev1.Pod
	// trusted are the host's trusted pods not being deleted, sorted by name; running those
	// of them that run, and results their /status answers, in the same order.
	trusted, running []*corev1.Pod
	results          []probeResult
	// types are the plugin types of the host's current image, or why they are not known.
	types hostTypes
	facts hostFacts
	// credentialsRevision is the keyed digest of the rendered credentials ("" if not
	// rendered in this reconcile; see credentialsDigest).
	credentialsRevision string
	// revs are the host's configuration revisions and what this reconcile served
	// (revisions.go).
	revs revisionState
	// push is the configuration this reconcile applied to the ConfigMap, for pushConfig
	// (nil if none).
	push *configPush
	// nudge is set once the reconcile reached reconcileRollout: its pods are nudged after
	// the status write.
	nudge bool
	// early is the status handed to the Plugin reconciler once the pods were read, before
	// the revision is recorded (earlyHandoff); nil if none.
	early *handoff
}

// Reconcile follows the skeleton of every reconciler here: get, skip deletion (children are
// garbage-collected through their owner references), run the steps, write status once.
func (r *PluginHostReconciler) Reconcile(ctx context.Context, req ctrl.Request) (result ctrl.Result, retErr error) {
	host := &v1alpha1.PluginHost{}
	if err := r.Get(ctx, req.NamespacedName, host); err != nil {
		if apierrors.IsNotFound(err) {
			r.applier.forget(&v1alpha1.PluginHost{ObjectMeta: metav1.ObjectMeta{Namespace: req.Namespace, Name: req.Name}})
			r.clock.forgetHost(req.NamespacedName)
			r.revKeys.forget(req.NamespacedName)
			r.revBook.forget(req.NamespacedName)
			r.sequences.forget(req.NamespacedName)
			r.poller.forget(req.NamespacedName)
			r.looked.Delete(req.NamespacedName)
			r.pacer.forget(req.NamespacedName)
			r.handoff.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !host.DeletionTimestamp.IsZero() {
		r.poller.forget(req.NamespacedName)
		return ctrl.Result{}, nil
	}
	r.pacer.started(req.NamespacedName, time.Now())
	// The pods that await the desired revision are long-polled until the next reconcile
	// (none if this one ends early: its retry decides again).
	polled := false
	defer func() {
		if !polled {
			r.poller.forget(req.NamespacedName)
		}
	}()
	ctx = ctrl.LoggerInto(ctx, ctrl.LoggerFrom(ctx).WithValues("pluginHost", klog.KObj(host)))

	rc := &hostReconcile{host: host, before: host.DeepCopy()}
	defer func() {
		// A failed step leaves the generation unevaluated; a conflict or a refused child is an
		// evaluation, whose answer is that someone has to act.
		if retErr != nil {
			rc.facts.FailedStep = retErr.Error()
		} else {
			host.Status.ObservedGeneration = host.Generation
		}
		setHostConditions(host, rc.facts)
		if err := r.patchStatus(ctx, rc); err != nil {
			retErr = errors.Join(retErr, err)
			return
		}
		r.nudgePods(ctx, rc)
		retErr = errors.Join(retErr, r.writeOutcomes(ctx, rc))
		r.recordEvents(rc)
	}()

	foreign, err := r.applier.foreignChildren(ctx, host)
	if err != nil {
		return ctrl.Result{}, err
	}
	if len(foreign) > 0 {
		rc.facts.Conflicts = foreign
		return ctrl.Result{RequeueAfter: conflictRecheckInterval}, nil
	}
	if f := afterOwnershipCheck.Load(); f != nil {
		(*f)(host)
	}
	// The pods are read first: the types their image advertises decide which Plugins the
	// configuration holds, in this same reconcile.
	steps := []func(context.Context, *hostReconcile) error{r.readPods, r.reconcileTypes, r.reconcileConfig, r.reconcileWorkload, r.reconcileRollout, r.reconcileRevisions}
	if msg := imageRefusal(host, r.Options.DefaultHostImage, r.Options.AllowedHostImages); msg != "" {
		// Nothing is rendered or applied, only the pods are read: the last accepted workload
		// keeps running.
		// Revocations excepted: a Secret's owner withdrawing consent is applied all the same.
		rc.facts.ConfigReason, rc.facts.ConfigMessage = v1alpha1.ReasonImageNotAllowed, msg
		steps = []func(context.Context, *hostReconcile) error{r.readPods, r.revokeWhileFrozen, r.reconcileRollout, r.reconcileRevisions}
	}
	for _, step := range steps {
		if err := step(ctx, rc); err != nil {
			if c := conflictOf(err); c != nil {
				// An object of a child's name appeared after the ownership check: as if the
				// check had found it.
				rc.facts.Conflicts = []string{c.message}
				return ctrl.Result{RequeueAfter: conflictRecheckInterval}, nil
			}
			if refusal := refusalOf(err); refusal != nil {
				// Stalled, not retried with backoff: the same write gets the same answer until
				// someone acts, and nothing the manager watches says when (as for a conflict).
				rc.facts.Refusal = refusal.message()
				// Once per refusal, not at every try; the event says it too.
				if c := meta.FindStatusCondition(rc.before.Status.Conditions, v1alpha1.ConditionReady); c == nil || c.Message != rc.facts.Refusal {
					ctrl.LoggerFrom(ctx).Info("The API server refused a child; writing it again every "+refusedRecheckInterval.String(), "error", err.Error())
				}
				return ctrl.Result{RequeueAfter: refusedRecheckInterval}, nil
			}
			return ctrl.Result{}, err
		}
	}
	r.takeLateNews(ctx, rc)
	polled = true
	covered := r.poller.sync(req.NamespacedName, awaited(rc))
	var after time.Duration
	if !rc.facts.converged() {
		after = r.statusPollInterval(host, rc.facts, covered)
	}
	if waitsForUnwatched(rc) && (after == 0 || after > missingRecheckInterval) {
		after = missingRecheckInterval
	}
	return ctrl.Result{RequeueAfter: after}, nil
}

// missingRecheckInterval is how often a host looks again for a Secret or ConfigMap it names
// and did not find. The cache holds only the Secrets and ConfigMaps that carry the consent
// label (cacheOptions), so the creation of an unmarked one sends no event; the look tells
// "not found" from "not marked" within this interval. Each look costs one GET per missing
// object. A marked object's creation is an event, answered at once.
const missingRecheckInterval = 10 * time.Second

// waitsForUnwatched reports whether the host names a Secret or ConfigMap that was not found.
func waitsForUnwatched(rc *hostReconcile) bool {
	if rc.facts.ConfigReason == v1alpha1.ReasonConfigMapNotFound {
		return true
	}
	for _, e := range rc.host.Status.Plugins {
		if e.Reason == v1alpha1.ReasonSecretNotFound {
			return true
		}
	}
	return false
}

// reconcileConfig evaluates the selected Plugins, renders config.json and applies the
// credentials Secret, then the ConfigMap. When the user's ConfigMap is missing or invalid it
// applies nothing: the host keeps serving the last rendered configuration.
func (r *PluginHostReconciler) reconcileConfig(ctx context.Context, rc *hostReconcile) error {
	host := rc.host
	host.Status.URL = hostURL(host)
	// Before the host's types are known, the user's configuration is checked but for its
	// types and options, and the Plugins wait (evaluatePlugins).
	var known pluginconfig.Types = anyTypes{}
	if rc.types.Set != nil {
		known = rc.types.Set
	}
	user, err := r.readUserConfig(ctx, rc, known)
	if err != nil {
		return err
	}
	sel, err := hostSelector(host)
	if err != nil {
		// Admission cannot check a selector's operators; this generation can never work.
		rc.facts.ConfigReason, rc.facts.ConfigMessage = v1alpha1.ReasonConfigInvalid, err.Error()
		// Reported in the Degraded condition; retrying cannot fix the spec.
		return r.revokeWhileFrozen(ctx, rc)
	}

	hosts := &v1alpha1.PluginHostList{}
	if err := r.List(ctx, hosts, client.InNamespace(host.Namespace), client.UnsafeDisableDeepCopy); err != nil {
		return fmt.Errorf("listing PluginHosts: %w", err)
	}
	plugins, err := selectedPlugins(ctx, r, host, sel, client.UnsafeDisableDeepCopy)
	if err != nil {
		return fmt.Errorf("listing Plugins: %w", err)
	}
	rc.plugins = make(map[string]*v1alpha1.Plugin, len(plugins.Items))
	for i := range plugins.Items {
		rc.plugins[plugins.Items[i].Name] = &plugins.Items[i]
	}
	secrets, err := r.readSecrets(ctx, host.Namespace, plugins.Items)
	if err != nil {
		return err
	}
	ev := evaluatePlugins(configInputs{
		Host: host, Hosts: hosts.Items, Plugins: plugins.Items, Secrets: secrets, User: user,
		SecretsDir: r.Options.SecretsMountPath, Types: known, HostTypes: rc.types,
		LastGood: r.lastGood(ctx, rc),
	})

	// Without the types, a configuration is rendered only when there is none yet, without
	// the Plugins, so that the first pod starts and advertises; otherwise the pods keep the
	// last one, which may hold Plugins of the previous image that still serve.
	keepLast := rc.types.Set == nil && host.Status.ConfigRevision != ""
	rendered := false
	if host.Spec.PinnedRevision != "" {
		// A pin serves a recorded revision whatever the Plugins' render would be; it also
		// revokes what it must, found or not.
		if err := r.servePinned(ctx, rc); err != nil {
			return err
		}
		rendered = true
	} else if rc.facts.ConfigReason == "" && !keepLast {
		data, err := renderConfig(user, ev.Accepted, known)
		if err != nil {
			rc.facts.ConfigReason, rc.facts.ConfigMessage = v1alpha1.ReasonConfigInvalid, err.Error()
		} else {
			// The credentials first: the configuration refers to their files. The Secret also
			// keeps the key of the credentials revision, created once.
			key, err := r.revKeys.get(ctx, r.Client, host)
			if err != nil {
				return err
			}
			if err := r.applier.apply(ctx, renderCredentials(host, withRevisionKey(ev.Credentials, key))); err != nil {
				return err
			}
			rc.credentialsRevision = credentialsDigest(key, ev.Credentials)
			rev, err := r.applyConfigMap(ctx, rc, data)
			if err != nil {
				return err
			}
			rendered = true
			var userEntries []pluginconfig.Plugin
			if user != nil {
				userEntries = user.Plugins
			}
			rc.revs.served = &servedConfig{data: data, sources: renderedSources(ev, rc.plugins), configMap: rc.revs.configMap,
				facts: &configFacts{plugins: len(userEntries) + len(ev.Accepted), inline: inlineCredentials(userEntries, ev.Accepted)}}
			if rev != host.Status.ConfigRevision {
				ctrl.LoggerFrom(ctx).Info("Rendered a new configuration", "revision", short(rev), "plugins", len(ev.Accepted))
				// The time of this manager's first try: a retry after a failed status write
				// keeps it.
				at := r.clock.renderedAt(client.ObjectKeyFromObject(host), rev, time.Now())
				host.Status.ConfigRevisionTime = &metav1.Time{Time: at}
			}
			host.Status.ConfigRevision = rev
			n := len(ev.Accepted)
			if user != nil {
				n += len(user.Plugins)
			}
			host.Status.PluginCount = int32(n)
			for i := range ev.Plugins {
				if ev.Plugins[i].Reason == v1alpha1.ReasonAccepted {
					ev.Plugins[i].Revision = rev
				}
			}
		}
	}

	if !rendered {
		// The last configuration keeps serving, but for the credentials withdrawn since.
		if err := r.revokeWhileFrozen(ctx, rc); err != nil {
			return err
		}
	}

	for i := range ev.Plugins {
		e := &ev.Plugins[i]
		prev := findEntry(rc.before, e.Name)
		if prev == nil || prev.UID != e.UID {
			continue
		}
		e.AppliedGeneration = prev.AppliedGeneration
		// Not rendered this time: the generation is in the last revision only if it was then.
		if rc.facts.ConfigReason != "" && e.Reason == v1alpha1.ReasonAccepted && prev.Generation == e.Generation {
			e.Revision = prev.Revision
		}
	}
	host.Status.Plugins = ev.Plugins
	host.Status.UnlistedPlugins = int32(ev.Unlisted)
	return nil
}

// lastGood returns the LastGood of configInputs: a Plugin's entry in the rendered ConfigMap,
// read once and only when a refused Plugin asks, and only when the host's status says the
// entry was this Plugin's (same UID).
func (r *PluginHostReconciler) lastGood(ctx context.Context, rc *hostReconcile) func(*v1alpha1.Plugin) (pluginconfig.Plugin, bool) {
	var entries map[string]pluginconfig.Plugin
	return func(p *v1alpha1.Plugin) (pluginconfig.Plugin, bool) {
		if prev := findEntry(rc.before, p.Name); prev == nil || prev.UID != p.UID {
			return pluginconfig.Plugin{}, false
		}
		if entries == nil {
			entries = map[string]pluginconfig.Plugin{}
			cm := &corev1.ConfigMap{}
			if err := r.Get(ctx, types.NamespacedName{Namespace: rc.host.Namespace, Name: configMapName(rc.host)}, cm); err != nil {
				return pluginconfig.Plugin{}, false // nothing rendered yet, or unreadable: nothing to keep
			}
			cfg, err := pluginconfig.Decode([]byte(cm.Data[ConfigFileName]))
			if err != nil {
				return pluginconfig.Plugin{}, false
			}
			for _, e := range cfg.Plugins {
				entries[e.Name] = e
			}
		}
		e, ok := entries[p.Name]
		return e, ok
	}
}

// readUserConfig reads and parses spec.configMapRef; a missing, unmarked or invalid
// ConfigMap is recorded in rc.facts, not returned as an error. The ConfigMap is read from the
// API server (clientOptions), so one that the cache does not select is found too.
func (r *PluginHostReconciler) readUserConfig(ctx context.Context, rc *hostReconcile, known pluginconfig.Types) (*pluginconfig.Config, error) {
	ref := rc.host.Spec.ConfigMapRef
	if ref == nil {
		return nil, nil
	}
	key := configMapKey(ref)
	cm := &corev1.ConfigMap{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: rc.host.Namespace, Name: ref.Name}, cm); err != nil {
		if apierrors.IsNotFound(err) {
			rc.facts.ConfigReason = v1alpha1.ReasonConfigMapNotFound
			rc.facts.ConfigMessage = fmt.Sprintf("ConfigMap %q (spec.configMapRef) not found; keeping the last rendered configuration", ref.Name)
			return nil, nil
		}
		return nil, fmt.Errorf("getting ConfigMap %s: %w", ref.Name, err)
	}
	rc.revs.configMap = cm.Name + "@" + cm.ResourceVersion
	// Before the keys: an unmarked ConfigMap's content is none of the PluginHost's business.
	if msg := configMapRefusal(cm); msg != "" {
		rc.facts.ConfigReason, rc.facts.ConfigMessage = v1alpha1.ReasonConfigMapNotConsented, msg
		return nil, nil
	}
	data, ok := []byte(cm.Data[key]), true
	if _, inData := cm.Data[key]; !inData {
		data, ok = cm.BinaryData[key]
	}
	if !ok {
		rc.facts.ConfigReason = v1alpha1.ReasonConfigMapNotFound
		rc.facts.ConfigMessage = fmt.Sprintf("ConfigMap %q (spec.configMapRef) has no key %q; keeping the last rendered configuration", ref.Name, key)
		return nil, nil
	}
	cfg, err := parseUserConfig(data, known)
	if err != nil {
		rc.facts.ConfigReason = v1alpha1.ReasonConfigInvalid
		// The parser's own words quote the content (values, unknown keys); only the place
		// and kind of each error are reported (pluginconfig.Redact).
		rc.facts.ConfigMessage = truncateText(fmt.Sprintf("ConfigMap %q key %q is not a valid config.json; keeping the last rendered configuration: %s",
			ref.Name, key, pluginconfig.Redact(err)), MaxReportedTextBytes)
		return nil, nil
	}
	return cfg, nil
}

// readSecrets reads the Secrets that the Plugins' auth names (straight from the API server:
// Secrets are not cached). A missing Secret is left out of the map.
func (r *PluginHostReconciler) readSecrets(ctx context.Context, namespace string, plugins []v1alpha1.Plugin) (map[string]*corev1.Secret, error) {
	secrets := map[string]*corev1.Secret{}
	seen := map[string]bool{}
	for i := range plugins {
		name := authSecretName(&plugins[i])
		if name == "" || seen[name] {
			continue
		}
		seen[name] = true
		s := &corev1.Secret{}
		err := r.Get(ctx, types.NamespacedName{Namespace: namespace, Name: name}, s)
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return nil, fmt.Errorf("getting Secret %s: %w", name, err)
		default:
			secrets[name] = s
		}
	}
	return secrets, nil
}

// reconcileWorkload applies the state PVC (when persistence is enabled), the Deployment, the
// Service, and the NetworkPolicy and PodDisruptionBudget when enabled (deleting them when
// not). They depend on the PluginHost's spec only.
func (r *PluginHostReconciler) reconcileWorkload(ctx context.Context, rc *hostReconcile) error {
	host := rc.host
	if claim := renderStateClaim(host); claim != nil {
		if err := r.applier.apply(ctx, claim); err != nil {
			return err
		}
	}
	params := workloadParams{
		DefaultImage: r.Options.DefaultHostImage, SecretsDir: r.Options.SecretsMountPath,
		ManagerNamespace: r.Options.ManagerNamespace, ManagerPodLabels: r.Options.ManagerPodLabels,
	}
	if err := r.applier.apply(ctx, renderDeployment(host, params)); err != nil {
		return err
	}
	if err := r.applier.apply(ctx, renderService(host)); err != nil {
		return err
	}
	if np := renderNetworkPolicy(host, params); np != nil {
		if err := r.applier.apply(ctx, np); err != nil {
			return err
		}
	}
	if pdb := renderBudget(host); pdb != nil {
		if err := r.applier.apply(ctx, pdb); err != nil {
			return err
		}
	}
	for _, k := range childKinds {
		if k.deletedWhenOff && !k.renders(host) {
			if err := r.deleteChild(ctx, host, k.typedObject(host)); err != nil {
				return err
			}
		}
	}
	return nil
}

// deleteChild deletes obj, an optional child that host no longer renders, if the cache holds
// it and host controls it: an object of that name that someone else made is not ours.
func (r *PluginHostReconciler) deleteChild(ctx context.Context, host *v1alpha1.PluginHost, obj client.Object) error {
	if err := r.Get(ctx, client.ObjectKeyFromObject(obj), obj); err != nil {
		return client.IgnoreNotFound(err)
	}
	if !metav1.IsControlledBy(obj, host) {
		return nil
	}
	uid := obj.GetUID()
	if err := r.Delete(ctx, obj, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
		kind := strings.TrimPrefix(fmt.Sprintf("%T", obj), "*v1.")
		return asRefusal("delete "+kind+" "+obj.GetName()+" (no longer enabled)",
			fmt.Errorf("deleting %T %s, no longer enabled: %w", obj, obj.GetName(), err))
	}
	ctrl.LoggerFrom(ctx).Info("Deleted a child no longer enabled", "name", obj.GetName(), "kind", fmt.Sprintf("%T", obj))
	return nil
}

// readPods lists the host's trusted pods and reads the /status of those that run.
func (r *PluginHostReconciler) readPods(ctx context.Context, rc *hostReconcile) error {
	host, log := rc.host, ctrl.LoggerFrom(ctx)
	deploy := &appsv1.Deployment{}
	if err := r.Get(ctx, types.NamespacedName{Namespace: host.Namespace, Name: deploymentName(host)}, deploy); client.IgnoreNotFound(err) != nil {
		return fmt.Errorf("getting Deployment: %w", err)
	}
	podList := &corev1.PodList{}
	if err := r.List(ctx, podList, client.InNamespace(host.Namespace), client.MatchingLabels(selectorLabels(host))); err != nil {
		return fmt.Errorf("listing pods: %w", err)
	}
	rsList := &appsv1.ReplicaSetList{}
	if err := r.List(ctx, rsList, client.InNamespace(host.Namespace), client.MatchingLabels(selectorLabels(host))); err != nil {
		return fmt.Errorf("listing ReplicaSets: %w", err)
	}
	replicaSets := make(map[string]*appsv1.ReplicaSet, len(rsList.Items))
	for i := range rsList.Items {
		replicaSets[rsList.Items[i].Name] = &rsList.Items[i]
	}

	rc.pods = map[string]*corev1.Pod{}
	rc.trusted, rc.running = nil, nil
	for i := range podList.Items {
		pod := &podList.Items[i]
		if !pod.DeletionTimestamp.IsZero() {
			continue
		}
		if !trustedPod(pod, deploy, replicaSets) {
			// Only labelled, not owned: never read, annotated or reported.
			log.V(1).Info("Ignoring a pod with the host's labels that the host's Deployment does not own", "pod", klog.KObj(pod))
			continue
		}
		rc.pods[pod.Name] = pod
		rc.trusted = append(rc.trusted, pod)
		if podRunning(pod) {
			rc.running = append(rc.running, pod)
		}
	}
	byName := func(a, b *corev1.Pod) int { return strings.Compare(a.Name, b.Name) }
	slices.SortFunc(rc.trusted, byName)
	slices.SortFunc(rc.running, byName)
	rc.results = r.reader.readAll(ctx, rc.running)
	countProbeErrors(host, rc.results)
	rc.facts.DeploymentAvailable = deploymentAvailable(deploy)
	return nil
}

// reconcileTypes records in status.types the plugin types that a running pod of the image
// the host renders advertised, and compiles them for reconcileConfig. Types recorded from
// another image do not count; an advertisement the manager refuses is not recorded.
func (r *PluginHostReconciler) reconcileTypes(ctx context.Context, rc *hostReconcile) error {
	host := rc.host
	image := hostImage(host, r.Options.DefaultHostImage)
	rc.types = hostTypes{Image: image}
	adv, preSDK := findAdvertisement(image, rc.running, rc.results)
	switch {
	case adv != nil:
		set, err := r.types.compile(adv.Types)
		if err != nil {
			rc.types.Reason = v1alpha1.ReasonHostTypesInvalid
			rc.types.Message = truncateText(fmt.Sprintf("Pod %s (image %s) advertised plugin types that the manager refuses, so no Plugin is rendered; fix the image: %v",
				adv.Pod, image, err), MaxReportedTextBytes)
			return nil
		}
		rc.types.Set = set
		recorded := typesToStatus(set.Types())
		if host.Status.TypesImage != image || !sameTypes(host.Status.Types, recorded) {
			ctrl.LoggerFrom(ctx).Info("Recorded the plugin types the host's image advertises", "image", image, "pod", adv.Pod, "types", set.TypeNames())
			host.Status.Types, host.Status.TypesImage = recorded, image
		}
	case host.Status.TypesImage == image && len(host.Status.Types) > 0:
		set, err := r.types.compile(typesFromStatus(host.Status.Types))
		if err != nil {
			rc.types.Reason = v1alpha1.ReasonHostTypesInvalid
			rc.types.Message = truncateText(fmt.Sprintf("The plugin types recorded in status.types for image %s are refused: %v", image, err), MaxReportedTextBytes)
			return nil
		}
		rc.types.Set = set
	default:
		rc.types.Reason = v1alpha1.ReasonAwaitingHostTypes
		rc.types.Message = awaitingTypesMessage(host.Name, image, preSDK)
	}
	return nil
}

// reconcileRollout counts the host's pods, pushes the configuration to the running ones,
// takes what each applied and sets the conditions.
//
// The configuration is pushed to the running pods first, so that they serve it at once and
// this reconcile reports them; the pods are nudged after the status is written (Reconcile),
// so that the Plugins' Ready does not wait for the pod annotations: kubelet's projection,
// which they speed up, is the durable copy, and the one path where the push did not land.
func (r *PluginHostReconciler) reconcileRollout(ctx context.Context, rc *hostReconcile) error {
	rc.facts.TypesReason, rc.facts.TypesMessage = rc.types.Reason, rc.types.Message
	for _, pod := range rc.trusted {
		rc.facts.Pods++
		if podReady(pod) {
			rc.facts.ReadyPods++
		}
	}
	rc.nudge = true
	r.pushConfig(ctx, rc)
	r.reportPods(ctx, rc)
	r.earlyHandoff(ctx, rc)
	return nil
}

// earlyHandoff hands the status as the pods' reports left it to the Plugin reconciler,
// before the reconcile records the revision: a Plugin's Ready then waits for its own status
// write only, not also for the ControllerRevision's create (about 10 ms of Ready − served on
// the real node). What the Plugins read of a host is final by then (the revision's number
// and the history are not part of it); the status written at the end revises the handoff
// (patchStatus), and the Plugins that read it differently are woken again.
func (r *PluginHostReconciler) earlyHandoff(ctx context.Context, rc *hostReconcile) {
	preview := rc.host.DeepCopy()
	preview.Status.ObservedGeneration = preview.Generation
	setHostConditions(preview, rc.facts)
	rc.early = r.handoff.offer(ctx, rc.before, preview)
}

// nudgePods annotates the host's trusted pods with the desired revision (see nudge), after
// a reconcile that reached reconcileRollout.
func (r *PluginHostReconciler) nudgePods(ctx context.Context, rc *hostReconcile) {
	host, log := rc.host, ctrl.LoggerFrom(ctx)
	desired := host.Status.ConfigRevision
	if !rc.nudge || !r.Options.PodNudge || desired == "" {
		return
	}
	for _, pod := range rc.trusted {
		if pod.Annotations[v1alpha1.ConfigRevisionAnnotation] != desired ||
			rc.credentialsRevision != "" && pod.Annotations[v1alpha1.CredentialsRevisionAnnotation] != rc.credentialsRevision {
			if err := r.nudge(ctx, pod, desired, rc.credentialsRevision); err != nil {
				// Not fatal: kubelet still syncs the volume at its next periodic sync.
				log.Error(err, "Cannot annotate pod with the new revision; kubelet applies it at its next periodic sync", "pod", klog.KObj(pod))
			}
		}
	}
}

// reportPods takes what each running pod applied from rc.results into the status and the
// facts.
func (r *PluginHostReconciler) reportPods(ctx context.Context, rc *hostReconcile) {
	host, log := rc.host, ctrl.LoggerFrom(ctx)
	desired := host.Status.ConfigRevision
	rc.facts.Running = nil
	running, results := rc.running, rc.results
	now := time.Now()
	// To the second, as the API server stores it: a status that changed in nothing else
	// within the same second compares equal, and is not written.
	checked := metav1.NewTime(now.Truncate(time.Second))
	key := types.NamespacedName{Namespace: host.Namespace, Name: host.Name}
	reports := make([]v1alpha1.PodStatus, 0, len(running))
	for i, pod := range running {
		res := results[i]
		rep := v1alpha1.PodStatus{Name: pod.Name, Ready: podReady(pod) && res.err == nil}
		fact := podFact{Name: pod.Name, Ready: podReady(pod), Err: res.err}
		if res.err != nil {
			res.err = errors.New(truncateText(res.err.Error(), MaxReportedTextBytes))
			fact.Err = res.err
			log.V(1).Info("Cannot read pod status", "pod", klog.KObj(pod), "error", res.err.Error())
			for _, prev := range rc.before.Status.Pods {
				if prev.Name == pod.Name {
					rep.AppliedRevision, rep.LastReloadError, rep.LastChecked, rep.AuditHead = prev.AppliedRevision, prev.LastReloadError, prev.LastChecked, prev.AuditHead
				}
			}
		} else {
			st := res.status
			rep.AppliedRevision, rep.LastChecked, rep.AuditHead = st.Revision, checked, auditHead(st.Audit)
			if st.LastError != "" && st.LastErrorRevision == desired && st.Revision != desired {
				rep.LastReloadError = truncateText(st.LastError, MaxReportedTextBytes)
			}
			fact.Applied, fact.Refused = rep.AppliedRevision, rep.LastReloadError
		}
		reports = append(reports, rep)
		rc.facts.Running = append(rc.facts.Running, fact)
	}
	host.Status.Pods = reports
	rc.facts.DesiredRevision = desired

	if rc.facts.rolledOut() {
		host.Status.AppliedRevision = desired
		for i := range host.Status.Plugins {
			e := &host.Status.Plugins[i]
			switch {
			case e.Reason != v1alpha1.ReasonAccepted:
				e.AppliedGeneration = 0
			case e.Revision == desired:
				e.AppliedGeneration = e.Generation
			}
		}
		appliedFromPinned(host, rc.revs.served)
	}
	r.countRollout(rc, key, now)
}

// takeLateNews takes into this reconcile what the long-polls heard from its running pods
// since readPods read them. kubelet can project a nudged pod's volume within milliseconds,
// while this reconcile still writes (the revision, then the status): the reconcile that the
// news triggers cannot start before this one ends, and the Plugins' Ready would wait for
// both (the real-node e2e: Ready − served up to 83 ms for edits kubelet projected within
// 40 ms of the nudge, at most 42 ms for the others).
func (r *PluginHostReconciler) takeLateNews(ctx context.Context, rc *hostReconcile) {
	if rc.facts.rolledOut() {
		return
	}
	late := false
	for i, st := range r.reader.news(rc.running) {
		if st != nil {
			rc.results[i], late = probeResult{status: st}, true
		}
	}
	if late {
		r.reportPods(ctx, rc)
	}
}

// countProbeErrors counts the failed reads of a host's pods' /status in the metrics, where
// they are read (a reconcile may report its pods twice: takeLateNews).
func countProbeErrors(host *v1alpha1.PluginHost, results []probeResult) {
	failed := 0
	for _, res := range results {
		if res.err != nil {
			failed++
		}
	}
	if failed > 0 {
		statusProbeErrors.With(prometheus.Labels{"namespace": host.Namespace, "pluginhost": host.Name}).Add(float64(failed))
	}
}

// countRollout updates the host's rollout metrics from the pod facts of this reconcile.
func (r *PluginHostReconciler) countRollout(rc *hostReconcile, key types.NamespacedName, now time.Time) {
	var renderedAt time.Time
	if t := rc.host.Status.ConfigRevisionTime; t != nil {
		renderedAt = t.Time
	}
	r.clock.observeRollout(key, priorRolloutOf(&rc.before.Status), renderedAt, rc.facts, now)
}

// nudge annotates a pod with the desired revision: a pod update makes kubelet sync the pod,
// and so re-project its ConfigMap volume, now instead of at its next periodic sync.
func (r *PluginHostReconciler) nudge(ctx context.Context, pod *corev1.Pod, revision, credentials string) error {
	patch := fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q}}}`, v1alpha1.ConfigRevisionAnnotation, revision)
	if credentials != "" {
		patch = fmt.Appendf(nil, `{"metadata":{"annotations":{%q:%q,%q:%q}}}`,
			v1alpha1.ConfigRevisionAnnotation, revision, v1alpha1.CredentialsRevisionAnnotation, credentials)
	}
	err := r.Patch(ctx, pod, client.RawPatch(types.MergePatchType, patch), client.FieldOwner(v1alpha1.FieldOwner))
	if apierrors.IsNotFound(err) {
		return nil
	}
	return err
}

// statusPollInterval is how soon to read the pods again while they have not converged. A
// change in flight (every pod answers, none refused) lands within one of the host's poll
// intervals, so it is read again after one (if shorter than --status-poll-interval) and
// Ready follows serving closely; unreachable or refusing pods are read at the normal pace.
// When every awaited pod is long-polled (covered), the long-poll tells of the apply at
// once and the normal pace is the fallback.
func (r *PluginHostReconciler) statusPollInterval(host *v1alpha1.PluginHost, f hostFacts, covered bool) time.Duration {
	d := r.Options.StatusPollInterval
	if !covered && f.awaitingApply() && host.Spec.PollInterval != nil && host.Spec.PollInterval.Duration > 0 && host.Spec.PollInterval.Duration < d {
		d = host.Spec.PollInterval.Duration
	}
	return d
}

func deploymentAvailable(d *appsv1.Deployment) bool {
	for _, c := range d.Status.Conditions {
		if c.Type == appsv1.DeploymentAvailable {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

// patchStatus writes the status once, when it changed, and hands it to the Plugin reconciler
// meanwhile (statusHandoff). A manager's first reconcile of a host
// writes nothing when only the pods' lastChecked moved: a restarted manager finds a
// converged host as it was, and rewriting the status of every host would be work (and, for
// the Plugin reconciler, events) that changes nothing. Later reads refresh lastChecked.
func (r *PluginHostReconciler) patchStatus(ctx context.Context, rc *hostReconcile) error {
	if equality.Semantic.DeepEqual(rc.before.Status, rc.host.Status) {
		r.handoff.retract(ctx, rc.early, rc.before)
		return nil
	}
	if _, seen := r.looked.LoadOrStore(client.ObjectKeyFromObject(rc.host), struct{}{}); !seen && onlyLastCheckedMoved(&rc.before.Status, &rc.host.Status) {
		r.handoff.retract(ctx, rc.early, rc.before)
		return nil
	}
	patch, err := statusMergePatch(&rc.before.Status, &rc.host.Status)
	if err != nil {
		return err
	}
	handedOff := r.handoff.revise(ctx, rc.early, rc.before, rc.host)
	if err := patchStatusAnswerMetadata(ctx, r.Client, rc.host, patch); err != nil {
		r.handoff.withdraw(handedOff)
		return client.IgnoreNotFound(fmt.Errorf("patching PluginHost status: %w", err))
	}
	r.handoff.wrote(handedOff, rc.host.ResourceVersion)
	return nil
}

// onlyLastCheckedMoved reports whether two statuses differ in the pods' lastChecked only.
func onlyLastCheckedMoved(before, after *v1alpha1.PluginHostStatus) bool {
	if len(before.Pods) != len(after.Pods) {
		return false
	}
	a := after.DeepCopy()
	for i := range a.Pods {
		a.Pods[i].LastChecked = before.Pods[i].LastChecked
	}
	return equality.Semantic.DeepEqual(*before, *a)
}

// recordEvents records the transitions of this reconcile: Plugins newly left out, pods that
// newly refused the desired revision, a revision that every pod now runs.
func (r *PluginHostReconciler) recordEvents(rc *hostReconcile) {
	if r.Recorder == nil {
		return
	}
	host, before := rc.host, rc.before
	for _, e := range host.Status.Plugins {
		if e.Reason == v1alpha1.ReasonAccepted {
			continue
		}
		if prev := findEntry(before, e.Name); prev != nil && prev.Reason == e.Reason && prev.UID == e.UID {
			continue
		}
		if p := rc.plugins[e.Name]; p != nil {
			r.eventf(p, host, corev1.EventTypeWarning, v1alpha1.EventPluginRejected, "Reconcile",
				"PluginHost %s leaves the Plugin out (%s): %s", host.Name, e.Reason, e.Message)
		}
	}
	prevErr := map[string]string{}
	prevAudit := map[string]*v1alpha1.AuditHead{}
	for _, p := range before.Status.Pods {
		prevErr[p.Name] = p.LastReloadError
		prevAudit[p.Name] = p.AuditHead
	}
	for _, p := range host.Status.Pods {
		var related *corev1.Pod
		if pod := rc.pods[p.Name]; pod != nil {
			related = pod
		}
		if why := auditRegression(prevAudit[p.Name], p.AuditHead); why != "" {
			r.eventf(host, related, corev1.EventTypeWarning, v1alpha1.EventAuditTrailRegressed, "Audit", "Pod %s: %s", p.Name, why)
		}
		if newAuditBreak(prevAudit[p.Name], p.AuditHead) {
			r.eventf(host, related, corev1.EventTypeWarning, v1alpha1.EventAuditTrailBroken, "Audit",
				"Pod %s found its audit trail broken at sequence %d: %s", p.Name, *p.AuditHead.BrokenAt, p.AuditHead.BrokenReason)
		}
		if p.LastReloadError == "" || p.LastReloadError == prevErr[p.Name] {
			continue
		}
		r.eventf(host, related, corev1.EventTypeWarning, v1alpha1.EventPodRefusedConfig, "Reload",
			"Pod %s refused revision %s and kept its previous configuration: %s", p.Name, short(host.Status.ConfigRevision), p.LastReloadError)
	}
	if c := meta.FindStatusCondition(host.Status.Conditions, v1alpha1.ConditionReady); c != nil &&
		(c.Reason == v1alpha1.ReasonChildConflict || c.Reason == v1alpha1.ReasonChildRefused) {
		if prev := meta.FindStatusCondition(before.Status.Conditions, v1alpha1.ConditionReady); prev == nil || prev.Message != c.Message {
			event := v1alpha1.EventChildConflict
			if c.Reason == v1alpha1.ReasonChildRefused {
				event = v1alpha1.EventChildRefused
			}
			r.eventf(host, nil, corev1.EventTypeWarning, event, "Reconcile", "%s", c.Message)
		}
	}
	if rev := host.Status.AppliedRevision; rev != "" && rev != before.Status.AppliedRevision {
		r.eventf(host, nil, corev1.EventTypeNormal, v1alpha1.EventRevisionRolledOut, "RollOut",
			"All %d running pods run revision %s (%d plugins)", len(host.Status.Pods), short(rev), host.Status.PluginCount)
	}
}

// eventf records an event with its note cut to MaxReportedTextBytes: the API server refuses
// a longer note, and the event would be lost.
func (r *PluginHostReconciler) eventf(regarding, related runtime.Object, eventType, reason, action, format string, args ...any) {
	r.Recorder.Eventf(regarding, related, eventType, reason, action, "%s", truncateText(fmt.Sprintf(format, args...), MaxReportedTextBytes))
}
