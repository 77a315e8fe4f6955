/* seccomp-inject: run a command with chosen system calls failing.
 *
 *   seccomp-inject [--errno NAME|NUM] [--syscall NAME]... [--advice NAME|NUM|any]...
 *                  [--every 1] [--verbose] -- CMD [ARGS...]
 *
 * Installs a seccomp BPF filter (prctl(PR_SET_NO_NEW_PRIVS), then
 * prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER)) that makes every matching call
 * return -1 with the chosen errno without reaching the kernel's handler, then
 * execs CMD.  The filter is inherited by every thread and child of CMD.
 *
 * This is stateless injection: every matching call fails, in every thread,
 * with no tracer attached, so the CPU time the program spends is its own
 * (a program that spins on the error burns a core; one that backs off does
 * not).  seccomp cannot count, so "fail every Nth call" is not possible here;
 * use strace for that, e.g. `strace -f -e inject=madvise:error=EAGAIN:when=3+3`
 * (which counts per thread).
 *
 * Defaults: --errno EAGAIN --syscall madvise --advice any.
 * --advice (repeatable) only applies to madvise (and process_madvise is not
 * matched): the call fails only when its third argument (the advice, compared
 * as a 32-bit int) is one of the values given.  Names: NORMAL RANDOM
 * SEQUENTIAL WILLNEED DONTNEED FREE REMOVE DONTFORK DOFORK MERGEABLE
 * UNMERGEABLE HUGEPAGE NOHUGEPAGE DONTDUMP DODUMP WIPEONFORK KEEPONFORK COLD
 * PAGEOUT POPULATE_READ POPULATE_WRITE, with or without the MADV_ prefix, or
 * a number.
 * --syscall (repeatable): madvise mincore mprotect mmap munmap mremap brk
 * (brk is accepted but see why.md: glibc misreads an injected brk failure).
 *
 * Exit status: CMD's (through exec), 126 when the filter cannot be installed
 * or CMD cannot be executed, 127 when CMD is not found, 2 on a usage error.
 * Linux only.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define INJ_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define INJ_ARCH AUDIT_ARCH_AARCH64
#elif defined(__riscv) && __riscv_xlen == 64
#define INJ_ARCH AUDIT_ARCH_RISCV64
#elif defined(__i386__)
#define INJ_ARCH AUDIT_ARCH_I386
#else
#error "seccomp-inject: unknown architecture"
#endif

/* The low 32 bits of a 64-bit syscall argument inside struct seccomp_data. */
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#endif

struct name_num {
  const char *name;
  long num;
};

static const struct name_num syscalls[] = {
  {"madvise", __NR_madvise},   {"mincore", __NR_mincore}, {"mprotect", __NR_mprotect},
  {"mmap", __NR_mmap},         {"munmap", __NR_munmap},   {"mremap", __NR_mremap},
#ifdef __NR_brk
  {"brk", __NR_brk},
#endif
};

static const struct name_num errnos[] = {
  {"EAGAIN", EAGAIN}, {"ENOMEM", ENOMEM}, {"EINVAL", EINVAL}, {"EPERM", EPERM},
  {"EINTR", EINTR},   {"EFAULT", EFAULT}, {"EBUSY", EBUSY},   {"EIO", EIO},
  {"ENOSYS", ENOSYS}, {"EACCES", EACCES},
};

static const struct name_num advices[] = {
  {"NORMAL", MADV_NORMAL},         {"RANDOM", MADV_RANDOM},
  {"SEQUENTIAL", MADV_SEQUENTIAL}, {"WILLNEED", MADV_WILLNEED},
  {"DONTNEED", MADV_DONTNEED},     {"FREE", 8},
  {"REMOVE", 9},                   {"DONTFORK", 10},
  {"DOFORK", 11},                  {"MERGEABLE", 12},
  {"UNMERGEABLE", 13},             {"HUGEPAGE", 14},
  {"NOHUGEPAGE", 15},              {"DONTDUMP", 16},
  {"DODUMP", 17},                  {"WIPEONFORK", 18},
  {"KEEPONFORK", 19},              {"COLD", 20},
  {"PAGEOUT", 21},                 {"POPULATE_READ", 22},
  {"POPULATE_WRITE", 23},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_SYSCALLS 8
#define MAX_ADVICES 16

static void usage(FILE *f) {
  fputs("usage: seccomp-inject [--errno NAME|NUM] [--syscall NAME]... "
        "[--advice NAME|NUM|any]... [--every 1] [--verbose] -- CMD [ARGS...]\n"
        "Every matching call fails with the errno (default: every madvise, EAGAIN).\n"
        "seccomp cannot count: for every Nth call use\n"
        "  strace -f -e inject=madvise:error=EAGAIN:when=N+N CMD\n",
        f);
}

/* Parses a non-negative decimal number; -1 when s is not one. */
static long parse_num(const char *s) {
  char *end;
  if (*s < '0' || *s > '9') return -1;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || *end) return -1;
  return v;
}

static long lookup(const struct name_num *t, size_t n, const char *s, const char *prefix) {
  size_t pl = prefix ? strlen(prefix) : 0;
  if (pl && strncasecmp(s, prefix, pl) == 0) s += pl;
  for (size_t i = 0; i < n; i++)
    if (strcasecmp(t[i].name, s) == 0) return t[i].num;
  return parse_num(s);
}

static const char *name_of(const struct name_num *t, size_t n, long v) {
  for (size_t i = 0; i < n; i++)
    if (t[i].num == v) return t[i].name;
  return "?";
}

