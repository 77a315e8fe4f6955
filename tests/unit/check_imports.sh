#!/bin/sh
# libvamalloc.so may import only functions that cannot allocate or recurse
# into malloc: no stdio, no getenv, no dlsym.  Any import outside this list
# fails the test, so a new dependency is a deliberate decision.
so="$1"
allowed=" _ITM_deregisterTMCloneTable _ITM_registerTMCloneTable __cxa_finalize __environ
 __errno_location __gmon_start__ __register_atfork abort close environ getpid
 memcpy memmove memset mmap mmap64 mremap munmap nanosleep open open64
 pthread_key_create pthread_mutex_init pthread_mutex_destroy pthread_mutex_lock pthread_mutex_trylock
 pthread_mutex_unlock pthread_setspecific read strchr strcpy strlen strncmp strnlen
 syscall sysconf write getrlimit getrlimit64 mprotect strcmp strstr clock_gettime
 pthread_create pthread_attr_init pthread_attr_setdetachstate pthread_attr_destroy getauxval "
# An nm that fails or prints nothing is a failure: the library maps memory,
# so mmap is always among its imports.
imports=$(nm -D --undefined-only "$so" | awk '{print $2}' | sed 's/@.*//') ||
  { echo "nm -D --undefined-only $so failed"; exit 1; }
case " $(echo $imports) " in
  *" mmap "*|*" mmap64 "*) ;;
  *) echo "nm shows no mmap import in $so (imports: $(echo $imports)): cannot check"; exit 1 ;;
esac
bad=""
for sym in $imports; do
  case "$allowed" in *" $sym "*|*" $sym
"*) ;; *) bad="$bad $sym" ;; esac
done
if [ -n "$bad" ]; then
  echo "libvamalloc.so imports functions outside the allow-list:$bad"
  exit 1
fi
echo "imports ok"
