/* main.c: `main` of every executable lowbit links. It loads the input
 * tensors named on the command line, checks them against the model info,
 * runs the model (optionally as a benchmark) and writes the outputs.
 *
 * Input files are untrusted: every failure is a message and an exit status
 * in 1..125 (2 for command-line misuse, 1 otherwise), never a crash.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "runtime/lbrt.h"

extern const struct lbrt_model_info *const lbrt_main_model;

enum { EXIT_ERR = 1, EXIT_USAGE = 2 };

static const char *g_prog = "model";

static void lbrt_main_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void lbrt_main_error(const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "%s: error: ", g_prog);
  vfprintf(stderr, fmt, ap);
  fputc('\n', stderr);
  va_end(ap);
}

struct options {
  const char **inputs;
  int ninputs;
  const char *outdir;
  int format; /* 0: decide from the inputs */
  int threads;
  long bench; /* 0: a single run */
  long warmup;
  bool quiet, info, help;
};

static void lbrt_main_usage(FILE *f) {
  fprintf(f,
          "usage: %s INPUT_0 [INPUT_1 ...] [-o OUTDIR] [--format pb|npy] [--threads N]\n"
          "       %*s [--bench N] [--warmup N] [--quiet]\n"
          "       %s --info | --help\n"
          "\n"
          "Runs the compiled model on inputs given in graph-input order, each an ONNX\n"
          "TensorProto (.pb) or NumPy (.npy) file (told apart by content); \"-\" is stdin.\n"
          "\n"
          "  -o OUTDIR        write output_K.pb (or .npy) into OUTDIR (created if missing);\n"
          "                   without -o nothing is written\n"
          "  --format pb|npy  output format (default: npy if every input is .npy, else pb)\n"
          "  --threads N      worker threads, counting the main one (default: all cores)\n"
          "  --bench N        run --warmup times, then N timed runs; print one JSON line\n"
          "  --warmup N       untimed runs before --bench (default 3)\n"
          "  --quiet          print only errors\n"
          "  --info           print the model's inputs, outputs and build target\n"
          "  --help           print this help\n",
          g_prog, (int)strlen(g_prog), "", g_prog);
}

static bool lbrt_main_parse_long(const char *s, long lo, long hi, long *out) {
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < lo || v > hi) return false;
  *out = v;
  return true;
}

/* Returns 0, or an exit status after printing why. */
static int lbrt_main_parse_args(int argc, char **argv, struct options *o) {
  bool only_files = false;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    if (only_files || a[0] != '-' || a[1] == '\0') {
      o->inputs[o->ninputs++] = strcmp(a, "-") == 0 && !only_files ? "/dev/stdin" : a;
      continue;
    }
    if (strcmp(a, "--") == 0) {
      only_files = true;
      continue;
    }
    if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
      o->help = true;
      continue;
    }
    if (strcmp(a, "--info") == 0) {
      o->info = true;
      continue;
    }
    if (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0) {
      o->quiet = true;
      continue;
    }
    /* Options with a value: "--opt VALUE" or "--opt=VALUE". */
    static const char *const with_value[] = {"-o", "--output", "--format", "--threads", "--bench",
                                             "--warmup"};
    const char *val = NULL, *opt = NULL;
    for (size_t k = 0; k < sizeof with_value / sizeof with_value[0]; k++) {
      size_t n = strlen(with_value[k]);
      if (strncmp(a, with_value[k], n) != 0) continue;
      if (a[n] == '\0') {
        if (i + 1 >= argc) {
          lbrt_main_error("option %s needs a value", a);
          return EXIT_USAGE;
        }
        opt = with_value[k];
        val = argv[++i];
      } else if (a[n] == '=' && a[1] == '-') {
        opt = with_value[k];
        val = a + n + 1;
      } else {
        continue;
      }
      break;
    }
    if (!opt) {
      lbrt_main_error("unknown option '%s' (see --help)", a);
      return EXIT_USAGE;
    }
    long v;
    if (strcmp(opt, "-o") == 0 || strcmp(opt, "--output") == 0) {
      if (!*val) {
        lbrt_main_error("-o needs a directory");
        return EXIT_USAGE;
      }
      o->outdir = val;
    } else if (strcmp(opt, "--format") == 0) {
      if (strcmp(val, "pb") == 0) {
        o->format = LBRT_FORMAT_PB;
      } else if (strcmp(val, "npy") == 0) {
        o->format = LBRT_FORMAT_NPY;
      } else {
        lbrt_main_error("--format must be pb or npy, not '%s'", val);
        return EXIT_USAGE;
      }
    } else if (strcmp(opt, "--threads") == 0) {
      if (!lbrt_main_parse_long(val, 1, LBRT_MAX_THREADS, &v)) {
        lbrt_main_error("--threads must be an integer in 1..%d, not '%s'", LBRT_MAX_THREADS, val);
        return EXIT_USAGE;
      }
      o->threads = (int)v;
    } else if (strcmp(opt, "--bench") == 0) {
      if (!lbrt_main_parse_long(val, 1, 100000000, &o->bench)) {
        lbrt_main_error("--bench must be a positive integer, not '%s'", val);
        return EXIT_USAGE;
      }
    } else if (strcmp(opt, "--warmup") == 0) {
      if (!lbrt_main_parse_long(val, 0, 100000000, &o->warmup)) {
        lbrt_main_error("--warmup must be a non-negative integer, not '%s'", val);
        return EXIT_USAGE;
      }
    }
  }
  return 0;
}

