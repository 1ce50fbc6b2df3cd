#!/bin/sh
# Run the WAMP conformance suite against a throw-away Crossbar.io router, then stop it.
#
# Usage: conformance/wamp/run_against_crossbar.sh [pytest arguments...]
#        conformance/wamp/run_against_crossbar.sh --serve   (print the suite's environment, keep
#                                                           Crossbar running until interrupted)
#
# One-time set-up (Crossbar pins many dependencies: keep it out of the project's environment;
# CI does not run this script):
#     python3 -m venv /tmp/crossbar-venv && /tmp/crossbar-venv/bin/pip install crossbar
# CROSSBAR (default /tmp/crossbar-venv/bin/crossbar) names another crossbar executable.
# The JS client tests also need, once: (cd conformance/wamp/js && npm ci)
#
# What the script does: it writes a node directory in a temporary folder (.crossbar/config.json
# below: realms realm1 and conf-realm, a WebSocket transport on 127.0.0.1 with the json and
# msgpack serializers, batched too, and anonymous, WAMP-Ticket and WAMP-CRA authentication with
# the principals the suite is told about below), starts `crossbar start`, waits until its log
# says the transport is listening, runs pytest on conformance/wamp with the environment that
# points the suite at it, then stops Crossbar (SIGTERM, SIGKILL if it hangs) and removes the
# folder. The exit status is pytest's.
CROSSBAR_PORT=${CROSSBAR_PORT:-18080}
CROSSBAR=${CROSSBAR:-/tmp/crossbar-venv/bin/crossbar}

cd "$(dirname "$0")/../.." || exit 2
if [ ! -x "$CROSSBAR" ]; then
    echo "crossbar not found at $CROSSBAR: python3 -m venv /tmp/crossbar-venv &&" \
        "/tmp/crossbar-venv/bin/pip install crossbar" >&2
    exit 2
fi

work=$(mktemp -d /tmp/crossbar-wamp-conf.XXXXXX) || exit 2
mkdir -p "$work/.crossbar"

# The principals. The salted WAMP-CRA user's secret is the plain one: Crossbar derives the key
# (PBKDF2 with the salt, iterations and keylen below) itself, and so does the client.
AUTH_REALM=realm1
TICKET_USER=conf-ticket-user
TICKET=conf-ticket-secret
TICKET_ROLE=conf-ticket-role
CRA_USER=conf-cra-user
CRA_SECRET=conf-cra-secret
CRA_ROLE=conf-cra-role
SCRA_USER=conf-cra-salted
SCRA_SECRET=conf-cra-salted-secret
SCRA_SALT=conf-salt-123
SCRA_ITERATIONS=100
SCRA_KEYLEN=32
SCRA_ROLE=conf-cra-salted-role

# One permission rule. Crossbar never discloses a publisher or a caller on the client's
# disclose_me: only a role's "disclose" setting does, so the rule for the prefix conf.disclosed.
# turns it on (the disclosure tests use that prefix; see docs/conformance-wamp-notes.md).
perm() { # uri match allow-all disclose
    printf '{"uri": "%s", "match": "%s", "allow": {"call": %s, "register": %s, "publish": %s, "subscribe": %s}, "disclose": {"caller": %s, "publisher": %s}, "cache": false}' \
        "$1" "$2" "$3" "$3" "$3" "$3" "$4" "$4"
}
role() { # name
    printf '{"name": "%s", "permissions": [%s, %s]}' "$1" \
        "$(perm "" prefix true false)" "$(perm conf.disclosed. prefix true true)"
}
# The ticket user's role may do nothing under conf.denied. (the not_authorized tests).
ticket_role() {
    printf '{"name": "%s", "permissions": [%s, %s, %s]}' "$TICKET_ROLE" \
        "$(perm "" prefix true false)" "$(perm conf.disclosed. prefix true true)" \
        "$(perm conf.denied. prefix false false)"
}
roles="[$(role anonymous), $(ticket_role), $(role "$CRA_ROLE"), $(role "$SCRA_ROLE")]"

