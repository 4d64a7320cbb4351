/* Unit tests for the FP8 weight quantizer of passes/quantize.c
 * (lb_fp8_quantize_ref, schemes fp8 and fp8-e5m2) with error budgets.
 *
 * Budget per weight: half a step of the fp8 grid at the value, in units of
 * the scale: |w - scale * fp8(code)| <= scale * max(|w / scale| * 2^-(m+1),
 * 2^(emin - m - 1)) with m mantissa bits (3, 2) and emin the smallest normal
 * exponent (-6, -14); the scale is never below max|w| / 448 (57344), so
 * nothing is clipped. */
#include "helpers.h"

#include <math.h>

#include "passes/quantize.h"

static uint64_t rng = 0x9E3779B97F4A7C15ull;
static double unit_rand(void) {
  rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
  return (double)(rng >> 11) / 9007199254740992.0;
}
/* heavy-tailed weights: a gaussian, some columns scaled up, a few outliers */
static float weight(int64_t k, int64_t n) {
  double g = sqrt(-2 * log(unit_rand() + 1e-300)) * cos(6.283185307179586 * unit_rand());
  double col = n % 7 == 0 ? 30 : n % 5 == 0 ? 1e-3 : 1;
  return (float)(g * col * (k % 97 == 3 ? 20 : 1) * 0.02);
}

static void check_budget(enum lb_qfloat f, int64_t group, bool trans_b) {
  enum { K = 200, N = 48 };
  static float w[K * N], wt[N * K];
  for (int64_t k = 0; k < K; k++)
    for (int64_t n = 0; n < N; n++) w[k * N + n] = wt[n * K + k] = weight(k, n);
  int64_t gs = group ? group : K, ng = (K + gs - 1) / gs;
  uint8_t *q = malloc(K * N);
  float *s = malloc(sizeof *s * (size_t)(ng * N));
  assert_non_null(q);
  assert_non_null(s);
  lb_fp8_quantize_ref(trans_b ? wt : w, K, N, trans_b, f, group, q, s);
  int m = f == LB_QFLOAT_E4M3 ? 3 : 2, emin = f == LB_QFLOAT_E4M3 ? -6 : -14;
  double sq_err = 0, sq = 0;
  for (int64_t g = 0; g < ng; g++)
    for (int64_t n = 0; n < N; n++) {
      float sc = s[g * N + n];
      assert_true(sc > 0 && lb_quant_round_f16(sc) == sc); /* stored as f16 */
      double amax = 0, top = 0;
      for (int64_t k = g * gs; k < K && k < (g + 1) * gs; k++) {
        double x = w[k * N + n], r = (double)sc * lb_fp8_decode(q[k * N + n], f);
        double budget = sc * fmax(fabs(x / sc) * ldexp(1, -(m + 1)), ldexp(1, emin - m - 1)) * (1 + 1e-9);
        if (!(fabs(x - r) <= budget))
          fail_msg("%s group %lld: w[%lld,%lld] = %.9g -> %.9g (scale %.9g, code 0x%02x), budget %.3g",
                   lb_qfloat_name(f), (long long)group, (long long)k, (long long)n, x, r, (double)sc, q[k * N + n],
                   budget);
        sq_err += (x - r) * (x - r);
        sq += x * x;
        amax = fmax(amax, fabs(x));
        top = fmax(top, fabs(r));
      }
      /* the group's largest weight stays in range and, with a normal f16 scale
       * (at most 2^-10 above amax / max), uses the top binade of the grid */
      assert_true(amax / sc <= lb_fp8_max(f));
      if (sc >= 0x1p-14f) assert_true(amax / sc >= lb_fp8_max(f) * (1 - ldexp(1, -9)));
    }
  /* relative RMS error: about 2^-(m+1) / sqrt(3) for values spread over binades */
  double rel = sqrt(sq_err / sq);
  assert_true(rel < (f == LB_QFLOAT_E4M3 ? 0.036 : 0.072));
  assert_true(rel > (f == LB_QFLOAT_E4M3 ? 0.005 : 0.01)); /* it did quantize */
  free(q);
  free(s);
}

static void e4m3_budget(void **state) {
  (void)state;
  check_budget(LB_QFLOAT_E4M3, 0, false);
  check_budget(LB_QFLOAT_E4M3, 32, true);
  check_budget(LB_QFLOAT_E4M3, 7, false);
}

static void e5m2_budget(void **state) {
  (void)state;
  check_budget(LB_QFLOAT_E5M2, 0, true);
  check_budget(LB_QFLOAT_E5M2, 32, false);
}

/* transB gives the codes of the transpose; zero groups get scale 1 and code 0 */
static void transposed_and_zero(void **state) {
  (void)state;
  enum { K = 6, N = 3 };
  float w[K * N], wt[N * K];
  for (int k = 0; k < K; k++)
    for (int n = 0; n < N; n++) w[k * N + n] = wt[n * K + k] = n == 1 ? 0 : sinf((float)(k * N + n)) * (float)(n + 1);
  uint8_t q1[K * N], q2[K * N];
  float s1[2 * N], s2[2 * N];
  lb_fp8_quantize_ref(w, K, N, false, LB_QFLOAT_E4M3, 3, q1, s1);
  lb_fp8_quantize_ref(wt, K, N, true, LB_QFLOAT_E4M3, 3, q2, s2);
  assert_memory_equal(q1, q2, sizeof q1);
  assert_memory_equal(s1, s2, sizeof s1);
  for (int k = 0; k < K; k++) assert_int_equal(q1[k * N + 1], 0);
  assert_true(s1[1] == 1.0f && s1[N + 1] == 1.0f);
  /* e4m3's largest code of each nonzero group is +-448 (0x7E / 0xFE) */
  for (int g = 0; g < 2; g++)
    for (int n = 0; n < N; n += 2) {
      int top = 0;
      for (int k = g * 3; k < g * 3 + 3; k++) top = (q1[k * N + n] & 0x7F) > top ? q1[k * N + n] & 0x7F : top;
      assert_int_equal(top, 0x7E);
    }
}

static void scheme_names(void **state) {
  (void)state;
  enum lb_quant_scheme s;
  assert_true(lb_quant_scheme_parse("fp8", &s) && s == LB_QUANT_FP8);
  assert_int_equal(lb_quant_scheme_fp8(s), LB_QFLOAT_E4M3);
  assert_true(lb_quant_scheme_parse("fp8-e5m2", &s) && s == LB_QUANT_FP8_E5M2);
  assert_int_equal(lb_quant_scheme_fp8(s), LB_QFLOAT_E5M2);
  assert_int_equal(lb_quant_scheme_bits(s), 8);
  assert_int_equal(lb_quant_scheme_fp8(LB_QUANT_W8), LB_QFLOAT_NONE);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(e4m3_budget),
      cmocka_unit_test(e5m2_budget),
      cmocka_unit_test(transposed_and_zero),
      cmocka_unit_test(scheme_names),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
