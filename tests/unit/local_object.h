/* local_object.h: the address of an object of this executable by name,
 * from its own .symtab, so a test can reach a static of the allocator
 * linked into it (test_fork_locks.c, test_lock_order.c).  Static
 * functions: include it once per test program. */
#ifndef VAM_TEST_LOCAL_OBJECT_H
#define VAM_TEST_LOCAL_OBJECT_H
#include <elf.h>
#include <fcntl.h>
#include <link.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static uintptr_t load_base;
static int base_cb(struct dl_phdr_info *info, size_t size, void *arg) {
  (void)size;
  (void)arg;
  load_base = info->dlpi_addr; /* the first object is the executable */
  return 1;
}

/* The address of object `name` defined in source file `file` (any file
 * when NULL: a global), from this executable's .symtab, or NULL. */
static void *local_object(const char *file, const char *name) {
  int fd = open("/proc/self/exe", O_RDONLY);
  if (fd < 0) return NULL;
  struct stat st;
  void *img = fstat(fd, &st) == 0 ? mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0) : MAP_FAILED;
  close(fd);
  if (img == MAP_FAILED) return NULL;
  const ElfW(Ehdr) *eh = img;
  const ElfW(Shdr) *sh = (const ElfW(Shdr) *)((const char *)img + eh->e_shoff);
  void *found = NULL;
  dl_iterate_phdr(base_cb, NULL);
  for (unsigned i = 0; i < eh->e_shnum && !found; i++) {
    if (sh[i].sh_type != SHT_SYMTAB) continue;
    const ElfW(Sym) *sym = (const ElfW(Sym) *)((const char *)img + sh[i].sh_offset);
    const char *str = (const char *)img + sh[sh[i].sh_link].sh_offset;
    size_t n = sh[i].sh_size / sizeof *sym;
    const char *cur = "";
    for (size_t k = 0; k < n; k++) {
      const char *nm = str + sym[k].st_name;
      if (ELF64_ST_TYPE(sym[k].st_info) == STT_FILE) cur = nm;
      else if (ELF64_ST_TYPE(sym[k].st_info) == STT_OBJECT && strcmp(nm, name) == 0) {
        size_t fl = file ? strlen(file) : 0, cl = strlen(cur);
        if (file == NULL || (cl >= fl && strcmp(cur + cl - fl, file) == 0)) {
          found = (void *)(load_base + sym[k].st_value);
          break;
        }
      }
    }
  }
  munmap(img, (size_t)st.st_size);
  return found;
}

#endif
