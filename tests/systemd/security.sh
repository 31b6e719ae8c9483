#!/bin/sh
# tests/systemd/security.sh - systemd's own rating of the unit's sandbox must stay at 1.5 or
# lower (0 is fully locked down, 10 is no sandbox at all). Prints the rating and the
# settings that still count against it.
#
#   tests/systemd/security.sh [UNIT]      (default systemd/spinewatchd.service)
set -u
UNIT=${1:-$(dirname "$0")/../../systemd/spinewatchd.service}
LIMIT=1.5
command -v systemd-analyze >/dev/null || { echo "FAIL - systemd-analyze is not installed"; exit 1; }
out=$(systemd-analyze security --offline=true --no-pager "$UNIT" 2>&1) || {
	echo "$out"; echo "FAIL - systemd-analyze could not rate $UNIT"; exit 1; }
echo "$out" | grep '✗'
score=$(echo "$out" | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p')
[ -n "$score" ] || { echo "$out"; echo "FAIL - no exposure level in the output"; exit 1; }
if awk -v s="$score" -v l="$LIMIT" 'BEGIN { exit !(s <= l) }'; then
	echo "ok   - $UNIT: exposure $score (limit $LIMIT)"
else
	echo "FAIL - $UNIT: exposure $score is above $LIMIT"
	exit 1
fi
