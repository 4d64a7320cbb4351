/* Unit tests of the 8-bit float conversions (ir/fp8.c) against fp8_ref.h,
 * which fp8_ref.py writes from the format definitions alone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "float_bits.h"
#include "ir/ir.h"

struct fp8_case {
  uint32_t x_bits;
  uint8_t code;
};
#include "fp8_ref.h"

static void check_decode(enum lb_qfloat f, const uint32_t *want) {
  for (int c = 0; c < 256; c++) {
    float got = lb_fp8_decode((uint8_t)c, f), w = from_bits(want[c]);
    if (isnan(w)) {
      if (!isnan(got)) fail_msg("%s code 0x%02x: got %g, want NaN", lb_qfloat_name(f), c, (double)got);
    } else if (to_bits(got) != want[c]) {
      fail_msg("%s code 0x%02x: got %a, want %a", lb_qfloat_name(f), c, (double)got, (double)w);
    }
  }
}

static void check_encode(enum lb_qfloat f, const struct fp8_case *cases, size_t n) {
  for (size_t i = 0; i < n; i++) {
    uint8_t got = lb_fp8_encode(from_bits(cases[i].x_bits), f);
    if (got != cases[i].code)
      fail_msg("%s encode %a: got 0x%02x, want 0x%02x", lb_qfloat_name(f), (double)from_bits(cases[i].x_bits), got,
               cases[i].code);
  }
}

static void test_decode_all_codes(void **state) {
  (void)state;
  check_decode(LB_QFLOAT_E4M3, e4m3_decode_bits);
  check_decode(LB_QFLOAT_E5M2, e5m2_decode_bits);
  /* known values: the largest, the smallest subnormal and normal, the specials */
  assert_true(lb_fp8_decode(0x7E, LB_QFLOAT_E4M3) == 448.0f);
  assert_true(lb_fp8_decode(0xFE, LB_QFLOAT_E4M3) == -448.0f);
  assert_true(lb_fp8_decode(0x01, LB_QFLOAT_E4M3) == ldexpf(1, -9));
  assert_true(lb_fp8_decode(0x08, LB_QFLOAT_E4M3) == ldexpf(1, -6));
  assert_true(lb_fp8_decode(0x38, LB_QFLOAT_E4M3) == 1.0f);
  assert_true(isnan(lb_fp8_decode(0x7F, LB_QFLOAT_E4M3)) && isnan(lb_fp8_decode(0xFF, LB_QFLOAT_E4M3)));
  assert_true(lb_fp8_decode(0x7B, LB_QFLOAT_E5M2) == 57344.0f);
  assert_true(lb_fp8_decode(0x01, LB_QFLOAT_E5M2) == ldexpf(1, -16));
  assert_true(lb_fp8_decode(0x3C, LB_QFLOAT_E5M2) == 1.0f);
  assert_true(lb_fp8_decode(0xFC, LB_QFLOAT_E5M2) == -INFINITY);
  assert_true(isnan(lb_fp8_decode(0x7D, LB_QFLOAT_E5M2)));
  assert_true(lb_fp8_max(LB_QFLOAT_E4M3) == 448.0f && lb_fp8_max(LB_QFLOAT_E5M2) == 57344.0f);
}

static void test_encode_reference(void **state) {
  (void)state;
  check_encode(LB_QFLOAT_E4M3, e4m3_encode_cases, sizeof e4m3_encode_cases / sizeof *e4m3_encode_cases);
  check_encode(LB_QFLOAT_E5M2, e5m2_encode_cases, sizeof e5m2_encode_cases / sizeof *e5m2_encode_cases);
}

/* every non-NaN code encodes back to itself (e4m3 has no -0 ambiguity: 0x80 is -0) */
static void test_roundtrip(void **state) {
  (void)state;
  for (int f = LB_QFLOAT_E4M3; f < LB_QFLOAT_COUNT; f++)
    for (int c = 0; c < 256; c++) {
      float v = lb_fp8_decode((uint8_t)c, (enum lb_qfloat)f);
      if (!isnan(v)) assert_int_equal(lb_fp8_encode(v, (enum lb_qfloat)f), c);
    }
}

/* Random f32 inputs over the whole range against nearest-value search over the
 * decoded codes (ties to the even code), as the definition says. */
static void test_encode_random(void **state) {
  (void)state;
  srand(7);
  for (int f = LB_QFLOAT_E4M3; f < LB_QFLOAT_COUNT; f++) {
    float maxv = lb_fp8_max((enum lb_qfloat)f);
    for (int i = 0; i < 200000; i++) {
      /* log-uniform magnitudes from 2^-20 to 2^17 with random signs */
      float x = ldexpf((float)rand() / (float)RAND_MAX + 1.0f, rand() % 38 - 21) * (rand() & 1 ? -1.0f : 1.0f);
      float a = fabsf(x);
      int best = 0;
      double bd = INFINITY;
      for (int c = 0; c < 128; c++) {
        float v = lb_fp8_decode((uint8_t)c, (enum lb_qfloat)f);
        if (!isfinite(v)) continue;
        double d = fabs((double)a - v);
        if (d < bd || (d == bd && c % 2 == 0)) bd = d, best = c;
      }
      if (a > maxv) best = lb_fp8_encode(maxv, (enum lb_qfloat)f);
      int want = best | (x < 0 ? 0x80 : 0);
      if (lb_fp8_encode(x, (enum lb_qfloat)f) != want)
        fail_msg("%s encode %a: got 0x%02x, want 0x%02x", lb_qfloat_name((enum lb_qfloat)f), (double)x,
                 lb_fp8_encode(x, (enum lb_qfloat)f), want);
    }
  }
}

static void test_names(void **state) {
  (void)state;
  enum lb_qfloat f;
  assert_true(lb_qfloat_parse("e5m2", 4, &f) && f == LB_QFLOAT_E5M2);
  assert_true(lb_qfloat_parse("e4m3>", 4, &f) && f == LB_QFLOAT_E4M3);
  assert_false(lb_qfloat_parse("e4m", 3, &f));
  assert_false(lb_qfloat_parse("e3m4", 4, &f));
  assert_null(lb_qfloat_name(LB_QFLOAT_NONE));
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_decode_all_codes), cmocka_unit_test(test_encode_reference),
      cmocka_unit_test(test_roundtrip),        cmocka_unit_test(test_encode_random),
      cmocka_unit_test(test_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
