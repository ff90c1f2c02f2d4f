#!/usr/bin/env bash
# Real servers for pulse's integration tests, as plain loopback processes.
#
#   scripts/services.sh up      install what is missing, start, wait until ready, print env
#   scripts/services.sh env     print `export ...` lines: eval "$(scripts/services.sh env)"
#   scripts/services.sh status  say what runs where
#   scripts/services.sh down    stop what `up` started (by pid file); logs stay for reading;
#                               `down clickhouse` stops only that one
#
# Services: ClickHouse (Debian clickhouse-server), tansu with memory storage
# (fast) and tansu with sqlite storage (durable). State, logs and pid files
# live under $PULSE_SERVICES_DIR (default: <repo>/.services). See docs/testing.md.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
state=${PULSE_SERVICES_DIR:-$repo/.services}
# Absolute and symlink-free: running_pid compares it with /proc/<pid>/cwd.
mkdir -p "$state" && state=$(cd "$state" && pwd -P)
# One config template for this script and pulse_testkit::ClickHouseProcess.
clickhouse_template=$repo/pulse-testkit/clickhouse
ready_timeout=${PULSE_SERVICES_READY_TIMEOUT:-60}
stop_timeout=30

log() { echo "services: $*" >&2; }
die() {
  log "error: $*"
  exit 1
}

# ---------------------------------------------------------------- installs --
# Each install_* is idempotent: it returns at once when its tool is present.

as_root() {
  if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi
}

# apt-get install, refreshing the package lists only if the first try fails
# (a fresh machine has none; a warm one should not pay for `apt-get update`).
apt_install() {
  local apt=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@")
  log "apt-get install $*"
  if ! as_root "${apt[@]}"; then
    log "apt-get update, then retry"
    as_root apt-get update -q
    as_root "${apt[@]}"
  fi
}

clickhouse_server_bin() {
  command -v clickhouse-server 2>/dev/null && return
  # /usr/sbin is not on a normal user's PATH.
  [ -x /usr/sbin/clickhouse-server ] && echo /usr/sbin/clickhouse-server
}

tansu_bin() {
  command -v tansu 2>/dev/null && return
  local cargo_bin=${CARGO_HOME:-$HOME/.cargo}/bin/tansu
  [ -x "$cargo_bin" ] && echo "$cargo_bin"
}

install_clickhouse() {
  clickhouse_server_bin >/dev/null && return
  apt_install clickhouse-server
}

# tansu builds C code (libsql) from source.
install_build_tools() {
  command -v cc >/dev/null && command -v make >/dev/null && return
  apt_install build-essential pkg-config
}

install_tansu() {
  tansu_bin >/dev/null && return
  install_build_tools
  log "building tansu from crates.io (about 10 minutes on 2 cores, once per machine)"
  cargo install tansu --locked --features dynostore,libsql
}

install_all() {
  install_clickhouse
  install_tansu
}

# --------------------------------------------------------------- processes --
# Service directory layout: $state/<name>/{pid,port,<name>.log,...}.

service_dir() { echo "$state/$1"; }

