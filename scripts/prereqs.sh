#!/usr/bin/env bash
# Installs what `make up` / `make test` need and is missing: the wasm32-wasip2
# Rust target, curl and jq (the README's quick start uses them) and, unless
# DATABASE_URL points at a server, PostgreSQL.
set -euo pipefail

if ! rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip2; then
    echo "==> installing Rust target wasm32-wasip2"
    rustup target add wasm32-wasip2
fi

apt_install() {
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@" >/dev/null
}

missing=()
for tool in curl jq; do
    command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "==> installing ${missing[*]}"
    apt_install "${missing[@]}"
fi

have_postgres() {
    [ -n "${SYNATRA_PG_BIN:-}" ] && return 0
    command -v initdb >/dev/null 2>&1 && command -v pg_isready >/dev/null 2>&1 && return 0
    ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1
}

if ! have_postgres; then
    echo "==> installing PostgreSQL (Debian package postgresql)"
    apt_install postgresql postgresql-client
fi
