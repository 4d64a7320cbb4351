/* analyze.c: `lowbit analyze MODEL --calib DIR [--quant P,...] [budget] [--html FILE]`.
 *
 * The measuring and the choice are those of `lowbit compile --quant auto`
 * (lb_mixed_run, tools/mixed.c): each candidate precision applied to a copy of
 * the float model (RTN, or gptq on Hessians of the float model), each layer
 * quantized alone, its error at the model outputs on the samples
 * (codegen/sensitivity.h), and with a budget the greedy plan. analyze then
 * runs the chosen model beside a float copy on the same samples
 * (lb_quant_compare, codegen/quant_report.h): every layer's SQNR against
 * float and the metric at the outputs. It prints one table per precision,
 * worst layer first, and the report (tools/report.h) as text; optionally as
 * JSON and as a self-contained HTML page with charts.
 */
#include "tools/analyze.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "codegen/quant_report.h"
#include "codegen/sensitivity.h"
#include "frontend/lora.h"
#include "frontend/onnx.h"
#include "passes/pass.h"
#include "tools/mixed.h"
#include "tools/quant_flow.h"
#include "tools/report.h"

enum { EXIT_BAD_INPUT = 1, EXIT_USAGE = 2, MAX_PRECISIONS = 11 };

const char lb_analyze_usage[] =
    "analyze (each weight layer quantized alone: its error at the model outputs; with a budget, the plan\n"
    "  that --quant auto would compile and its error against float after each layer):\n"
    "  --calib DIR             the samples to measure on (required; as for compile)\n"
    "  --quant P[,P...]        candidate precisions: f16, w8, wN (N = 4, 3, 2) with the default group,\n"
    "                          wN:G or wNgG with group G (default: w8,w4g32,w3g32,w2g32; f32 always);\n"
    "                          --candidates is the same (as for compile --quant auto)\n"
    "  --group-size G          the group of a bare wN (32)\n"
    "  --weight-algo A         rtn (default) or gptq (low-bit precisions; w8 is always RTN)\n"
    "  --metric M              kl (mean over output rows of KL(softmax(float) || softmax(quantized)))\n"
    "                          or mse; default as --quant auto: kl when every f32 output's last\n"
    "                          dimension is >= 2 (logits), else mse\n"
    "  --target-bpw B, --max-size S, --max-loss L   a budget: choose a precision per layer (as compile)\n"
    "  --select exact|greedy   the choice under the budget (exact by default, as compile)\n"
    "  --keep-float GLOBS      with a budget: layers kept f32\n"
    "  --quant-plan FILE       a plan's layers are fixed (without a budget it must cover every layer)\n"
    "  --save-plan FILE        write the chosen plan (needs a budget or --quant-plan)\n"
    "  --html FILE             the report as one self-contained HTML page with charts\n"
    "  --json FILE             also write the numbers as JSON\n"
    "  --lora ADAPTER, --lora-scale S   the model with LoRA adapters, as for compile (the\n"
    "                          adapters stay f32: they are not layers to choose for)\n"
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

struct analyze_args {
  const char *input, *calib_dir, *quant_arg, *group_arg, *algo_arg, *metric_arg, *json, *html, *cpu;
  const char *keep_float, *plan_in, *plan_out, *select;
  double target_bpw, max_loss;
  int64_t max_bytes;
  int opt_level;
  struct lb_dim_binding dims[16];
  int n_dims;
  const char *lora[16], *lora_scale;
  int n_lora;
  char candidates[MAX_PRECISIONS * 16]; /* --quant as mixed-precision candidates: "w8,w4g32"; "" = the default */
  enum lb_weight_algo algo;
};

static const char *option_value(int argc, char **argv, int *i, const char *opt) {
  size_t n = strlen(opt);
  if (strncmp(argv[*i], opt, n) != 0) return NULL;
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (argv[*i][n] != 0) return NULL;
  if (*i + 1 >= argc) usage_error("option %s needs a value", opt);
  return argv[++*i];
}