/* The model info comes from our own compiler, but a mismatched runtime or a
 * hand-written object could break assumptions main relies on: check them. */
static int lbrt_main_check_model(const struct lbrt_model_info *m) {
  if (!m) {
    lbrt_main_error("no model linked in (lbrt_main_model is NULL)");
    return EXIT_ERR;
  }
  if (m->abi_version != LBRT_ABI_VERSION) {
    lbrt_main_error("model was compiled for runtime ABI %d, this runtime is ABI %d",
                    (int)m->abi_version, LBRT_ABI_VERSION);
    return EXIT_ERR;
  }
  if (!m->run || m->num_inputs < 0 || m->num_outputs < 0 || m->activations_size < 0 ||
      (m->num_inputs && !m->inputs) || (m->num_outputs && !m->outputs) ||
      (m->activations_align > 0 && (m->activations_align & (m->activations_align - 1)))) {
    lbrt_main_error("model info is malformed");
    return EXIT_ERR;
  }
  for (int io = 0; io < 2; io++) {
    const struct lbrt_tensor_info *ts = io ? m->outputs : m->inputs;
    int n = io ? m->num_outputs : m->num_inputs;
    for (int i = 0; i < n; i++) {
      const struct lbrt_tensor_info *ti = &ts[i];
      int64_t nbytes, esize = lbrt_dtype_size(ti->dtype);
      if (esize == 0 || ti->rank < 0 || ti->rank > LBRT_MAX_RANK || (ti->rank && !ti->dims) ||
          lbrt_shape_count(ti->rank, ti->dims, esize, NULL, &nbytes) != LBRT_OK ||
          nbytes != ti->nbytes) {
        lbrt_main_error("model %s %d '%s' has an unsupported or inconsistent type/shape",
                        io ? "output" : "input", i, ti->name ? ti->name : "");
        return EXIT_ERR;
      }
    }
  }
  return 0;
}

static const char *lbrt_main_str(const char *s) { return s ? s : ""; }

static void lbrt_main_print_info(const struct lbrt_model_info *m) {
  char shape[256], missing[512];
  printf("name: %s\n", lbrt_main_str(m->name));
  printf("target: %s\n", lbrt_main_str(m->target_triple));
  printf("cpu: %s\n", lbrt_main_str(m->cpu));
  printf("features: %s\n", lbrt_main_str(m->features));
  if (lbrt_cpu_check(m, missing, sizeof missing) == 0)
    printf("this cpu: supported\n");
  else
    printf("this cpu: NOT supported: %s\n", missing);
  printf("inputs: %d\n", (int)m->num_inputs);
  for (int i = 0; i < m->num_inputs; i++) {
    const struct lbrt_tensor_info *t = &m->inputs[i];
    lbrt_shape_format(shape, sizeof shape, t->dtype, t->rank, t->dims);
    printf("  %d '%s': %s (%lld bytes)\n", i, lbrt_main_str(t->name), shape, (long long)t->nbytes);
  }
  printf("outputs: %d\n", (int)m->num_outputs);
  for (int i = 0; i < m->num_outputs; i++) {
    const struct lbrt_tensor_info *t = &m->outputs[i];
    lbrt_shape_format(shape, sizeof shape, t->dtype, t->rank, t->dims);
    printf("  %d '%s': %s (%lld bytes)\n", i, lbrt_main_str(t->name), shape, (long long)t->nbytes);
  }
  printf("activations: %lld bytes (align %lld)\n", (long long)m->activations_size,
         (long long)m->activations_align);
}

