#!/usr/bin/env bash
# Fails when a C/C++ file is not clang-format clean (Google style for C++,
# kernel style for bpf/, each from the nearest .clang-format).
set -euo pipefail
cd "$(dirname "$0")/.."
files=$(git ls-files '*.cc' '*.h' '*.c' 2>/dev/null || find userspace tests bench bpf -name '*.cc' -o -name '*.h' -o -name '*.c')
clang-format --dry-run --Werror $files
echo "format: $(echo "$files" | wc -w) files clean"
