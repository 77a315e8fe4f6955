/* libc.c: the little of libc the allocator needs, written so that nothing
 * here allocates: a fixed-buffer formatter that writes with write(2), a
 * number parser, and one-line logging.  (stdio may call malloc, and getenv
 * after start-up is off limits.) */
#include <stdarg.h>
#include "internal.h"

void vam__buf_init(vam_buf_t *b, int fd) {
  b->len = 0;
  b->fd = fd;
}

void vam__buf_flush(vam_buf_t *b) {
  if (b->len) vam__os_write(b->fd, b->data, b->len);
  b->len = 0;
}

void vam__buf_strn(vam_buf_t *b, const char *s, size_t n) {
  while (n > 0) {
    if (b->len == sizeof b->data) vam__buf_flush(b);
    size_t room = sizeof b->data - b->len;
    size_t take = n < room ? n : room;
    memcpy(b->data + b->len, s, take);
    b->len += take;
    s += take;
    n -= take;
  }
}

void vam__buf_str(vam_buf_t *b, const char *s) { vam__buf_strn(b, s, strlen(s)); }

void vam__buf_u64(vam_buf_t *b, uint64_t v) {
  char tmp[24];
  size_t i = sizeof tmp;
  do {
    tmp[--i] = (char)('0' + v % 10);
    v /= 10;
  } while (v);
  vam__buf_strn(b, tmp + i, sizeof tmp - i);
}

void vam__buf_i64(vam_buf_t *b, int64_t v) {
  if (v < 0) {
    vam__buf_str(b, "-");
    vam__buf_u64(b, (uint64_t)0 - (uint64_t)v);
  } else {
    vam__buf_u64(b, (uint64_t)v);
  }
}

void vam__log(const char *first, ...) {
  vam_buf_t b;
  vam__buf_init(&b, 2);
  vam__buf_str(&b, "vamalloc: ");
  va_list ap;
  va_start(ap, first);
  for (const char *s = first; s; s = va_arg(ap, const char *)) vam__buf_str(&b, s);
  va_end(ap);
  vam__buf_str(&b, "\n");
  vam__buf_flush(&b);
}

/* Decimal, optionally with a K/M/G/T suffix (powers of 1024).  Rejects
 * empty strings, signs, junk and overflow. */
bool vam__parse_u64(const char *s, uint64_t *out, bool allow_suffix) {
  uint64_t v = 0;
  const char *p = s;
  if (*p < '0' || *p > '9') return false;
  while (*p >= '0' && *p <= '9') {
    uint64_t d = (uint64_t)(*p - '0');
    if (v > (UINT64_MAX - d) / 10) return false;
    v = v * 10 + d;
    p++;
  }
  if (allow_suffix && *p) {
    unsigned shift = 0;
    switch (*p | 0x20) {
      case 'k': shift = 10; break;
      case 'm': shift = 20; break;
      case 'g': shift = 30; break;
      case 't': shift = 40; break;
      default: return false;
    }
    p++;
    if ((*p | 0x20) == 'i') p++;
    if ((*p | 0x20) == 'b') p++;
    if (v > (UINT64_MAX >> shift)) return false;
    v <<= shift;
  }
  if (*p) return false;
  *out = v;
  return true;
}
