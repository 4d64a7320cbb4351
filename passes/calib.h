/* calib.h: calibration statistics, range selection and the calibration file
 * (passes/calib.c, passes/calib_json.c). Pure C on top of ir/: the runner that
 * produces the statistics by running JIT-compiled code is codegen/calibrate.c.
 *
 * Per observed value the statistics are bounded in size whatever the number of
 * samples: running min/max, the absolute maximum of each channel (last dim),
 * and a histogram of |x| with LB_CALIB_BINS bins over [0, hist_max). When a
 * batch exceeds hist_max the range doubles (as often as needed) and adjacent
 * bin pairs merge, so earlier counts stay exact at the coarser width (the
 * rebinning TensorRT's and onnxruntime's histogram calibrators do).
 */
#ifndef LB_PASSES_CALIB_H
#define LB_PASSES_CALIB_H

#include "ir/ir.h"

#define LB_CALIB_BINS 2048
#define LB_CALIB_KL_QBINS 128 /* quantized bins of the KL search (int8, TensorRT) */

/* "rows" keeps a uniform sample (reservoir sampling, algorithm R with a
 * fixed seed: deterministic) of at most LB_CALIB_MAX_ROWS rows (one row = the
 * last dim) of the value, rows with a non-finite element skipped: what AWQ's
 * scale search evaluates a layer's output error on. */
#define LB_CALIB_MAX_ROWS 512

enum lb_calib_kind {
  LB_CALIB_MINMAX = 1,
  LB_CALIB_ABSMAX_CHANNEL = 2,
  LB_CALIB_HIST = 4,
  LB_CALIB_ABSMEAN_CHANNEL = 8, /* "absmean_channel": per channel mean |x| (AWQ) */
  LB_CALIB_ROWS = 16,           /* "rows": a bounded sample of rows (AWQ) */
  LB_CALIB_HESSIAN = 32,        /* "hessian": sum of x x^T over rows (GPTQ) */
};

struct lb_calib_stat {
  const char *name;     /* heap copy */
  int32_t kinds;        /* LB_CALIB_* */
  struct lb_type type;
  int64_t count;        /* finite elements seen */
  int64_t nonfinite;    /* NaN/inf elements seen (ignored by every statistic) */
  double min, max;      /* valid when count > 0 */
  int64_t n_channels;   /* last dim (1 for scalars); absmax has n_channels entries */
  float *absmax;        /* heap; NULL unless LB_CALIB_ABSMAX_CHANNEL */
  double hist_max;      /* histogram range [0, hist_max); 0 until a non-zero |x| is seen */
  uint64_t *hist;       /* heap, LB_CALIB_BINS; NULL unless LB_CALIB_HIST */
  double *abssum;       /* heap, n_channels: sum of |x| over the finite elements of
                           each channel; NULL unless LB_CALIB_ABSMEAN_CHANNEL */
  int64_t *abscount;    /* heap, n_channels: the finite elements abssum adds */
  float *rows;          /* heap, LB_CALIB_MAX_ROWS x n_channels; NULL unless LB_CALIB_ROWS */
  int64_t n_rows;       /* rows held (<= LB_CALIB_MAX_ROWS) */
  int64_t rows_seen;    /* finite rows offered to the reservoir */
  uint64_t rng;         /* reservoir state */
  /* "hessian": xtx[i * n_channels + j] = sum over the rows x (the last dim) of
   * x_i x_j, in double, both triangles; hessian_rows counts the rows (rows
   * with a non-finite element are skipped). GPTQ's H = 2 xtx / hessian_rows.
   * n_channels^2 doubles per observed value: 8 MB at K = 1024, so only the
   * inputs of the layers GPTQ quantizes should ask for it. */
  double *xtx;
  int64_t hessian_rows;
};

/* kinds from an observe node's `stats` attribute; 0 if it names none */
int32_t lb_calib_kinds_from_node(const struct lb_node *n);
void lb_calib_stat_init(struct lb_calib_stat *s, const char *name, int32_t kinds,
                        const struct lb_type *t);
void lb_calib_stat_free(struct lb_calib_stat *s);
/* Adds one sample of the value: n elements, row-major with the last dim as
 * the channel (n must be a multiple of n_channels). */
void lb_calib_stat_add(struct lb_calib_stat *s, const float *x, int64_t n);
/* Mean |x| of channel c (0 when it saw nothing); needs abssum. */
double lb_calib_stat_absmean(const struct lb_calib_stat *s, int64_t c);

/* ---- range selection ------------------------------------------------------- */
enum lb_calib_method_kind { LB_CALIB_M_MINMAX, LB_CALIB_M_PERCENTILE, LB_CALIB_M_KL, LB_CALIB_M_MSE };
struct lb_calib_method {
  enum lb_calib_method_kind kind;
  double percentile; /* PERCENTILE: in (0, 100] */
};
/* "minmax" | "percentile:P" | "kl" | "mse"; false with a message in err. */
bool lb_calib_method_parse(const char *s, struct lb_calib_method *m, char *err, size_t errlen);
/* Writes the canonical spelling ("percentile:99.99"). */
void lb_calib_method_format(const struct lb_calib_method *m, char *buf, size_t len);