/* A group size: positive integer, all of the string. */
static int64_t group_value(const char *s) {
  char *end;
  errno = 0;
  long long g = strtoll(s, &end, 10);
  if (errno || end == s || *end || g <= 0 || g > INT32_MAX)
    usage_error("group size must be a positive integer (the candidates are grouped): '%s'", s);
  return g;
}

static double positive_number(const char *s, const char *opt) {
  char *end;
  errno = 0;
  double x = strtod(s, &end);
  if (errno || end == s || *end || !(x > 0) || !isfinite(x)) usage_error(opt, s);
  return x;
}

/* "w8,w4,w3:128,w2g64,f16" -> "w8,w4g32,w3g128,w2g64,f16" (bare wN takes default_group). */
static void parse_precisions(struct analyze_args *a, int64_t default_group) {
  char *copy = strdup(a->quant_arg);
  if (!copy) abort();
  int n = 0, len = 0;
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (n == MAX_PRECISIONS) usage_error("--quant lists more than %s precisions", "11");
    char label[24], *colon = strchr(tok, ':');
    if (colon) *colon = 0;
    bool lowbit = tok[0] == 'w' && tok[1] >= '2' && tok[1] <= '4';
    if (strcmp(tok, "w8") == 0 || strcmp(tok, "f16") == 0) {
      if (colon) usage_error("w8 and f16 are per output column; they take no group ('%s:...')", tok);
      snprintf(label, sizeof label, "%s", tok);
    } else if (lowbit && !tok[2]) {
      snprintf(label, sizeof label, "%sg%lld", tok, (long long)(colon ? group_value(colon + 1) : default_group));
    } else if (lowbit && tok[2] == 'g' && !colon) {
      group_value(tok + 3);
      snprintf(label, sizeof label, "%s", tok);
    } else {
      usage_error("unknown --quant precision '%s' (f16, w8, w4, w3, w2, optionally wN:GROUP or wNgGROUP)", tok);
    }
    len += snprintf(a->candidates + len, sizeof a->candidates - (size_t)len, "%s%s", n ? "," : "", label);
    n++;
  }
  free(copy);
  if (!n) usage_error("--quant needs at least one precision: '%s'", a->quant_arg);
}

