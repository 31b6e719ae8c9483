#!/bin/bash
# tests/systemd/in-container.sh - runs INSIDE the booted Debian container (tests/systemd/run.sh):
# the real systemd runs the installed spinewatchd.service against the simulated BlueZ on the
# container's system bus, and this checks what an admin would: it starts as a notify service
# as its own system user with a status line, serves the dashboard and the feed, streams the
# simulated sensors, reloads on `systemctl reload`, is restarted by the watchdog when its loop
# hangs, keeps its events and record under /var/lib/spinewatch, logs with priorities to the journal, and
# stops cleanly. Writes one line per check to /results/log and the failure count to
# /results/rc, then powers the container off.
set -u
LOG=/results/log
: >"$LOG"
pass=0 fail=0
say() { echo "$*" | tee -a "$LOG"; }
ok() { say "ok   - $*"; pass=$((pass + 1)); }
bad() { say "FAIL - $*"; fail=$((fail + 1)); }
check() { local what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
# wait_for SECONDS COMMAND...: until COMMAND succeeds (checked every 0.2 s)
wait_for() {
	local n=$(($1 * 5)); shift
	while [ "$n" -gt 0 ]; do "$@" && return 0; sleep 0.2; n=$((n - 1)); done
	return 1
}
prop() { systemctl show -P "$1" spinewatchd.service; }
finish() {
	journalctl -u spinewatchd.service --no-pager -o short-monotonic >/results/journal.txt 2>&1
	say "$pass passed, $fail failed"
	echo "$fail" >/results/rc
	sync
	systemctl poweroff --no-block
	exit 0
}
trap finish EXIT

# -- the simulated bluetoothd, owning org.bluez on the system bus (as root, like bluetoothd)
/usr/bin/python3 /sw-tests/sim/fake_bluez.py --bus unix:path=/run/dbus/system_bus_socket \
	--scenario quick --require-pairing none >/results/sim.log 2>&1 &
SIM=$!
owned() { busctl --system status org.bluez >/dev/null 2>&1; }
check "the simulator owns org.bluez" wait_for 15 owned

# -- start
systemctl start --no-block spinewatchd.service
active() { [ "$(prop ActiveState)" = active ]; }
wait_for 20 active
check "systemctl start: the service is active (Type=notify: READY=1 came)" active
if ! active; then
	systemctl status --no-pager spinewatchd.service >>"$LOG" 2>&1
	exit 1
fi
MAIN=$(prop MainPID)
user=$(ps -o user= -p "$MAIN" | tr -d ' ')
check "it runs as the spinewatch user (got '$user')" test "$user" = spinewatch
check "it has no capabilities" sh -c "grep -q '^CapEff:\s*0000000000000000' /proc/$MAIN/status"
check "the watchdog is armed (WatchdogUSec=$(prop WatchdogUSec))" test "$(prop WatchdogUSec)" != 0
streaming() { prop StatusText | grep -Eq '^[3-9] sensors streaming'; }
wait_for 30 streaming
check "the status line counts 3 or more sensors streaming (got '$(prop StatusText)')" streaming
code=$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:8421/)
check "the dashboard is served on 127.0.0.1:8421 (HTTP $code)" test "$code" = 200
hello() {
	/usr/bin/python3 - <<'PY'
import base64, json, os, socket, sys
s = socket.create_connection(("127.0.0.1", 8421), timeout=5)
key = base64.b64encode(os.urandom(16)).decode()
s.sendall(("GET /ws HTTP/1.1\r\nHost: 127.0.0.1:8421\r\nUpgrade: websocket\r\n"
           "Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\nSec-WebSocket-Version: 13\r\n\r\n"
           % key).encode())
buf = b""
while b"\r\n\r\n" not in buf:
    buf += s.recv(4096)
head, buf = buf.split(b"\r\n\r\n", 1)
assert b" 101 " in head.split(b"\r\n")[0], head
def need(n):
    global buf
    while len(buf) < n:
        chunk = s.recv(65536)
        assert chunk, "closed"
        buf += chunk
need(2)
n = buf[1] & 0x7F
off = 2
if n == 126:
    need(4); n = int.from_bytes(buf[2:4], "big"); off = 4
elif n == 127:
    need(10); n = int.from_bytes(buf[2:10], "big"); off = 10
need(off + n)
m = json.loads(buf[off:off + n])
assert m["type"] == "hello", m
print(m["stream"], m["oldest_seq"], m["last_seq"], m["detector"]["threshold_deg"], m["server"], m["protocol"],
      ",".join(sorted(x["state"] for x in m["sensors"])))
PY
}
out=$(hello 2>&1)
hello_ok() { echo "$out" | grep -q " spinewatchd 1 .*streaming"; }
check "a WebSocket client gets hello with the sensors ($out)" hello_ok

