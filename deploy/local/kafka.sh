#!/usr/bin/env bash
# One single-node Apache Kafka 3.9.1 broker (KRaft, combined broker+controller)
# bound to 127.0.0.1 only, for tests and the distributed run mode. No Docker:
# the broker jars come from Maven Central (see kafka/pom.xml) and are cached.
#
# Usage: deploy/local/kafka.sh start|stop|status|env
#
# stdout carries only machine-readable output (KAFKA_BOOTSTRAP_SERVERS=...),
# progress and errors go to stderr, so `eval "$(kafka.sh start)"` works.
#
# Environment:
#   TSUNAGU_CACHE_DIR   jar cache            (default ~/.cache/tsunagu)
#   TSUNAGU_LOCAL_DIR   runtime state        (default <repo>/var/local)
#   TSUNAGU_KAFKA_PARTITIONS       num.partitions for auto-created topics (1)
#   TSUNAGU_KAFKA_START_TIMEOUT    seconds to wait for readiness (120)
set -euo pipefail

readonly KAFKA_VERSION=3.9.1
readonly STOP_GRACE_SECONDS=20
readonly START_ATTEMPTS=3

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd -P)
CACHE_DIR=${TSUNAGU_CACHE_DIR:-${HOME:-/tmp}/.cache/tsunagu}
LOCAL_DIR=${TSUNAGU_LOCAL_DIR:-$REPO_DIR/var/local}
START_TIMEOUT=${TSUNAGU_KAFKA_START_TIMEOUT:-120}
NUM_PARTITIONS=${TSUNAGU_KAFKA_PARTITIONS:-1}

KAFKA_HOME=$CACHE_DIR/kafka-$KAFKA_VERSION
LIBS_DIR=$KAFKA_HOME/libs
# Kept outside libs/ so it can never end up on the classpath.
LIBS_MARKER=$KAFKA_HOME/libs.complete

log() { printf 'kafka.sh: %s\n' "$*" >&2; }
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

# Paths end up inside server.properties and on the java command line, which
# are resolved relative to other working directories, so make them absolute.
resolve_local_dir() {
  mkdir -p "$LOCAL_DIR"
  LOCAL_DIR=$(cd "$LOCAL_DIR" && pwd -P)
  STATE_DIR=$LOCAL_DIR/kafka
  ENV_FILE=$LOCAL_DIR/kafka.env
  PID_FILE=$STATE_DIR/kafka.pid
  SERVER_LOG=$STATE_DIR/server.log
  CONSOLE_LOG=$STATE_DIR/console.log
}

# Serialises concurrent start/stop calls (e.g. parallel test jobs). Every
# long-lived child must be started with 9>&- or it would hold the lock forever.
take_lock() {
  if command -v flock >/dev/null 2>&1; then
    exec 9>"$LOCAL_DIR/.kafka.lock"
    flock -w 300 9 || die "timed out waiting for $LOCAL_DIR/.kafka.lock"
  fi
}

require_python() {
  command -v python3 >/dev/null 2>&1 || die "python3 is required (picks free ports, makes the cluster id)"
}

require_java() {
  command -v java >/dev/null 2>&1 ||
    die "java not found in PATH; Kafka $KAFKA_VERSION needs a JRE 11+ (Debian: apt-get install -y --no-install-recommends openjdk-17-jre-headless)"
  local version major
  version=$(java -version 2>&1 | sed -n 's/.*version "\([^"]*\)".*/\1/p' | head -n1)
  major=${version%%.*}
  if [[ $major == 1 ]]; then major=$(cut -d. -f2 <<<"$version"); fi # 1.8 style
  if [[ $major =~ ^[0-9]+$ ]] && ((major < 11)); then
    die "java $version is too old; Kafka $KAFKA_VERSION needs Java 11+"
  fi
}

# Downloads the broker jars once. copy-dependencies writes into a scratch
# directory that is only renamed into place (and marked complete) after mvn
# succeeded, so an interrupted download is redone instead of half-used.
fetch_libs() {
  if [[ -f $LIBS_MARKER && -d $LIBS_DIR ]]; then
    return 0
  fi
  mkdir -p "$KAFKA_HOME"
  local lock_fd
  if command -v flock >/dev/null 2>&1; then
    exec {lock_fd}>"$KAFKA_HOME/.fetch.lock"
    flock -w 600 "$lock_fd" || die "timed out waiting for $KAFKA_HOME/.fetch.lock"
    # Another process may have finished the download while we waited.
    if [[ -f $LIBS_MARKER && -d $LIBS_DIR ]]; then
      exec {lock_fd}>&-
      return 0
    fi
  fi
  command -v mvn >/dev/null 2>&1 ||
    die "mvn not found in PATH; it is needed once to fetch the Kafka jars into $LIBS_DIR (Debian: apt-get install -y --no-install-recommends maven)"

  local partial=$KAFKA_HOME/libs.partial fetch_log=$KAFKA_HOME/fetch.log t0
  t0=$(now_ms)
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS_DIR ..."
  rm -rf "$partial" "$LIBS_MARKER"
  if ! mvn -q -B -f "$SCRIPT_DIR/kafka/pom.xml" \
    dependency:copy-dependencies -DoutputDirectory="$partial" \
    </dev/null >"$fetch_log" 2>&1; then
    tail -n 50 "$fetch_log" >&2 || true
    rm -rf "$partial"
    die "mvn failed to fetch the Kafka jars (full log: $fetch_log)"
  fi
  [[ -f $partial/kafka_2.13-$KAFKA_VERSION.jar ]] ||
    die "mvn finished but $partial has no kafka_2.13-$KAFKA_VERSION.jar"
  rm -rf "$LIBS_DIR"
  mv "$partial" "$LIBS_DIR"
  touch "$LIBS_MARKER"
  log "fetched $(find "$LIBS_DIR" -name '*.jar' | wc -l) jars in $(elapsed_s "$t0")s"
  if [[ -n ${lock_fd:-} ]]; then exec {lock_fd}>&-; fi
}

