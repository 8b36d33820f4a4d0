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
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"

	"github.com/hotreload/plugin-operator/internal/testing/kubeletsim"
)

// NodeName is the spec.nodeName of every pod the node agent runs. With a node name set, the
// API server deletes a pod gracefully and waits for the node (the agent) to confirm, as it
// does for kubelet.
const NodeName = "localcluster"

// podTemplateHashLabel is the label the Deployment controller puts on a ReplicaSet and its
// pods.
const podTemplateHashLabel = kubeletsim.PodTemplateHashLabel

// templateHash is a short, stable hash of a pod template: a changed template means a new
// ReplicaSet and new pods (kubeletsim.TemplateHash).
func templateHash(t *corev1.PodTemplateSpec) string { return kubeletsim.TemplateHash(t) }

// newPod is the pod the ReplicaSet controller would create from rs (a ReplicaSet of a
// Deployment, kubeletsim.NewReplicaSet), already bound to NodeName, with the container port
// named "http" set to port: every pod runs on 127.0.0.1, so the port is what tells them
// apart.
func newPod(rs *appsv1.ReplicaSet, port int32) (*corev1.Pod, error) {
	pod := kubeletsim.NewPod(rs, "")
	pod.Spec.NodeName = NodeName
	if len(pod.Spec.Containers) != 1 {
		return nil, fmt.Errorf("the pod template has %d containers; the node agent runs pods of exactly one", len(pod.Spec.Containers))
	}
	c := &pod.Spec.Containers[0]
	i := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == kubeletsim.HTTPPortName })
	if i < 0 {
		return nil, fmt.Errorf("container %q has no port named %q", c.Name, kubeletsim.HTTPPortName)
	}
	c.Ports[i].ContainerPort = port
	// The runtime's operational port (--ops-addr) needs a port of its own on 127.0.0.1 too.
	if j := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == opsPortName }); j >= 0 {
		ops, err := freePort()
		if err != nil {
			return nil, err
		}
		c.Ports[j].ContainerPort = ops
	}
	return pod, nil
}

// opsPortName names the runtime's operational port, whose address is its --ops-addr.
const opsPortName = "ops"

// volumeKind is how the agent provides a volume on this machine.
type volumeKind int

const (
	// volumeDir is a plain directory (emptyDir, persistentVolumeClaim).
	volumeDir volumeKind = iota
	// volumeConfigMap is projected from a ConfigMap by a kubeletsim.Sim.
	volumeConfigMap
	// volumeSecret is projected from a Secret by a kubeletsim.Sim.
	volumeSecret
)

// localVolume is one pod volume as a directory of the pod's work directory.
type localVolume struct {
	name string
	kind volumeKind
	// object is the ConfigMap or Secret projected into dir.
	object string
	mode   os.FileMode
	dir    string
	// podScoped is true for every volume but a claim: kubelet makes it for the pod (a new
	// pod gets a new, empty emptyDir and fresh projections); a claim's content outlives pods.
	podScoped bool
}

// localVolumes maps the pod's volumes to directories under podDir. ConfigMap volumes go to
// podDir/config and Secret volumes to podDir/secrets (the manager renders credential paths
// relative to the config file, as ../secrets/<file>), other volumes to podDir/<name>.
func localVolumes(spec *corev1.PodSpec, podDir string) ([]localVolume, error) {
	var out []localVolume
	used := map[string]bool{}
	for _, v := range spec.Volumes {
		lv := localVolume{name: v.Name, dir: v.Name, podScoped: true}
		switch {
		case v.ConfigMap != nil:
			lv.kind, lv.object, lv.dir, lv.mode = volumeConfigMap, v.ConfigMap.Name, "config", fileMode(v.ConfigMap.DefaultMode)
		case v.Secret != nil:
			lv.kind, lv.object, lv.dir, lv.mode = volumeSecret, v.Secret.SecretName, "secrets", fileMode(v.Secret.DefaultMode)
		case v.EmptyDir != nil:
		case v.PersistentVolumeClaim != nil:
			lv.podScoped = false
		default:
			return nil, fmt.Errorf("volume %q: only configMap, secret, emptyDir and persistentVolumeClaim volumes run locally", v.Name)
		}
		if used[lv.dir] {
			lv.dir = v.Name
		}
		if used[lv.dir] {
			return nil, fmt.Errorf("volume %q: two volumes would share the directory %q", v.Name, lv.dir)
		}
		used[lv.dir] = true
		lv.dir = filepath.Join(podDir, lv.dir)
		out = append(out, lv)
	}
	return out, nil
}

