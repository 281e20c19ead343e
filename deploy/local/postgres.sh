#!/usr/bin/env bash
# A PostgreSQL server (Debian's packages, no Docker) listening on 127.0.0.1
# only, for tests and the distributed run mode. It is tuned for speed, not
# durability (fsync=off): a crash of the machine may lose its data.
# TSUNAGU_PG_DURABLE=1 keeps PostgreSQL's durable defaults instead: the
# benchmarks measure against a server configured as production runs it.
#
# Usage: deploy/local/postgres.sh start|stop|status|env|wipe
#
# stdout carries only machine-readable output (DATABASE_URL=...), progress
# and errors go to stderr, so `eval "$(postgres.sh start)"` works.
#
# `stop` shuts the server down cleanly and keeps its data dir and port, so
# that `start` brings back the same databases on the same DATABASE_URL.
# `wipe` stops it and deletes them.
#
# Environment:
#   TSUNAGU_LOCAL_DIR            runtime state (default <repo>/var/local)
#   TSUNAGU_PG_START_TIMEOUT     seconds to wait for readiness (60)
#   TSUNAGU_PG_DURABLE           1: fsync, synchronous_commit, full_page_writes on
set -euo pipefail

# libpq honours PGSSLMODE, PGSERVICE, PGOPTIONS, ... from the caller's
# environment; any of them could break the admin connections made here.
unset "${!PG@}"

readonly PG_OS_USER=tsunagu-pg
readonly DB_NAME=tsunagu DB_USER=tsunagu DB_PASSWORD=tsunagu
readonly START_ATTEMPTS=3
# sun_path holds 107 characters; "/.s.PGSQL.<port>" adds up to 15 of them.
readonly MAX_SOCKET_DIR_LEN=85

readonly NAME=postgres.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=deploy/local/lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd -P)
LOCAL_DIR=${TSUNAGU_LOCAL_DIR:-$REPO_DIR/var/local}
START_TIMEOUT=${TSUNAGU_PG_START_TIMEOUT:-60}
DURABLE=${TSUNAGU_PG_DURABLE:-0}

is_root() { [[ $(id -u) -eq 0 ]]; }

resolve_local_dir() {
  mkdir -p "$LOCAL_DIR"
  LOCAL_DIR=$(cd "$LOCAL_DIR" && pwd -P)
  # Root-owned bookkeeping (port, where the data dir is). The data dir itself
  # belongs to $PG_OS_USER and may live elsewhere, see choose_data_dir.
  STATE_DIR=$LOCAL_DIR/postgres
  ENV_FILE=$LOCAL_DIR/postgres.env
  # Fallback location for the data dir / socket when the state dir is not
  # reachable by $PG_OS_USER or its path is too long for a unix socket.
  TMP_BASE=/tmp/tsunagu-pg-$(printf '%s' "$LOCAL_DIR" | sha256sum | cut -c1-12)
}

