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
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/go-logr/logr"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/util/retry"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/builder"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/event"
	"sigs.k8s.io/controller-runtime/pkg/handler"
	"sigs.k8s.io/controller-runtime/pkg/predicate"
	"sigs.k8s.io/controller-runtime/pkg/reconcile"

	"github.com/hotreload/plugin-operator/api/v1alpha1"
	"github.com/hotreload/plugin-operator/internal/testing/kubeletsim"
)

// agent is the node agent: it stands in for the Deployment and ReplicaSet controllers (for
// each Deployment labelled plugins.hotreload.io/host, a ReplicaSet per pod template that the
// Deployment controls, and one pod that the current ReplicaSet controls; Recreate on a
// template change, the old ReplicaSets scaled to zero; Deployment status), for kubelet (volumes, the container as a local process, restarts, readiness,
// pod status, graceful deletion) and for the garbage collector (the children of a deleted
// PluginHost).
type agent struct {
	// cached reads Deployments, ReplicaSets and Pods from the agent manager's cache.
	cached client.Reader
	// c reads and writes the API directly.
	c          client.WithWatch
	binary     string
	workDir    string
	syncPeriod func(namespace string) time.Duration
	onReady    func(Host)
	log        logr.Logger

	mu   sync.Mutex
	pods map[types.NamespacedName]*hostPod // by Deployment
}

func (a *agent) setup(mgr ctrl.Manager) error {
	return ctrl.NewControllerManagedBy(mgr).
		Named("localcluster-node-agent").
		For(&appsv1.Deployment{}, builder.WithPredicates(predicate.GenerationChangedPredicate{})).
		Owns(&appsv1.ReplicaSet{}).
		// A pod's controller is a ReplicaSet; the Deployment behind it is reconciled.
		Watches(&corev1.Pod{}, handler.EnqueueRequestsFromMapFunc(deploymentOfPod)).
		// A deleted PluginHost: its children are garbage.
		Watches(&v1alpha1.PluginHost{}, handler.EnqueueRequestsFromMapFunc(a.deploymentsOf), builder.WithPredicates(predicate.Funcs{
			CreateFunc: func(event.CreateEvent) bool { return false },
			UpdateFunc: func(event.UpdateEvent) bool { return false },
		})).
		Complete(a)
}

// deploymentOfPod maps a pod to the Deployment that controls its ReplicaSet: the
// ReplicaSet's name less "-<pod-template-hash>" (kubeletsim.NewReplicaSet's naming, as the
// Deployment controller's), which holds even once the ReplicaSet is gone.
func deploymentOfPod(_ context.Context, o client.Object) []reconcile.Request {
	ref := metav1.GetControllerOfNoCopy(o)
	hash := o.GetLabels()[podTemplateHashLabel]
	if ref == nil || ref.Kind != "ReplicaSet" || hash == "" {
		return nil
	}
	name, ok := strings.CutSuffix(ref.Name, "-"+hash)
	if !ok || name == "" {
		return nil
	}
	return []reconcile.Request{{NamespacedName: types.NamespacedName{Namespace: o.GetNamespace(), Name: name}}}
}

// deploymentsOf maps a PluginHost to the Deployments it controls.
func (a *agent) deploymentsOf(ctx context.Context, o client.Object) []reconcile.Request {
	list := &appsv1.DeploymentList{}
	if err := a.cached.List(ctx, list, client.InNamespace(o.GetNamespace())); err != nil {
		return nil
	}
	var reqs []reconcile.Request
	for _, d := range list.Items {
		if ref := metav1.GetControllerOf(&d); ref != nil && ref.UID == o.GetUID() {
			reqs = append(reqs, reconcile.Request{NamespacedName: client.ObjectKeyFromObject(&d)})
		}
	}
	return reqs
}

