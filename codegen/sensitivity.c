/* sensitivity.c: per-layer sensitivity to weight quantization (see
 * codegen/sensitivity.h).
 *
 * The samples' inputs are read once and the float model's f32 outputs
 * computed once per sample and kept (a GPT's logits over 16 samples of 128
 * tokens are 2 MB). Then, per candidate, one "switchboard" model (below) is
 * compiled and run once per layer with that layer's selector set, folding the
 * difference of the outputs into running sums. Compiling per candidate rather
 * than per layer made the GPT fixture's 17 layers 2.7x faster (compiles are
 * ~1.3 s, a layer's 16 runs ~0.35 s), with identical numbers.
 */
#include "codegen/sensitivity.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/calibrate.h"
#include "passes/pass.h"
#include "passes/quantize.h"
#include "runtime/lbrt.h"

static const char *const metric_names[LB_SENS_METRIC_COUNT] = {[LB_SENS_MSE] = "mse", [LB_SENS_KL] = "kl"};

const char *lb_sens_metric_name(enum lb_sens_metric m) {
  LB_ASSERT(m >= 0 && m < LB_SENS_METRIC_COUNT);
  return metric_names[m];
}

bool lb_sens_metric_parse(const char *s, enum lb_sens_metric *out) {
  for (int i = 0; i < LB_SENS_METRIC_COUNT; i++)
    if (s && strcmp(s, metric_names[i]) == 0) {
      *out = (enum lb_sens_metric)i;
      return true;
    }
  return false;
}

int64_t lb_sens_weight_bytes(const struct lb_qparams *q, int64_t k, int64_t n) {
  if (!q) return 2 * k * n; /* an f16 weight: no codes or scales, 2 bytes a weight */
  int64_t bytes = (k * n * q->bits + 7) / 8;
  bytes += q->n * (q->bits < 8 ? 2 : 4);
  if (q->zero_points) bytes += q->n;
  return bytes;
}

