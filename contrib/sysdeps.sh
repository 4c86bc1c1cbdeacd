#!/usr/bin/env bash
# Install the Debian packages whose binary is missing, given as PACKAGE=BINARY arguments
# (the Makefile's DEBIAN_PACKAGES). Why a script and not a Makefile rule: apt-get must run
# once for all missing packages, and only as root; a user without root gets one plain
# sentence per missing part instead.
set -euo pipefail
missing=()
for pair in "$@"; do
    package=${pair%%=*}
    binary=${pair#*=}
    if ! command -v "$binary" >/dev/null 2>&1 && [ ! -x "$binary" ]; then
        missing+=("$package")
    fi
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "sysdeps: installing ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
else
    echo "sysdeps: missing Debian packages: ${missing[*]}"
    echo "sysdeps: install them with: sudo apt-get install ${missing[*]}"
    echo "sysdeps: the tests that need them will be skipped and listed at the end"
fi
