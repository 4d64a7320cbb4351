/* test_report.c: the mixed-precision report renderers (tools/report.c) on
 * reports filled by hand.
 *
 * Text: rows and plan marks, totals computed from the layers, at most 120
 * columns and plain ASCII whatever the names and the candidate count; no plan
 * without a budget. HTML: one self-contained page whose data blob cannot be
 * broken out of by a name, with escaped names, deterministic bytes and an
 * error for an unwritable path.
 *
 * `test_tools_report --write-html DIR` writes the synthetic pages (one layer;
 * 150 layers with 200-character names and 8 candidates; hostile names) for
 * the headless-browser test (tests/cli/report_html.sh) and exits. */
#include <math.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "tools/report.h"

enum { MAX_L = 200, MAX_C = 12 };

/* A report and the storage behind it. */
struct fake {
  struct lb_report r;
  struct lb_report_layer layers[MAX_L];
  double error[MAX_L][MAX_C];
  int64_t bytes[MAX_L][MAX_C];
  char value[MAX_L][256], node[MAX_L][256];
  const char *cands[MAX_C];
  struct lb_report_point uniform[MAX_C], curve[64];
};

static const char *const CAND_NAMES[MAX_C] = {"f32", "f16", "w8", "w4g32", "w4g128", "w3g32",
                                              "w3g128", "w2g32", "w2g64", "w4g16", "w3g16", "w2g16"};
static const int CAND_BITS[MAX_C] = {32, 16, 8, 4, 4, 3, 3, 2, 2, 4, 3, 2};
static const int CAND_GROUP[MAX_C] = {0, 0, 0, 32, 128, 32, 128, 32, 64, 16, 16, 16};

/* n layers x n_cands (the first n_cands of CAND_NAMES); names of name_len
 * characters when name_len > 0; a plan (layer i at candidate 1 + i % (n_cands-1),
 * layer 0 fixed at f32) when planned. Layer 1 cannot take the last candidate. */
static void fake_fill(struct fake *fk, int n, int n_cands, int name_len, bool planned) {
  memset(fk, 0, sizeof *fk);
  for (int c = 0; c < n_cands; c++) fk->cands[c] = CAND_NAMES[c];
  int64_t total_w = 0;
  for (int i = 0; i < n; i++) {
    struct lb_report_layer *L = &fk->layers[i];
    if (name_len > 0) {
      memset(fk->value[i], 'a' + i % 26, (size_t)name_len);
      snprintf(fk->value[i] + name_len - 6, 7, "/l%04d", i % 10000);
    } else {
      snprintf(fk->value[i], sizeof fk->value[i], "blocks.%d/fc", i);
    }
    snprintf(fk->node[i], sizeof fk->node[i], "/blocks.%d/fc/MatMul", i);
    L->value = fk->value[i];
    L->node = fk->node[i];
    L->k = 64 * (1 + i % 3);
    L->n = 32;
    total_w += L->k * L->n;
    for (int c = 0; c < n_cands; c++) {
      int bits = CAND_BITS[c], g = CAND_GROUP[c];
      fk->bytes[i][c] = bits >= 16 ? L->k * L->n * bits / 8
                        : bits == 8 ? L->k * L->n + 4 * L->n
                                    : (L->k * L->n * bits + 7) / 8 + 2 * (L->k / g) * L->n;
      fk->error[i][c] = c == 0 ? 0 : 1e-4 * (i + 1) * pow(2.0, 8 - bits);
    }
    if (i == 1 && n_cands > 2) {
      fk->error[i][n_cands - 1] = NAN;
      fk->bytes[i][n_cands - 1] = 0;
    }
    L->error = fk->error[i];
    L->bytes = fk->bytes[i];
    L->choice = planned ? (i == 0 ? 0 : 1 + i % (n_cands - 1)) : -1;
    if (planned && i == 1 && L->choice == n_cands - 1) L->choice = 1;
    L->fixed = planned && i == 0;
    L->sqnr_db = planned ? (i == 0 ? INFINITY : 40.0 - i * 0.1) : NAN;
    L->max_abs = planned ? (i == 0 ? 0 : 0.01 * i) : NAN;
  }
  for (int c = 0; c < n_cands; c++) {
    double bytes = 0, err = 0;
    for (int i = 0; i < n; i++) bytes += (double)fk->bytes[i][c], err += fk->error[i][c];
    fk->uniform[c] = (struct lb_report_point){bytes * 8 / (double)total_w, err};
  }
  for (int s = 0; s < 20; s++) fk->curve[s] = (struct lb_report_point){2.5 + s * 0.3, 0.05 * pow(0.7, s)};
  fk->r = (struct lb_report){.model = "models/fake.onnx", .metric = "kl", .weight_algo = "gptq", .samples = 16,
                             .cands = fk->cands, .n_cands = n_cands, .layers = fk->layers, .n_layers = n,
                             .budget = planned ? "--target-bpw 3.5" : NULL, .budget_bpw = planned ? 3.5 : 0,
                             .curve = fk->curve, .n_curve = 20, .uniform = fk->uniform,
                             .model_error = planned ? 0.0123 : NAN, .seconds = 1.5};
}

