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

package manifests_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	authorizationv1 "k8s.io/api/authorization/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/restmapper"
)

// permission is one thing the manager must be allowed to do.
type permission struct {
	groups      []string // any of these API groups will do (events: "" or events.k8s.io)
	resource    string
	subresource string
	verbs       []string
}

// managerNeeds are the manager's needs in every namespace it watches (the contract of
// cmd/manager and controllers/): its CRs, their status and finalizers, the children it applies
// (server-side apply needs create and patch), Secrets it reads, host pods and their
// ReplicaSets it reads (a pod is trusted through its owner chain), events. Annotating pods
// (the pod nudge) is podNudgeNeeds.
var managerNeeds = []permission{
	{[]string{"plugins.hotreload.io"}, "plugins", "", []string{"get", "list", "watch"}},
	{[]string{"plugins.hotreload.io"}, "pluginhosts", "", []string{"get", "list", "watch"}},
	{[]string{"plugins.hotreload.io"}, "plugins", "status", []string{"patch"}},
	{[]string{"plugins.hotreload.io"}, "pluginhosts", "status", []string{"patch"}},
	{[]string{"plugins.hotreload.io"}, "pluginhosts", "finalizers", []string{"update"}},
	{[]string{""}, "configmaps", "", []string{"get", "list", "watch", "create", "patch"}},
	{[]string{""}, "services", "", []string{"get", "list", "watch", "create", "patch"}},
	{[]string{""}, "persistentvolumeclaims", "", []string{"get", "list", "watch", "create", "patch"}},
	{[]string{"apps"}, "deployments", "", []string{"get", "list", "watch", "create", "patch"}},
	{[]string{""}, "secrets", "", []string{"get", "list", "watch"}},
	{[]string{""}, "pods", "", []string{"get", "list", "watch"}},
	{[]string{"apps"}, "replicasets", "", []string{"get", "list", "watch"}},
	{[]string{"", "events.k8s.io"}, "events", "", []string{"create"}},
}

// podNudgeNeeds is granted only while the manager runs with --pod-nudge (the default).
var podNudgeNeeds = []permission{{[]string{""}, "pods", "", []string{"patch"}}}

// Leader election, in the manager's namespace; metrics authentication, cluster-wide.
var (
	leaderElectionNeeds = []permission{{[]string{"coordination.k8s.io"}, "leases", "", []string{"get", "create", "update"}}}
	metricsAuthNeeds    = []permission{
		{[]string{"authentication.k8s.io"}, "tokenreviews", "", []string{"create"}},
		{[]string{"authorization.k8s.io"}, "subjectaccessreviews", "", []string{"create"}},
	}
)

