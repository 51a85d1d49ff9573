#!/usr/bin/env bash
# The Debian packages the test suite runs for real: chromium (the playground test),
# postgresql (the server-backed stores and the gateway over PostgreSQL) and bubblewrap (the
# code interpreter's sandbox). Installs only what is missing; without root and sudo it says
# what is missing and the tests that need it skip with that reason.
set -euo pipefail

packages=(chromium postgresql bubblewrap git)
missing=()
for p in "${packages[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
# pgvector for the knowledge store tests, where the distribution packages it (trixie and later;
# bookworm does not: the tests then use the pgvector build in the pgserver wheel, a dev extra)
for v in $(ls /usr/lib/postgresql 2>/dev/null); do
    if apt-cache show "postgresql-$v-pgvector" >/dev/null 2>&1; then
        dpkg-query -W -f='${Status}' "postgresql-$v-pgvector" 2>/dev/null | grep -q "install ok installed" \
            || missing+=("postgresql-$v-pgvector")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0

if [ "$(id -u)" -eq 0 ]; then sudo=(); elif command -v sudo >/dev/null 2>&1; then sudo=(sudo); else
    echo "missing Debian packages (install them as root): ${missing[*]}; the tests that need them will skip" >&2
    exit 0
fi
echo "installing Debian packages: ${missing[*]}" >&2
"${sudo[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
