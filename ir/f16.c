/* f16.c: IEEE binary16 (s eeeee mmmmmmmmmm, bias 15, max 65504), the format
 * of f16 weights (docs/ir-ops.md "Quantized matmul", F16 weights), converted
 * to and from f32.
 *
 * Decoding is exact. Encoding works on the f32's bits, as lb_fp8_encode does:
 * a value in f16's normal range keeps its exponent, rebiased, and its
 * mantissa rounded to 10 bits (half to even; a carry moves into the exponent,
 * and from the largest binade into infinity, which is IEEE's overflow); below
 * 2^-14, the value in units of 2^-24 (an exact f32 product) is rounded by
 * nearbyintf. NaN stays NaN with its sign and the top of its payload, quieted
 * (as vcvtps2ph and fcvtn do), so it can never turn into an infinity. */
#include <math.h>
#include <string.h>

#include "ir/ir.h"

float lb_f16_decode(uint16_t h) {
  uint32_t sign = (uint32_t)(h & 0x8000) << 16, e = h >> 10 & 0x1F, m = h & 0x3FF, b;
  if (e == 0x1F) {
    b = sign | 0x7F800000 | m << 13; /* inf (m = 0) or NaN, payload kept */
  } else if (e == 0) {
    float v = ldexpf((float)m, -24); /* subnormal (or zero): exact */
    return sign ? -v : v;
  } else {
    b = sign | (e + 127 - 15) << 23 | m << 13;
  }
  float f;
  memcpy(&f, &b, sizeof f);
  return f;
}

uint16_t lb_f16_encode(float x) {
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  uint16_t sign = (uint16_t)(b >> 16 & 0x8000);
  uint32_t ab = b & 0x7FFFFFFF;
  if (ab > 0x7F800000) return sign | 0x7E00 | (uint16_t)(ab >> 13 & 0x3FF); /* NaN, quiet */
  if (ab >= 0x47800000) return sign | 0x7C00; /* >= 2^16 (and inf): beyond every rounding to 65504 */
  if (ab < 0x38800000) /* below 2^-14: a multiple of 2^-24; rounding up to 2^-14 gives its code, 0x400 */
    return sign | (uint16_t)nearbyintf(fabsf(x) * 0x1p24f);
  uint32_t r = (ab + 0xFFF + (ab >> 13 & 1)) >> 13; /* half to even, the carry into the exponent */
  return sign | (uint16_t)(r - ((uint32_t)(127 - 15) << 10)); /* 65520 and up: 0x7C00, infinity */
}
