/* analyze.c: `lowbit analyze MODEL --calib DIR --quant w4[,w3,...]`.
 *
 * Loads the model, runs the float pipeline (without plan-memory), quantizes a
 * copy of it once per requested precision with the chosen weight algorithm
 * (quantize{scheme=wN ...} for RTN, gptq{...} on Hessians of the float model
 * calibrated once), and hands the copies to lb_sensitivity
 * (codegen/sensitivity.h), which measures each layer quantized alone. Prints
 * one table per precision, worst layer first, and optionally writes them as
 * JSON.
 */
#include "tools/analyze.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codegen/calibrate.h"
#include "codegen/sensitivity.h"
#include "frontend/onnx.h"
#include "passes/pass.h"
#include "passes/quantize.h"
#include "tools/quant_flow.h"

enum { EXIT_BAD_INPUT = 1, EXIT_USAGE = 2, MAX_PRECISIONS = 16 };

const char lb_analyze_usage[] =
    "analyze (each weight layer quantized alone: its error at the model outputs):\n"
    "  --calib DIR             the samples to measure on (required; as for compile)\n"
    "  --quant P[,P...]        precisions: w8, w4, w3, w2, each optionally with its own\n"
    "                          group size as wN:G (required)\n"
    "  --group-size G          low-bit default group (32; 0 = one scale per column)\n"
    "  --asym, --clip          as for compile\n"
    "  --weight-algo A         rtn (default) or gptq (low-bit precisions; w8 is always RTN)\n"
    "  --metric M              mse (default): mean squared output error; kl: mean over\n"
    "                          rows of KL(softmax(float) || softmax(quantized)), for logits\n"
    "  --json FILE             also write the tables as JSON\n"
    "  --dim NAME=VALUE, --cpu NAME, -O0..-O3   as for compile\n";

static void usage_error(const char *fmt, const char *arg) {
  fprintf(stderr, "lowbit: error: ");
  fprintf(stderr, fmt, arg);
  fprintf(stderr, "\n(run 'lowbit --help' for usage)\n");
  exit(EXIT_USAGE);
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

struct precision {
  enum lb_quant_scheme scheme;
  int64_t group; /* low-bit only */
  char label[32];
};

struct analyze_args {
  const char *input, *calib_dir, *quant_arg, *group_arg, *algo_arg, *metric_arg, *json, *cpu;
  bool asym, clip;
  int opt_level;
  struct lb_dim_binding dims[16];
  int n_dims;
  struct precision prec[MAX_PRECISIONS];
  int n_prec;
  enum lb_weight_algo algo;
  enum lb_sens_metric metric;
};

static const char *option_value(int argc, char **argv, int *i, const char *opt) {
  size_t n = strlen(opt);
  if (strncmp(argv[*i], opt, n) != 0) return NULL;
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (argv[*i][n] != 0) return NULL;
  if (*i + 1 >= argc) usage_error("option %s needs a value", opt);
  return argv[++*i];
}

/* A group size: non-negative integer, all of the string. */
static int64_t group_value(const char *s) {
  char *end;
  errno = 0;
  long long g = strtoll(s, &end, 10);
  if (errno || end == s || *end || g < 0 || g > INT32_MAX)
    usage_error("group size must be a non-negative integer (0 = per output column): '%s'", s);
  return g;
}

/* "w8,w4,w3:128" -> precisions; low-bit ones without ":G" take default_group. */
static void parse_precisions(struct analyze_args *a, int64_t default_group) {
  char *copy = strdup(a->quant_arg);
  if (!copy) abort();
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (a->n_prec == MAX_PRECISIONS) usage_error("--quant lists more than %s precisions", "16");
    struct precision *p = &a->prec[a->n_prec++];
    char *colon = strchr(tok, ':');
    if (colon) *colon = 0;
    if (!lb_quant_scheme_parse(tok, &p->scheme) ||
        (p->scheme != LB_QUANT_W8 && lb_quant_scheme_bits(p->scheme) == 8))
      usage_error("unknown --quant precision '%s' (w8, w4, w3, w2, optionally wN:GROUP)", tok);
    bool lowbit = lb_quant_scheme_bits(p->scheme) < 8;
    if (colon && !lowbit) usage_error("w8 is per output column; it takes no group ('%s:...')", tok);
    p->group = colon ? group_value(colon + 1) : default_group;
    if (lowbit) snprintf(p->label, sizeof p->label, "%s g%lld%s", tok, (long long)p->group, a->asym ? " asym" : "");
    else snprintf(p->label, sizeof p->label, "w8");
  }
  free(copy);
  if (!a->n_prec) usage_error("--quant needs at least one precision: '%s'", a->quant_arg);
}

