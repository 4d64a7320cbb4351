/* calib.c: calibration statistics and range selection (see passes/calib.h).
 * Pure arithmetic on host memory; the numbers the unit tests check
 * (tests/unit/passes/test_calib.c) come from tests/unit/passes/calib_ref.py,
 * a numpy transcription of the same definitions. */
#include "passes/calib.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cblas.h>

static void *xcalloc(size_t n, size_t size) {
  void *p = calloc(n ? n : 1, size);
  if (!p) abort();
  return p;
}

int32_t lb_calib_kinds_from_node(const struct lb_node *n) {
  const struct lb_attr *a = lb_node_attr(n, "stats");
  if (!a || a->kind != LB_ATTR_STRINGS) return 0;
  int32_t k = 0;
  for (int64_t i = 0; i < a->n; i++) {
    if (strcmp(a->strings[i], "minmax") == 0) k |= LB_CALIB_MINMAX;
    else if (strcmp(a->strings[i], "absmax_channel") == 0) k |= LB_CALIB_ABSMAX_CHANNEL;
    else if (strcmp(a->strings[i], "hist") == 0) k |= LB_CALIB_HIST;
    else if (strcmp(a->strings[i], "absmean_channel") == 0) k |= LB_CALIB_ABSMEAN_CHANNEL;
    else if (strcmp(a->strings[i], "rows") == 0) k |= LB_CALIB_ROWS;
    else if (strcmp(a->strings[i], "hessian") == 0) k |= LB_CALIB_HESSIAN;
  }
  return k;
}

void lb_calib_stat_init(struct lb_calib_stat *s, const char *name, int32_t kinds,
                        const struct lb_type *t) {
  memset(s, 0, sizeof *s);
  s->name = strdup(name);
  if (!s->name) abort();
  s->kinds = kinds | LB_CALIB_MINMAX; /* min/max are always kept: every method needs them */
  s->type = *t;
  s->n_channels = t->shape.rank > 0 ? t->shape.dims[t->shape.rank - 1] : 1;
  if (s->n_channels <= 0) s->n_channels = 1;
  if (kinds & LB_CALIB_ABSMAX_CHANNEL) s->absmax = xcalloc((size_t)s->n_channels, sizeof *s->absmax);
  if (kinds & LB_CALIB_HIST) s->hist = xcalloc(LB_CALIB_BINS, sizeof *s->hist);
  if (kinds & LB_CALIB_ABSMEAN_CHANNEL) {
    s->abssum = xcalloc((size_t)s->n_channels, sizeof *s->abssum);
    s->abscount = xcalloc((size_t)s->n_channels, sizeof *s->abscount);
  }
  if (kinds & LB_CALIB_ROWS) s->rows = xcalloc((size_t)(LB_CALIB_MAX_ROWS * s->n_channels), sizeof *s->rows);
  if (kinds & LB_CALIB_HESSIAN) s->xtx = xcalloc((size_t)(s->n_channels * s->n_channels), sizeof *s->xtx);
  s->rng = 0x853c49e6748fea9bull;
}

void lb_calib_stat_free(struct lb_calib_stat *s) {
  free((char *)s->name);
  free(s->absmax);
  free(s->hist);
  free(s->abssum);
  free(s->abscount);
  free(s->rows);
  free(s->xtx);
  memset(s, 0, sizeof *s);
}

double lb_calib_stat_absmean(const struct lb_calib_stat *s, int64_t c) {
  return s->abscount && s->abscount[c] ? s->abssum[c] / (double)s->abscount[c] : 0;
}

/* Algorithm R: row t (0-based) of the stream replaces a uniformly chosen held
 * row with probability LB_CALIB_MAX_ROWS / (t + 1). */
