#!/usr/bin/env bash
# k8s_max_pods.sh - sets how many pods the kubelet of this node accepts (the seed's per-node quota of 40)
#
# The seed's scenario rests on a quota: 40 pods per node, so 150 pods on 3
# nodes leave 30 pending until a 4th node joins. Kubernetes' default is 110.
# Run after k8s_node_installer.sh (the node template lists it second): it
# sets maxPods in the kubelet's configuration (/var/lib/kubelet/config.yaml,
# written by kubeadm join) and restarts the kubelet. `kubeadm upgrade node`
# rewrites that file: run this again afterwards
# (`herd script run k8s_max_pods.sh --group k8s-node`).
# Takes (optional, environment only):
#   K8S_MAX_PODS        pods per node; default 40
#   K8S_KUBELET_CONFIG  the kubelet's configuration file; default /var/lib/kubelet/config.yaml
#   HERD_DRY_RUN=1      print what it would change instead of changing it
set -euo pipefail

ME=k8s_max_pods.sh
DRY=${HERD_DRY_RUN:-0}
K8S_MAX_PODS=${K8S_MAX_PODS:-40}
CONFIG=${K8S_KUBELET_CONFIG:-/var/lib/kubelet/config.yaml}

say() { printf '%s\n' "$*"; }
die() { printf '%s: %s\n' "$ME" "$*" >&2; exit 1; }
dry() { [ "$DRY" = 1 ]; }

[[ $K8S_MAX_PODS =~ ^[1-9][0-9]{0,3}$ ]] || die "K8S_MAX_PODS '$K8S_MAX_PODS' is not a number of pods (1-9999)"
[[ $CONFIG =~ ^/[-A-Za-z0-9._/]+$ ]] || die "K8S_KUBELET_CONFIG '$CONFIG' is not an absolute path"
if dry; then
	say "+ set maxPods: $K8S_MAX_PODS in $CONFIG (replace the line, or append it)"
	say "+ systemctl restart kubelet"
	say "$ME: dry run: nothing was changed"
	exit 0
fi
[ "$(id -u)" = 0 ] || die "must run as root"
[ -f "$CONFIG" ] || die "$CONFIG is not here: run this after k8s_node_installer.sh has joined the node"

if grep -qx "maxPods: $K8S_MAX_PODS" "$CONFIG"; then
	say "$ME: maxPods is already $K8S_MAX_PODS"
	exit 0
fi
tmp=$CONFIG.herd-tmp
if grep -q '^maxPods:' "$CONFIG"; then
	sed "s/^maxPods:.*/maxPods: $K8S_MAX_PODS/" "$CONFIG" >"$tmp"
else
	cat "$CONFIG" >"$tmp"
	# the file may not end with a newline
	[ -z "$(tail -c 1 "$CONFIG")" ] || printf '\n' >>"$tmp"
	printf 'maxPods: %s\n' "$K8S_MAX_PODS" >>"$tmp"
fi
chmod --reference="$CONFIG" "$tmp"
mv -f "$tmp" "$CONFIG"
systemctl restart kubelet
say "$ME: the kubelet of ${HERD_HOST:-$(hostname)} now accepts $K8S_MAX_PODS pods"
