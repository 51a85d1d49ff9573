#!/usr/bin/env bash
# The Debian packages the test suite runs for real: chromium (the playground test),
# postgresql (the server-backed stores and the gateway over PostgreSQL) and bubblewrap (the
# code interpreter's sandbox). Installs only what is missing; without root and sudo it says
# what is missing and the tests that need it skip with that reason.
set -euo pipefail

packages=(chromium postgresql bubblewrap)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    echo "missing Debian packages (install them as root): ${missing[*]}; the tests that need them will skip" >&2
    exit 0
fi
echo "installing Debian packages: ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
