#!/usr/bin/env bash
# One Keycloak 26.5.6 server (`kc.sh start-dev`: HTTP, H2 database) bound to
# 127.0.0.1 only: the OpenID provider for the integration tests and the
# distributed run mode, with the realm deploy/keycloak/tsunagu-realm.json
# (test staff with known passwords). No Docker: the server distribution comes
# from Maven Central (see keycloak/pom.xml) and is cached.
#
# Usage: deploy/local/keycloak.sh start|stop|status|env|wipe
#
# stdout carries only machine-readable output (KEYCLOAK_URL=...), progress and
# errors go to stderr, so `eval "$(keycloak.sh start)"` works.
#
# As with kafka.sh and postgres.sh, `stop` keeps the state: the port (it is
# part of the token issuer, so it must not move between restarts) and the
# database (a restart with the schema and realm already in place is twice as
# fast). The realm is
# imported again, on a fresh database, whenever the realm file has changed.
# `wipe` stops it and deletes that state, to start from nothing.
#
# Environment:
#   TSUNAGU_CACHE_DIR                distribution cache   (default ~/.cache/tsunagu)
#   TSUNAGU_LOCAL_DIR                runtime state        (default <repo>/var/local)
#   TSUNAGU_KEYCLOAK_START_TIMEOUT   seconds to wait for the realm's discovery document (300)
set -euo pipefail

readonly KEYCLOAK_VERSION=26.5.6
readonly REALM=tsunagu
readonly STOP_GRACE_SECONDS=30
readonly START_ATTEMPTS=3
# The master realm's administrator, created on the first start: this server
# only ever holds test data and listens on loopback.
readonly ADMIN_USER=admin ADMIN_PASSWORD=admin

readonly NAME=keycloak.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=deploy/local/lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd -P)
CACHE_DIR=${TSUNAGU_CACHE_DIR:-${HOME:-/tmp}/.cache/tsunagu}
LOCAL_DIR=${TSUNAGU_LOCAL_DIR:-$REPO_DIR/var/local}
START_TIMEOUT=${TSUNAGU_KEYCLOAK_START_TIMEOUT:-300}
REALM_FILE=$REPO_DIR/deploy/keycloak/$REALM-realm.json

DIST_DIR=$CACHE_DIR/keycloak-$KEYCLOAK_VERSION
# Kept outside the distribution so that it is never mistaken for part of it.
DIST_MARKER=$CACHE_DIR/keycloak-$KEYCLOAK_VERSION.complete

resolve_local_dir() {
  mkdir -p "$LOCAL_DIR"
  LOCAL_DIR=$(cd "$LOCAL_DIR" && pwd -P)
  STATE_DIR=$LOCAL_DIR/keycloak
  # The server's home: the cached distribution linked in, and data/ (the H2
  # database, the realm to import) of its own. kc.sh keeps everything under
  # its home, so this is how two state dirs share one distribution.
  HOME_DIR=$STATE_DIR/home
  ENV_FILE=$LOCAL_DIR/keycloak.env
  PID_FILE=$STATE_DIR/keycloak.pid
  PORT_FILE=$STATE_DIR/port
  IMPORTED_FILE=$STATE_DIR/realm.sha256
  CONSOLE_LOG=$STATE_DIR/console.log
}

require_python() {
  command -v python3 >/dev/null 2>&1 || die "python3 is required (unpacks the zip, picks a free port, polls readiness)"
}