static void parse_args(int argc, char **argv, struct analyze_args *a) {
  memset(a, 0, sizeof *a);
  a->opt_level = 3;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i], *v;
    if ((v = option_value(argc, argv, &i, "--calib"))) {
      a->calib_dir = v;
    } else if ((v = option_value(argc, argv, &i, "--quant"))) {
      a->quant_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--group-size"))) {
      a->group_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--weight-algo"))) {
      a->algo_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--metric"))) {
      a->metric_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--json"))) {
      a->json = v;
    } else if ((v = option_value(argc, argv, &i, "--cpu"))) {
      a->cpu = v;
    } else if ((v = option_value(argc, argv, &i, "--dim"))) {
      const char *eq = strchr(v, '=');
      if (!eq || eq == v || !eq[1]) usage_error("expected NAME=VALUE after %s", "--dim");
      if (a->n_dims == 16) usage_error("more than %s --dim options", "16");
      char *end;
      long long x = strtoll(eq + 1, &end, 10);
      if (*end || x <= 0) usage_error("--dim needs a positive integer value: '%s'", v);
      char *name = strndup(v, (size_t)(eq - v));
      if (!name) abort();
      a->dims[a->n_dims++] = (struct lb_dim_binding){name, x};
    } else if (strcmp(arg, "--asym") == 0) {
      a->asym = true;
    } else if (strcmp(arg, "--clip") == 0) {
      a->clip = true;
    } else if (strncmp(arg, "-O", 2) == 0 && arg[2] >= '0' && arg[2] <= '3' && !arg[3]) {
      a->opt_level = arg[2] - '0';
    } else if (arg[0] == '-' && arg[1]) {
      usage_error("unknown option '%s' for analyze", arg);
    } else if (!a->input) {
      a->input = arg;
    } else {
      usage_error("more than one model given ('%s')", arg);
    }
  }
  if (!a->input) usage_error("%s", "no model given");
  if (!a->calib_dir) usage_error("%s", "analyze needs --calib DIR (the samples to measure the error on)");
  if (!a->quant_arg) usage_error("%s", "analyze needs --quant P[,P...] (the precisions to try: w8, w4, w3, w2)");
  a->algo = LB_WALGO_RTN;
  if (a->algo_arg && (!lb_weight_algo_parse(a->algo_arg, &a->algo) ||
                      (a->algo != LB_WALGO_RTN && a->algo != LB_WALGO_GPTQ)))
    usage_error("analyze: unknown --weight-algo '%s' (rtn, gptq: awq rescales several layers at once)",
                a->algo_arg);
  a->metric = LB_SENS_MSE;
  if (a->metric_arg && !lb_sens_metric_parse(a->metric_arg, &a->metric))
    usage_error("unknown --metric '%s' (mse, kl)", a->metric_arg);
  parse_precisions(a, a->group_arg ? group_value(a->group_arg) : 32);
}

/* ---- the candidates ------------------------------------------------------------------- */

static enum lb_status load(const struct analyze_args *a, struct lb_graph **g, struct lb_diag *d) {
  size_t n = strlen(a->input);
  if (n >= 5 && strcmp(a->input + n - 5, ".lbir") == 0) {
    if (a->n_dims) usage_error("%s", "--dim applies to ONNX models; IR text has static shapes");
    enum lb_status st = lb_graph_parse_file(a->input, g, d);
    return st == LB_OK ? lb_graph_verify(*g, d) : st;
  }
  struct lb_onnx_options o = {.dims = a->dims, .n_dims = a->n_dims};
  return lb_onnx_load_file(a->input, &o, g, d);
}

/* The default pipeline without plan-memory (the trials plan their own copies). */
static enum lb_status float_passes(struct lb_graph *g, struct lb_diag *d) {
  char *pipe = strdup(lb_default_pipeline);
  if (!pipe) abort();
  char *at = strstr(pipe, ",plan-memory");
  if (at) memmove(at, at + 12, strlen(at + 12) + 1);
  enum lb_status st = lb_pass_manager_run(g, pipe, NULL, d);
  free(pipe);
  return st;
}

/* Hessians of every layer input of the float model, for gptq (one calibration
 * run serves every precision: each layer's Hessian is of its float input). */
