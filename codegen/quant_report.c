/* quant_report.c: per-layer error of a quantized model against its float
 * original, as a Markdown report (see codegen/quant_report.h).
 *
 * Both graphs are copied, the values to compare (each qmatmul's output in the
 * quantized copy, the value of the same name in the float copy, and the model
 * outputs) become graph outputs of the copies (lb_calib_expose_value), and the
 * copies are planned and JIT-compiled. Each calibration sample is then run
 * through both models with the same input buffers and the matched outputs are
 * folded into running sums, so memory does not grow with the sample count.
 * lb_quant_compare runs the same loop on values the caller names and returns
 * the numbers (the mixed-precision report of `lowbit analyze`).
 */
#include "codegen/quant_report.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/calibrate.h"
#include "passes/pass.h"
#include "runtime/lbrt.h"

/* ---- error accumulation ------------------------------------------------------- */

/* A value the report can read as real numbers: f32, or 8-bit with per-tensor qparams. */
static bool readable(const struct lb_value *v) {
  if (v->type.dtype == LB_DTYPE_F32) return true;
  return (v->type.dtype == LB_DTYPE_I8 || v->type.dtype == LB_DTYPE_U8) && v->qparams && v->qparams->n == 1;
}

static double real_at(const void *buf, const struct lb_value *v, int64_t i) {
  if (v->type.dtype == LB_DTYPE_F32) return ((const float *)buf)[i];
  const struct lb_qparams *q = v->qparams;
  double x = v->type.dtype == LB_DTYPE_I8 ? ((const int8_t *)buf)[i] : ((const uint8_t *)buf)[i];
  return (x - (q->zero_points ? q->zero_points[0] : 0)) * q->scales[0];
}

struct err_acc {
  double signal, noise, max_abs; /* sum x_f^2, sum (x_f - x_q)^2, max |x_f - x_q| */
  bool nan;                       /* a NaN on either side */
};

static void err_add(struct err_acc *a, const void *fbuf, const struct lb_value *fv, const void *qbuf,
                    const struct lb_value *qv, int64_t n) {
  for (int64_t i = 0; i < n; i++) {
    double xf = real_at(fbuf, fv, i), e = xf - real_at(qbuf, qv, i);
    if (isnan(e)) {
      a->nan = true;
      continue;
    }
    a->signal += xf * xf;
    a->noise += e * e;
    if (fabs(e) > a->max_abs) a->max_abs = fabs(e);
  }
}

/* NaN when a NaN was seen, +inf for an exact match, -inf for a zero signal with error. */
static double err_sqnr_db(const struct err_acc *a) {
  if (a->nan) return NAN;
  if (a->noise == 0) return INFINITY;
  return 10.0 * log10(a->signal / a->noise);
}

/* ---- the compared values --------------------------------------------------------- */

/* One compared value: its definitions in the caller's graphs (for the text) and
 * the output slots of the copies (lb_calib_expose_value: >= 0 output, < 0 input). */
struct pair {
  const struct lb_node *qnode;      /* the qmatmul in quant_g; NULL for a model output */
  const struct lb_value *fv, *qv;   /* in the copies */
  int32_t fslot, qslot;
  int32_t order;                    /* graph order, to break ties */
  struct err_acc acc;
  double sqnr;
};

static const void *slot_data(int32_t slot, void *const *outs, const void *const *ins) {
  return slot >= 0 ? outs[slot] : ins[-1 - slot];
}

/* Worst first: NaN, then ascending SQNR; graph order among equals. */
static int cmp_worst_first(const void *pa, const void *pb) {
  const struct pair *a = pa, *b = pb;
  bool na = isnan(a->sqnr), nb = isnan(b->sqnr);
  if (na != nb) return na ? -1 : 1;
  if (!na && a->sqnr != b->sqnr) return a->sqnr < b->sqnr ? -1 : 1;
  return a->order - b->order;
}