cat >"$work/.crossbar/config.json" <<JSON
{
    "\$schema": "https://raw.githubusercontent.com/crossbario/crossbar/master/crossbar.json",
    "version": 2,
    "controller": {},
    "workers": [
        {
            "type": "router",
            "realms": [
                {"name": "realm1", "roles": $roles},
                {"name": "conf-realm", "roles": $roles}
            ],
            "transports": [
                {
                    "type": "web",
                    "endpoint": {"type": "tcp", "interface": "127.0.0.1", "port": $CROSSBAR_PORT},
                    "paths": {
                        "/": {"type": "static", "directory": ".", "options": {"enable_directory_listing": false}},
                        "ws": {
                            "type": "websocket",
                            "serializers": ["json", "msgpack"],
                            "options": {"max_message_size": 1048576},
                            "auth": {
                                "anonymous": {"type": "static", "role": "anonymous"},
                                "ticket": {
                                    "type": "static",
                                    "principals": {
                                        "$TICKET_USER": {"ticket": "$TICKET", "role": "$TICKET_ROLE"}
                                    }
                                },
                                "wampcra": {
                                    "type": "static",
                                    "users": {
                                        "$CRA_USER": {"secret": "$CRA_SECRET", "role": "$CRA_ROLE"},
                                        "$SCRA_USER": {
                                            "secret": "$SCRA_SECRET", "role": "$SCRA_ROLE",
                                            "salt": "$SCRA_SALT", "iterations": $SCRA_ITERATIONS,
                                            "keylen": $SCRA_KEYLEN
                                        }
                                    }
                                }
                            }
                        }
                    }
                }
            ]
        }
    ]
}
JSON

"$CROSSBAR" start --cbdir "$work/.crossbar" --loglevel info >"$work/crossbar.log" 2>&1 &
cb_pid=$!

stop_crossbar() {
    if kill -0 "$cb_pid" 2>/dev/null; then
        kill -TERM "$cb_pid" 2>/dev/null
        # Crossbar stops its workers, then exits; SIGKILL if it is still there after 10 s.
        i=0
        while kill -0 "$cb_pid" 2>/dev/null && [ $i -lt 100 ]; do
            i=$((i + 1))
            sleep 0.1
        done
        kill -9 "$cb_pid" 2>/dev/null
    fi
    wait "$cb_pid" 2>/dev/null
    rm -rf "$work"
}
trap stop_crossbar EXIT
trap 'exit 130' INT TERM

# Wait (at most 60 s) for the node's "boot complete" log line, or for Crossbar to exit.
i=0
until grep -q NODE_BOOT_COMPLETE "$work/crossbar.log" 2>/dev/null; do
    i=$((i + 1))
    if [ $i -gt 600 ] || ! kill -0 "$cb_pid" 2>/dev/null; then
        echo "Crossbar did not start:" >&2
        cat "$work/crossbar.log" >&2
        exit 2
    fi
    sleep 0.1
done

export WSBROKER_URL="ws://127.0.0.1:$CROSSBAR_PORT" \
WSBROKER_TARGET=crossbar \
WSBROKER_WAMP_PATH=/ws \
WSBROKER_WAMP_REALM2=conf-realm \
WSBROKER_WAMP_AUTH_REALM=$AUTH_REALM \
WSBROKER_WAMP_TICKET_USER=$TICKET_USER \
WSBROKER_WAMP_TICKET=$TICKET \
WSBROKER_WAMP_TICKET_ROLE=$TICKET_ROLE \
WSBROKER_WAMP_DENIED_PREFIX=conf.denied. \
WSBROKER_WAMP_CRA_USER=$CRA_USER \
WSBROKER_WAMP_CRA_SECRET=$CRA_SECRET \
WSBROKER_WAMP_CRA_ROLE=$CRA_ROLE \
WSBROKER_WAMP_SCRA_USER=$SCRA_USER \
WSBROKER_WAMP_SCRA_SECRET=$SCRA_SECRET \
WSBROKER_WAMP_SCRA_SALT=$SCRA_SALT \
WSBROKER_WAMP_SCRA_ITERATIONS=$SCRA_ITERATIONS \
WSBROKER_WAMP_SCRA_KEYLEN=$SCRA_KEYLEN \
WSBROKER_WAMP_SCRA_ROLE=$SCRA_ROLE

if [ "$1" = "--serve" ]; then
    env | grep '^WSBROKER_' | sort | sed 's/^/export /'
    echo "Crossbar log: $work/crossbar.log; Ctrl-C stops it" >&2
    wait "$cb_pid"
    exit $?
fi
"${PYTHON:-python}" -m pytest conformance/wamp -p no:cacheprovider "$@"
