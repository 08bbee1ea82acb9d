#!/usr/bin/env bash
# Does the runtime stage of deploy/Dockerfile carry every shared library
# egressd and egressctl need? Without a container engine or image registry:
# reads the package list of the last stage's `apt-get install`, downloads
# those packages and everything they depend on in Debian (apt, into a cache
# directory kept between runs), unpacks exactly those into an empty root,
# copies the two binaries in and runs `--version` of each there (chroot).
# A library missing from the list fails the test, named with the package
# that ships it on this machine.
#
# usage: check_runtime_image.sh --fetch DOCKERFILE CACHE_DIR
#        check_runtime_image.sh DOCKERFILE EGRESSD EGRESSCTL CACHE_DIR
# --fetch (scripts/install_deps.sh) downloads the packages into CACHE_DIR,
# the only step that uses the network. The check itself (the ctest test
# runtime_image_libraries) is offline: a package missing from the cache
# fails it, with the command that fetches it.
# Root only (chroot). After a pass it proves that it can fail: the same run
# on a copy of the Dockerfile without libyaml-cpp0.7 must fail naming
# libyaml-cpp.so.0.7 (EGRESS_RUNTIME_SELF_TEST=0 skips that, for the copy).
set -euo pipefail
fetch=0
if [[ ${1:-} == --fetch ]]; then
  fetch=1 dockerfile=$2 cache=$3
else
  dockerfile=$1 egressd=$2 egressctl=$3 cache=$4
fi
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
offline_hint="run 'bash scripts/install_deps.sh' (it downloads them into $cache)"

# --- the package list: the last stage's apt-get install ----------------------
# Joins continuation lines of the last FROM stage, takes the words after
# `apt-get install` up to the next `&&`, options dropped.
stage=$(awk '/^FROM /{buf=""} {buf=buf $0 "\n"} END{printf "%s", buf}' "$dockerfile")
mapfile -t pkgs < <(sed -e ':a' -e '/\\$/N; s/\\\n//; ta' <<<"$stage" |
  grep -E '^RUN .*apt-get install' |
  sed -E 's/.*apt-get install//; s/&&.*//' | tr ' ' '\n' | grep -vE '^(-|$)' |
  sort -u)
