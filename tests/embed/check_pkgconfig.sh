#!/bin/sh
# embed suite: link a program against the *installed* vamalloc found through
# pkg-config, and check that malloc is still glibc's.
#   check_pkgconfig.sh BUILDDIR PROGRAM.c CC [CC ARGS...]
# 1. meson install --no-rebuild --destdir TMP (the layout a package gets);
# 2. the documented static recipe, which names the archive:
#      cc prog.c $(pkg-config --cflags vamalloc) \
#         $(pkg-config --variable=libdir vamalloc)/libvamalloc.a \
#         $(pkg-config --libs-only-other vamalloc)
#    must give a binary that does not need libvamalloc.so, defines no
#    malloc, and passes subproject_example/static_prog.c's checks;
# 3. the plain recipe (cc prog.c $(pkg-config --cflags --libs --static
#    vamalloc)) is reported: with libvamalloc.so installed beside the
#    archive, -lvamalloc makes the linker choose the shared object.
set -eu
build="$1"; prog="$2"; shift 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vam-pkgconfig.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM

meson install -C "$build" --no-rebuild --destdir "$tmp/root" --quiet >"$tmp/install.log" 2>&1 || {
  cat "$tmp/install.log"; echo "FAIL: meson install --destdir"; exit 1; }
pc=$(find "$tmp/root" -name vamalloc.pc | head -n 1)
[ -n "$pc" ] || { echo "FAIL: no vamalloc.pc installed"; exit 1; }
prefix=$(sed -n 's/^prefix=//p' "$pc")
# Relocate the .pc into the destdir (what PKG_CONFIG_SYSROOT_DIR would do).
PKG_CONFIG_PATH=$(dirname "$pc"); export PKG_CONFIG_PATH
pkgc() { pkg-config --define-variable=prefix="$tmp/root$prefix" "$@" vamalloc; }
echo "installed: ${pc#"$tmp/root"} (prefix $prefix)"
echo "pkg-config --cflags --libs --static: $(pkgc --cflags --libs --static)"
libdir=$(pkgc --variable=libdir)
[ -f "$libdir/libvamalloc.a" ] || { echo "FAIL: $libdir/libvamalloc.a not installed"; exit 1; }
[ -f "$tmp/root$prefix/include/vamalloc.h" ] || { echo "FAIL: vamalloc.h not installed"; exit 1; }

fail=0
# shellcheck disable=SC2046  # word splitting of pkg-config output is wanted
"$@" -o "$tmp/prog_static" "$prog" $(pkgc --cflags) "$libdir/libvamalloc.a" \
  $(pkgc --libs-only-other) || { echo "FAIL: static recipe does not link"; exit 1; }
if readelf -d "$tmp/prog_static" | grep -q 'NEEDED.*libvamalloc'; then
  echo "FAIL: static recipe: binary needs libvamalloc.so"; fail=1
fi
if nm --defined-only "$tmp/prog_static" | awk '$3 == "malloc" || $3 == "free"' | grep -q .; then
  echo "FAIL: static recipe: binary defines malloc/free"; fail=1
fi
nm --defined-only "$tmp/prog_static" | grep -q ' T vam_heap_new$' || {
  echo "FAIL: static recipe: vam_heap_new not linked in"; fail=1; }
"$tmp/prog_static" || { echo "FAIL: static recipe: program failed"; fail=1; }

# The plain recipe: report what the linker chose.
# shellcheck disable=SC2046
if "$@" -o "$tmp/prog_plain" "$prog" $(pkgc --cflags --libs --static) 2>"$tmp/plain.log"; then
  if readelf -d "$tmp/prog_plain" | grep -q 'NEEDED.*libvamalloc'; then
    echo "note: plain recipe linked libvamalloc.so (the .so overrides malloc), not the archive:"
    LD_LIBRARY_PATH="$libdir" "$tmp/prog_plain" | sed 's/^/note:   /' || true
  else
    echo "note: plain recipe linked the archive"
    "$tmp/prog_plain" || { echo "FAIL: plain recipe: program failed"; fail=1; }
  fi
else
  echo "note: plain recipe does not link:"; cat "$tmp/plain.log"
fi
[ "$fail" = 0 ] && echo "pkg-config static linking: ok"
exit "$fail"
