/* quant_flow.c: `lowbit compile --quant S`: passes, calibration and
 * quantization in the order quant_flow.h describes.
 *
 * Calibration always runs on a copy of the graph as it stands at that point
 * (observers inserted into the copy, which lb_calibrate consumes), so the
 * statistics are named after exactly the values of g that the following
 * passes read: after smoothquant/split-outliers the second calibration sees
 * the smoothed activations, not the original ones.
 */
#include "tools/quant_flow.h"

#include <fnmatch.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codegen/calibrate.h"
#include "codegen/quant_report.h"

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

void lb_progress_show(void *ctx, int64_t done, int64_t total) {
  struct lb_progress *p = ctx;
  if (!p->tty) return;
  enum { W = 30 };
  int fill = total ? (int)(done * W / total) : W;
  char bar[W + 1];
  for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '.';
  bar[W] = 0;
  fprintf(stderr, "\rlowbit: %s [%s] %lld/%lld", p->what, bar, (long long)done, (long long)total);
  if (done == total) fputc('\n', stderr);
  fflush(stderr);
}

/* The user's pipeline split in two: everything but plan-memory (and
 * insert-observers, which only calibration uses) runs first; *has_plan tells
 * whether plan-memory was asked for, to run it after quantization. */
static char *pipeline_without_plan(const char *pipeline, bool *has_plan) {
  size_t n = strlen(pipeline) + 1;
  char *out = malloc(n), *copy = strdup(pipeline);
  if (!out || !copy) abort();
  out[0] = 0;
  *has_plan = false;
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    while (*tok == ' ') tok++;
    if (strncmp(tok, "plan-memory", 11) == 0 && (!tok[11] || tok[11] == ' ')) {
      *has_plan = true;
      continue;
    }
    if (strncmp(tok, "insert-observers", 16) == 0) continue;
    if (out[0]) strcat(out, ",");
    strcat(out, tok);
  }
  free(copy);
  return out;
}

/* The pass options of one stage: the user's, dumping into DIR/<stage>. */
static struct lb_pass_options stage_options(const struct lb_quant_flow *f, const char *stage, char **dir) {
  struct lb_pass_options po = f->po ? *f->po : (struct lb_pass_options){.dump_blobs = LB_PRINT_BLOBS_ELIDED};
  *dir = NULL;
  if (po.dump_dir) {
    size_t n = strlen(po.dump_dir) + strlen(stage) + 2;
    *dir = malloc(n);
    if (!*dir) abort();
    snprintf(*dir, n, "%s/%s", po.dump_dir, stage);
    po.dump_dir = *dir;
  }
  return po;
}

static enum lb_status run_stage(struct lb_graph *g, const char *pipeline, const struct lb_quant_flow *f,
                                const char *stage, const struct lb_calib_result *stats, struct lb_diag *d) {
  char *dir;
  struct lb_pass_options po = stage_options(f, stage, &dir);
  if (stats) {
    po.calib = stats->stats;
    po.n_calib = stats->n_stats;
  }
  enum lb_status st = lb_pass_manager_run(g, pipeline, &po, d);
  free(dir);
  return st;
}

/* Calibrates a copy of g on the samples, for activation ranges or (!ranges)
 * for the per-channel statistics of smoothquant/split-outliers, plus
 * operand_kinds (LB_CALIB_*) on the layers' activation operands (only those
 * in the NULL-terminated operand_names, when not NULL): awq's mean |x| and
 * rows, gptq's Hessians. The
 * calibration build's own notes (its memory plan) are dropped; its errors are
 * kept. */
