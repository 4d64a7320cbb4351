/* bench_qmatmul.c: the int8 qmatmul kernels (codegen/k_qmatmul.c) against the
 * f32 matmul kernel on the same shape, y[M,N] = x[M,K] W[K,N] with W constant.
 *   bench_qmatmul M K N [threads=1] [features] [bits group [layers]]
 * Prints best-of-run milliseconds and GFLOP/s (2MNK) for f32, int8 static,
 * int8 dynamic and W8 (a_quant none). `features` goes to the code generator
 * (e.g. -avx512vnni; "" for none). With bits (2, 3, 4) and group, also the
 * low-bit kernels (codegen/k_qmatmul_lowbit.c) with a_quant dynamic and none,
 * and their weight bandwidth (packed codes + f16 scales / time). `layers` > 1
 * (K = N) chains that many matmuls, so that the weights of all of them do not
 * stay in the cache between runs. Not a test. */
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

static int g_bits = 8, g_group = 0, g_layers = 1;

static struct lb_qparams *qp(struct lb_graph *g, int64_t n, float s) {
  struct lb_qparams *q = lb_arena_alloc(&g->arena, sizeof *q);
  *q = (struct lb_qparams){.bits = 8, .axis = n > 1 ? 1 : -1, .symmetric = true, .n = n};
  q->scales = lb_arena_alloc(&g->arena, sizeof *q->scales * (size_t)n);
  for (int64_t i = 0; i < n; i++) q->scales[i] = s * (1 + (float)(i % 7) / 7);
  return q;
}

/* g_bits-bit symmetric codes with f16 scales (multiples of 2^-12) per group */
static struct lb_qparams *qp_lowbit(struct lb_graph *g, int64_t K, int64_t N) {
  int64_t n = (g_group ? (K + g_group - 1) / g_group : 1) * N;
  struct lb_qparams *q = lb_arena_alloc(&g->arena, sizeof *q);
  *q = (struct lb_qparams){.bits = g_bits, .axis = 1, .group_size = g_group, .symmetric = true, .n = n};
  q->scales = lb_arena_alloc(&g->arena, sizeof *q->scales * (size_t)n);
  for (int64_t i = 0; i < n; i++) q->scales[i] = (float)(8 + i % 7) / 4096;
  return q;
}

