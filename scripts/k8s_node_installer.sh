#!/usr/bin/env bash
# k8s_node_installer.sh - makes this host a Kubernetes node: installs kubeadm and containerd, finds the master with herd meta, joins it
#
# For current Debian/Ubuntu and RHEL-family hosts (read from /etc/os-release);
# run as root, as the init script of the node group's template. The master
# is the ready host of group $K8S_MASTER_GROUP in this host's cluster, found
# with `herd meta group k8s-master private_ip --wait`; its
# k8s_master_installer.sh serves this host a join command (see there).
# Takes (all optional, environment only):
#   K8S_VERSION           Kubernetes minor (1.30) or exact version (1.30.2); default 1.30
#   K8S_PKG_REPO          package repository base; default https://pkgs.k8s.io/core:/stable:/v<minor>
#   K8S_IMAGE_REPOSITORY  image repository for the pause image; default registry.k8s.io
#   K8S_PAUSE_IMAGE       containerd's sandbox image; default <image repository>/pause:3.9
#   K8S_MASTER_GROUP      the herd group of the control plane; default k8s-master
#   K8S_MASTER_WAIT       how long to wait for the master; default 30m
#   K8S_JOIN_PORT         port of the master's join service; default 8765
#   HERD_DRY_RUN=1        print the commands it would run instead of running them
#                         (the master's address is then not asked for: a placeholder stands in)
set -euo pipefail

ME=k8s_node_installer.sh
DRY=${HERD_DRY_RUN:-0}
K8S_VERSION=${K8S_VERSION:-1.30}
K8S_MINOR=$(printf '%s' "$K8S_VERSION" | cut -d. -f1,2)
K8S_PKG_REPO=${K8S_PKG_REPO:-https://pkgs.k8s.io/core:/stable:/v$K8S_MINOR}
K8S_IMAGE_REPOSITORY=${K8S_IMAGE_REPOSITORY:-registry.k8s.io}
K8S_PAUSE_IMAGE=${K8S_PAUSE_IMAGE:-$K8S_IMAGE_REPOSITORY/pause:3.9}
K8S_MASTER_GROUP=${K8S_MASTER_GROUP:-k8s-master}
K8S_MASTER_WAIT=${K8S_MASTER_WAIT:-30m}
K8S_JOIN_PORT=${K8S_JOIN_PORT:-8765}
NODE_NAME=${HERD_HOST:-$(hostname)}

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

# check VAR REGEX WHAT: the value of VAR must match (these values end up in
# commands, sed expressions and unit files)
check() {
	[[ ${!1} =~ $2 ]] || die "$1 '${!1}' is not $3"
}
check K8S_VERSION '^[0-9]+\.[0-9]+(\.[0-9]+)?$' "a version like 1.30 or 1.30.2"
check K8S_PKG_REPO '^https?://[-A-Za-z0-9./:_~%]+$' "an http(s) URL"
check K8S_PAUSE_IMAGE '^[-A-Za-z0-9./:_@]+$' "an image name"
check K8S_MASTER_GROUP '^[a-z0-9]([-a-z0-9]*[a-z0-9])?$' "a group name"
check K8S_MASTER_WAIT '^[0-9]+(ms|s|m|h|d)?$' "a duration like 30m"
case $K8S_JOIN_PORT in
'' | *[!0-9]*) die "K8S_JOIN_PORT '$K8S_JOIN_PORT' is not a port number" ;;
esac
[[ $NODE_NAME =~ ^[a-z0-9]([-a-z0-9]*[a-z0-9])?$ ]] || die "host name '$NODE_NAME' is not a valid Kubernetes node name"
if ! dry && [ "$(id -u)" != 0 ]; then
	die "must run as root"
fi
FAMILY=$(os_family)
[ "$FAMILY" != unknown ] || die "unsupported OS (want Debian/Ubuntu or RHEL family; see /etc/os-release)"
say "$ME: Kubernetes $K8S_VERSION node $NODE_NAME ($FAMILY family)"

