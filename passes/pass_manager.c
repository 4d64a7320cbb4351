/* pass_manager.c: the pass table and the driver that runs a pipeline.
 *
 * A pipeline is a comma-separated list of pass names from passes/passes.def
 * ("infer-shapes,dce"), each optionally with arguments in braces
 * ("quantize{scheme=w8a8}", keys separated by spaces); the empty string runs
 * nothing. Each pass runs with a
 * fresh lb_pass_context whose scratch arena is freed after it. Around every
 * pass the manager can print the IR (before/after a named pass, after all,
 * only when changed), dump it to NN-<pass>.lbir files, verify it and time it.
 * The first error stops the pipeline and is returned.
 */
#include "passes/pass.h"

#include "passes/calib.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

const struct lb_pass_info lb_passes[] = {
#define PASS(name, ident, args, summary) {name, lb_pass_##ident, args, summary},
#include "passes/passes.def"
#undef PASS
};
const int32_t lb_n_passes = (int32_t)(sizeof lb_passes / sizeof lb_passes[0]);

/* infer-shapes first so every later pass sees exact types; fold-qdq before
 * fold-constants, which would turn an 8-bit weight's dequantize_linear into a
 * float constant; dce after cse and after fuse sweeps what they orphaned;
 * plan-memory runs last on the final graph. */
const char *const lb_default_pipeline =
    "infer-shapes,simplify,fold-qdq,fold-constants,cse,dce,fuse,dce,plan-memory";

const struct lb_pass_info *lb_pass_find(const char *name) {
  if (!name) return NULL;
  for (int32_t i = 0; i < lb_n_passes; i++)
    if (strcmp(lb_passes[i].name, name) == 0) return &lb_passes[i];
  return NULL;
}

static double now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static bool name_listed(const char *const *list, const char *name) {
  for (; list && *list; list++)
    if (strcmp(*list, name) == 0) return true;
  return false;
}

const char *lb_pass_arg(const struct lb_pass_context *ctx, const char *key) {
  for (int32_t i = 0; i < ctx->n_args; i++)
    if (strcmp(ctx->args[i].key, key) == 0) return ctx->args[i].value;
  return NULL;
}

const struct lb_calib_stat *lb_pass_calib(const struct lb_pass_context *ctx, const char *name) {
  for (int32_t i = 0; i < ctx->n_calib; i++)
    if (strcmp(ctx->calib[i].name, name) == 0) return &ctx->calib[i];
  return NULL;
}

/* One pipeline entry: the pass and its arguments (strings in `mem`). */
struct entry {
  const struct lb_pass_info *info;
  struct lb_pass_arg args[8];
  int32_t n_args;
};

static bool key_accepted(const char *list, const char *key, size_t klen) {
  for (const char *p = list; *p;) {
    while (*p == ' ') p++;
    size_t n = strcspn(p, " ");
    if (n && n == klen && strncmp(p, key, n) == 0) return true;
    p += n;
  }
  return false;
}

static void list_known(char *known, size_t cap) {
  known[0] = 0;
  for (int32_t i = 0; i < lb_n_passes; i++) {
    if (i) strncat(known, ", ", cap - strlen(known) - 1);
    strncat(known, lb_passes[i].name, cap - strlen(known) - 1);
  }
}

/* Parses "k=v k2=v2" (text of length k between the braces) into e->args. */
static enum lb_status parse_args(const char *s, size_t k, struct entry *e, struct lb_arena *mem,
                                 struct lb_diag *d) {
  size_t i = 0;
  while (i < k) {
    while (i < k && (s[i] == ' ' || s[i] == '\t')) i++;
    if (i == k) break;
    size_t j = i;
    while (j < k && s[j] != ' ' && s[j] != '\t') j++;
    const char *eq = memchr(s + i, '=', j - i);
    if (!eq || eq == s + i)
      return lb_diag_error(d, LB_ERR_USAGE, NULL, "pass '%s': argument '%.*s' is not key=value",
                           e->info->name, (int)(j - i), s + i);
    size_t klen = (size_t)(eq - (s + i));
    if (!key_accepted(e->info->args, s + i, klen))
      return lb_diag_error(d, LB_ERR_USAGE, NULL, "pass '%s' has no argument '%.*s' (it takes: %s)",
                           e->info->name, (int)klen, s + i,
                           e->info->args[0] ? e->info->args : "none");
    if (e->n_args == (int32_t)(sizeof e->args / sizeof e->args[0]))
      return lb_diag_error(d, LB_ERR_USAGE, NULL, "pass '%s': too many arguments", e->info->name);
    e->args[e->n_args].key = lb_arena_strndup(mem, s + i, klen);
    e->args[e->n_args].value = lb_arena_strndup(mem, eq + 1, (size_t)(s + j - eq - 1));
    e->n_args++;
    i = j;
  }
  return LB_OK;
}

