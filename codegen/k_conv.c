/* k_conv.c: conv, max_pool, average_pool, global_average_pool kernels.
 *
 * conv, max_pool and average_pool share one direct "window kernel", generic over
 * the spatial rank, specialized to the node's static shapes:
 *
 *   parallel over items (n, group, block of MR output channels, outer output row)
 *     for each tile of the output row (NT vectors of VW lanes along the last dim):
 *       acc[MR][NT] = bias | 0 | -inf
 *       for ci in the group's input channels:           (conv only)
 *         for each outer kernel tap in range:           (runtime loops, ranges from tables)
 *           for kw in kernel width:                     (unrolled at compile time)
 *             xv[v] = x[ci, row, ow0*sw + kw*dw - pw + v*VW*sw ...]  (strided via shuffle)
 *             acc[r][v] = fma(w[m+r, ci, taps, kw], xv[v], acc[r][v])
 *       store acc (masked on the row's last partial vector)
 *
 * The row is split into the interior (every kw tap inside the input: plain or
 * masked vector loads) and the borders (one column at a time, each tap checked).
 * Outer kernel dims iterate over [lo[o], hi[o]) from per-dim tables, so padding
 * rows cost nothing. A 1x1 conv with stride 1 and no pads is collapsed to 1-D over
 * H*W, which makes the same kernel a register-blocked GEMM (MR x NT*VW tile).
 * Constant weights with MR > 1 are repacked as [group*block][ci][taps][MR] so the
 * broadcasts of one tap are contiguous. Padding never wins a max; average divides
 * by a separable per-position count (count_include_pad clips to the padded input,
 * not to the cells ceil_mode adds: ir/eval.c's rule). max_pool with its indices output
 * uses a separate scalar kernel (emit_max_indices). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

enum wk_kind { WK_CONV, WK_MAX, WK_AVG };

struct wk {
  struct lb_cg *cg;
  struct lb_node *n;
  enum wk_kind kind;
  enum lb_dtype dt;
  LLVMTypeRef ety;
  unsigned esz;
  int ns;
  int64_t N, C, M, G, cgc, mg; /* cgc: input channels per group; mg: output channels per group */
  int64_t in[LB_MAX_RANK], out[LB_MAX_RANK], k[LB_MAX_RANK], st[LB_MAX_RANK], dil[LB_MAX_RANK];
  int64_t pb[LB_MAX_RANK], pe[LB_MAX_RANK];
  int64_t xs[LB_MAX_RANK], ys[LB_MAX_RANK]; /* in-plane strides of x and y */
  int64_t in_sz, out_sz, k_sz, R;           /* R: outer output rows per plane */
  bool cip;
  int MR, NT, VW;
  int64_t nMB;
  int64_t ws_blk, ws_ci, ws_ko[LB_MAX_RANK], ws_kw, ws_r;
  LLVMValueRef ktab[LB_MAX_RANK];   /* outer dim d: i64 [lo[0..out), hi[0..out)] or NULL = full */
  LLVMValueRef cnttab[LB_MAX_RANK]; /* avg, outer dim d: i64 count per output coordinate */
  LLVMValueRef cntcol;              /* avg: per-column counts in dtype */
  LLVMValueRef wglob;               /* repacked constant weights, or NULL */
  /* inside the body */
  LLVMValueRef x, w, b, y;
  LLVMValueRef xplane, ybase, wbase, ochan; /* ochan: first output channel of the block */
  LLVMValueRef o[LB_MAX_RANK];
  LLVMValueRef rowcnt; /* avg: product of the outer counts (dtype) */
};

/* ---- small helpers --------------------------------------------------------------- */
static LLVMValueRef I64(struct lb_cg *cg, int64_t v) { return lb_cg_i64(cg, v); }
static LLVMValueRef add(struct lb_cg *cg, LLVMValueRef a, LLVMValueRef b) { return LLVMBuildNSWAdd(cg->b, a, b, ""); }
static LLVMValueRef mulc(struct lb_cg *cg, LLVMValueRef a, int64_t c) {
  if (c == 0) return I64(cg, 0);
  if (c == 1) return a;
  return LLVMBuildNSWMul(cg->b, a, I64(cg, c), "");
}
static LLVMValueRef addc(struct lb_cg *cg, LLVMValueRef a, int64_t c) { return c ? add(cg, a, I64(cg, c)) : a; }

static int64_t floordiv(int64_t a, int64_t b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }
static int64_t ceildiv(int64_t a, int64_t b) { return -floordiv(-a, b); }

/* range of kernel taps k with o*s - p + k*d inside [0, in) */
static void tap_range(int64_t o, int64_t s, int64_t p, int64_t d, int64_t k, int64_t in, int64_t *lo, int64_t *hi) {
  int64_t base = o * s - p;
  int64_t l = base >= 0 ? 0 : ceildiv(-base, d);
  int64_t h = floordiv(in - 1 - base, d) + 1;
  if (l < 0) l = 0;
  if (h > k) h = k;
  if (h < l) h = l;
  *lo = l;
  *hi = h;
}

static LLVMTypeRef vec_ty(struct wk *w, int n) { return n == 1 ? w->ety : LLVMVectorType(w->ety, (unsigned)n); }

static LLVMValueRef splat(struct wk *w, LLVMValueRef s, int n) { return n == 1 ? s : lb_cg_splat(w->cg, s, n); }

static LLVMValueRef lane_mask(struct lb_cg *cg, int n, int valid) {
  LLVMValueRef *e = malloc(sizeof *e * (size_t)n);
  for (int i = 0; i < n; i++) e[i] = LLVMConstInt(cg->t_i1, i < valid, 0);
  LLVMValueRef m = LLVMConstVector(e, (unsigned)n);
  free(e);
  return m;
}

