#!/bin/sh
# tests/systemd/install-check.sh - `make install` and `make uninstall` into a scratch DESTDIR:
# every file lands where the unit and the daemon expect it (the installed daemon serves the
# installed dashboard), the unit names the installed binary, a second install keeps the admin's
# settings, and uninstall removes everything but the settings.
set -u
REPO=$(cd "$(dirname "$0")/../.." && pwd)
D=$(mktemp -d /tmp/spinewatch-install.XXXXXX) || exit 1
trap 'rm -rf "$D"' EXIT
pass=0 fail=0
ok() { echo "ok   - $*"; pass=$((pass + 1)); }
bad() { echo "FAIL - $*"; fail=$((fail + 1)); }
check() { what=$1; shift; if "$@"; then ok "$what"; else bad "$what"; fi; }
mk() { make -C "$REPO" --no-print-directory -s "$@" DESTDIR="$D" PREFIX=/opt/sw >/dev/null; }

mk install || { echo "FAIL - make install"; exit 1; }
for f in /opt/sw/bin/spinewatchd /opt/sw/bin/spinewatch /opt/sw/share/spinewatch/web/index.html \
	/opt/sw/share/spinewatch/web/app.js /etc/systemd/system/spinewatchd.service \
	/etc/spinewatch/spinewatchd.conf /opt/sw/share/doc/spinewatch/README.md \
	/etc/sysusers.d/spinewatch.conf /opt/sw/share/man/man8/spinewatchd.8 \
	/opt/sw/share/man/man1/spinewatch.1; do
	check "installed $f" test -f "$D$f"
done
check "the daemon and the client are executable" test -x "$D/opt/sw/bin/spinewatchd" -a -x "$D/opt/sw/bin/spinewatch"
check "the unit starts the installed daemon" grep -q '^ExecStart=/opt/sw/bin/spinewatchd$' "$D/etc/systemd/system/spinewatchd.service"
webroot() { "$D/opt/sw/bin/spinewatchd" --help 2>&1 | grep -q '/opt/sw/share/spinewatch/web'; }
check "the installed daemon serves the installed dashboard (--help names it)" webroot
settings() { "$D/opt/sw/bin/spinewatchd" --config "$D/etc/spinewatch/spinewatchd.conf" --check-config >/dev/null 2>&1; }
check "the installed sample settings pass --check-config" settings
# the manual pages: clean roff, and every option --help lists is described
for page in "$D/opt/sw/share/man/man8/spinewatchd.8" "$D/opt/sw/share/man/man1/spinewatch.1"; do
	warn=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$page" 2>&1)
	check "$(basename "$page") renders without warnings $warn" test -z "$warn"
done
undocumented() { # BINARY PAGE: options and commands in --help missing from the page
	text=$(sed 's/\\-/-/g; s/\\f[BIRP]//g' "$2")
	for w in $("$1" --help 2>&1 | grep -oE -- '--[a-z][a-z-]*|^  [a-z]+ ' | tr -d ' ' | sort -u); do
		echo "$text" | grep -qF -- "$w" || printf '%s ' "$w"
	done
}
missing=$(undocumented "$D/opt/sw/bin/spinewatchd" "$D/opt/sw/share/man/man8/spinewatchd.8")
check "spinewatchd.8 describes every option of --help (missing: $missing)" test -z "$missing"
missing=$(undocumented "$D/opt/sw/bin/spinewatch" "$D/opt/sw/share/man/man1/spinewatch.1")
check "spinewatch.1 describes every command and option of --help (missing: $missing)" test -z "$missing"
echo '# mine' >>"$D/etc/spinewatch/spinewatchd.conf"
mk install || bad "a second make install"
check "a second install keeps the admin's settings" grep -q '^# mine$' "$D/etc/spinewatch/spinewatchd.conf"
mk uninstall || bad "make uninstall"
left=$(cd "$D" && find . -type f | sort | tr '\n' ' ')
check "uninstall leaves only the settings (left: $left)" test "$left" = "./etc/spinewatch/spinewatchd.conf "
echo "install-check: $pass passed, $fail failed"
[ "$fail" = 0 ]
