#!/usr/bin/env bash
# One single-node Apache Kafka 3.9.1 broker (KRaft, combined broker+controller)
# bound to 127.0.0.1 only, for tests and the distributed run mode. No Docker:
# the broker jars come from Maven Central (see kafka/pom.xml) and are cached.
#
# Usage: deploy/local/kafka.sh start|stop|status|env|wipe
#
# stdout carries only machine-readable output (KAFKA_BOOTSTRAP_SERVERS=...),
# progress and errors go to stderr, so `eval "$(kafka.sh start)"` works.
#
# `stop` keeps the broker's state: its topics and committed offsets, its
# cluster id and both ports, so that `start` brings back the same broker on
# the same bootstrap address (events published but not yet consumed are still
# there). `wipe` stops it and deletes that state. Topics are never created on
# first use (auto.create.topics.enable=false): whoever uses one declares it.
#
# Environment:
#   TSUNAGU_CACHE_DIR   jar cache            (default ~/.cache/tsunagu)
#   TSUNAGU_LOCAL_DIR   runtime state        (default <repo>/var/local)
#   TSUNAGU_KAFKA_PARTITIONS       num.partitions: a created topic's default (1)
#   TSUNAGU_KAFKA_START_TIMEOUT    seconds to wait for readiness (120)
set -euo pipefail

readonly KAFKA_VERSION=3.9.1
readonly STOP_GRACE_SECONDS=20
readonly START_ATTEMPTS=3

readonly NAME=kafka.sh
SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)
# shellcheck source=deploy/local/lib.sh
source "$SCRIPT_DIR/lib.sh"
REPO_DIR=$(cd "$SCRIPT_DIR/../.." && pwd -P)
CACHE_DIR=${TSUNAGU_CACHE_DIR:-${HOME:-/tmp}/.cache/tsunagu}
LOCAL_DIR=${TSUNAGU_LOCAL_DIR:-$REPO_DIR/var/local}
START_TIMEOUT=${TSUNAGU_KAFKA_START_TIMEOUT:-120}
NUM_PARTITIONS=${TSUNAGU_KAFKA_PARTITIONS:-1}

KAFKA_HOME=$CACHE_DIR/kafka-$KAFKA_VERSION
LIBS_DIR=$KAFKA_HOME/libs
# Kept outside libs/ so it can never end up on the classpath.
LIBS_MARKER=$KAFKA_HOME/libs.complete

# Paths end up inside server.properties and on the java command line, which
# are resolved relative to other working directories, so make them absolute.
resolve_local_dir() {
  mkdir -p "$LOCAL_DIR"
  LOCAL_DIR=$(cd "$LOCAL_DIR" && pwd -P)
  STATE_DIR=$LOCAL_DIR/kafka
  DATA_DIR=$STATE_DIR/data
  ENV_FILE=$LOCAL_DIR/kafka.env
  PID_FILE=$STATE_DIR/kafka.pid
  PORT_FILE=$STATE_DIR/port
  CONTROLLER_PORT_FILE=$STATE_DIR/controller-port
  SERVER_LOG=$STATE_DIR/server.log
  CONSOLE_LOG=$STATE_DIR/console.log
}

require_python() {
  command -v python3 >/dev/null 2>&1 || die "python3 is required (picks free ports, makes the cluster id)"
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
  local partial=$KAFKA_HOME/libs.partial fetch_log=$KAFKA_HOME/fetch.log t0
  t0=$(now_ms)
  log "fetching Kafka $KAFKA_VERSION jars from Maven Central into $LIBS_DIR ..."
  rm -rf "$partial" "$LIBS_MARKER"
  mvn_fetch "$SCRIPT_DIR/kafka/pom.xml" copy-dependencies "$partial" "$fetch_log" \
    "the Kafka jars into $LIBS_DIR"
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
  local cmdline
  cmdline=$(cmdline_of "$1") || return 1
  [[ $cmdline == *"kafka.Kafka $STATE_DIR/server.properties"* ]]
}

env_line() { printf 'KAFKA_BOOTSTRAP_SERVERS=127.0.0.1:%s\n' "$(<"$PORT_FILE")"; }

# Two distinct free ports: both sockets stay bound until both numbers are known.
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

