#!/usr/bin/env bash
# k8s_master_installer.sh - makes this host a Kubernetes control plane (kubeadm, containerd) and serves join commands to the cluster's nodes
#
# For current Debian/Ubuntu and RHEL-family hosts (read from /etc/os-release);
# run as root, as a template's init script or with `herd script run`. Takes
# (all optional, environment only):
#   K8S_VERSION           Kubernetes minor (1.30) or exact version (1.30.2); default 1.30
#   K8S_PKG_REPO          package repository base; default https://pkgs.k8s.io/core:/stable:/v<minor>
#                         (a mirror, e.g. https://mirrors.aliyun.com/kubernetes-new/core/stable/v1.30)
#   K8S_IMAGE_REPOSITORY  where control-plane images come from; default registry.k8s.io
#   K8S_PAUSE_IMAGE       containerd's sandbox image; default <image repository>/pause:3.9
#   K8S_POD_CIDR          pod network; default 10.244.0.0/16 (flannel's)
#   K8S_SERVICE_CIDR      service network; default 10.96.0.0/12
#   K8S_API_SANS          extra API server certificate names, comma separated (e.g. the LB's address)
#   K8S_CNI_MANIFEST      pod network add-on applied after init (URL); "none" to skip; default flannel
#   K8S_NODE_GROUP        the herd group whose hosts may join; default k8s-node
#   K8S_JOIN_PORT         port of the join service on the private address; default 8765
#   K8S_PRINT_JOIN=1      print the whole join command (the token is a secret: masked by default)
#   HERD_DRY_RUN=1        print the commands it would run instead of running them
#
# Join commands. kubeadm's join token is a secret, and nodes come later (the
# autoscaler adds them days after), so nothing is baked into templates: this
# script installs `herd-k8s-joind`, a small service (socat) listening on the
# host's private address only. A node asks GET /join/<its herd host name>;
# the service answers with a fresh join command (token valid 1 h) only if
# `herd meta host NAME` says that host belongs to group $K8S_NODE_GROUP of
# this cluster *and* its private address is the one asking. /drain/NAME and
# /remove/NAME (same check) drain a node and delete it, for
# k8s_drain_node.sh. The join command is also kept in
# /var/lib/herd/k8s-join.sh (mode 0600, root only).
set -euo pipefail

ME=k8s_master_installer.sh
DRY=${HERD_DRY_RUN:-0}
K8S_VERSION=${K8S_VERSION:-1.30}
K8S_MINOR=$(printf '%s' "$K8S_VERSION" | cut -d. -f1,2)
K8S_PKG_REPO=${K8S_PKG_REPO:-https://pkgs.k8s.io/core:/stable:/v$K8S_MINOR}
K8S_IMAGE_REPOSITORY=${K8S_IMAGE_REPOSITORY:-registry.k8s.io}
K8S_PAUSE_IMAGE=${K8S_PAUSE_IMAGE:-$K8S_IMAGE_REPOSITORY/pause:3.9}
K8S_POD_CIDR=${K8S_POD_CIDR:-10.244.0.0/16}
K8S_SERVICE_CIDR=${K8S_SERVICE_CIDR:-10.96.0.0/12}
K8S_API_SANS=${K8S_API_SANS:-}
K8S_CNI_MANIFEST=${K8S_CNI_MANIFEST:-https://github.com/flannel-io/flannel/releases/latest/download/kube-flannel.yml}
K8S_NODE_GROUP=${K8S_NODE_GROUP:-k8s-node}
K8S_JOIN_PORT=${K8S_JOIN_PORT:-8765}
NODE_NAME=${HERD_HOST:-$(hostname)}
ADDRESS=${HERD_PRIVATE_IP:-}
KUBECONFIG_ADMIN=/etc/kubernetes/admin.conf
JOIN_FILE=/var/lib/herd/k8s-join.sh
JOIND=/usr/local/libexec/herd-k8s-joind

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
# put FILE MODE: writes stdin to FILE, or prints what it would write
put() {
	if dry; then
		say "+ write $1 (mode $2):"
		sed 's/^/|   /'
	else
		mkdir -p "$(dirname "$1")"
		cat >"$1.herd-tmp"
		chmod "$2" "$1.herd-tmp"
		mv -f "$1.herd-tmp" "$1"
	fi
}
os_family() {
	local id like
	id=$(sed -n 's/^ID=//p' /etc/os-release 2>/dev/null | tr -d '"')
	like=$(sed -n 's/^ID_LIKE=//p' /etc/os-release 2>/dev/null | tr -d '"')
	case " $id $like " in
	*" debian "* | *" ubuntu "*) echo debian ;;
	*" rhel "* | *" fedora "* | *" centos "*) echo rhel ;;
	*) echo unknown ;;
	esac
}

