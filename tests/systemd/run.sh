#!/bin/bash
# tests/systemd/run.sh - the real service test: boots a Debian bookworm container with
# systemd-nspawn, installs spinewatch into it with `make install`, and lets the container's own
# systemd run spinewatchd.service against the simulated BlueZ (tests/systemd/in-container.sh
# does the checks, from a oneshot unit started at boot, then powers the container off).
#
#   tests/systemd/run.sh            (as root; from the repository root or anywhere)
#
# The container's root file system is made once with debootstrap (about two minutes) and kept
# in build/nspawn/root (SPINEWATCH_NSPAWN_ROOT overrides); `make clean` removes it. Prints one
# line per check and "N passed, N failed"; exits non-zero on failure.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
REPO=$(cd "$HERE/../.." && pwd)
ROOT=${SPINEWATCH_NSPAWN_ROOT:-$REPO/build/nspawn/root}
MIRROR=${SPINEWATCH_DEBIAN_MIRROR:-http://deb.debian.org/debian}
# what the daemon, its tests and an admin's checks need at run time
PACKAGES=systemd,systemd-sysv,dbus,libwebsockets17,libdbus-1-3,libjansson4,libinih1,libsystemd0,libmosquitto1,libc-ares2,libjs-chart.js,python3,python3-dbus,python3-gi,curl,procps

fail_setup() { echo "FAIL - $*"; echo "0 passed, 1 failed"; exit 1; }
if [ "$(id -u)" != 0 ]; then   # debootstrap and systemd-nspawn need root, as `make deps` does
	command -v sudo >/dev/null || fail_setup "needs root (debootstrap, systemd-nspawn), and there is no sudo"
	exec sudo SPINEWATCH_NSPAWN_ROOT="$ROOT" SPINEWATCH_DEBIAN_MIRROR="$MIRROR" "$0" "$@"
fi
command -v systemd-nspawn >/dev/null || fail_setup "systemd-nspawn is not installed (systemd-container)"
command -v debootstrap >/dev/null || fail_setup "debootstrap is not installed"

# the marker holds the package list it was made with: a changed list makes a new one
if [ "$(cat "$ROOT/.spinewatch-rootfs" 2>/dev/null)" != "$PACKAGES" ]; then
	echo "systemd: making a bookworm root file system in $ROOT (debootstrap)"
	rm -rf "$ROOT"
	mkdir -p "$(dirname "$ROOT")"
	debootstrap --variant=minbase --include="$PACKAGES" bookworm "$ROOT" "$MIRROR" \
		>"$(dirname "$ROOT")/debootstrap.log" 2>&1 ||
		fail_setup "debootstrap failed; see $(dirname "$ROOT")/debootstrap.log"
	echo "$PACKAGES" >"$ROOT/.spinewatch-rootfs"
fi

# a fresh install over whatever an earlier run left
rm -rf "$ROOT/var/lib/private/spinewatch" "$ROOT/var/lib/spinewatch" "$ROOT/etc/spinewatch" \
	"$ROOT/var/log/journal"
make -C "$REPO" --no-print-directory -s install DESTDIR="$ROOT" PREFIX=/usr/local >/dev/null ||
	fail_setup "make install DESTDIR=$ROOT failed"

# what `make install` does on the machine itself: make the service's user
systemd-sysusers --root="$ROOT" "$ROOT/etc/sysusers.d/spinewatch.conf" ||
	fail_setup "systemd-sysusers --root=$ROOT failed"

# test-only parts of the container: BlueZ's D-Bus policy (Debian's bluetooth.conf: root owns
# org.bluez, the bluetooth group talks to it) for the simulator, a short watchdog so the hang
# test is quick, and the oneshot unit that runs the checks at boot
cat >"$ROOT/etc/dbus-1/system.d/spinewatch-test-bluez.conf" <<'EOF'
<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-BUS Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <policy user="root">
    <allow own="org.bluez"/>
    <allow send_destination="org.bluez"/>
  </policy>
  <policy group="bluetooth">
    <allow send_destination="org.bluez"/>
  </policy>
</busconfig>
EOF
mkdir -p "$ROOT/etc/systemd/system/spinewatchd.service.d"
cat >"$ROOT/etc/systemd/system/spinewatchd.service.d/test.conf" <<'EOF'
[Service]
WatchdogSec=3
TimeoutAbortSec=2
EOF
cat >"$ROOT/etc/systemd/system/spinewatch-test.service" <<'EOF'
[Unit]
Description=spinewatch service test
After=multi-user.target dbus.service
[Service]
Type=oneshot
ExecStart=/sw-tests/systemd/in-container.sh
StandardOutput=journal+console
EOF
mkdir -p "$ROOT/etc/systemd/system/multi-user.target.wants"
ln -sf ../spinewatch-test.service "$ROOT/etc/systemd/system/multi-user.target.wants/spinewatch-test.service"
# boot quietly and quickly: nothing the test does not need
for unit in systemd-networkd.service systemd-resolved.service apt-daily.timer apt-daily-upgrade.timer; do
	ln -sf /dev/null "$ROOT/etc/systemd/system/$unit"
done

RESULTS=$(mktemp -d /tmp/spinewatch-systemd.XXXXXX) || fail_setup "mktemp failed"
trap 'rm -rf "$RESULTS"' EXIT
echo "systemd: booting the container"
timeout 300 systemd-nspawn --quiet --keep-unit --register=no --directory="$ROOT" --boot \
	--console=pipe --bind="$RESULTS:/results" --bind-ro="$REPO/tests:/sw-tests" \
	--machine=spinewatch-test >"$RESULTS/console.log" 2>&1 </dev/null
status=$?

if [ ! -s "$RESULTS/rc" ]; then
	echo "FAIL - the container did not finish the test (systemd-nspawn status $status)"
	tail -n 40 "$RESULTS/console.log"
	[ -f "$RESULTS/log" ] && cat "$RESULTS/log"
	echo "0 passed, 1 failed"
	exit 1
fi
cat "$RESULTS/log"
if [ "$(cat "$RESULTS/rc")" != 0 ]; then
	echo "--- spinewatchd's journal in the container ---"
	tail -n 60 "$RESULTS/journal.txt"
	echo "--- the simulator ---"
	tail -n 20 "$RESULTS/sim.log"
	exit 1
fi
