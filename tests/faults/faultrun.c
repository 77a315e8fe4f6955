/* faultrun: run one program, optionally under a seccomp errno filter, and
 * report how it ended and what it cost.
 *
 * Usage: faultrun [--out=FILE] [--preload=SO] [--seccomp=SYSCALL:ERRNO]... -- PROG [ARGS]
 *   --out       write the report (key=value lines, see below) to FILE
 *   --preload   set LD_PRELOAD=SO for PROG only (faultrun itself runs
 *               without it, so a broken allocator cannot break the runner)
 *   --seccomp   make every call of SYSCALL (madvise, mmap, munmap, mprotect,
 *               mincore, mremap) fail with ERRNO (EAGAIN, ENOMEM, EPERM, or
 *               a number), through a seccomp filter installed just before
 *               exec: stateless injection with no tracer, so the CPU time
 *               measured is the program's own.  May be repeated.
 *
 * faultrun is the tracee that strace starts in the external fault tests: it
 * forks PROG, waits for it with wait4 and so gets PROG's own CPU time,
 * separately from the tracer's.  It does almost nothing itself (no malloc
 * after start-up), so injected faults do not disturb it.
 *
 * Report lines: "pid=N" as soon as PROG is forked (so a harness that must
 * kill a hung run can read /proc/N first), then at the end
 *   exit=N signal=N core=0|1 utime_us=N stime_us=N maxrss_kb=N wall_us=N
 * Exit status: PROG's exit status, 128+signal if it was killed, 125 when
 * faultrun itself failed (bad usage, fork failed), 126/127 when PROG could
 * not be executed, 77 when seccomp is not supported here.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#if defined(__linux__)
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#if defined(__x86_64__)
#define FR_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define FR_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif
#endif

#define MAX_RULES 8

static struct { long nr; int err; } rules[MAX_RULES];
static int nrules;

static void usage(const char *why)
{
    fprintf(stderr, "faultrun: %s\nusage: faultrun [--out=FILE] [--preload=SO] "
            "[--seccomp=SYSCALL:ERRNO]... -- PROG [ARGS]\n", why);
    exit(125);
}

static long syscall_nr(const char *name)
{
    static const struct { const char *name; long nr; } tab[] = {
        {"madvise", SYS_madvise}, {"mmap", SYS_mmap}, {"munmap", SYS_munmap},
        {"mprotect", SYS_mprotect}, {"mincore", SYS_mincore}, {"mremap", SYS_mremap},
    };
    for (size_t i = 0; i < sizeof tab / sizeof tab[0]; i++)
        if (!strcmp(tab[i].name, name)) return tab[i].nr;
    return -1;
}

static int errno_value(const char *s)
{
    if (!strcmp(s, "EAGAIN")) return EAGAIN;
    if (!strcmp(s, "ENOMEM")) return ENOMEM;
    if (!strcmp(s, "EPERM")) return EPERM;
    if (!strcmp(s, "EINVAL")) return EINVAL;
    char *end;
    long v = strtol(s, &end, 10);
    return *end || v <= 0 || v > 4095 ? -1 : (int)v;
}

static int install_seccomp(void)
{
#if defined(__linux__) && defined(FR_AUDIT_ARCH)
    struct sock_filter f[4 + 3 * MAX_RULES + 1];
    unsigned n = 0;
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch));
    f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, FR_AUDIT_ARCH, 1, 0);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    f[n++] = (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr));
    for (int i = 0; i < nrules; i++) {
        f[n++] = (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, (unsigned)rules[i].nr, 0, 1);
        f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K,
                                              SECCOMP_RET_ERRNO | ((unsigned)rules[i].err & SECCOMP_RET_DATA));
    }
    f[n++] = (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW);
    struct sock_fprog prog = { .len = (unsigned short)n, .filter = f };
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return errno;
    if (prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) return errno;
    return 0;
#else
    return ENOSYS;
#endif
}

static long long tv_us(struct timeval tv) { return (long long)tv.tv_sec * 1000000 + tv.tv_usec; }

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

int main(int argc, char **argv)
{
    const char *out = NULL, *preload = NULL;
    int i;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--")) { i++; break; }
        if (!strncmp(a, "--out=", 6)) out = a + 6;
        else if (!strncmp(a, "--preload=", 10)) preload = a + 10;
        else if (!strncmp(a, "--seccomp=", 10)) {
            char name[32];
            const char *colon = strchr(a + 10, ':');
            if (!colon || colon - (a + 10) >= (long)sizeof name || nrules == MAX_RULES)
                usage("bad --seccomp");
            memcpy(name, a + 10, (size_t)(colon - (a + 10)));
            name[colon - (a + 10)] = 0;
            rules[nrules].nr = syscall_nr(name);
            rules[nrules].err = errno_value(colon + 1);
            if (rules[nrules].nr < 0 || rules[nrules].err < 0) usage("bad --seccomp syscall or errno");
            nrules++;
        } else usage("unknown option");
    }
    if (i >= argc) usage("no program given");
#if !(defined(__linux__) && defined(FR_AUDIT_ARCH))
    if (nrules) {
        fprintf(stderr, "faultrun: seccomp injection is not supported on this system\n");
        return 77;
    }
#endif
    int fd = -1;
    if (out) {
        fd = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
        if (fd < 0) { perror("faultrun: --out"); return 125; }
    }
    /* No core files: a crash is reported by its signal, and dumping a
     * multi-GiB address space would only slow the matrix down. */
    struct rlimit nocore = { 0, 0 };
    setrlimit(RLIMIT_CORE, &nocore);

    long long t0 = now_us();
    pid_t pid = fork();
    if (pid < 0) { perror("faultrun: fork"); return 125; }
    if (pid == 0) {
        if (fd >= 0) close(fd);
        if (preload && setenv("LD_PRELOAD", preload, 1) != 0) _exit(125);
        if (nrules) {
            int err = install_seccomp();
            if (err) {
                fprintf(stderr, "faultrun: seccomp filter refused: %s\n", strerror(err));
                _exit(77);
            }
        }
        execvp(argv[i], argv + i);
        int e = errno;
        fprintf(stderr, "faultrun: cannot execute %s: %s\n", argv[i], strerror(e));
        _exit(e == ENOENT ? 127 : 126);
    }
    if (fd >= 0) dprintf(fd, "pid=%d\n", (int)pid);
    /* A tracer or the harness may signal us; the child gets its own. */
    signal(SIGINT, SIG_IGN);
    signal(SIGTERM, SIG_IGN);
    int status = 0;
    struct rusage ru;
    memset(&ru, 0, sizeof ru);
    while (wait4(pid, &status, 0, &ru) < 0) {
        if (errno != EINTR) { perror("faultrun: wait4"); return 125; }
    }
    long long wall = now_us() - t0;
    int code = 0, sig = 0, core = 0;
    if (WIFEXITED(status)) code = WEXITSTATUS(status);
    else if (WIFSIGNALED(status)) { sig = WTERMSIG(status); core = WCOREDUMP(status) ? 1 : 0; }
    if (fd >= 0) {
        dprintf(fd, "exit=%d signal=%d core=%d utime_us=%lld stime_us=%lld maxrss_kb=%ld wall_us=%lld\n",
                code, sig, core, tv_us(ru.ru_utime), tv_us(ru.ru_stime), ru.ru_maxrss, wall);
        close(fd);
    }
    return sig ? 128 + sig : code;
}