# The ports are chosen once and kept: the bootstrap address is in var/local/env
# and in every running client's settings, so it must not move across restarts.
choose_ports() {
  local port="" ctrl_port=""
  if [[ -f $PORT_FILE && -f $CONTROLLER_PORT_FILE ]]; then
    port=$(<"$PORT_FILE")
    ctrl_port=$(<"$CONTROLLER_PORT_FILE")
    if ! port_is_free "$port" || ! port_is_free "$ctrl_port"; then
      log "warning: port $port or $ctrl_port, used before, is taken by another process; the bootstrap address changes"
      port="" ctrl_port=""
    fi
  fi
  [[ -n $port ]] || read -r port ctrl_port < <(pick_ports)
  [[ $port =~ ^[0-9]+$ && $ctrl_port =~ ^[0-9]+$ ]] || die "could not pick free ports"
  printf '%s\n' "$port" >"$PORT_FILE"
  printf '%s\n' "$ctrl_port" >"$CONTROLLER_PORT_FILE"
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
# Generated by deploy/local/kafka.sh at each start; deleted by "kafka.sh wipe".
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:$ctrl_port
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$ctrl_port
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs=$DATA_DIR
num.partitions=$NUM_PARTITIONS
auto.create.topics.enable=false
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

# Returns 0 when ready, 2 when the broker died because a port was taken in
# the meantime (worth retrying with new ports), 1 on any other failure.
launch_and_wait() {
  local port ctrl_port pid deadline
  mkdir -p "$STATE_DIR"
  choose_ports
  port=$(<"$PORT_FILE")
  ctrl_port=$(<"$CONTROLLER_PORT_FILE")
  write_config "$port" "$ctrl_port"

  # Formatted once: the cluster id, topics and offsets of earlier runs are kept.
  if [[ ! -f $DATA_DIR/meta.properties ]]; then
    rm -rf "$DATA_DIR"
    if ! java -Dlog4j.configuration="file:$STATE_DIR/log4j.properties" -cp "$LIBS_DIR/*" \
      kafka.tools.StorageTool format -t "$(new_cluster_id)" -c "$STATE_DIR/server.properties" \
      </dev/null >"$STATE_DIR/format.log" 2>&1 9>&-; then
      print_logs
      rm -rf "$DATA_DIR"
      log "formatting the KRaft storage failed"
      return 1
    fi
  fi
  : >"$CONSOLE_LOG"
  : >"$SERVER_LOG"

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
        rm -f "$PORT_FILE" "$CONTROLLER_PORT_FILE"
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
  take_lock kafka 300
  if running_pid >/dev/null && [[ -f $PORT_FILE ]]; then
    log "already running (pid $(running_pid), state $STATE_DIR)"
    env_line >"$ENV_FILE"
    env_line
    return 0
  fi
  require_java 11 "Kafka $KAFKA_VERSION"
  require_python
  # A broker of this state dir whose pid file was lost would hold its ports and logs.
  stop_broker quiet

  local t0
  t0=$(now_ms)
  fetch_libs
  local t_start
  t_start=$(now_ms)
  if ! launch_retrying stop_broker; then
    cat "$STATE_DIR"/format.log "$CONSOLE_LOG" "$SERVER_LOG" >"$LOCAL_DIR/kafka-failure.log" 2>/dev/null || true
    stop_broker quiet
    die "Kafka $KAFKA_VERSION did not start (logs kept in $LOCAL_DIR/kafka-failure.log; its data is kept, \`$0 wipe\` deletes it)"
  fi
  env_line >"$ENV_FILE"
  log "Kafka $KAFKA_VERSION ready on 127.0.0.1:$(<"$PORT_FILE") (pid $(<"$PID_FILE")); broker start took $(elapsed_s "$t_start")s, total $(elapsed_s "$t0")s"
  env_line
}

# Stops the broker and keeps its state (data, ports, cluster id); see the header.
stop_broker() {
  stop_ours "$@"
  rm -f "$PID_FILE" "$ENV_FILE"
}

cmd_stop() {
  resolve_local_dir
  take_lock kafka 300
  stop_broker
}

cmd_wipe() {
  resolve_local_dir
  take_lock kafka 300
  stop_broker quiet
  rm -rf "$STATE_DIR"
  log "stopped; topics, offsets and ports deleted"
}

cmd_status() {
  resolve_local_dir
  pid_status
}

cmd_env() {
  resolve_local_dir
  pid_env Kafka
}

main "$@"