static void parse_args(int argc, char **argv, struct analyze_args *a) {
  memset(a, 0, sizeof *a);
  a->opt_level = 3;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i], *v;
    if ((v = option_value(argc, argv, &i, "--calib"))) {
      a->calib_dir = v;
    } else if ((v = option_value(argc, argv, &i, "--quant-plan"))) {
      a->plan_in = v;
    } else if ((v = option_value(argc, argv, &i, "--quant")) || (v = option_value(argc, argv, &i, "--candidates"))) {
      a->quant_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--group-size"))) {
      a->group_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--weight-algo"))) {
      a->algo_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--metric"))) {
      a->metric_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--json"))) {
      a->json = v;
    } else if ((v = option_value(argc, argv, &i, "--html"))) {
      a->html = v;
    } else if ((v = option_value(argc, argv, &i, "--target-bpw"))) {
      a->target_bpw = positive_number(v, "--target-bpw needs a positive number of bits per weight: '%s'");
    } else if ((v = option_value(argc, argv, &i, "--max-size"))) {
      if (!lb_mixed_parse_size(v, &a->max_bytes)) usage_error("--max-size needs a size (123, 64KB, 2MB): '%s'", v);
    } else if ((v = option_value(argc, argv, &i, "--max-loss"))) {
      a->max_loss = positive_number(v, "--max-loss needs a positive error (in the metric's units): '%s'");
    } else if ((v = option_value(argc, argv, &i, "--keep-float"))) {
      a->keep_float = v;
    } else if ((v = option_value(argc, argv, &i, "--select"))) {
      if (strcmp(v, "exact") != 0 && strcmp(v, "greedy") != 0) usage_error("unknown --select '%s' (exact, greedy)", v);
      a->select = v;
    } else if ((v = option_value(argc, argv, &i, "--save-plan"))) {
      a->plan_out = v;
    } else if ((v = option_value(argc, argv, &i, "--lora-scale"))) {
      a->lora_scale = v;
    } else if ((v = option_value(argc, argv, &i, "--lora"))) {
      if (a->n_lora == 16) usage_error("more than %s --lora adapters", "16");
      a->lora[a->n_lora++] = v;
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
    } else if (strcmp(arg, "--asym") == 0 || strcmp(arg, "--clip") == 0) {
      usage_error("analyze measures the candidates of --quant auto (symmetric, no clipping search); %s applies to "
                  "compile --quant wN",
                  arg);
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
  if (a->lora_scale && !a->n_lora) usage_error("%s", "--lora-scale needs --lora ADAPTER");
  a->algo = LB_WALGO_RTN;
  if (a->algo_arg && (!lb_weight_algo_parse(a->algo_arg, &a->algo) ||
                      (a->algo != LB_WALGO_RTN && a->algo != LB_WALGO_GPTQ)))
    usage_error("analyze: unknown --weight-algo '%s' (rtn, gptq: awq rescales several layers at once)",
                a->algo_arg);
  enum lb_sens_metric m;
  if (a->metric_arg && !lb_sens_metric_parse(a->metric_arg, &m))
    usage_error("unknown --metric '%s' (mse, kl)", a->metric_arg);
  bool budget = a->target_bpw > 0 || a->max_bytes > 0 || a->max_loss > 0;
  if (a->plan_out && !budget && !a->plan_in)
    usage_error("%s", "--save-plan needs a plan to save: give a budget (--target-bpw, --max-size, --max-loss)");
  if (a->keep_float && !budget)
    usage_error("%s", "--keep-float applies to a choice: give a budget (--target-bpw, --max-size, --max-loss)");
  int64_t group = a->group_arg ? group_value(a->group_arg) : 32;
  if (a->quant_arg) parse_precisions(a, group);
}

static enum lb_status load(const struct analyze_args *a, struct lb_graph **g, struct lb_diag *d) {
  size_t n = strlen(a->input);
  if (n >= 5 && strcmp(a->input + n - 5, ".lbir") == 0) {
    if (a->n_dims) usage_error("%s", "--dim applies to ONNX models; IR text has static shapes");
    enum lb_status st = lb_graph_parse_file(a->input, g, d);
    return st == LB_OK ? lb_graph_verify(*g, d) : st;
  }
  struct lb_onnx_options o = {.dims = a->dims, .n_dims = a->n_dims};
  enum lb_status st = lb_onnx_load_file(a->input, &o, g, d);
  if (st != LB_OK || !a->n_lora) return st;
  struct lb_lora_options lo = {.paths = a->lora, .n_paths = a->n_lora, .has_scale = a->lora_scale != NULL};
  if (lo.has_scale) {
    char *end;
    lo.scale = strtod(a->lora_scale, &end);
    if (end == a->lora_scale || *end || !isfinite(lo.scale))
      usage_error("--lora-scale needs a number: '%s'", a->lora_scale);
  }
  return lb_lora_apply(*g, &lo, NULL, d);
}

/* ---- output ------------------------------------------------------------------------------ */

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

/* Candidate c applies to layer i (it has bytes there). */
static bool takes(const struct lb_report *r, int32_t i, int32_t c) { return r->layers[i].bytes[c] > 0; }

