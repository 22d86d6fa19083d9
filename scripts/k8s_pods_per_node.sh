#!/usr/bin/env bash
# k8s_pods_per_node.sh - prints the number of pods running on this Kubernetes node (the seed's custom metric)
#
# For a monitor on the node group (`command: k8s_pods_per_node.sh`): one
# number on stdout, nothing else. Counts ready pod sandboxes with crictl
# (local, no API call); without crictl, asks the API server with kubectl
# and the kubelet's own credentials for pods bound to this node.
# Takes (optional, environment only):
#   K8S_NODE_NAME   this node's name; default $HERD_HOST, else the hostname
#   HERD_DRY_RUN=1  print the command it would run instead of running it
set -euo pipefail

ME=k8s_pods_per_node.sh
NODE=${K8S_NODE_NAME:-${HERD_HOST:-$(hostname)}}
SOCK=unix:///run/containerd/containerd.sock

die() { printf '%s: %s\n' "$ME" "$*" >&2; exit 1; }
[[ $NODE =~ ^[a-z0-9]([-.a-z0-9]*[a-z0-9])?$ ]] || die "'$NODE' is not a node name"

if command -v crictl >/dev/null 2>&1 || [ "${HERD_DRY_RUN:-0}" = 1 ]; then
	if [ "${HERD_DRY_RUN:-0}" = 1 ]; then
		printf '+ crictl --runtime-endpoint %s pods --state ready --quiet | wc -l\n' "$SOCK"
		exit 0
	fi
	n=$(crictl --runtime-endpoint "$SOCK" pods --state ready --quiet) || die "crictl cannot list pods"
elif command -v kubectl >/dev/null 2>&1 && [ -r /etc/kubernetes/kubelet.conf ]; then
	n=$(kubectl --kubeconfig /etc/kubernetes/kubelet.conf get pods --all-namespaces --no-headers \
		--field-selector "spec.nodeName=$NODE,status.phase=Running" -o name) || die "kubectl cannot list pods"
else
	die "neither crictl nor kubectl with /etc/kubernetes/kubelet.conf: is this a Kubernetes node?"
fi
# one number: 0 when the list is empty
printf '%s' "$n" | grep -c . || true
