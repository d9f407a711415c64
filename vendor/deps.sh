#!/bin/sh
# The one place node's build and test dependencies come from: Debian packages.
# Usage: vendor/deps.sh check|install|install-test
# Versions tested: see vendor/VERSIONS.
set -eu

BUILD_PKGS="build-essential pkg-config libnng-dev libcjson-dev liblz4-dev libmbedtls-dev"
TEST_PKGS="nng-utils mandoc clang openssl python3 iproute2 curl"

missing() {
	out=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || out="$out $p"
	done
	echo "$out"
}

install_pkgs() {
	m=$(missing "$@")
	[ -z "$m" ] && return 0
	echo "vendor/deps.sh: installing:$m" >&2
	SUDO=""
	[ "$(id -u)" = 0 ] || SUDO="sudo"
	$SUDO apt-get update -qq >&2 || true
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $m >&2
}

case "${1:-check}" in
check)
	m=$(missing $BUILD_PKGS)
	if [ -n "$m" ]; then
		echo "node: missing Debian packages:$m (run: vendor/deps.sh install)" >&2
		exit 1
	fi
	;;
install) install_pkgs $BUILD_PKGS ;;
install-test) install_pkgs $BUILD_PKGS $TEST_PKGS ;;
*) echo "usage: vendor/deps.sh check|install|install-test" >&2; exit 2 ;;
esac
