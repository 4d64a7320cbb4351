/* float_bits.h: an f32's bit pattern and back, for the float conversion tests. */
#ifndef LB_TEST_FLOAT_BITS_H
#define LB_TEST_FLOAT_BITS_H

#include <stdint.h>
#include <string.h>

static inline float from_bits(uint32_t b) {
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

static inline uint32_t to_bits(float f) {
  uint32_t b;
  memcpy(&b, &f, sizeof b);
  return b;
}

#endif
