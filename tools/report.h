/* report.h: the mixed-precision report (tools/report.c), shown by
 * `lowbit analyze --html FILE` and on the terminal: what each weight layer
 * costs at each candidate precision (bytes, measured sensitivity), the plan
 * chosen under the budget, the estimated error against bits per weight along
 * the greedy path, and how far the chosen model is from float after each layer
 * on the calibration samples.
 *
 * The structs are read-only views; whoever fills them owns the memory
 * (tools/mixed.c fills everything but sqnr_db/max_abs and model_error, which
 * analyze measures on the chosen model). */
#ifndef LB_TOOLS_REPORT_H
#define LB_TOOLS_REPORT_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "ir/ir.h"

struct lb_report_layer {
  const char *value;    /* the layer's output value (its name in plans) */
  const char *node;     /* its node name */
  int64_t k, n;         /* weight shape K x N */
  const double *error;  /* [n_cands]: the metric's increase with this layer alone at cands[c]
                           (error[0], f32, is 0); NAN: the layer cannot take cands[c] or it
                           was not measured */
  const int64_t *bytes; /* [n_cands]: weight bytes at cands[c], scales and zero points counted;
                           0 when the layer cannot take it */
  int32_t choice;       /* the plan's candidate, -1 when there is no plan */
  bool fixed;           /* the choice came from --keep-float or a plan file, not the budget */
  double sqnr_db;       /* the layer's output in the chosen model against the float model over
                           the samples: 10 log10(sum x_f^2 / sum (x_f - x_q)^2); NAN: not
                           measured; INFINITY: identical */
  double max_abs;       /* max |x_f - x_q| of the same; NAN: not measured */
};

/* One point of a size/error trade-off. */
struct lb_report_point {
  double bits_per_weight; /* total weight bits / total weights of the layers */
  double error;           /* summed single-layer errors (the additive estimate) */
};

struct lb_report {
  const char *model;       /* the input file */
  const char *metric;      /* "kl" or "mse" */
  const char *weight_algo; /* "rtn" or "gptq" */
  int64_t samples;         /* calibration samples measured on */
  const char *const *cands;/* [n_cands] precision labels; cands[0] is "f32" */
  int32_t n_cands;
  const struct lb_report_layer *layers; /* [n_layers] in graph order */
  int32_t n_layers;
  const char *budget;      /* e.g. "--target-bpw 3.5"; NULL: no budget, no plan */
  double budget_bpw;       /* the size budget as bits per weight (the chart's budget line); 0: none */
  double budget_loss;      /* --max-loss (the chart's loss line); 0: none */
  const struct lb_report_point *curve;  /* [n_curve] the greedy path, cheapest first */
  int32_t n_curve;
  const struct lb_report_point *uniform;/* [n_cands] every layer at cands[c]; error NAN
                                           when some layer cannot take cands[c] */
  double model_error;      /* the chosen model's metric against float at the outputs,
                              measured on the samples; NAN: not measured */
  double seconds;          /* wall time of the analysis */
};

/* The report as text: one table of layers x candidates (error, bytes), the
 * chosen precision of each layer, the totals and the budget; plain ASCII,
 * at most 120 columns wide whatever the names. */
void lb_report_text(FILE *f, const struct lb_report *r);

/* The report as one self-contained HTML page (no network access: styles,
 * data and chart code inline), written atomically to path. */
enum lb_status lb_report_html(const char *path, const struct lb_report *r, struct lb_diag *d);

#endif
