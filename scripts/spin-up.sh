#!/usr/bin/env bash
# Runs the application under the released Spin CLI (`spin up`) plus a ticker
# that calls POST /api/v1/tick every TICK_EVERY seconds (default 5), as a
# Kubernetes CronJob or `spin aka cron` would: timers, approval timeouts and
# stalled runs move on with no synatra host running. Needs only Spin and a
# PostgreSQL: DATABASE_URL (the API applies the migrations itself).
# Secrets left unset are generated once into $SYNATRA_DATA_DIR/spin-secrets.env
# (default .synatra). LISTEN (default 127.0.0.1:3000) is where Spin serves.
set -euo pipefail
cd "$(dirname "$0")/.."

SPIN="${SPIN_BIN:-}"
if [ -z "$SPIN" ]; then
    if command -v spin >/dev/null 2>&1 && spin --version | grep -q '^spin 4\.'; then
        SPIN=spin
    elif [ -x ../shared/tools/spin ]; then
        SPIN=../shared/tools/spin
    else
        echo "no Spin 4.x CLI found: install it (https://spinframework.dev/install) or set SPIN_BIN" >&2
        exit 1
    fi
fi
: "${DATABASE_URL:?set DATABASE_URL to a PostgreSQL database (it is migrated on first request)}"
LISTEN="${LISTEN:-127.0.0.1:3000}"

data_dir="${SYNATRA_DATA_DIR:-.synatra}"
mkdir -p "$data_dir"
secrets="$data_dir/spin-secrets.env"
if [ ! -f "$secrets" ]; then
    umask 077
    {
        echo "SERVICE_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        echo "ENCRYPTION_KEY=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
        echo "TICK_SECRET=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')"
    } > "$secrets"
    echo "==> generated development secrets in $secrets"
fi
# shellcheck disable=SC1090
. "$secrets"

hostport=${DATABASE_URL#*://}
hostport=${hostport#*@}
hostport=${hostport%%/*}

export SPIN_VARIABLE_DATABASE_URL="$DATABASE_URL"
export SPIN_VARIABLE_DATABASE_HOST="${DATABASE_HOST:-$hostport}"
export SPIN_VARIABLE_SERVICE_SECRET="${SPIN_VARIABLE_SERVICE_SECRET:-$SERVICE_SECRET}"
export SPIN_VARIABLE_ENCRYPTION_KEY="${SPIN_VARIABLE_ENCRYPTION_KEY:-$ENCRYPTION_KEY}"
export SPIN_VARIABLE_TICK_SECRET="${SPIN_VARIABLE_TICK_SECRET:-$TICK_SECRET}"

"$SPIN" up --from spin.toml --listen "$LISTEN" &
spin_pid=$!
trap 'kill $spin_pid 2>/dev/null || true' EXIT INT TERM
echo "==> spin up on http://$LISTEN (PID $spin_pid); ticking every ${TICK_EVERY:-5} s"
while kill -0 "$spin_pid" 2>/dev/null; do
    sleep "${TICK_EVERY:-5}"
    curl -fsS -X POST -H "Authorization: Bearer $SPIN_VARIABLE_TICK_SECRET" \
        "http://$LISTEN/api/v1/tick" >/dev/null 2>&1 || true
done
wait "$spin_pid"
