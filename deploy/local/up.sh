#!/usr/bin/env bash
# Starts the local PostgreSQL and Kafka used by tests and the distributed run
# mode (both idempotent: already-running servers are reused, stopped ones come
# back with their data on the same ports), then writes
# <local>/env and prints its `export KEY=VALUE` lines on stdout. Progress goes
# to stderr, so both of these work:
#   eval "$(deploy/local/up.sh)"
#   deploy/local/up.sh >/dev/null && source var/local/env
# On failure whatever did start is left running for inspection; run
# deploy/local/down.sh to clean up.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd -P)
LOCAL_DIR=${TSUNAGU_LOCAL_DIR:-$REPO_DIR/var/local}

log() { printf 'up.sh: %s\n' "$*" >&2; }

t0=$(date +%s%3N)
# Postgres first: it is quick, and a broken apt setup should surface before
# the slower Kafka download.
if ! pg_line=$("$SCRIPT_DIR/postgres.sh" start); then
  log "PostgreSQL failed to start; see the messages above"
  exit 1
fi
if ! kafka_line=$("$SCRIPT_DIR/kafka.sh" start); then
  log "Kafka failed to start; see the messages above (PostgreSQL is still running, deploy/local/down.sh stops it)"
  exit 1
fi

# The component scripts print exactly one KEY=VALUE line; refuse anything
# else rather than writing a broken env file.
[[ $pg_line == DATABASE_URL=* ]] || {
  log "unexpected output from postgres.sh: $pg_line"
  exit 1
}
[[ $kafka_line == KAFKA_BOOTSTRAP_SERVERS=* ]] || {
  log "unexpected output from kafka.sh: $kafka_line"
  exit 1
}

mkdir -p "$LOCAL_DIR"
env_file=$LOCAL_DIR/env
# Written via a temp file so a reader never sources a half-written env.
tmp=$(mktemp "$env_file.XXXXXX")
printf 'export %s\nexport %s\n' "$pg_line" "$kafka_line" >"$tmp"
chmod 644 "$tmp"
mv "$tmp" "$env_file"
ms=$(($(date +%s%3N) - t0))
log "local services up in $((ms / 1000)).$((ms % 1000 / 100))s; env written to $env_file"
cat "$env_file"
