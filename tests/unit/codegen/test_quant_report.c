/* test_quant_report.c: the --quant-report runner (codegen/quant_report.c).
 *
 * A float model with three parallel layers of x and its quantized twin:
 *   h1, h2: W8 weight-only qmatmuls whose weights are exactly representable
 *           (small integers times power-of-two column scales, inputs on a 1/4
 *           grid), so the layer is exact except for a bias offset delta the
 *           test adds: the error is delta, per row, exactly, and the SQNR is
 *           10 log10(sum x_f^2 / (samples * rows * sum delta^2)).
 *   h3:     a W8A8 static qmatmul (input scale 0.03), whose error the test
 *           computes by running both graphs through the reference evaluator.
 * h2's delta is large (worst layer, although second in graph order), h1's tiny
 * (best). The report's rows, SQNRs and max errors are checked against those
 * numbers, and both graphs must be left as they were. */
#include "cg_test.h"

#include <dirent.h>
#include <sys/stat.h>
#include <unistd.h>

#include "codegen/quant_report.h"
#include "runtime/lbrt.h"

enum { M = 4, K = 8, N = 6, SAMPLES = 3, LAYERS = 3 };

#define assert_near(got, want, tol) assert_near_at((got), (want), (tol), __LINE__)
static void assert_near_at(double got, double want, double tol, int line) {
  if (fabs(got - want) <= tol) return;
  fail_msg("line %d: got %.9g, want %.9g (tolerance %.3g)", line, got, want, tol);
}

struct fixture {
  char dir[64];                   /* temp dir: calib/ and report.md */
  char calib[96], report[96];
  float x[SAMPLES][M * K];
  int8_t wq[LAYERS][K * N];
  float scale[LAYERS][N];
  float bias[LAYERS][N];
  float delta[LAYERS][N];         /* added to the quantized model's bias */
};

static void put_floats(char **p, const float *v, int64_t n) {
  *p += sprintf(*p, "dense<[");
  for (int64_t i = 0; i < n; i++) *p += sprintf(*p, "%s%.9g", i ? ", " : "", (double)v[i]);
  *p += sprintf(*p, "]>");
}

static char *float_text(const struct fixture *fx) {
  char *text = malloc(1 << 16), *p = text;
  assert_non_null(text);
  p += sprintf(p, "graph @qr(%%x: f32[%d,%d]) -> (f32[%d,%d]) opset 17 {\n", M, K, M, N);
  for (int l = 0; l < LAYERS; l++) {
    float w[K * N];
    for (int i = 0; i < K * N; i++) w[i] = (float)fx->wq[l][i] * fx->scale[l][i % N];
    p += sprintf(p, "  %%w%d = const f32[%d,%d] ", l + 1, K, N);
    put_floats(&p, w, K * N);
    p += sprintf(p, "\n  %%b%d = const f32[%d] ", l + 1, N);
    put_floats(&p, fx->bias[l], N);
    p += sprintf(p, "\n  %%h%d = fused_matmul(%%x, %%w%d, %%b%d) {act=\"none\"} : f32[%d,%d]\n", l + 1, l + 1, l + 1, M,
                 N);
  }
  p += sprintf(p, "  %%s = add(%%h1, %%h2) : f32[%d,%d]\n  %%y = add(%%s, %%h3) : f32[%d,%d]\n  return %%y\n}\n", M, N,
               M, N);
  return text;
}

/* first_name: the name of the first qmatmul's output ("h1" normally). */
static char *quant_text(const struct fixture *fx, const char *first_name) {
  static const char *const a_quant[LAYERS] = {"none", "none", "static"};
  char *text = malloc(1 << 16), *p = text;
  assert_non_null(text);
  p += sprintf(p, "graph @qr(%%x: f32[%d,%d] q<bits=8, axis=-1, group=0, sym, scales=[0.03]>) -> (f32[%d,%d]) opset 17 {\n",
               M, K, M, N);
  const char *names[LAYERS] = {first_name, "h2", "h3"};
  for (int l = 0; l < LAYERS; l++) {
    p += sprintf(p, "  %%w%d.q = const i8[%d,%d] dense<[", l + 1, K, N);
    for (int i = 0; i < K * N; i++) p += sprintf(p, "%s%d", i ? ", " : "", fx->wq[l][i]);
    p += sprintf(p, "]> q<bits=8, axis=1, group=0, sym, scales=[");
    for (int n = 0; n < N; n++) p += sprintf(p, "%s%.9g", n ? ", " : "", (double)fx->scale[l][n]);
    float b[N];
    for (int n = 0; n < N; n++) b[n] = fx->bias[l][n] + fx->delta[l][n];
    p += sprintf(p, "]>\n  %%b%d.q = const f32[%d] ", l + 1, N);
    put_floats(&p, b, N);
    p += sprintf(p, "\n  %%%s = qmatmul(%%x, %%w%d.q, %%b%d.q) {a_quant=\"%s\", act=\"none\"} : f32[%d,%d]\n",
                 names[l], l + 1, l + 1, a_quant[l], M, N);
  }
  p += sprintf(p, "  %%s = add(%%%s, %%h2) : f32[%d,%d]\n  %%y = add(%%s, %%h3) : f32[%d,%d]\n  return %%y\n}\n",
               first_name, M, N, M, N);
  return text;
}