/* The layers: every qmatmul of q, with the float value of the same name. */
static enum lb_status match_layers(const struct lb_graph *quant_g, struct lb_graph *fc, struct lb_graph *qc,
                                   struct pair **out, int32_t *n_out, struct lb_diag *d) {
  int32_t n = 0;
  for (int32_t i = 0; i < quant_g->n_nodes; i++) n += quant_g->nodes[i]->op == LB_OP_QMATMUL && !quant_g->nodes[i]->dead;
  struct pair *p = calloc((size_t)(n ? n : 1), sizeof *p);
  if (!p) abort();
  *out = p;
  *n_out = 0;
  for (int32_t i = 0; i < quant_g->n_nodes; i++) {
    const struct lb_node *qn = quant_g->nodes[i];
    if (qn->op != LB_OP_QMATMUL || qn->dead) continue;
    const char *name = qn->outputs[0]->name;
    struct lb_value *fv = lb_graph_find_value(fc, name), *qv = lb_graph_find_value(qc, name);
    if (!fv)
      return lb_diag_error(d, LB_ERR_INVALID, qn, "quantization report: the float model has no value \"%s\" to compare with",
                           name);
    if (!readable(fv) || !readable(qv) || lb_shape_numel(&fv->type.shape) != lb_shape_numel(&qv->type.shape))
      return lb_diag_error(d, LB_ERR_INVALID, qn,
                           "quantization report: \"%s\" is %s[%lld elements] in the float model and %s[%lld elements] "
                           "in the quantized one (expected f32, or 8-bit with per-tensor qparams, of the same size)",
                           name, lb_dtype_traits[fv->type.dtype].name, (long long)lb_shape_numel(&fv->type.shape),
                           lb_dtype_traits[qv->type.dtype].name, (long long)lb_shape_numel(&qv->type.shape));
    struct pair *l = &p[(*n_out)++];
    l->qnode = qn;
    l->fv = fv;
    l->qv = qv;
    l->order = i;
    l->fslot = lb_calib_expose_value(fc, fv);
    l->qslot = lb_calib_expose_value(qc, qv);
  }
  return LB_OK;
}

/* The model outputs, by position (before any value was exposed). Outputs that
 * are not real-valued (e.g. token ids) are left out. */
static enum lb_status match_outputs(struct lb_graph *fc, struct lb_graph *qc, struct pair **out, int32_t *n_out,
                                    struct lb_diag *d) {
  if (fc->n_outputs != qc->n_outputs)
    return lb_diag_error(d, LB_ERR_INVALID, NULL,
                         "quantization report: the float model has %d outputs and the quantized one %d",
                         (int)fc->n_outputs, (int)qc->n_outputs);
  struct pair *p = calloc((size_t)(fc->n_outputs ? fc->n_outputs : 1), sizeof *p);
  if (!p) abort();
  *out = p;
  *n_out = 0;
  for (int32_t k = 0; k < fc->n_outputs; k++) {
    struct lb_value *fv = fc->outputs[k], *qv = qc->outputs[k];
    if (!readable(fv) || !readable(qv) || lb_shape_numel(&fv->type.shape) != lb_shape_numel(&qv->type.shape))
      continue;
    struct pair *o = &p[(*n_out)++];
    o->fv = fv;
    o->qv = qv;
    o->order = k;
    o->fslot = lb_calib_expose_value(fc, fv);
    o->qslot = lb_calib_expose_value(qc, qv);
  }
  return LB_OK;
}

static enum lb_status check_same_inputs(const struct lb_graph *f, const struct lb_graph *q, struct lb_diag *d) {
  bool same = f->n_inputs == q->n_inputs;
  for (int32_t k = 0; same && k < f->n_inputs; k++)
    same = f->inputs[k]->type.dtype == q->inputs[k]->type.dtype &&
           lb_shape_equal(&f->inputs[k]->type.shape, &q->inputs[k]->type.shape);
  if (!same)
    return lb_diag_error(d, LB_ERR_INVALID, NULL,
                         "quantization report: the quantized model's inputs differ from the float model's");
  return LB_OK;
}

/* ---- running both models --------------------------------------------------------- */

struct model_run {
  struct lb_graph *g;
  struct lb_jit *jit;
  void **outs;
  void *act;
};

static enum lb_status model_prepare(struct model_run *m, const struct lb_codegen_options *cg, const char *name,
                                    struct lb_diag *d) {
  struct lb_codegen_options co;
  memset(&co, 0, sizeof co);
  if (cg) co = *cg;
  else co.opt_level = 3;
  co.model_name = name;
  enum lb_status st = lb_pass_manager_run(m->g, "plan-memory", NULL, d);
  if (st == LB_OK) st = lb_jit_compile(m->g, &co, &m->jit, d);
  if (st != LB_OK) return st;
  m->outs = calloc((size_t)m->g->n_outputs + 1, sizeof *m->outs);
  if (!m->outs) abort();
  for (int32_t i = 0; i < m->g->n_outputs; i++) m->outs[i] = lb_blob_alloc((size_t)lb_type_nbytes(&m->g->outputs[i]->type));
  m->act = lb_blob_alloc((size_t)lb_jit_activations_size(m->jit));
  return LB_OK;
}