static void reservoir_add(struct lb_calib_stat *s, const float *row) {
  int64_t t = s->rows_seen++, slot = t;
  if (t >= LB_CALIB_MAX_ROWS) {
    s->rng = s->rng * 6364136223846793005ull + 1442695040888963407ull;
    slot = (int64_t)((s->rng >> 11) % (uint64_t)(t + 1));
    if (slot >= LB_CALIB_MAX_ROWS) return;
  } else {
    s->n_rows++;
  }
  memcpy(s->rows + slot * s->n_channels, row, sizeof *row * (size_t)s->n_channels);
}

/* xtx += X^T X for the finite rows of x, through BLAS (dsyrk on row blocks
 * converted to double: the sum is the slow part of GPTQ's calibration). */
static void hessian_add(struct lb_calib_stat *s, const float *x, int64_t n) {
  enum { BLOCK = 64 };
  int64_t nc = s->n_channels, m = 0;
  double *a = xcalloc((size_t)(BLOCK * nc), sizeof *a);
  for (int64_t r = 0; r <= n; r += nc) {
    bool flush = m == BLOCK || r == n;
    if (flush && m) {
      cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, (int)nc, (int)m, 1.0, a, (int)nc, 1.0, s->xtx, (int)nc);
      s->hessian_rows += m;
      m = 0;
    }
    if (r == n) break;
    bool finite = true;
    for (int64_t c = 0; c < nc && finite; c++) finite = isfinite(x[r + c]);
    if (!finite) continue;
    for (int64_t c = 0; c < nc; c++) a[m * nc + c] = x[r + c];
    m++;
  }
  free(a);
  for (int64_t i = 0; i < nc; i++) /* dsyrk wrote the upper triangle */
    for (int64_t j = 0; j < i; j++) s->xtx[i * nc + j] = s->xtx[j * nc + i];
}

void lb_calib_stat_add(struct lb_calib_stat *s, const float *x, int64_t n) {
  int64_t nc = s->n_channels;
  LB_ASSERT(nc > 0 && n % nc == 0);
  if (s->xtx) hessian_add(s, x, n);
  double mn = INFINITY, mx = -INFINITY, amax = 0;
  int64_t finite = 0;
  for (int64_t r = 0; r < n; r += nc) {
    for (int64_t c = 0; c < nc; c++) {
      float v = x[r + c];
      if (!isfinite(v)) {
        s->nonfinite++;
        continue;
      }
      finite++;
      if (v < mn) mn = v;
      if (v > mx) mx = v;
      float a = fabsf(v);
      if (a > amax) amax = a;
      if (s->absmax && a > s->absmax[c]) s->absmax[c] = a;
    }
  }
  for (int64_t r = 0; (s->abssum || s->rows) && r < n; r += nc) {
    bool row_finite = true;
    for (int64_t c = 0; c < nc; c++) {
      if (!isfinite(x[r + c])) {
        row_finite = false;
        continue;
      }
      if (s->abssum) s->abssum[c] += fabsf(x[r + c]), s->abscount[c]++;
    }
    if (s->rows && row_finite) reservoir_add(s, x + r);
  }
  if (!finite) return;
  if (s->count == 0 || mn < s->min) s->min = mn;
  if (s->count == 0 || mx > s->max) s->max = mx;
  s->count += finite;
  if (!s->hist) return;
  if (amax > s->hist_max) {
    if (s->hist_max == 0) {
      s->hist_max = amax; /* earlier counts are all zeros: bin 0 at any width */
    } else {
      while (s->hist_max < amax) { /* double the range: merge bin pairs */
        for (int32_t j = 0; j < LB_CALIB_BINS / 2; j++) s->hist[j] = s->hist[2 * j] + s->hist[2 * j + 1];
        memset(s->hist + LB_CALIB_BINS / 2, 0, sizeof *s->hist * (LB_CALIB_BINS / 2));
        s->hist_max *= 2;
      }
    }
  }
  double scale = s->hist_max > 0 ? LB_CALIB_BINS / s->hist_max : 0;
  for (int64_t i = 0; i < n; i++) {
    float v = x[i];
    if (!isfinite(v)) continue;
    double b = fabs((double)v) * scale;
    int64_t idx = b >= LB_CALIB_BINS ? LB_CALIB_BINS - 1 : (int64_t)b;
    s->hist[idx]++;
  }
}

