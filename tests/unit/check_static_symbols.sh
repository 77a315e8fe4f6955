#!/bin/sh
# libvamalloc.a must define no global symbol outside the vam_ namespace, so a
# runtime can link it beside libc malloc (unless built with -Doverride=true,
# where the standard names must be there).  An nm that fails or lists none of
# the API is a failure, never a pass.
a="$1"; override="$2"
syms=$(nm -g --defined-only "$a") || { echo "nm -g --defined-only $a failed"; exit 1; }
defined=$(printf '%s\n' "$syms" | awk 'NF==3{print $3}')
for want in vam_malloc vam_free vam_realloc vam_stats_print; do
  printf '%s\n' "$defined" | grep -qx "$want" ||
    { echo "nm shows no $want in $a (nm printed $(printf '%s\n' "$defined" | grep -c .) symbols)"; exit 1; }
done
if [ "$override" = "true" ]; then
  for want in malloc free calloc realloc; do
    printf '%s\n' "$defined" | grep -qx "$want" ||
      { echo "override build: libvamalloc.a does not define $want"; exit 1; }
  done
  echo "override build: vam_* and the standard names defined"; exit 0
fi
bad=$(printf '%s\n' "$defined" | grep -v '^vam_')
if [ -n "$bad" ]; then
  echo "libvamalloc.a defines symbols outside vam_*:"; echo "$bad"; exit 1
fi
echo "libvamalloc.a exports only vam_* symbols ($(printf '%s\n' "$defined" | grep -c .) of them)"
