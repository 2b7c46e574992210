#!/usr/bin/env bash
# The compiled core's tests under AddressSanitizer + UndefinedBehaviorSanitizer.
#
# Builds cosfast's extensions with COSFAST_SANITIZE=1 (setup.py: -O0 -g3, -fsanitize=address,
# undefined) in a scratch copy of the sources, so the checkout's own build is never replaced by
# one that only loads with libasan preloaded, then runs the core's tests there with
#   LD_PRELOAD=libasan        the ASan runtime must come first in a python that was not built with it
#   ASAN_OPTIONS=detect_leaks=0  CPython keeps memory until exit by design
#   PYTHONMALLOC=malloc       every Python allocation a separate, checked malloc
#   UBSAN_OPTIONS=halt_on_error=1  undefined behaviour fails the run
# Any ASan/UBSan report makes the run fail (abort, non-zero status).
#
#   tools/asan_tests.sh                    # tests/test_crc64.py tests/test_partwriter.py tests/test_curlwrite.py
#   tools/asan_tests.sh tests/test_crc64.py -k combine   # other pytest arguments
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
py="${PY:-python3}"
scratch="$(mktemp -d "${TMPDIR:-/tmp}/cosfast-asan.XXXXXX")"
trap 'rm -rf "$scratch"' EXIT

cp -r "$repo/setup.py" "$repo/pyproject.toml" "$repo/src_c" "$repo/cosfast" "$repo/tests" "$scratch/"
rm -f "$scratch"/cosfast/*.so "$scratch"/cosfast/_crc64.c "$scratch"/cosfast/_partwriter.c
cd "$scratch"
COSFAST_SANITIZE=1 "$py" setup.py -q build_ext --inplace >build.log 2>&1 || { cat build.log; exit 1; }
for module in cosfast/_crc64*.so cosfast/_partwriter*.so; do
    # The build really is instrumented (a plain build does not call the ASan runtime). grep reads
    # all of nm's output: with -q it could quit early and pipefail would see nm's SIGPIPE.
    nm -D "$module" | grep " U __asan_init" >/dev/null || { echo "$module is not built with ASan" >&2; exit 1; }
done

libasan="$(gcc -print-file-name=libasan.so)"
if [ "$#" -eq 0 ]; then
    set -- tests/test_crc64.py tests/test_partwriter.py tests/test_curlwrite.py
fi
export LD_PRELOAD="$libasan" ASAN_OPTIONS="detect_leaks=0:abort_on_error=1" PYTHONMALLOC=malloc \
       UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1" COSFAST_NO_EXTENSIONS=
# The tests must run the instrumented modules, not the pure-Python twins.
"$py" -c "import cosfast, cosfast.partwriter as pw; assert cosfast.backend == pw.backend == 'compiled'
print('sanitized core loaded: crc64', cosfast.backend, '/ partwriter', pw.backend, '/ kernel', pw.CRC64_KERNEL)"
"$py" -m pytest -q -p no:cacheprovider "$@"