// Reconcile makes one Deployment's pod exist and run, or stops it.
func (a *agent) Reconcile(ctx context.Context, req reconcile.Request) (reconcile.Result, error) {
	log := a.log.WithValues("deployment", req.NamespacedName)
	d := &appsv1.Deployment{}
	if err := a.cached.Get(ctx, req.NamespacedName, d); err != nil {
		if !apierrors.IsNotFound(err) {
			return reconcile.Result{}, err
		}
		d = nil
	}
	if d == nil || !d.DeletionTimestamp.IsZero() {
		// The garbage collector's part: a deleted Deployment's ReplicaSets and pods go.
		if err := a.removePods(ctx, req.NamespacedName, nil, log); err != nil {
			return reconcile.Result{}, err
		}
		return reconcile.Result{}, a.removeReplicaSets(ctx, req.NamespacedName, log)
	}
	if gone, err := a.ownerGone(ctx, d); err != nil || gone {
		if err == nil {
			err = a.collectGarbage(ctx, d, log)
		}
		return reconcile.Result{}, err
	}

	hash := templateHash(&d.Spec.Template)
	replicas := int32(1) // more than one runs one pod: a host's Deployment always asks for one
	if d.Spec.Replicas != nil {
		replicas = *d.Spec.Replicas
	}
	rs, err := a.syncReplicaSets(ctx, d, replicas, log)
	if err != nil {
		return reconcile.Result{}, err
	}
	a.mu.Lock()
	h := a.pods[req.NamespacedName]
	a.mu.Unlock()
	if h != nil {
		cur := &corev1.Pod{}
		err := a.c.Get(ctx, client.ObjectKeyFromObject(h.pod), cur)
		reason := ""
		switch {
		case apierrors.IsNotFound(err):
			reason = "Pod deleted; stopping its process"
		case err != nil:
			return reconcile.Result{}, err
		case !cur.DeletionTimestamp.IsZero():
			reason = "Pod is being deleted; stopping its process"
		case h.hash != hash:
			// The Recreate strategy: the old pod goes before the new one starts.
			reason = "Pod template changed; replacing the pod (Recreate)"
		case replicas == 0:
			reason = "Scaled to zero replicas; stopping the pod"
		}
		if reason != "" {
			log.Info(reason, "pod", h.pod.Name)
			h = nil
		}
	}
	// Every pod of the Deployment but h's goes, its process stopped first: the pod being
	// replaced, and pods the agent does not run (left by an earlier agent, or made by hand),
	// as a ReplicaSet scales down.
	if err := a.removePods(ctx, req.NamespacedName, h, log); err != nil {
		return reconcile.Result{}, err
	}
	if h == nil && replicas > 0 {
		if h, err = a.runPod(ctx, d, rs, hash, log); err != nil {
			return reconcile.Result{}, err
		}
	}
	return reconcile.Result{}, a.updateStatus(ctx, d, h)
}

// syncReplicaSets makes d's ReplicaSet of its current template exist with replicas pods, and
// scales d's other ReplicaSets to zero, as the Deployment controller does with the Recreate
// strategy. It returns the current ReplicaSet. (Old ReplicaSets are kept, at zero, as the
// Deployment controller keeps them up to revisionHistoryLimit; none is ever pruned here.)
func (a *agent) syncReplicaSets(ctx context.Context, d *appsv1.Deployment, replicas int32, log logr.Logger) (*appsv1.ReplicaSet, error) {
	rs, err := kubeletsim.EnsureReplicaSet(ctx, a.c, d, replicas)
	if err != nil {
		return nil, fmt.Errorf("deployment %s: ReplicaSet: %w", client.ObjectKeyFromObject(d), err)
	}
	if !metav1.IsControlledBy(rs, d) {
		// Left by an earlier Deployment of that name (the Deployment controller would pick
		// another name); it goes, and the next reconcile makes d's own.
		log.Info("Deleting a ReplicaSet of an earlier Deployment", "replicaSet", rs.Name)
		uid := rs.UID
		if err := a.c.Delete(ctx, rs, client.Preconditions{UID: &uid}); client.IgnoreNotFound(err) != nil {
			return nil, err
		}
		return nil, fmt.Errorf("deployment %s: ReplicaSet %s belonged to an earlier Deployment", client.ObjectKeyFromObject(d), rs.Name)
	}
	list := &appsv1.ReplicaSetList{}
	if err := a.c.List(ctx, list, client.InNamespace(d.Namespace)); err != nil {
		return nil, err
	}
	for i := range list.Items {
		r := &list.Items[i]
		want := int32(0)
		if r.Name == rs.Name {
			want = replicas
		}
		if !metav1.IsControlledBy(r, d) || (r.Spec.Replicas != nil && *r.Spec.Replicas == want) {
			continue
		}
		log.Info("Scaling ReplicaSet", "replicaSet", r.Name, "replicas", want)
		patch := client.MergeFrom(r.DeepCopy())
		r.Spec.Replicas = &want
		if err := a.c.Patch(ctx, r, patch); client.IgnoreNotFound(err) != nil {
			return nil, err
		}
		if r.Name == rs.Name {
			rs = r
		}
	}
	return rs, nil
}

