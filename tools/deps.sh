#!/usr/bin/env bash
# deps.sh STAGE - installs the Debian packages herd needs for STAGE (build,
# check, demo, bench) when they are missing. Quiet when all are present; when
# not root, prints the exact apt-get line and fails.
set -eu

build_pkgs=(gcc make pkg-config libmicrohttpd-dev libcurl4-openssl-dev libjansson-dev
	libsqlite3-dev libpq-dev libyaml-dev libsodium-dev libnl-route-3-dev libcmocka-dev
	libmbedtls-dev musl-tools libgnutls28-dev libprotobuf-c-dev protobuf-c-compiler libsnappy-dev)
check_pkgs=(bats shellcheck sqlite3 postgresql iproute2 curl procps perl haproxy redis-server chromium prometheus
	prometheus-alertmanager python3-aiosmtpd)
demo_pkgs=(iproute2 curl procps haproxy redis-server)
bench_pkgs=(wrk nginx-light iproute2 curl haproxy chromium prometheus prometheus-node-exporter collectd-core
	postgresql)

case "${1:-build}" in
build) want=("${build_pkgs[@]}") ;;
check) want=("${build_pkgs[@]}" "${check_pkgs[@]}") ;;
demo) want=("${build_pkgs[@]}" "${demo_pkgs[@]}") ;;
bench) want=("${build_pkgs[@]}" "${bench_pkgs[@]}") ;;
*) echo "deps.sh: unknown stage '$1'" >&2; exit 2 ;;
esac

missing=()
for p in "${want[@]}"; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
		missing+=("$p")
	fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" != 0 ]; then
	echo "herd: missing packages; run as root:" >&2
	echo "  apt-get install -y ${missing[*]}" >&2
	exit 1
fi
echo "herd: installing ${missing[*]}" >&2
export DEBIAN_FRONTEND=noninteractive
# Services installed here (redis, nginx) must not start on their own.
policy=/usr/sbin/policy-rc.d
made_policy=0
if [ ! -e "$policy" ]; then
	printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
fi
trap '[ "$made_policy" = 1 ] && rm -f "$policy"' EXIT
if ! apt-get install -y -qq "${missing[@]}" >/dev/null 2>&1; then
	apt-get update -qq >/dev/null 2>&1 || true
	apt-get install -y -qq "${missing[@]}" >/dev/null
fi
