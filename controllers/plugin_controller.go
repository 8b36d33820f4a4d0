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
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/utils/ptr"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/controller"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"
	"sigs.k8s.io/controller-runtime/pkg/source"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
)

// pendingGrace is how long a new Plugin's status may wait for the outcome of its first
// rollout before it shows the progress so far. Long enough for a fleet-wide burst of new
// Plugins (BenchmarkScale: at 10,000 Plugins on 100 hosts, with 5 s most Plugins got a
// Pending or RollingOut status and then their outcome, 1.7 status writes per Plugin where 1
// is the floor); a Plugin that cannot progress (no running pod, a stalled host, a refusal)
// gets its status at once.
const pendingGrace = 15 * time.Second

// graceEndPriority is the work-queue priority of a Plugin's reconcile at the end of its
// pendingGrace: below the default (0) of event-driven reconciles.
const graceEndPriority = -1

// PluginReconciler writes Plugin status, and nothing else: it projects the status of the
// PluginHost that runs the Plugin (its status.plugins entry and pod reports) into the
// Plugin's conditions. It is the only writer of Plugin status.
type PluginReconciler struct {
	client.Client
	// handoff holds host statuses being written, newer than the cache's (statusHandoff).
	handoff *statusHandoff
	// writes holds this reconciler's status writes the cache has not shown yet.
	writes *unseenStatusWrites
}

// Reconcile computes the Plugin's status from the PluginHosts of its namespace.
func (r *PluginReconciler) Reconcile(ctx context.Context, req ctrl.Request) (ctrl.Result, error) {
	lastWrite, _ := r.writes.lookup(req.NamespacedName)
	p := &v1alpha1.Plugin{}
	if err := r.Get(ctx, req.NamespacedName, p); err != nil {
		if apierrors.IsNotFound(err) {
			r.writes.forget(req.NamespacedName)
		}
		return ctrl.Result{}, client.IgnoreNotFound(err)
	}
	if !p.DeletionTimestamp.IsZero() {
		return ctrl.Result{}, nil
	}
	lastWrite.latest(p)
	handoffs := r.handoff.snapshot() // before the list (statusHandoff.snapshot)
	hosts, err := candidateHosts(ctx, r, p.Namespace, p.Labels, client.UnsafeDisableDeepCopy)
	if err != nil {
		return ctrl.Result{}, err
	}
	handoffs.overlay(hosts)
	before := p.DeepCopy()
	setPluginStatus(p, hosts) // reads the cached hosts, never writes them
	if equality.Semantic.DeepEqual(before.Status, p.Status) {
		return ctrl.Result{}, nil
	}
	// A new Plugin on its way to running pods (pending, or accepted and rolling out): its
	// host's status updates bring the next reconciles, and a rollout normally takes about a
	// second. Status writes dominate the operator's API traffic, so a new Plugin's first
	// status waits for the outcome — applied or rejected — for up to pendingGrace after its
	// creation. Without a running pod there is no outcome to wait for.
	if len(before.Status.Conditions) == 0 && inProgress(p, hosts) {
		if wait := pendingGrace - time.Since(p.CreationTimestamp.Time); wait > 0 {
			// When the grace ends, behind the reconciles that hosts' status changes bring: at
			// a fleet-wide burst those often carry the outcome, and a Plugin whose outcome
			// is known by the time its turn comes gets one status write instead of two.
			return ctrl.Result{RequeueAfter: wait, Priority: ptr.To(graceEndPriority)}, nil
		}
	}
	patch, err := statusMergePatch(&before.Status, &p.Status)
	if err != nil {
		return ctrl.Result{}, err
	}
	if err := patchStatusAnswerMetadata(ctx, r.Client, p, patch); err != nil {
		return ctrl.Result{}, client.IgnoreNotFound(fmt.Errorf("patching Plugin status: %w", err))
	}
	r.writes.wrote(p)
	// The write's event may have come before it was recorded (unseenStatusWrites.wrote).
	cached := &v1alpha1.Plugin{}
	if err := r.Get(ctx, req.NamespacedName, cached, client.UnsafeDisableDeepCopy); err == nil {
		r.writes.seen(req.NamespacedName, cached.ResourceVersion)
	}
	return ctrl.Result{}, nil
}

