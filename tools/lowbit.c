/* lowbit.c: the compiler driver.
 *
 *   lowbit compile MODEL -o OUT [options]   ONNX model or .lbir IR text in,
 *                                           executable / object / library / IR out
 *   lowbit analyze MODEL --calib DIR --quant w4  per-layer sensitivity (tools/analyze.c)
 *   lowbit --list-ops | --list-passes | --version | --help
 *
 * This is the only place (with lowbit-opt) that exits; every stage returns a
 * status and fills a struct lb_diag.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "codegen/calibrate.h"
#include "codegen/codegen.h"
#include "frontend/lora.h"
#include "frontend/onnx.h"
#include "ir/dot.h"
#include "ir/ir.h"
#include "passes/calib.h"
#include "passes/pass.h"
#include "passes/quantize.h"
#include "tools/analyze.h"
#include "tools/mixed.h"
#include "tools/quant_flow.h"

#define LOWBIT_VERSION "0.1.0"

/* Exit statuses: 1 = the model or input could not be compiled, 2 = usage. */
enum { EXIT_BAD_INPUT = 1, EXIT_USAGE = 2 };

static const char usage_text[] =
    "usage: lowbit compile MODEL.onnx|MODEL.lbir -o OUT [options]\n"
    "       lowbit analyze MODEL --calib DIR --quant P[,P...] [options]   (see below)\n"
    "       lowbit --list-ops | --list-passes | --version | --help\n"
    "\n"
    "output:\n"
    "  -o PATH                 output path (required)\n"
    "  --emit KIND             exe (default): static executable with the runtime;\n"
    "                          obj, asm, llvm: object / assembly / LLVM IR;\n"
    "                          lib: static library libNAME.a plus NAME.h;\n"
    "                          ir: lowbit IR text after the pipeline (complete model)\n"
    "  --name NAME             C symbol prefix (default: from the output file name)\n"
    "target:\n"
    "  --target TRIPLE         x86_64-linux-gnu (default) or aarch64-linux-gnu\n"
    "  --cpu NAME              CPU to tune and select instructions for (default: the host\n"
    "                          CPU when the target is the host's architecture, else a\n"
    "                          portable baseline); 'generic' for a portable build\n"
    "  --features +F1,-F2      extra LLVM target features (recorded and checked at start)\n"
    "  -O0 .. -O3              LLVM optimization level (default -O3)\n"
    "model:\n"
    "  --dim NAME=VALUE        bind a symbolic input dimension (repeatable)\n"
    "  --bind INPUT=FILE       fix an input's value at compile time (.pb or .npy)\n"
    "  --max-tensor-bytes N    refuse larger tensors (default 16 GiB)\n"
    "  --lora ADAPTER          add a LoRA adapter to named MatMuls, kept f32 beside the\n"
    "                          (quantized) base: PEFT's adapter_model.safetensors or an\n"
    "                          .onnx of <target>.lora_A/.lora_B initializers (repeatable)\n"
    "  --lora-scale S          adapter scale when adapter_config.json (lora_alpha / r) or\n"
    "                          <target>.lora_scale does not give one (default 1)\n"
    "passes:\n"
    "  --pipeline P1,P2,...    passes to run (default: the float pipeline; see --list-passes)\n"
    "  --print-before=PASS     print the IR before PASS (repeatable)\n"
    "  --print-after=PASS      print the IR after PASS (repeatable)\n"
    "  --print-before-all, --print-after-all, --print-changed\n"
    "  --dump-dir DIR          write the IR after every pass as DIR/NN-PASS.lbir\n"
    "  --dump-dot FILE         write the final graph (after quantization, before code\n"
    "                          generation) as Graphviz DOT, weight precisions coloured\n"
    "  --verify-each           run the IR verifier after every pass\n"
    "  --time-passes           report the time each pass took\n"
    "  --full-blobs            print weights in full in printed IR (default: elided)\n"
    "  -v, --verbose           report each stage's time and the link command\n"
    "quantization (docs/quantization.md):\n"
    "  --quant S               int8 linear layers: w8a8 (static activation scales; needs\n"
    "                          --calib or --load-calib), w8a8-dynamic (per-row scales at\n"
    "                          run time), w8 (int8 weights, float activations); or\n"
    "                          w4, w3, w2: group-wise low-bit weights, float activations;\n"
    "                          fp8, fp8-e5m2: E4M3 / E5M2 weights, float activations;\n"
    "                          f16: IEEE half weights (half the size of f32), float activations\n"
    "  --group-size G          low-bit: one f16 scale per G inputs of a column (default 32;\n"
    "                          0 = one per output column; fp8: default 0)\n"
    "  --asym                  low-bit: asymmetric (zero points; default symmetric)\n"
    "  --weight-algo A         low-bit: rtn (round to nearest, default), gptq, awq or\n"
    "                          awq+gptq (all but rtn need --calib)\n"
    "  --clip                  low-bit: search each group's clipping range (least error)\n"
    "  --act-order             gptq: quantize inputs by descending activation energy\n"
    "  --hessian-memory MB     gptq: Hessians held at once (MiB, fractions allowed; default\n"
    "                          256): layers are calibrated and quantized in batches\n"
    "  --act A                 low-bit: activations f32 (default; weights dequantized in\n"
    "                          registers) or int8 (per-row scales at run time, integer dot\n"
    "                          products: faster, slightly less accurate)\n"
    "  --smoothquant[=A]       migrate activation outliers into the weights first\n"
    "                          (alpha A, default 0.5; needs --quant and --calib)\n"
    "  --outliers=T            keep input channels with |x| > T in float (LLM.int8();\n"
    "                          needs --quant and --calib)\n"
    "  --quant auto            mixed precision: per layer f32, w8, w4/w3/w2 g32, chosen by\n"
    "                          measured sensitivity (needs --calib) under a budget:\n"
    "  --target-bpw B          weight bits per weight, scales included (e.g. 3.5)\n"
    "  --max-size SIZE         weight bytes of the layers (BYTES, or with KB, MB)\n"
    "  --max-loss L            the smallest plan whose error (KL nats per output row for\n"
    "                          logits, else MSE), measured on the samples, stays within L\n"
    "  --select exact|greedy   the choice: exact (dynamic programming over bytes, default)\n"
    "                          or greedy by error decrease per extra bit\n"
    "  --candidates LIST       the precisions to choose from (default w8,w4g32,w3g32,w2g32;\n"
    "                          any of f16, w8, w4gG, w3gG, w2gG; f32 is always one)\n"
    "  --keep-float GLOBS      globs on layer value/node names, separated by ',' or '|':\n"
    "                          keep those layers f32\n"
    "  --save-plan FILE        write the choice as JSON; --quant-plan FILE compiles it\n"
    "                          (with a budget: its \"auto\" or missing layers are chosen)\n"
    "  --report FILE.html      the report of lowbit analyze --html: sensitivity, the plan,\n"
    "                          its error against float after each layer (needs --calib)\n"
    "  --quant-report FILE     per-layer error of the quantized model against float on\n"
    "                          the calibration samples, worst first (Markdown; needs --calib)\n"
    "calibration:\n"
    "  --calib DIR             run the model on the samples in DIR (DIR/<sample>/input_K.pb\n"
    "                          or DIR/<sample>/<input name>.npy) and attach activation scales\n"
    "  --calib-method M        minmax, percentile:P, kl, mse (default: minmax; with\n"
    "                          --quant w8a8, percentile:99.99)\n"
    "  --calib-scheme S        int8 (symmetric, default) or uint8 (asymmetric)\n"
    "  --save-calib FILE       write statistics and scales as JSON (needs --calib)\n"
    "  --load-calib FILE       attach the scales of a file written by --save-calib\n";

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

