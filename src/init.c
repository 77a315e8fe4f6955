/* init.c: start-up, fork safety and the exit report.
 *
 * The first call may come from the dynamic loader, from libc, from a
 * constructor or from several threads at once, so initialisation is lazy
 * and guarded by one atomic state: the first caller does it, callers on
 * other threads wait (sleeping, never spinning), and a recursive call from
 * inside initialisation (libc may allocate in pthread_key_create or
 * pthread_atfork) proceeds, because the core is usable by then.
 *
 * Nothing here allocates through libc, prints through stdio or calls
 * getenv: options come from environ, read once, and not at all in a
 * secure-execution (setuid) program, which runs on the defaults. */
#include "internal.h"

vam_atomic(int) vam__init_state;
static __thread bool tls_in_init;
static bool env_was_missing;

/* Every lock of the allocator, in the one order any path nests them (a
 * path may skip locks, never take an earlier one under a later one);
 * fork_prepare takes them all in this order:
 *   vam__pages_lock       pages.c registry; growing it reserves (-> hint)
 *   vam__stats_lock       report.c totals; sums the heaps (-> pool), slabs (-> chunk)
 *   list_lock, heap locks userheap.c (list first, fork only); allocation -> all below
 *   shared_lock, pool_lock heap.c; the shared heap allocates (-> chunk...),
 *                         a heap short of memory drains the pool (-> pool)
 *   vam__chunk_lock       chunk.c; a new chunk is reserved (-> hint) and mapped (-> map)
 *   vam__huge_cache_lock  region.c; kernel calls and map updates happen outside it
 *   vam__zero_lock        secure.c, secure build: malloc(0)'s reservation
 *                         (-> budget, hint) and its map entry (-> map)
 *   vam__map_lock         chunkmap.c; a new leaf is metadata (-> meta)
 *   vam__meta_lock        meta.c; a new region is a reservation (-> hint)
 *   vam__hint_lock        vabudget.c; VA-bits placement, the innermost
 * tests/unit/test_fork_locks.c parks a thread holding each one and forks;
 * tests/unit/test_lock_order.c reads this table and checks that the code
 * nests the locks in its order (keep one line per rank, names first).
 *
 * The malloc(0) lock is a weak reference: secure.c defines it only in the
 * secure build; where it is absent the slot is NULL and skipped. */
extern pthread_mutex_t vam__zero_lock __attribute__((weak, visibility("hidden")));
static pthread_mutex_t *const outer_locks[] = {&vam__pages_lock, &vam__stats_lock};
static pthread_mutex_t *const inner_locks[] = {&vam__chunk_lock, &vam__huge_cache_lock, &vam__zero_lock,
                                               &vam__map_lock, &vam__meta_lock, &vam__hint_lock};
#define NOUTER (sizeof outer_locks / sizeof outer_locks[0])
#define NINNER (sizeof inner_locks / sizeof inner_locks[0])

static void fork_prepare(void) {
  for (size_t i = 0; i < NOUTER; i++) pthread_mutex_lock(outer_locks[i]);
  vam__userheap_fork_prepare();
  vam__heap_fork_prepare();
  for (size_t i = 0; i < NINNER; i++)
    if (inner_locks[i]) pthread_mutex_lock(inner_locks[i]);
}

static void fork_parent(void) {
  for (size_t i = NINNER; i-- > 0;)
    if (inner_locks[i]) pthread_mutex_unlock(inner_locks[i]);
  vam__heap_fork_parent();
  vam__userheap_fork_parent();
  for (size_t i = NOUTER; i-- > 0;) pthread_mutex_unlock(outer_locks[i]);
}

static void fork_child(void) {
  for (size_t i = NINNER; i-- > 0;)
    if (inner_locks[i]) pthread_mutex_init(inner_locks[i], NULL);
  vam__heap_fork_child();
  vam__userheap_fork_child();
  for (size_t i = NOUTER; i-- > 0;) pthread_mutex_init(outer_locks[i], NULL);
  vam__pages_fork_child();
  vam__purge_fork_child();
}

static void apply_options(void) {
  vam__os_retry_max = (unsigned)vam__options.retry_max;
  vam__os_retry_delay_us = (unsigned)vam__options.retry_delay_us;
  if (vam__options.faults) vam__os_fault_spec(vam__option_str(vam__options.faults), true);
}

/* The options, from the environment unless this is a secure-execution
 * program (setuid, setgid, file capabilities): there the environment is
 * the less trusted caller's, who could turn the corruption checks off. */
static void read_options(char **env) {
  if (vam__os_secure_exec()) vam__options_ignore(env);
  else vam__options_init(env);
}

static bool env_flag(char **env, const char *name) {
  size_t n = strlen(name);
  for (char **e = env; e && *e; e++)
    if (strncmp(*e, name, n) == 0 && (*e)[n] == '=' && (*e)[n + 1] == '1') return true;
  return false;
}

void vam__init_slow(void) {
  int state = vam_load_acquire(&vam__init_state);
  if (state == 2) return;
  if (state == 0 && vam_cas_strong_acq_rel(&vam__init_state, &state, 1)) {
    tls_in_init = true;
    vam__os_init();
    char **env = vam__os_environ();
    env_was_missing = (env == NULL);
    read_options(env);
    apply_options();
    vam__sizeclass_init();
    vam__slab_keys_init();
    vam__va_init();
    vam__heap_init(); /* without a key, heaps are not handed back at thread exit */
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    vam_store_release(&vam__init_state, 2);
    tls_in_init = false;
    if (env_flag(env, "VAMALLOC_HELP") && !vam__os_secure_exec()) vam_options_print(2);
    return;
  }
  if (tls_in_init) return; /* recursion from our own init */
  while (vam_load_acquire(&vam__init_state) != 2) vam__os_sleep_us(100);
}

__attribute__((constructor)) static void vam_constructor(void) {
  vam__ensure_init();
  if (vam__options.background) vam__purge_start_background();
  if (env_was_missing && vam__os_environ() != NULL) {
    /* Initialised before libc set up environ: read the options now. */
    env_was_missing = false;
    read_options(vam__os_environ());
    apply_options();
  }
}

__attribute__((destructor)) static void vam_destructor(void) {
  if (vam__options.stats != VAM_STATS_OFF)
    vam__stats_print(2, vam__options.stats == VAM_STATS_ON_JSON ? VAM_STATS_JSON : VAM_STATS_TEXT);
}