int main(int argc, char **argv) {
  long err = EAGAIN;
  long nrs[MAX_SYSCALLS];
  size_t n_nrs = 0;
  long adv[MAX_ADVICES];
  size_t n_adv = 0;
  int any_advice = 0, verbose = 0;
  int i = 1;

  for (; i < argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      i++;
      break;
    }
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      usage(stdout);
      return 0;
    }
    if (strcmp(a, "--verbose") == 0 || strcmp(a, "-v") == 0) {
      verbose = 1;
      continue;
    }
    if (a[0] != '-') break; /* CMD without "--" */
    if (i + 1 >= argc) {
      fprintf(stderr, "seccomp-inject: %s needs a value\n", a);
      usage(stderr);
      return 2;
    }
    const char *v = argv[++i];
    if (strcmp(a, "--errno") == 0) {
      err = lookup(errnos, COUNT(errnos), v, NULL);
      if (err <= 0 || err > 4095) {
        fprintf(stderr, "seccomp-inject: unknown errno '%s'\n", v);
        return 2;
      }
    } else if (strcmp(a, "--syscall") == 0) {
      long nr = -1;
      for (size_t k = 0; k < COUNT(syscalls); k++)
        if (strcmp(syscalls[k].name, v) == 0) nr = syscalls[k].num;
      if (nr < 0) {
        fprintf(stderr, "seccomp-inject: unsupported syscall '%s'\n", v);
        return 2;
      }
      if (n_nrs == MAX_SYSCALLS) {
        fprintf(stderr, "seccomp-inject: too many --syscall\n");
        return 2;
      }
      nrs[n_nrs++] = nr;
    } else if (strcmp(a, "--advice") == 0) {
      if (strcasecmp(v, "any") == 0) {
        any_advice = 1;
        continue;
      }
      long x = lookup(advices, COUNT(advices), v, "MADV_");
      if (x < 0) {
        fprintf(stderr, "seccomp-inject: unknown advice '%s'\n", v);
        return 2;
      }
      if (n_adv == MAX_ADVICES) {
        fprintf(stderr, "seccomp-inject: too many --advice\n");
        return 2;
      }
      adv[n_adv++] = x;
    } else if (strcmp(a, "--every") == 0) {
      if (parse_num(v) != 1) {
        fprintf(stderr,
                "seccomp-inject: --every %s: seccomp is stateless and can only fail every "
                "matching call (--every 1); for every Nth call use\n"
                "  strace -f -e inject=madvise:error=EAGAIN:when=%s+%s CMD\n",
                v, v, v);
        return 2;
      }
    } else {
      fprintf(stderr, "seccomp-inject: unknown option '%s'\n", a);
      usage(stderr);
      return 2;
    }
  }
  if (i >= argc) {
    fprintf(stderr, "seccomp-inject: no command given\n");
    usage(stderr);
    return 2;
  }
  if (n_nrs == 0) nrs[n_nrs++] = __NR_madvise;
  if (any_advice) n_adv = 0;

  /* Program layout:
   *   check arch (else allow), load nr
   *   per syscall: if nr == X goto its block   (madvise block checks advice)
   *   allow
   *   madvise block: load args[2] lo; per advice: if == A goto fail; allow
   *   fail: return ERRNO|err
   * Jumps are relative and at most 255 forward, which these sizes respect. */
  struct sock_filter prog[64];
  size_t n = 0;
#define EMIT(s) (prog[n++] = (struct sock_filter)s)
  EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)));
  EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, INJ_ARCH, 1, 0));
  EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)));
  /* Dispatch: for each syscall a JEQ; madvise (if advice-filtered) jumps to
   * the advice block, others to fail. */
  size_t dispatch = n;
  n += n_nrs;
  size_t allow_at = n;
  EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  size_t advice_at = n;
  if (n_adv) {
    EMIT(BPF_STMT(BPF_LD | BPF_W | BPF_ABS, ARG_LO(2)));
    for (size_t k = 0; k < n_adv; k++) {
      /* on match jump to fail, which sits after the remaining JEQs + allow */
      unsigned char jt = (unsigned char)(n_adv - k - 1 + 1);
      EMIT(BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)adv[k], jt, 0));
    }
    EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW));
  }
  size_t fail_at = n;
  EMIT(BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ((unsigned)err & SECCOMP_RET_DATA)));
  for (size_t k = 0; k < n_nrs; k++) {
    size_t at = dispatch + k;
    size_t target = (nrs[k] == __NR_madvise && n_adv) ? advice_at : fail_at;
    prog[at] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)nrs[k],
                                            (unsigned char)(target - at - 1), 0);
  }
  (void)allow_at;
#undef EMIT

  if (verbose) {
    fprintf(stderr, "seccomp-inject: errno %s (%ld) for", name_of(errnos, COUNT(errnos), err),
            err);
    for (size_t k = 0; k < n_nrs; k++)
      fprintf(stderr, " %s", name_of(syscalls, COUNT(syscalls), nrs[k]));
    if (n_adv) {
      fprintf(stderr, ", madvise advice");
      for (size_t k = 0; k < n_adv; k++)
        fprintf(stderr, " %s(%ld)", name_of(advices, COUNT(advices), adv[k]), adv[k]);
    }
    fprintf(stderr, "; %zu BPF instructions\n", n);
  }

  struct sock_fprog fprog = {.len = (unsigned short)n, .filter = prog};
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) {
    perror("seccomp-inject: prctl(PR_SET_NO_NEW_PRIVS)");
    return 126;
  }
  if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0) != 0) {
    perror("seccomp-inject: prctl(PR_SET_SECCOMP)");
    return 126;
  }
  execvp(argv[i], &argv[i]);
  int e = errno;
  fprintf(stderr, "seccomp-inject: %s: %s\n", argv[i], strerror(e));
  return e == ENOENT ? 127 : 126;
}
