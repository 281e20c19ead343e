#!/usr/bin/env bash
# Stops the local Kafka, PostgreSQL and Keycloak and deletes their data and
# ports: the next up.sh starts from nothing, on new addresses. Unlike
# down.sh, whatever they held (topics, offsets, databases) is gone.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd -P)
LOCAL_DIR=${TSUNAGU_LOCAL_DIR:-$REPO_DIR/var/local}

log() { printf 'wipe.sh: %s\n' "$*" >&2; }

status=0
for server in keycloak kafka postgres; do
  "$SCRIPT_DIR/$server.sh" wipe || {
    log "warning: $server.sh wipe failed (exit $?)"
    status=1
  }
done
rm -f "$LOCAL_DIR/env" "$LOCAL_DIR"/{kafka,postgres,keycloak}-failure.log
exit "$status"