static enum lb_status hessians(const struct lb_graph *g, const struct analyze_args *a,
                               const struct lb_codegen_options *co, struct lb_calib_result *res, struct lb_diag *d) {
  double t0 = now_ms();
  struct lb_graph *gc = lb_graph_clone(g);
  struct lb_diag cd;
  lb_diag_init(&cd, d->file);
  enum lb_status st = lb_pass_manager_run(gc, "insert-observers", NULL, &cd);
  struct lb_progress pr = {.tty = isatty(2) != 0, .what = "calibrating"};
  struct lb_codegen_options cc = *co;
  cc.model_name = "lowbit_calib";
  struct lb_calib_run_options ro = {.cg = &cc, .progress = lb_progress_show, .progress_ctx = &pr,
                                    .operand_kinds = LB_CALIB_HESSIAN};
  if (st == LB_OK) st = lb_calibrate(gc, a->calib_dir, &ro, res, &cd);
  lb_graph_free(gc);
  if (st != LB_OK) {
    if (cd.text) lb_diag_append_error(d, st, cd.text, strlen(cd.text));
    else lb_diag_error(d, st, NULL, "calibration failed");
  } else {
    fprintf(stderr, "lowbit: calibrated Hessians of the layer inputs on %lld samples from %s in %.1f ms\n",
            (long long)res->samples, a->calib_dir, now_ms() - t0);
  }
  lb_diag_free(&cd);
  return st;
}

/* A copy of g with every layer it can take quantized at precision p. */
static enum lb_status quantize_copy(const struct lb_graph *g, const struct analyze_args *a, const struct precision *p,
                                    const struct lb_calib_result *hess, struct lb_graph **out, struct lb_diag *d) {
  char pipe[192];
  int32_t bits = lb_quant_scheme_bits(p->scheme);
  if (bits == 8)
    snprintf(pipe, sizeof pipe, "quantize{scheme=w8},dce");
  else if (a->algo == LB_WALGO_GPTQ)
    snprintf(pipe, sizeof pipe, "gptq{bits=%d group=%lld asym=%d clip=%d},dce", (int)bits, (long long)p->group,
             (int)a->asym, (int)a->clip);
  else
    snprintf(pipe, sizeof pipe, "quantize{scheme=%s group=%lld asym=%d clip=%d},dce", lb_quant_scheme_name(p->scheme),
             (long long)p->group, (int)a->asym, (int)a->clip);
  struct lb_pass_options po = {.dump_blobs = LB_PRINT_BLOBS_ELIDED};
  if (hess) {
    po.calib = hess->stats;
    po.n_calib = hess->n_stats;
  }
  *out = lb_graph_clone(g);
  return lb_pass_manager_run(*out, pipe, &po, d);
}

/* ---- progress and output ---------------------------------------------------------------- */

struct progress {
  bool tty;
};

/* A bar on a terminal, else one line per trial (the JIT compile is the slow part). */
static void show_progress(void *ctx, int64_t done, int64_t total, const char *what, double ms) {
  struct progress *p = ctx;
  if (!p->tty) {
    if (done == 0) return;
    fprintf(stderr, "lowbit: analyze [%lld/%lld] %s: %.0f ms\n", (long long)done, (long long)total, what, ms);
    return;
  }
  enum { W = 30 };
  int fill = total ? (int)(done * W / total) : W;
  char bar[W + 1];
  for (int i = 0; i < W; i++) bar[i] = i < fill ? '#' : '.';
  bar[W] = 0;
  fprintf(stderr, "\r\033[Klowbit: analyzing [%s] %lld/%lld %.60s", bar, (long long)done, (long long)total, what);
  if (done == total) fputc('\n', stderr);
  fflush(stderr);
}

struct ranked {
  double error;
  int32_t layer;
};
/* Worst first: NaN, then descending error; graph order among equals. */
static int cmp_worst(const void *pa, const void *pb) {
  const struct ranked *a = pa, *b = pb;
  if (isnan(a->error) != isnan(b->error)) return isnan(a->error) ? -1 : 1;
  if (!isnan(a->error) && a->error != b->error) return a->error > b->error ? -1 : 1;
  return a->layer - b->layer;
}
/* The layers candidate c quantized, worst first, into order; returns how many. */
static int32_t ranking(const struct lb_sens_table *t, int32_t c, int32_t *order) {
  struct ranked *r = malloc(sizeof *r * (size_t)(t->n_layers + 1));
  if (!r) abort();
  int32_t n = 0;
  for (int32_t i = 0; i < t->n_layers; i++)
    if (lb_sens_cell_at(t, i, c)->present) r[n++] = (struct ranked){lb_sens_cell_at(t, i, c)->err.error, i};
  qsort(r, (size_t)n, sizeof *r, cmp_worst);
  for (int32_t i = 0; i < n; i++) order[i] = r[i].layer;
  free(r);
  return n;
}