if ((${#pkgs[@]} == 0)); then
  echo "FAIL: no 'apt-get install' package list in the last stage of $dockerfile" >&2
  exit 1
fi
echo "runtime stage packages: ${pkgs[*]}"

# --- apt lists, once, if this machine has none --------------------------------
# (apt-cache takes seconds per call on a full list: one call for all.)
if ! apt-cache show --no-all-versions "${pkgs[@]}" >/dev/null 2>&1; then
  if ((!fetch)); then
    echo "FAIL: no apt lists for the runtime packages here; $offline_hint" >&2
    exit 1
  fi
  apt-get update -qq
  if ! apt-cache show --no-all-versions "${pkgs[@]}" >/dev/null 2>&1; then
    for p in "${pkgs[@]}"; do
      apt-cache show --no-all-versions "$p" >/dev/null 2>&1 ||
        echo "FAIL: $dockerfile installs '$p', which Debian does not have" >&2
    done
    exit 1
  fi
fi

# --- their closure over Depends and Pre-Depends ----------------------------------
# Virtual packages (<name>) are provided by a real one listed beside them.
mapfile -t closure < <(apt-cache depends --recurse --no-recommends \
  --no-suggests --no-conflicts --no-breaks --no-replaces --no-enhances \
  "${pkgs[@]}" | grep -vE '^ |^<' | sort -u)
echo "with dependencies: ${#closure[@]} packages"

# --- download what the cache does not hold yet ------------------------------------
mkdir -p "$cache"
want=()
missing=()
while read -r name version arch; do
  file="${name}_${version//:/%3a}_${arch}.deb"
  want+=("$cache/$file")
  [[ -s $cache/$file ]] || missing+=("$name=$version")
done < <(apt-cache show --no-all-versions "${closure[@]}" |
  awk '/^Package:/{p=$2} /^Version:/{v=$2} /^Architecture:/{print p, v, $2}')
if ((fetch)); then
  if ((${#missing[@]})); then
    (cd "$cache" && timeout 600 apt-get download -qq -o APT::Sandbox::User=root "${missing[@]}")
  fi
  echo "runtime image packages cached in $cache: ${#want[@]}"
  exit 0
fi
if ((${#missing[@]})); then
  echo "FAIL: ${#missing[@]} packages are not in the cache (${missing[*]:0:5} ...);" \
    "$offline_hint" >&2
  exit 1
fi

# --- an empty root with exactly those packages -------------------------------------
root=$(mktemp -d /tmp/egress-runtime-root-XXXXXX)
trap 'rm -rf --one-file-system "$root"' EXIT
for deb in "${want[@]}"; do dpkg-deb -x "$deb" "$root"; done
install -D -m 0755 "$egressd" "$root/usr/local/sbin/egressd"
install -D -m 0755 "$egressctl" "$root/usr/local/sbin/egressctl"

# --- run them there -------------------------------------------------------------
failed=0
for bin in egressd egressctl; do
  # Every library missing, not only the first the loader stops at: the
  # NEEDED entries of the binary and of each library found, looked up in the
  # root's library directories.
  queue=("$root/usr/local/sbin/$bin") seen=" "
  for ((i = 0; i < ${#queue[@]} && i < 1000; i++)); do
    for lib in $(readelf -d "${queue[i]}" 2>/dev/null |
      sed -nE 's/.*\(NEEDED\).*\[(.*)\]/\1/p'); do
      [[ $seen == *" $lib "* ]] && continue
      seen+="$lib "
      found=""
      for dir in usr/lib/x86_64-linux-gnu lib/x86_64-linux-gnu usr/lib lib lib64; do
        [[ -e $root/$dir/$lib ]] && found=$root/$dir/$lib && break
      done
      if [[ -n $found ]]; then
        queue+=("$found")
        continue
      fi
      owner=$(dpkg -S "*/$lib" 2>/dev/null | head -1 | cut -d: -f1 || true)
      echo "FAIL: $bin needs $lib, which no package of the runtime stage" \
        "brings (on this machine it is in: ${owner:-no installed package})" >&2
      failed=1
    done
  done
  if out=$(chroot "$root" "/usr/local/sbin/$bin" --version 2>&1); then
    echo "ok: $bin --version in the runtime root: $out"
  else
    echo "FAIL: $bin --version in the runtime root: $out" >&2
    failed=1
  fi
done
if ((failed)) || [[ ${EGRESS_RUNTIME_SELF_TEST:-1} == 0 ]]; then
  exit "$failed"
fi

# --- the check can fail: a list without libyaml-cpp0.7 --------------------------
broken=$(mktemp /tmp/egress-runtime-dockerfile-XXXXXX)
trap 'rm -rf --one-file-system "$root"; rm -f "$broken"' EXIT
sed -E 's/ libyaml-cpp0\.7\b//' "$dockerfile" >"$broken"
if out=$(EGRESS_RUNTIME_SELF_TEST=0 bash "$0" "$broken" "$egressd" \
  "$egressctl" "$cache" 2>&1); then
  echo "FAIL: the check passed for a runtime stage without libyaml-cpp0.7:" >&2
  echo "$out" >&2
  exit 1
fi
if ! grep -q 'FAIL: egressd needs libyaml-cpp.so.0.7' <<<"$out"; then
  echo "FAIL: without libyaml-cpp0.7 the check failed, but not naming the library:" >&2
  echo "$out" >&2
  exit 1
fi
echo "ok: without libyaml-cpp0.7 the check fails: $(grep -m1 'needs libyaml' <<<"$out")"
