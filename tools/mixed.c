/* mixed.c: mixed-precision weights (`lowbit compile --quant auto`).
 *
 * Candidates: f32 (keep float) and, for every layer the quantize rules take,
 * w8 (per column), w4 g32, w3 g32, w2 g32 by default, or any list of f16, w8
 * and wNgG. A layer's bits per weight count its scales and zero points:
 * lb_sens_weight_bytes * 8 / (K * N).
 *
 * Selection under a size budget is the greedy knapsack by marginal gain: every
 * free layer starts at its cheapest candidate; then, repeatedly, the (layer,
 * richer candidate) with the largest (error decrease) / (extra bits) that
 * still fits the budget is taken, until nothing fits or helps. Errors are the
 * single-layer errors of lb_sensitivity, summed over layers (on the GPT fixture
 * single-layer KLs add up to within 5% of the all-layers KL). Under a loss
 * budget (--max-loss) the same greedy runs without a size limit and the first
 * plan on its path whose summed error is within the loss is taken: the
 * smallest plan the greedy order finds within it.
 *
 * The plan file records the choice; `--quant-plan` compiles it again without
 * the sensitivity run, giving the same graph. A plan with a budget fixes the
 * layers it gives and leaves the others ("auto" or missing) to the choice.
 */
#include "tools/mixed.h"

#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "codegen/calibrate.h"
#include "codegen/quant_report.h"
#include "codegen/sensitivity.h"
#include "passes/quantize.h"

enum { MAX_CANDS = 12 };

struct precision {
  int32_t bits;  /* 32: keep float; 16: f16 weights */
  int64_t group; /* low-bit only */
  char label[24];/* "f32", "f16", "w8", "w4g32" */
};

static bool precision_parse(const char *s, struct precision *p) {
  memset(p, 0, sizeof *p);
  if (strcmp(s, "f32") == 0) p->bits = 32;
  else if (strcmp(s, "f16") == 0) p->bits = 16;
  else if (strcmp(s, "w8") == 0) p->bits = 8;
  else {
    char *end;
    if (s[0] != 'w' || s[1] < '2' || s[1] > '4' || s[2] != 'g' || !isdigit((unsigned char)s[3])) return false;
    errno = 0;
    long long g = strtoll(s + 3, &end, 10);
    if (errno || *end || g <= 0 || g > INT32_MAX) return false;
    p->bits = s[1] - '0';
    p->group = g;
  }
  snprintf(p->label, sizeof p->label, "%s", s);
  return true;
}

bool lb_mixed_parse_size(const char *s, int64_t *out) {
  char *end;
  errno = 0;
  double x = strtod(s, &end);
  double mul = 1;
  if (end == s || errno || !(x > 0)) return false;
  if (strcasecmp(end, "KB") == 0 || strcasecmp(end, "K") == 0) mul = 1024;
  else if (strcasecmp(end, "MB") == 0 || strcasecmp(end, "M") == 0) mul = 1048576;
  else if (*end) return false;
  *out = (int64_t)(x * mul);
  return *out > 0;
}

/* ---- the plan file: a small JSON reader ------------------------------------------------ */

enum jkind { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ };
struct jval {
  enum jkind kind;
  double num;
  char *str;
  int32_t n;
  struct jval *items; /* arrays and objects (values) */
  char **keys;        /* objects */
};

