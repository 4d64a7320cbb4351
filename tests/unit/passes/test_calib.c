/* Unit tests for passes/calib.c (statistics, range selection) and
 * passes/calib_json.c (calibration file). Expected numbers come from
 * tests/unit/passes/calib_ref.py (numpy), pasted in. */
#include <math.h>
#include <unistd.h>

#include "helpers.h"
#include "passes/calib.h"

static void test_hist(uint64_t *h) { /* calib_ref.py test_hist() */
  for (int i = 0; i < LB_CALIB_BINS; i++)
    h[i] = i >= 1500 ? 0 : (uint64_t)floor(1000 * exp(-i / 150.0)) + (i % 7 == 0 ? 3 : 0);
  h[2000] = 2;
}

static void test_hist2(uint64_t *h) { /* calib_ref.py test_hist2() */
  for (int i = 0; i < LB_CALIB_BINS; i++)
    h[i] = (uint64_t)floor(1e5 * exp(-0.5 * (i / 200.0) * (i / 200.0))) + (i % 3 == 0);
}

#define NEAR(a, b) assert_true(fabs((a) - (double)(b)) < 1e-9 * (1 + fabs((double)(b))))

static void percentile_matches_numpy(void **state) {
  (void)state;
  static uint64_t h[LB_CALIB_BINS];
  test_hist(h);
  uint64_t total = 0;
  for (int i = 0; i < LB_CALIB_BINS; i++) total += h[i];
  assert_int_equal(total, 150489);
  NEAR(lb_hist_percentile(h, LB_CALIB_BINS, 0.01, 50), 1.04);
  NEAR(lb_hist_percentile(h, LB_CALIB_BINS, 0.01, 99), 6.95);
  NEAR(lb_hist_percentile(h, LB_CALIB_BINS, 0.01, 99.9), 11.56);
  NEAR(lb_hist_percentile(h, LB_CALIB_BINS, 0.01, 99.99), 14.71);
  NEAR(lb_hist_percentile(h, LB_CALIB_BINS, 0.01, 100), 20.01);
  test_hist2(h);
  NEAR(lb_hist_percentile(h, LB_CALIB_BINS, 0.001, 99.99), 0.785);
  memset(h, 0, sizeof h);
  NEAR(lb_hist_percentile(h, LB_CALIB_BINS, 0.01, 99), 0);
}

static void kl_matches_numpy(void **state) {
  (void)state;
  static uint64_t h[LB_CALIB_BINS];
  test_hist(h);
  NEAR(lb_hist_kl_threshold(h, LB_CALIB_BINS, 0.01, 128), 15.0);
  test_hist2(h);
  NEAR(lb_hist_kl_threshold(h, LB_CALIB_BINS, 0.001, 128), 1.022);
}

static void mse_matches_numpy(void **state) {
  (void)state;
  static uint64_t h[LB_CALIB_BINS];
  test_hist(h);
  NEAR(lb_hist_mse_threshold(h, LB_CALIB_BINS, 0.01, 127), 14.79);
  NEAR(lb_hist_mse_threshold(h, LB_CALIB_BINS, 0.01, 255), 18.25);
  test_hist2(h);
  NEAR(lb_hist_mse_threshold(h, LB_CALIB_BINS, 0.001, 127), 1.116);
}

static void qparams_match_numpy(void **state) {
  (void)state;
  float s;
  int32_t z;
  lb_calib_qparams(-1.5, 3.0, true, true, &s, &z);
  assert_float_equal(s, 0.0236220472f, 0);
  assert_int_equal(z, 0);
  lb_calib_qparams(-1.5, 3.0, false, false, &s, &z);
  assert_float_equal(s, 0.0176470596f, 0);
  assert_int_equal(z, 85);
  lb_calib_qparams(0.5, 6.0, false, false, &s, &z); /* widened to include 0 */
  assert_float_equal(s, 0.0235294122f, 0);
  assert_int_equal(z, 0);
  lb_calib_qparams(-2.0, 1.0, true, false, &s, &z);
  assert_float_equal(s, 0.0117647061f, 0);
  assert_int_equal(z, 42);
  lb_calib_qparams(-0.3, 0.7, false, true, &s, &z); /* 127.5 rounds half to even */
  assert_float_equal(s, 0.00549019594f, 0);
  assert_int_equal(z, 128);
  lb_calib_qparams(0, 0, true, true, &s, &z);
  assert_float_equal(s, 1.0f, 0);
  assert_int_equal(z, 0);
}