static enum lb_status calibrate_copy(const struct lb_graph *g, const struct lb_quant_flow *f, bool ranges,
                                     int32_t operand_kinds, const char *const *operand_names,
                                     struct lb_calib_result *res, struct lb_diag *d) {
  double t0 = now_ms();
  struct lb_diag cd;
  lb_diag_init(&cd, d->file);
  struct lb_graph *gc = lb_graph_clone(g);
  enum lb_status st = lb_pass_manager_run(gc, "insert-observers", NULL, &cd);
  struct lb_progress pr = {.tty = isatty(2) != 0, .what = "calibrating"};
  struct lb_codegen_options co = f->jit ? *f->jit : (struct lb_codegen_options){.opt_level = 3};
  co.model_name = "lowbit_calib";
  struct lb_calib_run_options ro = {.cg = &co, .progress = lb_progress_show, .progress_ctx = &pr,
                                    .operand_kinds = operand_kinds, .operand_names = operand_names};
  if (st == LB_OK) st = lb_calibrate(gc, f->calib_dir, &ro, res, &cd);
  lb_graph_free(gc);
  if (st != LB_OK) {
    if (cd.text) lb_diag_append_error(d, st, cd.text, strlen(cd.text));
    else lb_diag_error(d, st, NULL, "calibration failed");
    lb_diag_free(&cd);
    return st;
  }
  lb_diag_free(&cd);
  char what[96] = "per-channel statistics";
  if (operand_kinds & LB_CALIB_HESSIAN) snprintf(what, sizeof what, "Hessians of the layer inputs");
  else if (operand_kinds) snprintf(what, sizeof what, "channel means and sampled rows of the layer inputs");
  if (ranges) {
    char method[64];
    lb_calib_method_format(&f->method, method, sizeof method);
    snprintf(what, sizeof what, "%s, %s", method, f->calib_scheme == LB_CALIB_INT8_SYM ? "int8" : "uint8");
  }
  fprintf(stderr, "lowbit: calibrated %d values on %lld samples from %s (%s) in %.1f ms\n", (int)res->n_stats,
          (long long)res->samples, f->calib_dir, what, now_ms() - t0);
  return LB_OK;
}

/* Step 2: one statistics-driven pass (smoothquant or split-outliers) with
 * per-channel statistics of g as it is now. With both, smoothquant goes first
 * and split-outliers is calibrated again: it must see the smoothed channels
 * (which are new values), and whatever smoothing left above the threshold is
 * what is worth keeping in float. */
static enum lb_status stats_pass(struct lb_graph *g, const struct lb_quant_flow *f, const char *pipe,
                                 const char *stage, struct lb_diag *d) {
  struct lb_calib_result stats = {0};
  enum lb_status st = calibrate_copy(g, f, false, 0, NULL, &stats, d);
  if (st == LB_OK) st = run_stage(g, pipe, f, stage, &stats, d);
  lb_calib_result_free(&stats);
  return st;
}

static enum lb_status smooth(struct lb_graph *g, const struct lb_quant_flow *f, struct lb_diag *d) {
  char pipe[96];
  enum lb_status st = LB_OK;
  if (f->smoothquant) {
    snprintf(pipe, sizeof pipe, "smoothquant{alpha=%.9g}", f->alpha);
    st = stats_pass(g, f, pipe, "2-smoothquant", d);
  }
  if (st == LB_OK && f->outliers) {
    snprintf(pipe, sizeof pipe, "split-outliers{threshold=%.9g}", f->threshold);
    st = stats_pass(g, f, pipe, "2-split-outliers", d);
  }
  return st;
}

/* Step 3: activation ranges for static W8A8. */
static enum lb_status attach_ranges(struct lb_graph *g, const struct lb_quant_flow *f, struct lb_diag *d) {
  if (f->load_calib) {
    int32_t n_att = 0;
    enum lb_status st = lb_calib_load_json(g, f->load_calib, &n_att, d);
    if (st == LB_OK && f->verbose)
      fprintf(stderr, "lowbit: %s: scales attached to %d values\n", f->load_calib, (int)n_att);
    return st;
  }
  struct lb_calib_result res = {0};
  enum lb_status st = calibrate_copy(g, f, true, 0, NULL, &res, d);
  struct lb_calib_file_info info = {.model = g->name, .samples = res.samples, .method = f->method,
                                    .scheme = f->calib_scheme};
  if (st == LB_OK && f->save_calib) st = lb_calib_write_json(f->save_calib, res.stats, res.n_stats, &info, d);
  if (st == LB_OK && f->scheme == LB_QUANT_W8A8) st = lb_calib_attach(g, res.stats, res.n_stats, &info, d);
  lb_calib_result_free(&res);
  return st;
}

