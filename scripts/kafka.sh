#!/usr/bin/env bash
# A single-node Apache Kafka (KRaft, broker+controller) on 127.0.0.1 for tests, benches and
# `journey up --kafka-bootstrap`, built only from Maven Central (no tarball download).
#
#   scripts/kafka.sh fetch                              resolve the broker jars into .cache/kafka/libs
#   scripts/kafka.sh start DATA_DIR PORT [CONTROLLER_PORT]   format (once) and start; exit 0 when ready
#   scripts/kafka.sh stop DATA_DIR                      SIGTERM, then SIGKILL after a timeout
#
# Environment: JOURNEY_KAFKA_CACHE (default: <repo>/.cache/kafka), JOURNEY_KAFKA_HEAP (default 512m),
# JOURNEY_KAFKA_READY_TIMEOUT (seconds, default 90), JOURNEY_KAFKA_STOP_TIMEOUT (seconds, default 30).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
CACHE="${JOURNEY_KAFKA_CACHE:-$ROOT/.cache/kafka}"
LIBS="$CACHE/libs"
PROBE="$CACHE/probe"
HEAP="${JOURNEY_KAFKA_HEAP:-512m}"
READY_TIMEOUT="${JOURNEY_KAFKA_READY_TIMEOUT:-90}"
STOP_TIMEOUT="${JOURNEY_KAFKA_STOP_TIMEOUT:-30}"

die() { echo "kafka.sh: $*" >&2; exit 1; }

usage() {
    sed -n '5,7p' "${BASH_SOURCE[0]}" | sed 's/^#  //' >&2
    exit 2
}

# The stamp is the hash of the inputs, so editing the POM or the probe re-fetches.
inputs_hash() { cat "$HERE/kafka/pom.xml" "$HERE/kafka/Ready.java" | sha256sum | cut -d' ' -f1; }

cmd_fetch() {
    local stamp="$CACHE/fetched.sha256" want
    want="$(inputs_hash)"
    if [[ -f "$stamp" && "$(cat "$stamp")" == "$want" ]]; then
        return 0
    fi
    command -v mvn >/dev/null || die "mvn (Maven) is not installed"
    command -v javac >/dev/null || die "javac (a JDK 17+) is not installed"
    mkdir -p "$CACHE"
    # Resolve into a fresh directory and swap it in, so an interrupted fetch never leaves half a classpath.
    local tmp="$CACHE/libs.tmp.$$"
    rm -rf "$tmp"
    # Maven 3.8 prints colour resets even in batch mode; strip them (pipefail keeps mvn's status).
    mvn -q -B -f "$HERE/kafka/pom.xml" dependency:copy-dependencies \
        -DoutputDirectory="$tmp" -DincludeScope=runtime 2>&1 | sed 's/\x1b\[[0-9;]*m//g' \
        || { rm -rf "$tmp"; die "mvn could not resolve the Kafka broker (see above)"; }
    rm -rf "$LIBS" "$PROBE"
    mv "$tmp" "$LIBS"
    mkdir -p "$PROBE"
    javac -nowarn -d "$PROBE" -cp "$LIBS/*" "$HERE/kafka/Ready.java"
    echo "$want" >"$stamp"
    echo "kafka.sh: fetched $(ls "$LIBS" | grep -c '\.jar$') jars into $LIBS"
}

# A zombie (our own child that exited, not yet reaped) counts as gone.
alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^[0-9]* ([^)]*) Z' "/proc/$1/stat" 2>/dev/null; }
is_running() { [[ -f "$1/kafka.pid" ]] && alive "$(cat "$1/kafka.pid")"; }

print_log_tail() {
    local data="$1" f
    for f in "$data/logs/stdout.log" "$data/logs/kafka.log"; do
        if [[ -s "$f" ]]; then
            echo "---- tail of $f ----" >&2
            tail -n 40 "$f" >&2
        fi
    done
}

write_properties() {
    local data="$1" port="$2" cport="$3"
    cat >"$data/server.properties" <<EOF
process.roles=broker,controller
node.id=1
controller.quorum.bootstrap.servers=127.0.0.1:$cport
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT
log.dirs=$data/kraft
num.partitions=1
default.replication.factor=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
EOF
}