static void jfree(struct jval *v) {
  free(v->str);
  for (int32_t i = 0; i < v->n; i++) {
    jfree(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
}

static const char *jws(const char *c) {
  while (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r') c++;
  return c;
}

/* Strings of the plan are names: escapes \" \\ \/ and \uXXXX below 0x80. */
static const char *jstring(const char *c, char **out) {
  if (*c != '"') return NULL;
  size_t cap = strlen(c) + 1, o = 0;
  char *s = malloc(cap);
  if (!s) abort();
  for (c++; *c && *c != '"'; c++) {
    if (*c != '\\') {
      s[o++] = *c;
      continue;
    }
    c++;
    if (*c == '"' || *c == '\\' || *c == '/') s[o++] = *c;
    else if (*c == 'n') s[o++] = '\n';
    else if (*c == 't') s[o++] = '\t';
    else if (*c == 'u' && isxdigit((unsigned char)c[1]) && isxdigit((unsigned char)c[2]) &&
             isxdigit((unsigned char)c[3]) && isxdigit((unsigned char)c[4])) {
      char hex[5] = {c[1], c[2], c[3], c[4], 0};
      long cp = strtol(hex, NULL, 16);
      if (cp >= 0x80 || cp == 0) break;
      s[o++] = (char)cp;
      c += 4;
    } else {
      break;
    }
  }
  if (*c != '"') {
    free(s);
    return NULL;
  }
  s[o] = 0;
  *out = s;
  return c + 1;
}

static const char *jvalue(const char *c, struct jval *v, int depth) {
  memset(v, 0, sizeof *v);
  c = jws(c);
  if (depth > 16) return NULL;
  if (*c == '"') {
    v->kind = J_STR;
    return jstring(c, &v->str);
  }
  if (*c == '{' || *c == '[') {
    bool obj = *c == '{';
    char close = obj ? '}' : ']';
    v->kind = obj ? J_OBJ : J_ARR;
    c = jws(c + 1);
    if (*c == close) return c + 1;
    for (int32_t cap = 0;;) {
      if (v->n == cap) {
        cap = cap ? cap * 2 : 8;
        v->items = realloc(v->items, sizeof *v->items * (size_t)cap);
        if (obj) v->keys = realloc(v->keys, sizeof *v->keys * (size_t)cap);
        if (!v->items || (obj && !v->keys)) abort();
      }
      if (obj) {
        c = jstring(jws(c), &v->keys[v->n]);
        if (!c) return NULL;
        c = jws(c);
        if (*c++ != ':') {
          free(v->keys[v->n]);
          return NULL;
        }
      }
      c = jvalue(c, &v->items[v->n], depth + 1);
      v->n++;
      if (!c) return NULL;
      c = jws(c);
      if (*c == close) return c + 1;
      if (*c++ != ',') return NULL;
    }
  }
  if (strncmp(c, "true", 4) == 0 || strncmp(c, "false", 5) == 0) {
    v->kind = J_BOOL;
    v->num = *c == 't';
    return c + (*c == 't' ? 4 : 5);
  }
  if (strncmp(c, "null", 4) == 0) return c + 4;
  char *end;
  v->kind = J_NUM;
  v->num = strtod(c, &end);
  return end == c ? NULL : end;
}

static const struct jval *jget(const struct jval *o, const char *key, enum jkind kind) {
  if (o->kind != J_OBJ) return NULL;
  for (int32_t i = 0; i < o->n; i++)
    if (strcmp(o->keys[i], key) == 0) return o->items[i].kind == kind ? &o->items[i] : NULL;
  return NULL;
}

/* ---- layers, candidates and the choice --------------------------------------------------- */

struct layer {
  char *value, *node;
  int64_t k, n;
  int32_t choice;        /* index into cands; -1 = not chosen yet */
  bool fixed;            /* --keep-float or the plan */
  int64_t bytes[MAX_CANDS];
  double error[MAX_CANDS]; /* NaN: candidate did not quantize this layer */
};

struct mixed {
  struct precision cands[MAX_CANDS]; /* cands[0] is f32 */
  int32_t n_cands;
  struct lb_graph *cand_g[MAX_CANDS];
  struct layer *layers;
  int32_t n_layers;
  bool have_errors;
  enum lb_sens_metric metric;
  int64_t samples;
};

static int32_t cand_index(const struct mixed *m, const char *label) {
  for (int32_t c = 0; c < m->n_cands; c++)
    if (strcmp(m->cands[c].label, label) == 0) return c;
  return -1;
}

static int32_t add_cand(struct mixed *m, const struct precision *p) {
  int32_t c = cand_index(m, p->label);
  if (c >= 0 || m->n_cands == MAX_CANDS) return c;
  m->cands[m->n_cands] = *p;
  return m->n_cands++;
}

/* Runs pipe with the user's pass options; --dump-dir dumps into DIR/<stage>
 * (the stages of one compile would otherwise overwrite each other). */
static enum lb_status run_pipe(struct lb_graph *g, const char *pipe, const struct lb_pass_options *po,
                               const struct lb_calib_result *stats, const char *stage, struct lb_diag *d) {
  struct lb_pass_options o = po ? *po : (struct lb_pass_options){.dump_blobs = LB_PRINT_BLOBS_ELIDED};
  char dir[4096];
  if (o.dump_dir) {
    snprintf(dir, sizeof dir, "%s/%s", o.dump_dir, stage);
    o.dump_dir = dir;
  }
  if (stats) o.calib = stats->stats, o.n_calib = stats->n_stats;
  return lb_pass_manager_run(g, pipe, &o, d);
}

/* Hessians of every layer input of the float graph (each layer's gptq works on
 * its float input, so one calibration serves every candidate). */
static enum lb_status hessians(const struct lb_graph *g, const struct lb_mixed_options *o,
                               struct lb_calib_result *res, struct lb_diag *d) {
  struct lb_graph *gc = lb_graph_clone(g);
  struct lb_diag cd;
  lb_diag_init(&cd, d->file);
  enum lb_status st = lb_pass_manager_run(gc, "insert-observers", NULL, &cd);
  struct lb_progress pr = {.tty = isatty(2) != 0, .what = "calibrating"};
  struct lb_codegen_options co = o->jit ? *o->jit : (struct lb_codegen_options){.opt_level = 3};
  co.model_name = "lowbit_calib";
  struct lb_calib_run_options ro = {.cg = &co, .progress = lb_progress_show, .progress_ctx = &pr,
                                    .operand_kinds = LB_CALIB_HESSIAN};
  if (st == LB_OK) st = lb_calibrate(gc, o->calib_dir, &ro, res, &cd);
  lb_graph_free(gc);
  if (st != LB_OK) {
    if (cd.text) lb_diag_append_error(d, st, cd.text, strlen(cd.text));
    else lb_diag_error(d, st, NULL, "calibration failed");
  } else {
    fprintf(stderr, "lowbit: calibrated Hessians of the layer inputs on %lld samples from %s\n",
            (long long)res->samples, o->calib_dir);
  }
  lb_diag_free(&cd);
  return st;
}

/* One quantized copy of g per candidate but f32. */
static enum lb_status quantize_candidates(const struct lb_graph *g, struct mixed *m, const struct lb_mixed_options *o,
                                          struct lb_diag *d) {
  bool gptq = false;
  for (int32_t c = 1; c < m->n_cands; c++) gptq |= o->algo == LB_WALGO_GPTQ && m->cands[c].bits < 8;
  struct lb_calib_result hess = {0};
  enum lb_status st = gptq ? hessians(g, o, &hess, d) : LB_OK;
  for (int32_t c = 1; c < m->n_cands && st == LB_OK; c++) {
    const struct precision *p = &m->cands[c];
    char pipe[160];
    /* --act int8: every integer candidate takes per-row int8 activations (f16 has none) */
    const char *act = o->act_int8 ? "dynamic" : "none";
    if (p->bits == 16) snprintf(pipe, sizeof pipe, "quantize{scheme=f16 overflow=keep},dce");
    else if (p->bits == 8) snprintf(pipe, sizeof pipe, "quantize{scheme=%s},dce", o->act_int8 ? "w8a8-dynamic" : "w8");
    else if (o->algo == LB_WALGO_GPTQ)
      snprintf(pipe, sizeof pipe, "gptq{bits=%d group=%lld act=%s},dce", (int)p->bits, (long long)p->group, act);
    else
      snprintf(pipe, sizeof pipe, "quantize{scheme=w%d group=%lld act=%s},dce", (int)p->bits, (long long)p->group,
               act);
    m->cand_g[c] = lb_graph_clone(g);
    char stage[48];
    snprintf(stage, sizeof stage, "2-candidate-%s", p->label);
    /* dumped, not printed: --print-after is about the model that is compiled */
    struct lb_pass_options cpo = {.dump_blobs = LB_PRINT_BLOBS_ELIDED, .dump_dir = o->po ? o->po->dump_dir : NULL};
    st = run_pipe(m->cand_g[c], pipe, &cpo, gptq ? &hess : NULL, stage, d);
  }
  lb_calib_result_free(&hess);
  return st;
}

/* KL when every f32 output has a last dimension of at least 2 (logits), else MSE. */
static enum lb_sens_metric metric_of(const struct lb_graph *g) {
  for (int32_t i = 0; i < g->n_outputs; i++) {
    const struct lb_type *t = &g->outputs[i]->type;
    if (t->dtype == LB_DTYPE_F32 && (t->shape.rank == 0 || t->shape.dims[t->shape.rank - 1] < 2)) return LB_SENS_MSE;
  }
  return LB_SENS_KL;
}

static const struct lb_node *qmatmul_of(const struct lb_graph *q, const char *value) {
  const struct lb_value *v = lb_graph_find_value(q, value);
  return v && v->producer && !v->producer->dead && v->producer->op == LB_OP_QMATMUL ? v->producer : NULL;
}

/* Progress of the sensitivity trials (one JIT compile per candidate, then a run
 * per layer): a bar on a terminal, else a line at each tenth. */
struct sens_progress {
  bool tty;
  int64_t last_tenth;
  double t0;
};
static void sens_progress(void *ctx, int64_t done, int64_t total, const char *what, double ms) {
  struct sens_progress *p = ctx;
  (void)ms;
  if (done == 0) p->t0 = 0, p->last_tenth = 0;
  if (!p->tty) {
    int64_t tenth = total ? done * 10 / total : 10;
    if (done > 0 && tenth > p->last_tenth) {
      fprintf(stderr, "lowbit: sensitivity %lld/%lld trials (%lld%%), last: %s\n", (long long)done, (long long)total,
              (long long)(tenth * 10), what);
      p->last_tenth = tenth;
    }
    return;
  }
  enum { W = 30 };
  int fill = total ? (int)(done * W / total) : W;
  char bar[W + 1];
  for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '.';
  bar[W] = 0;
  fprintf(stderr, "\r\033[Klowbit: sensitivity [%s] %lld/%lld %.60s", bar, (long long)done, (long long)total, what);
  if (done == total) fputc('\n', stderr);
  fflush(stderr);
}

/* Without measuring (a given plan): the layers some candidate quantized, in
 * graph order, and their bytes; lb_sensitivity finds the same ones. */
static void layers_plain(const struct lb_graph *g, struct mixed *m) {
  m->layers = calloc((size_t)g->n_nodes + 1, sizeof *m->layers);
  if (!m->layers) abort();
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const struct lb_node *fn = g->nodes[i];
    if (fn->dead || !fn->n_outputs) continue;
    struct layer L = {.choice = -1};
    bool any = false;
    for (int32_t c = 1; c < m->n_cands; c++) {
      const struct lb_node *qn = qmatmul_of(m->cand_g[c], fn->outputs[0]->name);
      L.error[c] = NAN;
      if (!qn) continue;
      if (!any) {
        struct lb_quant_linear l;
        lb_quant_linear_of(g, fn, &l);
        L.k = l.k, L.n = l.n;
      }
      any = true;
      L.bytes[c] = lb_sens_weight_bytes(qn->inputs[1]->qparams, L.k, L.n);
      L.error[c] = 0;
    }
    if (!any) continue;
    L.bytes[0] = L.k * L.n * 4;
    L.value = strdup(fn->outputs[0]->name);
    L.node = strdup(fn->name ? fn->name : "");
    if (!L.value || !L.node) abort();
    m->layers[m->n_layers++] = L;
  }
  m->have_errors = false;
}

/* The layers and each candidate's bytes, and with measure the errors lb_sensitivity finds
 * (without: a given plan, see layers_plain). */
static enum lb_status layers_of(const struct lb_graph *g, struct mixed *m, const struct lb_mixed_options *o,
                                bool measure, struct lb_diag *d) {
  struct lb_sens_candidate sc[MAX_CANDS];
  for (int32_t c = 1; c < m->n_cands; c++) sc[c - 1] = (struct lb_sens_candidate){m->cands[c].label, m->cand_g[c]};
  struct sens_progress pr = {.tty = isatty(2) != 0};
  struct lb_sens_options so = {.cg = o->jit, .calib_dir = o->calib_dir,
                               .metric = o->metric_given ? o->metric : metric_of(g),
                               .progress = sens_progress, .progress_ctx = &pr};
  struct lb_sens_table t = {0};
  m->metric = so.metric;
  if (!measure) {
    layers_plain(g, m);
    return LB_OK;
  }
  enum lb_status st = lb_sensitivity(g, sc, m->n_cands - 1, &so, &t, d);
  if (st != LB_OK) return st;
  m->n_layers = t.n_layers;
  m->layers = calloc((size_t)t.n_layers + 1, sizeof *m->layers);
  if (!m->layers) abort();
  for (int32_t i = 0; i < t.n_layers; i++) {
    struct layer *L = &m->layers[i];
    L->value = strdup(t.layers[i].value);
    L->node = strdup(t.layers[i].node);
    if (!L->value || !L->node) abort();
    L->k = t.layers[i].k, L->n = t.layers[i].n, L->choice = -1;
    L->bytes[0] = L->k * L->n * 4, L->error[0] = 0;
    for (int32_t c = 1; c < m->n_cands; c++) {
      const struct lb_sens_cell *cell = lb_sens_cell_at(&t, i, c - 1);
      L->bytes[c] = cell->present ? cell->bytes : 0;
      L->error[c] = cell->present ? cell->err.error : NAN;
    }
  }
  m->have_errors = true;
  m->metric = t.metric;
  m->samples = t.samples;
  fprintf(stderr, "lowbit: measured %d layers x %d precisions (%s) on %lld samples, %.0f ms per trial\n",
          (int)t.n_layers, (int)(m->n_cands - 1), lb_sens_metric_name(t.metric), (long long)t.samples, t.trial_ms);
  lb_sens_table_free(&t);
  return LB_OK;
}

static bool matches_any(const char *globs, const struct layer *L) {
  struct lb_layer_names ln;
  lb_layer_names_of(L->value, L->node, &ln);
  return globs && lb_globs_match_layer(globs, &ln);
}

/* The cheapest candidate each layer can take (the start of every choice). */
static int32_t cheapest(const struct mixed *m, const struct layer *L) {
  int32_t best = 0;
  for (int32_t c = 1; c < m->n_cands; c++)
    if (!isnan(L->error[c]) && L->bytes[c] < L->bytes[best]) best = c;
  return best;
}

/* The greedy choice under budget_bits (see the top of the file). */
static enum lb_status choose(struct mixed *m, double budget_bits, struct lb_diag *d) {
  double bits = 0;
  for (int32_t i = 0; i < m->n_layers; i++) {
    struct layer *L = &m->layers[i];
    if (L->choice < 0) L->choice = cheapest(m, L);
    bits += (double)L->bytes[L->choice] * 8;
  }
  if (bits > budget_bits)
    return lb_diag_error(d, LB_ERR_USAGE, NULL,
                         "the budget (%.0f bytes) is below the smallest choice: every layer at its cheapest "
                         "precision (and --keep-float layers in f32) takes %.0f bytes",
                         budget_bits / 8, bits / 8);
  for (;;) {
    int32_t bl = -1, bc = -1;
    double best = 0;
    for (int32_t i = 0; i < m->n_layers; i++) {
      struct layer *L = &m->layers[i];
      if (L->fixed) continue;
      for (int32_t c = 0; c < m->n_cands; c++) {
        double extra = (double)(L->bytes[c] - L->bytes[L->choice]) * 8, gain = L->error[L->choice] - L->error[c];
        if (isnan(L->error[c]) || extra <= 0 || bits + extra > budget_bits) continue;
        if (isnan(gain)) gain = INFINITY; /* leaving a NaN error is always worth it */
        if (gain > 0 && gain / extra > best) best = gain / extra, bl = i, bc = c;
      }
    }
    if (bl < 0) break;
    bits += (double)(m->layers[bl].bytes[bc] - m->layers[bl].bytes[m->layers[bl].choice]) * 8;
    m->layers[bl].choice = bc;
  }
  return LB_OK;
}

static int64_t gcd64(int64_t a, int64_t b) {
  while (b) {
    int64_t t = a % b;
    a = b, b = t;
  }
  return a;
}

enum { EXACT_CELLS = 1 << 25 }; /* the choice table: one byte per (layer, size) */

/* The exact choice: a multiple-choice knapsack solved by dynamic programming
 * over bytes. dp[j] is the least summed error of the free layers so far within
 * j size units; the answer is dp at the budget (or, under --max-loss, the
 * fewest units whose least error is within the loss). A unit is the gcd of
 * the candidates' byte counts, coarsened (sizes rounded up, so what is chosen
 * still fits) when the table would outgrow EXACT_CELLS. */
static enum lb_status choose_exact(struct mixed *m, double budget_bits, double max_loss, struct lb_diag *d) {
  int64_t fixed = 0, least = 0, most = 0, unit = 0;
  int32_t n_free = 0;
  for (int32_t i = 0; i < m->n_layers; i++) {
    struct layer *L = &m->layers[i];
    if (L->fixed) {
      fixed += L->bytes[L->choice];
      continue;
    }
    n_free++;
    int64_t lo = INT64_MAX, hi = 0;
    for (int32_t c = 0; c < m->n_cands; c++) {
      if (isnan(L->error[c])) continue;
      unit = gcd64(unit, L->bytes[c]);
      lo = L->bytes[c] < lo ? L->bytes[c] : lo;
      hi = L->bytes[c] > hi ? L->bytes[c] : hi;
    }
    least += lo, most += hi;
  }
  double cap_bytes = isfinite(budget_bits) ? floor(budget_bits / 8) - (double)fixed : (double)most;
  if (cap_bytes > (double)most) cap_bytes = (double)most;
  if (cap_bytes < (double)least)
    return lb_diag_error(d, LB_ERR_USAGE, NULL,
                         "the budget (%.0f bytes) is below the smallest choice: every layer at its cheapest "
                         "precision (and --keep-float layers in f32) takes %lld bytes",
                         budget_bits / 8, (long long)(least + fixed));
  if (!n_free) return LB_OK;
  int64_t cap = (int64_t)cap_bytes, per_layer = EXACT_CELLS / n_free;
  if (unit <= 0) unit = 1;
  if (cap / unit + 1 > per_layer) unit = (cap + per_layer - 2) / (per_layer - 1);
  int64_t S = cap / unit + 1;
  double *prev = malloc(sizeof *prev * (size_t)S), *cur = malloc(sizeof *cur * (size_t)S);
  uint8_t *pick = malloc((size_t)(n_free * S));
  int32_t *free_layer = malloc(sizeof *free_layer * (size_t)n_free);
  if (!prev || !cur || !pick || !free_layer) abort();
  for (int64_t j = 0; j < S; j++) prev[j] = 0;
  for (int32_t i = 0, f = 0; i < m->n_layers; i++) {
    const struct layer *L = &m->layers[i];
    if (L->fixed) continue;
    free_layer[f] = i;
    for (int64_t j = 0; j < S; j++) {
      double best = INFINITY;
      int32_t bc = 0;
      for (int32_t c = 0; c < m->n_cands; c++) {
        int64_t cost = (L->bytes[c] + unit - 1) / unit;
        if (isnan(L->error[c]) || cost > j || !(prev[j - cost] + L->error[c] < best)) continue;
        best = prev[j - cost] + L->error[c];
        bc = c;
      }
      cur[j] = best;
      pick[f * S + j] = (uint8_t)bc;
    }
    double *t = prev;
    prev = cur, cur = t;
    f++;
  }
  int64_t at = S - 1;
  if (max_loss > 0) {
    at = -1;
    for (int64_t j = 0; j < S && at < 0; j++)
      if (prev[j] <= max_loss) at = j;
  }
  enum lb_status st = LB_OK;
  if (at < 0 || !isfinite(prev[at])) {
    st = at < 0 ? lb_diag_error(d, LB_ERR_USAGE, NULL,
                                "no plan keeps the summed error within --max-loss %g%s: the lowest reachable is %.4g",
                                max_loss, isfinite(budget_bits) ? " and the size budget" : "", prev[S - 1])
                : lb_diag_error(d, LB_ERR_USAGE, NULL, "no choice of the candidates fits the budget");
  } else {
    for (int32_t f = n_free - 1; f >= 0; f--) {
      struct layer *L = &m->layers[free_layer[f]];
      L->choice = pick[f * S + at];
      at -= (L->bytes[L->choice] + unit - 1) / unit;
    }
  }
  free(prev), free(cur), free(pick), free(free_layer);
  return st;
}

/* One step of the greedy path: layer takes cand; bits and error are the totals after it. */
struct step {
  int32_t layer, cand; /* -1, -1: the start */
  double bits, error;
};

/* The greedy path without a size limit, from every free layer at its cheapest
 * candidate to where no step lowers the error: the trade-off curve of the
 * report and the order --max-loss walks. Returns the number of steps (the
 * start included); *out is malloc'ed. */
static int32_t greedy_path(const struct mixed *m, struct step **out) {
  int32_t *choice = malloc(sizeof *choice * (size_t)(m->n_layers + 1));
  int32_t cap = 16, n = 0;
  struct step *steps = malloc(sizeof *steps * (size_t)cap);
  if (!choice || !steps) abort();
  double bits = 0, error = 0;
  for (int32_t i = 0; i < m->n_layers; i++) {
    const struct layer *L = &m->layers[i];
    choice[i] = L->fixed ? L->choice : cheapest(m, L);
    bits += (double)L->bytes[choice[i]] * 8;
    error += L->error[choice[i]];
  }
  steps[n++] = (struct step){-1, -1, bits, error};
  for (;;) {
    int32_t bl = -1, bc = -1;
    double best = 0;
    for (int32_t i = 0; i < m->n_layers; i++) {
      const struct layer *L = &m->layers[i];
      if (L->fixed) continue;
      for (int32_t c = 0; c < m->n_cands; c++) {
        double extra = (double)(L->bytes[c] - L->bytes[choice[i]]) * 8, gain = L->error[choice[i]] - L->error[c];
        if (isnan(L->error[c]) || extra <= 0) continue;
        if (isnan(gain)) gain = INFINITY;
        if (gain > 0 && gain / extra > best) best = gain / extra, bl = i, bc = c;
      }
    }
    if (bl < 0) break;
    const struct layer *L = &m->layers[bl];
    bits += (double)(L->bytes[bc] - L->bytes[choice[bl]]) * 8;
    /* recomputed, not updated: a NaN error left behind must not stick */
    choice[bl] = bc;
    error = 0;
    for (int32_t i = 0; i < m->n_layers; i++) error += m->layers[i].error[choice[i]];
    if (n == cap && !(steps = realloc(steps, sizeof *steps * (size_t)(cap *= 2)))) abort();
    steps[n++] = (struct step){bl, bc, bits, error};
  }
  free(choice);
  *out = steps;
  return n;
}

/* --max-loss: the first plan on the greedy path whose summed error is within
 * max_loss and whose bits fit budget_bits. */
static enum lb_status choose_within_loss(struct mixed *m, double max_loss, double budget_bits, struct lb_diag *d) {
  struct step *steps;
  int32_t n = greedy_path(m, &steps), at = -1;
  for (int32_t i = 0; i < n && at < 0; i++)
    if (steps[i].bits <= budget_bits && steps[i].error <= max_loss) at = i;
  if (at < 0) {
    int32_t best = 0; /* the lowest error within the size budget, for the message */
    for (int32_t i = 0; i < n; i++)
      if (steps[i].bits <= budget_bits && !(steps[i].error >= steps[best].error)) best = i;
    double w = 0;
    for (int32_t i = 0; i < m->n_layers; i++) w += (double)(m->layers[i].k * m->layers[i].n);
    enum lb_status st = lb_diag_error(
        d, LB_ERR_USAGE, NULL,
        "no plan keeps the summed error within --max-loss %g%s: the lowest the choice reaches is %.4g at %.3f "
        "bits/weight",
        max_loss, isfinite(budget_bits) ? " and the size budget" : "", steps[best].error, steps[best].bits / w);
    free(steps);
    return st;
  }
  for (int32_t i = 0; i < m->n_layers; i++)
    if (!m->layers[i].fixed) m->layers[i].choice = cheapest(m, &m->layers[i]);
  for (int32_t i = 1; i <= at; i++) m->layers[steps[i].layer].choice = steps[i].cand;
  free(steps);
  return LB_OK;
}

/* ---- plan file ------------------------------------------------------------------------- */

static void put_str(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
    else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
    else fputc(ch, f);
  }
  fputc('"', f);
}

static void totals(const struct mixed *m, int64_t *weights, int64_t *bytes, double *error) {
  *weights = *bytes = 0, *error = 0;
  for (int32_t i = 0; i < m->n_layers; i++) {
    const struct layer *L = &m->layers[i];
    *weights += L->k * L->n;
    *bytes += L->bytes[L->choice];
    *error += L->error[L->choice];
  }
}

static enum lb_status write_plan(const struct mixed *m, const char *path, const struct lb_mixed_options *o,
                                 struct lb_diag *d) {
  char *tmp = NULL;
  FILE *f = lb_atomic_open(path, &tmp, d);
  if (!f) return d->status ? d->status : LB_ERR_IO;
  fprintf(f, "{\n  \"format\": \"lowbit-quant-plan\",\n  \"version\": 1,\n  \"weight_algo\": \"%s\",\n",
          o->algo == LB_WALGO_GPTQ ? "gptq" : "rtn");
  if (o->act_int8) fputs("  \"act\": \"int8\",\n", f);
  fputs("  \"layers\": [", f);
  for (int32_t i = 0; i < m->n_layers; i++) {
    const struct layer *L = &m->layers[i];
    fprintf(f, "%s\n    {\"value\": ", i ? "," : "");
    put_str(f, L->value);
    fputs(", \"node\": ", f);
    put_str(f, L->node);
    fprintf(f, ", \"K\": %lld, \"N\": %lld, \"precision\": \"%s\", \"bits_per_weight\": %.6g, \"bytes\": %lld",
            (long long)L->k, (long long)L->n, m->cands[L->choice].label,
            (double)L->bytes[L->choice] * 8 / (double)(L->k * L->n), (long long)L->bytes[L->choice]);
    if (m->have_errors && isfinite(L->error[L->choice])) fprintf(f, ", \"error\": %.9g", L->error[L->choice]);
    fputc('}', f);
  }
  int64_t w, b;
  double e;
  totals(m, &w, &b, &e);
  fprintf(f, "\n  ],\n  \"totals\": {\"weights\": %lld, \"bytes\": %lld, \"bits_per_weight\": %.6g", (long long)w,
          (long long)b, w ? (double)b * 8 / (double)w : 0.0);
  if (m->have_errors && isfinite(e)) fprintf(f, ", \"error\": %.9g", e);
  fputs("}\n}\n", f);
  return lb_atomic_commit(f, tmp, path, d);
}

static enum lb_status read_text(const char *path, char **out, struct lb_diag *d) {
  FILE *f = fopen(path, "rb");
  if (!f) return lb_diag_error(d, LB_ERR_IO, NULL, "cannot open quantization plan '%s': %s", path, strerror(errno));
  size_t cap = 4096, n = 0;
  char *s = malloc(cap);
  if (!s) abort();
  for (size_t r; (r = fread(s + n, 1, cap - n - 1, f)) > 0;) {
    n += r;
    if (n + 1 == cap && !(s = realloc(s, cap *= 2))) abort();
  }
  fclose(f);
  s[n] = 0;
  *out = s;
  return LB_OK;
}

/* The plan's precisions become the candidates (before the layers are known);
 * layers_from_plan then fixes each layer's choice. */
static enum lb_status read_plan(const char *path, enum lb_weight_algo algo, bool act_int8, struct mixed *m,
                                struct jval *root, const struct jval **layers, struct lb_diag *d) {
  char *text = NULL;
  enum lb_status st = read_text(path, &text, d);
  if (st != LB_OK) return st;
  const char *end = jvalue(text, root, 0);
  bool ok = end && !*jws(end);
  free(text);
  if (!ok) return lb_diag_error(d, LB_ERR_PARSE, NULL, "quantization plan '%s': malformed JSON", path);
  const struct jval *fmt = jget(root, "format", J_STR), *ver = jget(root, "version", J_NUM);
  *layers = jget(root, "layers", J_ARR);
  if (!fmt || strcmp(fmt->str, "lowbit-quant-plan") != 0 || !ver || ver->num != 1 || !*layers)
    return lb_diag_error(d, LB_ERR_PARSE, NULL,
                         "quantization plan '%s': not a lowbit-quant-plan version 1 (format, version, layers)", path);
  /* the same precision from another algorithm is other codes: not the planned model */
  const struct jval *walgo = jget(root, "weight_algo", J_STR);
  const char *want = algo == LB_WALGO_GPTQ ? "gptq" : "rtn";
  if (walgo && strcmp(walgo->str, want) != 0)
    return lb_diag_error(d, LB_ERR_USAGE, NULL, "quantization plan '%s' was made with --weight-algo %s, not %s", path,
                         walgo->str, want);
  const struct jval *act = jget(root, "act", J_STR);
  if (act && strcmp(act->str, act_int8 ? "int8" : "f32") != 0)
    return lb_diag_error(d, LB_ERR_USAGE, NULL, "quantization plan '%s' was made with --act %s, not %s", path, act->str,
                         act_int8 ? "int8" : "f32");
  for (int32_t i = 0; i < (*layers)->n; i++) {
    const struct jval *value = jget(&(*layers)->items[i], "value", J_STR);
    const struct jval *prec = jget(&(*layers)->items[i], "precision", J_STR);
    struct precision p;
    if (!value || !prec)
      return lb_diag_error(d, LB_ERR_PARSE, NULL, "quantization plan '%s': layer %d has no \"value\" or \"precision\"",
                           path, (int)i);
    if (strcmp(prec->str, "auto") == 0) continue; /* left to the choice under the budget */
    if (!precision_parse(prec->str, &p))
      return lb_diag_error(d, LB_ERR_PARSE, NULL,
                           "quantization plan '%s': layer '%s': unknown precision '%s' (f32, f16, w8, w4gG, w3gG, "
                           "w2gG, auto)",
                           path, value->str, prec->str);
    if (add_cand(m, &p) < 0)
      return lb_diag_error(d, LB_ERR_LIMIT, NULL, "quantization plan '%s': more than %d precisions", path,
                           MAX_CANDS - 1);
  }
  return LB_OK;
}

/* Fixes each layer the plan gives a precision; "auto" entries are only checked
 * (a known layer, listed once). */
static enum lb_status layers_from_plan(struct mixed *m, const char *path, const struct jval *layers,
                                       struct lb_diag *d) {
  bool *listed = calloc((size_t)m->n_layers + 1, sizeof *listed);
  if (!listed) abort();
  enum lb_status st = LB_OK;
  for (int32_t i = 0; i < layers->n && st == LB_OK; i++) {
    const char *value = jget(&layers->items[i], "value", J_STR)->str;
    const char *prec = jget(&layers->items[i], "precision", J_STR)->str;
    int32_t c = cand_index(m, prec);
    int32_t li = -1;
    for (int32_t j = 0; j < m->n_layers && li < 0; j++)
      if (strcmp(m->layers[j].value, value) == 0) li = j;
    if (li < 0)
      st = lb_diag_error(d, LB_ERR_INVALID, NULL, "quantization plan '%s': unknown layer '%s' (no quantizable "
                         "linear layer of the model has this output)", path, value);
    else if (listed[li])
      st = lb_diag_error(d, LB_ERR_INVALID, NULL, "quantization plan '%s': layer '%s' is listed twice", path, value);
    else if (c < 0)
      listed[li] = true; /* auto */
    else if (isnan(m->layers[li].error[c]))
      st = lb_diag_error(d, LB_ERR_INVALID, NULL, "quantization plan '%s': layer '%s' cannot take %s", path, value,
                         m->cands[c].label);
    else
      listed[li] = m->layers[li].fixed = true, m->layers[li].choice = c;
  }
  free(listed);
  return st;
}

/* ---- the summary line ------------------------------------------------------------------- */

static void summary(const struct mixed *m, const struct lb_mixed_options *o) {
  int64_t w, b;
  double e;
  totals(m, &w, &b, &e);
  char line[512];
  int n = snprintf(line, sizeof line, "lowbit: mixed precision: %.3f bits/weight", w ? (double)b * 8 / (double)w : 0.0);
  if (o->target_bpw > 0) n += snprintf(line + n, sizeof line - (size_t)n, " (target %g)", o->target_bpw);
  n += snprintf(line + n, sizeof line - (size_t)n, ", %lld bytes:", (long long)b);
  for (int32_t c = 0; c < m->n_cands && n < (int)sizeof line - 32; c++) {
    int count = 0;
    for (int32_t i = 0; i < m->n_layers; i++) count += m->layers[i].choice == c;
    if (count) n += snprintf(line + n, sizeof line - (size_t)n, " %d %s,", count, m->cands[c].label);
  }
  if (n > 0 && line[n - 1] == ',') line[--n] = 0;
  if (m->have_errors && isfinite(e)) {
    n += snprintf(line + n, sizeof line - (size_t)n, "; summed error %.4g", e);
    if (o->max_loss > 0 && n < (int)sizeof line) snprintf(line + n, sizeof line - (size_t)n, " (max %g)", o->max_loss);
  }
  fprintf(stderr, "%s\n", line);
}

/* ---- the report view ----------------------------------------------------------------------- */

struct result_storage {
  const char *labels[MAX_CANDS];
  struct lb_report_layer *layers;
  double *errors;
  int64_t *bytes;
  char **names; /* value and node of each layer */
  struct lb_report_point *curve, uniform[MAX_CANDS];
  char budget[160];
  struct precision cands[MAX_CANDS];
};

void lb_mixed_result_free(struct lb_mixed_result *r) {
  struct result_storage *rs = r->storage;
  if (rs) {
    for (int32_t i = 0; i < 2 * r->report.n_layers; i++) free(rs->names[i]);
    free(rs->names), free(rs->layers), free(rs->errors), free(rs->bytes), free(rs->curve);
    free(rs);
  }
  memset(r, 0, sizeof *r);
}

static void fill_result(const struct mixed *m, const struct lb_mixed_options *o, bool chosen, const char *model,
                        struct lb_mixed_result *r) {
  struct result_storage *rs = calloc(1, sizeof *rs);
  int32_t nl = m->n_layers, nc = m->n_cands;
  if (!rs) abort();
  rs->layers = calloc((size_t)nl + 1, sizeof *rs->layers);
  rs->errors = calloc((size_t)(nl * nc) + 1, sizeof *rs->errors);
  rs->bytes = calloc((size_t)(nl * nc) + 1, sizeof *rs->bytes);
  rs->names = calloc((size_t)(2 * nl) + 1, sizeof *rs->names);
  if (!rs->layers || !rs->errors || !rs->bytes || !rs->names) abort();
  memcpy(rs->cands, m->cands, sizeof rs->cands);
  for (int32_t c = 0; c < nc; c++) rs->labels[c] = rs->cands[c].label;
  double weights = 0;
  for (int32_t i = 0; i < nl; i++) {
    const struct layer *L = &m->layers[i];
    struct lb_report_layer *R = &rs->layers[i];
    rs->names[2 * i] = strdup(L->value);
    rs->names[2 * i + 1] = strdup(L->node);
    if (!rs->names[2 * i] || !rs->names[2 * i + 1]) abort();
    for (int32_t c = 0; c < nc; c++) {
      /* a plan compiled without measuring has no errors, only which candidates apply */
      rs->errors[i * nc + c] = m->have_errors || c == 0 || isnan(L->error[c]) ? L->error[c] : NAN;
      rs->bytes[i * nc + c] = isnan(L->error[c]) ? 0 : L->bytes[c];
    }
    *R = (struct lb_report_layer){.value = rs->names[2 * i], .node = rs->names[2 * i + 1], .k = L->k, .n = L->n,
                                  .error = &rs->errors[i * nc], .bytes = &rs->bytes[i * nc],
                                  .choice = chosen ? L->choice : -1, .fixed = chosen && L->fixed,
                                  .sqnr_db = NAN, .max_abs = NAN};
    weights += (double)(L->k * L->n);
  }
  for (int32_t c = 0; c < nc; c++) {
    double bits = 0, error = 0;
    for (int32_t i = 0; i < nl; i++) {
      const struct layer *L = &m->layers[i];
      bits += (double)L->bytes[c] * 8;
      error += m->have_errors ? L->error[c] : NAN;
    }
    rs->uniform[c] = (struct lb_report_point){weights ? bits / weights : 0, error};
  }
  int32_t n_curve = 0;
  if (m->have_errors) {
    struct step *steps;
    n_curve = greedy_path(m, &steps);
    rs->curve = calloc((size_t)n_curve + 1, sizeof *rs->curve);
    if (!rs->curve) abort();
    for (int32_t i = 0; i < n_curve; i++)
      rs->curve[i] = (struct lb_report_point){weights ? steps[i].bits / weights : 0, steps[i].error};
    free(steps);
  }
  int n = 0;
  rs->budget[0] = 0;
  if (o->target_bpw > 0)
    n += snprintf(rs->budget + n, sizeof rs->budget - (size_t)n, "--target-bpw %g ", o->target_bpw);
  if (o->max_bytes > 0)
    n += snprintf(rs->budget + n, sizeof rs->budget - (size_t)n, "--max-size %lld ", (long long)o->max_bytes);
  if (o->max_loss > 0) n += snprintf(rs->budget + n, sizeof rs->budget - (size_t)n, "--max-loss %g ", o->max_loss);
  if (o->plan_in && n < (int)sizeof rs->budget)
    n += snprintf(rs->budget + n, sizeof rs->budget - (size_t)n, "--quant-plan %s ", o->plan_in);
  if (n > 0 && n < (int)sizeof rs->budget) rs->budget[n - 1] = 0;
  r->storage = rs;
  r->report = (struct lb_report){
      .model = model, .metric = lb_sens_metric_name(m->metric),
      .weight_algo = o->algo == LB_WALGO_GPTQ ? "gptq" : "rtn",
      .samples = m->samples, .cands = rs->labels, .n_cands = nc, .layers = rs->layers, .n_layers = nl,
      .budget = chosen && rs->budget[0] ? rs->budget : NULL, .curve = rs->curve, .n_curve = n_curve,
      .uniform = rs->uniform, .model_error = NAN};
}

/* ---- --max-loss, measured --------------------------------------------------------------- */

/* The choice under the budget: exact or greedy; max_loss 0 = none. */
static enum lb_status choose_once(struct mixed *m, const struct lb_mixed_options *o, double bits, double max_loss,
                                  struct lb_diag *d) {
  for (int32_t i = 0; i < m->n_layers; i++)
    if (!m->layers[i].fixed) m->layers[i].choice = -1;
  if (o->exact) return choose_exact(m, bits, max_loss, d);
  return max_loss > 0 ? choose_within_loss(m, max_loss, bits, d) : choose(m, bits, d);
}

/* The metric of g with the current choices grafted, against g, on the samples. */
static enum lb_status measure_plan(const struct lb_graph *g, const struct mixed *m, const struct lb_mixed_options *o,
                                   double *out, struct lb_diag *d) {
  struct lb_graph *q = lb_graph_clone(g);
  enum lb_status st = LB_OK;
  for (int32_t i = 0; st == LB_OK && i < m->n_layers; i++)
    if (m->layers[i].choice > 0) st = lb_sens_graft(q, m->cand_g[m->layers[i].choice], m->layers[i].value, d);
  if (st == LB_OK) st = lb_pass_manager_run(q, "dce", NULL, d);
  struct lb_quant_report_options ro = {.cg = o->jit, .calib_dir = o->calib_dir};
  struct lb_quant_comparison cmp = {.output_metric = NAN};
  if (st == LB_OK) st = lb_quant_compare(g, q, NULL, 0, m->metric, &ro, &cmp, d);
  lb_graph_free(q);
  *out = cmp.output_metric;
  return st;
}

/* --max-loss holds for the model, not only for the estimate: the summed
 * single-layer errors can under-estimate what the layers do together, so the
 * chosen plan is compiled and measured, and while the measurement exceeds the
 * loss the choice is made again against a loss shrunk by the ratio seen. */
static enum lb_status choose_measured(const struct lb_graph *g, struct mixed *m, const struct lb_mixed_options *o,
                                      double bits, struct lb_diag *d) {
  enum { MAX_ROUNDS = 6 };
  double target = o->max_loss, measured = NAN;
  for (int round = 0; round < MAX_ROUNDS; round++) {
    enum lb_status st = choose_once(m, o, bits, target, d);
    if (st != LB_OK) return st;
    int64_t w, b;
    double estimated;
    totals(m, &w, &b, &estimated);
    st = measure_plan(g, m, o, &measured, d);
    if (st != LB_OK) return st;
    fprintf(stderr, "lowbit: --max-loss %g: plan at %.3f bits/weight, estimated %.4g, measured %.4g%s\n", o->max_loss,
            w ? (double)b * 8 / (double)w : 0.0, estimated, measured,
            measured <= o->max_loss ? "" : ": over, choosing again");
    if (measured <= o->max_loss) return LB_OK;
    if (!(estimated > 0) || !isfinite(measured)) break;
    target = estimated * fmin(0.9, o->max_loss / measured); /* at least 10% tighter: always progress */
  }
  return lb_diag_error(d, LB_ERR_USAGE, NULL,
                       "no plan found whose measured error is within --max-loss %g (the last measured %.4g); "
                       "give a larger loss or keep more layers float",
                       o->max_loss, measured);
}

/* ---- the flow ---------------------------------------------------------------------------- */

static bool add_cands(struct mixed *m, const char *list, struct lb_diag *d) {
  char *copy = strdup(list);
  if (!copy) abort();
  bool ok = true;
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok && ok; tok = strtok_r(NULL, ",", &save)) {
    struct precision p;
    if (!precision_parse(tok, &p) || p.bits == 32)
      ok = !lb_diag_error(d, LB_ERR_USAGE, NULL, "unknown candidate precision '%s' (f16, w8, w4gG, w3gG, w2gG)", tok);
    else if (add_cand(m, &p) < 0)
      ok = !lb_diag_error(d, LB_ERR_LIMIT, NULL, "more than %d candidate precisions", MAX_CANDS - 1);
  }
  free(copy);
  return ok;
}