const char lb_weight_algo_list[] = "rtn, gptq, awq, awq+gptq";

bool lb_weight_algo_parse(const char *s, enum lb_weight_algo *out) {
  static const char *const names[LB_WALGO_COUNT] = {[LB_WALGO_RTN] = "rtn", [LB_WALGO_GPTQ] = "gptq",
                                                    [LB_WALGO_AWQ] = "awq", [LB_WALGO_AWQ_GPTQ] = "awq+gptq"};
  for (int i = 0; i < LB_WALGO_COUNT; i++)
    if (s && strcmp(s, names[i]) == 0) {
      *out = (enum lb_weight_algo)i;
      return true;
    }
  return false;
}

/* The distinct inputs of the layers gptq quantizes (gptq.c's rule: what
 * quantize would rewrite), in graph order, with their Hessians' bytes (K^2
 * doubles); layers sharing an input share its Hessian. */
struct hessian_operand {
  char *name;
  double bytes;
};
static int32_t gptq_operands(const struct lb_graph *g, struct hessian_operand **out) {
  int32_t n = 0;
  *out = malloc(sizeof **out * (size_t)(g->n_nodes + 1));
  if (!*out) abort();
  for (int32_t i = 0; i < g->n_nodes; i++) {
    const struct lb_node *nd = g->nodes[i];
    if ((nd->op != LB_OP_MATMUL && nd->op != LB_OP_GEMM && nd->op != LB_OP_FUSED_MATMUL) ||
        lb_quant_classify(g, nd) != LB_QSKIP_NONE)
      continue;
    struct lb_quant_linear l;
    lb_quant_linear_of(g, nd, &l);
    bool seen = false;
    for (int32_t j = 0; j < n && !seen; j++) seen = strcmp((*out)[j].name, l.a->name) == 0;
    if (seen) continue;
    (*out)[n].name = strdup(l.a->name);
    if (!(*out)[n].name) abort();
    (*out)[n++].bytes = (double)l.k * (double)l.k * 8;
  }
  return n;
}

/* gptq within --hessian-memory: the layer inputs in graph order, cut into
 * batches whose Hessians fit the budget (an input over it alone); each batch
 * is calibrated on g as the earlier batches left it (their layers already
 * quantized: sequential GPTQ) and its layers quantized with gptq{partial=1}.
 * One batch is today's single calibration, with gptq's full checks. */