/* Splits `pipeline` into pass entries; unknown names and keys are usage errors. */
static enum lb_status parse_pipeline(const char *pipeline, struct entry **out, int32_t *count,
                                     struct lb_arena *mem, struct lb_diag *d) {
  *out = NULL;
  *count = 0;
  if (!pipeline) pipeline = "";
  size_t len = strlen(pipeline);
  struct entry *list = calloc(len / 2 + 2, sizeof *list);
  if (!list) abort();
  int32_t n = 0;
  const char *p = pipeline;
  while (*p) {
    /* the entry ends at the first comma outside braces */
    const char *e = p;
    int depth = 0;
    while (*e && (depth || *e != ',')) {
      if (*e == '{') depth++;
      else if (*e == '}' && depth) depth--;
      e++;
    }
    size_t k = (size_t)(e - p);
    /* tolerate spaces around names ("dce, cse") */
    const char *s = p;
    while (k && (*s == ' ' || *s == '\t')) s++, k--;
    while (k && (s[k - 1] == ' ' || s[k - 1] == '\t')) k--;
    if (k) {
      const char *brace = memchr(s, '{', k);
      size_t nlen = brace ? (size_t)(brace - s) : k;
      if (brace && s[k - 1] != '}') {
        lb_diag_error(d, LB_ERR_USAGE, NULL, "pipeline entry '%.*s': missing '}'", (int)k, s);
        free(list);
        return LB_ERR_USAGE;
      }
      char name[128];
      const struct lb_pass_info *info = NULL;
      if (nlen < sizeof name) {
        memcpy(name, s, nlen);
        name[nlen] = 0;
        info = lb_pass_find(name);
      }
      if (!info) {
        char known[1024];
        list_known(known, sizeof known);
        lb_diag_error(d, LB_ERR_USAGE, NULL, "unknown pass '%.*s' (known passes: %s)", (int)nlen, s,
                      known);
        free(list);
        return LB_ERR_USAGE;
      }
      list[n].info = info;
      if (brace && parse_args(brace + 1, k - nlen - 2, &list[n], mem, d) != LB_OK) {
        free(list);
        return LB_ERR_USAGE;
      }
      n++;
    }
    if (!*e) break;
    p = e + 1;
  }
  *out = list;
  *count = n;
  return LB_OK;
}