// inProgress reports whether a Plugin's computed status is on its way to Applied on a host
// with running pods: neither applied nor rejected yet.
func inProgress(p *v1alpha1.Plugin, hosts []v1alpha1.PluginHost) bool {
	accepted := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionAccepted)
	applied := meta.FindStatusCondition(p.Status.Conditions, v1alpha1.ConditionApplied)
	if accepted == nil || applied == nil || accepted.Status == metav1.ConditionFalse || applied.Status == metav1.ConditionTrue {
		return false
	}
	switch applied.Reason {
	case v1alpha1.ReasonPending:
		return true
	case v1alpha1.ReasonRollingOut:
		owners := selectingHosts(hosts, p.Labels)
		return len(owners) > 0 && len(owners[0].Status.Pods) > 0
	}
	return false
}

func (r *PluginReconciler) setupWithManager(mgr ctrl.Manager, opts Options) error {
	if r.handoff == nil || r.writes == nil {
		return errors.New("PluginReconciler: use NewManager")
	}
	return ctrl.NewControllerManagedBy(mgr).
		Named("plugin").
		// Spec and labels are inputs; our own status writes are not.
		For(&v1alpha1.Plugin{}, builder.WithPredicates(predicate.Or[client.Object](
			r.seeStatusWrites(), predicate.GenerationChangedPredicate{}, predicate.LabelChangedPredicate{}))).
		// A host's status is what a Plugin's status is computed from.
		Watches(&v1alpha1.PluginHost{}, handler.Funcs{
			CreateFunc: func(ctx context.Context, e event.CreateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.enqueue(q, r.pluginsOfHost(ctx, e.Object))
			},
			UpdateFunc: func(ctx context.Context, e event.UpdateEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				oldHost, newHost := e.ObjectOld.(*v1alpha1.PluginHost), e.ObjectNew.(*v1alpha1.PluginHost)
				if r.handoff.handedOff(oldHost, newHost) {
					return // its Plugins were enqueued when the status was handed off
				}
				all, changed := pluginsAffected(oldHost, newHost)
				if !all {
					r.enqueue(q, requestsForNames(newHost.Namespace, changed))
					return
				}
				r.enqueue(q, r.pluginsOfHost(ctx, oldHost))
				r.enqueue(q, r.pluginsOfHost(ctx, newHost))
			},
			DeleteFunc: func(ctx context.Context, e event.DeleteEvent, q workqueue.TypedRateLimitingInterface[reconcile.Request]) {
				r.enqueue(q, r.pluginsOfHost(ctx, e.Object))
			},
		}).
		// The host reconciler's handoffs enqueue here.
		WatchesRawSource(source.Func(r.handoff.source)).
		WithOptions(controller.Options{MaxConcurrentReconciles: opts.MaxConcurrentPluginReconciles}).
		Complete(r)
}

// seeStatusWrites tells r.writes of every Plugin version the cache shows. It lets no event
// through itself.
func (r *PluginReconciler) seeStatusWrites() predicate.Funcs {
	return predicate.Funcs{
		UpdateFunc: func(e event.UpdateEvent) bool {
			r.writes.seen(client.ObjectKeyFromObject(e.ObjectNew), e.ObjectNew.GetResourceVersion())
			return false
		},
		CreateFunc:  func(event.CreateEvent) bool { return false },
		DeleteFunc:  func(event.DeleteEvent) bool { return false },
		GenericFunc: func(event.GenericEvent) bool { return false },
	}
}

func (r *PluginReconciler) enqueue(q workqueue.TypedRateLimitingInterface[reconcile.Request], reqs []reconcile.Request) {
	for _, req := range reqs {
		q.Add(req)
	}
}

func requestsForNames(namespace string, names []string) []reconcile.Request {
	reqs := make([]reconcile.Request, 0, len(names))
	for _, n := range names {
		reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: namespace, Name: n}})
	}
	return reqs
}