static bool lbrt_main_same_shape(const struct lbrt_tensor *t, const struct lbrt_tensor_info *ti) {
  if (t->dtype != ti->dtype || t->rank != ti->rank) return false;
  for (int32_t d = 0; d < t->rank; d++)
    if (t->dims[d] != ti->dims[d]) return false;
  return true;
}

/* mkdir -p: creates missing parents; fine if it already exists as a directory. */
static int lbrt_main_mkdirs(const char *dir) {
  char path[PATH_MAX];
  size_t n = strlen(dir);
  if (n >= sizeof path) {
    lbrt_main_error("output directory path is too long");
    return EXIT_ERR;
  }
  memcpy(path, dir, n + 1);
  for (size_t i = 1; i <= n; i++) {
    if (path[i] != '/' && path[i] != '\0') continue;
    char c = path[i];
    path[i] = '\0';
    if (mkdir(path, 0777) != 0 && errno != EEXIST) {
      lbrt_main_error("cannot create output directory '%s': %s", path, strerror(errno));
      return EXIT_ERR;
    }
    path[i] = c;
  }
  struct stat st;
  if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
    lbrt_main_error("output path '%s' is not a directory", dir);
    return EXIT_ERR;
  }
  return 0;
}

static double lbrt_main_now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int lbrt_main_cmp_double(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return (x > y) - (x < y);
}

static void lbrt_main_json_str(FILE *f, const char *s) {
  fputc('"', f);
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == '"' || *p == '\\')
      fprintf(f, "\\%c", *p);
    else if (*p < 0x20)
      fprintf(f, "\\u%04x", *p);
    else
      fputc(*p, f);
  }
  fputc('"', f);
}

/* Writes every output to a temp file first and renames them only when all
 * succeeded, so a failure leaves neither partial files nor a partial set. */
static int lbrt_main_write_outputs(const struct lbrt_model_info *m, const struct options *o,
                                   enum lbrt_format fmt, void *const *outs) {
  int rc = lbrt_main_mkdirs(o->outdir);
  if (rc) return rc;
  int n = m->num_outputs;
  char(*tmp)[PATH_MAX] = calloc((size_t)n + 1, sizeof *tmp);
  char(*dst)[PATH_MAX] = calloc((size_t)n + 1, sizeof *dst);
  char err[1024];
  int made = 0;
  rc = 0;
  if (!tmp || !dst) {
    lbrt_main_error("out of memory");
    rc = EXIT_ERR;
  }
  size_t dl = strlen(o->outdir);
  while (dl > 1 && o->outdir[dl - 1] == '/') dl--;
  for (int k = 0; k < n && !rc; k++) {
    const struct lbrt_tensor_info *ti = &m->outputs[k];
    struct lbrt_tensor t = {.dtype = ti->dtype, .rank = ti->rank, .data = outs[k],
                            .nbytes = ti->nbytes};
    if (ti->rank) memcpy(t.dims, ti->dims, sizeof(int64_t) * (size_t)ti->rank);
    snprintf(t.name, sizeof t.name, "%s", lbrt_main_str(ti->name));
    int w = snprintf(dst[k], PATH_MAX, "%.*s%soutput_%d.%s", (int)dl, o->outdir,
                     o->outdir[dl - 1] == '/' ? "" : "/", k, fmt == LBRT_FORMAT_NPY ? "npy" : "pb");
    if (w < 0 || w >= PATH_MAX) {
      lbrt_main_error("output path is too long");
      rc = EXIT_ERR;
      break;
    }
    int fd;
    if (lbrt_file_create_temp(dst[k], &fd, tmp[k], PATH_MAX, err, sizeof err) != LBRT_OK) {
      lbrt_main_error("%s", err);
      rc = EXIT_ERR;
      break;
    }
    made = k + 1;
    enum lbrt_status s = lbrt_tensor_write_fd(fd, &t, fmt, err, sizeof err);
    if (close(fd) != 0 && s == LBRT_OK) {
      snprintf(err, sizeof err, "close failed: %s", strerror(errno));
      s = LBRT_ERR_IO;
    }
    if (s != LBRT_OK) {
      lbrt_main_error("output %d '%s' (%s): %s", k, t.name, dst[k], err);
      rc = EXIT_ERR;
    }
  }
  for (int k = 0; k < made && !rc; k++) {
    if (rename(tmp[k], dst[k]) != 0) {
      lbrt_main_error("output %d: cannot rename to %s: %s", k, dst[k], strerror(errno));
      rc = EXIT_ERR;
    } else {
      tmp[k][0] = '\0';
      if (!o->quiet) {
        char shape[256];
        const struct lbrt_tensor_info *ti = &m->outputs[k];
        lbrt_shape_format(shape, sizeof shape, ti->dtype, ti->rank, ti->dims);
        fprintf(stderr, "%s: wrote output %d '%s' %s to %s\n", g_prog, k, lbrt_main_str(ti->name),
                shape, dst[k]);
      }
    }
  }
  for (int k = 0; k < made; k++)
    if (tmp[k][0]) unlink(tmp[k]);
  free(tmp);
  free(dst);
  return rc;
}