// removeReplicaSets deletes the ReplicaSets that a deleted Deployment, key, controlled (the
// garbage collector's part).
func (a *agent) removeReplicaSets(ctx context.Context, key types.NamespacedName, log logr.Logger) error {
	sets, err := a.replicaSetsOf(ctx, key)
	if err != nil {
		return err
	}
	var errs []error
	for _, rs := range sets {
		log.Info("Deleting the ReplicaSet of a deleted Deployment", "replicaSet", rs.Name)
		if err := a.c.Delete(ctx, rs); client.IgnoreNotFound(err) != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// replicaSetsOf lists the ReplicaSets of namespace key.Namespace whose controller is a
// Deployment named key.Name, by UID.
func (a *agent) replicaSetsOf(ctx context.Context, key types.NamespacedName) (map[types.UID]*appsv1.ReplicaSet, error) {
	list := &appsv1.ReplicaSetList{}
	if err := a.c.List(ctx, list, client.InNamespace(key.Namespace)); err != nil {
		return nil, err
	}
	sets := map[types.UID]*appsv1.ReplicaSet{}
	for i := range list.Items {
		rs := &list.Items[i]
		if ref := metav1.GetControllerOf(rs); ref != nil && ref.Kind == "Deployment" && ref.Name == key.Name {
			sets[rs.UID] = rs
		}
	}
	return sets, nil
}

// runPod creates a pod of rs, d's current ReplicaSet, and starts it.
func (a *agent) runPod(ctx context.Context, d *appsv1.Deployment, rs *appsv1.ReplicaSet, hash string, log logr.Logger) (*hostPod, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	pod, err := newPod(rs, port)
	if err != nil {
		return nil, fmt.Errorf("deployment %s: %w", client.ObjectKeyFromObject(d), err)
	}
	host := d.Labels[v1alpha1.LabelHost]
	dir := filepath.Join(a.workDir, d.Namespace, host)
	vols, err := localVolumes(&pod.Spec, dir)
	if err != nil {
		return nil, fmt.Errorf("deployment %s: %w", client.ObjectKeyFromObject(d), err)
	}
	c := &pod.Spec.Containers[0]
	proc, err := containerProcess(c, vols, port)
	if err != nil {
		return nil, fmt.Errorf("deployment %s: %w", client.ObjectKeyFromObject(d), err)
	}
	// A new pod has new volumes: empty emptyDirs, fresh projections; a claim's content stays.
	for _, v := range vols {
		if v.podScoped {
			if err := os.RemoveAll(v.dir); err != nil {
				return nil, err
			}
		}
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, err
	}
	if err := a.c.Create(ctx, pod); err != nil {
		return nil, fmt.Errorf("creating pod: %w", err)
	}
	grace := defaultGracePeriod
	if s := pod.Spec.TerminationGracePeriodSeconds; s != nil {
		grace = time.Duration(*s) * time.Second
	}
	h := &hostPod{
		deployment: client.ObjectKeyFromObject(d), host: host, pod: pod, hash: hash, port: port, dir: dir,
		vols: vols, proc: proc, binary: a.binary, grace: grace, probe: c.ReadinessProbe,
		syncPeriod: a.syncPeriod(d.Namespace), c: a.c, onReady: a.onReady,
		log: a.log.WithValues("pod", client.ObjectKeyFromObject(pod)), volumeLog: a.log,
	}
	log.Info("Created pod; starting its process", "pod", pod.Name, "port", port, "dir", dir)
	h.start()
	a.mu.Lock()
	a.pods[h.deployment] = h
	a.mu.Unlock()
	return h, nil
}

// forget stops h's process and volume syncs and drops it.
func (a *agent) forget(key types.NamespacedName, h *hostPod) {
	h.stop()
	a.mu.Lock()
	if a.pods[key] == h {
		delete(a.pods, key)
	}
	a.mu.Unlock()
}

// removePods stops the process of the Deployment's pod, unless it is keep, and deletes every
// pod of the Deployment's ReplicaSets but keep: the node confirms the deletion (grace period
// 0) once the process has stopped.
func (a *agent) removePods(ctx context.Context, key types.NamespacedName, keep *hostPod, log logr.Logger) error {
	a.mu.Lock()
	h := a.pods[key]
	a.mu.Unlock()
	if h != nil && h != keep {
		a.forget(key, h)
	}
	sets, err := a.replicaSetsOf(ctx, key)
	if err != nil {
		return err
	}
	pods := &corev1.PodList{}
	if err := a.c.List(ctx, pods, client.InNamespace(key.Namespace)); err != nil {
		return err
	}
	var errs []error
	for i := range pods.Items {
		p := &pods.Items[i]
		ref := metav1.GetControllerOf(p)
		if ref == nil || ref.Kind != "ReplicaSet" || sets[ref.UID] == nil || (keep != nil && p.Name == keep.pod.Name) {
			continue
		}
		log.Info("Deleting pod", "pod", p.Name)
		if err := a.c.Delete(ctx, p, client.GracePeriodSeconds(0)); client.IgnoreNotFound(err) != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// ownerGone reports whether d's controller (a PluginHost) no longer exists.
func (a *agent) ownerGone(ctx context.Context, d *appsv1.Deployment) (bool, error) {
	ref := metav1.GetControllerOf(d)
	if ref == nil {
		return false, nil
	}
	owner := &metav1.PartialObjectMetadata{}
	owner.SetGroupVersionKind(schema.FromAPIVersionAndKind(ref.APIVersion, ref.Kind))
	err := a.c.Get(ctx, types.NamespacedName{Namespace: d.Namespace, Name: ref.Name}, owner)
	switch {
	case apierrors.IsNotFound(err):
		return true, nil
	case err != nil:
		return false, err
	}
	return owner.UID != ref.UID, nil
}

// collectGarbage deletes what the garbage collector would once a PluginHost is gone: every
// object of the kinds the operator creates, labelled with the host label, whose controller
// is the Deployment's (now missing) controller.
func (a *agent) collectGarbage(ctx context.Context, d *appsv1.Deployment, log logr.Logger) error {
	owner := metav1.GetControllerOf(d)
	var errs []error
	for _, gvk := range []schema.GroupVersionKind{
		appsv1.SchemeGroupVersion.WithKind("DeploymentList"),
		corev1.SchemeGroupVersion.WithKind("ServiceList"),
		corev1.SchemeGroupVersion.WithKind("ConfigMapList"),
		corev1.SchemeGroupVersion.WithKind("SecretList"),
		corev1.SchemeGroupVersion.WithKind("PersistentVolumeClaimList"),
		networkingv1.SchemeGroupVersion.WithKind("NetworkPolicyList"),
		policyv1.SchemeGroupVersion.WithKind("PodDisruptionBudgetList"),
	} {
		list := &metav1.PartialObjectMetadataList{}
		list.SetGroupVersionKind(gvk)
		if err := a.c.List(ctx, list, client.InNamespace(d.Namespace), client.HasLabels{v1alpha1.LabelHost}); err != nil {
			errs = append(errs, err)
			continue
		}
		for i := range list.Items {
			o := &list.Items[i]
			if ref := metav1.GetControllerOf(o); ref == nil || ref.UID != owner.UID {
				continue
			}
			log.Info("Garbage-collecting the child of a deleted owner", "kind", gvk.Kind[:len(gvk.Kind)-len("List")], "name", o.Name, "owner", owner.Name)
			if err := a.c.Delete(ctx, o, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}

// updateStatus writes the Deployment status the Deployment controller would: replica counts
// and the Available and Progressing conditions.
func (a *agent) updateStatus(ctx context.Context, d *appsv1.Deployment, h *hostPod) error {
	var replicas, ready int32
	if h != nil {
		replicas = 1
		if h.info().Ready {
			ready = 1
		}
	}
	want := func(cur *appsv1.Deployment) appsv1.DeploymentStatus {
		st := *cur.Status.DeepCopy()
		st.ObservedGeneration = cur.Generation
		st.Replicas, st.UpdatedReplicas, st.ReadyReplicas, st.AvailableReplicas = replicas, replicas, ready, ready
		st.UnavailableReplicas = replicas - ready
		now := metav1.Now()
		setDeploymentCondition(&st, appsv1.DeploymentAvailable, ready > 0 || replicas == 0, "MinimumReplicasAvailable", "MinimumReplicasUnavailable", now)
		setDeploymentCondition(&st, appsv1.DeploymentProgressing, true, "NewReplicaSetAvailable", "", now)
		return st
	}
	return retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		cur := &appsv1.Deployment{}
		if err := a.c.Get(ctx, client.ObjectKeyFromObject(d), cur); err != nil {
			return client.IgnoreNotFound(err)
		}
		st := want(cur)
		if equality.Semantic.DeepEqual(st, cur.Status) {
			return nil
		}
		cur.Status = st
		return a.c.Status().Update(ctx, cur)
	})
}

func setDeploymentCondition(st *appsv1.DeploymentStatus, t appsv1.DeploymentConditionType, ok bool, reasonOK, reasonNot string, now metav1.Time) {
	status, reason := corev1.ConditionTrue, reasonOK
	if !ok {
		status, reason = corev1.ConditionFalse, reasonNot
	}
	for i := range st.Conditions {
		c := &st.Conditions[i]
		if c.Type != t {
			continue
		}
		if c.Status != status || c.Reason != reason {
			c.Status, c.Reason, c.LastTransitionTime, c.LastUpdateTime = status, reason, now, now
		}
		return
	}
	st.Conditions = append(st.Conditions, appsv1.DeploymentCondition{
		Type: t, Status: status, Reason: reason, LastTransitionTime: now, LastUpdateTime: now,
	})
}

// host returns the running pod of a PluginHost.
func (a *agent) host(namespace, name string) *hostPod {
	a.mu.Lock()
	defer a.mu.Unlock()
	for key, h := range a.pods {
		if key.Namespace == namespace && h.host == name {
			return h
		}
	}
	return nil
}

// stopAll stops every pod's process; the pods stay in the API.
func (a *agent) stopAll() {
	a.mu.Lock()
	pods := a.pods
	a.pods = map[types.NamespacedName]*hostPod{}
	a.mu.Unlock()
	var wg sync.WaitGroup
	for _, h := range pods {
		wg.Go(h.stop)
	}
	wg.Wait()
}

// freePort returns a TCP port that is free on 127.0.0.1 now.
func freePort() (int32, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer func() { _ = ln.Close() }()
	return int32(ln.Addr().(*net.TCPAddr).Port), nil
}
