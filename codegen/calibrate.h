/* calibrate.h: the calibration runner (codegen/calibrate.c).
 *
 * Layering: the statistics and range selection are pure C in passes/calib.{h,c}
 * (depends on ir only); the runner lives here because it JIT-compiles the
 * instrumented graph (codegen/jit.c) and reads sample tensors with the
 * runtime's readers (runtime/tensor*.c, linked into the compiler as lb_rt_tensor).
 */
#ifndef LB_CODEGEN_CALIBRATE_H
#define LB_CODEGEN_CALIBRATE_H

#include "codegen/codegen.h"
#include "passes/calib.h"

struct lb_calib_result {
  struct lb_calib_stat *stats; /* one per observer, in graph order */
  int32_t n_stats;
  int64_t samples;
};
void lb_calib_result_free(struct lb_calib_result *r);

struct lb_calib_run_options {
  const struct lb_codegen_options *cg; /* cpu/features/opt_level for the JIT; may be NULL */
  /* called after each sample (done = 1..total) and once before the first with
   * done = 0; may be NULL */
  void (*progress)(void *ctx, int64_t done, int64_t total);
  void *progress_ctx;
  /* LB_CALIB_* kinds recorded in addition on every observer that asks for
   * per-channel absmax (the activation operands of the linear layers): e.g.
   * LB_CALIB_ABSMEAN_CHANNEL | LB_CALIB_ROWS for awq. 0 = none. */
  int32_t operand_kinds;
  /* NULL-terminated names of the operands that get operand_kinds (others keep
   * only what their observer asks for); NULL = all. Bounds gptq's Hessians. */
  const char *const *operand_names;
};

/* Runs g (which holds observe nodes, from the insert-observers pass; not yet
 * memory-planned) on every sample under `dir` and accumulates the statistics
 * each observer asks for. g is consumed: observers are replaced by extra graph
 * outputs and its memory is planned; free it afterwards.
 *
 * Samples: every subdirectory of dir (sorted by name) is one sample holding,
 * for each graph input k, `input_K.pb` (ONNX test-data layout) or
 * `<input name>.npy`. Each tensor must have exactly the input's dtype and shape. */
enum lb_status lb_calibrate(struct lb_graph *g, const char *dir, const struct lb_calib_run_options *o,
                            struct lb_calib_result *out, struct lb_diag *d);

/* ---- pieces of the runner, shared with the quantization report (codegen/quant_report.c) */
struct lbrt_tensor; /* runtime/lbrt.h */
/* The sample subdirectories of dir, sorted by name; an error when there are none.
 * Free with lb_calib_samples_free. */
enum lb_status lb_calib_list_samples(const char *dir, char ***names, int64_t *n, struct lb_diag *d);
void lb_calib_samples_free(char **names, int64_t n);
/* Reads graph input k (value `in`) of the sample in directory sdir into *t (free it
 * with lbrt_tensor_free), checking it has exactly the input's dtype and shape. */
enum lb_status lb_calib_read_input(const char *sdir, int32_t k, const struct lb_value *in, struct lbrt_tensor *t,
                                   struct lb_diag *d);
/* Makes v readable after a run: its graph output index (>= 0; made an extra
 * output if it is not one yet), or -1 - k when v is graph input k. */
int32_t lb_calib_expose_value(struct lb_graph *g, struct lb_value *v);

#endif