static void stats_accumulate_and_rebin(void **state) {
  (void)state;
  struct lb_type t = TY(F32, 2, 2);
  struct lb_calib_stat s;
  lb_calib_stat_init(&s, "v", LB_CALIB_HIST | LB_CALIB_ABSMAX_CHANNEL, &t);
  const float a[4] = {0.25f, -1.0f, 0.5f, 0.0f};
  lb_calib_stat_add(&s, a, 4);
  assert_true(s.hist_max == 1.0);
  assert_int_equal(s.hist[0], 1);                     /* 0 */
  assert_int_equal(s.hist[512], 1);                   /* 0.25 */
  assert_int_equal(s.hist[1024], 1);                  /* 0.5 */
  assert_int_equal(s.hist[LB_CALIB_BINS - 1], 1);     /* 1.0: the top edge goes to the last bin */
  const float b[4] = {3.0f, NAN, -0.75f, INFINITY};
  lb_calib_stat_add(&s, b, 4); /* 3 > 1: range doubles twice to 4, bins merge by 4 */
  assert_true(s.hist_max == 4.0);
  assert_int_equal(s.hist[0], 1);
  assert_int_equal(s.hist[128], 1);  /* 0.25 was bin 512 -> 128 */
  assert_int_equal(s.hist[256], 1);  /* 0.5: 1024 -> 256 */
  assert_int_equal(s.hist[511], 1);  /* 1.0: 2047 -> 511 */
  assert_int_equal(s.hist[384], 1);  /* 0.75 at width 4/2048 */
  assert_int_equal(s.hist[1536], 1); /* 3.0 */
  assert_int_equal(s.count, 6);
  assert_int_equal(s.nonfinite, 2);
  assert_true(s.min == -1.0 && s.max == 3.0);
  assert_float_equal(s.absmax[0], 3.0f, 0);
  assert_float_equal(s.absmax[1], 1.0f, 0);
  uint64_t total = 0;
  for (int i = 0; i < LB_CALIB_BINS; i++) total += s.hist[i];
  assert_int_equal(total, 6);
  /* ranges: minmax and a percentile clipped to the observed min/max */
  struct lb_calib_method m = {LB_CALIB_M_MINMAX, 0};
  double lo, hi;
  lb_calib_select_range(&s, &m, LB_CALIB_INT8_SYM, &lo, &hi);
  assert_true(lo == -1.0 && hi == 3.0);
  m = (struct lb_calib_method){LB_CALIB_M_PERCENTILE, 50};
  lb_calib_select_range(&s, &m, LB_CALIB_INT8_SYM, &lo, &hi);
  /* the 3rd of 6 values is in bin 256: T = 257 * width, both sides clipped to it */
  assert_true(fabs(lo + 257 * (4.0 / 2048)) < 1e-12 && fabs(hi - 257 * (4.0 / 2048)) < 1e-12);
  lb_calib_stat_free(&s);
}

static void method_parse(void **state) {
  (void)state;
  struct lb_calib_method m;
  char err[128], buf[64];
  assert_true(lb_calib_method_parse("percentile:99.99", &m, err, sizeof err));
  assert_int_equal(m.kind, LB_CALIB_M_PERCENTILE);
  lb_calib_method_format(&m, buf, sizeof buf);
  assert_string_equal(buf, "percentile:99.99");
  assert_true(lb_calib_method_parse("kl", &m, err, sizeof err) && m.kind == LB_CALIB_M_KL);
  assert_true(lb_calib_method_parse("mse", &m, err, sizeof err) && m.kind == LB_CALIB_M_MSE);
  assert_false(lb_calib_method_parse("percentile:101", &m, err, sizeof err));
  assert_false(lb_calib_method_parse("percentile:", &m, err, sizeof err));
  assert_false(lb_calib_method_parse("median", &m, err, sizeof err));
  assert_non_null(strstr(err, "unknown calibration method"));
}

