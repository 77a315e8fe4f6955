#!/bin/sh
# embed suite: build tests/embed/subproject_example (a project that takes
# vamalloc as a meson subproject) in a temporary copy whose
# subprojects/vamalloc is a link to this repository, then run its program.
#   check_subproject.sh SOURCE_ROOT EXAMPLE_DIR CC
# Only the example's target is compiled (libvamalloc.a and the program), so
# this takes seconds.
set -eu
root="$1"; example="$2"; compiler="$3"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/vam-subproject.XXXXXX")
trap 'rm -rf "$tmp"' EXIT INT TERM
mkdir -p "$tmp/proj/subprojects"
cp "$example"/meson.build "$example"/*.c "$tmp/proj/"
ln -s "$root" "$tmp/proj/subprojects/vamalloc"

# --force-fallback-for: use the subproject even if a vamalloc.pc is installed.
if ! CC="$compiler" meson setup "$tmp/build" "$tmp/proj" --force-fallback-for=vamalloc \
     >"$tmp/setup.log" 2>&1; then
  cat "$tmp/setup.log"; echo "FAIL: meson setup of the subproject example"; exit 1
fi
if ! grep -q "Executing subproject vamalloc" "$tmp/setup.log" ||
   ! grep -q "Dependency vamalloc found: YES" "$tmp/setup.log"; then
  cat "$tmp/setup.log"; echo "FAIL: vamalloc did not come from the subproject"; exit 1
fi
if ! meson compile -C "$tmp/build" static_prog >"$tmp/compile.log" 2>&1; then
  cat "$tmp/compile.log"; echo "FAIL: meson compile"; exit 1
fi
exe="$tmp/build/static_prog"
fail=0
if readelf -d "$exe" | grep -q 'NEEDED.*libvamalloc'; then
  echo "FAIL: the example needs libvamalloc.so (expected the static library)"; fail=1
fi
if nm --defined-only "$exe" | awk '$3 == "malloc" || $3 == "free"' | grep -q .; then
  echo "FAIL: the example defines malloc/free"; fail=1
fi
"$exe" || { echo "FAIL: the example program failed"; fail=1; }
[ "$fail" = 0 ] && echo "meson subproject: ok"
exit "$fail"