# --- checks ---
# check VAR REGEX WHAT: the value of VAR must match (these values end up in
# commands, sed expressions and unit files)
check() {
	[[ ${!1} =~ $2 ]] || die "$1 '${!1}' is not $3"
}
check K8S_VERSION '^[0-9]+\.[0-9]+(\.[0-9]+)?$' "a version like 1.30 or 1.30.2"
check K8S_PKG_REPO '^https?://[-A-Za-z0-9./:_~%]+$' "an http(s) URL"
check K8S_PAUSE_IMAGE '^[-A-Za-z0-9./:_@]+$' "an image name"
check K8S_IMAGE_REPOSITORY '^[-A-Za-z0-9./:_]+$' "an image repository"
check K8S_POD_CIDR '^[0-9A-Fa-f.:]+/[0-9]+$' "a CIDR"
check K8S_SERVICE_CIDR '^[0-9A-Fa-f.:]+/[0-9]+$' "a CIDR"
check K8S_API_SANS '^[-A-Za-z0-9.,:_]*$' "a comma-separated list of names and addresses"
check K8S_CNI_MANIFEST '^(none|https?://[-A-Za-z0-9./:_~%]+)$' "an http(s) URL or none"
check K8S_NODE_GROUP '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' "a group name"
case $K8S_JOIN_PORT in
'' | *[!0-9]*) die "K8S_JOIN_PORT '$K8S_JOIN_PORT' is not a port number" ;;
esac
[[ $NODE_NAME =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "host name '$NODE_NAME' is not a valid Kubernetes node name"
if [ -z "$ADDRESS" ]; then
	ADDRESS=$(hostname -I 2>/dev/null | awk '{print $1}')
fi
[ -n "$ADDRESS" ] || die "no private address (HERD_PRIVATE_IP is not set)"
if ! dry && [ "$(id -u)" != 0 ]; then
	die "must run as root"
fi
FAMILY=$(os_family)
[ "$FAMILY" != unknown ] || die "unsupported OS (want Debian/Ubuntu or RHEL family; see /etc/os-release)"
say "$ME: Kubernetes $K8S_VERSION control plane on $NODE_NAME ($ADDRESS, $FAMILY family)"

# --- packages: containerd, kubeadm, kubelet, kubectl, socat ---
install_packages() {
	if [ "$FAMILY" = debian ]; then
		run apt-get update -q
		run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q ca-certificates curl gpg \
			containerd socat conntrack
		run mkdir -p -m 0755 /etc/apt/keyrings
		if dry; then
			say "+ curl -fsSL $K8S_PKG_REPO/deb/Release.key | gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes.gpg"
		else
			curl -fsSL "$K8S_PKG_REPO/deb/Release.key" | gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes.gpg
		fi
		say "deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] $K8S_PKG_REPO/deb/ /" |
			put /etc/apt/sources.list.d/kubernetes.list 0644
		run apt-get update -q
		run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q kubelet kubeadm kubectl
		run apt-mark hold kubelet kubeadm kubectl
	else
		put /etc/yum.repos.d/kubernetes.repo 0644 <<-EOF
			[kubernetes]
			name=Kubernetes
			baseurl=$K8S_PKG_REPO/rpm/
			enabled=1
			gpgcheck=1
			gpgkey=$K8S_PKG_REPO/rpm/repodata/repomd.xml.key
		EOF
		# containerd comes from Docker's repository on the RHEL family
		run dnf install -y -q dnf-plugins-core
		run dnf config-manager --add-repo https://download.docker.com/linux/centos/docker-ce.repo
		run dnf install -y -q containerd.io socat conntrack-tools kubelet kubeadm kubectl
		# kubeadm's documented requirement on this family
		run setenforce 0 || true
		run sed -i 's/^SELINUX=enforcing$/SELINUX=permissive/' /etc/selinux/config
	fi
	run systemctl enable --now kubelet
}

# --- kernel, swap, containerd ---
prepare_host() {
	printf 'overlay\nbr_netfilter\n' | put /etc/modules-load.d/k8s.conf 0644
	run modprobe overlay
	run modprobe br_netfilter
	printf 'net.bridge.bridge-nf-call-iptables = 1\nnet.bridge.bridge-nf-call-ip6tables = 1\nnet.ipv4.ip_forward = 1\n' |
		put /etc/sysctl.d/k8s.conf 0644
	run sysctl --system -q
	run swapoff -a
	run sed -i '/\sswap\s/s/^[^#]/#&/' /etc/fstab
	run mkdir -p /etc/containerd
	if dry; then
		say "+ containerd config default > /etc/containerd/config.toml"
	else
		containerd config default >/etc/containerd/config.toml
	fi
	# systemd cgroups (kubelet's default driver) and the configured pause image
	run sed -i -e 's/SystemdCgroup = false/SystemdCgroup = true/' \
		-e "s|sandbox_image = .*|sandbox_image = \"$K8S_PAUSE_IMAGE\"|" /etc/containerd/config.toml
	run systemctl restart containerd
	run systemctl enable containerd
}

kubeadm_init() {
	local args=(init --image-repository "$K8S_IMAGE_REPOSITORY" --pod-network-cidr "$K8S_POD_CIDR"
		--service-cidr "$K8S_SERVICE_CIDR" --apiserver-advertise-address "$ADDRESS"
		--node-name "$NODE_NAME" --cri-socket unix:///run/containerd/containerd.sock)

	case $K8S_VERSION in
	*.*.*) args+=(--kubernetes-version "v$K8S_VERSION") ;;
	esac
	[ -z "$K8S_API_SANS" ] || args+=(--apiserver-cert-extra-sans "$K8S_API_SANS")
	if [ -f "$KUBECONFIG_ADMIN" ] && ! dry; then
		say "$ME: $KUBECONFIG_ADMIN exists: this host is already initialized, not running kubeadm init"
		return 0
	fi
	run kubeadm "${args[@]}"
	run mkdir -p /root/.kube
	run install -m 0600 "$KUBECONFIG_ADMIN" /root/.kube/config
}

apply_cni() {
	[ "$K8S_CNI_MANIFEST" != none ] || return 0
	# the manifest's default pod network follows K8S_POD_CIDR
	if dry; then
		say "+ curl -fsSL $K8S_CNI_MANIFEST | sed 's|10.244.0.0/16|$K8S_POD_CIDR|g' | kubectl --kubeconfig $KUBECONFIG_ADMIN apply -f -"
	else
		curl -fsSL "$K8S_CNI_MANIFEST" | sed "s|10.244.0.0/16|$K8S_POD_CIDR|g" |
			kubectl --kubeconfig "$KUBECONFIG_ADMIN" apply -f -
	fi
}

# --- the join service (see the top of this file) ---
install_joind() {
	local herd_bin

	herd_bin=$(command -v herd || true)
	[ -n "$herd_bin" ] || dry || die "the herd binary is not on PATH: the join service needs 'herd meta'"
	put "$JOIND" 0755 <<-'EOF'
		#!/usr/bin/env bash
		# herd-k8s-joind - one request per run (socat starts it per connection):
		# GET /join/NAME, /drain/NAME or /remove/NAME, allowed only to the herd
		# host NAME of group $K8S_NODE_GROUP asking from its own private address.
		set -u
		reply() { printf 'HTTP/1.0 %s\r\nContent-Type: text/plain\r\nConnection: close\r\n\r\n%s\n' "$1" "$2"; exit 0; }
		IFS=' ' read -r -t 5 method path _ || exit 0
		while IFS= read -r -t 5 line && [ -n "${line%$'\r'}" ]; do :; done
		[ "$method" = GET ] || reply "405 Method Not Allowed" "GET only"
		case $path in
		/join/* | /drain/* | /remove/*) action=${path#/}; action=${action%%/*}; name=${path#/*/} ;;
		*) reply "404 Not Found" "no such path" ;;
		esac
		[[ $name =~ ^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$ ]] || reply "400 Bad Request" "bad host name"
		ip=$(herd meta host "$name" private_ip 2>/dev/null) || reply "403 Forbidden" "no such host in this cluster"
		group=$(herd meta host "$name" group 2>/dev/null) || reply "403 Forbidden" "no such host in this cluster"
		if [ "$ip" != "${SOCAT_PEERADDR:-}" ] || [ "$group" != "$K8S_NODE_GROUP" ]; then
		    reply "403 Forbidden" "only host $name of group $K8S_NODE_GROUP, from its own address"
		fi
		export KUBECONFIG=/etc/kubernetes/admin.conf
		case $action in
		join)
		    cmd=$(kubeadm token create --print-join-command --ttl 1h 2>&1) || reply "500 Internal Server Error" "$cmd"
		    reply "200 OK" "$cmd" ;;
		drain)
		    out=$(kubectl drain "$name" --ignore-daemonsets --delete-emptydir-data --timeout=10m 2>&1) ||
		        reply "500 Internal Server Error" "$out"
		    reply "200 OK" "$out" ;;
		remove)
		    out=$(kubectl delete node "$name" --ignore-not-found 2>&1) || reply "500 Internal Server Error" "$out"
		    reply "200 OK" "$out" ;;
		esac
	EOF
	put /etc/systemd/system/herd-k8s-joind.service 0644 <<-EOF
		[Unit]
		Description=herd: join commands for the Kubernetes nodes of this herd cluster
		After=network-online.target kubelet.service

		[Service]
		Environment=K8S_NODE_GROUP=$K8S_NODE_GROUP
		Environment=HERD_META_CONFIG=${HERD_META_CONFIG:-/run/herd/host.json}
		Environment=PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$(dirname "${herd_bin:-/usr/local/bin/herd}")
		ExecStart=/usr/bin/socat TCP-LISTEN:$K8S_JOIN_PORT,bind=$ADDRESS,reuseaddr,fork EXEC:$JOIND
		Restart=always

		[Install]
		WantedBy=multi-user.target
	EOF
	run systemctl daemon-reload
	run systemctl enable --now herd-k8s-joind.service
}

print_join() {
	local cmd

	if dry; then
		say "+ kubeadm token create --print-join-command --ttl 24h > $JOIN_FILE"
		say "join command: kept in $JOIN_FILE; nodes fetch theirs from http://$ADDRESS:$K8S_JOIN_PORT/join/<host>"
		return 0
	fi
	cmd=$(kubeadm token create --print-join-command --ttl 24h)
	printf '#!/bin/sh\n%s\n' "$cmd" | put "$JOIN_FILE" 0600
	if [ "${K8S_PRINT_JOIN:-0}" = 1 ]; then
		say "join command: $cmd"
	else
		# the token is a secret: run output is kept on the server
		say "join command: $(printf '%s' "$cmd" | sed -E 's/(--token [a-z0-9]{6})\.[a-z0-9]{16}/\1.****************/')"
	fi
	say "kept in $JOIN_FILE; nodes fetch theirs from http://$ADDRESS:$K8S_JOIN_PORT/join/<host>"
}

install_packages
prepare_host
kubeadm_init
apply_cni
install_joind
print_join
if dry; then
	say "$ME: dry run: nothing was changed"
else
	say "$ME: control plane ready on $NODE_NAME; kubectl: export KUBECONFIG=$KUBECONFIG_ADMIN"
fi
