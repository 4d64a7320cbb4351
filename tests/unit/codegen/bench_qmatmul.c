/* bench_qmatmul.c: the int8 qmatmul kernels (codegen/k_qmatmul.c) against the
 * f32 matmul kernel on the same shape, y[M,N] = x[M,K] W[K,N] with W constant.
 *   bench_qmatmul M K N [threads=1] [features]
 * Prints best-of-run milliseconds and GFLOP/s (2MNK) for f32, int8 static,
 * int8 dynamic and W8 (a_quant none). `features` goes to the code generator
 * (e.g. -avx512vnni). Not a test. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "codegen/codegen.h"
#include "runtime/lbrt.h"
#include "runtime/lbrt_abi.h"

static double now(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static struct lb_qparams *qp(struct lb_graph *g, int64_t n, float s) {
  struct lb_qparams *q = lb_arena_alloc(&g->arena, sizeof *q);
  *q = (struct lb_qparams){.bits = 8, .axis = n > 1 ? 1 : -1, .symmetric = true, .n = n};
  q->scales = lb_arena_alloc(&g->arena, sizeof *q->scales * (size_t)n);
  for (int64_t i = 0; i < n; i++) q->scales[i] = s * (1 + (float)(i % 7) / 7);
  return q;
}

/* kind: NULL = f32 matmul, else qmatmul's a_quant */
static double bench(int64_t M, int64_t K, int64_t N, const char *kind, const char *features, double *err) {
  struct lb_graph *g = lb_graph_new("bench");
  struct lb_type at = {.dtype = LB_DTYPE_F32, .shape = {.rank = 2, .dims = {M, K}}};
  struct lb_value *a = lb_value_new(g, "x", at);
  lb_graph_add_input(g, a);
  struct lb_value *w;
  if (!kind) {
    struct lb_type bt = {.dtype = LB_DTYPE_F32, .shape = {.rank = 2, .dims = {K, N}}};
    float *wf = malloc(sizeof *wf * (size_t)(K * N));
    for (int64_t i = 0; i < K * N; i++) wf[i] = (float)((i * 7919) % 255 - 127) * 0.01f;
    w = lb_graph_add_const(g, "w", &bt, wf)->outputs[0];
    free(wf);
  } else {
    struct lb_type bt = {.dtype = LB_DTYPE_I8, .shape = {.rank = 2, .dims = {K, N}}};
    int8_t *wq = malloc((size_t)(K * N));
    for (int64_t i = 0; i < K * N; i++) wq[i] = (int8_t)((i * 7919) % 255 - 127);
    w = lb_graph_add_const(g, "w", &bt, wq)->outputs[0];
    w->qparams = qp(g, N, 0.01f);
    free(wq);
    if (!strcmp(kind, "static")) a->qparams = qp(g, 1, 1.0f / 127);
  }
  struct lb_value *ins[2] = {a, w};
  struct lb_node *n = lb_graph_add_node(g, kind ? LB_OP_QMATMUL : LB_OP_MATMUL, "mm", ins, 2, NULL, 1);
  if (kind) lb_node_set_attr_string(g, n, "a_quant", kind);
  struct lb_diag d;
  lb_diag_init(&d, "bench");
  if (lb_infer_node(g, n, &d) != LB_OK) {
    fprintf(stderr, "%s\n", d.text);
    exit(1);
  }
  lb_graph_add_output(g, n->outputs[0]);
  struct lb_jit *j;
  struct lb_codegen_options o = {.opt_level = 3, .model_name = "bench", .features = features};
  if (lb_jit_compile(g, &o, &j, &d) != LB_OK) {
    fprintf(stderr, "%s\n", d.text);
    exit(1);
  }
  float *x = aligned_alloc(64, sizeof *x * (size_t)(M * K + 16));
  float *y = aligned_alloc(64, sizeof *y * (size_t)(M * N + 16));
  for (int64_t i = 0; i < M * K; i++) x[i] = (float)(i % 13) / 13.0f - 0.4f;
  const void *in[1] = {x};
  void *out[1] = {y};
  void *act = aligned_alloc(64, 64);
  lb_jit_run(j, in, out, act);
  double t = now();
  lb_jit_run(j, in, out, act);
  double dt = now() - t;
  int iters = (int)(0.5 / (dt > 1e-7 ? dt : 1e-7));
  if (iters < 5) iters = 5;
  if (iters > 20000) iters = 20000;
  double best = 1e30;
  for (int it = 0; it < iters; it++) {
    t = now();
    lb_jit_run(j, in, out, act);
    dt = now() - t;
    if (dt < best) best = dt;
  }
  /* relative error of the last row against the float product of the same weights */
  const void *nin[2] = {x, lb_value_const_data(g, w)};
  float *ref = aligned_alloc(64, sizeof *ref * (size_t)(M * N + 16));
  lb_eval_node(g, n, nin, (void *[]){ref}, &d);
  double e = 0, r = 0;
  for (int64_t i = (M - 1) * N; i < M * N; i++) e += (y[i] - ref[i]) * (double)(y[i] - ref[i]), r += ref[i] * (double)ref[i];
  *err = r > 0 ? e / r : e;
  free(ref);
  free(x);
  free(y);
  free(act);
  lb_jit_free(j);
  lb_diag_free(&d);
  lb_graph_free(g);
  return best;
}

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bench_qmatmul M K N [threads] [features]\n");
    return 2;
  }
  int64_t M = atoll(argv[1]), K = atoll(argv[2]), N = atoll(argv[3]);
  int threads = argc > 4 ? atoi(argv[4]) : 1;
  const char *features = argc > 5 ? argv[5] : NULL;
  lbrt_threads_init(threads);
  lb_jit_set_parallel_for((lb_jit_parallel_for_fn)lbrt_parallel_for);
  double flops = 2.0 * (double)M * (double)N * (double)K, err;
  double tf = bench(M, K, N, NULL, features, &err);
  printf("M=%lld K=%lld N=%lld threads=%d%s%s\n", (long long)M, (long long)K, (long long)N, threads,
         features ? " features=" : "", features ? features : "");
  printf("  f32           %8.3f ms %7.1f GFLOP/s\n", tf * 1e3, flops / tf * 1e-9);
  static const char *const kinds[] = {"static", "dynamic", "none"};
  for (int k = 0; k < 3; k++) {
    double tq = bench(M, K, N, kinds[k], features, &err);
    printf("  int8 %-8s %8.3f ms %7.1f GFLOP/s  x%.2f vs f32  (rel. sq. err vs evaluator %.1e)\n", kinds[k],
           tq * 1e3, flops / tq * 1e-9, tf / tq, err);
  }
  return 0;
}