static void model_free(struct model_run *m) {
  if (m->outs)
    for (int32_t i = 0; i < m->g->n_outputs; i++) free(m->outs[i]);
  free(m->outs);
  free(m->act);
  lb_jit_free(m->jit);
  lb_graph_free(m->g);
}

static enum lb_status model_run(struct model_run *m, const void *const *ins, const char *sdir, const char *what,
                                struct lb_diag *d) {
  int32_t rc = lb_jit_run(m->jit, ins, m->outs, m->act);
  if (rc != 0)
    return lb_diag_error(d, LB_ERR_BACKEND, NULL, "quantization report: sample '%s': the %s model returned %d", sdir,
                         what, (int)rc);
  return LB_OK;
}

static void accumulate(struct pair *p, int32_t n, const struct model_run *f, const struct model_run *q,
                       const void *const *ins) {
  for (int32_t i = 0; i < n; i++)
    err_add(&p[i].acc, slot_data(p[i].fslot, f->outs, ins), p[i].fv, slot_data(p[i].qslot, q->outs, ins), p[i].qv,
            lb_shape_numel(&p[i].fv->type.shape));
}

/* ---- the Markdown text ----------------------------------------------------------- */

/* A name in backticks, with the table separator escaped; nothing for "". */
static void put_name(FILE *f, const char *s) {
  if (!*s) return;
  fputc('`', f);
  for (; *s; s++) {
    if (*s == '|') fputc('\\', f);
    fputc(*s == '`' ? '\'' : *s, f);
  }
  fputc('`', f);
}

static void put_db(FILE *f, double x) {
  if (isnan(x)) fputs("NaN", f);
  else if (isinf(x)) fputs(x > 0 ? "inf (exact)" : "-inf", f);
  else fprintf(f, "%.2f", x);
}

static void put_max_err(FILE *f, const struct err_acc *a) {
  if (a->nan) fputs("NaN", f);
  else fprintf(f, "%.4g", a->max_abs);
}

/* "W8A8 static", "W8A8 dynamic", "W8 (weight-only)", with the weight layout. */
static void scheme_text(const struct lb_node *qn, char *buf, size_t len) {
  const char *aq = lb_node_attr_string(qn, "a_quant", "none");
  const struct lb_qparams *wq = qn->inputs[1]->qparams, *aqp = qn->inputs[0]->qparams;
  int wbits = wq ? (int)wq->bits : 8, abits = aqp ? (int)aqp->bits : 8;
  const char *layout = !wq ? "?" : wq->axis < 0 ? "per-tensor" : wq->group_size > 0 ? "per-group" : "per-channel";
  if (!wq && qn->inputs[1]->type.dtype == LB_DTYPE_F16) /* no scales, a_quant none only */
    snprintf(buf, len, "F16 weight-only");
  else if (wq && wq->fp8) /* a_quant none only */
    snprintf(buf, len, "FP8 %s weight-only, %s weights", lb_qfloat_name(wq->fp8), layout);
  else if (strcmp(aq, "static") == 0)
    snprintf(buf, len, "W%dA%d static%s, %s weights", wbits, abits, aqp && aqp->is_unsigned ? " (u8)" : "", layout);
  else if (strcmp(aq, "dynamic") == 0)
    snprintf(buf, len, "W%dA8 dynamic, %s weights", wbits, layout);
  else
    snprintf(buf, len, "W%d weight-only, %s weights", wbits, layout);
}

/* Activation columns: range, scale, zero point. */
static void put_activation(FILE *f, const struct lb_node *qn) {
  const char *aq = lb_node_attr_string(qn, "a_quant", "none");
  const struct lb_qparams *q = qn->inputs[0]->qparams;
  if (strcmp(aq, "dynamic") == 0) {
    fputs("per row at run time | max\\|row\\|/127 | 0", f);
  } else if (strcmp(aq, "static") == 0 && q && q->n >= 1) {
    int64_t qmin = q->is_unsigned ? 0 : -(INT64_C(1) << (q->bits - 1));
    int64_t qmax = q->is_unsigned ? (INT64_C(1) << q->bits) - 1 : (INT64_C(1) << (q->bits - 1)) - 1;
    int32_t zp = q->zero_points ? q->zero_points[0] : 0;
    fprintf(f, "[%.6g, %.6g] | %.6g | %d", (double)(qmin - zp) * q->scales[0], (double)(qmax - zp) * q->scales[0],
            q->scales[0], (int)zp);
  } else if (strcmp(aq, "static") == 0) {
    fputs("? (no qparams) | | ", f);
  } else {
    fputs("f32 | | ", f);
  }
}