// TestManagerRBAC applies the RBAC objects of an installation for real and asks the API
// server's RBAC authorizer (SubjectAccessReview) whether the manager's ServiceAccount may do
// what it needs: cluster-wide for config/default, and only in the watched namespaces for a
// chart installed with watchNamespaces.
func TestManagerRBAC(t *testing.T) {
	t.Run("config/default", func(t *testing.T) {
		objs := kustomize(t, "config/default")
		applyRBAC(t, objs)
		sa := serviceAccountUser(kustomizeNamespace, kustomizePrefix+"controller-manager")
		expectAllowed(t, sa, "", managerNeeds, true) // "": in all namespaces at once, as the cache lists
		expectAllowed(t, sa, "", podNudgeNeeds, true)
		expectAllowed(t, sa, kustomizeNamespace, leaderElectionNeeds, true)
		expectAllowed(t, sa, "", metricsAuthNeeds, true)
	})
	t.Run("chart with watchNamespaces", func(t *testing.T) {
		objs := helmTemplate(t, "rbac-scoped", filepath.Join(root, chartDir), "--namespace", "rbac-scoped-system",
			"--set", "watchNamespaces={rbac-team-a,rbac-team-b}")
		applyRBAC(t, objs)
		sa := serviceAccountUser("rbac-scoped-system", "rbac-scoped-plugin-operator-controller-manager")
		expectAllowed(t, sa, "rbac-team-a", managerNeeds, true)
		expectAllowed(t, sa, "rbac-team-b", managerNeeds, true)
		expectAllowed(t, sa, "rbac-team-a", podNudgeNeeds, true)
		expectAllowed(t, sa, "rbac-team-c", managerNeeds, false)
		expectAllowed(t, sa, "", managerNeeds, false)
		expectAllowed(t, sa, "", podNudgeNeeds, false)
		expectAllowed(t, sa, "rbac-scoped-system", leaderElectionNeeds, true)
		expectAllowed(t, sa, "", metricsAuthNeeds, true)
		expectNoClusterGrant(t, objs, "secrets", "configmaps", "pods")
	})
	t.Run("chart with watchNamespaces and podNudge=false", func(t *testing.T) {
		objs := helmTemplate(t, "rbac-nonudge", filepath.Join(root, chartDir), "--namespace", "rbac-nonudge-system",
			"--set", "watchNamespaces={rbac-team-d}", "--set", "podNudge=false")
		applyRBAC(t, objs)
		sa := serviceAccountUser("rbac-nonudge-system", "rbac-nonudge-plugin-operator-controller-manager")
		expectAllowed(t, sa, "rbac-team-d", managerNeeds, true)
		expectAllowed(t, sa, "rbac-team-d", podNudgeNeeds, false)
		expectAllowed(t, sa, "", managerNeeds, false)
		expectNoClusterGrant(t, objs, "secrets", "configmaps", "pods")
	})
	t.Run("chart with podNudge=false", func(t *testing.T) {
		objs := helmTemplate(t, "rbac-cluster-nonudge", filepath.Join(root, chartDir), "--namespace", "rbac-cluster-nonudge-system",
			"--set", "podNudge=false")
		applyRBAC(t, objs)
		sa := serviceAccountUser("rbac-cluster-nonudge-system", "rbac-cluster-nonudge-plugin-operator-controller-manager")
		expectAllowed(t, sa, "", managerNeeds, true)
		expectAllowed(t, sa, "", podNudgeNeeds, false)
	})
	t.Run("config/namespaced", func(t *testing.T) {
		objs := kustomize(t, "config/namespaced")
		applyRBAC(t, objs)
		sa := serviceAccountUser(kustomizeNamespace, kustomizePrefix+"controller-manager")
		expectAllowed(t, sa, "plugins", managerNeeds, true)
		expectAllowed(t, sa, "plugins", podNudgeNeeds, true)
		expectAllowed(t, sa, "rbac-team-c", managerNeeds, false)
		expectAllowed(t, sa, "", managerNeeds, false)
		expectAllowed(t, sa, kustomizeNamespace, leaderElectionNeeds, true)
		expectAllowed(t, sa, "", metricsAuthNeeds, true)
		expectNoClusterGrant(t, objs, "secrets", "configmaps", "pods")
		if args := renderedManagerArgs(t, objs); !slices.Contains(args, "--watch-namespaces=plugins") {
			t.Errorf("config/namespaced: manager args %q lack --watch-namespaces=plugins", args)
		}
	})
	for _, base := range []string{"config/default", "config/namespaced"} {
		t.Run(base+" with components/no-pod-nudge", func(t *testing.T) {
			objs := kustomize(t, overlayWithComponent(t, base, "config/components/no-pod-nudge"))
			if args := renderedManagerArgs(t, objs); !slices.Contains(args, "--pod-nudge=false") {
				t.Errorf("manager args %q lack --pod-nudge=false", args)
			}
			applyRBAC(t, objs)
			sa := serviceAccountUser(kustomizeNamespace, kustomizePrefix+"controller-manager")
			ns := "" // config/default: everywhere
			if base == "config/namespaced" {
				ns = "plugins"
			}
			expectAllowed(t, sa, ns, managerNeeds, true)
			expectAllowed(t, sa, ns, podNudgeNeeds, false)
		})
	}
}