static void print_tables(FILE *f, const struct lb_sens_table *t, const struct analyze_args *a) {
  int32_t *order = malloc(sizeof *order * (size_t)(t->n_layers + 1));
  if (!order) abort();
  const char *what = t->metric == LB_SENS_KL ? "KL(float || quantized), mean over output rows, nats"
                                             : "MSE of the outputs against float";
  for (int32_t c = 0; c < t->n_candidates; c++) {
    int32_t n = ranking(t, c, order);
    double worst = n ? lb_sens_cell_at(t, order[0], c)->err.error : 0;
    int64_t total_q = 0, total_f = 0;
    fprintf(f, "%s%s (%s), each layer quantized alone; %s on %lld samples; worst first\n", c ? "\n" : "",
            a->prec[c].label, lb_quant_scheme_bits(a->prec[c].scheme) < 8 && a->algo == LB_WALGO_GPTQ ? "gptq" : "rtn",
            what, (long long)t->samples);
    fprintf(f, "%4s  %-30s %-24s %11s %-10s %9s %12s %9s %7s\n", "rank", "value", "node", "KxN", "precision",
            "bytes", t->metric == LB_SENS_KL ? "kl" : "mse", "rel_rms", "of_worst");
    for (int32_t r = 0; r < n; r++) {
      const struct lb_sens_layer *L = &t->layers[order[r]];
      const struct lb_sens_cell *cell = lb_sens_cell_at(t, order[r], c);
      char shape[40];
      snprintf(shape, sizeof shape, "%lldx%lld", (long long)L->k, (long long)L->n);
      fprintf(f, "%4d  %-30s %-24s %11s %-10s %9lld %12.4e %9.4e %7.3f\n", (int)r + 1, L->value, L->node, shape,
              a->prec[c].label, (long long)cell->bytes, cell->err.error, cell->err.rel_rms,
              worst > 0 ? cell->err.error / worst : 0.0);
      total_q += cell->bytes;
      total_f += L->float_bytes;
    }
    if (t->whole)
      fprintf(f, "all %d layers together: %s %.4e, rel_rms %.4e; weights %lld bytes (f32: %lld)\n", (int)n,
              t->metric == LB_SENS_KL ? "kl" : "mse", t->whole[c].error, t->whole[c].rel_rms, (long long)total_q,
              (long long)total_f);
  }
  free(order);
}

static void json_string(FILE *f, const char *s) {
  fputc('"', f);
  for (; *s; s++) {
    unsigned char ch = (unsigned char)*s;
    if (ch == '"' || ch == '\\') fprintf(f, "\\%c", ch);
    else if (ch < 0x20) fprintf(f, "\\u%04x", ch);
    else fputc(ch, f);
  }
  fputc('"', f);
}

static void json_number(FILE *f, double x) {
  if (isfinite(x)) fprintf(f, "%.9g", x);
  else fputs("null", f);
}

static void write_json(FILE *f, const struct lb_sens_table *t, const struct analyze_args *a) {
  fputs("{\n  \"model\": ", f);
  json_string(f, a->input);
  fprintf(f, ",\n  \"metric\": \"%s\",\n  \"samples\": %lld,\n  \"weight_algo\": \"%s\",\n  \"precisions\": [",
          lb_sens_metric_name(t->metric), (long long)t->samples, a->algo == LB_WALGO_GPTQ ? "gptq" : "rtn");
  for (int32_t c = 0; c < t->n_candidates; c++) {
    int32_t bits = lb_quant_scheme_bits(a->prec[c].scheme);
    fprintf(f, "%s\n    {\"label\": ", c ? "," : "");
    json_string(f, a->prec[c].label);
    fprintf(f, ", \"bits\": %d, \"group\": %lld, \"asym\": %s", (int)bits, (long long)(bits < 8 ? a->prec[c].group : 0),
            bits < 8 && a->asym ? "true" : "false");
    if (t->whole) {
      fputs(", \"all_layers_error\": ", f);
      json_number(f, t->whole[c].error);
      fputs(", \"all_layers_rel_rms\": ", f);
      json_number(f, t->whole[c].rel_rms);
    }
    fputc('}', f);
  }
  fputs("\n  ],\n  \"layers\": [", f);
  for (int32_t i = 0; i < t->n_layers; i++) {
    const struct lb_sens_layer *L = &t->layers[i];
    fprintf(f, "%s\n    {\"value\": ", i ? "," : "");
    json_string(f, L->value);
    fputs(", \"node\": ", f);
    json_string(f, L->node);
    fprintf(f, ", \"k\": %lld, \"n\": %lld, \"float_bytes\": %lld, \"results\": [", (long long)L->k, (long long)L->n,
            (long long)L->float_bytes);
    bool first = true;
    for (int32_t c = 0; c < t->n_candidates; c++) {
      const struct lb_sens_cell *cell = lb_sens_cell_at(t, i, c);
      if (!cell->present) continue;
      fprintf(f, "%s{\"precision\": ", first ? "" : ", ");
      json_string(f, a->prec[c].label);
      fprintf(f, ", \"bytes\": %lld, \"error\": ", (long long)cell->bytes);
      json_number(f, cell->err.error);
      fputs(", \"rel_rms\": ", f);
      json_number(f, cell->err.rel_rms);
      fputc('}', f);
      first = false;
    }
    fputs("]}", f);
  }
  fputs("\n  ]\n}\n", f);
}

