#!/usr/bin/env bash
# A real single-node Kubernetes cluster on this machine, without Docker: etcd,
# kube-apiserver, kube-controller-manager, kube-scheduler, kube-proxy (nftables) and kubelet
# built from the Go module proxy (hack/install-k8s-binaries.sh --with-node), with Debian's
# containerd, runc and CNI plugins. `make cluster` / `make cluster-down` call this.
#
# Usage: hack/cluster.sh up|down|prepare|status|snapshot|load IMAGE.tar...|env
#
#   up        start the cluster (recovering from a stale run first) and wait for the node
#             to be Ready; prints how to use the kubeconfig
#   down      stop everything up started (by PID) and restore the machine to the state
#             recorded before the first `up`: sysctls, nftables tables, mounts, cgroups,
#             network links, the paths kubelet/containerd/CNI create outside CLUSTER_DIR;
#             then delete CLUSTER_DIR. Safe to run when nothing runs.
#   prepare   install the Debian packages and check the binaries and the kernel, nothing else
#   status    exit 0 when the API server answers and the node is Ready
#   snapshot  print the machine state that down restores (tests diff two snapshots)
#   load      import docker-archive tarballs into the cluster's containerd (k8s.io)
#   env       print export lines (KUBECONFIG, CLUSTER_DIR, …)
#
# Addresses: only on this machine, in never-routed ranges. The node address 198.19.255.1/32
# sits on a port-less bridge the script creates; pods get 198.18.0.0/24 on a bridge; Services
# 198.19.0.0/24. Every server binds loopback or the node address. Nothing leaves the machine.
#
# Environment: CLUSTER_DIR (default /var/tmp/plugin-operator-cluster; short, because unix
# socket paths are limited to 108 bytes), K8S_BIN_DIR (the binaries; up and prepare need it,
# make cluster sets it), PAUSE_IMAGE_TAR (the sandbox image, built by `make cluster`).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
CLUSTER_DIR="${CLUSTER_DIR:-/var/tmp/plugin-operator-cluster}"
K8S_BIN_DIR="${K8S_BIN_DIR:-}"
PAUSE_IMAGE_TAR="${PAUSE_IMAGE_TAR:-${ROOT}/bin/pause.tar}"

NODE_NAME=plugin-operator-node
NODE_IP=198.19.255.1
NODE_LINK=pocluster0      # a port-less bridge holding NODE_IP (this kernel has no dummy driver)
BRIDGE=pocluster-br0      # CNI bridge of the pods
POD_CIDR=198.18.0.0/24
SERVICE_CIDR=198.19.0.0/24
API_SERVICE_IP=198.19.0.1 # first address of SERVICE_CIDR: the `kubernetes` Service
API_PORT=36443
PAUSE_IMAGE=localhost/plugin-operator/pause:1

# Paths outside CLUSTER_DIR that kubelet, containerd's shims or libcni create on their own.
# down removes those that did not exist before the first up.
EXTERNAL_PATHS=(/var/lib/kubelet /var/lib/cni /var/log/pods /var/log/containers /run/containerd
  /var/run/netns /run/netns /etc/cni /opt/cni /usr/libexec/kubernetes /etc/kubernetes
  /run/mount) # /run/mount: util-linux's utab, written by umount

BIN="${CLUSTER_DIR}/bin"; PKI="${CLUSTER_DIR}/pki"; LOGS="${CLUSTER_DIR}/logs"
RUN="${CLUSTER_DIR}/run"; STATE="${CLUSTER_DIR}/state"; CTRD="${CLUSTER_DIR}/containerd"
CTRD_SOCK="${CTRD}/containerd.sock"
KUBECONFIG_ADMIN="${PKI}/admin.kubeconfig"

