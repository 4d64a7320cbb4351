/* lowbit_opt.c: run passes on an IR text file (lowbit's `opt`).
 *
 *   lowbit-opt IN.lbir -p PIPELINE [-o OUT.lbir] [options]
 *
 * Parses IN (use - for stdin), verifies it, runs the pipeline and prints the
 * result. Blobs: stdout gets elided blobs (readable, what lit tests check)
 * unless --full-blobs; an -o file gets full blobs (a complete model) unless
 * --elide-blobs. -o is written atomically (a temporary file in the same
 * directory, then rename), so a failed run never leaves a partial file or
 * touches an existing one. Exit status: 0 ok, 1 bad input or failed pass,
 * 2 bad command line (including an unknown pass name).
 */
#include "ir/dot.h"
#include "ir/ir.h"
#include "passes/calib.h"
#include "passes/pass.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const usage_text =
    "usage: lowbit-opt IN.lbir -p PIPELINE [-o OUT.lbir] [options]\n"
    "\n"
    "  -p, --passes PIPELINE  comma-separated passes; may be repeated (they run in order);\n"
    "                         'default' is the compile pipeline; empty runs none\n"
    "  -o OUT.lbir            write the result here (full blobs) instead of stdout\n"
    "  --print-before=P       print the IR before pass P (repeatable, or P1,P2)\n"
    "  --print-after=P        print the IR after pass P (repeatable, or P1,P2)\n"
    "  --print-before-all     print the IR before every pass\n"
    "  --print-after-all      print the IR after every pass\n"
    "  --print-changed        print the IR after every pass that changed it\n"
    "  --dump-dir DIR         write DIR/00-input.lbir, DIR/NN-<pass>.lbir after each pass\n"
    "  --dump-dot FILE        write the resulting graph as Graphviz DOT, weight precisions\n"
    "                         coloured (docs/ir-format.md \"Graphviz\")\n"
    "  --verify-each          run the verifier after every pass\n"
    "  --time-passes          report wall time per pass\n"
    "  --load-stats FILE      calibration statistics for the passes that need them\n"
    "                         (smoothquant, split-outliers): a file written by\n"
    "                         `lowbit compile --calib DIR --save-calib FILE`\n"
    "  --elide-blobs          print blobs as hash and size only (also in -o files)\n"
    "  --full-blobs           print blob bytes in full (also on stdout and in dumps)\n"
    "  -v, --verbose          print pass remarks (e.g. plan-memory's arena vs sum of sizes)\n"
    "  --list-passes          list the passes and exit\n"
    "  -h, --help             show this help\n"
    "\n"
    "IR printing (--print-*, --time-passes) goes to stderr; dumps use elided blobs\n"
    "unless --full-blobs.\n";

struct names {
  const char **v;
  int n;
};

static void names_add_list(struct names *l, const char *csv) {
  const char *p = csv;
  while (*p) {
    const char *e = strchr(p, ',');
    size_t k = e ? (size_t)(e - p) : strlen(p);
    if (k) {
      char *s = malloc(k + 1);
      if (!s) abort();
      memcpy(s, p, k);
      s[k] = 0;
      l->v = realloc(l->v, sizeof *l->v * (size_t)(l->n + 2));
      if (!l->v) abort();
      l->v[l->n++] = s;
      l->v[l->n] = NULL;
    }
    if (!e) break;
    p = e + 1;
  }
}

static void names_free(struct names *l) {
  for (int i = 0; i < l->n; i++) free((void *)l->v[i]);
  free(l->v);
}

/* Appends `part` to the comma-separated pipeline *pipe ("default" expands). */
static void pipeline_append(char **pipe, const char *part) {
  if (strcmp(part, "default") == 0) part = lb_default_pipeline;
  size_t a = *pipe ? strlen(*pipe) : 0, b = strlen(part);
  char *s = realloc(*pipe, a + b + 2);
  if (!s) abort();
  if (a && b) s[a++] = ',';
  memcpy(s + a, part, b + 1);
  *pipe = s;
}

static int fail(const char *msg) {
  fprintf(stderr, "lowbit-opt: %s\n", msg);
  return 1;
}

/* Prints a diagnostic's lines, each prefixed "lowbit-opt: ". */
static void print_diag(const struct lb_diag *d) {
  if (!d->text) return;
  const char *p = d->text;
  while (*p) {
    const char *e = strchr(p, '\n');
    size_t k = e ? (size_t)(e - p) : strlen(p);
    fprintf(stderr, "lowbit-opt: %.*s\n", (int)k, p);
    if (!e) break;
    p = e + 1;
  }
}