/* kind: NULL = f32 matmul, else qmatmul's a_quant */
static double bench(int64_t M, int64_t K, int64_t N, const char *kind, const char *features, double *err) {
  struct lb_graph *g = lb_graph_new("bench");
  struct lb_type at = {.dtype = LB_DTYPE_F32, .shape = {.rank = 2, .dims = {M, K}}};
  struct lb_value *a = lb_value_new(g, "x", at);
  lb_graph_add_input(g, a);
  bool lowbit = kind && kind[0] == '4'; /* "4dynamic" / "4none": the low-bit kernels */
  struct lb_value *w = NULL, *x0 = a;
  struct lb_node *n = NULL;
  for (int l = 0; l < g_layers; l++) {
    if (!kind) {
      struct lb_type bt = {.dtype = LB_DTYPE_F32, .shape = {.rank = 2, .dims = {K, N}}};
      float *wf = malloc(sizeof *wf * (size_t)(K * N));
      for (int64_t i = 0; i < K * N; i++) wf[i] = (float)((i * 7919 + l) % 255 - 127) * 0.01f / (float)K;
      w = lb_graph_add_const(g, "w", &bt, wf)->outputs[0];
      free(wf);
    } else {
      struct lb_type bt = {.dtype = LB_DTYPE_I8, .shape = {.rank = 2, .dims = {K, N}}};
      int8_t *wq = malloc((size_t)(K * N));
      int span = lowbit ? 1 << g_bits : 255, lo = lowbit ? -(1 << (g_bits - 1)) : -127;
      for (int64_t i = 0; i < K * N; i++) wq[i] = (int8_t)((i * 7919 + l) % span + lo);
      w = lb_graph_add_const(g, "w", &bt, wq)->outputs[0];
      w->qparams = lowbit ? qp_lowbit(g, K, N) : qp(g, N, 0.01f);
      free(wq);
      if (!strcmp(kind, "static")) x0->qparams = qp(g, 1, 1.0f / 127);
    }
    struct lb_value *ins[2] = {x0, w};
    n = lb_graph_add_node(g, kind ? LB_OP_QMATMUL : LB_OP_MATMUL, "mm", ins, 2, NULL, 1);
    if (kind) lb_node_set_attr_string(g, n, "a_quant", lowbit ? kind + 1 : kind);
    struct lb_diag di;
    lb_diag_init(&di, "bench");
    if (lb_infer_node(g, n, &di) != LB_OK) {
      fprintf(stderr, "%s\n", di.text);
      exit(1);
    }
    lb_diag_free(&di);
    if (l + 1 < g_layers) x0 = n->outputs[0];
  }
  struct lb_diag d;
  lb_diag_init(&d, "bench");
  lb_graph_add_output(g, n->outputs[0]);
  /* intermediates of chained layers in the activation arena (as plan-memory would) */
  int64_t off = 0;
  for (int32_t i = 0; i < g->n_nodes; i++)
    if (g->nodes[i]->op != LB_OP_CONST && g->nodes[i]->outputs[0] != n->outputs[0]) {
      g->nodes[i]->outputs[0]->mem_offset = off;
      off += (lb_type_nbytes(&g->nodes[i]->outputs[0]->type) + 63) / 64 * 64;
    }
  g->activations_size = off;
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
  void *act = aligned_alloc(64, (size_t)(lb_jit_activations_size(j) + 64) / 64 * 64 + 64);
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
  /* relative error of the last row (of the single layer) against the evaluator */
  const void *nin[2] = {x, lb_value_const_data(g, w)};
  if (g_layers > 1) {
    *err = 0;
    goto done;
  }
  float *ref = aligned_alloc(64, sizeof *ref * (size_t)(M * N + 16));
  lb_eval_node(g, n, nin, (void *[]){ref}, &d);
  double e = 0, r = 0;
  for (int64_t i = (M - 1) * N; i < M * N; i++) e += (y[i] - ref[i]) * (double)(y[i] - ref[i]), r += ref[i] * (double)ref[i];
  *err = r > 0 ? e / r : e;
  free(ref);
done:
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
  const char *features = argc > 5 && argv[5][0] ? argv[5] : NULL;
  if (argc > 7) g_bits = atoi(argv[6]), g_group = atoi(argv[7]);
  if (argc > 8) g_layers = atoi(argv[8]);
  if (g_layers > 1 && K != N) {
    fprintf(stderr, "layers > 1 needs K = N\n");
    return 2;
  }
  lbrt_threads_init(threads);
  lb_jit_set_parallel_for((lb_jit_parallel_for_fn)lbrt_parallel_for);
  double flops = 2.0 * (double)M * (double)N * (double)K * g_layers, err;
  double tf = bench(M, K, N, NULL, features, &err);
  printf("M=%lld K=%lld N=%lld layers=%d threads=%d%s%s\n", (long long)M, (long long)K, (long long)N, g_layers,
         threads, features ? " features=" : "", features ? features : "");
  printf("  f32           %8.3f ms %7.1f GFLOP/s  %6.1f GB/s of weights\n", tf * 1e3, flops / tf * 1e-9,
         4.0 * (double)K * (double)N * g_layers / tf * 1e-9);
  static const char *const kinds[] = {"static", "dynamic", "none"};
  for (int k = 0; k < 3; k++) {
    double tq = bench(M, K, N, kinds[k], features, &err);
    printf("  int8 %-8s %8.3f ms %7.1f GFLOP/s  x%.2f vs f32  (rel. sq. err vs evaluator %.1e)\n", kinds[k],
           tq * 1e3, flops / tq * 1e-9, tf / tq, err);
  }
  if (g_bits < 8 || g_group > 0) {
    /* the packed stream: codes + f16 scales */
    int cbits = g_bits;
    double ng = g_group ? (double)((K + g_group - 1) / g_group) : 1;
    double bytes = ((double)K * (double)N * cbits / 8 + ng * (double)N * 2) * g_layers;
    static const char *const lk[] = {"4dynamic", "4none"};
    for (int k = 0; k < 2; k++) {
      double tq = bench(M, K, N, lk[k], features, &err);
      printf("  %d-bit g%-4d %-8s %8.3f ms %7.1f GFLOP/s  x%.2f vs f32  %6.1f GB/s of weights  (rel. sq. err %.1e)\n",
             g_bits, g_group, lk[k] + 1, tq * 1e3, flops / tq * 1e-9, tf / tq, bytes / tq * 1e-9, err);
    }
  }
  return 0;
}
