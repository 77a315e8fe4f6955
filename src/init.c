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
 * getenv: options come from environ, read once. */
#include "internal.h"

vam_atomic(int) vam__init_state;
static __thread bool tls_in_init;
static bool env_was_missing;
static bool key_ready;

/* Every lock of the allocator, in the order the code takes them. */
static pthread_mutex_t *const fork_locks[] = {&vam__chunk_lock, &vam__huge_cache_lock,
                                              &vam__hint_lock, &vam__map_lock, &vam__meta_lock};
#define NFORK_LOCKS (sizeof fork_locks / sizeof fork_locks[0])

static void fork_prepare(void) {
  vam__userheap_fork_prepare(); /* heap locks come before every other lock */
  vam__heap_fork_prepare();
  for (size_t i = 0; i < NFORK_LOCKS; i++) pthread_mutex_lock(fork_locks[i]);
}

static void fork_parent(void) {
  for (size_t i = NFORK_LOCKS; i-- > 0;) pthread_mutex_unlock(fork_locks[i]);
  vam__heap_fork_parent();
  vam__userheap_fork_parent();
}

static void fork_child(void) {
  for (size_t i = NFORK_LOCKS; i-- > 0;) pthread_mutex_init(fork_locks[i], NULL);
  vam__heap_fork_child();
  vam__userheap_fork_child();
  vam__purge_fork_child();
}

static void apply_options(void) {
  vam__os_retry_max = (unsigned)vam__options.retry_max;
  vam__os_retry_delay_us = (unsigned)vam__options.retry_delay_us;
  if (vam__options.faults) vam__os_fault_spec(vam__option_str(vam__options.faults), true);
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
    vam__options_init(env);
    apply_options();
    vam__sizeclass_init();
    vam__va_init();
    key_ready = vam__heap_init() == 0;
    pthread_atfork(fork_prepare, fork_parent, fork_child);
    vam_store_release(&vam__init_state, 2);
    tls_in_init = false;
    if (env_flag(env, "VAMALLOC_HELP")) vam_options_print(2);
    return;
  }
  if (tls_in_init) return; /* recursion from our own init */
  while (vam_load_acquire(&vam__init_state) != 2) vam__os_sleep_us(100);
}

bool vam__init_key_ready(void) { return key_ready; }

__attribute__((constructor)) static void vam_constructor(void) {
  vam__ensure_init();
  if (vam__options.background) vam__purge_start_background();
  if (env_was_missing && vam__os_environ() != NULL) {
    /* Initialised before libc set up environ: read the options now. */
    env_was_missing = false;
    vam__options_init(vam__os_environ());
    apply_options();
  }
}

__attribute__((destructor)) static void vam_destructor(void) {
  if (vam__options.stats != VAM_STATS_OFF)
    vam__stats_print(2, vam__options.stats == VAM_STATS_ON_JSON ? VAM_STATS_JSON : VAM_STATS_TEXT);
}