static enum lb_status gptq_batches(struct lb_graph *g, const struct lb_quant_flow *f, int32_t bits,
                                   struct lb_diag *d) {
  struct hessian_operand *ops;
  int32_t n_ops = gptq_operands(g, &ops), n_batches = 0;
  double budget = (f->hessian_memory_mb > 0 ? f->hessian_memory_mb : 256) * 1048576.0, sum = 0;
  int32_t *first = malloc(sizeof *first * (size_t)(n_ops + 2)); /* batch b: ops [first[b], first[b + 1]) */
  const char **names = malloc(sizeof *names * (size_t)(n_ops + 1));
  if (!first || !names) abort();
  bool over = false;
  for (int32_t i = 0; i < n_ops; i++) {
    if (i == 0 || sum + ops[i].bytes > budget) {
      first[n_batches++] = i;
      sum = 0;
    }
    sum += ops[i].bytes;
    if (ops[i].bytes > budget && !over) {
      over = true;
      fprintf(stderr, "lowbit: note: the Hessian of \"%s\" (%.3g MB) exceeds --hessian-memory %g MB: "
                      "such inputs are calibrated one per batch\n", ops[i].name, ops[i].bytes / 1048576.0,
              f->hessian_memory_mb);
    }
  }
  first[n_batches] = n_ops;
  enum lb_status st = LB_OK;
  if (n_batches == 0) n_batches = 1, first[0] = first[1] = 0; /* no layers: gptq says so */
  for (int32_t b = 0; b < n_batches && st == LB_OK; b++) {
    int32_t cnt = first[b + 1] - first[b];
    double bytes = 0;
    for (int32_t i = 0; i < cnt; i++) {
      names[i] = ops[first[b] + i].name;
      bytes += ops[first[b] + i].bytes;
    }
    names[cnt] = NULL;
    fprintf(stderr, "lowbit: gptq batch %d/%d: %d layer inputs, %.3g MB of Hessians\n", (int)b + 1, (int)n_batches,
            (int)cnt, bytes / 1048576.0);
    struct lb_calib_result stats = {0};
    st = calibrate_copy(g, f, false, LB_CALIB_HESSIAN, n_batches > 1 ? names : NULL, &stats, d);
    char pipe[192], stage[32] = "3-quantize";
    snprintf(pipe, sizeof pipe, "gptq{bits=%d group=%lld asym=%d act_order=%d clip=%d act=%s partial=%d},dce",
             (int)bits, (long long)f->group, (int)f->asym, (int)f->act_order, (int)f->clip,
             f->act_int8 ? "dynamic" : "none", n_batches > 1);
    if (n_batches > 1) snprintf(stage, sizeof stage, "3-quantize-%d", (int)b + 1);
    if (st == LB_OK) st = run_stage(g, pipe, f, stage, &stats, d);
    lb_calib_result_free(&stats);
  }
  for (int32_t i = 0; i < n_ops; i++) free(ops[i].name);
  free(ops);
  free(first);
  free(names);
  return st;
}

/* Low-bit weights: awq's scales first (calibrated on g), then gptq (on
 * Hessians of g as awq left it) or RTN. As in AWQ's reference, the scale search
 * rounds plainly and the clipping search runs after it, on the scaled weights:
 * `--weight-algo awq` always ends with quantize{clip=1} (searching clips inside
 * the scale search measured worse: +0.028 against +0.012 perplexity on the GPT
 * fixture at w4 g32). */
static enum lb_status lowbit_weights(struct lb_graph *g, const struct lb_quant_flow *f, struct lb_diag *d) {
  int32_t bits = lb_quant_scheme_bits(f->scheme);
  char pipe[160];
  enum lb_status st = LB_OK;
  bool awq = f->weight_algo == LB_WALGO_AWQ || f->weight_algo == LB_WALGO_AWQ_GPTQ;
  bool gptq = f->weight_algo == LB_WALGO_GPTQ || f->weight_algo == LB_WALGO_AWQ_GPTQ;
  if (awq) {
    struct lb_calib_result stats = {0};
    st = calibrate_copy(g, f, false, LB_CALIB_ABSMEAN_CHANNEL | LB_CALIB_ROWS, NULL, &stats, d);
    snprintf(pipe, sizeof pipe, "awq{bits=%d group=%lld asym=%d clip=0}", (int)bits, (long long)f->group,
             (int)f->asym);
    if (st == LB_OK) st = run_stage(g, pipe, f, "2-awq", &stats, d);
    lb_calib_result_free(&stats);
  }
  if (st != LB_OK) return st;
  if (gptq) return gptq_batches(g, f, bits, d);
  snprintf(pipe, sizeof pipe, "quantize{scheme=%s group=%lld asym=%d clip=%d act=%s},dce",
           lb_quant_scheme_name(f->scheme), (long long)f->group, (int)f->asym, (int)(f->clip || awq),
           f->act_int8 ? "dynamic" : "none");
  return run_stage(g, pipe, f, "3-quantize", NULL, d);
}

