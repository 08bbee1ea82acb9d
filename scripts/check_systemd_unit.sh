#!/usr/bin/env bash
# Checks the shipped egressd unit (argument: its path) for what issue 12
# promises of it:
# - Type=notify, with NotifyAccess letting the main process notify: units
#   ordered After=egressd.service start only once enforcement is restored
#   (egressd sends READY=1 then);
# - a finite MemoryMax=: a runaway is killed and restarted, never the host's
#   memory;
# - hardening: `systemd-analyze security` (offline, no systemd needed) scores
#   its exposure at 4.0 ("OK") or below.
# Directives are read from [Service] as systemd does: comments skipped,
# backslash continuations joined, the last assignment wins and an empty one
# resets.
set -euo pipefail
unit=${1:?usage: check_systemd_unit.sh UNIT_FILE}
failed=0

# The value systemd ends up with for [Service] directive $1 ("" if unset).
service_value() {
  awk -v key="$1" '
    /\\$/ { line = line substr($0, 1, length($0) - 1) " "; next }
    { line = line $0 }
    {
      l = line; line = ""
      sub(/^[ \t]+/, "", l)
      if (l ~ /^[#;]/ || l == "") next
      if (l ~ /^\[/) { section = l; next }
      if (section != "[Service]") next
      eq = index(l, "=")
      if (eq == 0) next
      k = substr(l, 1, eq - 1); v = substr(l, eq + 1)
      sub(/[ \t]+$/, "", k); sub(/^[ \t]+/, "", v); sub(/[ \t]+$/, "", v)
      if (k == key) value = v
    }
    END { print value }
  ' "$unit"
}

fail() {
  echo "$unit: $*" >&2
  failed=1
}

type=$(service_value Type)
[[ $type == notify ]] || fail "Type=${type:-(unset, simple)}, want notify"
notify_access=$(service_value NotifyAccess)
case $notify_access in
  "" | main | exec | all) ;;
  *) fail "NotifyAccess=$notify_access: egressd's READY=1 would be dropped" ;;
esac
memory_max=$(service_value MemoryMax)
if [[ -z $memory_max ]]; then
  fail "no MemoryMax=: a runaway egressd could take the host's memory"
elif ! [[ $memory_max =~ ^[0-9]+(\.[0-9]+)?[KMGT]?$|^[0-9]+(\.[0-9]+)?%$ ]]; then
  fail "MemoryMax=$memory_max is not a finite limit"
fi

systemd-analyze security --offline=yes --threshold=40 "$unit" ||
  fail "systemd-analyze security: exposure above 4.0"
exit "$failed"