/* ---- the command ------------------------------------------------------------------------- */

int lb_cmd_analyze(int argc, char **argv) {
  struct analyze_args a;
  parse_args(argc, argv, &a);
  struct lb_diag d;
  lb_diag_init(&d, a.input);
  struct lb_graph *g = NULL, *cand_g[MAX_PRECISIONS] = {0};
  struct lb_sens_candidate cands[MAX_PRECISIONS];
  struct lb_calib_result hess = {0};
  struct lb_sens_table table = {0};
  struct lb_codegen_options co = {.cpu = a.cpu, .opt_level = a.opt_level};
  double t0 = now_ms();

  enum lb_status st = load(&a, &g, &d);
  if (st == LB_OK) st = float_passes(g, &d);
  bool need_hess = false;
  for (int i = 0; i < a.n_prec; i++) need_hess |= a.algo == LB_WALGO_GPTQ && lb_quant_scheme_bits(a.prec[i].scheme) < 8;
  if (st == LB_OK && need_hess) st = hessians(g, &a, &co, &hess, &d);
  for (int i = 0; st == LB_OK && i < a.n_prec; i++) {
    st = quantize_copy(g, &a, &a.prec[i], need_hess ? &hess : NULL, &cand_g[i], &d);
    cands[i] = (struct lb_sens_candidate){.label = a.prec[i].label, .quant_g = cand_g[i]};
  }
  lb_calib_result_free(&hess);
  if (st == LB_OK) {
    lb_diag_free(&d); /* the passes' notes are not for this report */
    lb_diag_init(&d, a.input);
    struct progress pr = {.tty = isatty(2) != 0};
    struct lb_sens_options so = {.cg = &co, .calib_dir = a.calib_dir, .metric = a.metric, .whole_model = true,
                                 .progress = show_progress, .progress_ctx = &pr};
    st = lb_sensitivity(g, cands, a.n_prec, &so, &table, &d);
  }
  if (st == LB_OK && !table.n_layers)
    st = lb_diag_error(&d, LB_ERR_INVALID, NULL, "no layer to analyze: the model has no quantizable linear layer");
  if (st == LB_OK) {
    fprintf(stderr, "lowbit: analyzed %d layers x %d precision%s on %lld samples in %.1f s (%.0f ms per layer trial)\n",
            (int)table.n_layers, a.n_prec, a.n_prec == 1 ? "" : "s", (long long)table.samples,
            (now_ms() - t0) / 1e3, table.trial_ms);
    print_tables(stdout, &table, &a);
    if (a.json) {
      char *tmp = NULL;
      FILE *f = lb_atomic_open(a.json, &tmp, &d);
      if (!f) {
        st = d.status ? d.status : LB_ERR_IO;
      } else {
        write_json(f, &table, &a);
        st = lb_atomic_commit(f, tmp, a.json, &d);
      }
    }
  }
  int rc = 0;
  if (st != LB_OK) {
    if (d.text) fputs(d.text, stderr);
    else fprintf(stderr, "lowbit: error: %s\n", lb_status_name(st));
    rc = st == LB_ERR_USAGE ? EXIT_USAGE : EXIT_BAD_INPUT;
  }
  lb_sens_table_free(&table);
  for (int i = 0; i < a.n_prec; i++) lb_graph_free(cand_g[i]);
  lb_graph_free(g);
  lb_diag_free(&d);
  for (int i = 0; i < a.n_dims; i++) free((char *)a.dims[i].name);
  return rc;
}