static enum lb_status report(const struct lb_graph *float_g, const struct lb_graph *quant_g,
                             const struct lb_quant_flow *f, struct lb_diag *d) {
  double t0 = now_ms();
  struct lb_progress pr = {.tty = isatty(2) != 0, .what = "quant report"};
  struct lb_codegen_options co = f->jit ? *f->jit : (struct lb_codegen_options){.opt_level = 3};
  co.model_name = "lowbit_report";
  struct lb_quant_report_options ro = {.cg = &co, .calib_dir = f->calib_dir, .progress = lb_progress_show,
                                       .progress_ctx = &pr};
  struct lb_diag rd;
  lb_diag_init(&rd, d->file);
  enum lb_status st = lb_quant_report(float_g, quant_g, &ro, f->report_path, &rd);
  if (st != LB_OK) {
    if (rd.text) lb_diag_append_error(d, st, rd.text, strlen(rd.text));
    else lb_diag_error(d, st, NULL, "writing the quantization report '%s' failed", f->report_path);
  } else {
    fprintf(stderr, "lowbit: wrote quantization report %s (%.1f ms)\n", f->report_path, now_ms() - t0);
  }
  lb_diag_free(&rd);
  return st;
}

void lb_layer_names_of(const char *value, const char *node, struct lb_layer_names *out) {
  memset(out, 0, sizeof *out);
  out->names[out->n++] = value;
  out->names[out->n++] = node;
  /* "/blocks.0/attn/proj/MatMul": the module path is between the leading '/' and the last one */
  const char *last = strrchr(node, '/');
  if (node[0] != '/' || !last || last == node || (size_t)(last - node) >= sizeof out->buf[0]) return;
  size_t len = (size_t)(last - node - 1);
  memcpy(out->buf[0], node + 1, len);
  memcpy(out->buf[1], node + 1, len);
  for (size_t i = 0; i < len; i++)
    if (out->buf[1][i] == '/') out->buf[1][i] = '.';
  out->names[out->n++] = out->buf[0];
  out->names[out->n++] = out->buf[1];
}

static bool glob_hits(const char *glob, const struct lb_layer_names *ln) {
  for (int32_t i = 0; i < ln->n; i++)
    if (fnmatch(glob, ln->names[i], 0) == 0) return true;
  return false;
}

bool lb_globs_match_layer(const char *globs, const struct lb_layer_names *ln) {
  char *copy = strdup(globs);
  if (!copy) abort();
  bool hit = false;
  for (char *save = NULL, *tok = strtok_r(copy, ",|", &save); tok && !hit; tok = strtok_r(NULL, ",|", &save))
    hit = glob_hits(tok, ln);
  free(copy);
  return hit;
}

char *lb_globs_unmatched(const char *globs, const struct lb_layer_names *layers, int32_t n) {
  char *copy = strdup(globs), *miss = NULL;
  if (!copy) abort();
  for (char *save = NULL, *tok = strtok_r(copy, ",|", &save); tok && !miss; tok = strtok_r(NULL, ",|", &save)) {
    bool hit = false;
    for (int32_t i = 0; i < n && !hit; i++) hit = glob_hits(tok, &layers[i]);
    if (!hit && !(miss = strdup(tok))) abort();
  }
  free(copy);
  return miss;
}

/* --keep-float: keep_float=1 on every layer the quantize rules would take that
 * a glob matches (lb_layer_names_of); a glob that matches no such layer is an
 * error that lists them. */
