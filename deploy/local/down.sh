#!/usr/bin/env bash
# Stops the local Kafka and PostgreSQL started by up.sh, and the local
# Keycloak if it runs. Their data and ports are kept: up.sh brings them back
# as they were, on the same addresses. wipe.sh deletes them. Meant for cleanup
# traps and CI post-steps, so it never fails: a server that is not running is
# simply skipped.
set -euo pipefail

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd -P)
LOCAL_DIR=${TSUNAGU_LOCAL_DIR:-$REPO_DIR/var/local}

log() { printf 'down.sh: %s\n' "$*" >&2; }

# Keycloak is not started by up.sh (tests start it when they need it), but
# whatever deploy/local started is stopped here.
if "$SCRIPT_DIR/keycloak.sh" status >/dev/null 2>&1; then
  "$SCRIPT_DIR/keycloak.sh" stop || log "warning: keycloak.sh stop failed (exit $?)"
fi
# Reverse of the start order.
"$SCRIPT_DIR/kafka.sh" stop || log "warning: kafka.sh stop failed (exit $?)"
"$SCRIPT_DIR/postgres.sh" stop || log "warning: postgres.sh stop failed (exit $?)"
rm -f "$LOCAL_DIR/env" || true
exit 0