func fileMode(m *int32) os.FileMode {
	if m == nil {
		return 0
	}
	return os.FileMode(*m) & os.ModePerm
}

// process is how a container runs as a local process.
type process struct {
	args []string
	env  []string
}

// containerProcess translates the container's command line for this machine: a flag value
// or an environment variable's value under a volume's mountPath points into that volume's
// local directory, --listen binds 127.0.0.1:port, --ops-addr binds 127.0.0.1 and the port
// newPod gave the port "ops", and /tmp (when a volume is mounted there) becomes TMPDIR. The
// environment is the container's literal env only: a container does not inherit the node's.
func containerProcess(c *corev1.Container, vols []localVolume, port int32) (process, error) {
	dirs := map[string]string{}
	for _, v := range vols {
		dirs[v.name] = v.dir
	}
	type mount struct{ path, dir string }
	var mounts []mount
	var env []string
	for _, m := range c.VolumeMounts {
		dir, ok := dirs[m.Name]
		if !ok {
			return process{}, fmt.Errorf("container %q mounts volume %q, which the pod does not have", c.Name, m.Name)
		}
		if m.SubPath != "" || m.SubPathExpr != "" {
			return process{}, fmt.Errorf("container %q: subPath mounts do not run locally", c.Name)
		}
		mounts = append(mounts, mount{path.Clean(m.MountPath), dir})
		if path.Clean(m.MountPath) == "/tmp" {
			env = append(env, "TMPDIR="+dir)
		}
	}
	// Longest mount path first: a nested mount wins.
	slices.SortFunc(mounts, func(a, b mount) int { return len(b.path) - len(a.path) })
	localPath := func(p string) string {
		clean := path.Clean(p)
		for _, m := range mounts {
			if clean == m.path {
				return m.dir
			}
			if rest, ok := strings.CutPrefix(clean, m.path+"/"); ok {
				return filepath.Join(m.dir, filepath.FromSlash(rest))
			}
		}
		return p
	}

	listen := "--listen=" + kubeletsim.PodIP + ":" + strconv.Itoa(int(port))
	opsAddr := ""
	if j := slices.IndexFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.Name == opsPortName }); j >= 0 {
		opsAddr = "--ops-addr=" + kubeletsim.PodIP + ":" + strconv.Itoa(int(c.Ports[j].ContainerPort))
	}
	var args []string
	if len(c.Command) > 1 {
		args = append(args, c.Command[1:]...)
	}
	args = append(args, c.Args...)
	sawListen := false
	for i, a := range args {
		name, value, ok := strings.Cut(a, "=")
		switch {
		case !ok || !strings.HasPrefix(name, "-"):
		case strings.TrimLeft(name, "-") == "listen":
			args[i], sawListen = listen, true
		case strings.TrimLeft(name, "-") == "ops-addr" && opsAddr != "":
			args[i] = opsAddr
		default:
			args[i] = name + "=" + localPath(value)
		}
	}
	if !sawListen {
		args = append(args, listen)
	}

	for _, e := range c.Env {
		if e.ValueFrom != nil {
			return process{}, fmt.Errorf("container %q: env %s uses valueFrom, which does not run locally", c.Name, e.Name)
		}
		// A file in a mounted volume, as for a flag's value.
		env = append(env, e.Name+"="+localPath(e.Value))
	}
	if len(c.EnvFrom) > 0 {
		return process{}, fmt.Errorf("container %q: envFrom does not run locally", c.Name)
	}
	return process{args: args, env: env}, nil
}