static struct lb_graph *parse(const char *text) {
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_graph *g = NULL;
  enum lb_status st = lb_graph_parse(text, strlen(text), "test.lbir", &g, &d);
  if (st == LB_OK) st = lb_graph_verify(g, &d);
  if (st != LB_OK) fprintf(stderr, "%s\n%s", d.text ? d.text : "", text);
  assert_int_equal(st, LB_OK);
  lb_diag_free(&d);
  return g;
}

static void make_fixture(struct fixture *fx) {
  memset(fx, 0, sizeof *fx);
  snprintf(fx->dir, sizeof fx->dir, "/tmp/lb_quant_report_XXXXXX");
  assert_non_null(mkdtemp(fx->dir));
  snprintf(fx->calib, sizeof fx->calib, "%s/calib", fx->dir);
  snprintf(fx->report, sizeof fx->report, "%s/report.md", fx->dir);
  assert_int_equal(mkdir(fx->calib, 0755), 0);
  for (int l = 0; l < LAYERS; l++) {
    for (int i = 0; i < K * N; i++) fx->wq[l][i] = (int8_t)(floor(rng_unit() * 255) - 127);
    for (int n = 0; n < N; n++) {
      fx->scale[l][n] = ldexpf(1.0f, -5 - (int)(rng_unit() * 4)); /* 2^-5 .. 2^-8 */
      fx->bias[l][n] = ldexpf((float)(floor(rng_unit() * 64) - 32), -6);
    }
  }
  /* the worst layer is h2 (|delta| = 1/2), the best h1 (1/1024) */
  for (int n = 0; n < N; n++) {
    fx->delta[0][n] = (n % 2 ? 1.0f : -1.0f) / 1024;
    fx->delta[1][n] = n % 3 ? 0.5f : -0.25f;
  }
  for (int s = 0; s < SAMPLES; s++) {
    for (int i = 0; i < M * K; i++) fx->x[s][i] = (float)(floor(rng_unit() * 33) - 16) / 4; /* [-4, 4] */
    char sdir[160], path[192];
    snprintf(sdir, sizeof sdir, "%s/s%d", fx->calib, s);
    assert_int_equal(mkdir(sdir, 0755), 0);
    snprintf(path, sizeof path, "%s/x.npy", sdir);
    struct lbrt_tensor t = {.dtype = 1 /* float */, .rank = 2, .dims = {M, K}, .data = fx->x[s],
                            .nbytes = (int64_t)sizeof fx->x[s]};
    assert_int_equal(lbrt_tensor_write(path, &t, LBRT_FORMAT_NPY, NULL, 0), LBRT_OK);
  }
}

static void remove_fixture(const struct fixture *fx) {
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf '%s'", fx->dir);
  assert_int_equal(system(cmd), 0);
}

/* Runs g on input x with the reference evaluator; copies value `name` (M x N
 * elements, f32 or i8) into out. */
static void eval_value(const struct lb_graph *g, const float *x, const char *name, void *out) {
  struct lb_diag d;
  lb_diag_init(&d, "eval");
  void **buf = calloc((size_t)g->n_values + 1, sizeof *buf);
  assert_non_null(buf);
  memcpy(buf[g->inputs[0]->id] = xalloc(lb_type_nbytes(&g->inputs[0]->type)), x, sizeof(float) * M * K);
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const struct lb_node *n = g->nodes[i];
    const void *ins[4] = {0};
    for (int32_t k = 0; k < n->n_inputs; k++) ins[k] = n->inputs[k] ? buf[n->inputs[k]->id] : NULL;
    void *outs[1] = {buf[n->outputs[0]->id] = xalloc(lb_type_nbytes(&n->outputs[0]->type))};
    assert_int_equal(lb_eval_node(g, n, ins, outs, &d), LB_OK);
  }
  const struct lb_value *v = lb_graph_find_value(g, name);
  assert_non_null(v);
  assert_int_equal(lb_shape_numel(&v->type.shape), M * N);
  memcpy(out, buf[v->id], (size_t)lb_type_nbytes(&v->type));
  for (int32_t i = 0; i < g->n_values; i++) free(buf[i]);
  free(buf);
  lb_diag_free(&d);
}