/* ---- methods ---------------------------------------------------------------- */

bool lb_calib_method_parse(const char *s, struct lb_calib_method *m, char *err, size_t errlen) {
  memset(m, 0, sizeof *m);
  if (strcmp(s, "minmax") == 0) {
    m->kind = LB_CALIB_M_MINMAX;
  } else if (strcmp(s, "kl") == 0 || strcmp(s, "entropy") == 0) {
    m->kind = LB_CALIB_M_KL;
  } else if (strcmp(s, "mse") == 0) {
    m->kind = LB_CALIB_M_MSE;
  } else if (strncmp(s, "percentile:", 11) == 0) {
    char *end;
    double p = strtod(s + 11, &end);
    if (end == s + 11 || *end || !(p > 0 && p <= 100)) {
      snprintf(err, errlen, "percentile must be a number in (0, 100]: '%s'", s);
      return false;
    }
    m->kind = LB_CALIB_M_PERCENTILE;
    m->percentile = p;
  } else {
    snprintf(err, errlen, "unknown calibration method '%s' (minmax, percentile:P, kl, mse)", s);
    return false;
  }
  return true;
}

void lb_calib_method_format(const struct lb_calib_method *m, char *buf, size_t len) {
  switch (m->kind) {
  case LB_CALIB_M_MINMAX: snprintf(buf, len, "minmax"); break;
  case LB_CALIB_M_PERCENTILE: snprintf(buf, len, "percentile:%.10g", m->percentile); break;
  case LB_CALIB_M_KL: snprintf(buf, len, "kl"); break;
  case LB_CALIB_M_MSE: snprintf(buf, len, "mse"); break;
  }
}

static uint64_t hist_total(const uint64_t *h, int32_t nbins) {
  uint64_t t = 0;
  for (int32_t i = 0; i < nbins; i++) t += h[i];
  return t;
}

double lb_hist_percentile(const uint64_t *hist, int32_t nbins, double width, double p) {
  uint64_t total = hist_total(hist, nbins), c = 0;
  if (!total) return 0;
  for (int32_t i = 0; i < nbins; i++) {
    c += hist[i];
    if ((double)c / (double)total >= p / 100.0) return (i + 1) * width;
  }
  return nbins * width;
}

/* MXNet/TVM _smooth_distribution: eps to the zeros, taken proportionally from
 * the non-zeros. false when nothing is non-zero or a value would become <= 0. */
static bool smooth(double *p, int32_t n) {
  const double eps = 1e-4;
  int32_t nz = 0;
  for (int32_t i = 0; i < n; i++) nz += p[i] != 0;
  if (nz == 0) return false;
  double eps1 = eps * (double)(n - nz) / (double)nz;
  for (int32_t i = 0; i < n; i++) {
    p[i] += p[i] == 0 ? eps : -eps1;
    if (p[i] <= 0) return false;
  }
  return true;
}