/* n lanes of dtype at base[off], off + s, ... ; only the first `valid` lanes are read */
static LLVMValueRef load_lanes(struct wk *w, LLVMValueRef base, LLVMValueRef off, int n, int s, int valid) {
  struct lb_cg *cg = w->cg;
  if (n == 1) return lb_cg_load_ty(cg, w->ety, base, off, w->esz);
  int L = (n - 1) * s + 1;
  LLVMTypeRef lt = LLVMVectorType(w->ety, (unsigned)L);
  LLVMValueRef p = lb_cg_gep(cg, w->ety, base, off);
  LLVMValueRef v;
  if (valid >= n) {
    v = LLVMBuildLoad2(cg->b, lt, p, "");
    LLVMSetAlignment(v, w->esz);
  } else {
    LLVMTypeRef over[2] = {lt, cg->t_ptr};
    LLVMValueRef args[4] = {p, lb_cg_i32(cg, (int32_t)w->esz), lane_mask(cg, L, (valid - 1) * s + 1),
                            LLVMConstNull(lt)};
    v = lb_cg_intrin2(cg, "llvm.masked.load", over, 2, args, 4);
  }
  if (s == 1) return v;
  LLVMValueRef *e = malloc(sizeof *e * (size_t)n);
  for (int i = 0; i < n; i++) e[i] = lb_cg_i32(cg, i * s);
  LLVMValueRef sh = LLVMBuildShuffleVector(cg->b, v, LLVMGetPoison(lt), LLVMConstVector(e, (unsigned)n), "");
  free(e);
  return sh;
}

static void store_lanes(struct wk *w, LLVMValueRef base, LLVMValueRef off, LLVMValueRef v, int n, int valid) {
  struct lb_cg *cg = w->cg;
  if (n == 1 || valid >= n) {
    lb_cg_store_ty(cg, vec_ty(w, n), lb_cg_gep(cg, w->ety, base, off), NULL, v, w->esz);
    return;
  }
  LLVMTypeRef vt = vec_ty(w, n);
  LLVMTypeRef over[2] = {vt, cg->t_ptr};
  LLVMValueRef args[4] = {v, lb_cg_gep(cg, w->ety, base, off), lb_cg_i32(cg, (int32_t)w->esz), lane_mask(cg, n, valid)};
  lb_cg_intrin2(cg, "llvm.masked.store", over, 2, args, 4);
}

static bool dt_float(enum lb_dtype dt) { return lb_dtype_traits[dt].is_float; }

/* acc = max(acc, v); NaN inputs are skipped (onnx's reference) */
static LLVMValueRef max_upd(struct wk *w, LLVMValueRef acc, LLVMValueRef v) {
  LLVMBuilderRef B = w->cg->b;
  LLVMValueRef c = dt_float(w->dt) ? LLVMBuildFCmp(B, LLVMRealOGT, v, acc, "")
                                   : LLVMBuildICmp(B, lb_dtype_traits[w->dt].is_signed ? LLVMIntSGT : LLVMIntUGT, v, acc, "");
  return LLVMBuildSelect(B, c, v, acc, "");
}

static LLVMValueRef lowest(struct wk *w) {
  if (dt_float(w->dt)) return LLVMConstReal(w->ety, -INFINITY);
  if (!lb_dtype_traits[w->dt].is_signed) return LLVMConstNull(w->ety);
  int bits = 8 * (int)w->esz;
  return LLVMConstInt(w->ety, (unsigned long long)(-(((int64_t)1) << (bits - 1))), 1);
}

/* ---- the tile ----------------------------------------------------------------------- */
struct tile {
  LLVMValueRef ow0; /* first output column */
  int nv, vw, lastn;
  bool checked; /* border column: check each tap's column */
  bool stat;    /* ow0 is the compile-time column ow0c: lanes outside the input are masked */
  int64_t ow0c;
};

/* lanes of the (strided) vector v of a static tile for a tap whose lane 0 is at
 * input column c0: NULL when no needed lane is inside the input */
static LLVMValueRef load_static(struct wk *w, const struct tile *t, LLVMValueRef xoff, int64_t c0, int nval) {
  struct lb_cg *cg = w->cg;
  int d = w->ns - 1;
  int s = (int)w->st[d], vw = t->vw;
  int64_t jmax = (int64_t)(nval - 1) * s, IW = w->in[d];
  bool any = false;
  for (int64_t j = 0; j <= jmax; j += s)
    if (c0 + j >= 0 && c0 + j < IW) any = true;
  if (!any) return NULL;
  if (c0 >= 0 && c0 + jmax < IW) return load_lanes(w, w->x, addc(cg, xoff, c0), vw, s, nval);
  if (vw == 1) return NULL; /* unreachable: one lane is either in or out */
  int L = (vw - 1) * s + 1;
  LLVMTypeRef lt = LLVMVectorType(w->ety, (unsigned)L);
  LLVMValueRef *e = malloc(sizeof *e * (size_t)L);
  for (int j = 0; j < L; j++) e[j] = LLVMConstInt(cg->t_i1, j <= jmax && c0 + j >= 0 && c0 + j < IW, 0);
  LLVMValueRef mask = LLVMConstVector(e, (unsigned)L);
  free(e);
  LLVMValueRef neutral = w->kind == WK_MAX ? lowest(w) : LLVMConstNull(w->ety);
  LLVMValueRef idx = addc(cg, xoff, c0);
  LLVMValueRef p = LLVMBuildGEP2(cg->b, w->ety, w->x, &idx, 1, ""); /* may point before the row: not inbounds */
  LLVMTypeRef over[2] = {lt, cg->t_ptr};
  LLVMValueRef args[4] = {p, lb_cg_i32(cg, (int32_t)w->esz), mask, LLVMConstNull(lt)};
  if (w->kind == WK_MAX) {
    LLVMValueRef *ne = malloc(sizeof *ne * (size_t)L);
    for (int j = 0; j < L; j++) ne[j] = neutral;
    args[3] = LLVMConstVector(ne, (unsigned)L);
    free(ne);
  }
  LLVMValueRef v = lb_cg_intrin2(cg, "llvm.masked.load", over, 2, args, 4);
  if (s == 1) return v;
  LLVMValueRef *sh = malloc(sizeof *sh * (size_t)vw);
  for (int i = 0; i < vw; i++) sh[i] = lb_cg_i32(cg, i * s);
  LLVMValueRef r = LLVMBuildShuffleVector(cg->b, v, LLVMGetPoison(lt), LLVMConstVector(sh, (unsigned)vw), "");
  free(sh);
  return r;
}

