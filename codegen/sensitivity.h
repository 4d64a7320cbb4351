/* sensitivity.h: layer sensitivity (codegen/sensitivity.c), the core of
 * `lowbit analyze` and the input of mixed-precision selection.
 *
 * For every weight layer and every candidate precision: the error at the
 * model's outputs on the calibration samples when that layer ALONE is
 * quantized (all others float), and the bytes the layer takes at that
 * precision.
 *
 * A candidate is given as a fully quantized copy of the float graph (every
 * layer quantized by whatever algorithm: the quantize pass for RTN, gptq, ...).
 * Per candidate, one model is compiled that holds each layer twice, float and
 * quantized with the candidate's codes (lb_quant_rewrite), with a bool input
 * per layer selecting which one the rest of the model reads; a trial runs the
 * samples with one selector set. The outputs are bit for bit those of the
 * float model with that one layer quantized, so any weight algorithm that
 * quantizes layers independently of each other (RTN, GPTQ on Hessians of the
 * float model) gives exactly its single-layer numbers. The float outputs are
 * computed once per sample and kept. Cost: one JIT compile per candidate plus
 * one run of the samples per (layer, candidate). */
#ifndef LB_CODEGEN_SENSITIVITY_H
#define LB_CODEGEN_SENSITIVITY_H

#include "codegen/codegen.h"

enum lb_sens_metric {
  LB_SENS_MSE, /* mean over all elements of the (f32) outputs of (y_f - y_q)^2 */
  LB_SENS_KL,  /* mean over rows (last dim) of KL(softmax(y_f) || softmax(y_q)), nats */
  LB_SENS_METRIC_COUNT
};
/* "mse", "kl" */
const char *lb_sens_metric_name(enum lb_sens_metric m);
/* KL(softmax(f) || softmax(q)) of one row of n logits, in nats, through
 * log-softmax (never below 0: rounding can leave -1e-17 for equal rows). */
double lb_sens_row_kl(const float *f, const float *q, int64_t n);
bool lb_sens_metric_parse(const char *s, enum lb_sens_metric *out);

struct lb_sens_candidate {
  const char *label;              /* e.g. "w4 g32", for messages and tables */
  const struct lb_graph *quant_g; /* the float graph with its layers quantized (qmatmul, same value names) */
};

struct lb_sens_options {
  const struct lb_codegen_options *cg; /* cpu/features/opt for the JIT; may be NULL */
  const char *calib_dir;               /* samples (codegen/calibrate.h layout) */
  enum lb_sens_metric metric;
  bool whole_model; /* also measure each candidate with all its layers quantized at once */
  /* called with done = 0 (what = "float reference") before the float run, then
   * after each (layer, candidate) trial with its label ("<value> w4 g32") and
   * time; may be NULL */
  void (*progress)(void *ctx, int64_t done, int64_t total, const char *what, double ms);
  void *progress_ctx;
};

/* The error of one trial, accumulated over all samples and all f32 outputs. */
struct lb_sens_error {
  double error;   /* the metric; NaN when an output was NaN */
  double rel_rms; /* sqrt(sum (y_f - y_q)^2 / sum y_f^2) */
};

struct lb_sens_cell {
  bool present;  /* the candidate quantized this layer (else the fields are 0) */
  int32_t bits;  /* of the weight codes (16: f16 weights) */
  int64_t group; /* 0: per column */
  bool asym;
  int64_t bytes; /* the layer's weight at this precision: lb_sens_weight_bytes */
  struct lb_sens_error err;
};

struct lb_sens_layer {
  char *value, *node; /* output value and node name in the float graph */
  int64_t k, n;       /* weight [K,N] */
  int64_t float_bytes;
};

struct lb_sens_table {
  enum lb_sens_metric metric;
  int64_t samples;
  int32_t n_layers, n_candidates;
  struct lb_sens_layer *layers; /* graph order: every layer some candidate quantized */
  struct lb_sens_cell *cells;   /* [layer * n_candidates + candidate] */
  struct lb_sens_error *whole;  /* [candidate], when whole_model; else NULL */
  double trial_ms;              /* mean time of one trial (compile + runs) */
};
void lb_sens_table_free(struct lb_sens_table *t);
static inline const struct lb_sens_cell *lb_sens_cell_at(const struct lb_sens_table *t, int32_t layer,
                                                         int32_t candidate) {
  return &t->cells[(int64_t)layer * t->n_candidates + candidate];
}

/* Bytes of a quantized weight [K,N] in the executable, without padding: packed
 * codes ceil(K*N*bits/8), plus per scale 2 bytes (f16) for bits < 8 or 4 (f32)
 * for 8 bits, plus 1 byte per zero point. q NULL: an f16 weight (qmatmul's
 * weights without qparams), 2*K*N. */
int64_t lb_sens_weight_bytes(const struct lb_qparams *q, int64_t k, int64_t n);

/* Quantizes layer `value` of g (a float matmul-family node with that output)
 * exactly as candidate graph cand did (its qmatmul's codes, qparams and
 * a_quant), leaving every other layer of g as it is. Grafting each layer from
 * the candidate chosen for it builds a mixed-precision graph. The layer's
 * old float weight may become unused: run dce. */
enum lb_status lb_sens_graft(struct lb_graph *g, const struct lb_graph *cand, const char *value, struct lb_diag *d);

/* Measures every (layer, candidate). float_g and the candidates have been
 * through the same passes but not plan-memory; none is modified. Layers are the
 * qmatmul nodes of the candidates, matched to the float graph's matmul-family
 * node of the same output name (an error if there is none). The model outputs
 * compared are the f32 ones (an error if there are none; with KL their last
 * dimension must be >= 2). */
enum lb_status lb_sensitivity(const struct lb_graph *float_g, const struct lb_sens_candidate *cands,
                              int32_t n_cands, const struct lb_sens_options *o, struct lb_sens_table *out,
                              struct lb_diag *d);

#endif