static enum lb_status make_dirs(const char *path, struct lb_diag *d) {
  size_t len = strlen(path);
  char *buf = malloc(len + 1);
  if (!buf) abort();
  memcpy(buf, path, len + 1);
  for (size_t i = 1; i <= len; i++) {
    if (buf[i] != '/' && buf[i] != 0) continue;
    char c = buf[i];
    buf[i] = 0;
    if (mkdir(buf, 0777) != 0 && errno != EEXIST) {
      lb_diag_error(d, LB_ERR_IO, NULL, "cannot create dump directory '%s': %s", buf,
                    strerror(errno));
      free(buf);
      return LB_ERR_IO;
    }
    buf[i] = c;
  }
  free(buf);
  struct stat st;
  if (stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
    return lb_diag_error(d, LB_ERR_IO, NULL, "dump directory '%s' is not a directory", path);
  return LB_OK;
}

static enum lb_status dump_graph(const struct lb_graph *g, const char *dir, int32_t index,
                                 const char *what, const struct lb_print_options *popt,
                                 struct lb_diag *d) {
  size_t n = strlen(dir) + strlen(what) + 32;
  char *path = malloc(n);
  if (!path) abort();
  snprintf(path, n, "%s/%02d-%s.lbir", dir, (int)index, what);
  FILE *f = fopen(path, "w");
  if (!f) {
    lb_diag_error(d, LB_ERR_IO, NULL, "cannot write '%s': %s", path, strerror(errno));
    free(path);
    return LB_ERR_IO;
  }
  lb_graph_print(g, f, popt);
  bool bad = ferror(f) != 0;
  if (fclose(f) != 0) bad = true;
  enum lb_status st = LB_OK;
  if (bad) st = lb_diag_error(d, LB_ERR_IO, NULL, "error writing '%s'", path);
  free(path);
  return st;
}

static void print_graph(const struct lb_graph *g, FILE *out, const char *when, const char *pass,
                        const struct lb_print_options *popt) {
  fprintf(out, "# -- IR %s %s --\n", when, pass);
  lb_graph_print(g, out, popt);
  fflush(out);
}

/* Runs the verifier and rewrites its messages as one error naming the pass. */
static enum lb_status verify_after(const struct lb_graph *g, const char *pass, struct lb_diag *d) {
  struct lb_diag vd;
  lb_diag_init(&vd, NULL);
  enum lb_status st = lb_graph_verify(g, &vd);
  if (st == LB_OK && vd.status != LB_OK) st = vd.status;
  if (st != LB_OK) {
    const char *msg = vd.text ? vd.text : "(no message)\n";
    size_t len = strlen(msg);
    while (len && msg[len - 1] == '\n') len--;
    lb_diag_error(d, st, NULL, "verifier failed after pass '%s': %.*s", pass, (int)len, msg);
  }
  lb_diag_free(&vd);
  return st;
}

static void print_timing(FILE *out, const struct entry *list, const double *ms, int32_t n) {
  double total = 0;
  for (int32_t i = 0; i < n; i++) total += ms[i];
  fprintf(out, "===-------------------------------------------------------------------------===\n"
               "                      ... Pass execution timing report ...\n"
               "===-------------------------------------------------------------------------===\n"
               "  Total Execution Time: %.4f seconds (wall)\n\n"
               "   Wall (ms)  ---%%---  Pass\n",
          total / 1e3);
  for (int32_t i = 0; i < n; i++)
    fprintf(out, "  %10.3f  %6.1f%%  %s\n", ms[i], total > 0 ? 100.0 * ms[i] / total : 0.0,
            list[i].info->name);
  fprintf(out, "  %10.3f  %6.1f%%  Total\n", total, 100.0);
  fflush(out);
}

enum lb_status lb_pass_manager_run(struct lb_graph *g, const char *pipeline,
                                   const struct lb_pass_options *opt, struct lb_diag *d) {
  static const struct lb_pass_options defaults = {.dump_blobs = LB_PRINT_BLOBS_ELIDED};
  if (!opt) opt = &defaults;
  FILE *out = opt->print_out ? opt->print_out : stderr;
  struct lb_print_options popt = lb_print_defaults;
  popt.blobs = opt->dump_blobs;

  struct entry *list;
  int32_t n;
  struct lb_arena mem = {0}; /* argument strings */
  enum lb_status st = parse_pipeline(pipeline, &list, &n, &mem, d);
  if (st != LB_OK) {
    lb_arena_free(&mem);
    return st;
  }
  double *ms = calloc((size_t)n + 1, sizeof *ms);
  if (!ms) abort();

  if (opt->dump_dir) {
    st = make_dirs(opt->dump_dir, d);
    if (st == LB_OK) st = dump_graph(g, opt->dump_dir, 0, "input", &popt, d);
  }

  int32_t ran = 0;
  for (int32_t i = 0; i < n && st == LB_OK; i++) {
    const struct lb_pass_info *pass = list[i].info;
    ran = i + 1;
    if (opt->print_before_all || name_listed(opt->print_before, pass->name))
      print_graph(g, out, "before", pass->name, &popt);

    struct lb_pass_context ctx = {.diag = d, .args = list[i].args, .n_args = list[i].n_args,
                                  .calib = opt->calib, .n_calib = opt->n_calib};
    int errors_before = d->count;
    double t0 = now_ms();
    st = pass->run(g, &ctx);
    ms[i] = now_ms() - t0;
    lb_arena_free(&ctx.scratch);
    if (st == LB_OK && d->count > errors_before && d->status != LB_OK)
      st = d->status; /* a pass that reported an error but returned OK */
    if (st != LB_OK) {
      lb_diag_note(d, "while running pass '%s'", pass->name);
      break;
    }

    /* --print-changed alone prints after every pass that changed the graph;
     * combined with --print-after(-all) it narrows those to the changing ones. */
    bool filtered = opt->print_after_all || (opt->print_after && opt->print_after[0]);
    bool print = opt->print_after_all || name_listed(opt->print_after, pass->name);
    if (opt->print_changed) print = ctx.changed && (print || !filtered);
    if (print) print_graph(g, out, "after", pass->name, &popt);
    if (opt->dump_dir) st = dump_graph(g, opt->dump_dir, i + 1, pass->name, &popt, d);
    if (st == LB_OK && opt->verify_each) st = verify_after(g, pass->name, d);
  }

  if (opt->time_passes) print_timing(out, list, ms, ran);
  free(ms);
  free(list);
  lb_arena_free(&mem);
  return st;
}
