/* Unit tests of the IEEE half conversions (ir/f16.c) against the C
 * compiler's own _Float16 (GCC and Clang convert with round to nearest even
 * in software or with F16C): every one of the 65536 halves decoded, every
 * non-NaN half encoded back to itself, a million random f32 bit patterns and
 * the halfway points around every half encoded, and the edges by hand. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "float_bits.h"
#include "ir/ir.h"

#ifdef __FLT16_MAX__
static float ref_decode(uint16_t h) {
  _Float16 x;
  memcpy(&x, &h, sizeof x);
  return (float)x;
}

static uint16_t ref_encode(float f) {
  _Float16 x = (_Float16)f;
  uint16_t h;
  memcpy(&h, &x, sizeof h);
  return h;
}
#endif

static bool is_nan16(uint16_t h) { return (h & 0x7C00) == 0x7C00 && (h & 0x3FF); }

static void decode_all(void **state) {
  (void)state;
#ifndef __FLT16_MAX__
  skip();
#else
  for (uint32_t h = 0; h < 0x10000; h++) {
    float got = lb_f16_decode((uint16_t)h), want = ref_decode((uint16_t)h);
    if (is_nan16((uint16_t)h)) {
      /* NaN, sign and payload kept: what vcvtph2ps and fcvtl give for a quiet NaN */
      if (!isnan(got) || (signbit(got) != 0) != ((h & 0x8000) != 0) || (to_bits(got) >> 13 & 0x3FF) != (h & 0x3FF))
        fail_msg("0x%04x: got %a (bits 0x%08x), want a NaN with its payload", h, (double)got, to_bits(got));
    } else if (to_bits(got) != to_bits(want)) {
      fail_msg("0x%04x: got %a, want %a", h, (double)got, (double)want);
    }
  }
#endif
}

static void round_trip(void **state) {
  (void)state;
  for (uint32_t h = 0; h < 0x10000; h++) {
    uint16_t back = lb_f16_encode(lb_f16_decode((uint16_t)h));
    if (is_nan16((uint16_t)h)) {
      /* quieted: the payload's top bit set, the rest kept */
      if (back != (h | 0x200)) fail_msg("NaN 0x%04x came back as 0x%04x", h, back);
    } else if (back != h) {
      fail_msg("0x%04x came back as 0x%04x", h, back);
    }
  }
}

static void encode_random(void **state) {
  (void)state;
#ifndef __FLT16_MAX__
  skip();
#else
  uint64_t s = 0x9E3779B97F4A7C15ull;
  for (int i = 0; i < 1000000; i++) {
    s ^= s << 13, s ^= s >> 7, s ^= s << 17;
    uint32_t b = (uint32_t)(s >> 17);
    /* most draws in and around f16's range: exponents 100..150 */
    if (i % 4) b = (b & 0x807FFFFF) | (uint32_t)(100 + (s >> 5) % 51) << 23;
    float x = from_bits(b);
    if (isnan(x)) continue;
    uint16_t got = lb_f16_encode(x), want = ref_encode(x);
    if (got != want) fail_msg("%a (0x%08x): got 0x%04x, want 0x%04x", (double)x, b, got, want);
  }
  /* the midpoints between neighbouring halves (ties, to even) and one ulp of f32 either side */
  for (uint32_t h = 0; h < 0x7C00; h++) {
    double lo = lb_f16_decode((uint16_t)h), hi = h == 0x7BFF ? 65536.0 : lb_f16_decode((uint16_t)(h + 1));
    float mid = (float)((lo + hi) / 2); /* exact in f32 */
    float xs[3] = {mid, nextafterf(mid, 0), nextafterf(mid, INFINITY)};
    for (int k = 0; k < 3; k++)
      for (int sg = 0; sg < 2; sg++) {
        float x = sg ? -xs[k] : xs[k];
        uint16_t got = lb_f16_encode(x), want = ref_encode(x);
        if (got != want) fail_msg("%a: got 0x%04x, want 0x%04x", (double)x, got, want);
      }
  }
#endif
}

static void edges(void **state) {
  (void)state;
  assert_int_equal(lb_f16_encode(65504.0f), 0x7BFF);
  assert_int_equal(lb_f16_encode(nextafterf(65520.0f, 0)), 0x7BFF); /* below the tie: the largest */
  assert_int_equal(lb_f16_encode(65520.0f), 0x7C00);                /* the tie rounds to even: infinity */
  assert_int_equal(lb_f16_encode(-1e30f), 0xFC00);
  assert_int_equal(lb_f16_encode(INFINITY), 0x7C00);
  assert_int_equal(lb_f16_encode(-INFINITY), 0xFC00);
  assert_int_equal(lb_f16_encode(-0.0f), 0x8000);
  assert_int_equal(lb_f16_encode(0x1p-24f), 0x0001);      /* the smallest subnormal */
  assert_int_equal(lb_f16_encode(0x1p-25f), 0x0000);      /* half of it: ties to even, 0 */
  assert_int_equal(lb_f16_encode(0x1.8p-24f), 0x0002);    /* 1.5 units: to even, 2 */
  assert_int_equal(lb_f16_encode(0x1.ffcp-15f), 0x0400);  /* the largest subnormal's tie up: 2^-14 */
  assert_int_equal(lb_f16_encode(1.0f + 0x1p-11f), 0x3C00); /* 1 + half an ulp: even, 1 */
  assert_int_equal(lb_f16_encode(1.0f + 0x1.8p-10f), 0x3C02);
  /* NaN stays NaN, with its sign, even when the payload is only in f32's low bits */
  assert_int_equal(lb_f16_encode(from_bits(0x7F800001)), 0x7E00);
  assert_int_equal(lb_f16_encode(from_bits(0xFFC00000)), 0xFE00);
  assert_int_equal(lb_f16_encode(from_bits(0x7FA02000)), 0x7F01); /* signaling, payload 0x101: quiet 0x301 */
  assert_true(isinf(lb_f16_decode(0xFC00)) && lb_f16_decode(0xFC00) < 0);
  assert_true(lb_f16_decode(0x0001) == 0x1p-24f);
  assert_true(lb_f16_decode(0x7BFF) == 65504.0f);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(decode_all),
      cmocka_unit_test(round_trip),
      cmocka_unit_test(encode_random),
      cmocka_unit_test(edges),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