# The pid file alone is not trusted: after a reboot or crash the pid may
# belong to an unrelated process.
is_ours() {
  local pid=$1 cmdline
  [[ $pid =~ ^[0-9]+$ ]] || return 1
  cmdline=$(tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline") || return 1
  [[ $cmdline == *"kafka.Kafka $STATE_DIR/server.properties"* ]]
}

running_pid() {
  local pid
  [[ -f $PID_FILE ]] || return 1
  pid=$(<"$PID_FILE")
  is_ours "$pid" || return 1
  printf '%s\n' "$pid"
}

# Also finds brokers whose pid file was lost (state dir deleted by hand).
all_our_pids() {
  local p pid
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    if is_ours "$pid"; then printf '%s\n' "$pid"; fi
  done
}

env_line() { printf 'KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:%s\n' "$(<"$STATE_DIR/port")"; }

# Two distinct ports: both sockets stay bound until both numbers are known.
pick_ports() {
  python3 - <<'PY'
import socket
socks = []
for _ in range(2):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.bind(("127.0.0.1", 0))
    socks.append(s)
print(" ".join(str(s.getsockname()[1]) for s in socks))
for s in socks:
    s.close()
PY
}

# Same format as `kafka-storage.sh random-uuid` (url-safe base64 of 16 random
# bytes, never starting with '-'), without paying for another JVM start.
new_cluster_id() {
  python3 - <<'PY'
import base64, uuid
while True:
    cid = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
    if not cid.startswith("-"):
        print(cid)
        break
PY
}

write_config() {
  local port=$1 ctrl_port=$2
  cat >"$STATE_DIR/server.properties" <<EOF
# Generated by deploy/local/kafka.sh; deleted by "kafka.sh stop".
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$STATE_DIR/data
num.partitions=$NUM_PARTITIONS
auto.create.topics.enable=true
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
group.initial.rebalance.delay.ms=0
log.cleaner.dedupe.buffer.size=16777216
EOF
  cat >"$STATE_DIR/log4j.properties" <<EOF
# Size-capped so a long-running dev broker cannot fill the disk.
log4j.rootLogger=INFO, file
log4j.appender.file=org.apache.log4j.RollingFileAppender
log4j.appender.file.File=$SERVER_LOG
log4j.appender.file.MaxFileSize=50MB
log4j.appender.file.MaxBackupIndex=2
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
log4j.logger.kafka.request.logger=WARN
log4j.logger.org.apache.kafka.clients.NetworkClient=WARN
EOF
  printf '%s\n' "$port" >"$STATE_DIR/port"
}

print_logs() {
  local f
  for f in "$SERVER_LOG" "$CONSOLE_LOG" "$STATE_DIR/format.log"; do
    if [[ -s $f ]]; then
      log "---- last 50 lines of $f ----"
      tail -n 50 "$f" >&2
    fi
  done
}

# kill -0 alone is not enough: a broker that died while still being our
# child stays a zombie (and "alive" for kill -0) until this script exits.
alive() {
  local stat
  read -r stat 2>/dev/null <"/proc/$1/stat" || return 1
  stat=${stat##*) }
  [[ ${stat%% *} != Z ]]
}

# TERM first so the broker shuts down cleanly; KILL if it hangs.
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
      log "broker did not exit within ${STOP_GRACE_SECONDS}s of TERM; sending KILL to ${remaining[*]}"
      kill -KILL "${remaining[@]}" 2>/dev/null || true
      killed=1
    fi
    sleep 0.2
  done
}

# Returns 0 when ready, 2 when the broker died because a port was taken in
# the meantime (worth retrying with new ports), 1 on any other failure.
launch_and_wait() {
  local port ctrl_port pid deadline
  rm -rf "$STATE_DIR"
  mkdir -p "$STATE_DIR"
  read -r port ctrl_port < <(pick_ports)
  [[ -n $port && -n $ctrl_port ]] || die "could not pick free ports"
  write_config "$port" "$ctrl_port"

  if ! java -Dlog4j.configuration="file:$STATE_DIR/log4j.properties" -cp "$LIBS_DIR/*" \
    kafka.tools.StorageTool format -t "$(new_cluster_id)" -c "$STATE_DIR/server.properties" \
    </dev/null >"$STATE_DIR/format.log" 2>&1 9>&-; then
    print_logs
    log "formatting the KRaft storage failed"
    return 1
  fi

  # setsid: the broker must not die with the caller's process group (Ctrl-C
  # in the terminal that ran up.sh, a CI step's shell exiting). All three
  # standard streams are redirected so `$(kafka.sh start)` does not hang
  # waiting for the pipe to close.
  local launcher=()
  if command -v setsid >/dev/null 2>&1; then launcher=(setsid); fi
  (
    # JVM crash files (hs_err_pid*.log) go to the working directory.
    cd "$STATE_DIR"
    exec "${launcher[@]}" nohup java -Xmx512m -Xms256m -XX:+ExitOnOutOfMemoryError \
      -Djava.awt.headless=true \
      -Dlog4j.configuration="file:$STATE_DIR/log4j.properties" \
      -cp "$LIBS_DIR/*" kafka.Kafka "$STATE_DIR/server.properties"
  ) </dev/null >"$CONSOLE_LOG" 2>&1 9>&- &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"

  deadline=$((SECONDS + START_TIMEOUT))
  # An open port is not enough: the broker accepts connections before the
  # controller has elected itself and metadata is usable.
  until grep -q 'Kafka Server started' "$SERVER_LOG" 2>/dev/null; do
    if ! alive "$pid"; then
      if grep -qE 'BindException|Address already in use' "$SERVER_LOG" "$CONSOLE_LOG" 2>/dev/null; then
        log "port $port or $ctrl_port was taken before the broker bound it"
        return 2
      fi
      print_logs
      log "broker process $pid exited during startup"
      return 1
    fi
    if ((SECONDS >= deadline)); then
      print_logs
      log "broker not ready after ${START_TIMEOUT}s"
      kill_and_wait "$pid"
      return 1
    fi
    sleep 0.2
  done
  is_ours "$pid" || {
    print_logs
    log "pid $pid is not the broker (setsid forked?)"
    return 1
  }
}

cmd_start() {
  resolve_local_dir
  take_lock
  if running_pid >/dev/null && [[ -f $STATE_DIR/port ]]; then
    log "already running (pid $(running_pid), state $STATE_DIR)"
    env_line >"$ENV_FILE"
    env_line
    return 0
  fi
  require_java
  require_python
  # Leftovers of a crashed or half-started broker would make format fail.
  stop_broker quiet

  local t0 attempt rc=1
  t0=$(now_ms)
  fetch_libs
  local t_start
  t_start=$(now_ms)
  for ((attempt = 1; attempt <= START_ATTEMPTS; attempt++)); do
    rc=0
    launch_and_wait || rc=$?
    ((rc == 2)) || break
    stop_broker quiet
  done
  if ((rc != 0)); then
    # The state dir is wiped below; keep the logs for a post-mortem.
    cat "$STATE_DIR"/format.log "$CONSOLE_LOG" "$SERVER_LOG" >"$LOCAL_DIR/kafka-failure.log" 2>/dev/null || true
    stop_broker quiet
    die "Kafka $KAFKA_VERSION did not start (logs kept in $LOCAL_DIR/kafka-failure.log)"
  fi
  env_line >"$ENV_FILE"
  log "Kafka $KAFKA_VERSION ready on 127.0.0.1:$(<"$STATE_DIR/port") (pid $(<"$PID_FILE")); broker start took $(elapsed_s "$t_start")s, total $(elapsed_s "$t0")s"
  env_line
}

stop_broker() {
  local quiet=${1:-} pids=()
  local pid
  while read -r pid; do
    [[ -n $pid ]] && pids+=("$pid")
  done < <(
    running_pid || true
    all_our_pids
  )
  if ((${#pids[@]})); then
    mapfile -t pids < <(printf '%s\n' "${pids[@]}" | sort -u)
    [[ -n $quiet ]] || log "stopping broker (pid ${pids[*]})"
    kill_and_wait "${pids[@]}"
  elif [[ -z $quiet ]]; then
    log "not running"
  fi
  rm -rf "$STATE_DIR"
  rm -f "$ENV_FILE"
}

cmd_stop() {
  resolve_local_dir
  take_lock
  stop_broker
}

cmd_status() {
  resolve_local_dir
  local pid
  if pid=$(running_pid); then
    echo "running pid=$pid $(env_line)"
  else
    echo "not running"
    return 3
  fi
}

cmd_env() {
  resolve_local_dir
  if running_pid >/dev/null && [[ -f $ENV_FILE ]]; then
    cat "$ENV_FILE"
  else
    die "Kafka is not running (run: $0 start)"
  fi
}

main() {
  case ${1:-} in
    start) cmd_start ;;
    stop) cmd_stop ;;
    status) cmd_status ;;
    env) cmd_env ;;
    *)
      echo "usage: $0 start|stop|status|env" >&2
      exit 2
      ;;
  esac
}

main "$@"