static void put_weights(FILE *f, const struct lb_node *qn) {
  const struct lb_value *w = qn->inputs[1];
  const struct lb_qparams *q = w->qparams;
  fprintf(f, "%s[", lb_dtype_traits[w->type.dtype].name);
  for (int32_t i = 0; i < w->type.shape.rank; i++) fprintf(f, "%s%lld", i ? "," : "", (long long)w->type.shape.dims[i]);
  fputs("] | ", f);
  if (!q || q->n < 1) {
    fputs(!q && w->type.dtype == LB_DTYPE_F16 ? "none | none" : "? | ?", f); /* f16 weights have no scales */
    return;
  }
  float lo = q->scales[0], hi = q->scales[0];
  for (int64_t i = 1; i < q->n; i++) {
    if (q->scales[i] < lo) lo = q->scales[i];
    if (q->scales[i] > hi) hi = q->scales[i];
  }
  fprintf(f, "%.6g | %.6g", lo, hi);
}

static void write_report(FILE *f, const struct lb_graph *quant_g, const char *dir, int64_t samples,
                         const struct pair *layers, int32_t n_layers, const struct pair *outs, int32_t n_outs,
                         const struct lb_graph *fc) {
  fprintf(f, "# Quantization report: %s\n\n", quant_g->name);
  fputs("| | |\n|---|---|\n", f);
  fputs("| model | ", f);
  put_name(f, quant_g->name);
  fprintf(f, " |\n| samples | %lld (from ", (long long)samples);
  put_name(f, dir);
  fprintf(f, ") |\n| quantized layers | %d qmatmul |\n", (int)n_layers);
  /* one line per distinct scheme, with its layer count, in first-seen order */
  for (int32_t i = 0; i < n_layers; i++) {
    char s[128], t[128];
    scheme_text(layers[i].qnode, s, sizeof s);
    bool seen = false;
    for (int32_t j = 0; j < i && !seen; j++) {
      scheme_text(layers[j].qnode, t, sizeof t);
      seen = strcmp(s, t) == 0;
    }
    if (seen) continue;
    int32_t count = 0;
    for (int32_t j = i; j < n_layers; j++) {
      scheme_text(layers[j].qnode, t, sizeof t);
      count += strcmp(s, t) == 0;
    }
    fprintf(f, "| scheme | %s: %d layer%s |\n", s, (int)count, count == 1 ? "" : "s");
  }
  fputs("\nSQNR = 10 log10(sum x_f^2 / sum (x_f - x_q)^2) over all samples, x_f the float model's value and "
        "x_q the quantized model's (higher is better; every 6 dB is one bit). Both models run end to end, so a "
        "layer's error includes what the layers before it passed on.\n\n",
        f);
  fputs("## Model outputs\n\n| output | SQNR dB | max abs error |\n|---|---:|---:|\n", f);
  for (int32_t i = 0; i < n_outs; i++) {
    fputs("| ", f);
    put_name(f, fc->outputs[outs[i].order]->name);
    fputs(" | ", f);
    put_db(f, outs[i].sqnr);
    fputs(" | ", f);
    put_max_err(f, &outs[i].acc);
    fputs(" |\n", f);
  }
  if (!n_outs) fputs("| (no real-valued outputs) | | |\n", f);
  fputs("\n## Layers, worst first\n\n"
        "| # | value | node | scheme | activation range | act scale | act zp | weight | weight scale min | "
        "weight scale max | SQNR dB | max abs error |\n"
        "|---:|---|---|---|---|---:|---:|---|---:|---:|---:|---:|\n",
        f);
  for (int32_t i = 0; i < n_layers; i++) {
    const struct lb_node *qn = layers[i].qnode;
    char s[128];
    scheme_text(qn, s, sizeof s);
    fprintf(f, "| %d | ", (int)i + 1);
    put_name(f, qn->outputs[0]->name);
    fputs(" | ", f);
    put_name(f, qn->name);
    fprintf(f, " | %s | ", s);
    put_activation(f, qn);
    fputs(" | ", f);
    put_weights(f, qn);
    fputs(" | ", f);
    put_db(f, layers[i].sqnr);
    fputs(" | ", f);
    put_max_err(f, &layers[i].acc);
    fputs(" |\n", f);
  }
  if (!n_layers) fputs("\nThe quantized model has no qmatmul node.\n", f);
}