/* The text of lb_report_text (malloc'ed). */
static char *text_of(const struct lb_report *r) {
  char *buf = NULL;
  size_t len = 0;
  FILE *f = open_memstream(&buf, &len);
  assert_non_null(f);
  lb_report_text(f, r);
  fclose(f);
  return buf;
}

static void assert_narrow_ascii(const char *text) {
  int col = 0, line = 1;
  for (const char *p = text; *p; p++) {
    if (*p == '\n') {
      col = 0;
      line++;
      continue;
    }
    if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f) fail_msg("line %d: byte 0x%02x", line, (unsigned char)*p);
    if (++col > 120) {
      const char *start = p - 120;
      fail_msg("line %d is wider than 120 columns: %.*s", line, (int)strcspn(start, "\n"), start);
    }
  }
}

/* The line of layer number `row` (1-based) in the first table, into buf. */
static void row_line(const char *text, int row, char *buf, size_t len) {
  char want[16];
  snprintf(want, sizeof want, "\n%4d ", row);
  const char *at = strstr(text, want);
  if (!at) fail_msg("no row %d in\n%s", row, text);
  size_t start = (size_t)(at - text) + 1, n = strcspn(text + start, "\n");
  assert_true(n < len);
  memcpy(buf, text + start, n);
  buf[n] = 0;
}

static void test_text_plan(void **state) {
  (void)state;
  static struct fake fk;
  fake_fill(&fk, 3, 5, 0, true); /* f32 f16 w8 w4g32 w4g128; choices f32 (fixed), f16, w8 */
  char *t = text_of(&fk.r);
  assert_narrow_ascii(t);
  char line[256];
  /* layer 1 at f32, fixed: its f32 cell marked, '!' and the plan column */
  row_line(t, 1, line, sizeof line);
  assert_non_null(strstr(line, "blocks.0/fc"));
  assert_non_null(strstr(line, "64x32"));
  assert_non_null(strstr(line, "0*"));
  assert_non_null(strstr(line, "!f32"));
  assert_non_null(strstr(line, "exact"));
  /* layer 2 cannot take w4g128: n/a; at w8 (error 1e-4 * 2) */
  row_line(t, 2, line, sizeof line);
  assert_non_null(strstr(line, "n/a"));
  assert_non_null(strstr(line, "7.81e-07 "));
  assert_non_null(strstr(line, "2.00e-04*"));
  assert_non_null(strstr(line, " w8 "));
  assert_non_null(strstr(line, "39.9"));
  /* layer 3 at w4g32 */
  row_line(t, 3, line, sizeof line);
  assert_non_null(strstr(line, "4.80e-03*"));
  assert_non_null(strstr(line, "3456"));
  /* one '*' per layer */
  int stars = 0;
  for (const char *p = t; *p; p++) stars += *p == '*';
  assert_int_equal(stars, 3 + 1 /* the legend's "* = " */);
  /* totals: f32 64x32, w8 128x32 (codes and f32 column scales), w4g32 192x32 (codes and f16 group scales) */
  int64_t bytes = 64 * 32 * 4 + (128 * 32 + 4 * 32) + (192 * 32 / 2 + 2 * 6 * 32), weights = 2048 + 4096 + 6144;
  char want[128];
  snprintf(want, sizeof want, "%.3f bits/weight, %lld bytes of weights (f32: %lld", (double)bytes * 8 / weights,
           (long long)bytes, (long long)weights * 4);
  if (!strstr(t, want)) fail_msg("no '%s' in\n%s", want, t);
  assert_non_null(strstr(t, "1 x f32, 1 x w8, 1 x w4g32"));
  assert_non_null(strstr(t, "--target-bpw 3.5"));
  assert_non_null(strstr(t, "measured on the chosen model: 0.0123"));
  snprintf(want, sizeof want, "summed single-layer kl): %.4g", 2e-4 + 3e-4 * 16);
  if (!strstr(t, want)) fail_msg("no '%s' in\n%s", want, t);
  free(t);
}

