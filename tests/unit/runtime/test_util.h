/* test_util.h: tiny protobuf/byte builders shared by the runtime tests. */
#ifndef LBRT_TEST_UTIL_H
#define LBRT_TEST_UTIL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

struct buf {
  uint8_t b[4096];
  size_t n;
};

static inline void b_bytes(struct buf *b, const void *p, size_t n) {
  memcpy(b->b + b->n, p, n);
  b->n += n;
}
static inline void b_varint(struct buf *b, uint64_t v) {
  while (v >= 0x80) {
    b->b[b->n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  b->b[b->n++] = (uint8_t)v;
}
static inline void b_key(struct buf *b, unsigned field, unsigned wt) { b_varint(b, field << 3 | wt); }
static inline void b_vfield(struct buf *b, unsigned field, uint64_t v) {
  b_key(b, field, 0);
  b_varint(b, v);
}
static inline void b_lfield(struct buf *b, unsigned field, const void *p, size_t n) {
  b_key(b, field, 2);
  b_varint(b, n);
  b_bytes(b, p, n);
}

/* Deterministic xorshift for fuzz-style loops. */
static inline uint32_t t_rand(uint32_t *s) {
  *s ^= *s << 13;
  *s ^= *s >> 17;
  *s ^= *s << 5;
  return *s;
}

#endif