/* ---- the sample loop ------------------------------------------------------------- */

/* Both models and what is compared: the pairs of values, and optionally the
 * metric of the model outputs (as codegen/sensitivity.c defines it). */
struct comparison {
  struct model_run fm, qm;
  struct pair *layers, *outs;
  int32_t n_layers, n_outs;
  int64_t done;
  bool want_metric;
  enum lb_sens_metric metric;
  double metric_sum; /* squared errors (mse) or row KLs (kl) */
  int64_t metric_count;
  bool metric_nan;
};

/* The outputs' metric: every f32 model output (kl: rows of its last dimension). */
static void metric_add(struct comparison *c, const void *const *ins) {
  for (int32_t i = 0; i < c->n_outs; i++) {
    const struct pair *p = &c->outs[i];
    if (p->fv->type.dtype != LB_DTYPE_F32 || p->qv->type.dtype != LB_DTYPE_F32) continue;
    const float *f = slot_data(p->fslot, c->fm.outs, ins), *q = slot_data(p->qslot, c->qm.outs, ins);
    const struct lb_shape *s = &p->fv->type.shape;
    int64_t numel = lb_shape_numel(s), last = s->rank ? s->dims[s->rank - 1] : 1;
    if (c->metric == LB_SENS_KL && last >= 2) {
      for (int64_t r = 0; r < numel / last; r++) c->metric_sum += lb_sens_row_kl(f + r * last, q + r * last, last);
      c->metric_count += numel / last;
    } else {
      for (int64_t k = 0; k < numel; k++) c->metric_sum += ((double)f[k] - q[k]) * ((double)f[k] - q[k]);
      c->metric_count += numel;
    }
    if (isnan(c->metric_sum)) c->metric_nan = true;
  }
}

/* Runs every calibration sample through both models and accumulates. */
static enum lb_status run_samples(struct comparison *c, const struct lb_quant_report_options *o, struct lb_diag *d) {
  char **names = NULL;
  int64_t n_samples = 0;
  struct lbrt_tensor *tens = calloc((size_t)c->fm.g->n_inputs + 1, sizeof *tens);
  const void **ins = calloc((size_t)c->fm.g->n_inputs + 1, sizeof *ins);
  if (!tens || !ins) abort();
  enum lb_status st = lb_calib_list_samples(o->calib_dir, &names, &n_samples, d);
  if (st == LB_OK) st = model_prepare(&c->fm, o->cg, "lowbit_report_float", d);
  if (st == LB_OK) st = model_prepare(&c->qm, o->cg, "lowbit_report_quant", d);
  if (st == LB_OK && o->progress) o->progress(o->progress_ctx, 0, n_samples);
  for (int64_t s = 0; st == LB_OK && s < n_samples; s++) {
    size_t len = strlen(o->calib_dir) + strlen(names[s]) + 2;
    char *sdir = malloc(len);
    if (!sdir) abort();
    snprintf(sdir, len, "%s/%s", o->calib_dir, names[s]);
    for (int32_t k = 0; k < c->fm.g->n_inputs && st == LB_OK; k++) {
      st = lb_calib_read_input(sdir, k, c->fm.g->inputs[k], &tens[k], d);
      ins[k] = tens[k].data;
    }
    if (st == LB_OK) st = model_run(&c->fm, ins, sdir, "float", d);
    if (st == LB_OK) st = model_run(&c->qm, ins, sdir, "quantized", d);
    if (st == LB_OK) {
      accumulate(c->layers, c->n_layers, &c->fm, &c->qm, ins);
      accumulate(c->outs, c->n_outs, &c->fm, &c->qm, ins);
      if (c->want_metric) metric_add(c, ins);
      c->done++;
      if (o->progress) o->progress(o->progress_ctx, c->done, n_samples);
    }
    for (int32_t k = 0; k < c->fm.g->n_inputs; k++) {
      lbrt_tensor_free(&tens[k]);
      ins[k] = NULL;
    }
    free(sdir);
  }
  if (st == LB_OK) {
    for (int32_t i = 0; i < c->n_layers; i++) c->layers[i].sqnr = err_sqnr_db(&c->layers[i].acc);
    for (int32_t i = 0; i < c->n_outs; i++) c->outs[i].sqnr = err_sqnr_db(&c->outs[i].acc);
  }
  lb_calib_samples_free(names, n_samples);
  free(tens);
  free(ins);
  return st;
}

static void comparison_free(struct comparison *c) {
  free(c->layers);
  free(c->outs);
  model_free(&c->fm);
  model_free(&c->qm);
}

