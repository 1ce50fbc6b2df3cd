#!/bin/sh
# Run the STOMP conformance suite against a throw-away RabbitMQ (Web-STOMP, plus Web-MQTT for the
# cross-protocol tests), then stop it.
#
# Usage: conformance/stomp/run_against_rabbitmq.sh [pytest arguments...]
#
# One-time set-up (Debian 12 ships RabbitMQ 3.10.8; CI does not run this script):
#     apt-get update && apt-get install -y rabbitmq-server
#     # The plugins are enabled below, into this run's own enabled_plugins file, with
#     #     rabbitmq-plugins --offline enable rabbitmq_web_stomp rabbitmq_web_mqtt
#     # For a system-wide RabbitMQ the same line without --offline does it.
# The JS client tests also need, once: (cd conformance/stomp/js && npm ci)
#
# What the script does: it makes a temporary directory holding the node's config, database,
# logs and Erlang cookie (HOME points there, so nothing is written to the real home), starts
# rabbitmq-server as a node of its own (name and ports below, all on 127.0.0.1), waits for it
# with `rabbitmqctl wait` on its pid file, adds the vhost conf-realm (the realm test), runs
# pytest on conformance/stomp with the environment that points the suite at it, then stops the
# node (rabbitmqctl stop, SIGKILL if it hangs), stops the epmd it started (on its own port,
# unless one was running there before) and removes the directory. The exit status is pytest's.
#
# Ports (override with the environment variables of the same names):
RABBIT_WEB_STOMP_PORT=${RABBIT_WEB_STOMP_PORT:-15674}
RABBIT_WEB_MQTT_PORT=${RABBIT_WEB_MQTT_PORT:-15675}
RABBIT_AMQP_PORT=${RABBIT_AMQP_PORT:-5673}
RABBIT_DIST_PORT=${RABBIT_DIST_PORT:-25673}
RABBIT_EPMD_PORT=${RABBIT_EPMD_PORT:-14369}
RABBIT_NODENAME=${RABBIT_NODENAME:-wsbroker-conformance@localhost}
RABBIT_BIN=${RABBIT_BIN:-/usr/lib/rabbitmq/bin}

cd "$(dirname "$0")/../.." || exit 2
if [ ! -x "$RABBIT_BIN/rabbitmq-server" ]; then
    echo "rabbitmq-server not found in $RABBIT_BIN: apt-get install -y rabbitmq-server" >&2
    exit 2
fi

work=$(mktemp -d /tmp/rabbitmq-stomp-conf.XXXXXX) || exit 2
# An epmd of this run's own (not the shared default port), stopped at the end unless it was
# already running.
export ERL_EPMD_PORT="$RABBIT_EPMD_PORT"
had_epmd=0
epmd -port "$ERL_EPMD_PORT" -names >/dev/null 2>&1 && had_epmd=1

cat >"$work/rabbitmq.conf" <<EOF
listeners.tcp.1 = 127.0.0.1:$RABBIT_AMQP_PORT
loopback_users = none
stomp.listeners.tcp = none
mqtt.listeners.tcp = none
web_stomp.tcp.ip = 127.0.0.1
web_stomp.tcp.port = $RABBIT_WEB_STOMP_PORT
web_mqtt.tcp.ip = 127.0.0.1
web_mqtt.tcp.port = $RABBIT_WEB_MQTT_PORT
mqtt.allow_anonymous = true
mqtt.default_user = guest
mqtt.default_pass = guest
stomp.default_user = guest
stomp.default_pass = guest
log.console = false
log.file.level = warning
EOF

export HOME="$work"
export RABBITMQ_NODENAME="$RABBIT_NODENAME"
export RABBITMQ_NODE_IP_ADDRESS=127.0.0.1
export RABBITMQ_NODE_PORT="$RABBIT_AMQP_PORT"
export RABBITMQ_DIST_PORT="$RABBIT_DIST_PORT"
export RABBITMQ_CONFIG_FILE="$work/rabbitmq.conf"
export RABBITMQ_ADVANCED_CONFIG_FILE="$work/advanced.config"
export RABBITMQ_CONF_ENV_FILE="$work/rabbitmq-env.conf"
export RABBITMQ_ENABLED_PLUGINS_FILE="$work/enabled_plugins"
export RABBITMQ_MNESIA_BASE="$work/mnesia"
export RABBITMQ_LOG_BASE="$work/log"
export RABBITMQ_PID_FILE="$work/rabbit.pid"
: >"$RABBITMQ_CONF_ENV_FILE"
mkdir -p "$RABBITMQ_MNESIA_BASE" "$RABBITMQ_LOG_BASE"

"$RABBIT_BIN/rabbitmq-plugins" --offline enable rabbitmq_web_stomp rabbitmq_web_mqtt \
    >"$work/plugins.out" 2>&1 || { cat "$work/plugins.out" >&2; rm -rf "$work"; exit 2; }

"$RABBIT_BIN/rabbitmq-server" >"$work/server.out" 2>&1 &
server_pid=$!

stop_rabbit() {
    # With the pid file, rabbitmqctl stop returns only once the Erlang VM has exited.
    "$RABBIT_BIN/rabbitmqctl" -t 60 stop "$RABBITMQ_PID_FILE" >/dev/null 2>&1
    if kill -0 "$server_pid" 2>/dev/null; then
        kill -9 "$server_pid" 2>/dev/null
    fi
    if [ -s "$RABBITMQ_PID_FILE" ]; then
        beam=$(cat "$RABBITMQ_PID_FILE")
        kill -0 "$beam" 2>/dev/null && kill -9 "$beam" 2>/dev/null
    fi
    wait "$server_pid" 2>/dev/null
    if [ "$had_epmd" = 0 ]; then
        epmd -port "$ERL_EPMD_PORT" -kill >/dev/null 2>&1
    fi
    rm -rf "$work"
}
trap stop_rabbit EXIT
trap 'exit 130' INT TERM

if ! "$RABBIT_BIN/rabbitmqctl" wait --timeout 90 "$RABBITMQ_PID_FILE" >"$work/await.out" 2>&1; then
    echo "RabbitMQ did not start:" >&2
    cat "$work/await.out" "$work/server.out" >&2
    exit 2
fi

# A second vhost for the realm test (CONNECT host selects the vhost on RabbitMQ).
"$RABBIT_BIN/rabbitmqctl" add_vhost conf-realm >/dev/null 2>&1 &&
    "$RABBIT_BIN/rabbitmqctl" set_permissions -p conf-realm guest ".*" ".*" ".*" >/dev/null 2>&1 ||
    echo "could not create vhost conf-realm; the realm test will fail" >&2

WSBROKER_URL="ws://127.0.0.1:$RABBIT_WEB_STOMP_PORT" \
WSBROKER_TARGET=rabbitmq \
WSBROKER_STOMP_PATH=/ws \
WSBROKER_STOMP_REALM=conf-realm \
WSBROKER_STOMP_HEARTBEAT_MIN=1000 \
WSBROKER_MQTT_URL="ws://127.0.0.1:$RABBIT_WEB_MQTT_PORT" \
WSBROKER_MQTT_PATH=/ws \
    "${PYTHON:-python}" -m pytest conformance/stomp -p no:cacheprovider "$@"