static struct lb_graph *small_graph(void) {
  struct lb_graph *g = lb_graph_new("t");
  struct lb_value *x = input(g, "x", TY(F32, 2, 4));
  lb_graph_add_output(g, op1(g, LB_OP_RELU, "y", TY(F32, 2, 4), 1, x));
  return g;
}

static enum lb_status load_text(struct lb_graph *g, const char *text, struct lb_diag *d) {
  return lb_calib_load_json_text(g, text, strlen(text), "s.json", NULL, d);
}

static void json_load_attaches_qparams(void **state) {
  (void)state;
  struct lb_graph *g = small_graph();
  struct lb_diag d;
  lb_diag_init(&d, "m");
  const char *ok = "{\"format\": \"lowbit-calibration\", \"version\": 1, \"scheme\": \"uint8\", \"note\": \"\\u00e9\",\n"
                   " \"values\": {\"x\": {\"bits\": 8, \"symmetric\": false, \"scale\": 0.5, \"zero_point\": 3},\n"
                   "             \"y\": {\"bits\": 8, \"symmetric\": true, \"scale\": 2.5e-2, \"zero_point\": 128}}}";
  int32_t n = 0;
  assert_int_equal(lb_calib_load_json_text(g, ok, strlen(ok), "s.json", &n, &d), LB_OK);
  assert_int_equal(n, 2);
  struct lb_value *x = lb_graph_find_value(g, "x"), *y = lb_graph_find_value(g, "y");
  assert_non_null(x->qparams);
  assert_int_equal(x->qparams->bits, 8);
  assert_int_equal(x->qparams->axis, -1);
  assert_false(x->qparams->symmetric);
  assert_float_equal(x->qparams->scales[0], 0.5f, 0);
  assert_int_equal(x->qparams->zero_points[0], 3);
  assert_true(y->qparams->symmetric);
  assert_float_equal(y->qparams->scales[0], 0.025f, 0);
  assert_int_equal(lb_graph_verify(g, &d), LB_OK);
  lb_diag_free(&d);
  lb_graph_free(g);
}

static void json_errors(void **state) {
  (void)state;
  static const struct {
    const char *text, *msg;
  } cases[] = {
      {"", "s.json:1:1: error: malformed JSON: unexpected end of file"},
      {"{\"format\": \"lowbit-calibration\",\n \"version\": 1,,}", "s.json:2:15: error: malformed JSON: expected a string key"},
      {"{\"a\": \"x} ", "unterminated string"},
      {"[1, 2] x", "trailing characters"},
      {"{\"a\": 01}", "expected ',' or '}'"},
      {"{\"format\": \"onnx\"}", "s.json: error: not a lowbit calibration file"},
      {"{\"format\": \"lowbit-calibration\", \"version\": 2}", "unsupported \"version\""},
      {"{\"format\": \"lowbit-calibration\", \"version\": 1, \"scheme\": \"int4\", \"values\": {}}", "\"scheme\" must be"},
      {"{\"format\": \"lowbit-calibration\", \"version\": 1, \"scheme\": \"int8\", \"values\": []}", "\"values\" must be an object"},
      {"{\"format\": \"lowbit-calibration\", \"version\": 1, \"scheme\": \"int8\", \"values\": {\"x\": {\"bits\": 8, "
       "\"symmetric\": true, \"scale\": -1, \"zero_point\": 0}}}",
       "values.\"x\".scale: expected a positive finite number"},
      {"{\"format\": \"lowbit-calibration\", \"version\": 1, \"scheme\": \"int8\", \"values\": {\"x\": {\"bits\": 8, "
       "\"symmetric\": true, \"scale\": 1, \"zero_point\": 3}}}",
       "symmetric int8 scale has zero point 0"},
      {"{\"format\": \"lowbit-calibration\", \"version\": 1, \"scheme\": \"uint8\", \"values\": {\"x\": {\"bits\": 8, "
       "\"symmetric\": false, \"scale\": 1, \"zero_point\": 256}}}",
       "zero_point: expected an integer in [0, 255]"},
      {"{\"format\": \"lowbit-calibration\", \"version\": 1, \"scheme\": \"int8\", \"values\": {\"nope\": {\"bits\": 8, "
       "\"symmetric\": true, \"scale\": 1, \"zero_point\": 0}}}",
       "values.\"nope\": the model has no such value"},
      {"{\"format\": \"lowbit-calibration\", \"version\": 1, \"scheme\": \"int8\", \"values\": {\"x\": {\"bits\": 4, "
       "\"symmetric\": true, \"scale\": 1, \"zero_point\": 0}}}",
       "bits: expected 8"},
  };
  for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
    struct lb_graph *g = small_graph();
    struct lb_diag d;
    lb_diag_init(&d, "m");
    assert_int_not_equal(load_text(g, cases[i].text, &d), LB_OK);
    if (!d.text || !strstr(d.text, cases[i].msg)) {
      fprintf(stderr, "case %zu: got '%s', want '%s'\n", i, d.text ? d.text : "(null)", cases[i].msg);
      fail();
    }
    /* nothing attached on error */
    assert_null(lb_graph_find_value(g, "x")->qparams);
    lb_diag_free(&d);
    lb_graph_free(g);
  }
}