/* kw taps (unrolled) for one outer tap; xoff/woff address the row / the tap's weights */
static void taps_last(struct wk *w, const struct tile *t, LLVMValueRef xoff, LLVMValueRef woff, LLVMValueRef *acc) {
  struct lb_cg *cg = w->cg;
  LLVMBuilderRef B = cg->b;
  int d = w->ns - 1;
  int64_t s = w->st[d];
  LLVMValueRef col0 = mulc(cg, t->ow0, s);
  for (int64_t kw = 0; kw < w->k[d]; kw++) {
    int64_t c = kw * w->dil[d] - w->pb[d];
    LLVMValueRef col = addc(cg, col0, c);
    LLVMValueRef valid = NULL;
    LLVMValueRef xv[16];
    if (t->checked) {
      LLVMValueRef ge = LLVMBuildICmp(B, LLVMIntSGE, col, I64(cg, 0), "");
      LLVMValueRef lt = LLVMBuildICmp(B, LLVMIntSLT, col, I64(cg, w->in[d]), "");
      valid = LLVMBuildAnd(B, ge, lt, "");
      LLVMValueRef safe = LLVMBuildSelect(B, valid, col, I64(cg, 0), "");
      xv[0] = lb_cg_load_ty(cg, w->ety, w->x, add(cg, xoff, safe), w->esz);
    } else if (t->stat) {
      for (int v = 0; v < t->nv; v++)
        xv[v] = load_static(w, t, xoff, (t->ow0c + (int64_t)v * t->vw) * s + c, v == t->nv - 1 ? t->lastn : t->vw);
    } else {
      for (int v = 0; v < t->nv; v++)
        xv[v] = load_lanes(w, w->x, add(cg, xoff, addc(cg, col, (int64_t)v * t->vw * s)), t->vw, (int)s,
                           v == t->nv - 1 ? t->lastn : t->vw);
    }
    switch (w->kind) {
    case WK_CONV: {
      if (valid) xv[0] = LLVMBuildSelect(B, valid, xv[0], LLVMConstNull(w->ety), "");
      bool live = false;
      for (int v = 0; v < t->nv; v++) live |= xv[v] != NULL;
      for (int r = 0; r < w->MR && live; r++) {
        LLVMValueRef wi = addc(cg, woff, kw * w->ws_kw + r * w->ws_r);
        LLVMValueRef ws = lb_cg_load_ty(cg, w->ety, w->wglob ? w->wglob : w->w, wi, w->esz);
        LLVMValueRef wv = splat(w, ws, t->vw);
        for (int v = 0; v < t->nv; v++)
          if (xv[v]) acc[r * t->nv + v] = lb_cg_fma(cg, wv, xv[v], acc[r * t->nv + v]);
      }
      break;
    }
    case WK_MAX:
      for (int v = 0; v < t->nv; v++) {
        if (!xv[v]) continue;
        LLVMValueRef m = max_upd(w, acc[v], xv[v]);
        acc[v] = valid ? LLVMBuildSelect(B, valid, m, acc[v], "") : m;
      }
      break;
    case WK_AVG:
      if (valid) xv[0] = LLVMBuildSelect(B, valid, xv[0], LLVMConstNull(w->ety), "");
      for (int v = 0; v < t->nv; v++)
        if (xv[v]) acc[v] = LLVMBuildFAdd(B, acc[v], xv[v], "");
      break;
    }
  }
}

/* outer kernel dims d..ns-2, then the kw taps */
static void taps_outer(struct wk *w, const struct tile *t, int d, LLVMValueRef xoff, LLVMValueRef woff, LLVMValueRef *acc,
                       int nacc) {
  struct lb_cg *cg = w->cg;
  if (d == w->ns - 1) {
    taps_last(w, t, xoff, woff, acc);
    return;
  }
  LLVMValueRef lo, hi;
  if (w->ktab[d]) {
    lo = lb_cg_load_ty(cg, cg->t_i64, w->ktab[d], w->o[d], 8);
    hi = lb_cg_load_ty(cg, cg->t_i64, w->ktab[d], addc(cg, w->o[d], w->out[d]), 8);
  } else {
    lo = I64(cg, 0);
    hi = I64(cg, w->k[d]);
  }
  LLVMValueRef rowbase = addc(cg, mulc(cg, w->o[d], w->st[d]), -w->pb[d]);
  if (!w->ktab[d] && w->k[d] == 1) {
    taps_outer(w, t, d + 1, add(cg, xoff, mulc(cg, rowbase, w->xs[d])), woff, acc, nacc);
    return;
  }
  struct lb_cg_rloop rl;
  lb_cg_rfor(cg, &rl, lo, hi, nacc, acc);
  LLVMValueRef kk = rl.l.i;
  LLVMValueRef ih = add(cg, rowbase, mulc(cg, kk, w->dil[d]));
  LLVMValueRef a2[64];
  for (int i = 0; i < nacc; i++) a2[i] = rl.phi[i];
  taps_outer(w, t, d + 1, add(cg, xoff, mulc(cg, ih, w->xs[d])), add(cg, woff, mulc(cg, kk, w->ws_ko[d])), a2, nacc);
  lb_cg_rfor_end(cg, &rl, a2);
  for (int i = 0; i < nacc; i++) acc[i] = rl.out[i];
}