static enum lb_status parse_input(const char *path, struct lb_graph **g, struct lb_diag *d) {
  if (strcmp(path, "-") != 0) return lb_graph_parse_file(path, g, d);
  size_t cap = 1 << 16, len = 0;
  char *buf = malloc(cap);
  if (!buf) abort();
  size_t got;
  while ((got = fread(buf + len, 1, cap - len, stdin)) > 0) {
    len += got;
    if (len == cap) {
      cap *= 2;
      buf = realloc(buf, cap);
      if (!buf) abort();
    }
  }
  enum lb_status st = ferror(stdin) ? lb_diag_error(d, LB_ERR_IO, NULL, "cannot read stdin")
                                    : lb_graph_parse(buf, len, "<stdin>", g, d);
  free(buf);
  return st;
}

/* Writes g to `path` through a temporary file in the same directory. */
static int write_atomic(const struct lb_graph *g, const char *path,
                        const struct lb_print_options *popt) {
  struct lb_diag d;
  lb_diag_init(&d, NULL);
  char *tmp;
  FILE *f = lb_atomic_open(path, &tmp, &d);
  enum lb_status st = LB_ERR_IO;
  if (f) {
    lb_graph_print(g, f, popt);
    st = lb_atomic_commit(f, tmp, path, &d);
  }
  if (st != LB_OK && d.text) fprintf(stderr, "lowbit-opt: %s", d.text);
  lb_diag_free(&d);
  return st == LB_OK ? 0 : 1;
}

/* Matches "--name=value" or "--name value"; returns the value or NULL. */
static const char *opt_value(const char *name, int argc, char **argv, int *i, bool *usage_err) {
  size_t k = strlen(name);
  if (strncmp(argv[*i], name, k) != 0) return NULL;
  if (argv[*i][k] == '=') return argv[*i] + k + 1;
  if (argv[*i][k] != 0) return NULL;
  if (*i + 1 >= argc) {
    fprintf(stderr, "lowbit-opt: option '%s' needs a value\n", name);
    *usage_err = true;
    return NULL;
  }
  return argv[++*i];
}