static enum lb_status keep_float(struct lb_graph *g, const char *globs, struct lb_diag *d) {
  struct lb_layer_names *layers = calloc((size_t)g->n_nodes + 1, sizeof *layers);
  if (!layers) abort();
  int32_t n = 0, kept = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *nd = g->nodes[i];
    bool linear = nd->op == LB_OP_MATMUL || nd->op == LB_OP_GEMM || nd->op == LB_OP_FUSED_MATMUL;
    if (nd->dead || !nd->n_outputs || !linear || lb_quant_classify(g, nd) != LB_QSKIP_NONE) continue;
    lb_layer_names_of(nd->outputs[0]->name, nd->name ? nd->name : "", &layers[n]);
    if (lb_globs_match_layer(globs, &layers[n])) {
      lb_node_set_attr_int(g, nd, "keep_float", 1);
      kept++;
    }
    n++;
  }
  char *miss = lb_globs_unmatched(globs, layers, n);
  enum lb_status st = LB_OK;
  if (miss) {
    char list[1024]; /* module paths where torch.onnx wrote one, else output values */
    int len = 0;
    list[0] = 0;
    for (int32_t i = 0; i < n && len < (int)sizeof list - 80; i++)
      len += snprintf(list + len, sizeof list - (size_t)len, "%s%s", i ? ", " : "",
                      layers[i].names[layers[i].n == 4 ? 3 : 0]);
    st = lb_diag_error(d, LB_ERR_USAGE, NULL, "--keep-float '%s' matches no quantizable layer; the layers are: %s%s",
                       miss, list, len >= (int)sizeof list - 80 ? ", ..." : "");
  } else {
    fprintf(stderr, "lowbit: --keep-float: %d layer%s stay f32\n", (int)kept, kept == 1 ? "" : "s");
  }
  free(miss);
  free(layers);
  return st;
}

enum lb_status lb_quant_flow_run(struct lb_graph *g, const struct lb_quant_flow *f, struct lb_diag *d) {
  bool has_plan;
  char *first = pipeline_without_plan(f->pipeline ? f->pipeline : lb_default_pipeline, &has_plan);
  enum lb_status st = run_stage(g, first, f, "1-passes", NULL, d);
  free(first);
  if (st == LB_OK && f->keep_float) st = keep_float(g, f->keep_float, d);
  if (st == LB_OK && (f->smoothquant || f->outliers)) st = smooth(g, f, d);
  bool need_ranges = f->scheme == LB_QUANT_W8A8 || (f->calib_dir && f->save_calib);
  bool lowbit = lb_quant_scheme_bits(f->scheme) < 8;
  if (st == LB_OK && f->calib_dir && !need_ranges && !f->report_path && !f->smoothquant && !f->outliers &&
      !(lowbit && f->weight_algo != LB_WALGO_RTN))
    fprintf(stderr, "lowbit: note: --quant %s uses no activation ranges; --calib %s only feeds --save-calib, "
                    "--quant-report, --smoothquant, --outliers and --weight-algo gptq|awq\n",
            lb_quant_scheme_name(f->scheme), f->calib_dir);
  if (st == LB_OK && need_ranges) st = attach_ranges(g, f, d);
  struct lb_graph *float_g = NULL;
  if (st == LB_OK && f->report_path) float_g = lb_graph_clone(g);
  char pipe[96];
  if (lb_quant_scheme_fp8(f->scheme))
    snprintf(pipe, sizeof pipe, "quantize{scheme=%s group=%lld},dce", lb_quant_scheme_name(f->scheme),
             (long long)f->group);
  else
    snprintf(pipe, sizeof pipe, "quantize{scheme=%s},dce", lb_quant_scheme_name(f->scheme));
  if (st == LB_OK) st = lowbit ? lowbit_weights(g, f, d) : run_stage(g, pipe, f, "3-quantize", NULL, d);
  if (st == LB_OK) {
    struct lb_quant_summary sum;
    char line[512];
    lb_quant_summarize(g, &sum);
    lb_quant_summary_format(&sum, f->scheme, line, sizeof line);
    fprintf(stderr, "lowbit: %s\n", line);
  }
  if (st == LB_OK && f->report_path) st = report(float_g, g, f, d);
  lb_graph_free(float_g);
  if (st == LB_OK && has_plan) st = run_stage(g, "plan-memory", f, "4-plan", NULL, d);
  return st;
}