static void emit_tile(struct wk *w, const struct tile *t) {
  struct lb_cg *cg = w->cg;
  LLVMBuilderRef B = cg->b;
  int nacc = w->MR * t->nv;
  LLVMValueRef acc[64];
  for (int r = 0; r < w->MR; r++) {
    LLVMValueRef init;
    if (w->kind == WK_CONV)
      init = w->b ? lb_cg_load_ty(cg, w->ety, w->b, addc(cg, w->ochan, r), w->esz) : LLVMConstNull(w->ety);
    else if (w->kind == WK_MAX) init = lowest(w);
    else init = LLVMConstNull(w->ety);
    LLVMValueRef iv = splat(w, init, t->vw);
    for (int v = 0; v < t->nv; v++) acc[r * t->nv + v] = iv;
  }
  if (w->kind == WK_CONV && w->cgc > 1) {
    struct lb_cg_rloop rl;
    lb_cg_rfor(cg, &rl, I64(cg, 0), I64(cg, w->cgc), nacc, acc);
    LLVMValueRef a2[64];
    for (int i = 0; i < nacc; i++) a2[i] = rl.phi[i];
    LLVMValueRef xo = add(cg, w->xplane, mulc(cg, rl.l.i, w->in_sz));
    LLVMValueRef wo = add(cg, w->wbase, mulc(cg, rl.l.i, w->ws_ci));
    taps_outer(w, t, 0, xo, wo, a2, nacc);
    lb_cg_rfor_end(cg, &rl, a2);
    for (int i = 0; i < nacc; i++) acc[i] = rl.out[i];
  } else {
    taps_outer(w, t, 0, w->xplane, w->wbase, acc, nacc);
  }
  if (w->kind == WK_AVG) {
    int d = w->ns - 1;
    LLVMValueRef cnt = t->checked ? lb_cg_load_ty(cg, w->ety, w->cntcol, t->ow0, w->esz) : NULL;
    for (int v = 0; v < t->nv; v++) {
      LLVMValueRef c = cnt;
      if (!c) c = load_lanes(w, w->cntcol, addc(cg, t->ow0, (int64_t)v * t->vw), t->vw, 1, v == t->nv - 1 ? t->lastn : t->vw);
      c = LLVMBuildFMul(B, c, splat(w, w->rowcnt, t->vw), "");
      acc[v] = LLVMBuildFDiv(B, acc[v], c, "");
    }
    (void)d;
  }
  for (int r = 0; r < w->MR; r++)
    for (int v = 0; v < t->nv; v++) {
      LLVMValueRef off = add(cg, w->ybase, addc(cg, t->ow0, r * w->out_sz + (int64_t)v * t->vw));
      store_lanes(w, w->y, off, acc[r * t->nv + v], t->vw, v == t->nv - 1 ? t->lastn : t->vw);
    }
}

/* columns [a, b) one at a time, each tap checked */
static void emit_border(struct wk *w, int64_t a, int64_t b) {
  if (b <= a) return;
  struct lb_cg_loop l;
  lb_cg_for_c(w->cg, &l, a, b);
  struct tile t = {.ow0 = l.i, .nv = 1, .vw = 1, .lastn = 1, .checked = true};
  emit_tile(w, &t);
  lb_cg_for_end(w->cg, &l);
}

static void emit_row(struct wk *w) {
  struct lb_cg *cg = w->cg;
  int d = w->ns - 1;
  int64_t OW = w->out[d], s = w->st[d];
  int64_t lo = ceildiv(w->pb[d], s);
  int64_t num = w->in[d] - 1 + w->pb[d] - (w->k[d] - 1) * w->dil[d];
  int64_t hi = num >= 0 ? floordiv(num, s) + 1 : 0;
  if (lo > OW) lo = OW;
  if (hi > OW) hi = OW;
  if (hi < lo) hi = lo;
  int64_t tw = (int64_t)w->NT * w->VW;
  if (w->VW > 1 && (OW + tw - 1) / tw <= 3 && (lo > 0 || hi < OW)) {
    /* short row with borders: a few tiles at fixed columns, out-of-input lanes masked */
    for (int64_t t0 = 0; t0 < OW; t0 += tw) {
      int64_t rem = OW - t0 < tw ? OW - t0 : tw;
      int nv = (int)((rem + w->VW - 1) / w->VW);
      struct tile t = {.ow0 = I64(cg, t0), .nv = nv, .vw = w->VW, .lastn = (int)(rem - (int64_t)(nv - 1) * w->VW),
                       .stat = true, .ow0c = t0};
      emit_tile(w, &t);
    }
    return;
  }
  emit_border(w, 0, lo);
  int64_t len = hi - lo;
  int64_t nfull = len / tw, rem = len - nfull * tw;
  if (nfull > 0) {
    struct lb_cg_loop l;
    lb_cg_for_c(cg, &l, 0, nfull);
    struct tile t = {.ow0 = addc(cg, mulc(cg, l.i, tw), lo), .nv = w->NT, .vw = w->VW, .lastn = w->VW};
    emit_tile(w, &t);
    lb_cg_for_end(cg, &l);
  }
  if (rem > 0) {
    int vw = w->VW;
    int nv = (int)((rem + vw - 1) / vw);
    struct tile t = {.ow0 = I64(cg, lo + nfull * tw), .nv = nv, .vw = vw, .lastn = (int)(rem - (int64_t)(nv - 1) * vw)};
    if (rem == 1) t.vw = t.nv = t.lastn = 1;
    emit_tile(w, &t);
  }
  emit_border(w, hi, OW);
}

/* ---- setup ------------------------------------------------------------------------- */
static void ints_or(const struct lb_node *n, const char *name, int cnt, int64_t dflt, int64_t *out) {
  const struct lb_attr *a = lb_node_attr(n, name);
  for (int i = 0; i < cnt; i++) out[i] = (a && a->kind == LB_ATTR_INTS && a->n > i) ? a->ints[i] : dflt;
}

