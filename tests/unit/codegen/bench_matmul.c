/* bench_matmul.c: GFLOP/s of a generated f32 matmul y[M,N] = x[M,K] * W[K,N] with W
 * constant (packed at compile time) or an input.
 *   bench_matmul M K N [threads=1] [iters=auto] [const=1]
 */
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

int main(int argc, char **argv) {
  if (argc < 4) {
    fprintf(stderr, "usage: bench_matmul M K N [threads] [iters] [const]\n");
    return 2;
  }
  int64_t M = atoll(argv[1]), K = atoll(argv[2]), N = atoll(argv[3]);
  int threads = argc > 4 ? atoi(argv[4]) : 1;
  int iters = argc > 5 ? atoi(argv[5]) : 0;
  int bconst = argc > 6 ? atoi(argv[6]) : 1;
  lbrt_threads_init(threads);
  lb_jit_set_parallel_for((lb_jit_parallel_for_fn)lbrt_parallel_for);
  struct lb_graph *g = lb_graph_new("bench");
  struct lb_type at = {.dtype = LB_DTYPE_F32, .shape = {.rank = 2, .dims = {M, K}}};
  struct lb_type bt = {.dtype = LB_DTYPE_F32, .shape = {.rank = 2, .dims = {K, N}}};
  struct lb_type ot = {.dtype = LB_DTYPE_F32, .shape = {.rank = 2, .dims = {M, N}}};
  struct lb_value *a = lb_value_new(g, "x", at);
  lb_graph_add_input(g, a);
  float *w = malloc(sizeof *w * (size_t)(K * N));
  for (int64_t i = 0; i < K * N; i++) w[i] = (float)((i * 7919) % 1000) / 1000.0f - 0.5f;
  struct lb_value *b;
  if (bconst) {
    b = lb_graph_add_const(g, "w", &bt, w)->outputs[0];
  } else {
    b = lb_value_new(g, "w", bt);
    lb_graph_add_input(g, b);
  }
  struct lb_value *ins[2] = {a, b};
  struct lb_node *n = lb_graph_add_node(g, LB_OP_MATMUL, "mm", ins, 2, NULL, 1);
  n->outputs[0]->type = ot;
  lb_graph_add_output(g, n->outputs[0]);
  struct lb_diag d;
  lb_diag_init(&d, "bench");
  struct lb_jit *j;
  struct lb_codegen_options o = {.opt_level = 3, .model_name = "bench"};
  double t0 = now();
  if (lb_jit_compile(g, &o, &j, &d) != LB_OK) {
    fprintf(stderr, "%s\n", d.text);
    return 1;
  }
  double tc = now() - t0;
  float *x = aligned_alloc(64, sizeof *x * (size_t)(M * K + 16));
  float *y = aligned_alloc(64, sizeof *y * (size_t)(M * N + 16));
  for (int64_t i = 0; i < M * K; i++) x[i] = (float)(i % 13) / 13.0f;
  const void *in[2] = {x, w};
  void *out[1] = {y};
  void *act = aligned_alloc(64, 64);
  lb_jit_run(j, in, out, act);
  double flops = 2.0 * (double)M * (double)N * (double)K;
  if (iters <= 0) {
    double t = now();
    lb_jit_run(j, in, out, act);
    double dt = now() - t;
    iters = (int)(1.0 / (dt > 1e-7 ? dt : 1e-7));
    if (iters < 3) iters = 3;
    if (iters > 100000) iters = 100000;
  }
  double best = 1e30, total = 0;
  for (int it = 0; it < iters; it++) {
    double t = now();
    lb_jit_run(j, in, out, act);
    double dt = now() - t;
    total += dt;
    if (dt < best) best = dt;
  }
  /* check one output element */
  double ref = 0;
  for (int64_t k = 0; k < K; k++) ref += (double)x[(M - 1) * K + k] * w[k * N + N - 1];
  printf("M=%lld K=%lld N=%lld threads=%d B=%s: best %.3f ms (%.1f GFLOP/s), mean %.3f ms (%.1f GFLOP/s), "
         "weights %.1f GB/s, compile %.2f s, check %.4g vs %.4g\n",
         (long long)M, (long long)K, (long long)N, threads, bconst ? "const" : "input", best * 1e3,
         flops / best * 1e-9, total / iters * 1e3, flops / (total / iters) * 1e-9,
         (double)K * (double)N * 4 / best * 1e-9, tc, y[M * N - 1], ref);
  lb_jit_free(j);
  lb_graph_free(g);
  free(w);
  return 0;
}
