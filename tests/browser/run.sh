#!/bin/bash
# tests/browser/run.sh - runs the dashboard test end to end:
# a private D-Bus bus, the BlueZ simulator (tests/sim/fake_bluez.py, scenario
# "quick"), the daemon under test on a free loopback port (a 2 s slouch delay
# and a 6 s slouch-long alert, so the scenario's slouch raises one), then
# smoke.mjs in headless Chromium, which also pokes the simulator over D-Bus
# (a crack, a sensor held still to calibrate). Screenshots go to build/browser/
# of the repository. Everything started here is stopped by PID on exit.
#
#   tests/browser/run.sh build/spinewatchd
#
# Prints one line per check and "N passed, N failed"; exits non-zero on failure.
# Logs of the bus, the simulator and the daemon are printed when a check fails.
# SPINEWATCH_SIM=FILE runs another simulator script (same command line);
# SPINEWATCH_SHOTS=DIR puts the screenshots elsewhere.

set -u

HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PYTHON=/usr/bin/python3

# The simulator's sensors in scenario "quick" (tests/sim/README.md).
POSTURE_SENSORS=(C0:FF:EE:00:00:01 C0:FF:EE:00:00:03)
SOUND_SENSORS=(C0:FF:EE:00:00:02)
AUDIO_SENSORS=(C0:FF:EE:00:00:05)      # the Thingy:52 worn as a microphone (--thingy-sound)
OTHER_SENSORS=()
SLOUCHING_SENSORS=(C0:FF:EE:00:00:01)   # slouched from ~6 s to ~44 s
CALIBRATE_SENSOR=C0:FF:EE:00:00:03      # the micro:bit: held still by the test, then calibrated
SHOTS=${SPINEWATCH_SHOTS:-$ROOT/build/browser}