static int regs_of(struct lb_cg *cg) { return (cg->is_x86 && cg->vbits < 512) ? 16 : 32; }

static enum lb_status emit_window(struct lb_cg *cg, struct lb_node *n, enum wk_kind kind, LLVMValueRef *in,
                                  LLVMValueRef *out) {
  struct wk W, *w = &W;
  memset(w, 0, sizeof W);
  w->cg = cg;
  w->n = n;
  w->kind = kind;
  const struct lb_type *tx = &n->inputs[0]->type, *ty = &n->outputs[0]->type;
  w->dt = ty->dtype;
  if (kind != WK_MAX ? (w->dt != LB_DTYPE_F32 && w->dt != LB_DTYPE_F64)
                     : !(w->dt == LB_DTYPE_F32 || w->dt == LB_DTYPE_F64 || w->dt == LB_DTYPE_U8 || w->dt == LB_DTYPE_I8))
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "%s on %s is not supported", lb_op_info[n->op].ir_name,
                         lb_dtype_traits[w->dt].name);
  if (tx->dtype != w->dt) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "input and output types differ");
  if (tx->shape.rank < 3 || ty->shape.rank != tx->shape.rank)
    return lb_diag_error(cg->d, LB_ERR_INVALID, n, "expected matching ranks >= 3");
  w->ety = lb_cg_type(cg, w->dt);
  w->esz = (unsigned)lb_dtype_traits[w->dt].size;
  int ns = tx->shape.rank - 2;
  w->ns = ns;
  w->N = tx->shape.dims[0];
  w->C = tx->shape.dims[1];
  w->M = ty->shape.dims[1];
  const void *wdata = NULL;
  if (kind == WK_CONV) {
    const struct lb_type *tw = &n->inputs[1]->type;
    if (tw->dtype != w->dt || tw->shape.rank != tx->shape.rank)
      return lb_diag_error(cg->d, LB_ERR_INVALID, n, "weights must have the input's type and rank");
    w->G = lb_node_attr_int(n, "group", 1);
    if (w->G < 1 || w->C % w->G || w->M % w->G || tw->shape.dims[0] != w->M || tw->shape.dims[1] != w->C / w->G)
      return lb_diag_error(cg->d, LB_ERR_INVALID, n, "inconsistent group / weight shape");
    w->cgc = w->C / w->G;
    w->mg = w->M / w->G;
    for (int i = 0; i < ns; i++) w->k[i] = tw->shape.dims[2 + i];
    wdata = lb_value_const_data(cg->g, n->inputs[1]);
    if (n->n_inputs > 2 && n->inputs[2]) {
      const struct lb_type *tb = &n->inputs[2]->type;
      if (tb->dtype != w->dt || lb_shape_numel(&tb->shape) != w->M)
        return lb_diag_error(cg->d, LB_ERR_INVALID, n, "bias must be [%lld] of the input's type", (long long)w->M);
    }
  } else {
    if (w->M != w->C) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "channel count changed");
    w->G = w->C;
    w->cgc = w->mg = 1;
    ints_or(n, "kernel_shape", ns, 1, w->k);
    w->cip = lb_node_attr_int(n, "count_include_pad", 0) != 0;
  }
  ints_or(n, "strides", ns, 1, w->st);
  ints_or(n, "dilations", ns, 1, w->dil);
  int64_t pads[2 * LB_MAX_RANK];
  ints_or(n, "pads", 2 * ns, 0, pads);
  for (int i = 0; i < ns; i++) {
    w->pb[i] = pads[i];
    w->pe[i] = pads[ns + i];
    w->in[i] = tx->shape.dims[2 + i];
    w->out[i] = ty->shape.dims[2 + i];
    if (w->k[i] < 1 || w->st[i] < 1 || w->dil[i] < 1)
      return lb_diag_error(cg->d, LB_ERR_INVALID, n, "bad kernel/stride/dilation");
  }
  if (lb_shape_numel(&ty->shape) == 0) return LB_OK;
  /* 1x1, stride 1, no pads: one spatial dim over the whole plane (a GEMM per group) */
  if (kind == WK_CONV && ns > 1) {
    bool pw = true;
    for (int i = 0; i < ns; i++)
      if (w->k[i] != 1 || w->st[i] != 1 || w->pb[i] || w->pe[i] || w->in[i] != w->out[i]) pw = false;
    if (pw) {
      int64_t p = 1;
      for (int i = 0; i < ns; i++) p *= w->in[i];
      w->ns = ns = 1;
      w->in[0] = w->out[0] = p;
      w->k[0] = w->st[0] = w->dil[0] = 1;
      w->pb[0] = w->pe[0] = 0;
    }
  }
  w->in_sz = w->out_sz = w->k_sz = 1;
  for (int i = ns - 1; i >= 0; i--) {
    w->xs[i] = w->in_sz;
    w->ys[i] = w->out_sz;
    w->in_sz *= w->in[i];
    w->out_sz *= w->out[i];
  }
  int64_t kst[LB_MAX_RANK];
  for (int i = ns - 1; i >= 0; i--) {
    kst[i] = w->k_sz;
    w->k_sz *= w->k[i];
  }
  w->R = w->out_sz / w->out[ns - 1];

  /* blocking */
  w->VW = cg->vbits / (8 * (int)w->esz);
  if (w->VW < 1) w->VW = 1;
  w->MR = 1;
  if (kind == WK_CONV) {
    static const int cand[] = {4, 3, 2};
    for (int i = 0; i < 3; i++)
      if (w->mg % cand[i] == 0) {
        w->MR = cand[i];
        break;
      }
  }
  int regs = regs_of(cg);
  w->NT = (regs - w->MR - 2) / (w->MR + 1);
  if (w->NT > 8) w->NT = 8;
  if (w->NT < 1) w->NT = 1;
  w->nMB = w->mg / w->MR;
  w->ws_blk = (int64_t)w->MR * w->cgc * w->k_sz;
  if (kind == WK_CONV && wdata && w->MR > 1) {
    /* repack: [group*block][ci][taps][MR] */
    int64_t total = w->M * w->cgc * w->k_sz;
    char *pk = malloc((size_t)(total * w->esz));
    if (!pk) abort();
    for (int64_t gb = 0; gb < w->G * w->nMB; gb++)
      for (int64_t ci = 0; ci < w->cgc; ci++)
        for (int64_t kk = 0; kk < w->k_sz; kk++)
          for (int r = 0; r < w->MR; r++) {
            int64_t m = gb * w->MR + r; /* == g*mg + mb*MR + r since MR | mg */
            int64_t src = (m * w->cgc + ci) * w->k_sz + kk;
            int64_t dst = ((gb * w->cgc + ci) * w->k_sz + kk) * w->MR + r;
            memcpy(pk + dst * w->esz, (const char *)wdata + src * w->esz, w->esz);
          }
    w->wglob = lb_cg_global_data(cg, "convw", pk, (size_t)(total * w->esz));
    free(pk);
    w->ws_r = 1;
    w->ws_kw = w->MR;
    for (int i = 0; i < ns - 1; i++) w->ws_ko[i] = w->MR * kst[i];
    w->ws_ci = w->MR * w->k_sz;
  } else {
    w->ws_r = w->cgc * w->k_sz;
    w->ws_ci = w->k_sz;
    w->ws_kw = 1;
    for (int i = 0; i < ns - 1; i++) w->ws_ko[i] = kst[i];
  }
  /* outer tap ranges and average counts */
  for (int d = 0; d < ns; d++) {
    int64_t od = w->out[d];
    int64_t *tab = malloc(sizeof *tab * (size_t)(2 * od));
    int64_t *cnt = malloc(sizeof *cnt * (size_t)od);
    if (!tab || !cnt) abort();
    bool full = true;
    for (int64_t o = 0; o < od; o++) {
      tap_range(o, w->st[d], w->pb[d], w->dil[d], w->k[d], w->in[d], &tab[o], &tab[od + o]);
      if (tab[o] != 0 || tab[od + o] != w->k[d]) full = false;
      if (w->cip) {
        int64_t start = o * w->st[d] - w->pb[d], end = start + (w->k[d] - 1) * w->dil[d] + 1;
        if (end > w->in[d] + w->pe[d]) end = w->in[d] + w->pe[d];
        cnt[o] = end - start;
      } else {
        cnt[o] = tab[od + o] - tab[o];
      }
    }
    if (d < ns - 1) {
      if (!full) w->ktab[d] = lb_cg_global_i64s(cg, tab, 2 * od);
      if (kind == WK_AVG) w->cnttab[d] = lb_cg_global_i64s(cg, cnt, od);
    } else if (kind == WK_AVG) {
      char *cc = malloc((size_t)od * w->esz);
      if (!cc) abort();
      for (int64_t o = 0; o < od; o++) {
        if (w->dt == LB_DTYPE_F32) ((float *)cc)[o] = (float)cnt[o];
        else ((double *)cc)[o] = (double)cnt[o];
      }
      w->cntcol = lb_cg_global_data(cg, "cnt", cc, (size_t)od * w->esz);
      free(cc);
    }
    free(tab);
    free(cnt);
  }

  /* parallel items: (n, g, mb, outer row) */
  int64_t items = w->N * w->G * w->nMB * w->R;
  int64_t per_item = 2 * w->MR * w->out[ns - 1] * w->cgc * w->k_sz;
  int64_t grain = 65536 / (per_item ? per_item : 1) + 1;
  bool par = lb_cg_want_parallel(cg, items * per_item);
  LLVMValueRef ptrs[4] = {in[0], kind == WK_CONV ? in[1] : in[0],
                          (kind == WK_CONV && n->n_inputs > 2 && n->inputs[2]) ? in[2] : in[0], out[0]};
  LLVMValueRef inr[4], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, items, grain, par, ptrs, 4, inr, &begin, &end);
  w->x = inr[0];
  w->w = inr[1];
  w->b = (kind == WK_CONV && n->n_inputs > 2 && n->inputs[2]) ? inr[2] : NULL;
  w->y = inr[3];
  struct lb_cg_loop il;
  lb_cg_for(cg, &il, begin, end);
  LLVMBuilderRef B = cg->b;
  LLVMValueRef it = il.i;
  LLVMValueRef rr = LLVMBuildSRem(B, it, I64(cg, w->R), "");
  LLVMValueRef t1 = LLVMBuildSDiv(B, it, I64(cg, w->R), "");
  LLVMValueRef mb = LLVMBuildSRem(B, t1, I64(cg, w->nMB), "");
  LLVMValueRef t2 = LLVMBuildSDiv(B, t1, I64(cg, w->nMB), "");
  LLVMValueRef g = LLVMBuildSRem(B, t2, I64(cg, w->G), "");
  LLVMValueRef nn = LLVMBuildSDiv(B, t2, I64(cg, w->G), "");
  LLVMValueRef rowoff = I64(cg, 0);
  LLVMValueRef rem = rr;
  for (int d = ns - 2; d >= 0; d--) {
    w->o[d] = LLVMBuildSRem(B, rem, I64(cg, w->out[d]), "");
    rem = LLVMBuildSDiv(B, rem, I64(cg, w->out[d]), "");
    rowoff = add(cg, rowoff, mulc(cg, w->o[d], w->ys[d]));
  }
  /* x plane of the group's first input channel; output channel of the block */
  w->xplane = mulc(cg, add(cg, mulc(cg, nn, w->C), mulc(cg, g, w->cgc)), w->in_sz);
  LLVMValueRef gm = add(cg, mulc(cg, g, w->nMB), mb);
  w->ochan = mulc(cg, gm, w->MR);
  w->ybase = add(cg, mulc(cg, add(cg, mulc(cg, nn, w->M), w->ochan), w->out_sz), rowoff);
  w->wbase = mulc(cg, gm, w->ws_blk);
  if (kind == WK_AVG) {
    LLVMValueRef c = I64(cg, 1);
    for (int d = 0; d < ns - 1; d++)
      c = LLVMBuildNSWMul(B, c, lb_cg_load_ty(cg, cg->t_i64, w->cnttab[d], w->o[d], 8), "");
    w->rowcnt = LLVMBuildSIToFP(B, c, w->ety, "");
  }
  emit_row(w);
  lb_cg_for_end(cg, &il);
  lb_cg_par_end(cg, &p);
  return LB_OK;
}