enum lb_status lb_mixed_run(struct lb_graph *g, const struct lb_mixed_options *o, struct lb_diag *d) {
  char *pipe = strdup(o->pipeline ? o->pipeline : lb_default_pipeline);
  if (!pipe) abort();
  bool has_plan = false;
  for (char *at; (at = strstr(pipe, "plan-memory"));) {
    has_plan = true;
    memmove(at, at + 11, strlen(at + 11) + 1);
  }
  size_t len = strlen(pipe);
  while (len && pipe[len - 1] == ',') pipe[--len] = 0;
  for (char *at; (at = strstr(pipe, ",,"));) memmove(at, at + 1, strlen(at));
  enum lb_status st = run_pipe(g, pipe, o->po, NULL, "1-passes", d);
  free(pipe);

  bool budget = o->target_bpw > 0 || o->max_bytes > 0 || o->max_loss > 0;
  /* measure unless a plan alone says everything; choose unless only a report is asked for */
  bool measure = !o->plan_in || budget, choosing = budget || o->plan_in || !o->result;
  struct mixed m = {.n_cands = 1};
  precision_parse("f32", &m.cands[0]);
  struct jval root = {0};
  const struct jval *plan_layers = NULL;
  if (st == LB_OK && o->plan_in) st = read_plan(o->plan_in, o->algo, o->act_int8, &m, &root, &plan_layers, d);
  if (st == LB_OK && measure && !add_cands(&m, o->candidates ? o->candidates : "w8,w4g32,w3g32,w2g32", d))
    st = d->status;
  if (st == LB_OK) st = quantize_candidates(g, &m, o, d);
  if (st == LB_OK) st = layers_of(g, &m, o, measure, d);
  if (st == LB_OK && !m.n_layers)
    st = lb_diag_error(d, LB_ERR_INVALID, NULL, "--quant auto: the model has no quantizable linear layer");
  if (st == LB_OK && o->plan_in) {
    st = layers_from_plan(&m, o->plan_in, plan_layers, d);
    for (int32_t i = 0; st == LB_OK && !budget && i < m.n_layers; i++)
      if (!m.layers[i].fixed)
        st = lb_diag_error(d, LB_ERR_INVALID, NULL,
                           "quantization plan '%s' gives no precision for layer '%s' (add it, or give a budget: "
                           "--target-bpw, --max-size or --max-loss choose the layers a plan leaves out or marks "
                           "\"auto\")",
                           o->plan_in, m.layers[i].value);
  }
  if (st == LB_OK && o->keep_float) {
    struct lb_layer_names *names = calloc((size_t)m.n_layers + 1, sizeof *names);
    if (!names) abort();
    for (int32_t i = 0; i < m.n_layers; i++) lb_layer_names_of(m.layers[i].value, m.layers[i].node, &names[i]);
    char *miss = lb_globs_unmatched(o->keep_float, names, m.n_layers);
    if (miss) st = lb_diag_error(d, LB_ERR_USAGE, NULL, "--keep-float '%s' matches no quantizable layer", miss);
    free(miss);
    free(names);
  }
  if (st == LB_OK && (budget || (choosing && !o->plan_in))) {
    int64_t weights = 0;
    for (int32_t i = 0; i < m.n_layers; i++) {
      weights += m.layers[i].k * m.layers[i].n;
      if (!m.layers[i].fixed && matches_any(o->keep_float, &m.layers[i]))
        m.layers[i].choice = 0, m.layers[i].fixed = true;
    }
    double bits = INFINITY;
    if (o->target_bpw > 0) bits = o->target_bpw * (double)weights;
    if (o->max_bytes > 0) bits = fmin(bits, (double)o->max_bytes * 8);
    st = o->max_loss > 0 ? choose_measured(g, &m, o, bits, d) : o->exact ? choose_exact(&m, bits, 0, d)
                                                                       : choose(&m, bits, d);
  }
  if (st == LB_OK && o->result) {
    fill_result(&m, o, choosing, d->file, o->result);
  }
  for (int32_t i = 0; st == LB_OK && choosing && i < m.n_layers; i++)
    if (m.layers[i].choice > 0) st = lb_sens_graft(g, m.cand_g[m.layers[i].choice], m.layers[i].value, d);
  if (st == LB_OK && choosing) st = run_pipe(g, "dce", o->po, NULL, "3-mixed", d);
  if (st == LB_OK && choosing) summary(&m, o);
  if (st == LB_OK && choosing && o->plan_out) st = write_plan(&m, o->plan_out, o, d);
  if (st == LB_OK && has_plan) st = run_pipe(g, "plan-memory", o->po, NULL, "4-plan", d);
  jfree(&root);
  for (int32_t i = 0; i < m.n_layers; i++) free(m.layers[i].value), free(m.layers[i].node);
  free(m.layers);
  for (int32_t c = 0; c < m.n_cands; c++) lb_graph_free(m.cand_g[c]);
  return st;
}
