#!/bin/sh
# Only src/os/ may call the kernel's memory calls (or syscall()) or test the
# OS macros.  override.c's shim *defines* madvise/mincore for the host, which
# is allowed: those lines are marked VAM_OVERRIDE_API.
cd "$1" || exit 1
hits=$(grep -rnE '\b(mmap|munmap|mremap|madvise|mprotect|mincore|syscall)[[:space:]]*\(|__linux__|__APPLE__' src \
        --include='*.c' --include='*.h' | grep -v '^src/os/' \
        | grep -vE '^[^:]+:[0-9]+:[[:space:]]*(/\*|\*|//)' | grep -v 'VAM_OVERRIDE_API')
if [ -n "$hits" ]; then
  echo "kernel calls or OS macros outside src/os/:"
  echo "$hits"
  exit 1
fi
echo "OS boundary clean"