enum lb_status lb_cg_emit_conv(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  if (n->op != LB_OP_CONV || n->n_inputs < 2 || !n->inputs[1])
    return lb_diag_error(cg->d, LB_ERR_INVALID, n, "conv needs (x, w, b?)");
  return emit_window(cg, n, WK_CONV, in, out);
}

/* global_average_pool: one reassociable sum per plane (the vectorizer splits it) */
static enum lb_status emit_gap(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  const struct lb_type *tx = &n->inputs[0]->type;
  enum lb_dtype dt = tx->dtype;
  if (dt != LB_DTYPE_F32 && dt != LB_DTYPE_F64)
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "global_average_pool on %s is not supported", lb_dtype_traits[dt].name);
  if (tx->shape.rank < 2) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "rank < 2");
  int64_t planes = tx->shape.dims[0] * tx->shape.dims[1];
  if (planes == 0) return LB_OK;
  int64_t sp = lb_shape_numel(&tx->shape) / planes;
  LLVMTypeRef ety = lb_cg_type(cg, dt);
  unsigned esz = (unsigned)lb_dtype_traits[dt].size;
  LLVMValueRef ptrs[2] = {in[0], out[0]}, inr[2], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, planes, 16384 / (sp ? sp : 1) + 1, lb_cg_want_parallel(cg, planes * sp), ptrs, 2, inr, &begin, &end);
  struct lb_cg_loop pl;
  lb_cg_for(cg, &pl, begin, end);
  LLVMValueRef base = LLVMBuildNSWMul(cg->b, pl.i, lb_cg_i64(cg, sp), "");
  LLVMValueRef zero = LLVMConstNull(ety);
  struct lb_cg_rloop r;
  lb_cg_rfor(cg, &r, lb_cg_i64(cg, 0), lb_cg_i64(cg, sp), 1, &zero);
  LLVMValueRef v = lb_cg_load_ty(cg, ety, inr[0], LLVMBuildNSWAdd(cg->b, base, r.l.i, ""), esz);
  LLVMValueRef s = lb_cg_reassoc(LLVMBuildFAdd(cg->b, r.phi[0], v, ""));
  lb_cg_rfor_end(cg, &r, &s);
  LLVMValueRef avg = LLVMBuildFDiv(cg->b, r.out[0], LLVMConstReal(ety, (double)sp), "");
  lb_cg_store_ty(cg, ety, inr[1], pl.i, avg, esz);
  lb_cg_for_end(cg, &pl);
  lb_cg_par_end(cg, &p);
  return LB_OK;
}

