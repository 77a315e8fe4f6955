/* options.c: VAMALLOC_* environment variables, driven by the one table in
 * internal.h (VAM_OPTIONS).  The same table gives the defaults, the parser,
 * the validation messages and the printed documentation.
 *
 * The environment is read once, at init, straight from environ (no getenv,
 * which is off limits after start-up); a secure-execution (setuid) program
 * ignores it (init.c).  A bad value never stops the program:
 * one stderr line names the variable, the bad value and the value used. */
#include "internal.h"

typedef struct opt_desc {
  const char *name; /* without the VAMALLOC_ prefix */
  vam_opt_type_t type;
  uint64_t def, min, max;
  const char *values; /* enum: "a|b|c" */
  const char *doc;
  size_t offset;
} opt_desc_t;

static const opt_desc_t opts[] = {
#define VAM_OPT_DESC(NAME, field, type, def, min, max, values, doc) \
  {#NAME, VAM_OPT_##type, def, min, max, values, doc, offsetof(vam_options_t, field)},
    VAM_OPTIONS(VAM_OPT_DESC)
#undef VAM_OPT_DESC
};
#define NOPTS (sizeof opts / sizeof opts[0])

vam_options_t vam__options = {
#define VAM_OPT_DEF(NAME, field, type, def, min, max, values, doc) .field = def,
    VAM_OPTIONS(VAM_OPT_DEF)
#undef VAM_OPT_DEF
};

static uint64_t *field_of(const opt_desc_t *o) {
  return (uint64_t *)((char *)&vam__options + o->offset);
}

static bool str_eq_ci(const char *a, size_t n, const char *b) {
  for (size_t i = 0; i < n; i++)
    if ((a[i] | 0x20) != (b[i] | 0x20) || b[i] == 0) return false;
  return b[n] == 0;
}

/* Index of value in "a|b|c", or -1. */
static int enum_index(const char *values, const char *v) {
  int idx = 0;
  const char *p = values;
  while (*p) {
    const char *bar = p;
    while (*bar && *bar != '|') bar++;
    if (str_eq_ci(p, (size_t)(bar - p), v)) return idx;
    idx++;
    p = *bar ? bar + 1 : bar;
  }
  return -1;
}

static bool parse_value(const opt_desc_t *o, const char *v, uint64_t *out) {
  uint64_t n;
  switch (o->type) {
    case VAM_OPT_bool:
      if (enum_index("0|false|no|off", v) >= 0) return (*out = 0, true);
      if (enum_index("1|true|yes|on", v) >= 0) return (*out = 1, true);
      return false;
    case VAM_OPT_uint:
    case VAM_OPT_size:
      if (!vam__parse_u64(v, &n, o->type == VAM_OPT_size)) return false;
      if (n < o->min || n > o->max) return false;
      *out = n;
      return true;
    case VAM_OPT_spec:
      if (vam__os_fault_spec(v, false) == EINVAL) return false;
      *out = (uint64_t)(uintptr_t)v;
      return true;
    case VAM_OPT_enum: {
      int i = enum_index(o->values, v);
      if (i < 0 && vam__parse_u64(v, &n, false) && n <= o->max) i = (int)n;
      if (i < 0) return false;
      *out = (uint64_t)i;
      return true;
    }
  }
  return false;
}

static void describe_range(vam_buf_t *b, const opt_desc_t *o) {
  switch (o->type) {
    case VAM_OPT_bool: vam__buf_str(b, "0 or 1"); break;
    case VAM_OPT_uint:
    case VAM_OPT_size:
      vam__buf_str(b, "a number in ");
      vam__buf_u64(b, o->min);
      vam__buf_str(b, "..");
      vam__buf_u64(b, o->max);
      if (o->type == VAM_OPT_size) vam__buf_str(b, " (K/M/G suffixes allowed)");
      break;
    case VAM_OPT_enum:
      vam__buf_str(b, "one of ");
      vam__buf_str(b, o->values);
      break;
    case VAM_OPT_spec:
      vam__buf_str(b, "KIND=ERRNO[:after=N][:count=N][:every=N][:rate=P][:seed=S],...");
      break;
  }
}

static void describe_value(vam_buf_t *b, const opt_desc_t *o, uint64_t v) {
  if (o->type == VAM_OPT_enum) {
    const char *p = o->values;
    for (uint64_t i = 0; i < v && *p; i++) {
      while (*p && *p != '|') p++;
      if (*p) p++;
    }
    const char *e = p;
    while (*e && *e != '|') e++;
    vam__buf_strn(b, p, (size_t)(e - p));
  } else if (o->type == VAM_OPT_spec) {
    vam__buf_str(b, v ? vam__option_str(v) : "none");
  } else {
    vam__buf_u64(b, v);
  }
}

void vam__options_init(char **env) {
  if (env == NULL) return;
  for (char **e = env; *e; e++) {
    const char *s = *e;
    if (strncmp(s, "VAMALLOC_", 9) != 0) continue;
    const char *name = s + 9;
    const char *eq = strchr(name, '=');
    if (eq == NULL) continue;
    size_t nlen = (size_t)(eq - name);
    const opt_desc_t *o = NULL;
    for (size_t i = 0; i < NOPTS; i++)
      if (strlen(opts[i].name) == nlen && strncmp(opts[i].name, name, nlen) == 0) o = &opts[i];
    vam_buf_t b;
    vam__buf_init(&b, 2);
    if (o == NULL) {
      vam__buf_str(&b, "vamalloc: unknown variable VAMALLOC_");
      vam__buf_strn(&b, name, nlen);
      vam__buf_str(&b, " ignored (VAMALLOC_HELP=1 lists the options)\n");
      vam__buf_flush(&b);
      continue;
    }
    uint64_t v;
    if (parse_value(o, eq + 1, &v)) {
      *field_of(o) = v;
      if (o->type == VAM_OPT_spec && vam__os_fault_spec(eq + 1, false) == ENOTSUP) {
        vam__buf_str(&b, "vamalloc: VAMALLOC_");
        vam__buf_str(&b, o->name);
        vam__buf_str(&b, " has no effect: this build has no fault injection "
                         "(meson -Dfault_injection=true)\n");
        vam__buf_flush(&b);
      }
      continue;
    }
    vam__buf_str(&b, "vamalloc: VAMALLOC_");
    vam__buf_str(&b, o->name);
    vam__buf_str(&b, "='");
    vam__buf_strn(&b, eq + 1, strnlen(eq + 1, 64));
    vam__buf_str(&b, "' is not ");
    describe_range(&b, o);
    vam__buf_str(&b, "; using ");
    describe_value(&b, o, *field_of(o));
    vam__buf_str(&b, "\n");
    vam__buf_flush(&b);
  }
}

/* A secure-execution program ignores every VAMALLOC_* variable (init.c):
 * one line names them and says why, when there are any. */
void vam__options_ignore(char **env) {
  vam_buf_t b;
  vam__buf_init(&b, 2);
  size_t n = 0;
  for (char **e = env; e && *e; e++) {
    if (strncmp(*e, "VAMALLOC_", 9) != 0) continue;
    if (++n > 8) { /* the line stays short; the caller's names are not trusted */
      if (n == 9) vam__buf_str(&b, ", ...");
      continue;
    }
    vam__buf_str(&b, n == 1 ? "vamalloc: secure-execution program (setuid, setgid or "
                              "capabilities): ignoring "
                            : ", ");
    for (size_t i = 0; (*e)[i] && (*e)[i] != '=' && i < 64; i++) {
      char c = (*e)[i];
      vam__buf_strn(&b, c >= 0x20 && c < 0x7f ? &c : "?", 1);
    }
  }
  if (n == 0) return;
  vam__buf_str(&b, "; the defaults apply\n");
  vam__buf_flush(&b);
}

VAM_API void vam_options_print(int fd) {
  vam_buf_t b;
  vam__buf_init(&b, fd);
  for (size_t i = 0; i < NOPTS; i++) {
    const opt_desc_t *o = &opts[i];
    vam__buf_str(&b, "VAMALLOC_");
    vam__buf_str(&b, o->name);
    vam__buf_str(&b, "\n    ");
    vam__buf_str(&b, o->doc);
    vam__buf_str(&b, "\n    values: ");
    describe_range(&b, o);
    vam__buf_str(&b, "; default: ");
    describe_value(&b, o, o->def);
    vam__buf_str(&b, "; now: ");
    describe_value(&b, o, *field_of(o));
    vam__buf_str(&b, "\n");
  }
  vam__buf_flush(&b);
}

/* The README's environment-variable table, generated from the same table so
 * the docs cannot drift (tests/unit compares them). */
void vam__options_markdown(int fd) {
  vam_buf_t b;
  vam__buf_init(&b, fd);
  vam__buf_str(&b, "| variable | values | default | meaning |\n|---|---|---|---|\n");
  for (size_t i = 0; i < NOPTS; i++) {
    const opt_desc_t *o = &opts[i];
    vam__buf_str(&b, "| `VAMALLOC_");
    vam__buf_str(&b, o->name);
    vam__buf_str(&b, "` | ");
    if (o->type == VAM_OPT_enum) {
      /* '|' would end the markdown cell */
      vam__buf_str(&b, "one of ");
      for (const char *v = o->values; *v; v++) vam__buf_str(&b, *v == '|' ? ", " : (char[2]){*v, 0});
    } else {
      describe_range(&b, o);
    }
    vam__buf_str(&b, " | ");
    describe_value(&b, o, o->def);
    vam__buf_str(&b, " | ");
    vam__buf_str(&b, o->doc);
    vam__buf_str(&b, " |\n");
  }
  vam__buf_flush(&b);
}
