#!/usr/bin/env bash
# Demo of the operator's routine on a real (small) web application:
#   1. audit: the app runs under a target in audit mode; egressd learns what
#      it initiates (DNS, SMTP, its HTTPS API);
#   2. suggest: egressctl proposes a least-privilege policy from that;
#   3. enforce: policies/webapp.yaml, the shipped example, is applied as
#      written except for its target (the demo cgroup) and its addresses
#      (mapped onto loopback, see MAP below); the app keeps working, an
#      attacker in the same cgroup is denied, `egressctl verify` confirms the
#      policy is in force.
# Everything runs on loopback with its own socket, pins, state and cgroup,
# all removed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
[ "$(id -u)" = 0 ] || { echo "run.sh: run as root (BPF and cgroups need it)" >&2; exit 1; }
bash scripts/install_deps.sh
build=${EGRESS_BUILD_DIR:-build}
cmake -S . -B "$build" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$build" -j"$(nproc)" \
  --target egressd egressctl sample_webapp sample_world >/dev/null

# The example's addresses, moved onto loopback so the demo reaches nothing
# outside this machine.
MAP=(
  -e 's#10\.0\.0\.53#127.0.10.53#g'        # resolver
  -e 's#10\.0\.0\.25#127.0.10.25#g'        # mail relay
  -e 's#10\.0\.1\.10#127.0.11.10#g'        # PostgreSQL
  -e 's#203\.0\.113\.#127.203.113.#g'      # the HTTPS API's range
)
resolver=127.0.10.53:53
smtp=127.0.10.25:25
api=127.203.113.10:443

demo=$(mktemp -d /tmp/egress-demo-XXXXXX)
sock=$demo/egressd.sock
pins=/sys/fs/bpf/egress-demo-$$
cg2=$(awk '$9 == "cgroup2" { print $5; exit }' /proc/self/mountinfo)
cgroup=/egress-demo-$$
ctl() { "$build/userspace/cli/egressctl" --socket "$sock" "$@"; }
pids=()
cleanup() {
  ctl target remove webapp >/dev/null 2>&1 || true
  [ -d "$cg2$cgroup" ] && { echo 1 > "$cg2$cgroup/cgroup.kill" 2>/dev/null || true; }
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  for _ in $(seq 50); do rmdir "$cg2$cgroup" 2>/dev/null && break; [ -d "$cg2$cgroup" ] || break; sleep 0.1; done
  rm -rf "$pins" "$demo"
}
trap cleanup EXIT

"$build/userspace/daemon/egressd" --socket "$sock" --bpffs "$pins" \
  --state_dir "$demo/state" --metrics_addr= \
  >"$demo/events.jsonl" 2>"$demo/egressd.log" &
pids+=($!)
for _ in $(seq 100); do ctl status >/dev/null 2>&1 && break; sleep 0.1; done
"$build/tests/sample_webapp/sample_world" --resolver "$resolver" --smtp "$smtp" \
  --api "$api" >"$demo/world.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q ready "$demo/world.log" && break; sleep 0.05; done
mkdir "$cg2$cgroup"
echo "== egressd running; DNS $resolver, SMTP $smtp, API $api up (outside the target)"

request() {  # one request to the app, as a client outside the target would
  python3 - <<'EOF' | sed 's/^/   /'
import urllib.request, urllib.error
try:
    r = urllib.request.urlopen("http://127.0.0.1:18080/", timeout=10)
    print(r.status, r.read().decode().strip())
except urllib.error.HTTPError as e:
    print(e.code, e.read().decode().strip())
EOF
}
in_cgroup() {  # runs a command inside the demo cgroup
  sh -c 'echo $$ > "$0/cgroup.procs" && shift && exec "$@"' "$cg2$cgroup" _ "$@"
}

echo
echo "== 1. audit: egressctl target add webapp --cgroup $cgroup --mode audit"
ctl target add webapp --cgroup "$cgroup" --mode audit
in_cgroup "$build/tests/sample_webapp/sample_webapp" --listen 127.0.0.1:18080 \
  --resolver "$resolver" --smtp "$smtp" --api "$api" --lifetime_s 120 \
  >"$demo/app.log" 2>&1 &
