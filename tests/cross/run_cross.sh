#!/bin/sh
# The cross suite: vamalloc built for aarch64 and riscv64 with Debian's
# cross compilers, and the multi-threaded stress program (content-checked)
# run under qemu-user with libvamalloc.so preloaded, plainly and in a
# 39-bit user address space (qemu -R 0x8000000000: 512 GiB, the wasmtime
# failure of why.md item 3).  Each run must show vamalloc served it (its
# exit statistics report allocations).
# usage: run_cross.sh SOURCE_DIR BUILD_DIR
set -eu
src=$1
out=$2
fail() { echo "cross: $*" >&2; exit 1; }

run_stress() { # arch, label, qemu args...
  arch=$1 label=$2
  shift 2
  log="$out/cross-$arch/stress-$label.log"
  if ! "qemu-$arch-static" "$@" -L "/usr/$arch-linux-gnu" \
      -E "LD_PRELOAD=$out/cross-$arch/libvamalloc.so" -E VAMALLOC_STATS=1 \
      "$out/cross-$arch/stress" 4 1 20000 --short --gens=2 >"$log" 2>&1; then
    tail -20 "$log" >&2
    fail "$arch ($label): the stress program failed"
  fi
  calls=$(sed -n 's/^vamalloc: *malloc_calls *\([0-9][0-9]*\).*/\1/p' "$log" | head -1)
  [ -n "$calls" ] && [ "$calls" -gt 1000 ] ||
    fail "$arch ($label): no vamalloc statistics with malloc_calls > 1000 (was it preloaded?)"
  echo "cross: $arch ($label): stress passed, malloc_calls $calls"
}

for arch in aarch64 riscv64; do
  command -v "$arch-linux-gnu-gcc" >/dev/null || fail "$arch-linux-gnu-gcc missing (tools/vamalloc deps --test)"
  command -v "qemu-$arch-static" >/dev/null || fail "qemu-$arch-static missing (tools/vamalloc deps --test)"
  b="$out/cross-$arch"
  if [ ! -f "$b/build.ninja" ]; then
    meson setup "$b" "$src" --cross-file "$src/tests/cross/$arch.ini" \
      -Dtests=false -Dbench=false -Dwerror=true >"$out/cross-$arch.setup.log" 2>&1 ||
      { tail -20 "$out/cross-$arch.setup.log" >&2; fail "$arch: meson setup failed"; }
  fi
  meson compile -C "$b" >"$out/cross-$arch.compile.log" 2>&1 ||
    { tail -30 "$out/cross-$arch.compile.log" >&2; fail "$arch: the build failed (warnings are errors)"; }
  "$arch-linux-gnu-gcc" -O2 -pthread -o "$b/stress" "$src/tests/stress/stress.c" ||
    fail "$arch: building the stress program failed"
  run_stress "$arch" "full VA"
done
# A 39-bit user address space (qemu -R: 512 GiB), found by vamalloc itself
# (no VAMALLOC_VA_BITS): the stress run, and tools/vam-budget must say so.
for arch in aarch64 riscv64; do
  run_stress "$arch" "39-bit VA" -R 0x8000000000
  bits=$("qemu-$arch-static" -R 0x8000000000 -L "/usr/$arch-linux-gnu" \
    "$out/cross-$arch/tools/vam-budget" | sed -n 's/^va_bits  *\([0-9][0-9]*\).*/\1/p')
  [ -n "$bits" ] && [ "$bits" -le 39 ] || fail "$arch (39-bit VA): vam-budget says va_bits '$bits', want <= 39"
  echo "cross: $arch (39-bit VA): the budget uses $bits bits"
done