/* max_pool with indices (output 1): one output element per iteration, scalar taps over
 * per-dim ranges [lo, hi) from tables, carrying (max, index). The index is ir/eval.c's:
 * the first maximal element (NaN skipped, -1 when none), plane * in_sz + the spatial
 * index in row-major (storage_order 0) or column-major (1) order. */
struct mi {
  struct lb_cg *cg;
  enum lb_dtype dt;
  int ns;
  int64_t in[LB_MAX_RANK], out[LB_MAX_RANK], k[LB_MAX_RANK], st[LB_MAX_RANK], dil[LB_MAX_RANK], pb[LB_MAX_RANK];
  int64_t xs[LB_MAX_RANK], cs[LB_MAX_RANK]; /* row-major strides; index strides (storage order) */
  LLVMValueRef tab[LB_MAX_RANK];            /* i64 [lo[0..out), hi[0..out)] per dim */
  LLVMValueRef o[LB_MAX_RANK];              /* output coordinates */
  LLVMValueRef x, xplane, iplane;
};

static void mi_taps(struct mi *m, int d, LLVMValueRef xoff, LLVMValueRef ioff, LLVMValueRef *acc) {
  struct lb_cg *cg = m->cg;
  LLVMBuilderRef B = cg->b;
  if (d == m->ns) {
    LLVMValueRef v = lb_cg_load(cg, m->dt, m->x, add(cg, m->xplane, xoff));
    LLVMValueRef none = LLVMBuildICmp(B, LLVMIntSLT, acc[1], I64(cg, 0), "");
    LLVMValueRef c;
    if (dt_float(m->dt)) {
      LLVMValueRef gt = LLVMBuildFCmp(B, LLVMRealOGT, v, acc[0], "");
      LLVMValueRef num = LLVMBuildFCmp(B, LLVMRealORD, v, v, "");
      c = LLVMBuildOr(B, gt, LLVMBuildAnd(B, none, num, ""), "");
    } else {
      LLVMValueRef gt = LLVMBuildICmp(B, lb_dtype_traits[m->dt].is_signed ? LLVMIntSGT : LLVMIntUGT, v, acc[0], "");
      c = LLVMBuildOr(B, gt, none, "");
    }
    acc[0] = LLVMBuildSelect(B, c, v, acc[0], "");
    acc[1] = LLVMBuildSelect(B, c, add(cg, m->iplane, ioff), acc[1], "");
    return;
  }
  LLVMValueRef lo = lb_cg_load_ty(cg, cg->t_i64, m->tab[d], m->o[d], 8);
  LLVMValueRef hi = lb_cg_load_ty(cg, cg->t_i64, m->tab[d], addc(cg, m->o[d], m->out[d]), 8);
  struct lb_cg_rloop rl;
  lb_cg_rfor(cg, &rl, lo, hi, 2, acc);
  LLVMValueRef ih = add(cg, addc(cg, mulc(cg, m->o[d], m->st[d]), -m->pb[d]), mulc(cg, rl.l.i, m->dil[d]));
  LLVMValueRef a2[2] = {rl.phi[0], rl.phi[1]};
  mi_taps(m, d + 1, add(cg, xoff, mulc(cg, ih, m->xs[d])), add(cg, ioff, mulc(cg, ih, m->cs[d])), a2);
  lb_cg_rfor_end(cg, &rl, a2);
  acc[0] = rl.out[0];
  acc[1] = rl.out[1];
}

