/* fp8.c: the 8-bit float formats of FP8 weights (docs/ir-ops.md "Low-bit
 * weights"), their reference conversions to and from f32.
 *
 *   e4m3: s eeee mmm, bias 7,  no infinities, s1111111 NaN, max 448   (OCP, ONNX float8e4m3fn)
 *   e5m2: s eeeee mm, bias 15, IEEE-like (inf, NaN),         max 57344 (ONNX float8e5m2)
 *
 * Decoding computes in double, where every step is exact. Encoding works on
 * the f32's bits (it runs once per weight): a value in the normal range of
 * the format keeps its exponent, rebiased, and its mantissa rounded to m bits
 * (half to even; a carry moves into the exponent, as it should); below, the
 * value in units of the smallest subnormal, an exact f32 product, is rounded
 * by nearbyintf (ties to even in the default rounding mode). */
#include <math.h>
#include <string.h>

#include "ir/ir.h"

struct fp8_layout {
  int mbits, bias;
  float max;
  uint8_t max_code;
};

static const struct fp8_layout layouts[LB_QFLOAT_COUNT] = {
    [LB_QFLOAT_E4M3] = {3, 7, 448.0f, 0x7E},
    [LB_QFLOAT_E5M2] = {2, 15, 57344.0f, 0x7B},
};

static const struct fp8_layout *layout(enum lb_qfloat f) {
  LB_ASSERT(f == LB_QFLOAT_E4M3 || f == LB_QFLOAT_E5M2);
  return &layouts[f];
}

const char *lb_qfloat_name(enum lb_qfloat f) {
  return f == LB_QFLOAT_E4M3 ? "e4m3" : f == LB_QFLOAT_E5M2 ? "e5m2" : NULL;
}

bool lb_qfloat_parse(const char *s, size_t len, enum lb_qfloat *out) {
  for (int f = LB_QFLOAT_E4M3; f < LB_QFLOAT_COUNT; f++)
    if (len == 4 && strncmp(s, lb_qfloat_name((enum lb_qfloat)f), 4) == 0) {
      *out = (enum lb_qfloat)f;
      return true;
    }
  return false;
}

float lb_fp8_max(enum lb_qfloat f) { return layout(f)->max; }

float lb_fp8_decode(uint8_t code, enum lb_qfloat f) {
  const struct fp8_layout *l = layout(f);
  int ebits = 7 - l->mbits, e = (code & 0x7F) >> l->mbits, m = code & ((1 << l->mbits) - 1);
  double sign = code & 0x80 ? -1.0 : 1.0;
  if (f == LB_QFLOAT_E4M3 && (code & 0x7F) == 0x7F) return NAN;
  if (f == LB_QFLOAT_E5M2 && e == (1 << ebits) - 1) return m ? NAN : (float)(sign * INFINITY);
  if (e == 0) return (float)(sign * ldexp(m, 1 - l->bias - l->mbits)); /* subnormal */
  return (float)(sign * ldexp(m + (1 << l->mbits), e - l->bias - l->mbits));
}

uint8_t lb_fp8_encode(float x, enum lb_qfloat f) {
  const struct fp8_layout *l = layout(f);
  if (isnan(x)) return 0x7F;
  uint32_t b;
  memcpy(&b, &x, sizeof b);
  uint8_t sign = (uint8_t)(b >> 24 & 0x80);
  uint32_t ab = b & 0x7FFFFFFF;
  float a = fabsf(x);
  if (isinf(x) && f == LB_QFLOAT_E5M2) return sign | 0x7C;
  if (a >= l->max) return sign | l->max_code; /* saturate: nothing above rounds below the largest */
  int emin = 1 - l->bias, shift = 23 - l->mbits;
  if ((int)(ab >> 23) - 127 < emin) /* a subnormal code: a multiple of 2^(emin - m), exact below */
    return sign | (uint8_t)nearbyintf(a * (float)(1 << (l->mbits - emin)));
  uint32_t r = (ab + (1u << (shift - 1)) - 1 + (ab >> shift & 1)) >> shift; /* half to even */
  return sign | (uint8_t)(r - ((uint32_t)(127 - l->bias) << l->mbits));
}
