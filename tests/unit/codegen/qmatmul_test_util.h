/* qmatmul_test_util.h: what the qmatmul kernel tests (test_qmatmul*.c) share:
 * the integer kernels' x86 targets, building the one qmatmul node, and compiling
 * it for a target, running it and running the reference evaluator on the same
 * data. */
#ifndef LB_QMATMUL_TEST_UTIL_H
#define LB_QMATMUL_TEST_UTIL_H

#include <stdbool.h>
#include <stdint.h>

#include "codegen/codegen.h"
#include "ir/ir.h"

/* A target the host can run: NULL cpu is the host's, features are LLVM's +x,-y. */
struct qmm_target {
  const char *name, *cpu, *features;
};

/* The integer kernels' families: vpdpbusd zmm / ymm, vpmaddwd zmm / ymm / xmm. */
extern const struct qmm_target qmm_int_targets[];
enum { QMM_N_INT_TARGETS = 5 };

/* A parallel_for that runs the range in chunks growing from the grain, so a
 * task starts in the middle of the kernel's own chunks. */
void qmm_chunked_parallel_for(lb_jit_task_fn fn, void *ctx, int64_t n, int64_t grain);

/* Calls run_case(&cases[i], &targets[t]) for every case of the array cases on
 * every step-th of the n_targets targets. */
#define QMM_RUN_CASES(run_case, cases, targets, n_targets, step)                  \
  for (int qmm_t_ = 0; qmm_t_ < (n_targets); qmm_t_ += (step))                    \
    for (size_t qmm_i_ = 0; qmm_i_ < sizeof(cases) / sizeof((cases)[0]); qmm_i_++) \
      run_case(&(cases)[qmm_i_], &(targets)[qmm_t_])

/* Quantization parameters in g's arena: n scales and, when zps is not NULL, n
 * zero points (asymmetric). */
struct lb_qparams *qmm_qparams(struct lb_graph *g, int bits, int32_t axis, int32_t group, const float *scales,
                               int64_t n, const int32_t *zps, bool is_unsigned);

/* Activations whose integer results the epilogue reproduces exactly (none, relu). */
bool qmm_exact_act(const char *act);

/* A float-weight output matches the reference: NaN where it is NaN, the same
 * infinity where it is infinite, else within tol. */
bool qmm_float_match(double got, double want, double tol);

/* Adds qmm = qmatmul(a, w[, bias]) {a_quant, act}; the caller sets the output
 * type and calls finish(). */
struct lb_node *qmm_add_node(struct lb_graph *g, struct lb_value *a, struct lb_value *w, struct lb_value *bias,
                             const char *a_quant, const char *act);

/* Expects g to fail verification with a message holding frag. */
void qmm_expect_verify_error(struct lb_graph *g, const char *frag);

/* The kernel's output y and the reference evaluator's ref, each of node n's
 * output type (xalloc'd). */
struct qmm_outputs {
  void *y, *ref;
};

/* Verifies g, plans it, JIT-compiles it for t, runs it on a and bias (the
 * graph's inputs in that order; bias unused without one) and evaluates n (the
 * qmatmul, its weight a const) on the same data. */
struct qmm_outputs qmm_run(struct lb_graph *g, struct lb_node *n, const struct qmm_target *t, const void *a,
                           const void *bias);
void qmm_outputs_free(struct qmm_outputs *r);

#endif