/* Exported names lose what every layer shares: a leading '/' and "_output_N". */
static void test_text_short_names(void **state) {
  (void)state;
  static struct fake fk;
  fake_fill(&fk, 2, 3, 0, true);
  fk.layers[0].value = "/blocks.0/attn/qkv/Add_output_0";
  fk.layers[1].value = "logits_output_x";
  char *t = text_of(&fk.r);
  char line[256];
  row_line(t, 1, line, sizeof line);
  assert_non_null(strstr(line, " blocks.0/attn/qkv/Add "));
  row_line(t, 2, line, sizeof line);
  assert_non_null(strstr(line, " logits_output_x "));
  free(t);
}

static void test_text_no_plan(void **state) {
  (void)state;
  static struct fake fk;
  fake_fill(&fk, 4, 5, 0, false);
  char *t = text_of(&fk.r);
  assert_narrow_ascii(t);
  assert_null(strchr(t, '*'));
  assert_null(strstr(t, "sqnr"));
  assert_non_null(strstr(t, "No plan: give a budget"));
  assert_non_null(strstr(t, "uniform: summed error"));
  free(t);
}

/* 200-character names and 12 candidates: names cut in the middle (both ends
 * kept), candidates wrapped into several tables, every line within 120. */
static void test_text_wide(void **state) {
  (void)state;
  static struct fake fk;
  fake_fill(&fk, 30, 12, 200, true);
  char *t = text_of(&fk.r);
  assert_narrow_ascii(t);
  assert_non_null(strstr(t, "/l0029"));
  assert_non_null(strstr(t, "aaaa..")); /* the start, then the cut */
  int tables = 0;
  for (const char *p = t; (p = strstr(p, "   # layer")); p++) tables++;
  assert_true(tables >= 2);
  for (int c = 0; c < 12; c++) assert_non_null(strstr(t, CAND_NAMES[c]));
  free(t);
}

static char *read_all(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char *s = malloc((size_t)n + 1);
  assert_non_null(s);
  assert_int_equal(fread(s, 1, (size_t)n, f), (size_t)n);
  s[n] = 0;
  fclose(f);
  return s;
}

static int count(const char *s, const char *sub) {
  int n = 0;
  for (const char *p = s; (p = strstr(p, sub)); p += strlen(sub)) n++;
  return n;
}

/* Hostile names: closing the script element, markup, quotes, a backslash, a
 * control character, invalid UTF-8 and a line separator. */
static const char HOSTILE_VALUE[] = "</script><script>alert(1)</script>\"q\\b\x01\xff\xe2\x80\xa8<!--";
static const char HOSTILE_NODE[] = "<img src=x onerror=alert(2)>&amp;";

static void hostile(struct fake *fk) {
  fake_fill(fk, 3, 5, 0, true);
  fk->layers[1].value = HOSTILE_VALUE;
  fk->layers[2].node = HOSTILE_NODE;
  fk->r.model = "dir/<b>model</b>.onnx";
}