# Prints the pid of service $1 if it is alive and really ours: its working
# directory is the service directory, so a reused pid is not mistaken for it.
running_pid() {
  local dir pid
  dir=$(service_dir "$1")
  [ -f "$dir/pid" ] || return 1
  pid=$(<"$dir/pid")
  [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 1
  [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$dir" ] || return 1
  echo "$pid"
}

port_is_free() {
  ! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

taken_ports=()
# pick_port VAR: sets VAR to a loopback port that nothing listens on and this
# run has not handed out. (Not `$(pick_port)`: a subshell would forget taken_ports.)
pick_port() {
  local candidate # not `port`: that would shadow a caller's VAR of that name
  for _ in $(seq 200); do
    candidate=$((20000 + RANDOM % 30000))
    [[ " ${taken_ports[*]} " == *" $candidate "* ]] && continue
    if port_is_free "$candidate"; then
      taken_ports+=("$candidate")
      printf -v "$1" '%s' "$candidate"
      return
    fi
  done
  die "no free loopback port found"
}

# Starts "$@" in the background with cwd $dir, output to $dir/$name.log.
launch() {
  local name=$1 dir=$2
  shift 2
  # Every fd redirected or closed: a caller's $(...) must not wait on the
  # servers, and fd 9 (the state lock) must not outlive this script.
  (cd "$dir" && exec "$@" </dev/null >>"$dir/$name.log" 2>&1 9>&-) &
  echo $! >"$dir/pid"
}

# Polls `$check` until it succeeds, the process dies, or the deadline passes.
wait_ready() {
  local name=$1 check=$2 dir pid deadline
  dir=$(service_dir "$name")
  pid=$(<"$dir/pid")
  deadline=$((SECONDS + ready_timeout))
  until "$check" "$(<"$dir/port")"; do
    if ! kill -0 "$pid" 2>/dev/null; then
      tail -n 40 "$dir"/*.log >&2 || true
      die "$name exited while starting (logs in $dir)"
    fi
    if ((SECONDS >= deadline)); then
      tail -n 40 "$dir"/*.log >&2 || true
      die "$name did not answer within ${ready_timeout}s (logs in $dir)"
    fi
    sleep 0.1
  done
}

# HTTP GET /ping answers "Ok." once ClickHouse serves queries. Uses bash's
# /dev/tcp so a fresh machine needs no curl.
clickhouse_ready() {
  local reply
  reply=$(
    exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf 'GET /ping HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' >&3
    timeout 2 cat <&3
  ) || return 1
  [[ $reply == *"Ok."* ]]
}

# A Kafka ApiVersions v0 request (correlation id 1, client id "pulse"); the
# broker is ready once a reply echoing correlation id 1 comes back.
kafka_ready() {
  local reply
  reply=$(
    exec 2>/dev/null 3<>"/dev/tcp/127.0.0.1/$1" || exit 1
    printf '\x00\x00\x00\x0f\x00\x12\x00\x00\x00\x00\x00\x01\x00\x05pulse' >&3
    timeout 2 head -c 8 <&3 | od -An -tx1
  ) || return 1
  # od prints " 00 00 00 nn 00 00 00 01": a 4-byte size, then the correlation id.
  [[ $reply == *" 00 00 00 01" ]]
}

# claim_service NAME: empties NAME's state directory for a fresh start;
# fails (after saying so) when NAME already runs, to be reused as it is.
claim_service() {
  local name=$1 dir pid
  dir=$(service_dir "$name")
  if pid=$(running_pid "$name"); then
    log "$name already running (pid $pid, port $(<"$dir/port"))"
    return 1
  fi
  rm -rf "$dir"
  mkdir -p "$dir"
}

start_clickhouse() {
  local name=clickhouse dir bin http_port tcp_port
  claim_service "$name" || return 0
  dir=$(service_dir "$name")
  bin=$(clickhouse_server_bin) || die "clickhouse-server not found"
  mkdir -p "$dir/log"
  pick_port http_port
  pick_port tcp_port
  sed -e "s#@STATE_DIR@#$dir#g" -e "s#@HTTP_PORT@#$http_port#g" -e "s#@TCP_PORT@#$tcp_port#g" \
    "$clickhouse_template/config.xml" >"$dir/config.xml"
  cp "$clickhouse_template/users.xml" "$dir/users.xml"
  echo "$http_port" >"$dir/port"
  launch "$name" "$dir" "$bin" --config-file="$dir/config.xml"
  wait_ready "$name" clickhouse_ready
  log "$name ready on 127.0.0.1:$http_port"
}

# start_tansu NAME STORAGE_URL
start_tansu() {
  local name=$1 storage=$2 dir bin port url
  claim_service "$name" || return 0
  dir=$(service_dir "$name")
  bin=$(tansu_bin) || die "tansu not found"
  pick_port port
  url=tcp://127.0.0.1:$port
  echo "$port" >"$dir/port"
  # sqlite:// paths are relative to the working directory, i.e. $dir.
  launch "$name" "$dir" "$bin" broker \
    --listener-url "$url" --advertised-listener-url "$url" --storage-engine "$storage"
  wait_ready "$name" kafka_ready
  log "$name ready on 127.0.0.1:$port"
}

# stop_service NAME: SIGTERM, wait, then SIGKILL. Only touches our own pid.
stop_service() {
  local name=$1 dir pid deadline
  dir=$(service_dir "$name")
  if pid=$(running_pid "$name"); then
    kill -TERM "$pid" 2>/dev/null || true
    deadline=$((SECONDS + stop_timeout))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.1; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$name ignored SIGTERM for ${stop_timeout}s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    log "$name stopped (pid $pid)"
  fi
  rm -f "$dir/pid"
}

services=(clickhouse tansu-memory tansu-sqlite)

print_env() {
  local name
  for name in "${services[@]}"; do
    running_pid "$name" >/dev/null || die "$name is not running; run: scripts/services.sh up"
  done
  cat <<EOF
export PULSE_TEST_CLICKHOUSE_URL=http://127.0.0.1:$(<"$(service_dir clickhouse)/port")
export PULSE_TEST_KAFKA_BROKERS=127.0.0.1:$(<"$(service_dir tansu-memory)/port")
export PULSE_TEST_KAFKA_DURABLE_BROKERS=127.0.0.1:$(<"$(service_dir tansu-sqlite)/port")
export PULSE_TEST_CLICKHOUSE_SERVER_BIN=$(clickhouse_server_bin)
export PULSE_TEST_TANSU_BIN=$(tansu_bin)
EOF
}

status() {
  local name pid
  for name in "${services[@]}"; do
    if pid=$(running_pid "$name"); then
      echo "$name: running, pid $pid, 127.0.0.1:$(<"$(service_dir "$name")/port")"
    else
      echo "$name: stopped"
    fi
  done
}

# Serialise concurrent up/down calls on the same state directory.
lock_state() {
  mkdir -p "$state"
  exec 9>"$state/.lock"
  flock 9
}

case ${1:-} in
  up)
    lock_state
    # Installers print to stdout; only the exports may go there (eval).
    install_all >&2
    start_clickhouse
    start_tansu tansu-memory memory://tansu/
    start_tansu tansu-sqlite sqlite://tansu.db
    print_env
    ;;
  down)
    # The services named, or all.
    names=("${services[@]}")
    [ $# -gt 1 ] && names=("${@:2}")
    for name in "${names[@]}"; do
      [[ " ${services[*]} " == *" $name "* ]] || die "no service $name (services: ${services[*]})"
    done
    lock_state
    # In parallel: each takes about 2 s to shut down.
    for name in "${names[@]}"; do stop_service "$name" & done
    wait
    ;;
  env) print_env ;;
  status) status ;;
  install) install_all ;;
  *)
    echo "usage: $0 up|down [NAME...]|env|status|install" >&2
    exit 2
    ;;
esac
