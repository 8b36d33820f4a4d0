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

// Package controllers reconciles PluginHosts and Plugins.
//
// # Who writes what
//
// Each object has one writer, so that no two reconcilers fight over a status:
//
//   - PluginHostReconciler owns everything a PluginHost runs. From the host's spec, the
//     Plugins its pluginSelector selects, their auth Secrets and the optional user ConfigMap
//     it renders config.json (a pure function: same inputs, same bytes, same revision) and
//     writes its children (childKinds), in this order: the credentials Secret
//     `<host>-credentials`, the ConfigMap `<host>-config`, the state PVC (when persistence is
//     enabled), the Deployment, the Service, and the NetworkPolicy and PodDisruptionBudget
//     (when enabled; deleted when disabled). A child is created with Create and then
//     server-side applied with its UID as a precondition; an object of a child's name that
//     the operator did not make is never written (ChildConflict). It then annotates the host's pods with the new revision (so that
//     kubelet re-projects the ConfigMap now), reads each running pod's GET /status (and,
//     before it writes, what the pods' long-polls heard meanwhile), and
//     writes the PluginHost status once: conditions, configRevision (and configRevisionTime,
//     when it was first rendered, which times a rollout across a manager restart),
//     appliedRevision, pods, and status.plugins, its verdict on each selected Plugin
//     (accepted or why not, which generation the configuration contains, which generation
//     every pod runs).
//   - PluginReconciler writes only Plugin status. It never decides anything itself: it finds
//     the PluginHost that runs the Plugin and projects that host's status.plugins entry and
//     pod reports into the Plugin's Accepted, Applied and Ready conditions. The host
//     status it reads is the cached one, or the one the PluginHostReconciler is writing
//     (statusHandoff): a Plugin turns Ready one status write after its pods applied, not
//     after the host's write and its watch event as well (so the Plugin's status can land
//     just before the host's records the same revision). The Plugin it reads is the cached
//     one, or the status it last wrote when the cache does not show that write yet
//     (unseenStatusWrites): a reconcile never mistakes a stale status for the current one
//     and skips the write that would correct it.
//
// # One writer per counter
//
// A Plugin selected by several PluginHosts of its namespace runs on exactly one of them: the
// oldest (creationTimestamp, then name), as Gateway API resolves conflicting routes. The
// others leave it out and record NameConflict in their status.plugins and a PluginRejected
// event; the Plugin stays Accepted on its host and its Accepted message names the hosts that
// ignore it. Creating a second, overlapping PluginHost therefore never takes a running
// counter away from the host that runs it.
//
// A Plugin whose name is also defined in the host's user ConfigMap is left out (the
// ConfigMap wins: it is the base configuration), as is a Plugin that fails the runtime's own
// validation (InvalidSpec) or whose auth Secret or key is missing (SecretNotFound). The other
// Plugins still roll out.
//
// # Restart-free delivery
//
// The pod template is a function of the PluginHost spec only: no configuration hash, so a
// Plugin or user ConfigMap change never restarts the pod. Credentials are copied into one
// operator-owned Secret mounted as a directory, so that adding a Plugin with auth does not
// change the template either.
//
// # Polling
//
// A reconcile reads the pods' /status. While a running pod has not applied the desired
// revision, has refused it, or cannot be reached, the reconcile is requeued: after the
// host's own spec.pollInterval while a change is in flight (every pod answers and none
// refused; it lands within one such interval) when that is shorter, otherwise after
// Options.StatusPollInterval. Once every pod runs the desired revision nothing is requeued
// and only watch events (Plugins, ConfigMaps, Secrets, pods, children) trigger work.
package controllers