// pluginsAffected compares two versions of a PluginHost. all is true when a change can
// affect every Plugin it selects (selector, service, deletion, the pods' reports, a stall);
// otherwise changed names the Plugins whose status.plugins entry changed in what a Plugin's
// status reads (pluginView). A new revision that every pod applied, in which a Plugin's own
// entry did not change, leaves that Plugin's status as it is, so it wakes nobody but the
// Plugins it changed: a host's rollout costs work in proportion to the Plugins it changes,
// not to the Plugins it has. Pod reports that differ only in lastChecked affect nobody.
func pluginsAffected(oldHost, newHost *v1alpha1.PluginHost) (all bool, changed []string) {
	if !equality.Semantic.DeepEqual(oldHost.Spec.PluginSelector, newHost.Spec.PluginSelector) ||
		!equality.Semantic.DeepEqual(oldHost.Spec.Service, newHost.Spec.Service) ||
		oldHost.Spec.PinnedRevision != newHost.Spec.PinnedRevision ||
		!oldHost.DeletionTimestamp.Equal(newHost.DeletionTimestamp) ||
		oldHost.Status.UnlistedPlugins != newHost.Status.UnlistedPlugins ||
		(newHost.Status.UnlistedPlugins > 0 && len(oldHost.Status.Plugins) != len(newHost.Status.Plugins)) ||
		(oldHost.Status.AppliedRevision == "") != (newHost.Status.AppliedRevision == "") ||
		!slices.Equal(podViews(oldHost), podViews(newHost)) ||
		stalledChanged(oldHost, newHost) {
		return true, nil
	}
	before := make(map[string]v1alpha1.SelectedPluginStatus, len(oldHost.Status.Plugins))
	for _, e := range oldHost.Status.Plugins {
		before[e.Name] = pluginView(oldHost, e)
	}
	for _, e := range newHost.Status.Plugins {
		if prev, ok := before[e.Name]; !ok || prev != pluginView(newHost, e) {
			changed = append(changed, e.Name)
		}
		delete(before, e.Name)
	}
	for name := range before {
		changed = append(changed, name)
	}
	slices.Sort(changed)
	return false, changed
}

// podView is what a Plugin's status reads of one pod report (setPluginStatus): not its
// revisions, only whether it runs the host's applied one.
type podView struct {
	name, reloadError string
	ready, atApplied  bool
}

func podViews(h *v1alpha1.PluginHost) []podView {
	out := make([]podView, len(h.Status.Pods))
	for i, p := range h.Status.Pods {
		out[i] = podView{name: p.Name, reloadError: p.LastReloadError, ready: p.Ready, atApplied: p.AppliedRevision == h.Status.AppliedRevision}
	}
	return out
}

// Revisions of a status.plugins entry as a Plugin's status reads them: none, the host's
// desired one (which pods may refuse), or an older one.
const (
	viewRevisionCurrent = "current"
	viewRevisionOther   = "other"
)

// pluginView is a status.plugins entry with its revision reduced to what a Plugin's status
// reads of it (see viewRevisionCurrent).
func pluginView(h *v1alpha1.PluginHost, e v1alpha1.SelectedPluginStatus) v1alpha1.SelectedPluginStatus {
	switch e.Revision {
	case "":
	case h.Status.ConfigRevision:
		e.Revision = viewRevisionCurrent
	default:
		e.Revision = viewRevisionOther
	}
	return e
}

// stalledChanged reports whether a host's Stalled condition changed, which the Plugins that
// wait for it show.
func stalledChanged(oldHost, newHost *v1alpha1.PluginHost) bool {
	a := meta.FindStatusCondition(oldHost.Status.Conditions, v1alpha1.ConditionStalled)
	b := meta.FindStatusCondition(newHost.Status.Conditions, v1alpha1.ConditionStalled)
	if a == nil || b == nil {
		return (a == nil) != (b == nil)
	}
	return a.Status != b.Status || a.Reason != b.Reason || a.Message != b.Message
}

// pluginsOfHost maps a PluginHost to the Plugins it selects or lists in status.plugins. The
// listed ones are named by the status; the selected ones are listed from the cache with the
// host's selector, so that only they are copied out of it (listing every Plugin of the
// namespace made each host update cost as much as the namespace has Plugins).
func (r *PluginReconciler) pluginsOfHost(ctx context.Context, o client.Object) []reconcile.Request {
	host := o.(*v1alpha1.PluginHost)
	seen := make(map[string]bool, len(host.Status.Plugins))
	reqs := make([]reconcile.Request, 0, len(host.Status.Plugins))
	add := func(name string) {
		if !seen[name] {
			seen[name] = true
			reqs = append(reqs, reconcile.Request{NamespacedName: types.NamespacedName{Namespace: host.Namespace, Name: name}})
		}
	}
	for _, e := range host.Status.Plugins {
		add(e.Name)
	}
	sel, err := hostSelector(host)
	if err != nil || host.Spec.PluginSelector == nil {
		return reqs // selects nothing
	}
	plugins, err := selectedPlugins(ctx, r, host, sel, client.UnsafeDisableDeepCopy)
	if err != nil {
		ctrl.LoggerFrom(ctx).Error(err, "Cannot list Plugins")
		return reqs
	}
	for i := range plugins.Items {
		add(plugins.Items[i].Name)
	}
	return reqs
}