/* Thresholds on a histogram of |x| with nbins bins of width `width`.
 * percentile: the upper edge of the first bin where the cumulative count
 *   reaches p% of the total.
 * kl: TensorRT's entropy calibration: for every i in [qbins, nbins] the
 *   distribution P = bins[0..i) with the outliers added to bin i-1 is compared
 *   with Q = bins[0..i) merged into qbins groups (i/qbins bins each, the last
 *   group takes the remainder) and spread back evenly over the bins where P is
 *   non-zero; both are smoothed (eps 1e-4, as MXNet/TVM) and KL(P||Q) computed;
 *   the threshold is i*width for the i of least divergence (the first on ties).
 * mse: the threshold T = k*width (k = 1..nbins) minimizing the expected squared
 *   error of quantizing with `levels` steps over [0, T]: values (bin centers)
 *   beyond T cost (c-T)^2, values inside cost step^2/12 (step = T/levels).
 * All return 0 for an empty histogram. */
double lb_hist_percentile(const uint64_t *hist, int32_t nbins, double width, double p);
double lb_hist_kl_threshold(const uint64_t *hist, int32_t nbins, double width, int32_t qbins);
double lb_hist_mse_threshold(const uint64_t *hist, int32_t nbins, double width, int32_t levels);

/* Quantization scheme of the activations (per tensor, 8 bits). */
enum lb_calib_scheme {
  LB_CALIB_INT8_SYM,  /* int8, symmetric: range [-127, 127], zero point 0 */
  LB_CALIB_UINT8_ASYM /* uint8, asymmetric: range [0, 255], zero point from the range */
};
/* Scale and zero point for the real range [lo, hi] (widened to include 0), as
 * onnxruntime's compute_scale_zp: symmetric uses max(|lo|, |hi|) on both
 * sides; scale = (hi - lo) / (qmax - qmin), zp = round_half_even(qmin - lo /
 * scale) saturated (the scale is computed in double, then stored as f32); a
 * zero-width range (all zeros) gives scale 1 and zero point 0. Signed
 * symmetric uses [-127, 127], signed asymmetric [-128, 127], unsigned [0, 255]. */
void lb_calib_qparams(double lo, double hi, bool is_signed, bool symmetric, float *scale,
                      int32_t *zero_point);
/* The clip range [lo, hi] the method picks for s: minmax uses min/max; the
 * histogram methods pick a threshold T on |x| and clip to [max(min, -T),
 * min(max, T)]. Values without a histogram fall back to min/max. */
void lb_calib_select_range(const struct lb_calib_stat *s, const struct lb_calib_method *m,
                           enum lb_calib_scheme scheme, double *lo, double *hi);

/* ---- the calibration file (passes/calib_json.c) ---------------------------- */
struct lb_calib_file_info {
  const char *model;  /* graph name */
  int64_t samples;
  struct lb_calib_method method;
  enum lb_calib_scheme scheme;
};
/* Writes the statistics, the chosen ranges and scales as JSON (atomically:
 * temporary file + rename). */
enum lb_status lb_calib_write_json(const char *path, const struct lb_calib_stat *stats, int32_t n,
                                   const struct lb_calib_file_info *info, struct lb_diag *d);
/* Attaches the qparams the method picks for each statistic to the value of g
 * of the same name (what --load-calib of the written file would attach). */
enum lb_status lb_calib_attach(struct lb_graph *g, const struct lb_calib_stat *stats, int32_t n,
                               const struct lb_calib_file_info *info, struct lb_diag *d);
/* Parses a calibration file, validates it and attaches per-tensor qparams
 * (8 bits, the file's scale and zero point) to the values of g it names.
 * Every value in the file must exist in g with an f32 type. *n_attached may
 * be NULL. */
enum lb_status lb_calib_load_json(struct lb_graph *g, const char *path, int32_t *n_attached,
                                  struct lb_diag *d);
/* Same on a buffer (for tests); `path` is only used in messages. */
enum lb_status lb_calib_load_json_text(struct lb_graph *g, const char *text, size_t len,
                                       const char *path, int32_t *n_attached, struct lb_diag *d);
/* Reads the statistics of a calibration file back (what smoothquant and
 * split-outliers need without running the model: lowbit-opt --load-stats):
 * per value its type, count, min/max and, when present, the per-channel
 * absmax, the per-channel mean |x| ("absmean_channel", as a sum over one
 * element) and the row sample ("rows": {"n", "seen", "data"}) (the file keeps
 * only a summary of the histogram, which is not restored). Validates the schema; *out is a heap
 * array of *n statistics: free each with lb_calib_stat_free, then the array. */
enum lb_status lb_calib_read_stats_json(const char *path, struct lb_calib_stat **out, int32_t *n,
                                        struct lb_diag *d);
enum lb_status lb_calib_read_stats_json_text(const char *text, size_t len, const char *path,
                                             struct lb_calib_stat **out, int32_t *n,
                                             struct lb_diag *d);

#endif
