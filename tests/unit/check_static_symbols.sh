#!/bin/sh
# libvamalloc.a must define no global symbol outside the vam_ namespace, so a
# runtime can link it beside libc malloc (unless built with -Doverride=true).
a="$1"; override="$2"
bad=$(nm -g --defined-only "$a" 2>/dev/null | awk 'NF==3{print $3}' | grep -v '^vam_')
if [ "$override" = "true" ]; then
  echo "override build: standard names expected"; exit 0
fi
if [ -n "$bad" ]; then
  echo "libvamalloc.a defines symbols outside vam_*:"; echo "$bad"; exit 1
fi
echo "libvamalloc.a exports only vam_* symbols"