int main(int argc, char **argv) {
  const char *in = NULL, *out = NULL, *dump_dir = NULL, *stats_path = NULL, *dump_dot = NULL;
  char *pipeline = NULL;
  struct names before = {0}, after = {0};
  bool before_all = false, after_all = false, changed = false, verify_each = false;
  bool time_passes = false, elide = false, full = false, verbose = false;
  int rc = 0;

  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *v;
    bool bad = false;
    if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      fputs(usage_text, stdout);
      goto done;
    } else if (strcmp(a, "--list-passes") == 0) {
      for (int32_t k = 0; k < lb_n_passes; k++)
        printf("  %-16s %s\n", lb_passes[k].name, lb_passes[k].summary);
      printf("default pipeline: %s\n", lb_default_pipeline);
      goto done;
    } else if (strcmp(a, "-p") == 0 || strcmp(a, "--passes") == 0) {
      if (i + 1 >= argc) goto usage_missing;
      pipeline_append(&pipeline, argv[++i]);
    } else if (strncmp(a, "-p", 2) == 0 && a[2] != '-' && a[2] != 0) {
      pipeline_append(&pipeline, a + 2 + (a[2] == '='));
    } else if (strncmp(a, "--passes=", 9) == 0) {
      pipeline_append(&pipeline, a + 9);
    } else if (strcmp(a, "-o") == 0) {
      if (i + 1 >= argc) goto usage_missing;
      out = argv[++i];
    } else if ((v = opt_value("--print-before", argc, argv, &i, &bad))) {
      names_add_list(&before, v);
    } else if ((v = opt_value("--print-after", argc, argv, &i, &bad))) {
      names_add_list(&after, v);
    } else if ((v = opt_value("--dump-dir", argc, argv, &i, &bad))) {
      dump_dir = v;
    } else if ((v = opt_value("--dump-dot", argc, argv, &i, &bad))) {
      dump_dot = v;
    } else if ((v = opt_value("--load-stats", argc, argv, &i, &bad))) {
      stats_path = v;
    } else if (bad) {
      rc = 2;
      goto done;
    } else if (strcmp(a, "--print-before-all") == 0) {
      before_all = true;
    } else if (strcmp(a, "--print-after-all") == 0) {
      after_all = true;
    } else if (strcmp(a, "--print-changed") == 0) {
      changed = true;
    } else if (strcmp(a, "--verify-each") == 0) {
      verify_each = true;
    } else if (strcmp(a, "--time-passes") == 0) {
      time_passes = true;
    } else if (strcmp(a, "-v") == 0 || strcmp(a, "--verbose") == 0) {
      verbose = true;
    } else if (strcmp(a, "--elide-blobs") == 0) {
      elide = true;
    } else if (strcmp(a, "--full-blobs") == 0) {
      full = true;
    } else if (a[0] == '-' && a[1] != 0) {
      fprintf(stderr, "lowbit-opt: unknown option '%s' (see --help)\n", a);
      rc = 2;
      goto done;
    } else if (!in) {
      in = a;
    } else {
      fprintf(stderr, "lowbit-opt: more than one input file ('%s' and '%s')\n", in, a);
      rc = 2;
      goto done;
    }
    continue;
  usage_missing:
    fprintf(stderr, "lowbit-opt: option '%s' needs a value\n", a);
    rc = 2;
    goto done;
  }
  if (!in) {
    fputs("lowbit-opt: no input file\n", stderr);
    fputs(usage_text, stderr);
    rc = 2;
    goto done;
  }
  if (elide && full) {
    fputs("lowbit-opt: --elide-blobs and --full-blobs conflict\n", stderr);
    rc = 2;
    goto done;
  }

  /* Unknown pass names are a usage error, reported before reading the input. */
  for (const char *p = pipeline ? pipeline : ""; *p;) {
    size_t k = strcspn(p, ",");
    const char *s = p;
    while (k && *s == ' ') s++, k--;
    while (k && s[k - 1] == ' ') k--;
    for (size_t j = 0; j < k; j++) /* "name{key=value}": the manager checks the arguments */
      if (s[j] == '{') k = j;
    char name[128];
    if (k && (k >= sizeof name || (memcpy(name, s, k), name[k] = 0, !lb_pass_find(name)))) {
      fprintf(stderr, "lowbit-opt: error: unknown pass '%.*s' (known passes:", (int)k, s);
      for (int32_t i = 0; i < lb_n_passes; i++)
        fprintf(stderr, "%s %s", i ? "," : "", lb_passes[i].name);
      fputs(")\n", stderr);
      rc = 2;
      goto done;
    }
    p += strcspn(p, ",");
    if (*p) p++;
  }

  {
    struct lb_diag d;
    lb_diag_init(&d, strcmp(in, "-") == 0 ? "<stdin>" : in);
    struct lb_graph *g = NULL;
    enum lb_status st = parse_input(in, &g, &d);
    if (st == LB_OK) st = lb_graph_verify(g, &d);
    struct lb_calib_stat *stats = NULL;
    int32_t n_stats = 0;
    if (st == LB_OK && stats_path) st = lb_calib_read_stats_json(stats_path, &stats, &n_stats, &d);
    struct lb_pass_options opt = {
        .print_before = before.v,
        .print_after = after.v,
        .print_before_all = before_all,
        .print_after_all = after_all,
        .print_changed = changed,
        .dump_dir = dump_dir,
        .verify_each = verify_each,
        .time_passes = time_passes,
        .print_out = stderr,
        .dump_blobs = full ? LB_PRINT_BLOBS_FULL : LB_PRINT_BLOBS_ELIDED,
        .calib = stats,
        .n_calib = n_stats,
    };
    if (st == LB_OK) st = lb_pass_manager_run(g, pipeline ? pipeline : "", &opt, &d);
    if (st == LB_OK && dump_dot) st = lb_graph_dump_dot(g, dump_dot, &d);
    if (st == LB_OK) {
      struct lb_print_options popt = lb_print_defaults;
      if (out) {
        popt.blobs = elide ? LB_PRINT_BLOBS_ELIDED : LB_PRINT_BLOBS_FULL;
        rc = write_atomic(g, out, &popt);
      } else {
        popt.blobs = full ? LB_PRINT_BLOBS_FULL : LB_PRINT_BLOBS_ELIDED;
        lb_graph_print(g, stdout, &popt);
        if (fflush(stdout) != 0 || ferror(stdout)) rc = fail("error writing stdout");
      }
      if (verbose) print_diag(&d); /* remarks, e.g. plan-memory's */
    } else {
      print_diag(&d);
      rc = st == LB_ERR_USAGE ? 2 : 1;
    }
    lb_diag_free(&d);
    lb_graph_free(g);
    for (int32_t i = 0; i < n_stats; i++) lb_calib_stat_free(&stats[i]);
    free(stats);
  }

done:
  free(pipeline);
  names_free(&before);
  names_free(&after);
  return rc;
}
