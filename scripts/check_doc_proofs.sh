#!/usr/bin/env bash
# Fails when a page that proves behaviour by naming tests (docs/bypasses.md:
# "the test that proves each row") names a test or test file that does not
# exist, so a renamed or deleted test cannot leave a row claiming a proof.
set -euo pipefail
cd "$(dirname "$0")/.."
pages=${*:-$(ls docs/*.md README.md)}
missing=0
checked=0
# Every TEST/TEST_F/TEST_P in the tree as "Suite.Name".
defined=$(grep -rhoE 'TEST(_F|_P)?\(\s*[A-Za-z0-9_]+,\s*[A-Za-z0-9_]+' tests |
  sed -E 's/TEST(_F|_P)?\(\s*([A-Za-z0-9_]+),\s*([A-Za-z0-9_]+)/\2.\3/' |
  sort -u)
for page in $pages; do
  # `Suite.Test` and `Suite.*` in backticks; Suite and Test in CamelCase.
  for name in $(grep -oE '`[A-Z][A-Za-z0-9]+Test\.([A-Z][A-Za-z0-9_]+|\*)`' \
    "$page" | tr -d '`' | sort -u); do
    checked=$((checked + 1))
    suite=${name%%.*}
    if [[ $name == *'.*' ]]; then
      grep -q "^${suite}\." <<<"$defined" && continue
    else
      grep -qxF "$name" <<<"$defined" && continue
    fi
    echo "$page: names test $name, which no file in tests/ defines" >&2
    missing=$((missing + 1))
  done
  for file in $(grep -oE '`[a-z0-9_]+_test\.cc`' "$page" | tr -d '`' |
    sort -u); do
    checked=$((checked + 1))
    if [[ -z $(find tests -name "$file" -print -quit) ]]; then
      echo "$page: names $file, which is not in tests/" >&2
      missing=$((missing + 1))
    fi
  done
done
if ((missing > 0)); then
  echo "doc proofs: $missing of $checked names missing" >&2
  exit 1
fi
echo "doc proofs: $checked test names in $(echo $pages | wc -w) pages all exist"
