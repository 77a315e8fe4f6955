#!/bin/sh
# embed suite: the engine tests link libvamalloc.a statically, beside libc
# malloc.  Each binary must define vam_heap_new (the archive is linked in),
# must not need libvamalloc.so, and must define none of the standard names
# (the archive exports only vam_*, so malloc stays glibc's), unless the
# build has -Doverride=true.
#   check_no_malloc.sh OVERRIDE BINARY...
set -eu
override="$1"; shift
fail=0
for exe in "$@"; do
  name=$(basename "$exe")
  syms=$(nm --defined-only "$exe")
  echo "$syms" | grep -q ' T vam_heap_new$' || {
    echo "FAIL: $name: vam_heap_new is not linked in"; fail=1; }
  if readelf -d "$exe" | grep -q 'NEEDED.*libvamalloc'; then
    echo "FAIL: $name needs libvamalloc.so"; fail=1
  fi
  std=$(echo "$syms" | awk '$3 ~ /^(malloc|free|calloc|realloc|posix_memalign|aligned_alloc|memalign|malloc_usable_size)$/ {print $3}' | tr '\n' ' ')
  if [ "$override" = "true" ]; then
    echo "$name: override build, standard names defined: $std"
  elif [ -n "$std" ]; then
    echo "FAIL: $name defines $std (would displace libc malloc)"; fail=1
  else
    echo "$name: libvamalloc.a linked statically; malloc and free stay libc's"
  fi
done
exit "$fail"
