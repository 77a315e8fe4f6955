#!/bin/sh
# Run the stress test under glibc, the peer allocators and vamalloc, to
# validate the test itself (it must pass on glibc and the peers) and to
# compare.  Usage: tests/stress/peers.sh [stress binary] [stress args...]
# Default binary: build/tests/stress/stress; default args: --short 4.
set -u
bin=${1:-build/tests/stress/stress}
[ $# -gt 0 ] && shift
[ $# -eq 0 ] && set -- --short 4
libdir=/usr/lib/x86_64-linux-gnu
status=0
run() { # name, preload, extra args
    name=$1 lib=$2; shift 2
    if [ -n "$lib" ] && [ ! -e "$lib" ]; then
        echo "== $name: skipped ($lib not found)"; return
    fi
    echo "== $name"
    if ! env ${lib:+LD_PRELOAD=$lib} "$bin" "$@"; then
        echo "== $name: FAILED"; status=1
    fi
}
run glibc    ""                               "$@" --strict-errno
run jemalloc "$libdir/libjemalloc.so.2"        "$@" --avoid-peer-bugs
run mimalloc "$libdir/libmimalloc.so.2"        "$@" --avoid-peer-bugs
run tcmalloc "$libdir/libtcmalloc_minimal.so.4" "$@" --avoid-peer-bugs
run vamalloc "${VAMALLOC_SO:-build/libvamalloc.so}" "$@" --strict-errno
exit $status