// overlayWithComponent writes a kustomization in a new directory that adds component (a
// directory of the repository) to base, and returns the directory.
func overlayWithComponent(t *testing.T, base, component string) string {
	t.Helper()
	dir := t.TempDir()
	rel := func(p string) string {
		r, err := filepath.Rel(dir, filepath.Join(root, p))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	k := "resources:\n- " + rel(base) + "\ncomponents:\n- " + rel(component) + "\n"
	if err := os.WriteFile(filepath.Join(dir, "kustomization.yaml"), []byte(k), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// expectNoClusterGrant checks that no ClusterRole among objs grants any of resources (core
// group): in a namespaced installation they are granted by Roles only.
func expectNoClusterGrant(t *testing.T, objs []*unstructured.Unstructured, resources ...string) {
	t.Helper()
	for _, o := range objs {
		if o.GetKind() != "ClusterRole" {
			continue
		}
		for _, r := range toTypedRole(t, o).Rules {
			for _, res := range r.Resources {
				if slices.Contains(resources, res) || res == "*" {
					t.Errorf("ClusterRole %s grants %s %q", o.GetName(), res, r.Verbs)
				}
			}
		}
	}
}

// applyRBAC creates the ServiceAccounts, Roles and bindings among objs (server-side apply).
func applyRBAC(t *testing.T, objs []*unstructured.Unstructured) {
	t.Helper()
	var rbac []*unstructured.Unstructured
	for _, o := range objs {
		switch o.GetKind() {
		case "ServiceAccount", "Role", "RoleBinding", "ClusterRole", "ClusterRoleBinding":
			rbac = append(rbac, o)
		}
	}
	ensureNamespaces(t, namespacesOf(rbac)...)
	for _, o := range rbac {
		apply(t, o)
	}
	t.Cleanup(func() {
		for _, o := range rbac {
			if err := env.Client.Delete(context.Background(), o.DeepCopy()); err != nil && !apierrors.IsNotFound(err) {
				t.Errorf("deleting %s %s: %v", o.GetKind(), o.GetName(), err)
			}
		}
	})
}

type saUser struct {
	name   string
	groups []string
}

func serviceAccountUser(namespace, name string) saUser {
	return saUser{
		name:   "system:serviceaccount:" + namespace + ":" + name,
		groups: []string{"system:serviceaccounts", "system:serviceaccounts:" + namespace, "system:authenticated"},
	}
}

// expectAllowed asks a SubjectAccessReview for each permission, in namespace ("" means all
// namespaces, or a cluster-scoped resource), and checks the answer is want.
func expectAllowed(t *testing.T, u saUser, namespace string, needs []permission, want bool) {
	t.Helper()
	for _, p := range needs {
		for _, verb := range p.verbs {
			allowed := false
			for _, g := range p.groups {
				sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
					User: u.name, Groups: u.groups,
					ResourceAttributes: &authorizationv1.ResourceAttributes{
						Namespace: namespace, Verb: verb, Group: g, Resource: p.resource, Subresource: p.subresource,
					},
				}}
				if err := env.Client.Create(context.Background(), sar); err != nil {
					t.Fatalf("SubjectAccessReview: %v", err)
				}
				allowed = allowed || sar.Status.Allowed
			}
			if allowed != want {
				where := "in namespace " + namespace
				if namespace == "" {
					where = "cluster-wide"
				}
				res := p.resource
				if p.subresource != "" {
					res += "/" + p.subresource
				}
				if want {
					t.Errorf("%s may not %s %s (groups %q) %s; the manager needs it: add a +kubebuilder:rbac marker in controllers/ and run `make manifests chart`",
						u.name, verb, res, p.groups, where)
				} else {
					t.Errorf("%s may %s %s (groups %q) %s; it should not", u.name, verb, res, p.groups, where)
				}
			}
		}
	}
}

// TestManagerRulesAreNamespaced checks that manager-role grants only namespaced resources,
// without wildcards: with watchNamespaces the chart grants it by RoleBindings in those
// namespaces, which cannot grant cluster-scoped resources.
func TestManagerRulesAreNamespaced(t *testing.T) {
	objs := kustomize(t, "config/rbac")
	role := toTypedRole(t, mustFind(t, objs, "ClusterRole", "manager-role"))
	dc, err := discovery.NewDiscoveryClientForConfig(env.Config)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := restmapper.GetAPIGroupResources(dc)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDiscoveryRESTMapper(groups)
	for _, r := range role.Rules {
		if len(r.NonResourceURLs) > 0 {
			t.Errorf("manager-role grants non-resource URLs %q: RoleBindings cannot grant them", r.NonResourceURLs)
		}
		if slices.Contains(r.Verbs, "*") || slices.Contains(r.Resources, "*") || slices.Contains(r.APIGroups, "*") {
			t.Errorf("manager-role rule %+v uses a wildcard", r)
		}
		for _, g := range r.APIGroups {
			for _, res := range r.Resources {
				base, _, _ := strings.Cut(res, "/")
				gvr, err := mapper.ResourceFor(schema.GroupVersionResource{Group: g, Resource: base})
				if err != nil {
					t.Errorf("manager-role grants %s in group %q, which the API server does not serve: %v", res, g, err)
					continue
				}
				m, err := mapper.RESTMapping(mustKind(t, mapper, gvr).GroupKind(), gvr.Version)
				if err != nil {
					t.Fatal(err)
				}
				if m.Scope.Name() != "namespace" {
					t.Errorf("manager-role grants cluster-scoped %s.%s: the chart's watchNamespaces mode (RoleBindings) cannot grant it; "+
						"give it a ClusterRole of its own in charts/plugin-operator/templates/rbac.yaml", res, g)
				}
			}
		}
	}
}

func mustKind(t *testing.T, mapper interface {
	KindFor(schema.GroupVersionResource) (schema.GroupVersionKind, error)
}, gvr schema.GroupVersionResource) schema.GroupVersionKind {
	t.Helper()
	gvk, err := mapper.KindFor(gvr)
	if err != nil {
		t.Fatal(err)
	}
	return gvk
}

func toTypedRole(t *testing.T, u *unstructured.Unstructured) *rbacv1.ClusterRole {
	t.Helper()
	return toTyped[rbacv1.ClusterRole](t, u)
}
