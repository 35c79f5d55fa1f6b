#!/usr/bin/env bash
# tests/kern_avx512_emul.sh [BUILD]: runs the kernel unit tests
# (tests/unit/test_kern.c) with kern/kern_avx512.c compiled against SIMDe's
# portable AVX-512 (Debian package libsimde-dev) and kern/kern_amx.c against
# kern/kern_amx_tiles.h's portable tile emulation (KN_EMULATE_AMX), so the
# avx512, avx512-bf16 and amx-bf16 paths are checked on CPUs without
# AVX-512 or AMX (same kernel sources as the native build). Needs `make` of
# BUILD (default build) first. Prints SKIP when SIMDe is not installed.
set -eu
root=$(cd "$(dirname "$0")/.." && pwd)
build=${1:-build}
cd "$root"
if [ ! -f /usr/include/simde/x86/avx512.h ]; then
  echo "SKIP: SIMDe not installed (apt-get install libsimde-dev)"
  exit 0
fi
make --no-print-directory BUILD="$build" "$build/tests/unit/test_kern.o" "$build/tests/lib/testlib.o" \
  "$build/tests/unit/test_clip_golden.o" "$build/libwitpipe.a" >/dev/null
out=$(mktemp -d /tmp/kern-emul.XXXXXX)
trap 'rm -rf "$out"' EXIT
# A sanitizer build's objects need the sanitizers at this compile and link too.
san=""
case "$build" in *asan*) san="-fsanitize=address,undefined -fno-omit-frame-pointer" ;; esac
flags="$san -std=c11 -D_GNU_SOURCE -O1 -g -fopenmp -Wall -Wextra -Werror -Wno-unused-parameter -I. -DKN_EMULATE_AVX512 -DKN_EMULATE_AMX"
cc $flags -c kern/kern.c -o "$out/kern.o"
cc $flags -mavx2 -mfma -mf16c -c kern/kern_avx2.c -o "$out/kern_avx2.o"
cc $flags -mavx2 -mfma -mf16c -c kern/kern_avx512.c -o "$out/kern_avx512.o"
cc $flags -c kern/kern_amx.c -o "$out/kern_amx.o"
cc $san -fopenmp -o "$out/test_kern" "$build/tests/unit/test_kern.o" "$build/tests/lib/testlib.o" \
  "$out/kern.o" "$out/kern_avx2.o" "$out/kern_avx512.o" "$out/kern_amx.o" "$build/libwitpipe.a" \
  $(pkg-config --libs cmocka sqlite3) -lm
"$out/test_kern"
# the golden CLIP checkpoints (f32, and bf16 against the accuracy rule) on
# the amx-bf16 path: the emulated tiles through the whole model
cc $san -fopenmp -o "$out/test_clip_golden" "$build/tests/unit/test_clip_golden.o" \
  "$build/tests/lib/testlib.o" "$out/kern.o" "$out/kern_avx2.o" "$out/kern_avx512.o" \
  "$out/kern_amx.o" "$build/libwitpipe.a" $(pkg-config --libs cmocka jansson) \
  $(pkg-config --libs libcurl libcrypto libutf8proc zlib sqlite3) -lm
WITPIPE_TEST_KERN_PATH=amx-bf16 "$out/test_clip_golden"