static bool has_suffix(const char *s, const char *suffix) {
  size_t n = strlen(s), m = strlen(suffix);
  return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* A growable NULL-terminated list of strings (for repeatable options). */
struct str_list {
  const char **items;
  int n;
};
static void str_list_push(struct str_list *l, const char *s) {
  l->items = realloc(l->items, sizeof *l->items * (size_t)(l->n + 2));
  if (!l->items) abort();
  l->items[l->n++] = s;
  l->items[l->n] = NULL;
}

struct compile_args {
  const char *input, *output, *name, *target, *cpu, *features, *pipeline, *dump_dir;
  const char *dump_dot; /* --dump-dot FILE: the final graph as Graphviz */
  const char *calib_dir, *save_calib, *load_calib, *calib_method_arg, *calib_scheme_arg;
  const char *quant_arg, *quant_report, *group_arg, *weight_algo_arg, *hessian_memory_arg;
  double hessian_memory_mb;
  enum lb_quant_scheme quant;
  int64_t group;
  bool asym, clip, act_order, act_int8;
  const char *act_arg;
  enum lb_weight_algo weight_algo;
  bool smoothquant, outliers;
  double alpha, threshold;
  struct lb_calib_method calib_method;
  enum lb_calib_scheme calib_scheme;
  enum { OUT_EXE, OUT_OBJ, OUT_ASM, OUT_LLVM, OUT_LIB, OUT_IR } emit;
  int opt_level;
  struct lb_dim_binding *dims;
  int n_dims;
  struct lb_input_binding *binds;
  int n_binds;
  int64_t max_tensor_bytes;
  struct str_list print_before, print_after;
  struct str_list lora;   /* --lora adapters (frontend/lora.h) */
  const char *lora_scale_arg;
  bool print_before_all, print_after_all, print_changed, verify_each, time_passes;
  bool full_blobs, verbose;
  /* --quant auto (tools/mixed.c) */
  bool quant_auto;
  const char *select_arg;
  const char *target_bpw_arg, *max_size_arg, *max_loss_arg, *candidates, *keep_float, *quant_plan, *save_plan;
  const char *report_html; /* --report: as `lowbit analyze --html` (tools/analyze.c) */
  double target_bpw, max_loss;
  int64_t max_size;
};

static bool same_file(const char *a, const char *b);

/* A finite number, all of the string; else a usage error naming the option. */
static double number_arg(const char *v, const char *opt, double lo, double hi) {
  char *end;
  errno = 0;
  double x = strtod(v, &end);
  if (errno || end == v || *end || !(x >= lo && x <= hi)) {
    fprintf(stderr, "lowbit: error: %s needs a number in [%g, %g], got '%s'\n(run 'lowbit --help' for usage)\n",
            opt, lo, hi, v);
    exit(EXIT_USAGE);
  }
  return x;
}

/* --quant auto: a budget or a plan; mixed.c measures with RTN or gptq only. */
static void parse_auto_args(struct compile_args *a) {
  bool budget = a->target_bpw_arg || a->max_size_arg || a->max_loss_arg;
  if (!budget && !a->quant_plan)
    usage_error("%s", "--quant auto needs a budget (--target-bpw B, --max-size BYTES or --max-loss L) or "
                      "--quant-plan FILE");
  if (a->quant_plan && !budget && (a->keep_float || a->candidates))
    usage_error("%s", "--quant-plan FILE without a budget fixes every layer: --keep-float and --candidates need "
                      "a budget (--target-bpw, --max-size or --max-loss) to choose the layers it leaves out");
  if (a->target_bpw_arg) a->target_bpw = number_arg(a->target_bpw_arg, "--target-bpw", 1, 32);
  if (a->max_loss_arg) a->max_loss = number_arg(a->max_loss_arg, "--max-loss", 1e-300, 1e30);
  if (a->select_arg && strcmp(a->select_arg, "exact") != 0 && strcmp(a->select_arg, "greedy") != 0)
    usage_error("unknown --select '%s' (exact, greedy)", a->select_arg);
  if (a->max_size_arg && !lb_mixed_parse_size(a->max_size_arg, &a->max_size))
    usage_error("--max-size needs a positive size (BYTES, or with KB or MB): '%s'", a->max_size_arg);
  if ((budget || !a->quant_plan) && !a->calib_dir)
    usage_error("%s", "--quant auto needs --calib DIR (the samples each layer's sensitivity is measured on)");
  if (a->group_arg || a->asym || a->clip || a->act_order || a->smoothquant || a->outliers || a->quant_report ||
      a->load_calib || a->save_calib)
    usage_error("%s", "--quant auto takes --weight-algo rtn|gptq, --act and --calib only (its precisions come from "
                      "--candidates; groups as wNgG)");
}

/* Matches "--opt=value" or "--opt value"; advances *i past a separate value. */
static const char *option_value(int argc, char **argv, int *i, const char *opt) {
  size_t n = strlen(opt);
  if (strncmp(argv[*i], opt, n) != 0) return NULL;
  if (argv[*i][n] == '=') return argv[*i] + n + 1;
  if (argv[*i][n] != 0) return NULL;
  if (*i + 1 >= argc) usage_error("option %s needs a value", opt);
  return argv[++*i];
}

static void split_binding(const char *arg, const char *opt, char **name, const char **value) {
  const char *eq = strchr(arg, '=');
  if (!eq || eq == arg || !eq[1]) usage_error("expected NAME=VALUE after %s", opt);
  *name = strndup(arg, (size_t)(eq - arg));
  if (!*name) abort();
  *value = eq + 1;
}

static void parse_compile_args(int argc, char **argv, struct compile_args *a) {
  memset(a, 0, sizeof *a);
  a->opt_level = 3;
  for (int i = 0; i < argc; i++) {
    const char *arg = argv[i], *v;
    if (strcmp(arg, "-o") == 0) {
      if (i + 1 >= argc) usage_error("%s needs a path", "-o");
      a->output = argv[++i];
    } else if ((v = option_value(argc, argv, &i, "--emit"))) {
      static const char *const kinds[] = {"exe", "obj", "asm", "llvm", "lib", "ir"};
      int k = 0;
      while (k < 6 && strcmp(kinds[k], v) != 0) k++;
      if (k == 6) usage_error("unknown --emit kind '%s' (exe, obj, asm, llvm, lib, ir)", v);
      a->emit = k;
    } else if ((v = option_value(argc, argv, &i, "--name"))) {
      a->name = v;
    } else if ((v = option_value(argc, argv, &i, "--target"))) {
      a->target = v;
    } else if ((v = option_value(argc, argv, &i, "--cpu"))) {
      a->cpu = v;
    } else if ((v = option_value(argc, argv, &i, "--features"))) {
      a->features = v;
    } else if ((v = option_value(argc, argv, &i, "--pipeline"))) {
      a->pipeline = v;
    } else if ((v = option_value(argc, argv, &i, "--calib-method"))) {
      a->calib_method_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--calib-scheme"))) {
      a->calib_scheme_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--quant"))) {
      a->quant_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--group-size"))) {
      a->group_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--weight-algo"))) {
      a->weight_algo_arg = v;
    } else if (strcmp(arg, "--asym") == 0) {
      a->asym = true;
    } else if (strcmp(arg, "--clip") == 0) {
      a->clip = true;
    } else if (strcmp(arg, "--act-order") == 0) {
      a->act_order = true;
    } else if ((v = option_value(argc, argv, &i, "--hessian-memory"))) {
      a->hessian_memory_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--act"))) {
      a->act_arg = v;
    } else if (strcmp(arg, "--smoothquant") == 0) {
      a->smoothquant = true;
      a->alpha = 0.5;
    } else if (strncmp(arg, "--smoothquant=", 14) == 0) {
      a->smoothquant = true;
      a->alpha = number_arg(arg + 14, "--smoothquant", 0, 1);
    } else if ((v = option_value(argc, argv, &i, "--outliers"))) {
      a->outliers = true;
      a->threshold = number_arg(v, "--outliers", 0, 1e30);
    } else if ((v = option_value(argc, argv, &i, "--target-bpw"))) {
      a->target_bpw_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--max-size"))) {
      a->max_size_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--max-loss"))) {
      a->max_loss_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--select"))) {
      a->select_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--candidates"))) {
      a->candidates = v;
    } else if ((v = option_value(argc, argv, &i, "--keep-float"))) {
      a->keep_float = v;
    } else if ((v = option_value(argc, argv, &i, "--quant-plan"))) {
      a->quant_plan = v;
    } else if ((v = option_value(argc, argv, &i, "--save-plan"))) {
      a->save_plan = v;
    } else if ((v = option_value(argc, argv, &i, "--report"))) {
      a->report_html = v;
    } else if ((v = option_value(argc, argv, &i, "--quant-report"))) {
      a->quant_report = v;
    } else if ((v = option_value(argc, argv, &i, "--calib"))) {
      a->calib_dir = v;
    } else if ((v = option_value(argc, argv, &i, "--save-calib"))) {
      a->save_calib = v;
    } else if ((v = option_value(argc, argv, &i, "--load-calib"))) {
      a->load_calib = v;
    } else if ((v = option_value(argc, argv, &i, "--lora-scale"))) {
      a->lora_scale_arg = v;
    } else if ((v = option_value(argc, argv, &i, "--lora"))) {
      str_list_push(&a->lora, v);
    } else if ((v = option_value(argc, argv, &i, "--dump-dir"))) {
      a->dump_dir = v;
    } else if ((v = option_value(argc, argv, &i, "--dump-dot"))) {
      a->dump_dot = v;
    } else if ((v = option_value(argc, argv, &i, "--print-before"))) {
      str_list_push(&a->print_before, v);
    } else if ((v = option_value(argc, argv, &i, "--print-after"))) {
      str_list_push(&a->print_after, v);
    } else if ((v = option_value(argc, argv, &i, "--dim"))) {
      char *name;
      const char *val;
      split_binding(v, "--dim", &name, &val);
      char *end;
      errno = 0;
      long long n = strtoll(val, &end, 10);
      if (errno || *end || n <= 0) usage_error("--dim value must be a positive integer: '%s'", v);
      a->dims = realloc(a->dims, sizeof *a->dims * (size_t)(a->n_dims + 1));
      if (!a->dims) abort();
      a->dims[a->n_dims++] = (struct lb_dim_binding){name, n};
    } else if ((v = option_value(argc, argv, &i, "--bind"))) {
      char *name;
      const char *path;
      split_binding(v, "--bind", &name, &path);
      a->binds = realloc(a->binds, sizeof *a->binds * (size_t)(a->n_binds + 1));
      if (!a->binds) abort();
      a->binds[a->n_binds++] = (struct lb_input_binding){name, path};
    } else if ((v = option_value(argc, argv, &i, "--max-tensor-bytes"))) {
      char *end;
      long long n = strtoll(v, &end, 10);
      if (*end || n <= 0) usage_error("--max-tensor-bytes must be a positive integer: '%s'", v);
      a->max_tensor_bytes = n;
    } else if (strncmp(arg, "-O", 2) == 0 && arg[2] >= '0' && arg[2] <= '3' && !arg[3]) {
      a->opt_level = arg[2] - '0';
    } else if (strcmp(arg, "--print-before-all") == 0) {
      a->print_before_all = true;
    } else if (strcmp(arg, "--print-after-all") == 0) {
      a->print_after_all = true;
    } else if (strcmp(arg, "--print-changed") == 0) {
      a->print_changed = true;
    } else if (strcmp(arg, "--verify-each") == 0) {
      a->verify_each = true;
    } else if (strcmp(arg, "--time-passes") == 0) {
      a->time_passes = true;
    } else if (strcmp(arg, "--full-blobs") == 0) {
      a->full_blobs = true;
    } else if (strcmp(arg, "-v") == 0 || strcmp(arg, "--verbose") == 0) {
      a->verbose = true;
    } else if (arg[0] == '-' && arg[1]) {
      usage_error("unknown option '%s'", arg);
    } else if (!a->input) {
      a->input = arg;
    } else {
      usage_error("more than one model given ('%s')", arg);
    }
  }
  if (!a->input) usage_error("%s", "no model given");
  if (!a->output) usage_error("%s", "no output given (-o PATH)");
  if (a->save_calib && !a->calib_dir) usage_error("%s", "--save-calib needs --calib DIR (the samples to calibrate on)");
  if (a->load_calib && a->calib_dir)
    usage_error("%s", "--load-calib and --calib exclude each other (calibrate, or reuse a saved calibration)");
  if ((a->calib_method_arg || a->calib_scheme_arg) && !a->calib_dir)
    usage_error("%s", "--calib-method and --calib-scheme need --calib DIR (a saved calibration keeps its own)");
  char err[160];
  if (a->calib_method_arg && !lb_calib_method_parse(a->calib_method_arg, &a->calib_method, err, sizeof err))
    usage_error("%s", err);
  a->calib_scheme = LB_CALIB_INT8_SYM;
  if (a->calib_scheme_arg) {
    if (strcmp(a->calib_scheme_arg, "int8") == 0) a->calib_scheme = LB_CALIB_INT8_SYM;
    else if (strcmp(a->calib_scheme_arg, "uint8") == 0) a->calib_scheme = LB_CALIB_UINT8_ASYM;
    else usage_error("unknown --calib-scheme '%s' (int8, uint8)", a->calib_scheme_arg);
  }
  if (a->lora_scale_arg && !a->lora.n) usage_error("%s", "--lora-scale needs --lora ADAPTER");
  if (a->lora_scale_arg) number_arg(a->lora_scale_arg, "--lora-scale", -1e30, 1e30);
  a->quant_auto = a->quant_arg && strcmp(a->quant_arg, "auto") == 0;
  if (a->quant_auto) parse_auto_args(a), a->quant = LB_QUANT_W4; /* low-bit for the checks below */
  else if (a->target_bpw_arg || a->max_size_arg || a->max_loss_arg || a->candidates || a->select_arg ||
           a->quant_plan || a->save_plan || a->report_html)
    usage_error("%s", "--target-bpw, --max-size, --max-loss, --candidates, --select, --quant-plan, --save-plan "
                      "and --report need --quant auto");
  if (a->report_html && !a->calib_dir) usage_error("%s", "--report needs --calib DIR (the samples to measure on)");
  if (a->keep_float && !a->quant_arg) usage_error("%s", "--keep-float needs --quant");
  if (a->quant_arg && !a->quant_auto && !lb_quant_scheme_parse(a->quant_arg, &a->quant)) {
    fprintf(stderr, "lowbit: error: unknown --quant scheme '%s' (%s)\n(run 'lowbit --help' for usage)\n",
            a->quant_arg, lb_quant_scheme_list);
    exit(EXIT_USAGE);
  }
  bool lowbit = a->quant_arg && (a->quant_auto || lb_quant_scheme_bits(a->quant) < 8);
  bool fp8 = a->quant_arg && lb_quant_scheme_fp8(a->quant); /* takes --group-size only */
  if (!lowbit && ((a->group_arg && !fp8) || a->weight_algo_arg || a->asym || a->clip || a->act_order || a->act_arg))
    usage_error("%s", "--group-size, --asym, --weight-algo, --clip, --act-order and --act need --quant w4, w3 or w2 "
                      "(fp8: --group-size only)");
  if (a->act_arg) {
    if (strcmp(a->act_arg, "int8") == 0) a->act_int8 = true;
    else if (strcmp(a->act_arg, "f32") != 0) usage_error("unknown --act '%s' (f32, int8)", a->act_arg);
  }
  a->group = fp8 ? 0 : 32;
  if (a->group_arg) {
    char *end;
    errno = 0;
    long long gs = strtoll(a->group_arg, &end, 10);
    if (errno || end == a->group_arg || *end || gs < 0 || gs > INT32_MAX)
      usage_error("--group-size must be a non-negative integer (0 = per output column): '%s'", a->group_arg);
    a->group = gs;
  }
  a->weight_algo = LB_WALGO_RTN;
  if (a->weight_algo_arg && !lb_weight_algo_parse(a->weight_algo_arg, &a->weight_algo)) {
    fprintf(stderr, "lowbit: error: unknown --weight-algo '%s' (%s)\n(run 'lowbit --help' for usage)\n",
            a->weight_algo_arg, lb_weight_algo_list);
    exit(EXIT_USAGE);
  }
  if (lowbit && a->weight_algo != LB_WALGO_RTN && !a->calib_dir)
    usage_error("--weight-algo %s needs --calib DIR (the samples its statistics come from)", a->weight_algo_arg);
  if (a->act_order && a->weight_algo != LB_WALGO_GPTQ && a->weight_algo != LB_WALGO_AWQ_GPTQ)
    usage_error("%s", "--act-order needs --weight-algo gptq (or awq+gptq)");
  if (a->hessian_memory_arg && a->weight_algo != LB_WALGO_GPTQ && a->weight_algo != LB_WALGO_AWQ_GPTQ)
    usage_error("%s", "--hessian-memory needs --weight-algo gptq (or awq+gptq)");
  a->hessian_memory_mb =
      a->hessian_memory_arg ? number_arg(a->hessian_memory_arg, "--hessian-memory", 0.001, 1e6) : 256;
  if (lowbit && (a->smoothquant || a->outliers))
    usage_error("--smoothquant and --outliers prepare int8 activations, not %s weights (use --weight-algo awq)",
                a->quant_arg);
  /* --quant w8a8: one extreme value should not set a tensor's scale; on the GPT
   * fixture percentile:99.99 loses <= 0.002 perplexity at 16-64 samples where
   * minmax loses up to 0.010 (docs/quantization.md, "Accuracy") */
  if (a->quant_arg && a->quant == LB_QUANT_W8A8 && !a->calib_method_arg)
    a->calib_method = (struct lb_calib_method){.kind = LB_CALIB_M_PERCENTILE, .percentile = 99.99};
  if (!a->quant_arg && (a->smoothquant || a->outliers || a->quant_report))
    usage_error("%s", "--smoothquant, --outliers and --quant-report need --quant S (w8a8, w8a8-dynamic, w8)");
  if (a->quant_arg && a->quant == LB_QUANT_W8A8 && !a->calib_dir && !a->load_calib)
    usage_error("%s", "--quant w8a8 needs activation ranges: --calib DIR (samples) or --load-calib FILE "
                      "(or use --quant w8a8-dynamic, which needs none)");
  if (a->quant_report && !a->calib_dir)
    usage_error("%s", "--quant-report needs --calib DIR (the samples to measure the error on)");
  if ((a->smoothquant || a->outliers) && !a->calib_dir)
    usage_error("%s", "--smoothquant and --outliers need --calib DIR (per-channel statistics of the samples)");
  if (a->quant_arg && a->quant != LB_QUANT_W8A8 && a->load_calib)
    usage_error("--load-calib gives activation ranges, which only --quant w8a8 uses (not %s)", a->quant_arg);
  if (a->quant_report && same_file(a->quant_report, a->input))
    usage_error("--quant-report '%s' is the input model", a->quant_report);
  if (a->save_calib && (same_file(a->save_calib, a->input)))
    usage_error("--save-calib '%s' is the input model", a->save_calib);
}

/* Refuses to write over the model being compiled. */
static bool same_file(const char *a, const char *b) {
  struct stat sa, sb;
  if (stat(a, &sa) != 0 || stat(b, &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

/* Writes IR text to `path` through a temporary file so that a failure never
 * leaves a partial output. */
static enum lb_status write_ir_file(const struct lb_graph *g, const char *path, struct lb_diag *d) {
  char *tmp;
  FILE *f = lb_atomic_open(path, &tmp, d);
  if (!f) return LB_ERR_IO;
  struct lb_print_options opt = lb_print_defaults;
  opt.blobs = LB_PRINT_BLOBS_FULL;
  lb_graph_print(g, f, &opt);
  return lb_atomic_commit(f, tmp, path, d);
}

static void free_compile_args(struct compile_args *a) {
  for (int i = 0; i < a->n_dims; i++) free((char *)a->dims[i].name);
  for (int i = 0; i < a->n_binds; i++) free((char *)a->binds[i].name);
  free(a->dims);
  free(a->binds);
  free(a->print_before.items);
  free(a->print_after.items);
  free(a->lora.items);
}

static int report(struct lb_diag *d, enum lb_status st) {
  if (d->text) fputs(d->text, stderr);
  if (st != LB_OK && !d->text) fprintf(stderr, "lowbit: error: %s\n", lb_status_name(st));
  return st == LB_ERR_USAGE ? EXIT_USAGE : EXIT_BAD_INPUT;
}

/* --lora: one line per adapter on what it added (say where the scale came from). */
static void lora_summary(const struct compile_args *a, const struct lb_lora_info *info) {
  static const char *const source[] = {
      [LB_LORA_SCALE_CONFIG] = "lora_alpha / r from adapter_config.json",
      [LB_LORA_SCALE_FILE] = "lora_scale from the adapter",
      [LB_LORA_SCALE_OPTION] = "--lora-scale",
      [LB_LORA_SCALE_DEFAULT] = "no adapter_config.json, lora_scale or --lora-scale: 1",
      [LB_LORA_SCALE_MIXED] = "lora_scale per pair, else --lora-scale or 1",
  };
  for (int i = 0; i < a->lora.n; i++) {
    char rank[48];
    if (info[i].rank_min == info[i].rank_max) snprintf(rank, sizeof rank, "%lld", (long long)info[i].rank_min);
    else snprintf(rank, sizeof rank, "%lld-%lld", (long long)info[i].rank_min, (long long)info[i].rank_max);
    fprintf(stderr, "lowbit: LoRA %s: %d pair%s (rank %s) added in f32, scale %g (%s)\n", a->lora.items[i],
            (int)info[i].pairs, info[i].pairs == 1 ? "" : "s", rank, info[i].scale, source[info[i].source]);
  }
}

static enum lb_status load_model(const struct compile_args *a, bool announce, struct lb_graph **g,
                                 struct lb_diag *d) {
  enum lb_status st;
  if (has_suffix(a->input, ".lbir")) {
    if (a->n_dims || a->n_binds)
      usage_error("%s", "--dim and --bind apply to ONNX models; IR text has static shapes");
    st = lb_graph_parse_file(a->input, g, d);
    if (st == LB_OK) st = lb_graph_verify(*g, d);
  } else {
    struct lb_onnx_options o = {
        .dims = a->dims, .n_dims = a->n_dims, .binds = a->binds, .n_binds = a->n_binds,
        .max_tensor_bytes = a->max_tensor_bytes,
    };
    st = lb_onnx_load_file(a->input, &o, g, d);
  }
  if (st == LB_OK && a->lora.n) {
    struct lb_lora_options lo = {.paths = a->lora.items, .n_paths = a->lora.n, .has_scale = a->lora_scale_arg != NULL,
                                 .max_tensor_bytes = a->max_tensor_bytes};
    if (lo.has_scale) lo.scale = number_arg(a->lora_scale_arg, "--lora-scale", -1e30, 1e30);
    struct lb_lora_info *info = calloc((size_t)a->lora.n, sizeof *info);
    if (!info) abort();
    st = lb_lora_apply(*g, &lo, info, d);
    if (st == LB_OK && announce) lora_summary(a, info);
    free(info);
    if (st != LB_OK) {
      lb_graph_free(*g);
      *g = NULL;
    }
  }
  return st;
}

/* The calibration pipeline: the compile pipeline up to (not including)
 * plan-memory, then insert-observers. Value names then match the compiled
 * graph's, since passes are deterministic. */
static char *calib_pipeline(const char *pipeline) {
  size_t n = strlen(pipeline) + 32;
  char *out = malloc(n), *copy = strdup(pipeline);
  if (!out || !copy) abort();
  out[0] = 0;
  for (char *save = NULL, *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (strcmp(tok, "plan-memory") == 0 || strcmp(tok, "insert-observers") == 0) continue;
    strcat(out, tok);
    strcat(out, ",");
  }
  strcat(out, "insert-observers");
  free(copy);
  return out;
}

static enum lb_status run_calibration(const struct compile_args *a, struct lb_calib_result *res,
                                      struct lb_diag *d) {
  struct lb_graph *gc = NULL;
  double t0 = now_ms();
  enum lb_status st = load_model(a, false, &gc, d);
  char *pipe = calib_pipeline(a->pipeline ? a->pipeline : lb_default_pipeline);
  if (st == LB_OK) st = lb_pass_manager_run(gc, pipe, NULL, d);
  free(pipe);
  struct lb_progress pr = {.tty = isatty(2) != 0, .what = "calibrating"};
  struct lb_codegen_options co = {.cpu = a->cpu, .features = a->features, .opt_level = a->opt_level,
                                  .model_name = "lowbit_calib"};
  struct lb_calib_run_options ro = {.cg = &co, .progress = lb_progress_show, .progress_ctx = &pr};
  if (st == LB_OK) st = lb_calibrate(gc, a->calib_dir, &ro, res, d);
  lb_graph_free(gc);
  if (st != LB_OK) return st;
  char method[64];
  lb_calib_method_format(&a->calib_method, method, sizeof method);
  fprintf(stderr, "lowbit: calibrated %d values on %lld samples from %s (%s, %s) in %.1f ms\n", (int)res->n_stats,
          (long long)res->samples, a->calib_dir, method, a->calib_scheme == LB_CALIB_INT8_SYM ? "int8" : "uint8",
          now_ms() - t0);
  return LB_OK;
}

static int cmd_compile(int argc, char **argv) {
  struct compile_args a;
  parse_compile_args(argc, argv, &a);
  if (same_file(a.input, a.output)) usage_error("output '%s' is the input model", a.output);

  struct lb_diag d;
  lb_diag_init(&d, a.input);
  struct lb_graph *g = NULL;
  enum lb_status st;
  double t0 = now_ms();

  struct lb_calib_result calib = {0};
  st = load_model(&a, true, &g, &d);
  if (st != LB_OK) goto fail;
  if (a.calib_dir && !a.quant_arg) {
    st = run_calibration(&a, &calib, &d);
    if (st != LB_OK) goto fail;
    lb_diag_free(&d); /* notes of the calibration build (memory plan) are not for the user */
    lb_diag_init(&d, a.input);
  }
  double t_load = now_ms();
  if (a.verbose) fprintf(stderr, "lowbit: loaded %s: %d nodes (%.1f ms)\n", a.input, g->n_nodes, t_load - t0);

  struct lb_pass_options po = {
      .print_before = a.print_before.items, .print_after = a.print_after.items,
      .print_before_all = a.print_before_all, .print_after_all = a.print_after_all,
      .print_changed = a.print_changed, .dump_dir = a.dump_dir, .verify_each = a.verify_each,
      .time_passes = a.time_passes, .print_out = stderr,
      .dump_blobs = a.full_blobs ? LB_PRINT_BLOBS_FULL : LB_PRINT_BLOBS_ELIDED,
  };
  if (a.quant_auto) {
    struct lb_codegen_options jit = {.opt_level = a.opt_level};
    if (!a.target) jit.cpu = a.cpu, jit.features = a.features;
    if (a.weight_algo != LB_WALGO_RTN && a.weight_algo != LB_WALGO_GPTQ)
      usage_error("--quant auto: --weight-algo %s is not supported (rtn, gptq)", a.weight_algo_arg);
    struct lb_mixed_options mo = {
        .target_bpw = a.target_bpw, .max_bytes = a.max_size, .max_loss = a.max_loss, .candidates = a.candidates,
        .exact = !a.select_arg || strcmp(a.select_arg, "exact") == 0, .act_int8 = a.act_int8,
        .keep_float = a.keep_float, .plan_in = a.quant_plan,
        .plan_out = a.save_plan, .algo = a.weight_algo, .calib_dir = a.calib_dir, .pipeline = a.pipeline,
        .po = &po, .jit = &jit,
    };
    st = a.report_html ? lb_analyze_compile_report(g, &mo, a.report_html, &d) : lb_mixed_run(g, &mo, &d);
  } else if (a.quant_arg) {
    /* calibration and the report run on this machine: the target's CPU only when it is the host's */
    struct lb_codegen_options jit = {.opt_level = a.opt_level};
    if (!a.target) jit.cpu = a.cpu, jit.features = a.features;
    struct lb_quant_flow qf = {
        .scheme = a.quant, .smoothquant = a.smoothquant, .alpha = a.alpha, .outliers = a.outliers,
        .threshold = a.threshold, .calib_dir = a.calib_dir, .load_calib = a.load_calib, .keep_float = a.keep_float,
        .save_calib = a.save_calib, .method = a.calib_method, .calib_scheme = a.calib_scheme,
        .report_path = a.quant_report, .pipeline = a.pipeline, .po = &po, .jit = &jit, .verbose = a.verbose,
        .group = a.group, .asym = a.asym, .clip = a.clip, .act_order = a.act_order, .act_int8 = a.act_int8,
        .weight_algo = a.weight_algo,
        .hessian_memory_mb = a.hessian_memory_mb,
    };
    st = lb_quant_flow_run(g, &qf, &d);
  } else {
    st = lb_pass_manager_run(g, a.pipeline ? a.pipeline : lb_default_pipeline, &po, &d);
  }
  if (st != LB_OK) goto fail;
  double t_pass = now_ms();
  if (a.verbose) fprintf(stderr, "lowbit: passes: %d nodes (%.1f ms)\n", g->n_nodes, t_pass - t_load);
  /* The passes' notes (e.g. the memory plan) are for -v; a later error should
   * not be buried under them. */
  if (a.verbose && d.text) fputs(d.text, stderr);
  lb_diag_free(&d);
  lb_diag_init(&d, a.input);

  if (a.calib_dir && !a.quant_arg) {
    struct lb_calib_file_info info = {.model = g->name, .samples = calib.samples, .method = a.calib_method,
                                      .scheme = a.calib_scheme};
    if (a.save_calib) {
      st = lb_calib_write_json(a.save_calib, calib.stats, calib.n_stats, &info, &d);
    }
    if (st == LB_OK) st = lb_calib_attach(g, calib.stats, calib.n_stats, &info, &d);
    if (st != LB_OK) goto fail;
  }
  if (a.load_calib && !a.quant_arg) {
    int32_t n_att = 0;
    st = lb_calib_load_json(g, a.load_calib, &n_att, &d);
    if (st != LB_OK) goto fail;
    if (a.verbose) fprintf(stderr, "lowbit: %s: scales attached to %d values\n", a.load_calib, (int)n_att);
  }

  if (a.dump_dot) {
    st = lb_graph_dump_dot(g, a.dump_dot, &d);
    if (st != LB_OK) goto fail;
  }
  if (a.emit == OUT_IR) {
    st = write_ir_file(g, a.output, &d);
  } else {
    static const enum lb_emit kinds[] = {LB_EMIT_EXE, LB_EMIT_OBJ, LB_EMIT_ASM, LB_EMIT_LLVM, LB_EMIT_LIB};
    struct lb_codegen_options co = {
        .target_triple = a.target, .cpu = a.cpu, .features = a.features, .opt_level = a.opt_level,
        .emit = kinds[a.emit], .output = a.output, .model_name = a.name, .verbose = a.verbose,
    };
    st = lb_codegen_compile(g, &co, &d);
  }
  if (st != LB_OK) goto fail;
  if (a.verbose) fprintf(stderr, "lowbit: code generation (%.1f ms)\n", now_ms() - t_pass);
  lb_graph_free(g);
  lb_calib_result_free(&calib);
  if (a.verbose && d.text) fputs(d.text, stderr); /* notes from code generation */
  lb_diag_free(&d);
  free_compile_args(&a);
  return 0;

fail:
  lb_graph_free(g);
  lb_calib_result_free(&calib);
  {
    int rc = report(&d, st);
    lb_diag_free(&d);
    free_compile_args(&a);
    return rc;
  }
}

static void list_ops(void) {
  for (int op = 0; op < LB_OP_COUNT; op++) {
    const struct lb_op_info *i = &lb_op_info[op];
    if (!i->onnx_name) continue;
    if (i->domain[0]) printf("%s:%s\n", i->domain, i->onnx_name);
    else printf("%s\n", i->onnx_name);
  }
}

static void list_passes(void) {
  for (int i = 0; i < lb_n_passes; i++) printf("%-16s %s\n", lb_passes[i].name, lb_passes[i].summary);
  printf("\ndefault pipeline: %s\n", lb_default_pipeline);
}

int main(int argc, char **argv) {
  if (argc < 2) {
    fputs(usage_text, stderr);
    fputs(lb_analyze_usage, stderr);
    return EXIT_USAGE;
  }
  const char *cmd = argv[1];
  if (strcmp(cmd, "compile") == 0) return cmd_compile(argc - 2, argv + 2);
  if (strcmp(cmd, "--list-ops") == 0) return list_ops(), 0;
  if (strcmp(cmd, "--list-passes") == 0) return list_passes(), 0;
  if (strcmp(cmd, "--version") == 0) return puts("lowbit " LOWBIT_VERSION), 0;
  if (strcmp(cmd, "analyze") == 0) return lb_cmd_analyze(argc - 2, argv + 2);
  if (strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0)
    return fputs(usage_text, stdout), fputs(lb_analyze_usage, stdout), 0;
  usage_error("unknown command '%s' (try 'lowbit compile' or 'lowbit analyze')", cmd);
  return EXIT_USAGE;
}
