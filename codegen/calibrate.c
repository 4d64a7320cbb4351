/* calibrate.c: runs an instrumented graph on calibration samples in-process
 * and accumulates the observers' statistics (see codegen/calibrate.h).
 *
 * How statistics leave the JIT-compiled code: every `observe` node is removed
 * and the value it observed becomes an extra graph output (unless it is a
 * graph input or already an output), so the generated <model>_run writes it
 * into a buffer the runner owns; after each sample the runner folds those
 * buffers into the bounded statistics of passes/calib.c. Memory is one
 * sample's inputs, outputs and activation arena, whatever the sample count.
 */
#include "codegen/calibrate.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "passes/pass.h"
#include "runtime/lbrt.h"

void lb_calib_result_free(struct lb_calib_result *r) {
  for (int32_t i = 0; i < r->n_stats; i++) lb_calib_stat_free(&r->stats[i]);
  free(r->stats);
  memset(r, 0, sizeof *r);
}

static int cmp_str(const void *a, const void *b) {
  return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static char *path_join(const char *a, const char *b) {
  size_t n = strlen(a) + strlen(b) + 2;
  char *s = malloc(n);
  if (!s) abort();
  snprintf(s, n, "%s/%s", a, b);
  return s;
}

enum lb_status lb_calib_list_samples(const char *dir, char ***names, int64_t *n, struct lb_diag *d) {
  *names = NULL;
  *n = 0;
  DIR *dp = opendir(dir);
  if (!dp) return lb_diag_error(d, LB_ERR_IO, NULL, "cannot open calibration directory '%s': %s", dir, strerror(errno));
  int64_t cap = 0;
  struct dirent *e;
  while ((e = readdir(dp))) {
    if (e->d_name[0] == '.') continue; /* ".", "..", hidden */
    char *p = path_join(dir, e->d_name);
    struct stat st;
    bool is_dir = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    if (!is_dir) continue;
    if (*n == cap) {
      cap = cap ? cap * 2 : 16;
      *names = realloc(*names, sizeof **names * (size_t)cap);
      if (!*names) abort();
    }
    (*names)[(*n)++] = strdup(e->d_name);
    if (!(*names)[*n - 1]) abort();
  }
  closedir(dp);
  if (*n == 0)
    return lb_diag_error(d, LB_ERR_INVALID, NULL,
                         "calibration directory '%s' holds no samples (expected one subdirectory per sample "
                         "with input_0.pb, ... or <input name>.npy files)",
                         dir);
  qsort(*names, (size_t)*n, sizeof **names, cmp_str);
  return LB_OK;
}

void lb_calib_samples_free(char **names, int64_t n) {
  for (int64_t s = 0; s < n; s++) free(names[s]);
  free(names);
}

static void type_str(const struct lb_type *t, char *buf, size_t len) {
  size_t o = (size_t)snprintf(buf, len, "%s[", lb_dtype_traits[t->dtype].name);
  for (int32_t i = 0; i < t->shape.rank && o < len; i++)
    o += (size_t)snprintf(buf + o, len - o, "%s%lld", i ? "," : "", (long long)t->shape.dims[i]);
  if (o < len) snprintf(buf + o, len - o, "]");
}

enum lb_status lb_calib_read_input(const char *sdir, int32_t k, const struct lb_value *in, struct lbrt_tensor *t,
                                   struct lb_diag *d) {
  char pbname[64];
  snprintf(pbname, sizeof pbname, "input_%d.pb", (int)k);
  char *pb = path_join(sdir, pbname), *npy = NULL;
  const char *path = NULL;
  if (access(pb, F_OK) == 0) {
    path = pb;
  } else if (!strchr(in->name, '/')) {
    size_t n = strlen(in->name) + 5;
    char *f = malloc(n);
    if (!f) abort();
    snprintf(f, n, "%s.npy", in->name);
    npy = path_join(sdir, f);
    free(f);
    if (access(npy, F_OK) == 0) path = npy;
  }
  enum lb_status st = LB_OK;
  if (!path) {
    st = lb_diag_error(d, LB_ERR_INVALID, NULL, "calibration sample '%s' has no %s or %s.npy for input %d \"%s\"",
                       sdir, pbname, in->name, (int)k, in->name);
    goto out;
  }
  char err[256] = "";
  if (lbrt_tensor_read(path, t, NULL, err, sizeof err) != LBRT_OK) {
    st = lb_diag_error(d, LB_ERR_INVALID, NULL, "calibration sample '%s': %s", path, err);
    goto out;
  }
  bool ok = t->dtype == lb_dtype_traits[in->type.dtype].onnx && t->rank == in->type.shape.rank;
  for (int32_t i = 0; ok && i < t->rank; i++) ok = t->dims[i] == in->type.shape.dims[i];
  if (!ok) {
    char got[128], want[128];
    lbrt_shape_format(got, sizeof got, t->dtype, t->rank, t->dims);
    type_str(&in->type, want, sizeof want);
    st = lb_diag_error(d, LB_ERR_INVALID, NULL, "calibration sample '%s' is %s but input \"%s\" is %s", path, got,
                       in->name, want);
    lbrt_tensor_free(t);
  }
out:
  free(pb);
  free(npy);
  return st;
}

static void *aligned_buf(int64_t bytes) {
  size_t n = (size_t)((bytes + 63) / 64 * 64);
  void *p = aligned_alloc(64, n ? n : 64);
  if (!p) abort();
  memset(p, 0, n ? n : 64);
  return p;
}

int32_t lb_calib_expose_value(struct lb_graph *g, struct lb_value *v) {
  for (int32_t i = 0; i < g->n_inputs; i++)
    if (g->inputs[i] == v) return -1 - i;
  for (int32_t i = 0; i < g->n_outputs; i++)
    if (g->outputs[i] == v) return i;
  lb_graph_add_output(g, v);
  return g->n_outputs - 1;
}

static bool name_listed(const char *const *names, const char *name) {
  if (!names) return true;
  for (; *names; names++)
    if (strcmp(*names, name) == 0) return true;
  return false;
}

enum lb_status lb_calibrate(struct lb_graph *g, const char *dir, const struct lb_calib_run_options *o,
                            struct lb_calib_result *out, struct lb_diag *d) {
  memset(out, 0, sizeof *out);
  static const struct lb_calib_run_options no_opts;
  if (!o) o = &no_opts;
  /* 1. observers -> statistics slots; observed values become graph outputs */
  int32_t n_obs = 0;
  for (int32_t i = 0; i < g->n_nodes; i++) n_obs += g->nodes[i]->op == LB_OP_OBSERVE;
  if (!n_obs)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL,
                         "nothing to calibrate: the model has no matmul, gemm or conv with float activations");
  out->stats = calloc((size_t)n_obs, sizeof *out->stats);
  struct lb_value **src = calloc((size_t)n_obs, sizeof *src);
  int32_t *where = calloc((size_t)n_obs, sizeof *where); /* >= 0: output index; < 0: -1 - input index */
  if (!out->stats || !src || !where) abort();
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->op != LB_OP_OBSERVE) continue;
    struct lb_value *v = n->inputs[0];
    LB_ASSERT(v->type.dtype == LB_DTYPE_F32);
    int32_t kinds = lb_calib_kinds_from_node(n);
    if ((kinds & LB_CALIB_ABSMAX_CHANNEL) && name_listed(o->operand_names, v->name)) kinds |= o->operand_kinds;
    lb_calib_stat_init(&out->stats[out->n_stats], v->name, kinds, &v->type);
    src[out->n_stats++] = v;
    lb_graph_replace_uses(g, n->outputs[0], v);
    n->dead = true;
  }
  lb_graph_compact(g);
  for (int32_t k = 0; k < n_obs; k++) where[k] = lb_calib_expose_value(g, src[k]);
  /* 2. plan and compile */
  struct lb_jit *j = NULL;
  enum lb_status st = lb_pass_manager_run(g, "plan-memory", NULL, d);
  if (st == LB_OK) st = lb_jit_compile(g, o->cg, &j, d);
  char **names = NULL;
  int64_t n_samples = 0;
  if (st == LB_OK) st = lb_calib_list_samples(dir, &names, &n_samples, d);
  /* 3. run every sample */
  const void **ins = calloc((size_t)g->n_inputs + 1, sizeof *ins);
  void **outs = calloc((size_t)g->n_outputs + 1, sizeof *outs);
  struct lbrt_tensor *tens = calloc((size_t)g->n_inputs + 1, sizeof *tens);
  void *act = NULL;
  if (!ins || !outs || !tens) abort();
  if (st == LB_OK) {
    for (int32_t i = 0; i < g->n_outputs; i++) outs[i] = aligned_buf(lb_type_nbytes(&g->outputs[i]->type));
    act = aligned_buf(lb_jit_activations_size(j));
    if (o->progress) o->progress(o->progress_ctx, 0, n_samples);
  }
  for (int64_t s = 0; st == LB_OK && s < n_samples; s++) {
    char *sdir = path_join(dir, names[s]);
    for (int32_t k = 0; k < g->n_inputs && st == LB_OK; k++) {
      st = lb_calib_read_input(sdir, k, g->inputs[k], &tens[k], d);
      ins[k] = tens[k].data;
    }
    if (st == LB_OK) {
      int32_t rc = lb_jit_run(j, ins, outs, act);
      if (rc != 0) st = lb_diag_error(d, LB_ERR_BACKEND, NULL, "calibration sample '%s': the model returned %d", sdir, (int)rc);
    }
    if (st == LB_OK) {
      for (int32_t k = 0; k < n_obs; k++) {
        const float *x = where[k] >= 0 ? outs[where[k]] : ins[-1 - where[k]];
        lb_calib_stat_add(&out->stats[k], x, lb_shape_numel(&src[k]->type.shape));
      }
      out->samples++;
      if (o->progress) o->progress(o->progress_ctx, s + 1, n_samples);
    }
    for (int32_t k = 0; k < g->n_inputs; k++) {
      lbrt_tensor_free(&tens[k]);
      ins[k] = NULL;
    }
    free(sdir);
  }
  for (int32_t i = 0; i < g->n_outputs; i++) free(outs[i]);
  free(outs);
  free(ins);
  free(tens);
  free(act);
  lb_calib_samples_free(names, n_samples);
  lb_jit_free(j);
  free(src);
  free(where);
  if (st != LB_OK) lb_calib_result_free(out);
  return st;
}
