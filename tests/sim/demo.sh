#!/bin/bash
# tests/sim/demo.sh - run spinewatchd on simulated sensors (what `make demo` runs).
#
#   tests/sim/demo.sh DAEMON [extra daemon args]
#
# Starts a private dbus-daemon, the simulated BlueZ (tests/sim/fake_bluez.py) on it, and
# DAEMON with DBUS_SYSTEM_BUS_ADDRESS pointing there and --listen 127.0.0.1:PORT. Stops all
# three (by PID) and removes its temp dir on Ctrl-C, TERM, or when any of them exits.
#
# Environment: SPINEWATCH_PORT (default 8421), SPINEWATCH_SIM_ARGS (extra simulator args,
# e.g. "--scenario quick --seed 3").

set -u

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PYTHON=/usr/bin/python3
HOST=127.0.0.1
PORT=${SPINEWATCH_PORT:-8421}

die() { echo "demo: $*" >&2; exit 1; }

[ $# -ge 1 ] || die "usage: $0 DAEMON [daemon args...]"
DAEMON=$1; shift
[ -x "$DAEMON" ] || die "$DAEMON is not an executable (run 'make' first)"
case "$PORT" in ''|*[!0-9]*) die "SPINEWATCH_PORT must be a port number, not '$PORT'";; esac
if [ "$PORT" -lt 1 ] || [ "$PORT" -gt 65535 ]; then die "SPINEWATCH_PORT $PORT is out of range"; fi
command -v dbus-daemon >/dev/null || die "dbus-daemon not found (install the 'dbus' package)"
command -v dbus-send >/dev/null || die "dbus-send not found (install the 'dbus' package)"

if ! "$PYTHON" -c '
import socket, sys
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], int(sys.argv[2])))' "$HOST" "$PORT" 2>/dev/null; then
    die "$HOST:$PORT is already in use (another spinewatchd?); choose another with SPINEWATCH_PORT=NNNN"
fi

TMP=$(mktemp -d "${TMPDIR:-/tmp}/spinewatch-demo.XXXXXX") || die "cannot create a temp dir"
BUS_PID='' SIM_PID='' DAEMON_PID=''

stop_pid() {   # stop_pid PID: TERM, up to 3 s grace, then KILL
    local pid=$1
    [ -n "$pid" ] || return 0
    kill -TERM "$pid" 2>/dev/null || return 0
    for _ in $(seq 30); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null
    wait "$pid" 2>/dev/null
}

cleanup() {
    trap - INT TERM EXIT
    stop_pid "$DAEMON_PID"
    stop_pid "$SIM_PID"
    stop_pid "$BUS_PID"
    rm -rf "$TMP"
}
trap 'echo; echo "demo: stopping"; cleanup; exit 130' INT
trap 'cleanup; exit 143' TERM
trap cleanup EXIT

# -- a private bus
cat >"$TMP/bus.conf" <<EOF
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path=$TMP/bus</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
EOF
dbus-daemon --nofork --config-file="$TMP/bus.conf" --print-address=3 \
    3>"$TMP/bus.address" 2>"$TMP/bus.log" </dev/null &
BUS_PID=$!
ADDRESS=
for _ in $(seq 100); do
    ADDRESS=$(head -n 1 "$TMP/bus.address" 2>/dev/null)
    [ -n "$ADDRESS" ] && break
    kill -0 "$BUS_PID" 2>/dev/null || break
    sleep 0.05
done
[ -n "$ADDRESS" ] || { cat "$TMP/bus.log" >&2; die "dbus-daemon did not start"; }

# -- the simulated BlueZ
# shellcheck disable=SC2086  # SPINEWATCH_SIM_ARGS is a list of words
# --thingy-sound: a Thingy:52 streaming its microphone, so the demo shows cracks heard on the host
"$PYTHON" "$HERE/fake_bluez.py" --bus "$ADDRESS" --thingy-sound ${SPINEWATCH_SIM_ARGS:-} </dev/null &
SIM_PID=$!
owned=
for _ in $(seq 200); do
    if dbus-send --bus="$ADDRESS" --print-reply --dest=org.freedesktop.DBus /org/freedesktop/DBus \
            org.freedesktop.DBus.NameHasOwner string:org.bluez 2>/dev/null | grep -q 'boolean true'; then
        owned=1; break
    fi
    kill -0 "$SIM_PID" 2>/dev/null || break
    sleep 0.05
done
[ -n "$owned" ] || die "the simulator did not take org.bluez"

# -- the daemon (with built-in settings unless a --config is given: the machine's own
# /etc/spinewatch/spinewatchd.conf is for the real service)
# and its state (calibrations, the per-day record) in the demo's own folder unless a
# --state-dir is given: simulated wear must not land in the real service's record.
CONFIG=(--config /dev/null)
STATE=(--state-dir "$TMP/state")
for a in "$@"; do case "$a" in
    -c|--config|--config=*) CONFIG=();;
    --state-dir|--state-dir=*) STATE=();;
esac; done
DBUS_SYSTEM_BUS_ADDRESS=$ADDRESS "$DAEMON" "${CONFIG[@]}" "${STATE[@]}" --listen "$HOST:$PORT" "$@" </dev/null &
DAEMON_PID=$!
listening=
for _ in $(seq 200); do
    if (exec 3<>"/dev/tcp/$HOST/$PORT") 2>/dev/null; then listening=1; break; fi
    kill -0 "$DAEMON_PID" 2>/dev/null || break
    sleep 0.05
done
if [ -n "$listening" ]; then
    cat <<EOF

  spinewatch demo: dashboard  http://$HOST:$PORT/
                   feed       ws://$HOST:$PORT/ws
  simulated sensors: Spine Clip C0:FF:EE:00:00:01, Spine Mic C0:FF:EE:00:00:02,
                     BBC micro:bit C0:FF:EE:00:00:03, Thingy C0:FF:EE:00:00:04,
                     Thingy Sound C0:FF:EE:00:00:05 (its microphone's audio: cracks are
                     heard by spinewatchd itself; see tests/sim/README.md)
  poke the simulator: busctl --address=$ADDRESS call org.bluez /io/spinewatch/sim \\
                        io.spinewatch.Sim1 InjectCrack ssyqy C0:FF:EE:00:00:02 pop 80 120 3
  Ctrl-C stops everything.

EOF
else
    echo "demo: $DAEMON is not listening on $HOST:$PORT" >&2
fi

# -- run until one of the three exits (or Ctrl-C / TERM)
wait -n "$BUS_PID" "$SIM_PID" "$DAEMON_PID"
rc=$?
for name in DAEMON SIM BUS; do
    pid_var=${name}_PID
    if ! kill -0 "${!pid_var}" 2>/dev/null; then
        case $name in
            DAEMON) echo "demo: $DAEMON exited (status $rc)" >&2 ;;
            SIM) echo "demo: the simulator exited (status $rc)" >&2; [ "$rc" -ne 0 ] || rc=1 ;;
            BUS) echo "demo: dbus-daemon exited (status $rc)" >&2; [ "$rc" -ne 0 ] || rc=1 ;;
        esac
    fi
done
cleanup
exit "$rc"