if [ $# -ne 1 ]; then
	echo "usage: $0 PATH/TO/spinewatchd" >&2
	exit 2
fi
DAEMON=$(cd "$(dirname "$1")" && pwd)/$(basename "$1")

fail_setup() {
	echo "FAIL - $*"
	echo "0 passed, 1 failed"
	exit 1
}

[ -x "$DAEMON" ] || fail_setup "daemon $1 is not an executable file"
command -v node >/dev/null || fail_setup "node is not installed"
command -v dbus-daemon >/dev/null || fail_setup "dbus-daemon is not installed"
[ -x /usr/bin/chromium ] || fail_setup "/usr/bin/chromium is not installed"
if [ ! -d "$HERE/node_modules/playwright-core" ]; then
	(cd "$HERE" && npm ci --no-audit --no-fund >/dev/null) || fail_setup "npm ci in tests/browser failed"
fi

TMP=$(mktemp -d /tmp/spinewatch-browser.XXXXXX) || fail_setup "mktemp failed"
PIDS=()

cleanup() {
	local pid i
	# the supervisor and the daemon it runs, then the simulator and the bus
	rm -f "$TMP/run"
	if [ -n "${SUPERVISOR_PID:-}" ]; then
		PIDS+=("$SUPERVISOR_PID" "$(cat "$TMP/daemon.pid" 2>/dev/null)")
	fi
	# newest first: daemon, supervisor, simulator, bus
	for ((i = ${#PIDS[@]} - 1; i >= 0; i--)); do
		pid=${PIDS[i]}
		[ -n "$pid" ] || continue
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 50); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$pid" 2>/dev/null
		wait "$pid" 2>/dev/null
	done
	rm -rf "$TMP"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_logs() {
	local f
	for f in "$TMP"/*.log; do
		[ -s "$f" ] || continue
		echo "---- $(basename "$f") (last 40 lines)"
		tail -n 40 "$f"
	done
}

# wait_for SECONDS DESCRIPTION COMMAND...: polls COMMAND every 0.1 s.
wait_for() {
	local secs=$1 what=$2 i
	shift 2
	for ((i = 0; i < secs * 10; i++)); do
		"$@" && return 0
		sleep 0.1
	done
	show_logs
	fail_setup "timed out after ${secs} s waiting for $what"
}

alive() { kill -0 "$1" 2>/dev/null; }

# 1. a private bus, standing in for the system bus
BUS="unix:path=$TMP/bus"
dbus-daemon --session --nofork --nopidfile --address="$BUS" >"$TMP/dbus.log" 2>&1 &
PIDS+=($!)
BUS_PID=$!
wait_for 10 "the private D-Bus bus" test -S "$TMP/bus"
alive "$BUS_PID" || { show_logs; fail_setup "dbus-daemon exited"; }
export DBUS_SYSTEM_BUS_ADDRESS="$BUS"

# 2. the simulated BlueZ with its sensors
"$PYTHON" "${SPINEWATCH_SIM:-$ROOT/tests/sim/fake_bluez.py}" --scenario quick --thingy-sound >"$TMP/sim.log" 2>&1 &
PIDS+=($!)
SIM_PID=$!
bluez_up() {
	alive "$SIM_PID" || { show_logs; fail_setup "the simulator exited"; }
	dbus-send --bus="$BUS" --print-reply --dest=org.freedesktop.DBus / \
		org.freedesktop.DBus.NameHasOwner string:org.bluez 2>/dev/null | grep -q 'boolean true'
}
wait_for 15 "the simulator to own org.bluez" bluez_up

# 3. the daemon on a free loopback port, with a short slouch delay and a
# slouch-long alert after 6 s (0.1 min) of slouching
PORT=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') \
	|| fail_setup "could not find a free port"
printf '[alerts]\nslouch_long_min = 0.1\n' >"$TMP/spinewatchd.conf"
# A supervisor restarts the daemon (same state directory, same port) whenever it exits while
# $TMP/run exists: smoke.mjs stops it with SIGTERM (PID in $TMP/daemon.pid) to check that the
# page resumes across a restart. Each run's output goes to daemon.log.
touch "$TMP/run"
(
	while [ -e "$TMP/run" ]; do
		"$DAEMON" --config "$TMP/spinewatchd.conf" --state-dir "$TMP/state" \
			--listen "127.0.0.1:$PORT" --web-root "$ROOT/web" --slouch-delay 2 -v \
			>>"$TMP/daemon.log" 2>&1 &
		echo $! >"$TMP/daemon.pid"
		wait $!
		echo "---- exit status $?" >>"$TMP/daemon.log"
	done
) &
SUPERVISOR_PID=$!
wait_for 5 "the daemon's PID" test -s "$TMP/daemon.pid"
daemon_pid() { cat "$TMP/daemon.pid"; }
port_open() {
	alive "$(daemon_pid)" || { show_logs; fail_setup "the daemon exited"; }
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null
}
wait_for 15 "the daemon to listen on 127.0.0.1:$PORT" port_open

# 4. the browser
ARGS=(--out "$SHOTS" --bus "$BUS" --calibrate "$CALIBRATE_SENSOR" --daemon-pidfile "$TMP/daemon.pid")
for a in "${POSTURE_SENSORS[@]}"; do ARGS+=(--posture "$a"); done
for a in "${SOUND_SENSORS[@]}"; do ARGS+=(--sound "$a"); done
for a in "${AUDIO_SENSORS[@]}"; do ARGS+=(--audio "$a"); done
for a in "${OTHER_SENSORS[@]}"; do ARGS+=(--sensor "$a"); done
for a in "${SLOUCHING_SENSORS[@]}"; do ARGS+=(--slouch "$a"); done
(cd "$HERE" && timeout 200 node smoke.mjs "http://127.0.0.1:$PORT/" "${ARGS[@]}") | tee "$TMP/smoke.out"
rc=${PIPESTATUS[0]}
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$TMP/smoke.out" | tail -n 1)
passed=${summary%% passed*}
failed=${summary#*passed, }
failed=${failed%% failed}
if [ -z "$summary" ]; then
	echo "FAIL - smoke.mjs ended without a summary (exit $rc)"
	passed=0 failed=1
fi

# the access token flow, on a second daemon that wants a token (no sensors of its own)
CONTROL_TOKEN=browser-control-token-5e7a1c
READ_TOKEN=browser-read-token-9b2d4f00
printf '%s control\n%s read\n' "$CONTROL_TOKEN" "$READ_TOKEN" >"$TMP/tokens"
chmod 600 "$TMP/tokens"
printf '[access]\ntoken_file = %s\nloopback = none\n[sensors]\ndiscovery = off\nallow = 0A:0B:0C:0D:0E:0F\n' \
	"$TMP/tokens" >"$TMP/access.conf"
PORT2=$("$PYTHON" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])') \
	|| fail_setup "could not find a free port"
"$DAEMON" --config "$TMP/access.conf" --state-dir "$TMP/state2" --listen "127.0.0.1:$PORT2" \
	--web-root "$ROOT/web" -v >"$TMP/daemon2.log" 2>&1 &
PIDS+=($!)
DAEMON2_PID=$!
port2_open() {
	alive "$DAEMON2_PID" || { show_logs; fail_setup "the second daemon exited"; }
	(exec 3<>"/dev/tcp/127.0.0.1/$PORT2") 2>/dev/null
}
wait_for 15 "the second daemon to listen on 127.0.0.1:$PORT2" port2_open
(cd "$HERE" && timeout 90 node access.mjs "http://127.0.0.1:$PORT2/" --out "$SHOTS" \
	--token "$CONTROL_TOKEN" --read-token "$READ_TOKEN") | tee "$TMP/access.out"
rc2=${PIPESTATUS[0]}
summary=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$TMP/access.out" | tail -n 1)
if [ -z "$summary" ]; then
	echo "FAIL - access.mjs ended without a summary (exit $rc2)"
	failed=$((failed + 1))
else
	p2=${summary%% passed*}
	f2=${summary#*passed, }
	f2=${f2%% failed}
	passed=$((passed + p2))
	failed=$((failed + f2))
fi
[ "$rc2" -ne 0 ] && [ "${f2:-1}" -eq 0 ] && failed=$((failed + 1))

if alive "$(daemon_pid)"; then
	echo "ok   - the daemon is still running after the test"
	passed=$((passed + 1))
else
	echo "FAIL - the daemon died during the test"
	failed=$((failed + 1))
fi
[ "$rc" -ne 0 ] && [ "$failed" -eq 0 ] && failed=1
[ "$failed" -ne 0 ] && show_logs
echo "browser: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