double lb_hist_kl_threshold(const uint64_t *hist, int32_t nbins, double width, int32_t qbins) {
  uint64_t total = hist_total(hist, nbins);
  if (!total) return 0;
  if (nbins <= qbins) return nbins * width;
  double *p = xcalloc((size_t)nbins, sizeof *p), *q = xcalloc((size_t)nbins, sizeof *q);
  double *outl = xcalloc((size_t)nbins + 1, sizeof *outl); /* outl[i] = sum hist[i..) */
  for (int32_t i = nbins - 1; i >= 0; i--) outl[i] = outl[i + 1] + (double)hist[i];
  double best = INFINITY;
  int32_t best_i = nbins;
  for (int32_t i = qbins; i <= nbins; i++) {
    for (int32_t j = 0; j < i; j++) p[j] = (double)hist[j];
    p[i - 1] += outl[i];
    int32_t merged = i / qbins;
    for (int32_t gq = 0; gq < qbins; gq++) {
      int32_t start = gq * merged, stop = gq == qbins - 1 ? i : start + merged;
      double sum = 0;
      int32_t nz = 0;
      for (int32_t j = start; j < stop; j++) {
        sum += (double)hist[j];
        nz += p[j] != 0;
      }
      for (int32_t j = start; j < stop; j++) q[j] = (p[j] != 0 && nz) ? sum / nz : 0;
    }
    if (!smooth(p, i) || !smooth(q, i)) continue;
    double sp = 0, sq = 0;
    for (int32_t j = 0; j < i; j++) {
      sp += p[j];
      sq += q[j];
    }
    double kl = 0;
    for (int32_t j = 0; j < i; j++) {
      double pj = p[j] / sp, qj = q[j] / sq;
      kl += pj * log(pj / qj);
    }
    if (kl < best) {
      best = kl;
      best_i = i;
    }
  }
  free(p);
  free(q);
  free(outl);
  return best_i * width;
}

double lb_hist_mse_threshold(const uint64_t *hist, int32_t nbins, double width, int32_t levels) {
  uint64_t total = hist_total(hist, nbins);
  if (!total) return 0;
  double best = INFINITY;
  int32_t best_k = nbins;
  uint64_t inside = 0; /* values in bins [0, k): their centers are <= k*width */
  for (int32_t k = 1; k <= nbins; k++) {
    inside += hist[k - 1];
    double t = k * width, step = t / levels;
    double err = (double)inside * step * step / 12.0;
    for (int32_t j = k; j < nbins; j++)
      if (hist[j]) {
        double dlt = (j + 0.5) * width - t;
        err += (double)hist[j] * dlt * dlt;
      }
    if (err < best) {
      best = err;
      best_k = k;
    }
  }
  return best_k * width;
}

void lb_calib_qparams(double lo, double hi, bool is_signed, bool symmetric, float *scale,
                      int32_t *zero_point) {
  double qmin = is_signed ? (symmetric ? -127 : -128) : 0, qmax = is_signed ? 127 : 255;
  if (lo > 0) lo = 0;
  if (hi < 0) hi = 0;
  if (symmetric) {
    double a = fmax(fabs(lo), fabs(hi));
    lo = -a;
    hi = a;
  }
  double s = (hi - lo) / (qmax - qmin);
  if (!(s >= 1.1754943508222875e-38) || !isfinite(s)) { /* below FLT_MIN: ORT's "tiny" */
    *scale = 1.0f;
    *zero_point = 0;
    return;
  }
  double zp = nearbyint(qmin - lo / s); /* default rounding mode: half to even */
  if (zp < qmin) zp = qmin;
  if (zp > qmax) zp = qmax;
  *scale = (float)s;
  *zero_point = (int32_t)zp;
}

void lb_calib_select_range(const struct lb_calib_stat *s, const struct lb_calib_method *m,
                           enum lb_calib_scheme scheme, double *lo, double *hi) {
  *lo = s->count ? s->min : 0;
  *hi = s->count ? s->max : 0;
  if (m->kind == LB_CALIB_M_MINMAX || !s->hist || s->hist_max <= 0) return;
  double w = s->hist_max / LB_CALIB_BINS, t = 0;
  switch (m->kind) {
  case LB_CALIB_M_PERCENTILE: t = lb_hist_percentile(s->hist, LB_CALIB_BINS, w, m->percentile); break;
  case LB_CALIB_M_KL: t = lb_hist_kl_threshold(s->hist, LB_CALIB_BINS, w, LB_CALIB_KL_QBINS); break;
  case LB_CALIB_M_MSE:
    t = lb_hist_mse_threshold(s->hist, LB_CALIB_BINS, w, scheme == LB_CALIB_INT8_SYM ? 127 : 255);
    break;
  case LB_CALIB_M_MINMAX: break;
  }
  if (*lo < -t) *lo = -t;
  if (*hi > t) *hi = t;
}
