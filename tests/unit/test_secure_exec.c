/* A secure-execution program (setuid here) ignores every VAMALLOC_*
 * variable: VAMALLOC_ON_CORRUPTION=ignore must not turn corruption checks
 * off in it, and one stderr line says what was ignored and why.
 *
 * The test copies itself, makes the copy setuid to nobody (the test runs as
 * root) and runs it with VAMALLOC_* set; the copy reports AT_SECURE and
 * the options it got.  The same copy without the setuid bit is the
 * control: there the variables apply.  Skipped (77), saying why, where a
 * setuid program cannot be made or run here: not root, no user nobody, a
 * nosuid mount, no_new_privs. */
#include <fcntl.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/auxv.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/wait.h>
#include <unistd.h>
#include "internal.h"

static int skip(const char *why) {
  printf("SKIP: %s\n", why);
  return 77;
}

/* The copy: what the allocator made of its environment. */
static int probe(void) {
  vam_free(vam_malloc(10)); /* initialised */
  printf("secure=%d on_corruption=%d stats=%d retry_max=%d\n", getauxval(AT_SECURE) != 0,
         (int)vam__options.on_corruption, (int)vam__options.stats, (int)vam__options.retry_max);
  return 0;
}

static int copy_file(const char *from, const char *to) {
  int in = open(from, O_RDONLY), out = open(to, O_WRONLY | O_CREAT | O_TRUNC, 0755);
  if (in < 0 || out < 0) return -1;
  char buf[65536];
  ssize_t n;
  while ((n = read(in, buf, sizeof buf)) > 0)
    if (write(out, buf, (size_t)n) != n) return -1;
  close(in);
  return close(out);
}

/* Run prog probe with VAMALLOC_* set; its stdout and stderr. */
static int run(const char *prog, char *out, size_t outcap, char *err, size_t errcap) {
  int po[2], pe[2];
  if (pipe(po) || pipe(pe)) return -1;
  pid_t pid = fork();
  if (pid == 0) {
    dup2(po[1], 1);
    dup2(pe[1], 2);
    char *argv[] = {(char *)prog, "probe", NULL};
    char *envp[] = {"VAMALLOC_ON_CORRUPTION=ignore", "VAMALLOC_RETRY_MAX=7",
                    "VAMALLOC_STATS=0", "PATH=/bin", NULL};
    execve(prog, argv, envp);
    _exit(127);
  }
  close(po[1]);
  close(pe[1]);
  size_t no = 0, ne = 0;
  ssize_t r;
  while (no + 1 < outcap && (r = read(po[0], out + no, outcap - 1 - no)) > 0) no += (size_t)r;
  while (ne + 1 < errcap && (r = read(pe[0], err + ne, errcap - 1 - ne)) > 0) ne += (size_t)r;
  out[no] = 0;
  err[ne] = 0;
  close(po[0]);
  close(pe[0]);
  int status = 0;
  waitpid(pid, &status, 0);
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static int lines(const char *s) {
  int n = 0;
  for (; *s; s++) n += *s == '\n';
  return n;
}

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "probe") == 0) return probe();
  if (geteuid() != 0) return skip("not root: cannot make a setuid-nobody copy");
  struct passwd *nobody = getpwnam("nobody");
  if (nobody == NULL) return skip("no user 'nobody'");
  /* Next to the build outputs, where a setuid bit would count. */
  char dir[4096];
  ssize_t n = readlink("/proc/self/exe", dir, sizeof dir - 64);
  if (n <= 0) return skip("cannot read /proc/self/exe");
  dir[n] = 0;
  char self[4096];
  memcpy(self, dir, (size_t)n + 1);
  strcpy(strrchr(dir, '/'), "/secure_exec.XXXXXX");
  if (mkdtemp(dir) == NULL) return skip("cannot make a scratch directory");
  struct statvfs fs;
  if (statvfs(dir, &fs) == 0 && (fs.f_flag & ST_NOSUID)) {
    rmdir(dir);
    return skip("the build directory is on a nosuid mount: setuid bits do nothing there");
  }
  char prog[4200];
  snprintf(prog, sizeof prog, "%s/probe", dir);
  int rc = 1;
  char out[4096], err[4096];
  if (copy_file(self, prog) != 0) {
    printf("FAIL: cannot copy %s to %s\n", self, prog);
    goto done;
  }
  /* Control: not setuid, the variables apply. */
  if (run(prog, out, sizeof out, err, sizeof err) != 0 ||
      strstr(out, "secure=0 on_corruption=2 stats=0 retry_max=7") == NULL) {
    printf("FAIL: control run (no setuid) should take the variables:\n%s%s", out, err);
    goto done;
  }
  if (chown(prog, nobody->pw_uid, nobody->pw_gid) != 0 || chmod(prog, 04755) != 0) {
    printf("FAIL: cannot make %s setuid nobody\n", prog);
    goto done;
  }
  run(prog, out, sizeof out, err, sizeof err);
  printf("setuid run: %s%s", out, err);
  if (strstr(out, "secure=0")) {
    rc = skip("the setuid copy did not run in secure-execution mode (no_new_privs?)");
    goto done;
  }
  if (strstr(out, "secure=1 on_corruption=0 stats=0 retry_max=100") == NULL) {
    printf("FAIL: a setuid program took VAMALLOC_* variables (wanted the defaults: "
           "on_corruption=0 (abort), retry_max=100)\n");
    goto done;
  }
  if (lines(err) != 1 || !strstr(err, "secure-execution") || !strstr(err, "VAMALLOC_ON_CORRUPTION") ||
      !strstr(err, "VAMALLOC_RETRY_MAX") || !strstr(err, "VAMALLOC_STATS")) {
    printf("FAIL: wanted one stderr line naming the ignored variables and why, got:\n%s", err);
    goto done;
  }
  rc = 0;
done:
  unlink(prog);
  rmdir(dir);
  return rc;
}