void lb_sens_table_free(struct lb_sens_table *t) {
  for (int32_t i = 0; i < t->n_layers; i++) {
    free(t->layers[i].value);
    free(t->layers[i].node);
  }
  free(t->layers);
  free(t->cells);
  free(t->whole);
  memset(t, 0, sizeof *t);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

/* ---- the samples and the float reference ---------------------------------------- */

struct reference {
  int64_t n_samples;
  int32_t n_inputs;
  struct lbrt_tensor *inputs; /* [sample * n_inputs + k] */
  int32_t n_outs;
  int32_t *out_index;         /* the compared outputs: f32 graph outputs, by position */
  int64_t *out_numel, *out_last;
  float **ref;                /* [sample * n_outs + j]: the float model's output */
};

static void reference_free(struct reference *r) {
  if (r->inputs)
    for (int64_t i = 0; i < r->n_samples * r->n_inputs; i++) lbrt_tensor_free(&r->inputs[i]);
  free(r->inputs);
  if (r->ref)
    for (int64_t i = 0; i < r->n_samples * r->n_outs; i++) free(r->ref[i]);
  free(r->ref);
  free(r->out_index);
  free(r->out_numel);
  free(r->out_last);
}

static enum lb_status read_samples(const struct lb_graph *g, const char *dir, struct reference *r, struct lb_diag *d) {
  char **names = NULL;
  enum lb_status st = lb_calib_list_samples(dir, &names, &r->n_samples, d);
  if (st != LB_OK) return st;
  r->n_inputs = g->n_inputs;
  r->inputs = calloc((size_t)(r->n_samples * r->n_inputs + 1), sizeof *r->inputs);
  if (!r->inputs) abort();
  for (int64_t s = 0; st == LB_OK && s < r->n_samples; s++) {
    size_t len = strlen(dir) + strlen(names[s]) + 2;
    char *sdir = malloc(len);
    if (!sdir) abort();
    snprintf(sdir, len, "%s/%s", dir, names[s]);
    for (int32_t k = 0; st == LB_OK && k < g->n_inputs; k++)
      st = lb_calib_read_input(sdir, k, g->inputs[k], &r->inputs[s * r->n_inputs + k], d);
    free(sdir);
  }
  lb_calib_samples_free(names, r->n_samples);
  return st;
}

static enum lb_status pick_outputs(const struct lb_graph *g, enum lb_sens_metric m, struct reference *r,
                                   struct lb_diag *d) {
  r->out_index = calloc((size_t)g->n_outputs + 1, sizeof *r->out_index);
  r->out_numel = calloc((size_t)g->n_outputs + 1, sizeof *r->out_numel);
  r->out_last = calloc((size_t)g->n_outputs + 1, sizeof *r->out_last);
  if (!r->out_index || !r->out_numel || !r->out_last) abort();
  for (int32_t k = 0; k < g->n_outputs; k++) {
    const struct lb_value *v = g->outputs[k];
    if (v->type.dtype != LB_DTYPE_F32) continue;
    const struct lb_shape *s = &v->type.shape;
    int64_t last = s->rank ? s->dims[s->rank - 1] : 1;
    if (m == LB_SENS_KL && last < 2)
      return lb_diag_error(d, LB_ERR_USAGE, NULL,
                           "sensitivity: --metric kl compares softmax distributions over the last dimension, but "
                           "output \"%s\" has last dimension %lld (use --metric mse)",
                           v->name, (long long)last);
    r->out_index[r->n_outs] = k;
    r->out_numel[r->n_outs] = lb_shape_numel(s);
    r->out_last[r->n_outs] = last;
    r->n_outs++;
  }
  if (!r->n_outs)
    return lb_diag_error(d, LB_ERR_INVALID, NULL, "sensitivity: the model has no f32 output to measure the error on");
  return LB_OK;
}

/* ---- one compiled model ------------------------------------------------------------- */

struct model_run {
  struct lb_jit *jit;
  void **outs;
  void *act;
  int32_t n_outs;
};

/* Plans g (consumed: freed here) and JIT-compiles it. The planner's notes are
 * dropped: they are not for the user of this report. */
static enum lb_status model_build(struct lb_graph *g, const struct lb_codegen_options *cg, struct model_run *m,
                                  struct lb_diag *d) {
  struct lb_codegen_options co = cg ? *cg : (struct lb_codegen_options){.opt_level = 3};
  co.model_name = "lowbit_sensitivity";
  struct lb_diag pd;
  lb_diag_init(&pd, d->file);
  enum lb_status st = lb_pass_manager_run(g, "dce,plan-memory", NULL, &pd);
  if (st == LB_OK) st = lb_jit_compile(g, &co, &m->jit, &pd);
  if (st != LB_OK) {
    if (pd.text) lb_diag_append_error(d, st, pd.text, strlen(pd.text));
    else lb_diag_error(d, st, NULL, "sensitivity: compiling a trial model failed");
  } else {
    m->n_outs = g->n_outputs;
    m->outs = calloc((size_t)g->n_outputs + 1, sizeof *m->outs);
    if (!m->outs) abort();
    for (int32_t i = 0; i < g->n_outputs; i++) m->outs[i] = lb_blob_alloc((size_t)lb_type_nbytes(&g->outputs[i]->type));
    m->act = lb_blob_alloc((size_t)lb_jit_activations_size(m->jit));
  }
  lb_diag_free(&pd);
  lb_graph_free(g);
  return st;
}

static void model_free(struct model_run *m) {
  if (m->outs)
    for (int32_t i = 0; i < m->n_outs; i++) free(m->outs[i]);
  free(m->outs);
  free(m->act);
  if (m->jit) lb_jit_free(m->jit);
  memset(m, 0, sizeof *m);
}

/* Runs sample s; the selector inputs (if any) follow the model's own inputs. */
static enum lb_status model_run(struct model_run *m, const struct reference *r, int64_t s, const uint8_t *sel,
                                int32_t n_sel, struct lb_diag *d) {
  const void **ins = malloc(sizeof *ins * (size_t)(r->n_inputs + n_sel + 1));
  if (!ins) abort();
  for (int32_t k = 0; k < r->n_inputs; k++) ins[k] = r->inputs[s * r->n_inputs + k].data;
  for (int32_t k = 0; k < n_sel; k++) ins[r->n_inputs + k] = &sel[k];
  int32_t rc = lb_jit_run(m->jit, ins, m->outs, m->act);
  free(ins);
  if (rc != 0)
    return lb_diag_error(d, LB_ERR_BACKEND, NULL, "sensitivity: sample %lld: the model returned %d", (long long)s,
                         (int)rc);
  return LB_OK;
}

/* ---- the error ---------------------------------------------------------------------- */

struct acc {
  double metric_sum; /* sum of squared errors (mse) or of row KLs (kl) */
  int64_t count;     /* elements (mse) or rows (kl) */
  double signal, noise;
  bool nan;
};

double lb_sens_row_kl(const float *f, const float *q, int64_t n) {
  double mf = -INFINITY, mq = -INFINITY;
  for (int64_t i = 0; i < n; i++) {
    if (f[i] > mf) mf = f[i];
    if (q[i] > mq) mq = q[i];
  }
  double sf = 0, sq = 0;
  for (int64_t i = 0; i < n; i++) {
    sf += exp(f[i] - mf);
    sq += exp(q[i] - mq);
  }
  double lzf = mf + log(sf), lzq = mq + log(sq), kl = 0;
  for (int64_t i = 0; i < n; i++) {
    double lpf = f[i] - lzf, lpq = q[i] - lzq;
    kl += exp(lpf) * (lpf - lpq);
  }
  return kl > 0 ? kl : 0; /* rounding can leave -1e-17 for equal rows */
}

static void acc_add(struct acc *a, enum lb_sens_metric m, const float *f, const float *q, int64_t numel,
                    int64_t last) {
  for (int64_t i = 0; i < numel; i++) {
    double e = (double)f[i] - q[i];
    if (isnan(e)) a->nan = true;
    a->signal += (double)f[i] * f[i];
    a->noise += e * e;
  }
  if (m == LB_SENS_MSE) {
    a->metric_sum = a->noise;
    a->count += numel;
    return;
  }
  for (int64_t r = 0; r < numel / last; r++) a->metric_sum += lb_sens_row_kl(f + r * last, q + r * last, last);
  a->count += numel / last;
}

static struct lb_sens_error acc_result(const struct acc *a) {
  if (a->nan) return (struct lb_sens_error){NAN, NAN};
  return (struct lb_sens_error){.error = a->count ? a->metric_sum / (double)a->count : 0,
                                .rel_rms = a->signal > 0 ? sqrt(a->noise / a->signal) : 0};
}

/* Runs the switchboard m with selectors sel on every sample against the reference. */
static enum lb_status trial(struct model_run *m, const uint8_t *sel, int32_t n_sel, const struct reference *r,
                            enum lb_sens_metric metric, struct lb_sens_error *out, struct lb_diag *d) {
  struct acc a = {0};
  enum lb_status st = LB_OK;
  for (int64_t s = 0; st == LB_OK && s < r->n_samples; s++) {
    st = model_run(m, r, s, sel, n_sel, d);
    for (int32_t j = 0; st == LB_OK && j < r->n_outs; j++)
      acc_add(&a, metric, r->ref[s * r->n_outs + j], m->outs[r->out_index[j]], r->out_numel[j], r->out_last[j]);
  }
  if (st == LB_OK) *out = acc_result(&a);
  return st;
}

static enum lb_status compute_reference(const struct lb_graph *float_g, const struct lb_sens_options *o,
                                        struct reference *r, struct lb_diag *d) {
  struct model_run m = {0};
  enum lb_status st = model_build(lb_graph_clone(float_g), o->cg, &m, d);
  r->ref = calloc((size_t)(r->n_samples * r->n_outs + 1), sizeof *r->ref);
  if (!r->ref) abort();
  for (int64_t s = 0; st == LB_OK && s < r->n_samples; s++) {
    st = model_run(&m, r, s, NULL, 0, d);
    for (int32_t j = 0; st == LB_OK && j < r->n_outs; j++) {
      size_t nb = sizeof(float) * (size_t)r->out_numel[j];
      float *copy = malloc(nb ? nb : 1);
      if (!copy) abort();
      memcpy(copy, m.outs[r->out_index[j]], nb);
      r->ref[s * r->n_outs + j] = copy;
    }
  }
  model_free(&m);
  return st;
}

/* ---- layers and trials ---------------------------------------------------------------- */

static const struct lb_node *find_qmatmul(const struct lb_graph *q, const char *value) {
  const struct lb_value *v = lb_graph_find_value(q, value);
  if (!v || !v->producer || v->producer->dead || v->producer->op != LB_OP_QMATMUL) return NULL;
  return v->producer;
}

/* What lb_quant_rewrite can copy: i8 codes (u8 fp8 codes) with qparams, or f16 values without. */
static bool qmatmul_weight_ok(const struct lb_value *w) {
  enum lb_dtype dt = w->type.dtype;
  return w->qparams ? dt == (w->qparams->fp8 ? LB_DTYPE_U8 : LB_DTYPE_I8) : dt == LB_DTYPE_F16;
}

/* A float linear layer the quantize pass would take. */
static bool quantizable(const struct lb_graph *g, const struct lb_node *n) {
  bool linear = n->op == LB_OP_MATMUL || n->op == LB_OP_GEMM || n->op == LB_OP_FUSED_MATMUL;
  return linear && lb_quant_classify(g, n) == LB_QSKIP_NONE;
}

static int32_t node_index(const struct lb_graph *g, const char *value) {
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (!g->nodes[i]->dead && g->nodes[i]->n_outputs && strcmp(g->nodes[i]->outputs[0]->name, value) == 0) return i;
  return -1;
}

/* The layers: float nodes whose output some candidate made a qmatmul, in graph order. */
static enum lb_status find_layers(const struct lb_graph *float_g, const struct lb_sens_candidate *c, int32_t nc,
                                  struct lb_sens_table *t, struct lb_diag *d) {
  t->layers = calloc((size_t)float_g->n_nodes + 1, sizeof *t->layers);
  if (!t->layers) abort();
  for (int32_t j = 0; j < nc; j++)
    for (int32_t i = 0; i < c[j].quant_g->n_nodes; i++) {
      const struct lb_node *qn = c[j].quant_g->nodes[i];
      if (qn->dead || qn->op != LB_OP_QMATMUL) continue;
      int32_t fi = node_index(float_g, qn->outputs[0]->name);
      if (fi < 0 || !quantizable(float_g, float_g->nodes[fi]))
        return lb_diag_error(d, LB_ERR_INVALID, qn,
                             "sensitivity: candidate %s quantized \"%s\", which the float model has no quantizable "
                             "layer for",
                             c[j].label, qn->outputs[0]->name);
    }
  /* graph order of the float model */
  for (int32_t i = 0; i < float_g->n_nodes; i++) {
    const struct lb_node *fn = float_g->nodes[i];
    if (fn->dead || !fn->n_outputs) continue;
    bool any = false;
    for (int32_t j = 0; j < nc && !any; j++) any = find_qmatmul(c[j].quant_g, fn->outputs[0]->name) != NULL;
    if (!any) continue;
    struct lb_quant_linear l;
    lb_quant_linear_of(float_g, fn, &l);
    struct lb_sens_layer *L = &t->layers[t->n_layers++];
    L->value = strdup(fn->outputs[0]->name);
    L->node = strdup(fn->name ? fn->name : "");
    if (!L->value || !L->node) abort();
    L->k = l.k;
    L->n = l.n;
    L->float_bytes = 4 * l.k * l.n;
  }
  return LB_OK;
}

enum lb_status lb_sens_graft(struct lb_graph *g, const struct lb_graph *cand, const char *value, struct lb_diag *d) {
  const struct lb_node *qn = find_qmatmul(cand, value);
  int32_t i = node_index(g, value);
  if (!qn) return lb_diag_error(d, LB_ERR_INVALID, NULL, "sensitivity: \"%s\" is not a qmatmul of the candidate", value);
  if (i < 0 || !quantizable(g, g->nodes[i]))
    return lb_diag_error(d, LB_ERR_INVALID, qn, "sensitivity: the graph has no float layer \"%s\" to quantize", value);
  const struct lb_value *w = qn->inputs[1];
  const void *codes = lb_value_const_data(cand, w);
  LB_ASSERT(codes && qmatmul_weight_ok(w)); /* qmatmul weights: docs/ir-ops.md */
  lb_quant_rewrite(g, i, codes, w->qparams, lb_node_attr_string(qn, "a_quant", "none"));
  return LB_OK;
}

/* ---- the switchboard: one compile per candidate -------------------------------------
 * Every layer the candidate quantized gets a quantized twin beside its float
 * node, and a `where` picks one of the two by a bool graph input (a selector):
 *
 *   %h = fused_matmul(%x, %w, %b)            (float, as before)
 *   %h.q = qmatmul(%x, %w.q, %b)             (the candidate's codes, lb_quant_rewrite)
 *   %h.sel = where(%lowbit.sel, %h.q, %h)    (what the rest of the model reads)
 *
 * `where` copies the chosen value, so with one selector set the outputs are
 * bit for bit those of the float model with that one layer quantized, and with
 * all set those of the candidate: one JIT compile serves all of a candidate's
 * trials. The extra float or quantized branch costs one layer's run time, far
 * less than a compile. */

static void copy_attrs(struct lb_graph *g, const struct lb_node *from, struct lb_node *to) {
  for (int32_t i = 0; i < from->n_attrs; i++) {
    const struct lb_attr *a = &from->attrs[i];
    switch (a->kind) {
    case LB_ATTR_INT: lb_node_set_attr_int(g, to, a->name, a->i); break;
    case LB_ATTR_FLOAT: lb_node_set_attr_float(g, to, a->name, a->f); break;
    case LB_ATTR_STRING: lb_node_set_attr_string(g, to, a->name, a->s); break;
    case LB_ATTR_INTS: lb_node_set_attr_ints(g, to, a->name, a->ints, a->n); break;
    case LB_ATTR_FLOATS: lb_node_set_attr_floats(g, to, a->name, a->floats, a->n); break;
    case LB_ATTR_STRINGS: lb_node_set_attr_strings(g, to, a->name, a->strings, a->n); break;
    default: LB_ASSERT(!"copy_attrs: a matmul-family node with a tensor attribute");
    }
  }
}

/* Inserts node (op, inputs) named like `like` with one output of type t, named
 * `<base><suffix>` (made unique), just after position `pos`. */
static struct lb_node *insert_after(struct lb_graph *g, int32_t pos, enum lb_op op, const struct lb_node *like,
                                    struct lb_value *const *ins, int32_t n_ins, const char *base, const char *suffix,
                                    const struct lb_type *t) {
  size_t len = strlen(base) + strlen(suffix) + 1;
  char *name = malloc(len);
  if (!name) abort();
  snprintf(name, len, "%s%s", base, suffix);
  const char *out = lb_graph_unique_name(g, name);
  free(name);
  struct lb_node *n = pos + 1 < g->n_nodes
                          ? lb_graph_insert_node(g, g->nodes[pos + 1], op, like->name, ins, n_ins, &out, 1)
                          : lb_graph_add_node(g, op, like->name, ins, n_ins, &out, 1);
  n->outputs[0]->type = *t;
  return n;
}

/* Adds layer `value`'s twin from candidate q and its selector (the next graph input). */
static void add_switch(struct lb_graph *g, const struct lb_graph *q, const char *value) {
  const struct lb_node *qn = find_qmatmul(q, value);
  int32_t fi = node_index(g, value);
  LB_ASSERT(qn && fi >= 0 && quantizable(g, g->nodes[fi])); /* find_layers matched it */
  struct lb_node *fn = g->nodes[fi];
  struct lb_value *v = fn->outputs[0];
  struct lb_type bool_scalar = {.dtype = LB_DTYPE_BOOL};
  struct lb_value *sel = lb_value_new(g, lb_graph_unique_name(g, "lowbit.sel"), bool_scalar);
  lb_graph_add_input(g, sel);

  struct lb_node *twin = insert_after(g, fi, fn->op, fn, fn->inputs, fn->n_inputs, value, ".q", &v->type);
  copy_attrs(g, fn, twin);
  const struct lb_value *w = qn->inputs[1];
  const void *codes = lb_value_const_data(q, w);
  LB_ASSERT(codes && qmatmul_weight_ok(w)); /* qmatmul weights: docs/ir-ops.md */
  int32_t ti = lb_quant_rewrite(g, fi + 1, codes, w->qparams, lb_node_attr_string(qn, "a_quant", "none"));

  struct lb_value *ins[3] = {sel, twin->outputs[0], twin->outputs[0]};
  struct lb_node *pick = insert_after(g, ti, LB_OP_WHERE, fn, ins, 3, value, ".sel", &v->type);
  lb_graph_replace_uses(g, v, pick->outputs[0]); /* readers and graph outputs; not the twin or pick */
  pick->inputs[2] = v;
}

/* The switchboard of candidate c over the layers it quantized (in table order:
 * layer i's selector is input n_inputs + sel_index[i], or -1 when absent). */
static enum lb_status switchboard_build(const struct lb_graph *float_g, const struct lb_graph *cand,
                                        const struct lb_sens_table *t, const struct lb_sens_options *o,
                                        struct model_run *m, int32_t *sel_index, int32_t *n_sel,
                                        struct lb_diag *d) {
  struct lb_graph *g = lb_graph_clone(float_g);
  *n_sel = 0;
  for (int32_t i = 0; i < t->n_layers; i++) {
    sel_index[i] = -1;
    if (!find_qmatmul(cand, t->layers[i].value)) continue;
    add_switch(g, cand, t->layers[i].value);
    sel_index[i] = (*n_sel)++;
  }
  enum lb_status st = lb_graph_verify(g, d);
  if (st != LB_OK) {
    lb_graph_free(g);
    return st;
  }
  return model_build(g, o->cg, m, d);
}

enum lb_status lb_sensitivity(const struct lb_graph *float_g, const struct lb_sens_candidate *cands,
                              int32_t n_cands, const struct lb_sens_options *o, struct lb_sens_table *out,
                              struct lb_diag *d) {
  LB_ASSERT(o && o->calib_dir && n_cands >= 1);
  memset(out, 0, sizeof *out);
  out->metric = o->metric;
  out->n_candidates = n_cands;
  struct reference r = {0};
  enum lb_status st = find_layers(float_g, cands, n_cands, out, d);
  out->cells = calloc((size_t)out->n_layers * (size_t)n_cands + 1, sizeof *out->cells);
  if (!out->cells) abort();
  int64_t total = 0, done = 0;
  for (int32_t i = 0; i < out->n_layers; i++)
    for (int32_t j = 0; j < n_cands; j++) total += find_qmatmul(cands[j].quant_g, out->layers[i].value) != NULL;
  if (o->whole_model) {
    total += n_cands;
    out->whole = calloc((size_t)n_cands, sizeof *out->whole);
    if (!out->whole) abort();
  }
  if (st == LB_OK) st = pick_outputs(float_g, o->metric, &r, d);
  if (st == LB_OK) st = read_samples(float_g, o->calib_dir, &r, d);
  if (st == LB_OK && o->progress) o->progress(o->progress_ctx, 0, total, "float reference", 0);
  if (st == LB_OK) st = compute_reference(float_g, o, &r, d);
  out->samples = r.n_samples;
  double t_all = now_ms();
  int32_t *sel_index = calloc((size_t)out->n_layers + 1, sizeof *sel_index);
  uint8_t *sel = calloc((size_t)out->n_layers + 1, 1);
  if (!sel_index || !sel) abort();
  for (int32_t j = 0; st == LB_OK && j < n_cands; j++) {
    struct model_run m = {0};
    int32_t n_sel = 0;
    double t0 = now_ms();
    st = switchboard_build(float_g, cands[j].quant_g, out, o, &m, sel_index, &n_sel, d);
    for (int32_t i = 0; st == LB_OK && i < out->n_layers; i++) {
      if (sel_index[i] < 0) continue;
      /* qparams, or none for an f16 weight (docs/ir-ops.md) */
      const struct lb_qparams *q = find_qmatmul(cands[j].quant_g, out->layers[i].value)->inputs[1]->qparams;
      struct lb_sens_cell *c = &out->cells[(int64_t)i * n_cands + j];
      *c = (struct lb_sens_cell){.present = true, .bits = q ? q->bits : 16, .group = q ? q->group_size : 0,
                                 .asym = q && q->zero_points != NULL,
                                 .bytes = lb_sens_weight_bytes(q, out->layers[i].k, out->layers[i].n)};
      memset(sel, 0, (size_t)n_sel);
      sel[sel_index[i]] = 1;
      st = trial(&m, sel, n_sel, &r, o->metric, &c->err, d);
      done++;
      if (st == LB_OK && o->progress) {
        char what[256];
        snprintf(what, sizeof what, "%s %s", out->layers[i].value, cands[j].label);
        o->progress(o->progress_ctx, done, total, what, now_ms() - t0);
      }
      t0 = now_ms();
    }
    if (st == LB_OK && o->whole_model) {
      memset(sel, 1, (size_t)n_sel);
      st = trial(&m, sel, n_sel, &r, o->metric, &out->whole[j], d);
      done++;
      if (st == LB_OK && o->progress) {
        char what[160];
        snprintf(what, sizeof what, "all layers %s", cands[j].label);
        o->progress(o->progress_ctx, done, total, what, now_ms() - t0);
      }
    }
    model_free(&m);
  }
  if (done) out->trial_ms = (now_ms() - t_all) / (double)done;
  free(sel_index);
  free(sel);
  reference_free(&r);
  if (st != LB_OK) lb_sens_table_free(out);
  return st;
}