pids+=($!)
for _ in $(seq 100); do grep -q listening "$demo/app.log" && break; sleep 0.05; done
for _ in 1 2 3; do request; done
sleep 0.3

echo
echo "== 2. egressctl suggest --target webapp"
ctl suggest --target webapp | tee "$demo/suggested.yaml" | sed 's/^/   /'

echo
echo "== 3. enforce policies/webapp.yaml (target: the demo cgroup; addresses mapped to loopback)"
sed "${MAP[@]}" -e "s#systemdUnit: webapp.service#cgroupPath: $cgroup#" \
  policies/webapp.yaml >"$demo/webapp.yaml"
ctl apply -f "$demo/webapp.yaml" --dry-run | sed 's/^/   /'
ctl apply -f "$demo/webapp.yaml" | sed 's/^/   /'
ctl list | sed 's/^/   /'
echo "-- the application still works:"
request
echo "-- an attacker in the same cgroup:"
in_cgroup python3 - <<'EOF' | sed 's/^/   /'
import errno, socket
def attempt(what, family, kind, addr):
    s = socket.socket(family, kind)
    s.settimeout(2)
    try:
        if kind == socket.SOCK_DGRAM:
            s.sendto(b"x", addr)
        else:
            s.connect(addr)
        print("%-40s got through" % what)
    except OSError as e:
        print("%-40s %s" % (what, "DENIED (EPERM)" if e.errno == errno.EPERM else e.strerror))
    finally:
        s.close()
attempt("TCP to the mail relay on 587", socket.AF_INET, socket.SOCK_STREAM, ("127.0.10.25", 587))
attempt("TCP to another host on 25", socket.AF_INET, socket.SOCK_STREAM, ("127.0.0.66", 25))
attempt("UDP to another resolver", socket.AF_INET, socket.SOCK_DGRAM, ("127.0.0.54", 53))
attempt("IPv6 to ::1 port 22", socket.AF_INET6, socket.SOCK_STREAM, ("::1", 22))
attempt("the API provider's sandbox", socket.AF_INET, socket.SOCK_STREAM, ("127.203.113.250", 443))
EOF
sleep 0.2
echo "-- egressctl events --verdict deny --last 5"
ctl events --verdict deny --last 5 | sed 's/^/   /'
echo "-- egressctl verify --target webapp"
ctl verify --target webapp | sed 's/^/   /'
echo
echo "== 4. a name rule: egressctl allow 8443/tcp api.payments.test --target webapp"
ctl allow 8443/tcp api.payments.test --target webapp | sed 's/^/   /'
echo "-- the target connects before and after its own lookup of the name:"
in_cgroup python3 - <<'EOF' | sed 's/^/   /'
import errno, socket, struct
def connect(what):
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    s.settimeout(2)
    try:
        s.connect(("127.203.113.10", 8443))
        print("%-44s connected" % what)
    except OSError as e:
        print("%-44s %s" % (what, "DENIED (EPERM)" if e.errno == errno.EPERM
                            else "allowed by egress (%s)" % e.strerror))
    finally:
        s.close()
connect("127.203.113.10:8443 before any lookup")
name = b"".join(bytes([len(l)]) + l for l in b"api.payments.test".split(b"."))
query = struct.pack(">HHHHHH", 0x4e41, 0x0100, 1, 0, 0, 0) + name + b"\0" \
    + struct.pack(">HH", 1, 1)
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
d.settimeout(2)
d.sendto(query, ("127.0.10.53", 53))
answer = d.recv(512)
print("%-44s %s" % ("lookup of api.payments.test", socket.inet_ntoa(answer[-4:])))
connect("127.203.113.10:8443 after it")
EOF
sleep 0.2
ctl events --last 2 | sed 's/^/   /'
ctl status | grep -A1 "names:" | sed 's/^/   /'
echo "-- egressctl export --target webapp (what is enforced, as a file)"
ctl export --target webapp | head -20 | sed 's/^/   /'
