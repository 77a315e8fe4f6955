#!/bin/sh
# embed suite: link a program against the *installed* vamalloc found through
# pkg-config, and check that malloc is still glibc's.
#   check_pkgconfig.sh BUILDDIR OVERRIDE PROGRAM.c CC [CC ARGS...]
# (OVERRIDE: the build's -Doverride; with true, malloc must be vamalloc's.)
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
build="$1"; override="$2"; prog="$3"; shift 3
expect=0; [ "$override" = "true" ] && expect=1
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
# check_static NAME LINK-ARGS...: build the program with the archive, check it.
check_static() {
  name="$1"; shift
  "$cc" "$@" || { echo "FAIL: $name: does not link"; fail=1; return 0; }
  if readelf -d "$tmp/prog" | grep -q 'NEEDED.*libvamalloc'; then
    echo "FAIL: $name: binary needs libvamalloc.so"; fail=1
  fi
  if [ "$override" != "true" ] &&
     nm --defined-only "$tmp/prog" | awk '$3 == "malloc" || $3 == "free"' | grep -q .; then
    echo "FAIL: $name: binary defines malloc/free"; fail=1
  fi
  nm --defined-only "$tmp/prog" | grep -q ' T vam_heap_new$' || {
    echo "FAIL: $name: vam_heap_new not linked in"; fail=1; }
  if "$tmp/prog" >"$tmp/out" 2>&1; then ran=ok; else ran=failed; fi
  sed "s/^/$name: /" "$tmp/out"
  [ "$ran" = ok ] || { echo "FAIL: $name: program failed"; fail=1; }
}
cc="$1"; shift   # the rest of "$@": the compiler's own arguments, if any
# shellcheck disable=SC2046  # word splitting of pkg-config output is wanted
check_static "archive by path" "$@" -o "$tmp/prog" -DSTATIC_PROG_OVERRIDE=$expect "$prog" \
  $(pkgc --cflags) "$libdir/libvamalloc.a" $(pkgc --libs-only-other)
# shellcheck disable=SC2046
check_static "-Bstatic" "$@" -o "$tmp/prog" -DSTATIC_PROG_OVERRIDE=$expect "$prog" \
  $(pkgc --cflags) -Wl,-Bstatic $(pkgc --libs-only-L --libs-only-l) -Wl,-Bdynamic \
  $(pkgc --libs-only-other)

# The plain recipe: report what the linker chose.
# shellcheck disable=SC2046
if "$cc" "$@" -o "$tmp/prog_plain" -DSTATIC_PROG_OVERRIDE=$expect "$prog" $(pkgc --cflags --libs --static) 2>"$tmp/plain.log"; then
  if readelf -d "$tmp/prog_plain" | grep -q 'NEEDED.*libvamalloc'; then
    echo "FAIL: plain recipe linked libvamalloc.so (which defines malloc), not the archive"
    fail=1
  else
    echo "note: plain recipe linked the archive"
    if "$tmp/prog_plain" >"$tmp/out" 2>&1; then ran=ok; else ran=failed; fi
    sed 's/^/plain: /' "$tmp/out"
    [ "$ran" = ok ] || { echo "FAIL: plain recipe: program failed"; fail=1; }
  fi
else
  echo "FAIL: plain recipe does not link:"; cat "$tmp/plain.log"; fail=1
fi
[ "$fail" = 0 ] && echo "pkg-config static linking: ok"
exit "$fail"