static void json_write_then_load(void **state) {
  (void)state;
  struct lb_type t = TY(F32, 2, 4);
  struct lb_calib_stat s[2];
  lb_calib_stat_init(&s[0], "x", LB_CALIB_HIST | LB_CALIB_ABSMAX_CHANNEL, &t);
  lb_calib_stat_init(&s[1], "y", LB_CALIB_HIST, &t);
  const float a[8] = {-1, 2, 0.5f, 0.25f, 3, -4, 1, 0};
  lb_calib_stat_add(&s[0], a, 8);
  lb_calib_stat_add(&s[1], a, 8);
  char path[] = "/tmp/lb_calib_test_XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  close(fd);
  struct lb_calib_file_info info = {.model = "t", .samples = 1, .method = {LB_CALIB_M_MINMAX, 0},
                                    .scheme = LB_CALIB_UINT8_ASYM};
  struct lb_diag d;
  lb_diag_init(&d, "m");
  assert_int_equal(lb_calib_write_json(path, s, 2, &info, &d), LB_OK);
  struct lb_graph *g = small_graph();
  int32_t n = 0;
  assert_int_equal(lb_calib_load_json(g, path, &n, &d), LB_OK);
  assert_int_equal(n, 2);
  /* range [-4, 3] as uint8: scale 7/255, zp round(4 / (7/255)) = round(145.71) = 146 */
  const struct lb_qparams *q = lb_graph_find_value(g, "x")->qparams;
  assert_float_equal(q->scales[0], (float)(7.0 / 255), 0);
  assert_int_equal(q->zero_points[0], 146);
  /* lb_calib_attach gives the same qparams as the round trip */
  struct lb_graph *g2 = small_graph();
  assert_int_equal(lb_calib_attach(g2, s, 2, &info, &d), LB_OK);
  assert_float_equal(lb_graph_find_value(g2, "y")->qparams->scales[0], q->scales[0], 0);
  unlink(path);
  lb_graph_free(g);
  lb_graph_free(g2);
  lb_diag_free(&d);
  lb_calib_stat_free(&s[0]);
  lb_calib_stat_free(&s[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(percentile_matches_numpy), cmocka_unit_test(kl_matches_numpy),
      cmocka_unit_test(mse_matches_numpy),        cmocka_unit_test(qparams_match_numpy),
      cmocka_unit_test(stats_accumulate_and_rebin), cmocka_unit_test(method_parse),
      cmocka_unit_test(json_load_attaches_qparams), cmocka_unit_test(json_errors),
      cmocka_unit_test(json_write_then_load),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