log() { printf 'cluster: %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }

# ---------------------------------------------------------------------------------------
# Machine state: what down restores and what tests compare.

# Sysctls that change on their own (counters, random values, per-boot figures).
volatile_sysctl() {
  grep -vE '^(kernel\.random\.|fs\.(dentry-state|file-nr|inode-nr|inode-state|quota\.)|kernel\.ns_last_pid|kernel\.pty\.nr|net\.netfilter\.nf_conntrack_count|fs\.binfmt_misc\.|kernel\.sched_domain\.|dev\.cdrom\.|vm\.stat_refresh|net\.ipv4\.route\.flush|net\.ipv6\.route\.flush|kernel\.perf_event_max_sample_rate|fs\.aio-nr|kernel\.tainted|net\.ipv6\.conf\.[^.]+\.stable_secret|vm\.drop_caches|kernel\.unprivileged_userns_apparmor_policy)'
}

snapshot() {
  echo "## sysctl"
  sysctl -a 2>/dev/null | volatile_sysctl | sort
  echo "## nftables"
  nft list ruleset 2>/dev/null || true
  echo "## links"
  ip -o link show | awk '{print $2, $3}' | sed 's/@[^:]*:/:/' | sort
  echo "## addresses"
  ip -o addr show | awk '{print $2, $3, $4}' | sort
  echo "## routes"
  ip route show table all 2>/dev/null | sort
  echo "## mounts"
  awk '{print $5, $9}' /proc/self/mountinfo | sort
  echo "## cgroups"
  top_cgroups
  echo "## paths"
  for p in "${EXTERNAL_PATHS[@]}"; do if [[ -e "$p" || -L "$p" ]]; then echo "$p"; fi; done
  ls -1a /var/lib /var/log /run /etc /var/tmp 2>/dev/null | grep -vE '^\.\.?$' | sort || true
  echo "## processes"
  pgrep -a -f "${CLUSTER_DIR}/" 2>/dev/null | grep -v -e "cluster.sh" -e pgrep | awk '{$1=""; print}' | sort || true
}

# top_cgroups lists each hierarchy's cgroups one level down: where kubelet creates kubepods
# (cgroupfs driver), and where the cluster's own processes never create anything. Deeper ones
# belong to whoever made their parent — a process supervisor starting jobs, say — and come
# and go while the cluster runs.
top_cgroups() {
  find /sys/fs/cgroup -mindepth 1 -maxdepth 2 -type d 2>/dev/null | sort
}

record_machine_state() {
  mkdir -p "${STATE}"
  [[ -f "${STATE}/sysctl.before" ]] && return 0
  # The state before the first up; a stale run's down restores to it.
  sysctl -a 2>/dev/null | volatile_sysctl | sort >"${STATE}/sysctl.before"
  nft list tables 2>/dev/null | sort >"${STATE}/nft-tables.before" || true
  ip -o link show | awk '{print $2}' | sed 's/@.*//; s/:$//' | sort >"${STATE}/links.before"
  top_cgroups >"${STATE}/cgroups.before"
  : >"${STATE}/paths.before"
  for p in "${EXTERNAL_PATHS[@]}"; do if [[ -e "$p" || -L "$p" ]]; then echo "$p" >>"${STATE}/paths.before"; fi; done
}

# ---------------------------------------------------------------------------------------
# Prerequisites.

require_root() {
  [[ $(id -u) -eq 0 ]] || die "a real node needs root (kubelet and containerd create namespaces, cgroups, mounts and nftables rules); run as root, or use the envtest-based 'make demo' instead"
}

install_packages() {
  local missing=()
  command -v containerd >/dev/null || missing+=(containerd)
  command -v runc >/dev/null || missing+=(runc)
  [[ -x /usr/lib/cni/bridge && -x /usr/lib/cni/host-local && -x /usr/lib/cni/loopback ]] || missing+=(containernetworking-plugins)
  command -v nft >/dev/null || missing+=(nftables)
  command -v openssl >/dev/null || missing+=(openssl)
  command -v ip >/dev/null || missing+=(iproute2)
  [[ ${#missing[@]} -eq 0 ]] && return 0
  command -v apt-get >/dev/null || die "missing ${missing[*]} and no apt-get to install them: install containerd, runc, the CNI plugins (in /usr/lib/cni), nftables, openssl, iproute2"
  log "installing ${missing[*]} from Debian"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2 || true
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 || die "apt-get install ${missing[*]} failed"
}

check_kernel() {
  [[ -d /sys/fs/cgroup/memory || -f /sys/fs/cgroup/cgroup.controllers ]] || die "no memory cgroup under /sys/fs/cgroup: kubelet cannot run pods here"
  ip link add pocluster-probe type bridge 2>/dev/null || die "cannot create a bridge network link (no CAP_NET_ADMIN or no bridge support in the kernel)"
  ip link del pocluster-probe
  local b
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kube-proxy kubelet kubectl; do
    [[ -x "${K8S_BIN_DIR}/${b}" ]] || die "${K8S_BIN_DIR}/${b} is missing: run 'hack/install-k8s-binaries.sh --with-node' (make cluster does)"
  done
  [[ -f "${PAUSE_IMAGE_TAR}" ]] || die "${PAUSE_IMAGE_TAR} is missing: 'make cluster' builds it (go run ./hack/image --pause …)"
}

# ---------------------------------------------------------------------------------------
# Certificates and kubeconfigs.

gen_pki() {
  [[ -f "${PKI}/admin.kubeconfig" ]] && return 0
  mkdir -p "${PKI}"
  (
    cd "${PKI}"
    openssl req -x509 -newkey rsa:2048 -nodes -keyout ca.key -out ca.crt -days 30 -subj "/CN=plugin-operator-cluster-ca" 2>/dev/null
    openssl genrsa -out sa.key 2048 2>/dev/null
    openssl rsa -in sa.key -pubout -out sa.pub 2>/dev/null
    cert() { # name CN O ext
      openssl req -newkey rsa:2048 -nodes -keyout "$1.key" -out "$1.csr" -subj "/CN=$2${3:+/O=$3}" 2>/dev/null
      printf '%s\n' "$4" >"$1.ext"
      openssl x509 -req -in "$1.csr" -CA ca.crt -CAkey ca.key -CAcreateserial -out "$1.crt" -days 30 -extfile "$1.ext" 2>/dev/null
      rm -f "$1.csr" "$1.ext"
    }
    cert apiserver kube-apiserver "" "subjectAltName=IP:${NODE_IP},IP:${API_SERVICE_IP},IP:127.0.0.1,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local
extendedKeyUsage=serverAuth"
    cert admin cluster-admin system:masters "extendedKeyUsage=clientAuth"
    cert kubelet "system:node:${NODE_NAME}" system:nodes "extendedKeyUsage=clientAuth"
    cert kcm system:kube-controller-manager "" "extendedKeyUsage=clientAuth"
    cert scheduler system:kube-scheduler "" "extendedKeyUsage=clientAuth"
    cert proxy system:kube-proxy "" "extendedKeyUsage=clientAuth"
  )
  local who
  for who in admin kubelet kcm scheduler proxy; do
    cat >"${PKI}/${who}.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: plugin-operator-cluster
  cluster:
    server: https://${NODE_IP}:${API_PORT}
    certificate-authority: ${PKI}/ca.crt
users:
- name: ${who}
  user:
    client-certificate: ${PKI}/${who}.crt
    client-key: ${PKI}/${who}.key
contexts:
- name: plugin-operator-cluster
  context: {cluster: plugin-operator-cluster, user: ${who}}
current-context: plugin-operator-cluster
EOF
  done
}

write_configs() {
  mkdir -p "${CTRD}/cni-conf" "${CLUSTER_DIR}/kubelet/manifests" "${CLUSTER_DIR}/kubelet/root" "${CLUSTER_DIR}/kubelet/pki" \
    "${CLUSTER_DIR}/kubelet/volume-plugins" "${CLUSTER_DIR}/pod-logs"
  cat >"${CTRD}/config.toml" <<EOF
version = 2
root = "${CTRD}/root"
state = "${CTRD}/state"
[grpc]
  address = "${CTRD_SOCK}"
[ttrpc]
  address = "${CTRD}/containerd.sock.ttrpc"
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "${PAUSE_IMAGE}"
  stream_server_address = "127.0.0.1"
  enable_cdi = false
  netns_mounts_under_state_dir = true
  # This machine's capability bounding set lacks CAP_SYS_RESOURCE: without this, runc fails
  # every sandbox writing /proc/self/oom_score_adj.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        SystemdCgroup = false
        Root = "${CTRD}/runc"
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "/usr/lib/cni"
    conf_dir = "${CTRD}/cni-conf"
EOF
  cat >"${CTRD}/cni-conf/10-plugin-operator.conflist" <<EOF
{
  "cniVersion": "1.0.0",
  "name": "plugin-operator-cluster",
  "plugins": [
    {"type": "bridge", "bridge": "${BRIDGE}", "isGateway": true, "ipMasq": false,
     "ipam": {"type": "host-local", "ranges": [[{"subnet": "${POD_CIDR}"}]], "routes": [{"dst": "0.0.0.0/0"}],
              "dataDir": "${CTRD}/ipam"}},
    {"type": "loopback"}
  ]
}
EOF
  cat >"${CLUSTER_DIR}/kubelet/config.yaml" <<EOF
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
# cgroup v1 on these machines, cgroupfs (no systemd as init), swap may be on.
cgroupDriver: cgroupfs
failCgroupV1: false
failSwapOn: false
containerRuntimeEndpoint: unix://${CTRD_SOCK}
imageServiceEndpoint: unix://${CTRD_SOCK}
staticPodPath: ${CLUSTER_DIR}/kubelet/manifests
podLogsDir: ${CLUSTER_DIR}/pod-logs
volumePluginDir: ${CLUSTER_DIR}/kubelet/volume-plugins
address: ${NODE_IP}
port: 30250
readOnlyPort: 0
healthzBindAddress: 127.0.0.1
healthzPort: 30248
authentication:
  anonymous: {enabled: false}
  webhook: {enabled: false}
  x509: {clientCAFile: ${PKI}/ca.crt}
authorization:
  mode: AlwaysAllow
clusterDomain: cluster.local
resolvConf: /etc/resolv.conf
registerNode: true
serializeImagePulls: false
# No registry is reachable: never collect the images loaded by hand.
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "100Mi"
  nodefs.available: "2%"
  imagefs.available: "2%"
EOF
  cat >"${CLUSTER_DIR}/kube-proxy.yaml" <<EOF
apiVersion: kubeproxy.config.k8s.io/v1alpha1
kind: KubeProxyConfiguration
clientConnection:
  kubeconfig: ${PKI}/proxy.kubeconfig
hostnameOverride: ${NODE_NAME}
mode: nftables
clusterCIDR: ${POD_CIDR}
bindAddress: 127.0.0.1
healthzBindAddress: 127.0.0.1:30256
metricsBindAddress: 127.0.0.1:30249
nodePortAddresses: ["${NODE_IP}/32"]
# Zero leaves the kernel's conntrack settings as they are.
conntrack:
  maxPerCore: 0
  min: 0
  tcpEstablishedTimeout: 0s
  tcpCloseWaitTimeout: 0s
EOF
}

# ---------------------------------------------------------------------------------------
# Processes.

start() { # name command...
  local name="$1"; shift
  nohup "$@" >"${LOGS}/${name}.log" 2>&1 &
  echo $! >"${RUN}/${name}.pid"
}

wait_for() { # what timeout-seconds command...
  local what="$1" timeout="$2"; shift 2
  local deadline=$((SECONDS + timeout))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS > deadline)); then
      log "${what} not ready after ${timeout}s; last log lines:"
      tail -n 30 "${LOGS}"/*.log >&2 || true
      return 1
    fi
    sleep 0.2
  done
}

kubectl_admin() { "${BIN}/kubectl" --kubeconfig "${KUBECONFIG_ADMIN}" "$@"; }

# prepare installs and checks what up needs, without changing anything else (tests call it
# before taking the snapshot they compare with the one after down).
prepare() {
  require_root
  [[ -n "${K8S_BIN_DIR}" ]] || die "K8S_BIN_DIR is not set (make cluster sets it)"
  install_packages
  check_kernel
}

up() {
  prepare
  if [[ -d "${CLUSTER_DIR}" ]]; then
    if status >/dev/null 2>&1; then
      log "already running (CLUSTER_DIR=${CLUSTER_DIR})"
      print_usage
      return 0
    fi
    log "a stale cluster is in ${CLUSTER_DIR}: tearing it down first"
    down
  fi
  local t0=${SECONDS}
  mkdir -p "${BIN}" "${LOGS}" "${RUN}" "${STATE}"
  record_machine_state
  cp "${K8S_BIN_DIR}"/{etcd,kube-apiserver,kube-controller-manager,kube-scheduler,kube-proxy,kubelet,kubectl} "${BIN}/"
  gen_pki
  write_configs

  ip link add "${NODE_LINK}" type bridge
  ip addr add "${NODE_IP}/32" dev "${NODE_LINK}"
  ip link set "${NODE_LINK}" up
  # Keep every packet for our ranges on this machine: Service addresses route to the node
  # link (kube-proxy's DNAT then sends them to a pod; without an endpoint they are dropped
  # there, not sent to the default gateway), the rest of 198.18.0.0/15 nowhere, and pods may
  # not be forwarded anywhere but to each other.
  ip route add "${SERVICE_CIDR}" dev "${NODE_LINK}" src "${NODE_IP}"
  ip route add blackhole 198.18.0.0/15
  nft -f - <<EOF
table inet pocluster {
  chain forward {
    type filter hook forward priority 0; policy accept;
    iifname "${BRIDGE}" oifname != "${BRIDGE}" drop
    oifname "${BRIDGE}" iifname != "${BRIDGE}" drop
  }
}
EOF

  start etcd "${BIN}/etcd" --name plugin-operator --data-dir "${CLUSTER_DIR}/etcd" \
    --listen-client-urls http://127.0.0.1:32379 --advertise-client-urls http://127.0.0.1:32379 \
    --listen-peer-urls http://127.0.0.1:32380 --initial-advertise-peer-urls http://127.0.0.1:32380 \
    --initial-cluster plugin-operator=http://127.0.0.1:32380 --listen-metrics-urls http://127.0.0.1:32381 --unsafe-no-fsync
  start kube-apiserver "${BIN}/kube-apiserver" --etcd-servers=http://127.0.0.1:32379 \
    --bind-address="${NODE_IP}" --advertise-address="${NODE_IP}" --secure-port="${API_PORT}" \
    --tls-cert-file="${PKI}/apiserver.crt" --tls-private-key-file="${PKI}/apiserver.key" --client-ca-file="${PKI}/ca.crt" \
    --service-account-key-file="${PKI}/sa.pub" --service-account-signing-key-file="${PKI}/sa.key" \
    --service-account-issuer=https://kubernetes.default.svc --service-cluster-ip-range="${SERVICE_CIDR}" \
    --authorization-mode=Node,RBAC --allow-privileged=true --kubelet-preferred-address-types=InternalIP \
    --kubelet-client-certificate="${PKI}/admin.crt" --kubelet-client-key="${PKI}/admin.key" \
    --cert-dir="${RUN}/apiserver-certs" --enable-priority-and-fairness=false
  start containerd containerd --config "${CTRD}/config.toml"
  wait_for "kube-apiserver" 120 kubectl_admin get --raw /readyz
  log "API server ready after $((SECONDS - t0))s"
  wait_for "containerd" 60 ctr -a "${CTRD_SOCK}" version
  load "${PAUSE_IMAGE_TAR}"

  start kubelet "${BIN}/kubelet" --config="${CLUSTER_DIR}/kubelet/config.yaml" --kubeconfig="${PKI}/kubelet.kubeconfig" \
    --root-dir="${CLUSTER_DIR}/kubelet/root" --cert-dir="${CLUSTER_DIR}/kubelet/pki" \
    --hostname-override="${NODE_NAME}" --node-ip="${NODE_IP}" -v=1
  start kube-controller-manager "${BIN}/kube-controller-manager" --kubeconfig="${PKI}/kcm.kubeconfig" \
    --authentication-kubeconfig="${PKI}/kcm.kubeconfig" --authorization-kubeconfig="${PKI}/kcm.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=30257 --leader-elect=false --use-service-account-credentials=true \
    --service-account-private-key-file="${PKI}/sa.key" --root-ca-file="${PKI}/ca.crt" \
    --cluster-signing-cert-file="${PKI}/ca.crt" --cluster-signing-key-file="${PKI}/ca.key" \
    --allocate-node-cidrs=false --service-cluster-ip-range="${SERVICE_CIDR}"
  start kube-scheduler "${BIN}/kube-scheduler" --kubeconfig="${PKI}/scheduler.kubeconfig" \
    --authentication-kubeconfig="${PKI}/scheduler.kubeconfig" --authorization-kubeconfig="${PKI}/scheduler.kubeconfig" \
    --bind-address=127.0.0.1 --secure-port=30259 --leader-elect=false
  start kube-proxy "${BIN}/kube-proxy" --config="${CLUSTER_DIR}/kube-proxy.yaml"
  wait_for "node ${NODE_NAME}" 180 kubectl_admin wait --for=condition=Ready "node/${NODE_NAME}" --timeout=2s
  wait_for "the default ServiceAccount" 60 kubectl_admin get serviceaccount default
  log "node Ready after $((SECONDS - t0))s"
  print_usage
}

print_usage() {
  cat >&2 <<EOF
cluster: a single-node Kubernetes $("${BIN}/kubectl" version --client -o json 2>/dev/null | sed -n 's/.*"gitVersion": "\(v[^"]*\)".*/\1/p' | head -1) runs (state in ${CLUSTER_DIR}).
  export KUBECONFIG=${KUBECONFIG_ADMIN}
  ${BIN}/kubectl get nodes
  make image cluster-load      # build the project's image and import it into the node
  make cluster-down            # stop it and restore the machine
EOF
}

status() {
  [[ -f "${KUBECONFIG_ADMIN}" ]] || return 1
  kubectl_admin get --raw /readyz >/dev/null 2>&1 || return 1
  kubectl_admin wait --for=condition=Ready "node/${NODE_NAME}" --timeout=2s >/dev/null 2>&1
}

load() {
  local tar
  for tar in "$@"; do
    [[ -f "${tar}" ]] || die "no such image archive: ${tar}"
    ctr -a "${CTRD_SOCK}" -n k8s.io images import --no-unpack=false "${tar}" >&2 || die "importing ${tar} failed"
  done
}

stop_pid() { # name [grace-seconds]
  local f="${RUN}/$1.pid" grace="${2:-20}" p i
  [[ -f "$f" ]] || return 0
  p="$(cat "$f")"
  if kill -0 "$p" 2>/dev/null; then
    kill "$p" 2>/dev/null || true
    for ((i = 0; i < grace * 10; i++)); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$p" 2>/dev/null && { log "$1 ($p) ignored SIGTERM for ${grace}s: SIGKILL"; kill -9 "$p" 2>/dev/null || true; }
  fi
  rm -f "$f"
}

down() {
  require_root
  [[ -d "${CLUSTER_DIR}" ]] || { log "nothing to tear down (no ${CLUSTER_DIR})"; return 0; }
  [[ -f "${STATE}/sysctl.before" ]] || log "warning: no recorded machine state in ${STATE}; restoring what can be found"
  # Pods first, through kubelet, so that containers stop and CNI releases their networks.
  if [[ -f "${RUN}/kubelet.pid" ]] && kubectl_admin get --raw /readyz >/dev/null 2>&1; then
    stop_pid kube-controller-manager 10
    kubectl_admin delete pods --all --all-namespaces --grace-period=2 --wait=true --timeout=60s >/dev/null 2>&1 ||
      log "warning: not every pod was deleted through kubelet; killing the rest directly"
  fi
  local n
  for n in kube-controller-manager kube-scheduler kube-proxy kubelet; do stop_pid "$n" 20; done
  if [[ -S "${CTRD_SOCK}" ]] && ctr -a "${CTRD_SOCK}" version >/dev/null 2>&1; then
    local c=(ctr -a "${CTRD_SOCK}" -n k8s.io) t
    for t in $("${c[@]}" tasks ls -q 2>/dev/null); do "${c[@]}" tasks kill -s SIGKILL "$t" >/dev/null 2>&1 || true; done
    for t in $("${c[@]}" tasks ls -q 2>/dev/null); do "${c[@]}" tasks delete -f "$t" >/dev/null 2>&1 || true; done
    for t in $("${c[@]}" containers ls -q 2>/dev/null); do "${c[@]}" containers delete "$t" >/dev/null 2>&1 || true; done
  fi
  stop_pid containerd 20
  # Shims outlive containerd; they name our socket on their command line.
  pkill -9 -f "containerd-shim.*-address ${CTRD_SOCK}" 2>/dev/null || true
  # Containers' own processes whose shim is gone (a SIGKILLed run), by their cgroup.
  local procs
  procs="$(cat /sys/fs/cgroup/*/kubepods/cgroup.procs /sys/fs/cgroup/*/kubepods/*/cgroup.procs /sys/fs/cgroup/*/kubepods/*/*/cgroup.procs /sys/fs/cgroup/*/kubepods/*/*/*/cgroup.procs 2>/dev/null | sort -u || true)"
  [[ -n "${procs}" ]] && kill -9 ${procs} 2>/dev/null || true
  stop_pid kube-apiserver 30 # before etcd: it hangs on shutdown without etcd
  stop_pid etcd 20
  # Anything else still running from our binaries (a run whose PID files were lost).
  pkill -9 -f "^${BIN}/" 2>/dev/null || true

  restore_machine
  rm -rf "${CLUSTER_DIR}"
  log "down: everything stopped and the machine restored"
}

restore_machine() {
  local m p
  # Mounts under our directory and under the paths kubelet creates, deepest first.
  local roots=("${CLUSTER_DIR}/")
  for p in "${EXTERNAL_PATHS[@]}"; do grep -qxF "$p" "${STATE}/paths.before" 2>/dev/null || roots+=("$p/"); done
  for _ in 1 2 3; do
    local found=0
    while read -r m; do
      for p in "${roots[@]}"; do
        if [[ "$m/" == "$p"* ]]; then umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true; found=1; fi
      done
    done < <(awk '{print $5}' /proc/self/mountinfo | sort -r)
    ((found)) || break
  done
  # Links: the node link, the pods' bridge, and any veth left behind.
  ip link del "${BRIDGE}" 2>/dev/null || true
  ip link del "${NODE_LINK}" 2>/dev/null || true
  ip route del blackhole 198.18.0.0/15 2>/dev/null || true
  if [[ -f "${STATE}/links.before" ]]; then
    while read -r l; do
      [[ "$l" == veth* ]] && ! grep -qxF "$l" "${STATE}/links.before" && ip link del "$l" 2>/dev/null || true
    done < <(ip -o link show | awk '{print $2}' | sed 's/@.*//; s/:$//')
  fi
  # Top-level cgroups created since (kubepods), each with its subtree, leaf first.
  if [[ -f "${STATE}/cgroups.before" ]]; then
    top_cgroups | while read -r c; do
      grep -qxF "$c" "${STATE}/cgroups.before" || find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true
    done
  else
    for c in /sys/fs/cgroup/*/kubepods; do if [[ -d "$c" ]]; then find "$c" -depth -type d -exec rmdir {} \; 2>/dev/null || true; fi; done
  fi
  # nftables tables created since (kube-proxy's, kubelet's canaries).
  if [[ -f "${STATE}/nft-tables.before" ]]; then
    while read -r t; do
      grep -qxF "$t" "${STATE}/nft-tables.before" || nft delete ${t} 2>/dev/null || true
    done < <(nft list tables 2>/dev/null | sort)
  fi
  # Sysctls back to their recorded values (kubelet sets vm.overcommit_memory, kernel.panic,
  # kernel.panic_on_oops, …; the bridge plugin net.ipv4.ip_forward).
  if [[ -f "${STATE}/sysctl.before" ]]; then
    local now="${STATE}/sysctl.now"
    sysctl -a 2>/dev/null | volatile_sysctl | sort >"${now}"
    comm -23 "${STATE}/sysctl.before" "${now}" | while IFS= read -r line; do
      local k="${line%% = *}" v="${line#* = }"
      grep -q "^${k} = " "${now}" || continue # gone with its link
      sysctl -qw "${k}=${v}" 2>/dev/null || true
    done
  fi
  # Paths created outside CLUSTER_DIR.
  for p in "${EXTERNAL_PATHS[@]}"; do
    if ! grep -qxF "$p" "${STATE}/paths.before" 2>/dev/null && [[ -e "$p" || -L "$p" ]]; then
      if [[ -f "${STATE}/paths.before" ]]; then rm -rf "$p"; fi
    fi
  done
}

cmd="${1:-}"
[[ $# -gt 0 ]] && shift
case "${cmd}" in
  up) up ;;
  prepare) prepare ;;
  down) down ;;
  status) status ;;
  snapshot) snapshot ;;
  load) load "$@" ;;
  env) printf 'export KUBECONFIG=%s\nexport CLUSTER_DIR=%s\nexport CLUSTER_KUBECTL=%s\nexport CLUSTER_NODE=%s\n' \
    "${KUBECONFIG_ADMIN}" "${CLUSTER_DIR}" "${BIN}/kubectl" "${NODE_NAME}" ;;
  *) sed -n '2,30p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