/* ---- entry points ------------------------------------------------------------------ */

enum lb_status lb_quant_report(const struct lb_graph *float_g, const struct lb_graph *quant_g,
                               const struct lb_quant_report_options *o, const char *path, struct lb_diag *d) {
  LB_ASSERT(o && o->calib_dir);
  struct comparison c = {.fm.g = lb_graph_clone(float_g), .qm.g = lb_graph_clone(quant_g)};
  enum lb_status st = check_same_inputs(c.fm.g, c.qm.g, d);
  if (st == LB_OK) st = match_outputs(c.fm.g, c.qm.g, &c.outs, &c.n_outs, d);
  if (st == LB_OK) st = match_layers(quant_g, c.fm.g, c.qm.g, &c.layers, &c.n_layers, d);
  if (st == LB_OK) st = run_samples(&c, o, d);
  if (st == LB_OK) {
    qsort(c.layers, (size_t)c.n_layers, sizeof *c.layers, cmp_worst_first);
    char *tmp = NULL;
    FILE *f = lb_atomic_open(path, &tmp, d);
    if (!f) {
      st = d->status ? d->status : LB_ERR_IO;
    } else {
      write_report(f, quant_g, o->calib_dir, c.done, c.layers, c.n_layers, c.outs, c.n_outs, c.fm.g);
      st = lb_atomic_commit(f, tmp, path, d);
    }
  }
  comparison_free(&c);
  return st;
}

/* The named values, found in both copies. */
static enum lb_status match_values(const char *const *values, int32_t n, struct lb_graph *fc, struct lb_graph *qc,
                                   struct pair **out, struct lb_diag *d) {
  struct pair *p = calloc((size_t)n + 1, sizeof *p);
  if (!p) abort();
  *out = p;
  for (int32_t i = 0; i < n; i++) {
    struct lb_value *fv = lb_graph_find_value(fc, values[i]), *qv = lb_graph_find_value(qc, values[i]);
    if (!fv || !qv)
      return lb_diag_error(d, LB_ERR_INVALID, NULL, "comparing against float: the %s model has no value \"%s\"",
                           fv ? "quantized" : "float", values[i]);
    if (!readable(fv) || !readable(qv) || lb_shape_numel(&fv->type.shape) != lb_shape_numel(&qv->type.shape))
      return lb_diag_error(d, LB_ERR_INVALID, qv->producer,
                           "comparing against float: \"%s\" is %s[%lld elements] in the float model and %s[%lld "
                           "elements] in the quantized one",
                           values[i], lb_dtype_traits[fv->type.dtype].name, (long long)lb_shape_numel(&fv->type.shape),
                           lb_dtype_traits[qv->type.dtype].name, (long long)lb_shape_numel(&qv->type.shape));
    p[i] = (struct pair){.fv = fv, .qv = qv, .order = i};
    p[i].fslot = lb_calib_expose_value(fc, fv);
    p[i].qslot = lb_calib_expose_value(qc, qv);
  }
  return LB_OK;
}

enum lb_status lb_quant_compare(const struct lb_graph *float_g, const struct lb_graph *quant_g,
                                const char *const *values, int32_t n_values, enum lb_sens_metric metric,
                                const struct lb_quant_report_options *o, struct lb_quant_comparison *out,
                                struct lb_diag *d) {
  LB_ASSERT(o && o->calib_dir && out && (out->values || !n_values));
  struct comparison c = {.fm.g = lb_graph_clone(float_g), .qm.g = lb_graph_clone(quant_g), .want_metric = true,
                         .metric = metric};
  enum lb_status st = check_same_inputs(c.fm.g, c.qm.g, d);
  if (st == LB_OK) st = match_outputs(c.fm.g, c.qm.g, &c.outs, &c.n_outs, d);
  if (st == LB_OK) st = match_values(values, n_values, c.fm.g, c.qm.g, &c.layers, d);
  if (st == LB_OK) c.n_layers = n_values;
  if (st == LB_OK) st = run_samples(&c, o, d);
  if (st == LB_OK) {
    for (int32_t i = 0; i < n_values; i++)
      out->values[i] = (struct lb_quant_error){c.layers[i].sqnr, c.layers[i].acc.nan ? NAN : c.layers[i].acc.max_abs};
    out->samples = c.done;
    out->output_metric = c.metric_nan || !c.metric_count ? NAN : c.metric_sum / (double)c.metric_count;
  }
  comparison_free(&c);
  return st;
}