static enum lb_status emit_max_indices(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  const struct lb_type *tx = &n->inputs[0]->type, *ty = &n->outputs[0]->type, *ti = &n->outputs[1]->type;
  struct mi M, *m = &M;
  memset(m, 0, sizeof M);
  m->cg = cg;
  m->dt = tx->dtype;
  if (!(m->dt == LB_DTYPE_F32 || m->dt == LB_DTYPE_F64 || m->dt == LB_DTYPE_U8 || m->dt == LB_DTYPE_I8))
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "max_pool on %s is not supported", lb_dtype_traits[m->dt].name);
  if (ty->dtype != m->dt || ti->dtype != LB_DTYPE_I64 || tx->shape.rank < 3 || ty->shape.rank != tx->shape.rank ||
      !lb_shape_equal(&ty->shape, &ti->shape))
    return lb_diag_error(cg->d, LB_ERR_INVALID, n, "max_pool: inconsistent output types");
  int ns = m->ns = tx->shape.rank - 2;
  int64_t pads[2 * LB_MAX_RANK];
  ints_or(n, "kernel_shape", ns, 1, m->k);
  ints_or(n, "strides", ns, 1, m->st);
  ints_or(n, "dilations", ns, 1, m->dil);
  ints_or(n, "pads", 2 * ns, 0, pads);
  bool colmajor = lb_node_attr_int(n, "storage_order", 0) != 0;
  int64_t in_sz = 1, out_sz = 1, k_sz = 1;
  for (int i = 0; i < ns; i++) {
    m->pb[i] = pads[i];
    m->in[i] = tx->shape.dims[2 + i];
    m->out[i] = ty->shape.dims[2 + i];
    if (m->k[i] < 1 || m->st[i] < 1 || m->dil[i] < 1)
      return lb_diag_error(cg->d, LB_ERR_INVALID, n, "bad kernel/stride/dilation");
    k_sz *= m->k[i];
  }
  for (int i = ns - 1; i >= 0; i--) {
    m->xs[i] = in_sz;
    in_sz *= m->in[i];
    out_sz *= m->out[i];
  }
  int64_t cst = 1;
  for (int i = 0; i < ns; i++) {
    m->cs[i] = colmajor ? cst : m->xs[i];
    cst *= m->in[i];
  }
  int64_t planes = tx->shape.dims[0] * tx->shape.dims[1], items = planes * out_sz;
  if (items == 0) return LB_OK;
  for (int d = 0; d < ns; d++) {
    int64_t od = m->out[d];
    int64_t *tab = malloc(sizeof *tab * (size_t)(2 * od));
    if (!tab) abort();
    for (int64_t o = 0; o < od; o++) tap_range(o, m->st[d], m->pb[d], m->dil[d], m->k[d], m->in[d], &tab[o], &tab[od + o]);
    m->tab[d] = lb_cg_global_i64s(cg, tab, 2 * od);
    free(tab);
  }
  LLVMValueRef ptrs[3] = {in[0], out[0], out[1]}, inr[3], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, items, 1 + 16384 / k_sz, lb_cg_want_parallel(cg, items * k_sz), ptrs, 3, inr, &begin, &end);
  m->x = inr[0];
  struct lb_cg_loop l;
  lb_cg_for(cg, &l, begin, end);
  LLVMBuilderRef B = cg->b;
  LLVMValueRef rem = LLVMBuildSRem(B, l.i, I64(cg, out_sz), "");
  LLVMValueRef plane = LLVMBuildSDiv(B, l.i, I64(cg, out_sz), "");
  for (int d = ns - 1; d >= 0; d--) {
    m->o[d] = d == 0 ? rem : LLVMBuildSRem(B, rem, I64(cg, m->out[d]), "");
    if (d > 0) rem = LLVMBuildSDiv(B, rem, I64(cg, m->out[d]), "");
  }
  m->xplane = m->iplane = mulc(cg, plane, in_sz);
  struct wk w0 = {.dt = m->dt, .ety = lb_cg_type(cg, m->dt), .esz = (unsigned)lb_dtype_traits[m->dt].size};
  LLVMValueRef acc[2] = {lowest(&w0), I64(cg, -1)};
  mi_taps(m, 0, I64(cg, 0), I64(cg, 0), acc);
  lb_cg_store(cg, m->dt, inr[1], l.i, acc[0]);
  lb_cg_store(cg, LB_DTYPE_I64, inr[2], l.i, acc[1]);
  lb_cg_for_end(cg, &l);
  lb_cg_par_end(cg, &p);
  return LB_OK;
}

enum lb_status lb_cg_emit_pool(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  switch (n->op) {
  case LB_OP_GLOBAL_AVERAGE_POOL: return emit_gap(cg, n, in, out);
  case LB_OP_MAX_POOL:
    if (n->n_outputs > 1) return emit_max_indices(cg, n, in, out);
    return emit_window(cg, n, WK_MAX, in, out);
  case LB_OP_AVERAGE_POOL: return emit_window(cg, n, WK_AVG, in, out);
  default: return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "no pool kernel for %s", lb_op_info[n->op].ir_name);
  }
}
