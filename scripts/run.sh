#!/usr/bin/env bash
# Demo: installs dependencies, builds, starts egressd and shows enforcement on
# a sample web application launched under `egressctl run`: the inbound request
# is served, its outbound call to its API is allowed, and its attempt to reach
# a mail relay is denied in the kernel. Everything runs on loopback; the demo
# uses its own socket, pin directory and state directory and removes them.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (BPF and cgroups need it)" >&2; exit 1; }
bash scripts/install_deps.sh
build=${EGRESS_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" --target egressd egressctl >/dev/null

demo=$(mktemp -d /tmp/egress-demo-XXXXXX)
sock=$demo/egressd.sock
pins=/sys/fs/bpf/egress-demo-$$
egressd=$build/userspace/daemon/egressd
ctl() { "$build/userspace/cli/egressctl" --socket "$sock" "$@"; }
pids=()
app=""
cleanup() {
  # Stop the app first: egressctl forwards the signal, then removes its
  # target and cgroup while egressd is still there to answer.
  if [ -n "$app" ]; then kill "$app" 2>/dev/null || true; wait "$app" 2>/dev/null || true; fi
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$pins" "$demo"
}
trap cleanup EXIT

"$egressd" --socket "$sock" --bpffs "$pins" --state_dir "$demo/state" --metrics_addr= \
  >"$demo/events.jsonl" 2>"$demo/egressd.log" &
pids+=($!)
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
echo "== egressd is running"

# The application's API, outside any target.
python3 -c '
import socket
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 18081)); s.listen(16)
while True:
    c, _ = s.accept(); c.close()' &
pids+=($!)

echo "== starting the sample app under: egressctl run --allow '18081/tcp 127.0.0.1' -- python3 scripts/sample_app.py"
"$build/userspace/cli/egressctl" --socket "$sock" run \
  --allow '18081/tcp 127.0.0.1' --target-name demo-web -- \
  python3 scripts/sample_app.py --listen 18080 --api 127.0.0.1:18081 \
  --forbidden 127.0.0.66:25 &
app=$!
for _ in $(seq 100); do
  python3 -c 'import socket; socket.create_connection(("127.0.0.1", 18080), 1)' 2>/dev/null && break
  sleep 0.1
done

echo "== egressctl list"
ctl list
echo "== an inbound request to the app (served: inbound is never affected):"
python3 -c 'import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:18080/", timeout=5).read().decode(), end="")' | sed 's/^/   /'
sleep 0.2
echo "== egressd's record of the denial:"
grep -m1 DENIED "$demo/events.jsonl" | sed 's/^/   /' || echo "   (none)"
echo "== egressctl status"
ctl status