# Debian keeps the server binaries out of PATH (/usr/lib/postgresql/<v>/bin),
# so PATH is only a preference, then the newest installed major version.
find_bindir() {
  local initdb d candidates=()
  if initdb=$(command -v initdb 2>/dev/null) && command -v pg_ctl >/dev/null 2>&1; then
    candidates+=("$(dirname "$(readlink -f "$initdb")")")
  fi
  if compgen -G '/usr/lib/postgresql/*/bin' >/dev/null; then
    mapfile -t -O "${#candidates[@]}" candidates < <(printf '%s\n' /usr/lib/postgresql/*/bin | sort -rV)
  fi
  for d in "${candidates[@]}"; do
    if [[ -x $d/initdb && -x $d/pg_ctl && -x $d/postgres ]]; then
      printf '%s\n' "$d"
      return 0
    fi
  done
  return 1
}

install_postgres() {
  local sudo=()
  if ! is_root; then
    if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
      sudo=(sudo -n)
    else
      die "PostgreSQL server binaries (initdb, pg_ctl) not found and not running as root; install them first: sudo apt-get install -y --no-install-recommends postgresql"
    fi
  fi
  command -v apt-get >/dev/null 2>&1 ||
    die "PostgreSQL server binaries (initdb, pg_ctl) not found and apt-get is unavailable; install PostgreSQL yourself"
  local apt_log=$LOCAL_DIR/apt-postgres.log t0
  t0=$(now_ms)
  log "installing PostgreSQL with apt-get (log: $apt_log) ..."
  # The package's postinst may create and start a "main" cluster on 5432;
  # it is left alone, this script never uses it.
  if ! { "${sudo[@]}" apt-get update &&
    "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends postgresql; } \
    </dev/null >"$apt_log" 2>&1 9>&-; then
    tail -n 40 "$apt_log" >&2 || true
    die "apt-get failed to install postgresql"
  fi
  log "installed PostgreSQL in $(elapsed_s "$t0")s"
}

# PostgreSQL refuses to run as root, so root delegates to a dedicated system
# user; anyone else runs the server as themselves.
ensure_os_user() {
  is_root || return 0
  getent passwd "$PG_OS_USER" >/dev/null && return 0
  # A concurrent run may create the user between the check and useradd.
  useradd --system --user-group --no-create-home --home-dir /nonexistent \
    --shell /usr/sbin/nologin "$PG_OS_USER" 2>/dev/null ||
    getent passwd "$PG_OS_USER" >/dev/null ||
    die "could not create system user $PG_OS_USER"
}

# Runs a command as the server's OS user. cd / because the caller's working
# directory may not be readable by that user.
as_pg() {
  if ! is_root; then
    "$@"
  elif command -v runuser >/dev/null 2>&1; then
    (cd / && runuser -u "$PG_OS_USER" -- "$@")
  else
    (cd / && su -s /bin/sh "$PG_OS_USER" -c "$(printf '%q ' "$@")")
  fi
}

make_pg_dir() {
  if is_root; then
    install -d -m 700 -o "$PG_OS_USER" -g "$PG_OS_USER" "$1"
  else
    install -d -m 700 "$1"
  fi
}

# Whether the server's OS user can reach $1 now and will later: the parents of
# the repository may be closed to it (e.g. a checkout under /root), and Tsunagu
# keeps the repository's var/ its owner's alone (0700, whenever it runs:
# services/platform/private_files.py), so a dir under var/ is reachable only
# until Tsunagu first runs there.
pg_reaches() {
  ! is_root || { [[ $1 != "$REPO_DIR/var/"* ]] && as_pg test -x "$1"; }
}

# Prefers <state>/data; falls back to /tmp when the server's OS user cannot
# reach it (pg_reaches).
choose_data_dir() {
  local data=$STATE_DIR/data
  if ! pg_reaches "$STATE_DIR"; then
    log "$PG_OS_USER may not reach $STATE_DIR; using $TMP_BASE for the data dir"
    data=$TMP_BASE/data
  fi
  if [[ $data == "$TMP_BASE"/* || ${#data} -gt $MAX_SOCKET_DIR_LEN ]]; then
    if [[ -e $TMP_BASE && ! -O $TMP_BASE ]] && ! is_root; then
      die "$TMP_BASE exists and belongs to someone else"
    fi
    make_pg_dir "$TMP_BASE"
    if is_root && [[ $(stat -c %U "$TMP_BASE") != "$PG_OS_USER" ]]; then
      die "$TMP_BASE exists and does not belong to $PG_OS_USER"
    fi
  fi
  printf '%s\n' "$data"
}

# The port is chosen once and kept: it is in DATABASE_URL, which var/local/env
# and every running client hold.
choose_port() { kept_port "$STATE_DIR/port" DATABASE_URL; }

psql_admin() {
  "$PSQL" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$1" -U postgres -d postgres "${@:2}"
}

database_url() { printf 'postgresql://%s:%s@127.0.0.1:%s/%s' "$DB_USER" "$DB_PASSWORD" "$1" "$DB_NAME"; }

env_line() { printf 'DATABASE_URL=%s\n' "$(database_url "$(<"$STATE_DIR/port")")"; }

# Reads the recorded data dir; fails when there is none.
recorded_data_dir() {
  [[ -f $STATE_DIR/datadir ]] || return 1
  local d
  d=$(<"$STATE_DIR/datadir")
  [[ -n $d ]] || return 1
  printf '%s\n' "$d"
}

postmaster_pid() {
  local pid
  [[ -f $1/postmaster.pid ]] || return 1
  read -r pid <"$1/postmaster.pid" || return 1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # Guard against a stale pid file whose pid was reused after a reboot.
  [[ $(readlink "/proc/$pid/exe" 2>/dev/null) == */postgres* ]] || return 1
  printf '%s\n' "$pid"
}