# Downloads and unpacks the distribution once. Both happen in scratch places
# that are only renamed into place (and marked complete) once they succeeded,
# so an interrupted fetch is redone instead of half-used.
fetch_dist() {
  if [[ -f $DIST_MARKER && -x $DIST_DIR/bin/kc.sh ]]; then
    return 0
  fi
  mkdir -p "$CACHE_DIR"
  local lock_fd
  if command -v flock >/dev/null 2>&1; then
    exec {lock_fd}>"$CACHE_DIR/.keycloak-$KEYCLOAK_VERSION.fetch.lock"
    flock -w 900 "$lock_fd" || die "timed out waiting for the Keycloak fetch lock in $CACHE_DIR"
    # Another process may have finished the download while we waited.
    if [[ -f $DIST_MARKER && -x $DIST_DIR/bin/kc.sh ]]; then
      exec {lock_fd}>&-
      return 0
    fi
  fi
  local download=$CACHE_DIR/keycloak-$KEYCLOAK_VERSION.download
  local partial=$CACHE_DIR/keycloak-$KEYCLOAK_VERSION.partial
  local fetch_log=$CACHE_DIR/keycloak-$KEYCLOAK_VERSION.fetch.log
  local zip=$download/keycloak-quarkus-dist-$KEYCLOAK_VERSION.zip t0
  t0=$(now_ms)
  log "fetching Keycloak $KEYCLOAK_VERSION from Maven Central into $DIST_DIR ..."
  rm -rf "$download" "$partial" "$DIST_MARKER"
  mvn_fetch "$SCRIPT_DIR/keycloak/pom.xml" copy "$download" "$fetch_log" "Keycloak into $DIST_DIR"
  [[ -f $zip ]] || die "mvn finished but $download has no $(basename "$zip")"
  log "downloaded in $(elapsed_s "$t0")s; unpacking ..."
  # Python rather than unzip(1), which a fresh machine may lack; the modes
  # are restored by hand because zipfile drops them (kc.sh must stay executable).
  python3 - "$zip" "$partial" <<'PY'
import os, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as archive:
    for member in archive.infolist():
        path = archive.extract(member, sys.argv[2])
        mode = member.external_attr >> 16 & 0o777
        if mode and not member.is_dir():
            os.chmod(path, mode)
PY
  [[ -x $partial/keycloak-$KEYCLOAK_VERSION/bin/kc.sh ]] ||
    die "the zip did not unpack to keycloak-$KEYCLOAK_VERSION/bin/kc.sh"
  rm -rf "$DIST_DIR"
  mv "$partial/keycloak-$KEYCLOAK_VERSION" "$DIST_DIR"
  rm -rf "$partial" "$download"
  touch "$DIST_MARKER"
  log "fetched and unpacked in $(elapsed_s "$t0")s"
  if [[ -n ${lock_fd:-} ]]; then exec {lock_fd}>&-; fi
}

# The pid file alone is not trusted: after a reboot or crash the pid may
# belong to an unrelated process. Matches both kc.sh and the JVM it starts,
# which each carry this state dir's home on their command line.
is_ours() {
  local cmdline
  cmdline=$(cmdline_of "$1") || return 1
  [[ $cmdline == *"-Dkc.home.dir=$HOME_DIR "* ]]
}

base_url() { printf 'http://127.0.0.1:%s' "$(<"$PORT_FILE")"; }
env_line() { printf 'KEYCLOAK_URL=%s\n' "$(base_url)"; }

# The port is chosen once and kept: it is in every token's issuer, and in the
# settings of whoever points a service at this provider.
choose_port() { kept_port "$PORT_FILE" "the issuer URL" >/dev/null; }

