#!/usr/bin/env bash
# k8s_ui_installer.sh - installs the Kubernetes Dashboard add-on; run it on the master
#
# The seed's kube-ui is long gone: its successor is the Dashboard. Run on a
# host made by k8s_master_installer.sh (it uses /etc/kubernetes/admin.conf),
# e.g. `herd script run k8s_ui_installer.sh --group k8s-master`.
# Takes (all optional, environment only):
#   K8S_DASHBOARD_MANIFEST  the add-on's manifest (URL); default Dashboard v2.7.0's
#   K8S_DASHBOARD_REGISTRY  registry mirror for its images (replaces docker.io/kubernetesui)
#   K8S_DASHBOARD_ADMIN=1   also make a service account `admin-user` bound to cluster-admin
#                           and print how to get its token (off by default: it is root)
#   HERD_DRY_RUN=1          print the commands it would run instead of running them
set -euo pipefail

ME=k8s_ui_installer.sh
DRY=${HERD_DRY_RUN:-0}
MANIFEST=${K8S_DASHBOARD_MANIFEST:-https://raw.githubusercontent.com/kubernetes/dashboard/v2.7.0/aio/deploy/recommended.yaml}
REGISTRY=${K8S_DASHBOARD_REGISTRY:-}
KUBECONFIG=/etc/kubernetes/admin.conf
export KUBECONFIG

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

if ! dry; then
	[ "$(id -u)" = 0 ] || die "must run as root"
	[ -r "$KUBECONFIG" ] || die "$KUBECONFIG is not here: run this on the master (k8s_master_installer.sh)"
	command -v kubectl >/dev/null || die "kubectl is not installed"
fi
case $REGISTRY in
*[!A-Za-z0-9./:_-]*) die "K8S_DASHBOARD_REGISTRY '$REGISTRY' is not a registry name" ;;
esac

say "$ME: installing the Dashboard from $MANIFEST"
if dry; then
	if [ -n "$REGISTRY" ]; then
		say "+ curl -fsSL $MANIFEST | sed 's|kubernetesui/|$REGISTRY/kubernetesui/|g' | kubectl apply -f -"
	else
		say "+ curl -fsSL $MANIFEST | kubectl apply -f -"
	fi
elif [ -n "$REGISTRY" ]; then
	curl -fsSL "$MANIFEST" | sed "s|kubernetesui/|$REGISTRY/kubernetesui/|g" | kubectl apply -f -
else
	curl -fsSL "$MANIFEST" | kubectl apply -f -
fi
run kubectl -n kubernetes-dashboard rollout status deployment/kubernetes-dashboard --timeout=5m

if [ "${K8S_DASHBOARD_ADMIN:-0}" = 1 ]; then
	if dry; then
		say "+ kubectl -n kubernetes-dashboard create serviceaccount admin-user --dry-run=client -o yaml | kubectl apply -f -"
		say "+ kubectl create clusterrolebinding dashboard-admin-user --clusterrole=cluster-admin --serviceaccount=kubernetes-dashboard:admin-user --dry-run=client -o yaml | kubectl apply -f -"
	else
		kubectl -n kubernetes-dashboard create serviceaccount admin-user --dry-run=client -o yaml |
			kubectl apply -f -
		kubectl create clusterrolebinding dashboard-admin-user --clusterrole=cluster-admin \
			--serviceaccount=kubernetes-dashboard:admin-user --dry-run=client -o yaml | kubectl apply -f -
	fi
	say "token: kubectl -n kubernetes-dashboard create token admin-user"
fi
say "open it: kubectl proxy, then http://localhost:8001/api/v1/namespaces/kubernetes-dashboard/services/https:kubernetes-dashboard:/proxy/"
if dry; then
	say "$ME: dry run: nothing was changed"
fi