static void test_html_escaping(void **state) {
  (void)state;
  static struct fake fk;
  hostile(&fk);
  char dir[] = "/tmp/lb_report_XXXXXX", path[64];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/r.html", dir);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  assert_int_equal(lb_report_html(path, &fk.r, &d), LB_OK);
  char *h = read_all(path);
  /* the data blob and the renderer are the only script elements, each closed once */
  assert_int_equal(count(h, "<script"), 2);
  assert_int_equal(count(h, "</script>"), 2);
  assert_int_equal(count(h, "<script type=\"application/json\" id=\"report-data\">"), 1);
  assert_null(strstr(h, "<img"));
  assert_null(strstr(h, "<b>"));
  assert_null(strstr(h, "<!--"));
  assert_non_null(strstr(h, "\\u003c/script\\u003e\\u003cscript\\u003ealert(1)\\u003c/script\\u003e\\\"q\\\\b\\u0001"
                            "\\ufffd\\u2028\\u003c!--\""));
  assert_non_null(strstr(h, "\\u003cimg src=x onerror=alert(2)\\u003e\\u0026amp;"));
  assert_non_null(strstr(h, "<title>lowbit analyze: dir/&lt;b&gt;model&lt;/b&gt;.onnx</title>"));
  /* nothing fetched */
  assert_null(strstr(h, "src=\"http"));
  assert_null(strstr(h, "href="));
  assert_null(strstr(h, "@import"));
  assert_null(strstr(h, "<link"));
  /* the numbers: NaN as null, +inf as "inf", the plan's choices, the budget */
  assert_non_null(strstr(h, "\"error\":[0,7.8125e-07,0.0002,0.0032,null]"));
  assert_non_null(strstr(h, "\"choice\":0,\"fixed\":true,\"sqnr_db\":\"inf\",\"max_abs\":0}"));
  assert_non_null(strstr(h, "\"budget\":\"--target-bpw 3.5\",\"budget_bpw\":3.5,\"budget_loss\":null"));
  assert_non_null(strstr(h, "document.body") ? h : NULL);
  /* the same report gives the same bytes */
  char path2[64];
  snprintf(path2, sizeof path2, "%s/r2.html", dir);
  assert_int_equal(lb_report_html(path2, &fk.r, &d), LB_OK);
  char *h2 = read_all(path2);
  assert_string_equal(h, h2);
  free(h);
  free(h2);
  remove(path);
  remove(path2);
  rmdir(dir);
  lb_diag_free(&d);
}

static void test_html_no_plan(void **state) {
  (void)state;
  static struct fake fk;
  fake_fill(&fk, 2, 5, 0, false);
  char dir[] = "/tmp/lb_report_XXXXXX", path[64];
  assert_non_null(mkdtemp(dir));
  snprintf(path, sizeof path, "%s/r.html", dir);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  assert_int_equal(lb_report_html(path, &fk.r, &d), LB_OK);
  char *h = read_all(path);
  assert_non_null(strstr(h, "\"budget\":null"));
  assert_int_equal(count(h, "\"choice\":-1"), 2);
  assert_non_null(strstr(h, "\"model_error\":null"));
  free(h);
  remove(path);
  rmdir(dir);
  lb_diag_free(&d);
}

static void test_html_unwritable(void **state) {
  (void)state;
  static struct fake fk;
  fake_fill(&fk, 1, 2, 0, true);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  assert_int_not_equal(lb_report_html("/nonexistent-dir/r.html", &fk.r, &d), LB_OK);
  assert_non_null(d.text);
  assert_non_null(strstr(d.text, "/nonexistent-dir/r.html"));
  lb_diag_free(&d);
}

/* The pages the headless-browser test renders. */
static int write_pages(const char *dir) {
  static struct fake fk;
  struct { const char *name; int n, n_cands, name_len; bool planned; } pages[] = {
      {"one", 1, 5, 0, true}, {"many", 150, 8, 200, true}, {"noplan", 5, 5, 0, false}};
  struct lb_diag d;
  lb_diag_init(&d, "test_tools_report");
  for (size_t p = 0; p < sizeof pages / sizeof *pages; p++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.html", dir, pages[p].name);
    fake_fill(&fk, pages[p].n, pages[p].n_cands, pages[p].name_len, pages[p].planned);
    if (lb_report_html(path, &fk.r, &d) != LB_OK) {
      fputs(d.text ? d.text : "error\n", stderr);
      return 1;
    }
  }
  char path[4096];
  snprintf(path, sizeof path, "%s/hostile.html", dir);
  hostile(&fk);
  if (lb_report_html(path, &fk.r, &d) != LB_OK) return 1;
  lb_diag_free(&d);
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "--write-html") == 0) return write_pages(argv[2]);
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_text_plan),      cmocka_unit_test(test_text_short_names),
      cmocka_unit_test(test_text_no_plan),
      cmocka_unit_test(test_text_wide),      cmocka_unit_test(test_html_escaping),
      cmocka_unit_test(test_html_no_plan),   cmocka_unit_test(test_html_unwritable),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