# A changed realm file is imported on a fresh database: Keycloak's own import
# skips a realm that already exists.
prepare_home() {
  local entry name wanted
  mkdir -p "$HOME_DIR/data/import"
  for entry in "$DIST_DIR"/*; do
    name=$(basename "$entry")
    [[ $name == data ]] && continue
    ln -sfn "$entry" "$HOME_DIR/$name"
  done
  [[ -f $REALM_FILE ]] || die "realm file $REALM_FILE is missing"
  wanted=$(sha256sum "$REALM_FILE" | cut -d' ' -f1)
  if [[ ! -f $IMPORTED_FILE || $(<"$IMPORTED_FILE") != "$wanted" ]]; then
    [[ -f $IMPORTED_FILE ]] && log "realm file changed: starting from a fresh database"
    find "$HOME_DIR/data" -mindepth 1 -maxdepth 1 ! -name import -exec rm -rf {} +
    rm -f "$IMPORTED_FILE"
  fi
  cp "$REALM_FILE" "$HOME_DIR/data/import/"
  printf '%s\n' "$wanted" >"$STATE_DIR/realm.sha256.pending"
}

# The realm's discovery document, with the issuer this script promises.
discovery_ready() {
  python3 - "$(base_url)" "$REALM" <<'PY'
import json, sys, urllib.request
base, realm = sys.argv[1], sys.argv[2]
try:
    with urllib.request.urlopen(f"{base}/realms/{realm}/.well-known/openid-configuration", timeout=3) as r:
        sys.exit(0 if json.load(r).get("issuer") == f"{base}/realms/{realm}" else 1)
except Exception:
    sys.exit(1)
PY
}

print_logs() {
  if [[ -s $CONSOLE_LOG ]]; then
    log "---- last 60 lines of $CONSOLE_LOG ----"
    tail -n 60 "$CONSOLE_LOG" >&2
  fi
}

# Returns 0 when ready, 2 when the server died because its port was taken in
# the meantime (worth retrying on another port), 1 on any other failure.
launch_and_wait() {
  local pid deadline port
  choose_port
  port=$(<"$PORT_FILE")
  : >"$CONSOLE_LOG"

  # setsid: the server must not die with the caller's process group (Ctrl-C,
  # a CI step's shell exiting). All three standard streams are redirected so
  # `$(keycloak.sh start)` does not hang waiting for the pipe to close. The
  # second -Dkc.home.dir wins over the one kc.sh derives from its own path.
  # The fixed hostname makes the issuer the same whichever name a client used.
  local launcher=()
  if command -v setsid >/dev/null 2>&1; then launcher=(setsid); fi
  (
    # JVM crash files (hs_err_pid*.log) go to the working directory.
    cd "$STATE_DIR"
    export KC_BOOTSTRAP_ADMIN_USERNAME=$ADMIN_USER KC_BOOTSTRAP_ADMIN_PASSWORD=$ADMIN_PASSWORD
    exec "${launcher[@]}" nohup "$DIST_DIR/bin/kc.sh" "-Dkc.home.dir=$HOME_DIR" start-dev \
      --http-host=127.0.0.1 --http-port="$port" --hostname="http://127.0.0.1:$port" \
      --import-realm
  ) </dev/null >"$CONSOLE_LOG" 2>&1 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"

  deadline=$((SECONDS + START_TIMEOUT))
  until discovery_ready; do
    if ! alive "$pid"; then
      if grep -qE 'BindException|Address already in use|Port already bound' "$CONSOLE_LOG" 2>/dev/null; then
        log "port $port was taken before the server bound it"
        rm -f "$PORT_FILE"
        return 2
      fi
      print_logs
      log "server process $pid exited during startup"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      print_logs
      log "the realm's discovery document did not answer within ${START_TIMEOUT}s"
      kill_and_wait "$pid"
      return 1
    fi
    sleep 0.5
  done
  is_ours "$pid" || {
    print_logs
    log "pid $pid is not the server (setsid forked?)"
    return 1
  }
}

cmd_start() {
  resolve_local_dir
  take_lock keycloak 600
  if running_pid >/dev/null && [[ -f $PORT_FILE ]] && discovery_ready; then
    log "already running (pid $(running_pid), state $STATE_DIR)"
    env_line >"$ENV_FILE"
    env_line
    return 0
  fi
  require_java 17 "Keycloak $KEYCLOAK_VERSION"
  require_python
  stop_server quiet

  local t0
  t0=$(now_ms)
  fetch_dist
  mkdir -p "$STATE_DIR"
  prepare_home
  local t_start
  t_start=$(now_ms)
  if ! launch_retrying stop_server; then
    cp "$CONSOLE_LOG" "$LOCAL_DIR/keycloak-failure.log" 2>/dev/null || true
    stop_server quiet
    die "Keycloak $KEYCLOAK_VERSION did not start (log kept in $LOCAL_DIR/keycloak-failure.log)"
  fi
  mv "$STATE_DIR/realm.sha256.pending" "$IMPORTED_FILE"
  env_line >"$ENV_FILE"
  log "Keycloak $KEYCLOAK_VERSION ready at $(base_url)/realms/$REALM (pid $(<"$PID_FILE")); server start took $(elapsed_s "$t_start")s, total $(elapsed_s "$t0")s"
  env_line
}

# Stops the server and keeps its state (port, database); see the header.
stop_server() {
  stop_ours "$@"
  rm -f "$PID_FILE" "$ENV_FILE"
}

cmd_stop() {
  resolve_local_dir
  take_lock keycloak 600
  stop_server
}

cmd_wipe() {
  resolve_local_dir
  take_lock keycloak 600
  stop_server quiet
  rm -rf "$STATE_DIR"
  log "stopped; port and database deleted"
}

cmd_status() {
  resolve_local_dir
  pid_status
}

cmd_env() {
  resolve_local_dir
  pid_env Keycloak
}

main "$@"
