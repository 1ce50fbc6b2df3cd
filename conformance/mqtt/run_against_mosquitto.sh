#!/bin/sh
# Run the MQTT conformance suite against a throw-away Mosquitto (see run_against_mosquitto.py).
# Usage: conformance/mqtt/run_against_mosquitto.sh [--no-waker] [pytest arguments...]
cd "$(dirname "$0")/../.." || exit 2
exec "${PYTHON:-python}" -m conformance.mqtt.run_against_mosquitto "$@"
