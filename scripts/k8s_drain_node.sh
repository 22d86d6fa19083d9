#!/usr/bin/env bash
# k8s_drain_node.sh - cordons and drains this Kubernetes node before herd terminates it (a policy's before_terminate)
#
# Runs on the node being removed. The node's own credentials may not evict
# pods, so it asks the master's join service (see k8s_master_installer.sh)
# to drain it: GET /drain/<this host>, allowed only to this host from its
# own address. Then it stops the kubelet and has the master delete the node
# object, so the cluster forgets it. On the master itself (admin.conf here)
# it drains with kubectl directly.
# Takes (all optional, environment only):
#   K8S_MASTER_GROUP  the herd group of the control plane; default k8s-master
#   K8S_JOIN_PORT     port of the master's join service; default 8765
#   K8S_NODE_NAME     this node's name; default $HERD_HOST, else the hostname
#   HERD_DRY_RUN=1    print the commands it would run instead of running them
set -euo pipefail

ME=k8s_drain_node.sh
DRY=${HERD_DRY_RUN:-0}
K8S_MASTER_GROUP=${K8S_MASTER_GROUP:-k8s-master}
K8S_JOIN_PORT=${K8S_JOIN_PORT:-8765}
NODE=${K8S_NODE_NAME:-${HERD_HOST:-$(hostname)}}

say() { printf '%s\n' "$*"; }
die() { printf '%s: %s\n' "$ME" "$*" >&2; exit 1; }
dry() { [ "$DRY" = 1 ]; }
# run CMD...: runs it, or prints it (shell-quoted) in a dry run
run() {
	local a out=+
	if ! dry; then
		"$@"
		return
	fi
	for a in "$@"; do
		if [[ $a =~ ^[-A-Za-z0-9_./:=@%+,]+$ ]]; then
			out+=" $a"
		else
			out+=" '${a//\'/\'\\\'\'}'"
		fi
	done
	say "$out"
}

[[ $NODE =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "'$NODE' is not a node name"
case $K8S_JOIN_PORT in
'' | *[!0-9]*) die "K8S_JOIN_PORT '$K8S_JOIN_PORT' is not a port number" ;;
esac
if ! dry && [ "$(id -u)" != 0 ]; then
	die "must run as root"
fi

if [ -r /etc/kubernetes/admin.conf ] && ! dry; then
	say "$ME: draining $NODE with this host's admin credentials"
	run kubectl --kubeconfig /etc/kubernetes/admin.conf drain "$NODE" --ignore-daemonsets \
		--delete-emptydir-data --timeout=10m
	exit 0
fi

if dry; then
	say "+ herd meta group $K8S_MASTER_GROUP private_ip"
	MASTER=MASTER_IP
else
	MASTER=$(herd meta group "$K8S_MASTER_GROUP" private_ip | head -n 1)
	[ -n "$MASTER" ] || die "no ready host in group '$K8S_MASTER_GROUP': cannot drain"
fi
say "$ME: asking the master ($MASTER) to drain $NODE"
run curl -fsS -m 660 "http://$MASTER:$K8S_JOIN_PORT/drain/$NODE"
run systemctl stop kubelet
run curl -fsS -m 60 "http://$MASTER:$K8S_JOIN_PORT/remove/$NODE"
if dry; then
	say "$ME: dry run: nothing was changed"
else
	say "$ME: $NODE drained and removed from the cluster"
fi