struct expect {
  double signal, noise, max_abs;
};

static struct expect expected_error(const struct fixture *fx, const struct lb_graph *f, const struct lb_graph *q,
                                    const char *name) {
  struct expect e = {0};
  for (int s = 0; s < SAMPLES; s++) {
    float yf[M * N], yq[M * N];
    eval_value(f, fx->x[s], name, yf);
    eval_value(q, fx->x[s], name, yq);
    for (int i = 0; i < M * N; i++) {
      double diff = (double)yf[i] - yq[i];
      e.signal += (double)yf[i] * yf[i];
      e.noise += diff * diff;
      if (fabs(diff) > e.max_abs) e.max_abs = fabs(diff);
    }
  }
  return e;
}

static char *read_text(const char *path) {
  FILE *f = fopen(path, "rb");
  assert_non_null(f);
  char *s = calloc(1, 1 << 16);
  assert_non_null(s);
  size_t n = fread(s, 1, (1 << 16) - 1, f);
  fclose(f);
  assert_true(n > 0);
  return s;
}

/* Splits a Markdown table row into its cells (trimmed, in place). */
static int split_row(char *line, char **cells, int max) {
  int n = 0;
  char *p = strchr(line, '|');
  while (p && n < max) {
    char *start = p + 1, *end = strchr(start, '|');
    while (end && end[-1] == '\\') end = strchr(end + 1, '|'); /* escaped */
    if (!end) break;
    *end = 0;
    while (*start == ' ') start++;
    for (char *t = end - 1; t >= start && *t == ' '; t--) *t = 0;
    cells[n++] = start;
    p = end;
  }
  return n;
}

struct progress_log {
  int64_t calls, last_done, total;
};
static void log_progress(void *ctx, int64_t done, int64_t total) {
  struct progress_log *pl = ctx;
  assert_int_equal(done, pl->calls); /* 0, 1, ..., total */
  pl->calls++;
  pl->last_done = done;
  pl->total = total;
}

