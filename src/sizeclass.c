/* sizeclass.c: size classes and the slab length of each.
 *
 * Spacing: 8, then multiples of 16 up to 128 (the 16-byte alignment quantum
 * decides there), then 8 classes per doubling: in (2^k, 2^(k+1)] the classes
 * are 2^k + i * 2^(k-3), i = 1..8.  So for any request n > 128 the class
 * size c satisfies (c - n) / n < 1/8 (waste at most 12.5%); below 128 the
 * waste is under 16 bytes.  Every class above 8 is a multiple of 16, and a
 * slab starts on a 32 KiB unit, so every block is 16-byte aligned and blocks
 * of a power-of-two class are aligned to their size.
 *
 * Slab length: the fewest units holding 4 blocks, or 128 KiB of blocks
 * (at least one) for classes above 32 KiB, then among that and the next
 * three lengths the one wasting the smallest share of the slab's tail.  A
 * slab stays with its heap while any of its blocks is out, so big classes
 * get short slabs: peak RSS fell 13% on realloc_growth and 10% on
 * frag_rss (and rose 8% on alloc_test). */
#include "internal.h"

/* One byte per size up to VAM_FAST_MAX: malloc's fast path indexes it by
 * the size as given, with no rounding instructions. */
uint8_t vam__bin_of_small[VAM_FAST_MAX + 1];
uint8_t vam__bin_of_mid[VAM_MID_MAX / 128 + 1];
uint32_t vam__bin_size[VAM_BINS];
uint16_t vam__bin_units[VAM_BINS];
/* floor(2^40 / size) + 1.  For off < 2^22 the product's error is below
 * 2^-18, less than 1/size for every size up to 2^18: the quotient is
 * exact. */
uint64_t vam__bin_recip[VAM_BINS];
/* floor(2^64 / size) + 1, free()'s boundary multiplier (internal.h,
 * vam__slab_block_ok): size * it wraps to a small e in [1, size]. */
uint64_t vam__bin_mul[VAM_BINS];

static size_t bin_size_formula(size_t bin) {
  if (bin <= 1) return 8;
  if (bin <= 9) return 16 * (bin - 1);
  size_t j = bin - 10;
  size_t k = 7 + j / 8;
  size_t i = j % 8 + 1;
  return ((size_t)1 << k) + i * ((size_t)1 << (k - 3));
}

size_t vam__bin_of(size_t size) {
  if (size <= 8) return 1;
  if (size <= 128) return (size + 15) / 16 + 1;
  size_t k = 63 - (size_t)__builtin_clzll((unsigned long long)(size - 1)); /* 2^k < size <= 2^(k+1) */
  size_t step_shift = k - 3;
  size_t i = (size - ((size_t)1 << k) + ((size_t)1 << step_shift) - 1) >> step_shift;
  return 10 + (k - 7) * 8 + (i - 1);
}

void vam__sizeclass_init(void) {
  for (size_t b = 1; b < VAM_BINS; b++) {
    size_t bs = bin_size_formula(b);
    vam__bin_size[b] = (uint32_t)bs;
    /* Four blocks, but no more than 128 KiB of them: a slab of big blocks
     * stays with its heap while any one is out, so fewer is less kept. */
    size_t want = 4 * bs < 131072 ? 4 * bs : (bs > 131072 ? bs : 131072);
    size_t units = (want + VAM_UNIT_SIZE - 1) / VAM_UNIT_SIZE;
    if (units == 0) units = 1;
    size_t best = units;
    size_t best_waste_num = (units * VAM_UNIT_SIZE) % bs, best_den = units * VAM_UNIT_SIZE;
    /* More units only to cut a waste above 1/64: a slab of one unit has no
     * TAIL units, whose frees take a longer path (alloc.c). */
    for (size_t u = units + 1; u < units + 4 && best_waste_num * 64 > best_den; u++) {
      size_t waste = (u * VAM_UNIT_SIZE) % bs;
      /* compare waste/u*UNIT < best_waste/best_den without division */
      if (waste * best_den < best_waste_num * (u * VAM_UNIT_SIZE)) {
        best = u;
        best_waste_num = waste;
        best_den = u * VAM_UNIT_SIZE;
      }
    }
    vam__bin_units[b] = (uint16_t)best;
  }
  for (size_t b = 1; b < VAM_BINS; b++) {
    vam__bin_recip[b] = ((uint64_t)1 << 40) / vam__bin_size[b] + 1;
    size_t bs = vam__bin_size[b];
    vam__bin_mul[b] = UINT64_MAX / bs + 1 + ((bs & (bs - 1)) == 0); /* 2^64 / bs exact for powers of two */
  }
  vam__bin_size[0] = 0;
  for (size_t i = 0; i <= VAM_FAST_MAX; i++) vam__bin_of_small[i] = (uint8_t)vam__bin_of(i);
  for (size_t i = 0; i <= VAM_MID_MAX / 128; i++) vam__bin_of_mid[i] = (uint8_t)vam__bin_of(i * 128);
}