# -- reload: a changed setting applies, same process, clients stay
printf '\n[posture]\nthreshold_deg = 22\n' >>/etc/spinewatch/spinewatchd.conf
systemctl reload spinewatchd.service
reloaded() { journalctl -u spinewatchd.service --no-pager | grep -q 'settings reloaded'; }
reload_ok() { wait_for 10 reloaded && [ "$(prop MainPID)" = "$MAIN" ]; }
check "systemctl reload: the settings are reloaded, same process" reload_ok
threshold=$(hello 2>/dev/null | cut -d' ' -f4)
check "the reloaded setting applies (slouch threshold in hello: $threshold)" test "$threshold" = 22.0
priorities() {
	journalctl -u spinewatchd.service -p info --no-pager | grep -q 'dashboard at' &&
		! journalctl -u spinewatchd.service -p warning --no-pager | grep -q 'dashboard at'
}
check "journal entries carry their priority (an info line is not a warning)" priorities

# -- systemctl restart: the events are still there, the numbering and the stream go on
read -r stream1 oldest1 last1 _ <<<"$(hello 2>/dev/null)"
systemctl restart spinewatchd.service
wait_for 20 active
MAIN=$(prop MainPID)
read -r stream2 oldest2 last2 _ <<<"$(hello 2>/dev/null)"
kept() { [ "$stream2" = "$stream1" ] && [ "${oldest2:-9}" -le "${last1:-0}" ] && [ "${last2:-0}" -gt "${last1:-0}" ]; }
check "after systemctl restart the events are still served, numbering continues (stream $stream1 -> $stream2, last $last1 -> events $oldest2..$last2)" kept

# -- a hung event loop: the watchdog (3 s in this test's drop-in) restarts it
restarts=$(prop NRestarts)
kill -STOP "$MAIN"
newpid() { p=$(prop MainPID); [ "$p" != 0 ] && [ "$p" != "$MAIN" ] && [ "$(prop ActiveState)" = active ]; }
check "a stopped loop misses its watchdog pings and systemd restarts the daemon" wait_for 20 newpid
check "NRestarts went up ($restarts -> $(prop NRestarts))" test "$(prop NRestarts)" -gt "$restarts"
wait_for 30 streaming

# -- stop: clean, and the record is kept under the state directory
systemctl stop spinewatchd.service
result=$(prop Result)
check "systemctl stop: a clean exit (Result=$result)" test "$result" = success
record() {
	/usr/bin/python3 -c 'import sqlite3; db = sqlite3.connect("/var/lib/spinewatch/history.db"); n = db.execute("SELECT count(*) FROM daily").fetchone()[0]; e = db.execute("SELECT count(*) FROM events").fetchone()[0]; assert n and e, (n, e)'
}
check "the events and the per-day record are kept in /var/lib/spinewatch/history.db" record
stopping() { journalctl -u spinewatchd.service --no-pager | grep -q 'received Terminated, stopping'; }
check "the journal shows the stop" stopping
kill "$SIM" 2>/dev/null