static int lbrt_main_run(int argc, char **argv) {
  struct options o = {.warmup = 3};
  const struct lbrt_model_info *m = lbrt_main_model;
  struct lbrt_tensor *in = NULL;
  const void **in_ptrs = NULL;
  void **outs = NULL;
  void *acts = NULL;
  double *times = NULL;
  char err[1024], shape[256], want[256];
  int rc = 0;

  o.inputs = calloc((size_t)argc + 1, sizeof *o.inputs);
  if (!o.inputs) {
    lbrt_main_error("out of memory");
    return EXIT_ERR;
  }
  if ((rc = lbrt_main_parse_args(argc, argv, &o))) goto done;
  if (o.help) {
    lbrt_main_usage(stdout);
    goto done;
  }
  if ((rc = lbrt_main_check_model(m))) goto done;
  if (o.info) {
    lbrt_main_print_info(m);
    goto done;
  }
  if (lbrt_cpu_check(m, err, sizeof err) != 0) {
    lbrt_main_error("%s", err);
    rc = EXIT_ERR;
    goto done;
  }
  if (o.ninputs != m->num_inputs) {
    char names[512] = "";
    size_t pos = 0;
    for (int i = 0; i < m->num_inputs && pos < sizeof names; i++) {
      int w = snprintf(names + pos, sizeof names - pos, "%s'%s'", i ? ", " : "",
                       lbrt_main_str(m->inputs[i].name));
      pos += w > 0 ? (size_t)w : 0;
    }
    lbrt_main_error("expected %d input file%s (%s), got %d (see --help)", (int)m->num_inputs,
                    m->num_inputs == 1 ? "" : "s", names, o.ninputs);
    rc = EXIT_USAGE;
    goto done;
  }

  /* Inputs: read, then check against the model before anything runs. */
  int nin = m->num_inputs, nout = m->num_outputs;
  in = calloc((size_t)nin + 1, sizeof *in);
  in_ptrs = calloc((size_t)nin + 1, sizeof *in_ptrs);
  outs = calloc((size_t)nout + 1, sizeof *outs);
  if (!in || !in_ptrs || !outs) {
    lbrt_main_error("out of memory");
    rc = EXIT_ERR;
    goto done;
  }
  bool all_npy = nin > 0;
  for (int i = 0; i < nin; i++) {
    const struct lbrt_tensor_info *ti = &m->inputs[i];
    enum lbrt_format fmt;
    if (lbrt_tensor_read(o.inputs[i], &in[i], &fmt, err, sizeof err) != LBRT_OK) {
      lbrt_main_error("input %d '%s': %s", i, lbrt_main_str(ti->name), err);
      rc = EXIT_ERR;
      goto done;
    }
    all_npy = all_npy && fmt == LBRT_FORMAT_NPY;
    if (!lbrt_main_same_shape(&in[i], ti)) {
      lbrt_shape_format(want, sizeof want, ti->dtype, ti->rank, ti->dims);
      lbrt_shape_format(shape, sizeof shape, in[i].dtype, in[i].rank, in[i].dims);
      lbrt_main_error("input %d '%s' (%s): expected %s, got %s", i, lbrt_main_str(ti->name),
                      o.inputs[i], want, shape);
      rc = EXIT_ERR;
      goto done;
    }
    in_ptrs[i] = in[i].data;
  }

  enum lbrt_format fmt = o.format ? (enum lbrt_format)o.format
                                  : all_npy ? LBRT_FORMAT_NPY : LBRT_FORMAT_PB;
  for (int k = 0; o.outdir && k < nout && fmt == LBRT_FORMAT_NPY; k++) {
    if (m->outputs[k].dtype != LBRT_DTYPE_BF16) continue;
    if (o.format) { /* asked for explicitly: say why it cannot be done */
      lbrt_main_error("output %d '%s' is bf16, which .npy cannot hold; use --format pb", k,
                      lbrt_main_str(m->outputs[k].name));
      rc = EXIT_USAGE;
      goto done;
    }
    fmt = LBRT_FORMAT_PB;
  }

  /* All memory is allocated once, here; runs allocate nothing. */
  for (int k = 0; k < nout; k++) {
    int64_t nb = m->outputs[k].nbytes;
    size_t sz = (size_t)((nb + LBRT_DATA_ALIGN - 1) / LBRT_DATA_ALIGN * LBRT_DATA_ALIGN);
    if (sz == 0) sz = LBRT_DATA_ALIGN;
    if (nb > INT64_MAX - LBRT_DATA_ALIGN || !(outs[k] = aligned_alloc(LBRT_DATA_ALIGN, sz))) {
      lbrt_main_error("out of memory for output %d (%lld bytes)", k, (long long)nb);
      rc = EXIT_ERR;
      goto done;
    }
    memset(outs[k], 0, sz);
  }
  int64_t align = m->activations_align > 0 ? m->activations_align : LBRT_DATA_ALIGN;
  if (align < (int64_t)sizeof(void *)) align = (int64_t)sizeof(void *);
  int64_t asize = m->activations_size > 0 ? m->activations_size : 1;
  if (asize > INT64_MAX - align ||
      !(acts = aligned_alloc((size_t)align, (size_t)((asize + align - 1) / align * align)))) {
    lbrt_main_error("out of memory for activations (%lld bytes)",
                    (long long)m->activations_size);
    rc = EXIT_ERR;
    goto done;
  }
  if (o.bench && !(times = malloc(sizeof *times * (size_t)o.bench))) {
    lbrt_main_error("out of memory");
    rc = EXIT_ERR;
    goto done;
  }

  int nthreads = lbrt_threads_init(o.threads);
  long warm = o.bench ? o.warmup : 0, runs = o.bench ? o.bench : 1;
  for (long r = 0; r < warm + runs; r++) {
    double t0 = lbrt_main_now_ms();
    int32_t st = m->run(in_ptrs, outs, acts);
    double t1 = lbrt_main_now_ms();
    if (st != 0) {
      lbrt_main_error("model run failed with status %d", (int)st);
      rc = EXIT_ERR;
      break;
    }
    if (r >= warm && times) times[r - warm] = t1 - t0;
  }
  lbrt_threads_shutdown();
  if (rc) goto done;

  if (o.outdir && (rc = lbrt_main_write_outputs(m, &o, fmt, outs))) goto done;

  if (o.bench) {
    double sum = 0;
    for (long r = 0; r < runs; r++) sum += times[r];
    qsort(times, (size_t)runs, sizeof *times, lbrt_main_cmp_double);
    double median = runs % 2 ? times[runs / 2] : (times[runs / 2 - 1] + times[runs / 2]) / 2;
    printf("{\"model\":");
    lbrt_main_json_str(stdout, lbrt_main_str(m->name));
    printf(",\"iterations\":%ld,\"median_ms\":%.6f,\"min_ms\":%.6f,\"mean_ms\":%.6f,"
           "\"threads\":%d}\n",
           runs, median, times[0], sum / (double)runs, nthreads);
  }

done:
  if (fflush(stdout) != 0 && !rc) {
    lbrt_main_error("cannot write to standard output");
    rc = EXIT_ERR;
  }
  for (int i = 0; in && i < m->num_inputs; i++) lbrt_tensor_free(&in[i]);
  for (int k = 0; outs && k < m->num_outputs; k++) free(outs[k]);
  free(in);
  free(in_ptrs);
  free(outs);
  free(acts);
  free(times);
  free(o.inputs);
  return rc;
}

int main(int argc, char **argv) {
  if (argc > 0 && argv[0] && argv[0][0]) {
    const char *slash = strrchr(argv[0], '/');
    g_prog = slash && slash[1] ? slash + 1 : argv[0];
  }
  return lbrt_main_run(argc, argv);
}