/* The layers candidate c quantizes, worst first, into order; returns how many. */
static int32_t ranking(const struct lb_report *r, int32_t c, int32_t *order) {
  struct ranked *rk = malloc(sizeof *rk * (size_t)(r->n_layers + 1));
  if (!rk) abort();
  int32_t n = 0;
  for (int32_t i = 0; i < r->n_layers; i++)
    if (takes(r, i, c)) rk[n++] = (struct ranked){r->layers[i].error[c], i};
  qsort(rk, (size_t)n, sizeof *rk, cmp_worst);
  for (int32_t i = 0; i < n; i++) order[i] = rk[i].layer;
  free(rk);
  return n;
}

/* One table per candidate precision (f32 left out), worst layer first. */
static void print_tables(FILE *f, const struct lb_report *r) {
  int32_t *order = malloc(sizeof *order * (size_t)(r->n_layers + 1));
  if (!order) abort();
  bool kl = strcmp(r->metric, "kl") == 0;
  const char *what = kl ? "KL(float || quantized), mean over output rows, nats" : "MSE of the outputs against float";
  for (int32_t c = 1; c < r->n_cands; c++) {
    int32_t n = ranking(r, c, order);
    double worst = n ? r->layers[order[0]].error[c] : 0, sum = 0;
    int64_t total_q = 0, total_f = 0;
    bool lowbit = r->cands[c][0] == 'w' && r->cands[c][1] != '8';
    fprintf(f, "%s%s (%s), each layer quantized alone; %s on %lld samples; worst first\n", c > 1 ? "\n" : "",
            r->cands[c], lowbit ? r->weight_algo : "rtn", what, (long long)r->samples);
    fprintf(f, "%4s  %-30s %-24s %11s %-10s %9s %12s %8s\n", "rank", "value", "node", "KxN", "precision", "bytes",
            r->metric, "of_worst");
    for (int32_t k = 0; k < n; k++) {
      const struct lb_report_layer *L = &r->layers[order[k]];
      char shape[40];
      snprintf(shape, sizeof shape, "%lldx%lld", (long long)L->k, (long long)L->n);
      fprintf(f, "%4d  %-30s %-24s %11s %-10s %9lld %12.4e %8.3f\n", (int)k + 1, L->value, L->node, shape,
              r->cands[c], (long long)L->bytes[c], L->error[c], worst > 0 ? L->error[c] / worst : 0.0);
      total_q += L->bytes[c];
      total_f += L->bytes[0];
      sum += L->error[c];
    }
    fprintf(f, "all %d layers: summed %s %.4e; weights %lld bytes (f32: %lld)\n", (int)n, r->metric, sum,
            (long long)total_q, (long long)total_f);
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

/* The candidate's bits and group from its label: "w4g32" -> 4, 32; "w8" -> 8, 0; "f16" -> 16, 0. */
static void label_bits(const char *label, int *bits, long long *group) {
  *bits = atoi(label + 1);
  const char *g = strchr(label, 'g');
  *group = g ? atoll(g + 1) : 0;
}

static void write_json(FILE *f, const struct lb_report *r) {
  bool planned = r->budget != NULL;
  fputs("{\n  \"model\": ", f);
  json_string(f, r->model);
  fprintf(f, ",\n  \"metric\": \"%s\",\n  \"samples\": %lld,\n  \"weight_algo\": \"%s\",\n  \"precisions\": [",
          r->metric, (long long)r->samples, r->weight_algo);
  for (int32_t c = 1; c < r->n_cands; c++) {
    int bits;
    long long group;
    label_bits(r->cands[c], &bits, &group);
    fprintf(f, "%s\n    {\"label\": ", c > 1 ? "," : "");
    json_string(f, r->cands[c]);
    fprintf(f, ", \"bits\": %d, \"group\": %lld, \"all_layers_bits_per_weight\": ", bits, group);
    json_number(f, r->uniform ? r->uniform[c].bits_per_weight : NAN);
    fputs(", \"all_layers_summed_error\": ", f);
    json_number(f, r->uniform ? r->uniform[c].error : NAN);
    fputc('}', f);
  }
  fputs("\n  ],\n  \"layers\": [", f);
  for (int32_t i = 0; i < r->n_layers; i++) {
    const struct lb_report_layer *L = &r->layers[i];
    fprintf(f, "%s\n    {\"value\": ", i ? "," : "");
    json_string(f, L->value);
    fputs(", \"node\": ", f);
    json_string(f, L->node);
    fprintf(f, ", \"k\": %lld, \"n\": %lld, \"float_bytes\": %lld, \"results\": [", (long long)L->k, (long long)L->n,
            (long long)L->bytes[0]);
    for (int32_t c = 1, first = 1; c < r->n_cands; c++) {
      if (!takes(r, i, c)) continue;
      fprintf(f, "%s{\"precision\": ", first ? "" : ", ");
      json_string(f, r->cands[c]);
      fprintf(f, ", \"bytes\": %lld, \"error\": ", (long long)L->bytes[c]);
      json_number(f, L->error[c]);
      fputc('}', f);
      first = 0;
    }
    fputc(']', f);
    if (planned) {
      fputs(", \"plan\": ", f);
      json_string(f, r->cands[L->choice]);
      fprintf(f, ", \"fixed\": %s, \"sqnr_db\": ", L->fixed ? "true" : "false");
      if (isinf(L->sqnr_db) && L->sqnr_db > 0) fputs("\"inf\"", f);
      else json_number(f, L->sqnr_db);
      fputs(", \"max_abs\": ", f);
      json_number(f, L->max_abs);
    }
    fputc('}', f);
  }
  fputs("\n  ]", f);
  if (planned) {
    int64_t w = 0, b = 0;
    double e = 0;
    for (int32_t i = 0; i < r->n_layers; i++) {
      const struct lb_report_layer *L = &r->layers[i];
      w += L->k * L->n;
      b += L->bytes[L->choice];
      e += L->error[L->choice];
    }
    fputs(",\n  \"plan\": {\"budget\": ", f);
    json_string(f, r->budget);
    fprintf(f, ", \"weights\": %lld, \"bytes\": %lld, \"bits_per_weight\": ", (long long)w, (long long)b);
    json_number(f, w ? (double)b * 8 / (double)w : NAN);
    fputs(", \"summed_error\": ", f);
    json_number(f, e);
    fputs(", \"model_error\": ", f);
    json_number(f, r->model_error);
    fputc('}', f);
  }
  fputs("\n}\n", f);
}

static enum lb_status write_file(const char *path, const struct lb_report *r, struct lb_diag *d) {
  char *tmp = NULL;
  FILE *f = lb_atomic_open(path, &tmp, d);
  if (!f) return d->status ? d->status : LB_ERR_IO;
  write_json(f, r);
  return lb_atomic_commit(f, tmp, path, d);
}

/* ---- the command ------------------------------------------------------------------------- */

/* pipeline without its plan-memory (malloc'ed); *had tells whether it had one. */
static char *without_plan_memory(const char *pipeline, bool *had) {
  char *pipe = strdup(pipeline);
  if (!pipe) abort();
  *had = false;
  for (char *at; (at = strstr(pipe, "plan-memory"));) {
    *had = true;
    memmove(at, at + 11, strlen(at + 11) + 1);
  }
  size_t len = strlen(pipe);
  while (len && pipe[len - 1] == ',') pipe[--len] = 0;
  for (char *at; (at = strstr(pipe, ",,"));) memmove(at, at + 1, strlen(at));
  if (pipe[0] == ',') memmove(pipe, pipe + 1, strlen(pipe));
  return pipe;
}

/* Each layer's output in the chosen model g against the float model fg, and
 * the metric at the outputs, into r (whose layers the caller owns). */
static enum lb_status measure_plan(const struct lb_graph *fg, const struct lb_graph *g, const char *calib_dir,
                                   const struct lb_codegen_options *co, struct lb_report *r,
                                   struct lb_report_layer *layers, struct lb_diag *d) {
  double t0 = now_ms();
  const char **values = malloc(sizeof *values * (size_t)(r->n_layers + 1));
  struct lb_quant_error *errs = calloc((size_t)r->n_layers + 1, sizeof *errs);
  if (!values || !errs) abort();
  for (int32_t i = 0; i < r->n_layers; i++) values[i] = r->layers[i].value;
  enum lb_sens_metric metric = LB_SENS_MSE;
  lb_sens_metric_parse(r->metric, &metric);
  struct lb_progress pr = {.tty = isatty(2) != 0, .what = "measuring the plan"};
  struct lb_codegen_options cc = co ? *co : (struct lb_codegen_options){.opt_level = 3};
  struct lb_quant_report_options ro = {.cg = &cc, .calib_dir = calib_dir, .progress = lb_progress_show,
                                       .progress_ctx = &pr};
  struct lb_quant_comparison cmp = {.values = errs};
  enum lb_status st = lb_quant_compare(fg, g, values, r->n_layers, metric, &ro, &cmp, d);
  if (st == LB_OK) {
    for (int32_t i = 0; i < r->n_layers; i++) {
      layers[i].sqnr_db = errs[i].sqnr_db;
      layers[i].max_abs = errs[i].max_abs;
    }
    r->model_error = cmp.output_metric;
    fprintf(stderr, "lowbit: measured the plan against float on %lld samples in %.1f s: %s %.4g at the outputs\n",
            (long long)cmp.samples, (now_ms() - t0) / 1e3, r->metric, cmp.output_metric);
  }
  free(values);
  free(errs);
  return st;
}

/* The report of a mixed-precision run, completed: the budget as bits per
 * weight for the charts and, with a plan, the chosen model g measured against
 * fg. *layers (the report's own copy, filled here) is the caller's to free. */
static enum lb_status complete_report(const struct lb_mixed_result *res, const struct lb_mixed_options *mo,
                                      const struct lb_graph *fg, const struct lb_graph *g, struct lb_report *r,
                                      struct lb_report_layer **layers, struct lb_diag *d) {
  *r = res->report;
  *layers = malloc(sizeof **layers * (size_t)(r->n_layers + 1));
  if (!*layers) abort();
  memcpy(*layers, r->layers, sizeof **layers * (size_t)r->n_layers);
  r->layers = *layers;
  int64_t weights = 0;
  for (int32_t i = 0; i < r->n_layers; i++) weights += r->layers[i].k * r->layers[i].n;
  r->budget_bpw = mo->target_bpw;
  if (mo->max_bytes > 0 && weights &&
      (!(r->budget_bpw > 0) || (double)mo->max_bytes * 8 / (double)weights < r->budget_bpw))
    r->budget_bpw = (double)mo->max_bytes * 8 / (double)weights;
  r->budget_loss = mo->max_loss;
  return r->budget ? measure_plan(fg, g, mo->calib_dir, mo->jit, r, *layers, d) : LB_OK;
}

enum lb_status lb_analyze_compile_report(struct lb_graph *g, const struct lb_mixed_options *mo, const char *path,
                                         struct lb_diag *d) {
  double t0 = now_ms();
  bool had_plan;
  char *pipe = without_plan_memory(mo->pipeline ? mo->pipeline : lb_default_pipeline, &had_plan);
  struct lb_graph *fg = lb_graph_clone(g);
  struct lb_mixed_result res = {0};
  struct lb_mixed_options o = *mo;
  o.pipeline = pipe;
  o.result = &res;
  enum lb_status st = lb_pass_manager_run(fg, pipe, NULL, d);
  if (st == LB_OK) st = lb_mixed_run(g, &o, d);
  struct lb_report r;
  struct lb_report_layer *layers = NULL;
  if (st == LB_OK) st = complete_report(&res, mo, fg, g, &r, &layers, d);
  if (st == LB_OK) {
    r.seconds = (now_ms() - t0) / 1e3;
    st = lb_report_html(path, &r, d);
  }
  if (st == LB_OK) fprintf(stderr, "lowbit: wrote the report %s\n", path);
  if (st == LB_OK && had_plan) { /* what lb_mixed_run would have run last, dumped as its stage 4-plan */
    struct lb_pass_options po = mo->po ? *mo->po : (struct lb_pass_options){.dump_blobs = LB_PRINT_BLOBS_ELIDED};
    char dir[4096];
    if (po.dump_dir) {
      snprintf(dir, sizeof dir, "%s/4-plan", po.dump_dir);
      po.dump_dir = dir;
    }
    st = lb_pass_manager_run(g, "plan-memory", &po, d);
  }
  free(layers);
  lb_mixed_result_free(&res);
  lb_graph_free(fg);
  free(pipe);
  return st;
}

int lb_cmd_analyze(int argc, char **argv) {
  struct analyze_args a;
  parse_args(argc, argv, &a);
  struct lb_diag d;
  lb_diag_init(&d, a.input);
  struct lb_graph *g = NULL, *fg = NULL;
  struct lb_mixed_result res = {0};
  struct lb_report_layer *layers = NULL;
  struct lb_report r;
  struct lb_codegen_options co = {.cpu = a.cpu, .opt_level = a.opt_level};
  double t0 = now_ms();

  bool had_plan; /* the pipeline without plan-memory, for g and its float copy fg: comparable graphs */
  char *pipe = without_plan_memory(lb_default_pipeline, &had_plan);
  enum lb_status st = load(&a, &g, &d);
  if (st == LB_OK) {
    fg = lb_graph_clone(g);
    st = lb_pass_manager_run(fg, pipe, NULL, &d);
  }
  struct lb_mixed_options mo = {.target_bpw = a.target_bpw, .max_bytes = a.max_bytes, .keep_float = a.keep_float,
                                .max_loss = a.max_loss, .exact = !a.select || strcmp(a.select, "exact") == 0,
                                .candidates = a.candidates[0] ? a.candidates : NULL,
                                .plan_in = a.plan_in, .plan_out = a.plan_out, .algo = a.algo,
                                .calib_dir = a.calib_dir, .pipeline = pipe, .jit = &co, .result = &res};
  mo.metric_given = a.metric_arg && lb_sens_metric_parse(a.metric_arg, &mo.metric);
  if (st == LB_OK) st = lb_mixed_run(g, &mo, &d);
  if (st == LB_OK) st = complete_report(&res, &mo, fg, g, &r, &layers, &d);
  free(pipe);
  if (st == LB_OK) {
    r.seconds = (now_ms() - t0) / 1e3;
    fprintf(stderr, "lowbit: analyzed %d layers x %d precision%s on %lld samples in %.1f s\n", (int)r.n_layers,
            (int)(r.n_cands - 1), r.n_cands == 2 ? "" : "s", (long long)r.samples, r.seconds);
    print_tables(stdout, &r);
    fputc('\n', stdout);
    lb_report_text(stdout, &r);
    if (a.json) st = write_file(a.json, &r, &d);
    if (st == LB_OK && a.html) {
      st = lb_report_html(a.html, &r, &d);
      if (st == LB_OK) fprintf(stderr, "lowbit: wrote the report %s\n", a.html);
    }
  }
  int rc = 0;
  if (st != LB_OK) {
    if (d.text) fputs(d.text, stderr);
    else fprintf(stderr, "lowbit: error: %s\n", lb_status_name(st));
    rc = st == LB_ERR_USAGE ? EXIT_USAGE : EXIT_BAD_INPUT;
  }
  free(layers);
  lb_mixed_result_free(&res);
  lb_graph_free(fg);
  lb_graph_free(g);
  lb_diag_free(&d);
  for (int i = 0; i < a.n_dims; i++) free((char *)a.dims[i].name);
  return rc;
}