cmd_start() {
    [[ $# -ge 2 ]] || usage
    local data port cport
    mkdir -p "$1"
    data="$(cd "$1" && pwd)"
    port="$2"
    cport="${3:-$((port + 1))}"
    [[ "$port" =~ ^[0-9]+$ && "$cport" =~ ^[0-9]+$ ]] || die "ports must be numbers: $port $cport"
    if is_running "$data"; then
        die "a broker is already running from $data (pid $(cat "$data/kafka.pid"))"
    fi
    local p
    for p in "$port" "$cport"; do
        if (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
            die "127.0.0.1:$p is already in use"
        fi
    done
    cmd_fetch
    mkdir -p "$data/logs"
    write_properties "$data" "$port" "$cport"
    local java_cp="$LIBS/*"
    # Format once: a restarted broker keeps its data (and its cluster id).
    if [[ ! -f "$data/kraft/meta.properties" ]]; then
        local cluster_id
        cluster_id="$(java -cp "$java_cp" kafka.tools.StorageTool random-uuid 2>/dev/null)"
        java -Dlog4j2.configurationFile="$HERE/kafka/log4j2.xml" -Dkafka.logs.dir="$data/logs" \
            -cp "$java_cp" kafka.tools.StorageTool format --standalone \
            -t "$cluster_id" -c "$data/server.properties" >"$data/logs/format.log" 2>&1 \
            || { cat "$data/logs/format.log" >&2; die "storage format failed in $data"; }
    fi
    # stdin/stdout detached so that a caller capturing our output is not held open by the broker.
    nohup java -Xms128m -Xmx"$HEAP" -XX:+UseG1GC -Djava.awt.headless=true \
        -Dlog4j2.configurationFile="$HERE/kafka/log4j2.xml" -Dkafka.logs.dir="$data/logs" \
        -cp "$java_cp" kafka.Kafka "$data/server.properties" \
        </dev/null >"$data/logs/stdout.log" 2>&1 &
    echo $! >"$data/kafka.pid"
    wait_ready "$data" "$port"
    echo "kafka.sh: broker ready on 127.0.0.1:$port (controller $cport, pid $(cat "$data/kafka.pid"))"
}

wait_ready() {
    local data="$1" port="$2" deadline=$((SECONDS + READY_TIMEOUT))
    # First the port (cheap, and notices a broker that died), then a real metadata answer.
    until (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        if ! is_running "$data"; then
            print_log_tail "$data"
            die "the broker exited during start-up"
        fi
        if ((SECONDS >= deadline)); then
            print_log_tail "$data"
            cmd_stop "$data" >/dev/null 2>&1 || true
            die "the broker did not listen on 127.0.0.1:$port within ${READY_TIMEOUT}s"
        fi
        sleep 0.2
    done
    local left=$((deadline - SECONDS)) answered ours
    ((left > 0)) || left=1
    if ! answered="$(java -Dlog4j2.level=OFF -cp "$PROBE:$LIBS/*" Ready "127.0.0.1:$port" "$left")"; then
        print_log_tail "$data"
        cmd_stop "$data" >/dev/null 2>&1 || true
        die "the broker did not answer metadata within ${READY_TIMEOUT}s"
    fi
    # Whoever answered must be the broker of this DATA_DIR (not another one on the same port).
    ours="$(sed -n 's/^cluster.id=//p' "$data/kraft/meta.properties")"
    if [[ "$answered" != "$ours" ]] || ! is_running "$data"; then
        print_log_tail "$data"
        cmd_stop "$data" >/dev/null 2>&1 || true
        die "127.0.0.1:$port answered for cluster '$answered', not this broker's '$ours'"
    fi
}

cmd_stop() {
    [[ $# -ge 1 ]] || usage
    local data="$1" pid
    [[ -f "$data/kafka.pid" ]] || { echo "kafka.sh: no broker pid file in $data"; return 0; }
    pid="$(cat "$data/kafka.pid")"
    if kill -TERM "$pid" 2>/dev/null; then
        local deadline=$((SECONDS + STOP_TIMEOUT))
        while alive "$pid" && ((SECONDS < deadline)); do
            sleep 0.2
        done
        if alive "$pid"; then
            echo "kafka.sh: broker $pid ignored SIGTERM for ${STOP_TIMEOUT}s, sending SIGKILL" >&2
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    rm -f "$data/kafka.pid"
    echo "kafka.sh: broker stopped ($data)"
}

case "${1:-}" in
    fetch) shift; cmd_fetch "$@" ;;
    start) shift; cmd_start "$@" ;;
    stop) shift; cmd_stop "$@" ;;
    *) usage ;;
esac