static void test_report_matches_reference(void **state) {
  (void)state;
  struct fixture fx;
  make_fixture(&fx);
  char *ft = float_text(&fx), *qt = quant_text(&fx, "h1");
  struct lb_graph *f = parse(ft), *q = parse(qt);
  lb_graph_index_values(f);
  lb_graph_index_values(q);
  char *f_before = lb_graph_print_string(f, &lb_print_defaults), *q_before = lb_graph_print_string(q, &lb_print_defaults);

  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct progress_log pl = {0};
  struct lb_quant_report_options o = {.calib_dir = fx.calib, .progress = log_progress, .progress_ctx = &pl};
  enum lb_status st = lb_quant_report(f, q, &o, fx.report, &d);
  if (st != LB_OK) fprintf(stderr, "%s", d.text ? d.text : "");
  assert_int_equal(st, LB_OK);
  assert_int_equal(pl.calls, SAMPLES + 1); /* 0, then after each sample */
  assert_int_equal(pl.last_done, SAMPLES);
  assert_int_equal(pl.total, SAMPLES);

  /* neither graph changed */
  char *f_after = lb_graph_print_string(f, &lb_print_defaults), *q_after = lb_graph_print_string(q, &lb_print_defaults);
  assert_string_equal(f_before, f_after);
  assert_string_equal(q_before, q_after);

  struct expect e[LAYERS];
  const char *names[LAYERS] = {"h1", "h2", "h3"};
  for (int l = 0; l < LAYERS; l++) e[l] = expected_error(&fx, f, q, names[l]);
  /* the bias offsets are the whole error of h1 and h2, exactly */
  for (int l = 0; l < 2; l++) {
    double sum_d2 = 0, max_d = 0;
    for (int n = 0; n < N; n++) {
      sum_d2 += (double)fx.delta[l][n] * fx.delta[l][n];
      if (fabs(fx.delta[l][n]) > max_d) max_d = fabs(fx.delta[l][n]);
    }
    assert_near(e[l].noise, SAMPLES * M * sum_d2, 1e-9 * e[l].noise);
    assert_near(e[l].max_abs, max_d, 1e-12);
  }
  assert_true(e[2].noise > 0);
  struct expect ey = expected_error(&fx, f, q, "y");

  char *text = read_text(fx.report);
  assert_non_null(strstr(text, "| samples | 3 (from "));
  assert_non_null(strstr(text, "| scheme | W8 weight-only, per-channel weights: 2 layers |"));
  assert_non_null(strstr(text, "| scheme | W8A8 static, per-channel weights: 1 layer |"));

  /* model output y */
  char *out_sec = strstr(text, "## Model outputs");
  assert_non_null(out_sec);
  char *row = strstr(out_sec, "| `y` |");
  assert_non_null(row);
  char line[512];
  sscanf(row, "%511[^\n]", line);
  char *cells[16];
  assert_int_equal(split_row(line, cells, 16), 3);
  assert_near(atof(cells[1]), 10 * log10(ey.signal / ey.noise), 0.006);

  /* layers: worst first, h2 then h3 then h1 */
  double sqnr[LAYERS];
  for (int l = 0; l < LAYERS; l++) sqnr[l] = 10 * log10(e[l].signal / e[l].noise);
  assert_true(sqnr[1] < sqnr[2] && sqnr[2] < sqnr[0]);
  const int order[LAYERS] = {1, 2, 0};
  char *sec = strstr(text, "## Layers, worst first");
  assert_non_null(sec);
  char *p = strstr(sec, "|---:");
  assert_non_null(p);
  p = strchr(p, '\n') + 1;
  for (int r = 0; r < LAYERS; r++) {
    sscanf(p, "%511[^\n]", line);
    p = strchr(p, '\n') + 1;
    int nc = split_row(line, cells, 16);
    assert_int_equal(nc, 12);
    int l = order[r];
    char want[16];
    snprintf(want, sizeof want, "`%s`", names[l]);
    assert_int_equal(atoi(cells[0]), r + 1);
    assert_string_equal(cells[1], want);
    assert_near(atof(cells[10]), sqnr[l], 0.006);
    assert_near(atof(cells[11]), e[l].max_abs, 1e-3 * e[l].max_abs);
    float lo = fx.scale[l][0], hi = fx.scale[l][0];
    for (int n = 1; n < N; n++) {
      lo = fminf(lo, fx.scale[l][n]);
      hi = fmaxf(hi, fx.scale[l][n]);
    }
    assert_near(atof(cells[8]), lo, 0);
    assert_near(atof(cells[9]), hi, 0);
    if (l == 2) {
      assert_string_equal(cells[3], "W8A8 static, per-channel weights");
      assert_string_equal(cells[4], "[-3.84, 3.81]"); /* [-128, 127] * 0.03, clips x = +-4 */
      assert_string_equal(cells[5], "0.03");
      assert_string_equal(cells[6], "0");
    } else {
      assert_string_equal(cells[3], "W8 weight-only, per-channel weights");
      assert_string_equal(cells[4], "f32");
    }
  }

  free(text);
  free(f_before);
  free(f_after);
  free(q_before);
  free(q_after);
  free(ft);
  free(qt);
  lb_graph_free(f);
  lb_graph_free(q);
  lb_diag_free(&d);
  remove_fixture(&fx);
}

static void test_unmatched_layer_is_an_error(void **state) {
  (void)state;
  struct fixture fx;
  make_fixture(&fx);
  char *ft = float_text(&fx), *qt = quant_text(&fx, "h9");
  struct lb_graph *f = parse(ft), *q = parse(qt);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_quant_report_options o = {.calib_dir = fx.calib};
  assert_int_equal(lb_quant_report(f, q, &o, fx.report, &d), LB_ERR_INVALID);
  assert_non_null(d.text);
  assert_non_null(strstr(d.text, "no value \"h9\""));
  assert_int_equal(access(fx.report, F_OK), -1); /* nothing written */
  lb_diag_free(&d);
  free(ft);
  free(qt);
  lb_graph_free(f);
  lb_graph_free(q);
  remove_fixture(&fx);
}

static void test_no_samples_is_an_error(void **state) {
  (void)state;
  struct fixture fx;
  make_fixture(&fx);
  char *ft = float_text(&fx), *qt = quant_text(&fx, "h1");
  struct lb_graph *f = parse(ft), *q = parse(qt);
  char empty[128];
  snprintf(empty, sizeof empty, "%s/empty", fx.dir);
  assert_int_equal(mkdir(empty, 0755), 0);
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_quant_report_options o = {.calib_dir = empty};
  assert_int_equal(lb_quant_report(f, q, &o, fx.report, &d), LB_ERR_INVALID);
  assert_non_null(strstr(d.text, "holds no samples"));
  assert_int_equal(access(fx.report, F_OK), -1);
  lb_diag_free(&d);
  free(ft);
  free(qt);
  lb_graph_free(f);
  lb_graph_free(q);
  remove_fixture(&fx);
}

