/* quant_report.h: the `--quant-report` Markdown report (codegen/quant_report.c).
 *
 * Runs the float graph and its quantized version side by side on the calibration
 * samples (both JIT-compiled in-process, one sample at a time) and measures how far
 * every quantized layer's output is from the float model's. */
#ifndef LB_CODEGEN_QUANT_REPORT_H
#define LB_CODEGEN_QUANT_REPORT_H

#include "codegen/codegen.h"
#include "codegen/sensitivity.h"

struct lb_quant_report_options {
  const struct lb_codegen_options *cg; /* cpu/features/opt for the JIT; may be NULL */
  const char *calib_dir;               /* samples, same layout as --calib (codegen/calibrate.h) */
  /* called once with done = 0, then after each sample; may be NULL */
  void (*progress)(void *ctx, int64_t done, int64_t total);
  void *progress_ctx;
};

/* Writes a Markdown report to path (atomically). One row per quantized layer: every
 * qmatmul of quant_g, matched to the value of the same name in float_g. A row shows
 * the scheme (a_quant, weight bits, per-channel or per-tensor), the activation range
 * and scale/zero point, the weight scale range over channels, and the error of the
 * layer's output against the float model over all samples:
 *   SQNR dB = 10 log10(sum x_f^2 / sum (x_f - x_q)^2), and max |x_f - x_q|,
 * where x_q is the quantized model's value (dequantized if it is stored as int8).
 * Rows are sorted worst (lowest SQNR) first. The header gives the model, the schemes,
 * the sample count and the SQNR of each model output.
 *
 * Both graphs have been through the passes but not plan-memory; neither is modified
 * (the report works on copies). Memory: one sample's tensors and both models' arenas. */
enum lb_status lb_quant_report(const struct lb_graph *float_g, const struct lb_graph *quant_g,
                               const struct lb_quant_report_options *o, const char *path, struct lb_diag *d);

/* The error of one value of the quantized model against the float model's
 * value of the same name over all samples: SQNR dB as above (NAN when a NaN
 * was seen, +INFINITY for an exact match) and max |x_f - x_q|. */
struct lb_quant_error {
  double sqnr_db, max_abs;
};

struct lb_quant_comparison {
  struct lb_quant_error *values; /* [n_values], the caller's array, filled */
  double output_metric;          /* the metric of the f32 model outputs (NAN when a NaN was seen) */
  int64_t samples;
};

/* The numbers behind the report, for any values: runs both graphs side by side
 * on the samples (as lb_quant_report) and measures each named value (a name in
 * both graphs; f32, or 8-bit with per-tensor qparams) and, over the f32 model
 * outputs, the metric as codegen/sensitivity.h defines it: mse, the mean of
 * (y_f - y_q)^2 over elements, or kl, the mean over rows of the last dimension
 * of KL(softmax(y_f) || softmax(y_q)) (outputs whose last dimension is 1 count
 * as mse). Neither graph is modified. */
enum lb_status lb_quant_compare(const struct lb_graph *float_g, const struct lb_graph *quant_g,
                                const char *const *values, int32_t n_values, enum lb_sens_metric metric,
                                const struct lb_quant_report_options *o, struct lb_quant_comparison *out,
                                struct lb_diag *d);

#endif