is_running() {
  local data
  data=$(recorded_data_dir) && [[ -f $STATE_DIR/port ]] && postmaster_pid "$data" >/dev/null
}

print_logs() {
  local f
  for f in "$@"; do
    if [[ -s $f ]]; then
      log "---- last 50 lines of $f ----"
      tail -n 50 "$f" >&2
    fi
  done
}

init_cluster() {
  local data=$1 out=$STATE_DIR/initdb.log
  make_pg_dir "$data"
  # --no-sync: nothing here has to survive a power cut, and it saves seconds.
  if as_pg "$BINDIR/initdb" -D "$data" --auth=trust -U postgres --encoding=UTF8 \
    --locale=C.UTF-8 --no-sync --no-instructions </dev/null >"$out" 2>&1; then
    return 0
  fi
  log "initdb with --locale=C.UTF-8 failed, retrying with --no-locale"
  rm -rf "$data"
  make_pg_dir "$data"
  if ! as_pg "$BINDIR/initdb" -D "$data" --auth=trust -U postgres --encoding=UTF8 \
    --no-locale --no-sync --no-instructions </dev/null >>"$out" 2>&1; then
    print_logs "$out"
    die "initdb failed"
  fi
}

# Our settings live in their own file so a retry with another port can
# rewrite them without editing postgresql.conf again.
write_config() {
  local data=$1 port=$2 socket_dir=$3
  local durability="fsync = off
synchronous_commit = off
full_page_writes = off"
  if [[ $DURABLE == 1 ]]; then durability="# Durable: PostgreSQL's own defaults."; fi
  cat >"$data/tsunagu.conf" <<EOF
# Generated by deploy/local/postgres.sh.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$socket_dir'
$durability
max_connections = 300
shared_buffers = 256MB
EOF
  if is_root; then chown "$PG_OS_USER:$PG_OS_USER" "$data/tsunagu.conf"; fi
  if ! grep -qx "include = 'tsunagu.conf'" "$data/postgresql.conf"; then
    printf "\ninclude = 'tsunagu.conf'\n" >>"$data/postgresql.conf"
  fi
  printf '%s\n' "$port" >"$STATE_DIR/port"
}