install_packages() {
	if [ "$FAMILY" = debian ]; then
		run apt-get update -q
		run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q ca-certificates curl gpg \
			containerd conntrack
		run mkdir -p -m 0755 /etc/apt/keyrings
		if dry; then
			say "+ curl -fsSL $K8S_PKG_REPO/deb/Release.key | gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes.gpg"
		else
			curl -fsSL "$K8S_PKG_REPO/deb/Release.key" | gpg --dearmor --yes -o /etc/apt/keyrings/kubernetes.gpg
		fi
		say "deb [signed-by=/etc/apt/keyrings/kubernetes.gpg] $K8S_PKG_REPO/deb/ /" |
			put /etc/apt/sources.list.d/kubernetes.list 0644
		run apt-get update -q
		run env DEBIAN_FRONTEND=noninteractive apt-get install -y -q kubelet kubeadm
		run apt-mark hold kubelet kubeadm
	else
		put /etc/yum.repos.d/kubernetes.repo 0644 <<-EOF
			[kubernetes]
			name=Kubernetes
			baseurl=$K8S_PKG_REPO/rpm/
			enabled=1
			gpgcheck=1
			gpgkey=$K8S_PKG_REPO/rpm/repodata/repomd.xml.key
		EOF
		run dnf install -y -q dnf-plugins-core
		run dnf config-manager --add-repo https://download.docker.com/linux/centos/docker-ce.repo
		run dnf install -y -q containerd.io conntrack-tools kubelet kubeadm
		run setenforce 0 || true
		run sed -i 's/^SELINUX=enforcing$/SELINUX=permissive/' /etc/selinux/config
	fi
	run systemctl enable --now kubelet
}

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
	run sed -i -e 's/SystemdCgroup = false/SystemdCgroup = true/' \
		-e "s|sandbox_image = .*|sandbox_image = \"$K8S_PAUSE_IMAGE\"|" /etc/containerd/config.toml
	run systemctl restart containerd
	run systemctl enable containerd
}

find_master() {
	if dry; then
		say "+ herd meta group $K8S_MASTER_GROUP private_ip --wait --timeout $K8S_MASTER_WAIT" >&2
		echo "MASTER_IP"
		return 0
	fi
	herd meta group "$K8S_MASTER_GROUP" private_ip --wait --timeout "$K8S_MASTER_WAIT" | head -n 1
}

# Asks the master for a join command and runs it. The answer is parsed
# into words and must be exactly `kubeadm join HOST:PORT --token T
# --discovery-token-ca-cert-hash H`: nothing from the network is eval'ed.
join_master() {
	local master=$1 url answer words=() i

	url="http://$master:$K8S_JOIN_PORT/join/$NODE_NAME"
	if dry; then
		say "+ curl -fsS -m 30 $url  (every 10 s, up to 30 times)"
		say "+ kubeadm join <endpoint from the master> --token <token> --discovery-token-ca-cert-hash <hash> --node-name $NODE_NAME --cri-socket unix:///run/containerd/containerd.sock"
		return 0
	fi
	if [ -f /etc/kubernetes/kubelet.conf ]; then
		say "$ME: /etc/kubernetes/kubelet.conf exists: this host already joined"
		return 0
	fi
	for i in $(seq 30); do
		answer=$(curl -fsS -m 30 "$url") && break
		answer=
		say "$ME: no join command from $url yet (attempt $i)"
		sleep 10
	done
	[ -n "$answer" ] || die "the master at $master gave no join command (is k8s_master_installer.sh done there?)"
	read -r -a words <<<"$answer"
	if [ "${#words[@]}" -lt 7 ] || [ "${words[0]}" != kubeadm ] || [ "${words[1]}" != join ]; then
		die "unexpected answer from the master: not a kubeadm join command"
	fi
	for ((i = 2; i < ${#words[@]}; i++)); do
		[[ ${words[i]} =~ ^[A-Za-z0-9.:/=_-]+$ ]] || die "unexpected word in the join command from the master"
	done
	run kubeadm join "${words[@]:2}" --node-name "$NODE_NAME" --cri-socket unix:///run/containerd/containerd.sock
}

install_packages
prepare_host
MASTER=$(find_master)
[ -n "$MASTER" ] || die "no ready host in group '$K8S_MASTER_GROUP' after $K8S_MASTER_WAIT"
say "$ME: master is $MASTER"
join_master "$MASTER"
if dry; then
	say "$ME: dry run: nothing was changed"
else
	say "$ME: $NODE_NAME joined the cluster of $MASTER"
fi
