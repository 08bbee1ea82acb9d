#!/usr/bin/env bash
# Renders every kustomization under deploy/kubernetes with `kubectl
# kustomize` and validates every rendered object offline against the
# Kubernetes API schemas (npm kubernetes-models, tools/kube-validate). Then
# proves the validation can fail: a rendered DaemonSet with a port given as a
# string must be refused. Also checks what the deploy docs promise: every
# runtime overlay mounts its socket's directory read-only with
# HostToContainer propagation and points egressd at the socket in it, and no
# policy selects pods of kube-system or egress.
#
# usage: check_kube_manifests.sh --fetch SOURCE_DIR TOOL_DIR
#        check_kube_manifests.sh SOURCE_DIR TOOL_DIR WORK_DIR
# --fetch (scripts/install_deps.sh) installs the validator's npm packages
# into TOOL_DIR from the checked-in lock file, the only step that uses the
# network. The check itself (the ctest test kube_manifests) is offline.
set -euo pipefail
fetch=0
if [[ ${1:-} == --fetch ]]; then
  fetch=1 src=$2 tool=$3
else
  src=$1 tool=$2 work=$3
fi
kube=$src/deploy/kubernetes

# --- the validator's packages, from the checked-in lock file --------------------
stamp=$(cat "$src/tools/kube-validate/package.json" \
  "$src/tools/kube-validate/package-lock.json" | sha256sum | cut -c1-64)
if ((fetch)); then
  mkdir -p "$tool"
  for f in package.json package-lock.json; do
    cp "$src/tools/kube-validate/$f" "$tool/$f"
  done
  if [[ ! -d $tool/node_modules || $(cat "$tool/.installed" 2>/dev/null) != "$stamp" ]]; then
    (cd "$tool" && timeout 600 npm ci --no-audit --no-fund --loglevel=error)
    echo "$stamp" >"$tool/.installed"
  fi
  echo "kube-validate packages installed in $tool"
  exit 0
fi
if [[ ! -d $tool/node_modules || $(cat "$tool/.installed" 2>/dev/null) != "$stamp" ]]; then
  echo "FAIL: the validator's npm packages in $tool are missing or older than" \
    "tools/kube-validate/package-lock.json; run 'bash scripts/install_deps.sh'" >&2
  exit 1
fi
# The script itself comes from the source tree, next to its packages.
cp "$src/tools/kube-validate/validate.mjs" "$tool/validate.mjs"
mkdir -p "$work/rendered"
rm -f "$work/rendered/"*.yaml

# --- render every kustomization ---------------------------------------------------
failed=0
rendered=()
while read -r dir; do
  name=${dir#"$kube"/}
  out=$work/rendered/${name//\//_}.yaml
  # kustomize newer than v2 warns about `bases`, kept for Debian's kubectl.
  if ! kubectl kustomize "$dir" >"$out" 2>"$out.err"; then
    echo "FAIL: kubectl kustomize $name: $(cat "$out.err")" >&2
    failed=1
    continue
  fi
  echo "rendered $name: $(grep -c '^kind:' "$out") objects"
  rendered+=("$out")
done < <(find "$kube" -name kustomization.yaml -printf '%h\n' | sort)
if ((${#rendered[@]} < 7)); then
  echo "FAIL: only ${#rendered[@]} kustomizations rendered (base, 3 runtime" \
    "overlays, 2 policy sets, servicemonitor expected)" >&2
  exit 1
fi

# --- validate every object --------------------------------------------------------
if ! node "$tool/validate.mjs" "${rendered[@]}"; then failed=1; fi

# --- what the docs promise --------------------------------------------------------
# Each runtime overlay mounts its socket's directory (a socket file's bind
# mount goes stale when the runtime restarts and makes a new one) read-only
# with HostToContainer, names the socket in it, turns the other runtime off,
# and repeats every argument of the base (a strategic merge replaces args).
# runtime:host directory:mount path:socket flag (crio: no flag yet).
overlays=(
  "containerd:/run/containerd:/run/containerd:--containerd_socket=/run/containerd/containerd.sock --docker_socket="
  "crio:/var/run/crio:/var/run/crio:"
  "docker:/var/run:/host/var/run:--docker_socket=/host/var/run/docker.sock --containerd_socket="
)
if ! node - "$tool" "$work/rendered" "${overlays[@]}" <<'JS'; then failed=1; fi
const [tool, dir, ...overlays] = process.argv.slice(2);
const YAML = require("module").createRequire(tool + "/")("yaml");
const fs = require("fs");
const egressd = (file) => {
  const ds = YAML.parseAllDocuments(fs.readFileSync(file, "utf8"))
    .map((d) => d.toJS())
    .find((o) => o && o.kind === "DaemonSet" && o.metadata.name === "egressd");
  return { pod: ds.spec.template.spec,
           c: ds.spec.template.spec.containers.find((c) => c.name === "egressd") };
};
const baseArgs = egressd(`${dir}/base.yaml`).c.args || [];
let failed = false;
let bad = false;
const fail = (msg) => { console.error(`FAIL: ${msg}`); failed = bad = true; };
for (const spec of overlays) {
  bad = false;
  const [rt, hostDir, mountPath, flags] = spec.split(":");
  const { pod, c } = egressd(`${dir}/overlays_${rt}.yaml`);
  const args = c.args || [];
  const m = (c.volumeMounts || []).find((v) => v.mountPath === mountPath);
  const vol = m && (pod.volumes || []).find((v) => v.name === m.name);
  if (!m || !vol || !vol.hostPath || vol.hostPath.path !== hostDir) {
    fail(`overlays/${rt} does not mount the host's ${hostDir} at ${mountPath}`);
    continue;
  }
  if (m.readOnly !== true) fail(`overlays/${rt} mounts ${mountPath} writable`);
  if (m.mountPropagation !== "HostToContainer") {
    fail(`overlays/${rt} mounts ${mountPath} without HostToContainer: a ` +
         "socket the runtime makes anew on a restart would not show");
  }
  for (const f of flags.split(" ").filter(Boolean)) {
    if (!args.includes(f)) fail(`overlays/${rt} does not pass ${f}`);
  }
  for (const a of baseArgs) {
    if (!args.includes(a)) fail(`overlays/${rt} drops the base's ${a}`);
  }
  if (!bad) console.log(`ok: overlays/${rt} mounts ${hostDir} at ${mountPath}`);
}
process.exit(failed ? 1 : 0);
JS
for set in audit-first enforcing; do
  out=$work/rendered/policy-sets_$set.yaml
  if grep -qE 'namespace: *(kube-system|egress) *$' <(grep -v '^  namespace:' "$out"); then
    echo "FAIL: policy set $set selects pods of kube-system or egress" >&2
    failed=1
  fi
  grep -q 'podSelector:' "$out" || {
    echo "FAIL: policy set $set selects no pods by label" >&2
    failed=1
  }
done

# --- the validation can fail --------------------------------------------------------
broken=$work/rendered/negative-daemonset.yaml.bad
sed -E 's/containerPort: 9477/containerPort: "9477"/' \
  "$work/rendered/overlays_containerd.yaml" >"$broken"
if out=$(node "$tool/validate.mjs" "$broken" 2>&1); then
  echo "FAIL: a DaemonSet with containerPort \"9477\" (a string) validated" >&2
  failed=1
elif ! grep -q 'containerPort must be integer' <<<"$out"; then
  echo "FAIL: the broken DaemonSet failed, but not for its port: $out" >&2
  failed=1
else
  echo "ok: a DaemonSet with a string containerPort is refused"
fi
exit "$failed"