# Returns 0 when ready, 2 when the port was taken in the meantime (worth a
# retry with another port), 1 on any other failure.
launch_and_wait() {
  local data=$1 port socket_dir=$1 server_log=$1/server.log deadline
  if ((${#data} > MAX_SOCKET_DIR_LEN)); then socket_dir=$TMP_BASE; fi
  port=$(choose_port) || return 1
  write_config "$data" "$port" "$socket_dir"
  : >"$server_log"
  if is_root; then chown "$PG_OS_USER:$PG_OS_USER" "$server_log"; fi

  deadline=$((SECONDS + START_TIMEOUT))
  # pg_ctl -w notices a postmaster that dies during startup; it detaches the
  # postmaster (setsid, stdin from /dev/null, output to the log file).
  if ! as_pg "$BINDIR/pg_ctl" start -D "$data" -l "$server_log" -w -t "$START_TIMEOUT" \
    </dev/null >"$STATE_DIR/pg_ctl.log" 2>&1 9>&-; then
    if grep -qE 'could not bind|Address already in use' "$server_log" 2>/dev/null; then
      log "port $port was taken before the server bound it"
      rm -f "$STATE_DIR/port"
      return 2
    fi
    print_logs "$STATE_DIR/pg_ctl.log" "$server_log"
    log "pg_ctl start failed"
    return 1
  fi

  # pg_ctl only says the postmaster accepts connections; also prove that a
  # TCP login and a query work, which is what the tests will do.
  until "$PG_ISREADY" -q -h 127.0.0.1 -p "$port" -t 2 >/dev/null 2>&1 &&
    PGCONNECT_TIMEOUT=2 psql_admin "$port" -c 'select 1' >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      print_logs "$server_log"
      log "server not ready on 127.0.0.1:$port after ${START_TIMEOUT}s"
      return 1
    fi
    sleep 0.2
  done

  # Only on a new data dir do they not exist yet.
  if ! psql_admin "$port" >"$STATE_DIR/setup.log" 2>&1 <<SQL ||
SELECT 'CREATE ROLE $DB_USER LOGIN SUPERUSER PASSWORD ''$DB_PASSWORD'''
  WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '$DB_USER') \gexec
SELECT 'CREATE DATABASE $DB_NAME OWNER $DB_USER'
  WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = '$DB_NAME') \gexec
SQL
    ! "$PSQL" -X -q -v ON_ERROR_STOP=1 "$(database_url "$port")" -c 'select 1' >>"$STATE_DIR/setup.log" 2>&1; then
    print_logs "$STATE_DIR/setup.log" "$server_log"
    log "creating role/database $DB_NAME failed"
    return 1
  fi
}

cmd_start() {
  resolve_local_dir
  take_lock postgres 300
  if is_running; then
    log "already running (data $(recorded_data_dir))"
    env_line >"$ENV_FILE"
    env_line
    return 0
  fi
  command -v python3 >/dev/null 2>&1 || die "python3 is required (picks a free port)"
  # A postmaster of this data dir whose bookkeeping was lost would hold it.
  stop_server quiet

  local t0 data attempt rc=1
  t0=$(now_ms)
  if ! BINDIR=$(find_bindir); then
    install_postgres
    BINDIR=$(find_bindir) || die "PostgreSQL was installed but initdb/pg_ctl are still not found"
  fi
  PSQL=$BINDIR/psql
  PG_ISREADY=$BINDIR/pg_isready
  [[ -x $PSQL ]] || PSQL=$(command -v psql) || die "psql not found"
  [[ -x $PG_ISREADY ]] || PG_ISREADY=$(command -v pg_isready) || die "pg_isready not found"
  ensure_os_user

  local t_start
  t_start=$(now_ms)
  mkdir -p "$STATE_DIR"
  # The server's OS user has to traverse this directory to reach data/.
  chmod 755 "$STATE_DIR"
  # A data dir of an earlier run is started again as it is, moved first if the
  # server's OS user can no longer reach it (var/ closed since it was made).
  if data=$(recorded_data_dir) && [[ -f $data/PG_VERSION ]] && ! pg_reaches "$(dirname "$data")"; then
    data=$(move_data_dir "$data")
  fi
  if ! data=$(recorded_data_dir) || [[ ! -f $data/PG_VERSION ]]; then
    data=$(choose_data_dir)
    rm -rf "$data"
    printf '%s\n' "$data" >"$STATE_DIR/datadir"
    init_cluster "$data"
  fi
  for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
    rc=0
    launch_and_wait "$data" || rc=$?
    ((rc == 2)) || break
  done
  if ((rc != 0)); then
    cat "$STATE_DIR"/*.log "$data/server.log" >"$LOCAL_DIR/postgres-failure.log" 2>/dev/null || true
    stop_server quiet
    die "PostgreSQL did not start (logs kept in $LOCAL_DIR/postgres-failure.log; its data is kept, \`$0 wipe\` deletes it)"
  fi
  env_line >"$ENV_FILE"
  log "PostgreSQL $("$BINDIR/postgres" -V | awk '{print $3}') ready on 127.0.0.1:$(<"$STATE_DIR/port") (data $data); server start took $(elapsed_s "$t_start")s, total $(elapsed_s "$t0")s"
  env_line
}

# Finds postmasters for $1 even when postmaster.pid is gone.
postmasters_for() {
  local p pid cmdline
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    cmdline=$(tr '\0' ' ' 2>/dev/null <"$p/cmdline") || continue
    if [[ $cmdline == *postgres\ -D\ "$1"\ * || $cmdline == *postgres\ -D\ "$1" ]]; then
      printf '%s\n' "$pid"
    fi
  done
}

# Moves the data dir $1 to $TMP_BASE, where the server's OS user can reach it;
# prints its new place.
move_data_dir() {
  local moved=$TMP_BASE/data
  [[ ! -e $moved ]] || die "$PG_OS_USER cannot reach $1, and $moved is taken"
  log "$PG_OS_USER cannot reach $1 any more; moving it to $moved"
  make_pg_dir "$TMP_BASE"
  mv "$1" "$moved"
  # The socket's lock file, which the last server could not reach to remove.
  rm -f "$moved"/.s.PGSQL.*
  printf '%s\n' "$moved" >"$STATE_DIR/datadir"
  printf '%s\n' "$moved"
}

# Stops the server and keeps its data dir and port; see the header.
stop_server() {
  local quiet=${1:-} data pid pids=() deadline
  if data=$(recorded_data_dir); then
    if pid=$(postmaster_pid "$data"); then
      [[ -n $quiet ]] || log "stopping server (pid $pid)"
      # The pg_ctl that belongs to the running server, even if several
      # major versions are installed.
      local bindir
      bindir=$(readlink "/proc/$pid/exe")
      bindir=$(dirname "${bindir% (deleted)}")
      # Fast: open sessions are ended and a checkpoint written, so the next
      # start needs no recovery.
      as_pg "$bindir/pg_ctl" stop -D "$data" -m fast -w -t 30 </dev/null >/dev/null 2>&1 9>&- || true
    elif [[ -z $quiet ]]; then
      log "not running"
    fi
    mapfile -t pids < <(postmasters_for "$data")
    if ((${#pids[@]})); then
      # pg_ctl could not stop it (its OS user cannot reach the data dir, say):
      # the same fast shutdown, asked by signal, before anything harsher.
      kill -INT "${pids[@]}" 2>/dev/null || true
      deadline=$((SECONDS + 30))
      while ((SECONDS < deadline)) && [[ -n $(postmasters_for "$data") ]]; do sleep 0.2; done
      mapfile -t pids < <(postmasters_for "$data")
    fi
    if ((${#pids[@]})); then
      log "killing leftover postmaster ${pids[*]}"
      kill -KILL "${pids[@]}" 2>/dev/null || true
      deadline=$((SECONDS + 10))
      while ((SECONDS < deadline)) && [[ -n $(postmasters_for "$data") ]]; do sleep 0.2; done
    fi
  elif [[ -z $quiet ]]; then
    log "not running"
  fi
  rm -f "$ENV_FILE"
}

cmd_stop() {
  resolve_local_dir
  take_lock postgres 300
  stop_server
}

cmd_wipe() {
  local data
  resolve_local_dir
  take_lock postgres 300
  stop_server quiet
  if data=$(recorded_data_dir); then rm -rf "$data"; fi
  if [[ -e $TMP_BASE ]]; then
    rm -rf "$TMP_BASE" 2>/dev/null || log "warning: could not remove $TMP_BASE"
  fi
  rm -rf "$STATE_DIR"
  log "stopped; data dir and port deleted"
}

cmd_status() {
  resolve_local_dir
  if is_running; then
    echo "running pid=$(postmaster_pid "$(recorded_data_dir)") data=$(recorded_data_dir) $(env_line)"
  else
    echo "not running"
    return 3
  fi
}

cmd_env() {
  resolve_local_dir
  if is_running && [[ -f $ENV_FILE ]]; then
    cat "$ENV_FILE"
  else
    die "PostgreSQL is not running (run: $0 start)"
  fi
}

main "$@"
