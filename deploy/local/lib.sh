# Shared by kafka.sh, postgres.sh and keycloak.sh; sourced, never run. The
# sourcing script sets NAME (its own name, for messages) and defines its
# cmd_start, cmd_stop (keeps the server's data), cmd_wipe (stops it and
# deletes its data), cmd_status and cmd_env; those that run a server
# process also define is_ours PID and set PID_FILE and STOP_GRACE_SECONDS.

log() { printf '%s: %s\n' "$NAME" "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

now_ms() { date +%s%3N; }
# Prints milliseconds since $1 as seconds with one decimal.
elapsed_s() {
  local ms=$(($(now_ms) - $1))
  printf '%d.%d' $((ms / 1000)) $((ms % 1000 / 100))
}

# Serialises concurrent start/stop calls (e.g. parallel test jobs) on
# <local>/.$1.lock, waiting at most $2 seconds. Every long-lived child must be
# started with 9>&- or it would hold the lock forever.
take_lock() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCAL_DIR/.$1.lock"
    flock -w "$2" 9 || die "timed out waiting for $LOCAL_DIR/.$1.lock"
  fi
}

# require_java MIN WHAT: a java in PATH of at least major version MIN.
require_java() {
  local min=$1 what=$2 version major
  command -v java >/dev/null 2>&1 ||
    die "java not found in PATH; $what needs Java $min+ (Debian: apt-get install -y --no-install-recommends openjdk-17-jre-headless)"
  version=$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
  major=${version%%.*}
  if [[ $major == 1 ]]; then major=$(cut -d. -f2 <<<"$version"); fi # 1.8 style
  if [[ $major =~ ^[0-9]+$ ]] && ((major < min)); then
    die "java $version is too old; $what needs Java $min+"
  fi
}

# mvn_fetch POM GOAL OUT LOG WHAT: the dependency plugin's GOAL on POM puts
# WHAT from Maven Central into OUT; on failure the log's tail is shown.
mvn_fetch() {
  local pom=$1 goal=$2 out=$3 fetch_log=$4 what=$5
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found in PATH; it is needed once to fetch $what (Debian: apt-get install -y --no-install-recommends maven)"
  if ! mvn -q -B -f "$pom" "dependency:$goal" -DoutputDirectory="$out" \
    </dev/null >"$fetch_log" 2>&1; then
    tail -n 50 "$fetch_log" >&2 || true
    rm -rf "$out"
    die "mvn failed to fetch $what (full log: $fetch_log)"
  fi
}

# port_is_free PORT: nothing is bound to 127.0.0.1:PORT. As the servers bind:
# connections of a previous run in TIME_WAIT do not count.
port_is_free() {
  python3 - "$1" <<'PY'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
PY
}

pick_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# kept_port FILE WHAT: the port FILE records, while it is free, else a new one
# (with a warning that WHAT, the address clients hold, changes); recorded in
# FILE and printed. A server's address must not move across restarts.
kept_port() {
  local file=$1 what=$2 port=""
  if [[ -f $file ]]; then
    port=$(<"$file")
    [[ $port =~ ^[0-9]+$ ]] || port=""
    if [[ -n $port ]] && ! port_is_free "$port"; then
      log "warning: port $port, used before, is taken by another process; $what changes"
      port=""
    fi
  fi
  [[ -n $port ]] || port=$(pick_port)
  [[ $port =~ ^[0-9]+$ ]] || die "could not pick a free port"
  printf '%s\n' "$port" >"$file"
  printf '%s\n' "$port"
}

# cmdline_of PID: its command line, arguments separated by spaces.
cmdline_of() {
  [[ $1 =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$1/cmdline"
}

# The pid file alone is not trusted: after a reboot or crash the pid may
# belong to an unrelated process (is_ours decides).
running_pid() {
  local pid
  [[ -f $PID_FILE ]] || return 1
  pid=$(<"$PID_FILE")
  is_ours "$pid" || return 1
  printf '%s\n' "$pid"
}

# Also finds servers whose pid file was lost (state dir deleted by hand).
all_our_pids() {
  local p pid
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    if is_ours "$pid"; then printf '%s\n' "$pid"; fi
  done
}

# kill -0 alone is not enough: a server that died while still being our
# child stays a zombie (and "alive" for kill -0) until this script exits.
alive() {
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# TERM first so the server shuts down cleanly; KILL if it hangs.
kill_and_wait() {
  local pids=("$@") pid remaining killed=""
  ((${#pids[@]})) || return 0
  kill -TERM "${pids[@]}" 2>/dev/null || true
  local deadline=$((SECONDS + STOP_GRACE_SECONDS))
  while :; do
    remaining=()
    for pid in "${pids[@]}"; do
      if alive "$pid"; then remaining+=("$pid"); fi
    done
    ((${#remaining[@]})) || return 0
    if [[ -z $killed ]] && ((SECONDS >= deadline)); then
      log "server did not exit within ${STOP_GRACE_SECONDS}s of TERM; sending KILL to ${remaining[*]}"
      kill -KILL "${remaining[@]}" 2>/dev/null || true
      killed=1
    fi
    sleep 0.2
  done
}

# Stops every process of ours: the pid file's, and any whose pid file was
# lost. "quiet" as $1 says nothing.
stop_ours() {
  local quiet=${1:-} pids=() pid
  while read -r pid; do
    [[ -n $pid ]] && pids+=("$pid")
  done < <(
    running_pid || true
    all_our_pids
  )
  if ((${#pids[@]})); then
    mapfile -t pids < <(printf '%s\n' "${pids[@]}" | sort -u)
    [[ -n $quiet ]] || log "stopping server (pid ${pids[*]})"
    kill_and_wait "${pids[@]}"
  elif [[ -z $quiet ]]; then
    log "not running"
  fi
}

# cmd_status and cmd_env of a server with a pid file and an ENV_FILE;
# env_line prints its KEY=VALUE line.
pid_status() {
  local pid
  if pid=$(running_pid); then
    echo "running pid=$pid $(env_line)"
  else
    echo "not running"
    return 3
  fi
}

# pid_env WHAT: the server's KEY=VALUE line, or an error naming WHAT.
pid_env() {
  if running_pid >/dev/null && [[ -f $ENV_FILE ]]; then
    cat "$ENV_FILE"
  else
    die "$1 is not running (run: $0 start)"
  fi
}

# launch_retrying STOP: the script's launch_and_wait, again (at most
# START_ATTEMPTS times) while it returns 2, a port taken before the server
# bound it; STOP quiet clears each failed attempt away.
launch_retrying() {
  local attempt rc=1
  for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
    rc=0
    launch_and_wait || rc=$?
    ((rc == 2)) || break
    "$1" quiet
  done
  return "$rc"
}

main() {
  case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    wipe) cmd_wipe ;;
    *)
      echo "usage: $0 start|stop|status|env|wipe" >&2
      exit 2
      ;;
  esac
}
