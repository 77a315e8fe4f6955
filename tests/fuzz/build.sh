#!/bin/sh
# Build the fuzz targets with clang-14 and libFuzzer:
#   tests/fuzz/build.sh [-s SRC_ROOT] OUT_DIR
# The vamalloc core (the sources meson.build lists in core_srcs, minus the
# Darwin backend) is compiled from SRC_ROOT (default: this checkout) with
# the fault-injection define, as meson builds libvamalloc_fi, plus
# ASan/UBSan and libFuzzer's coverage; each target links it.  SRC_ROOT is
# for mutation runs: a scratch copy of the tree with one line changed.
# Exit 77 (skip) when clang-14 cannot link a libFuzzer program.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
src_root=$root
if [ "${1:-}" = "-s" ]; then src_root=$(cd "$2" && pwd); shift 2; fi
out=${1:?usage: build.sh [-s SRC_ROOT] OUT_DIR}
CC=${FUZZ_CC:-clang-14}
mkdir -p "$out/obj"

if ! command -v "$CC" >/dev/null 2>&1; then
  echo "fuzz: $CC not found (apt-get install clang-14 libclang-rt-14-dev); skipping"
  exit 77
fi
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' \
  > "$out/probe.c"
if ! "$CC" -fsanitize=fuzzer "$out/probe.c" -o "$out/probe" 2> "$out/probe.log"; then
  echo "fuzz: $CC -fsanitize=fuzzer cannot link (libclang-rt-14-dev missing?); skipping"
  cat "$out/probe.log"
  exit 77
fi

san="-fsanitize=address,undefined -fno-sanitize-recover=all"
# -Werror for the targets only: a new clang warning in src/ is the clang
# build's to report (tools/vamalloc test), not a fuzz failure.
cflags="-std=gnu11 -O1 -g -fno-omit-frame-pointer -Wall -Wextra $san"
cflags="$cflags -I$src_root/include -I$src_root/src -D_GNU_SOURCE -DVAM_FAULT_INJECTION=1"
core_flags="-fsanitize=fuzzer-no-link -fvisibility=hidden -ftls-model=initial-exec"
core_flags="$core_flags -fno-builtin-malloc -fno-builtin-free -fno-builtin-calloc"
core_flags="$core_flags -fno-builtin-realloc -fno-stack-protector"

# The core's sources, as the top-level meson.build lists them.
srcs=$(grep -o "'src/[^']*\.c'" "$src_root/meson.build" | tr -d "'" |
       grep -v -e '^src/override\.c$' -e '/darwin/' | sort -u)
[ -n "$srcs" ] || { echo "fuzz: no sources found in $src_root/meson.build"; exit 1; }

objs=""
for s in $srcs; do
  o="$out/obj/$(echo "$s" | tr '/' '_' | sed 's/\.c$/.o/')"
  objs="$objs $o"
  echo "$CC $cflags $core_flags -c $src_root/$s -o $o"
done > "$out/compile.cmds"
# two at a time: the machine is shared
tr '\n' '\0' < "$out/compile.cmds" | xargs -0 -P 2 -I{} sh -c '{}'

for t in ${FUZZ_TARGETS:-fuzz_shadow fuzz_misuse}; do
  $CC $cflags -Werror -fsanitize=fuzzer "$here/$t.c" $objs -lpthread -o "$out/$t"
done
echo "fuzz: built $out/fuzz_shadow and $out/fuzz_misuse from $src_root"