/* A qmatmul that requantizes its output to i8 (scale 0.5): the report compares
 * the dequantized values with the float model's. */
static void test_requantized_output_is_dequantized(void **state) {
  (void)state;
  struct fixture fx;
  make_fixture(&fx);
  char ft[8192], qt[8192], *p = ft;
  float w[K * N];
  for (int i = 0; i < K * N; i++) w[i] = (float)fx.wq[0][i] * fx.scale[0][i % N];
  p += sprintf(p, "graph @rq(%%x: f32[%d,%d]) -> (f32[%d,%d]) opset 17 {\n  %%w = const f32[%d,%d] ", M, K, M, N, K, N);
  put_floats(&p, w, K * N);
  p += sprintf(p, "\n  %%h = fused_matmul(%%x, %%w) {act=\"none\"} : f32[%d,%d]\n  return %%h\n}\n", M, N);
  p = qt;
  const char *yq = "q<bits=8, axis=-1, group=0, sym, scales=[0.5]>";
  p += sprintf(p, "graph @rq(%%x: f32[%d,%d] q<bits=8, axis=-1, group=0, sym, scales=[0.03]>) -> (i8[%d,%d]) "
               "opset 17 {\n  %%w.q = const i8[%d,%d] dense<[", M, K, M, N, K, N);
  for (int i = 0; i < K * N; i++) p += sprintf(p, "%s%d", i ? ", " : "", fx.wq[0][i]);
  p += sprintf(p, "]> q<bits=8, axis=1, group=0, sym, scales=[");
  for (int n = 0; n < N; n++) p += sprintf(p, "%s%.9g", n ? ", " : "", (double)fx.scale[0][n]);
  p += sprintf(p, "]>\n  %%h = qmatmul(%%x, %%w.q) {a_quant=\"static\", act=\"none\"} : i8[%d,%d] %s\n  return %%h\n}\n", M,
               N, yq);
  struct lb_graph *f = parse(ft), *q = parse(qt);
  lb_graph_index_values(f);
  lb_graph_index_values(q);
  double signal = 0, noise = 0;
  for (int s = 0; s < SAMPLES; s++) {
    float yf[M * N];
    int8_t y8[M * N];
    eval_value(f, fx.x[s], "h", yf);
    eval_value(q, fx.x[s], "h", y8);
    for (int i = 0; i < M * N; i++) {
      signal += (double)yf[i] * yf[i];
      noise += ((double)yf[i] - 0.5 * y8[i]) * ((double)yf[i] - 0.5 * y8[i]);
    }
  }
  assert_true(noise > 0 && signal > 100 * noise); /* neither saturated nor exact */
  struct lb_diag d;
  lb_diag_init(&d, "test");
  struct lb_quant_report_options o = {.calib_dir = fx.calib};
  enum lb_status st = lb_quant_report(f, q, &o, fx.report, &d);
  if (st != LB_OK) fprintf(stderr, "%s", d.text ? d.text : "");
  assert_int_equal(st, LB_OK);
  char *text = read_text(fx.report), line[512], *cells[16];
  /* the model output and the layer are the same value */
  char *row = strstr(strstr(text, "## Model outputs"), "| `h` |");
  assert_non_null(row);
  sscanf(row, "%511[^\n]", line);
  assert_int_equal(split_row(line, cells, 16), 3);
  assert_near(atof(cells[1]), 10 * log10(signal / noise), 0.006);
  row = strstr(strstr(text, "## Layers"), "| 1 | `h` |");
  assert_non_null(row);
  sscanf(row, "%511[^\n]", line);
  assert_int_equal(split_row(line, cells, 16), 12);
  assert_near(atof(cells[10]), 10 * log10(signal / noise), 0.006);
  free(text);
  lb_graph_free(f);
  lb_graph_free(q);
  lb_diag_free(&d);
  remove_fixture(&fx);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_report_matches_reference),
      cmocka_unit_test(test_unmatched_layer_is_an_error),
      cmocka_unit_test(test_no_samples_is_an_error),
      cmocka_unit_test(test_requantized_output_is_dequantized),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
