/* k_quant.c: quantize_linear, dequantize_linear, dynamic_quantize_linear,
 * matmul_integer, qlinear_matmul kernels (ONNX semantics; straightforward loops
 * that the loop vectorizer handles: the fast int8 path is its own issue).
 *
 * quantize/dequantize run through the elementwise loop nest (lb_cg_ew_strided) with
 * the scale and zero point as operands broadcast along every dim but `axis`, so
 * per-tensor and per-axis parameters are the same code.
 *   quantize:   y = sat(rint(x / scale) + zp)   (rint: ties to even; NaN -> zp)
 *   dequantize: y = f32(x - zp) * scale         (x - zp exact in i32 / i64)
 * matmul_integer / qlinear_matmul: rows (batch x M) split across threads; per row
 * acc[n] += (a[m,k] - azp) * (b[k,n] - bzp[n]) with n innermost, contiguous, i32.
 * qlinear requantizes with mult = a_scale * b_scale / y_scale in f32, as ir/eval.c. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

static bool is_float(enum lb_dtype dt) { return lb_dtype_traits[dt].is_float; }
static bool is_signed_int(enum lb_dtype dt) { return !is_float(dt) && lb_dtype_traits[dt].is_signed; }

static LLVMValueRef unary(struct lb_cg *cg, const char *name, LLVMValueRef x) {
  LLVMValueRef a[1] = {x};
  return lb_cg_intrin(cg, name, LLVMTypeOf(x), a, 1);
}

/* integer value of dtype dt widened to `to` (i32 or i64) with its signedness */
static LLVMValueRef widen(struct lb_cg *cg, LLVMValueRef v, enum lb_dtype dt, LLVMTypeRef to) {
  unsigned w = LLVMGetIntTypeWidth(LLVMTypeOf(v)), tw = LLVMGetIntTypeWidth(to);
  if (w == tw) return v;
  if (w > tw) return LLVMBuildTrunc(cg->b, v, to, "");
  return is_signed_int(dt) ? LLVMBuildSExt(cg->b, v, to, "") : LLVMBuildZExt(cg->b, v, to, "");
}

/* r (float of type ct, already rounded) + zp, saturated into odt; NaN -> zp */
static LLVMValueRef requant(struct lb_cg *cg, LLVMValueRef r, LLVMValueRef zpf, enum lb_dtype ct, enum lb_dtype odt) {
  LLVMValueRef v = LLVMBuildFAdd(cg->b, r, zpf, "");
  LLVMValueRef nan = LLVMBuildFCmp(cg->b, LLVMRealUNO, v, v, "");
  v = LLVMBuildSelect(cg->b, nan, zpf, v, "");
  return lb_cg_convert(cg, v, ct, odt); /* fpto[su]i.sat: saturating */
}

/* ---- quantize / dequantize ----------------------------------------------------------- */
struct q_ctx {
  enum lb_dtype xdt, sdt, zdt, odt, ct;
  bool has_zp;
};

static LLVMValueRef q_apply(struct lb_cg *cg, void *ud, LLVMValueRef *x) {
  struct q_ctx *c = ud;
  LLVMValueRef xv = lb_cg_convert(cg, x[0], c->xdt, c->ct);
  LLVMValueRef sv = lb_cg_convert(cg, x[1], c->sdt, c->ct);
  LLVMValueRef r = unary(cg, "llvm.rint", LLVMBuildFDiv(cg->b, xv, sv, ""));
  LLVMValueRef zpf = c->has_zp ? lb_cg_convert(cg, x[2], c->zdt, c->ct) : LLVMConstNull(lb_cg_type(cg, c->ct));
  return requant(cg, r, zpf, c->ct, c->odt);
}

static LLVMValueRef dq_apply(struct lb_cg *cg, void *ud, LLVMValueRef *x) {
  struct q_ctx *c = ud;
  LLVMTypeRef it = c->xdt == LB_DTYPE_I32 || c->xdt == LB_DTYPE_U32 ? cg->t_i64 : cg->t_i32;
  LLVMValueRef xv = widen(cg, x[0], c->xdt, it);
  if (c->has_zp) xv = LLVMBuildSub(cg->b, xv, widen(cg, x[2], c->zdt, it), "");
  LLVMValueRef f = LLVMBuildSIToFP(cg->b, xv, cg->t_f32, "");
  LLVMValueRef s = lb_cg_convert(cg, x[1], c->sdt, LB_DTYPE_F32);
  return lb_cg_convert(cg, LLVMBuildFMul(cg->b, f, s, ""), LB_DTYPE_F32, c->odt);
}

/* strides of a quantization parameter (scalar or 1-D along axis) over x's shape */
static enum lb_status param_strides(struct lb_cg *cg, struct lb_node *n, int i, const struct lb_shape *xs, int axis,
                                    int64_t *st) {
  const struct lb_value *p = n->inputs[i];
  int64_t ne = lb_shape_numel(&p->type.shape);
  for (int d = 0; d < xs->rank; d++) st[d] = 0;
  if (ne == 1) return LB_OK;
  if (axis < 0 || axis >= xs->rank || p->type.shape.rank != 1 || ne != xs->dims[axis])
    return lb_diag_error(cg->d, LB_ERR_INVALID, n, "input %d must be a scalar or a vector of dim %d of input 0", i, axis);
  if (xs->dims[axis] > 1) st[axis] = 1;
  return LB_OK;
}

static enum lb_status emit_qdq(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  bool q = n->op == LB_OP_QUANTIZE_LINEAR;
  const struct lb_type *tx = &n->inputs[0]->type, *ty = &n->outputs[0]->type;
  struct q_ctx c = {.xdt = tx->dtype, .sdt = n->inputs[1]->type.dtype, .odt = ty->dtype};
  c.has_zp = n->n_inputs > 2 && n->inputs[2];
  if (c.has_zp) c.zdt = n->inputs[2]->type.dtype;
  if (q) {
    if (!is_float(c.xdt) || !is_float(c.sdt) || is_float(c.odt) || c.odt == LB_DTYPE_BOOL)
      return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "quantize_linear from %s to %s", lb_dtype_traits[c.xdt].name,
                           lb_dtype_traits[c.odt].name);
    c.ct = c.xdt == LB_DTYPE_F64 ? LB_DTYPE_F64 : LB_DTYPE_F32;
  } else {
    if (is_float(c.xdt) || c.xdt == LB_DTYPE_BOOL || c.xdt == LB_DTYPE_I64 || c.xdt == LB_DTYPE_U64 ||
        !is_float(c.sdt) || !is_float(c.odt))
      return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "dequantize_linear from %s to %s",
                           lb_dtype_traits[c.xdt].name, lb_dtype_traits[c.odt].name);
  }
  int axis = (int)lb_node_attr_int(n, "axis", 1);
  if (axis < 0) axis += tx->shape.rank;
  int64_t st[3][LB_MAX_RANK];
  LLVMValueRef bases[3] = {in[0], in[1], c.has_zp ? in[2] : NULL};
  enum lb_dtype dts[3] = {c.xdt, c.sdt, c.zdt};
  lb_cg_strides(&tx->shape, st[0]);
  enum lb_status s = param_strides(cg, n, 1, &tx->shape, axis, st[1]);
  if (s == LB_OK && c.has_zp) s = param_strides(cg, n, 2, &tx->shape, axis, st[2]);
  if (s != LB_OK) return s;
  lb_cg_ew_strided(cg, c.has_zp ? 3 : 2, bases, dts, (const int64_t(*)[LB_MAX_RANK])st, out[0], c.odt, &ty->shape,
                   q ? q_apply : dq_apply, &c, 4);
  return LB_OK;
}

/* ---- dynamic_quantize_linear -------------------------------------------------------------- */
static enum lb_status emit_dynq(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  const struct lb_type *tx = &n->inputs[0]->type;
  if (tx->dtype != LB_DTYPE_F32 || n->n_outputs != 3)
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "dynamic_quantize_linear needs f32 input and 3 outputs");
  LLVMBuilderRef B = cg->b;
  int64_t ne = lb_shape_numel(&tx->shape);
  LLVMTypeRef f = cg->t_f32;
  LLVMValueRef zero = LLVMConstNull(f);
  /* rmin = min(0, min(x)), rmax = max(0, max(x)); NaNs are skipped */
  LLVMValueRef init[2] = {zero, zero};
  struct lb_cg_rloop r;
  lb_cg_rfor(cg, &r, lb_cg_i64(cg, 0), lb_cg_i64(cg, ne), 2, init);
  LLVMValueRef x = lb_cg_load_ty(cg, f, in[0], r.l.i, 4);
  LLVMValueRef a1[2] = {r.phi[0], x}, a2[2] = {r.phi[1], x};
  LLVMValueRef next[2] = {lb_cg_intrin(cg, "llvm.minnum", f, a1, 2), lb_cg_intrin(cg, "llvm.maxnum", f, a2, 2)};
  lb_cg_rfor_end(cg, &r, next);
  LLVMValueRef mn = r.out[0], mx = r.out[1];
  LLVMValueRef scale = LLVMBuildFDiv(B, LLVMBuildFSub(B, mx, mn, ""), LLVMConstReal(f, 255.0), "");
  LLVMValueRef sz = LLVMBuildFCmp(B, LLVMRealOEQ, scale, zero, "");
  /* zp = sat(rint((0 - rmin) / scale)); scale 0 (all-zero input): zp 0, y 0 */
  LLVMValueRef zq = unary(cg, "llvm.rint", LLVMBuildFDiv(B, LLVMBuildFSub(B, zero, mn, ""), scale, ""));
  LLVMValueRef zpf = LLVMBuildSelect(B, sz, zero, zq, "");
  zpf = LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealUNO, zpf, zpf, ""), zero, zpf, "");
  LLVMValueRef zp8 = lb_cg_convert(cg, zpf, LB_DTYPE_F32, LB_DTYPE_U8);
  zpf = lb_cg_convert(cg, zp8, LB_DTYPE_U8, LB_DTYPE_F32);
  struct lb_cg_loop l;
  lb_cg_for_c(cg, &l, 0, ne);
  LLVMValueRef xv = lb_cg_load_ty(cg, f, in[0], l.i, 4);
  LLVMValueRef y = requant(cg, unary(cg, "llvm.rint", LLVMBuildFDiv(B, xv, scale, "")), zpf, LB_DTYPE_F32, LB_DTYPE_U8);
  y = LLVMBuildSelect(B, sz, LLVMConstNull(cg->t_i8), y, "");
  lb_cg_store_ty(cg, cg->t_i8, out[0], l.i, y, 1);
  lb_cg_for_end(cg, &l);
  lb_cg_store_ty(cg, f, out[1], NULL, scale, 4);
  lb_cg_store_ty(cg, cg->t_i8, out[2], NULL, zp8, 1);
  return LB_OK;
}

/* ---- matmul_integer / qlinear_matmul --------------------------------------------------------- */
#define QMM_NC 1024 /* qlinear: columns per i32 row chunk (stack) */

static enum lb_status emit_qmm(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  bool ql = n->op == LB_OP_QLINEAR_MATMUL;
  int ia = 0, ib = ql ? 3 : 1, iazp = 2, ibzp = ql ? 5 : 3;
  if (n->n_inputs <= ib || !n->inputs[ib]) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "missing input b");
  const struct lb_type *ta = &n->inputs[ia]->type, *tb = &n->inputs[ib]->type, *ty = &n->outputs[0]->type;
  enum lb_dtype adt = ta->dtype, bdt = tb->dtype, odt = ty->dtype;
  bool has_azp = n->n_inputs > iazp && n->inputs[iazp], has_bzp = n->n_inputs > ibzp && n->inputs[ibzp];
  if ((adt != LB_DTYPE_U8 && adt != LB_DTYPE_I8) || (bdt != LB_DTYPE_U8 && bdt != LB_DTYPE_I8))
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "%s on %s x %s", lb_op_info[n->op].ir_name,
                         lb_dtype_traits[adt].name, lb_dtype_traits[bdt].name);
  if (ql && (odt != LB_DTYPE_U8 && odt != LB_DTYPE_I8)) return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "output %s", lb_dtype_traits[odt].name);
  if (!ql && odt != LB_DTYPE_I32) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "output must be i32");
  int ar = ta->shape.rank, br = tb->shape.rank;
  if (ar < 1 || br < 1) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "operands must have rank >= 1");
  int64_t M = ar == 1 ? 1 : ta->shape.dims[ar - 2], K = ta->shape.dims[ar - 1];
  int64_t N = br == 1 ? 1 : tb->shape.dims[br - 1];
  if ((br == 1 ? tb->shape.dims[0] : tb->shape.dims[br - 2]) != K)
    return lb_diag_error(cg->d, LB_ERR_INVALID, n, "inner dims differ");
  int abr = ar > 2 ? ar - 2 : 0, bbr = br > 2 ? br - 2 : 0, rb = abr > bbr ? abr : bbr;
  int64_t ad[LB_MAX_RANK], bd[LB_MAX_RANK], od[LB_MAX_RANK], batch = 1;
  for (int d = 0; d < rb; d++) {
    ad[d] = d - (rb - abr) >= 0 ? ta->shape.dims[d - (rb - abr)] : 1;
    bd[d] = d - (rb - bbr) >= 0 ? tb->shape.dims[d - (rb - bbr)] : 1;
    od[d] = ad[d] > bd[d] ? ad[d] : bd[d];
    batch *= od[d];
  }
  if (lb_shape_numel(&ty->shape) != batch * M * N) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "output shape");
  if (batch * M * N == 0) return LB_OK;
  /* per-batch element offsets of a and b */
  int64_t *aoff = calloc((size_t)batch, sizeof *aoff), *boff = calloc((size_t)batch, sizeof *boff);
  if (!aoff || !boff) abort();
  bool abc = false, bbc = false;
  for (int64_t bi = 0; bi < batch; bi++) {
    int64_t rem = bi, idx[LB_MAX_RANK], xa = 0, xb = 0;
    for (int d = rb - 1; d >= 0; d--) {
      idx[d] = rem % od[d];
      rem /= od[d];
    }
    for (int d = 0; d < rb; d++) {
      xa = xa * ad[d] + (ad[d] == 1 ? 0 : idx[d]);
      xb = xb * bd[d] + (bd[d] == 1 ? 0 : idx[d]);
    }
    aoff[bi] = xa * M * K;
    boff[bi] = xb * K * N;
    if (aoff[bi] != bi * M * K) abc = true;
    if (boff[bi] != bi * K * N) bbc = true;
  }
  LLVMValueRef atab = abc ? lb_cg_global_i64s(cg, aoff, batch) : NULL;
  LLVMValueRef btab = bbc ? lb_cg_global_i64s(cg, boff, batch) : NULL;
  free(aoff);
  free(boff);
  int64_t azp_n = has_azp ? lb_shape_numel(&n->inputs[iazp]->type.shape) : 0;
  int64_t bzp_n = has_bzp ? lb_shape_numel(&n->inputs[ibzp]->type.shape) : 0;
  if ((has_azp && azp_n != 1 && azp_n != M) || (has_bzp && bzp_n != 1 && bzp_n != N))
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "zero points must be scalars, [M] (a) or [N] (b)");
  int64_t as_n = 1, bs_n = 1;
  if (ql) {
    as_n = lb_shape_numel(&n->inputs[1]->type.shape);
    bs_n = lb_shape_numel(&n->inputs[4]->type.shape);
    if ((as_n != 1 && as_n != M) || (bs_n != 1 && bs_n != N) || lb_shape_numel(&n->inputs[6]->type.shape) != 1 ||
        lb_shape_numel(&n->inputs[7]->type.shape) != 1)
      return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "scales must be scalars, [M] (a) or [N] (b)");
    static const int sc[3] = {1, 4, 6};
    for (int i = 0; i < 3; i++)
      if (n->inputs[sc[i]]->type.dtype != LB_DTYPE_F32) return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "scales must be f32");
  }

  /* pointers: a b azp bzp as bs ys yzp y */
  LLVMValueRef ptrs[9], inr[9], begin, end;
  for (int i = 0; i < 9; i++) ptrs[i] = in[0];
  ptrs[0] = in[ia];
  ptrs[1] = in[ib];
  if (has_azp) ptrs[2] = in[iazp];
  if (has_bzp) ptrs[3] = in[ibzp];
  if (ql) {
    ptrs[4] = in[1];
    ptrs[5] = in[4];
    ptrs[6] = in[6];
    ptrs[7] = in[7];
  }
  ptrs[8] = out[0];
  int64_t rows = batch * M;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, rows, 8192 / (K * N + 1) + 1, lb_cg_want_parallel(cg, 2 * rows * K * N), ptrs, 9, inr,
                  &begin, &end);
  LLVMBuilderRef B = cg->b;
  LLVMTypeRef i32 = cg->t_i32, f = cg->t_f32;
  LLVMValueRef accbuf = NULL;
  int64_t NC = N < QMM_NC ? N : QMM_NC;
  if (ql) {
    accbuf = LLVMBuildAlloca(B, LLVMArrayType2(i32, (uint64_t)NC), "acc");
    LLVMSetAlignment(accbuf, 64);
  }
  struct lb_cg_loop rl;
  lb_cg_for(cg, &rl, begin, end);
  LLVMValueRef row = rl.i;
  LLVMValueRef bi = LLVMBuildSDiv(B, row, lb_cg_i64(cg, M), "");
  LLVMValueRef m = LLVMBuildSRem(B, row, lb_cg_i64(cg, M), "");
  LLVMValueRef abase = atab ? LLVMBuildNSWAdd(B, lb_cg_load_ty(cg, cg->t_i64, atab, bi, 8),
                                              LLVMBuildNSWMul(B, m, lb_cg_i64(cg, K), ""), "")
                            : LLVMBuildNSWMul(B, row, lb_cg_i64(cg, K), "");
  LLVMValueRef bbase = btab ? lb_cg_load_ty(cg, cg->t_i64, btab, bi, 8) : LLVMBuildNSWMul(B, bi, lb_cg_i64(cg, K * N), "");
  LLVMValueRef azp = has_azp ? widen(cg, lb_cg_load(cg, adt, inr[2], azp_n == 1 ? lb_cg_i64(cg, 0) : m), adt, i32)
                             : LLVMConstNull(i32);
  LLVMValueRef ybase = LLVMBuildNSWMul(B, row, lb_cg_i64(cg, N), "");
  LLVMValueRef bzp_s = has_bzp && bzp_n == 1 ? widen(cg, lb_cg_load(cg, bdt, inr[3], lb_cg_i64(cg, 0)), bdt, i32) : NULL;

  /* column chunks [c0, c0 + nc) */
  int64_t nchunks = (N + NC - 1) / NC;
  struct lb_cg_loop cl;
  lb_cg_for_c(cg, &cl, 0, nchunks);
  LLVMValueRef c0 = LLVMBuildNSWMul(B, cl.i, lb_cg_i64(cg, NC), "");
  LLVMValueRef cend = LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, LLVMBuildNSWAdd(B, c0, lb_cg_i64(cg, NC), ""), lb_cg_i64(cg, N), ""),
                                      LLVMBuildNSWAdd(B, c0, lb_cg_i64(cg, NC), ""), lb_cg_i64(cg, N), "");
  LLVMValueRef nc = LLVMBuildNSWSub(B, cend, c0, "");
  /* acc row: y (i32) itself, or the stack chunk */
  LLVMValueRef accp = ql ? accbuf : lb_cg_gep(cg, i32, inr[8], LLVMBuildNSWAdd(B, ybase, c0, ""));
  struct lb_cg_loop zl;
  lb_cg_for(cg, &zl, lb_cg_i64(cg, 0), nc);
  lb_cg_store_ty(cg, i32, accp, zl.i, LLVMConstNull(i32), 4);
  lb_cg_for_end(cg, &zl);
  struct lb_cg_loop kl;
  lb_cg_for_c(cg, &kl, 0, K);
  LLVMValueRef av = widen(cg, lb_cg_load(cg, adt, inr[0], LLVMBuildNSWAdd(B, abase, kl.i, "")), adt, i32);
  av = LLVMBuildSub(B, av, azp, "");
  LLVMValueRef brow = LLVMBuildNSWAdd(B, bbase, LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, kl.i, lb_cg_i64(cg, N), ""), c0, ""), "");
  struct lb_cg_loop nl;
  lb_cg_for(cg, &nl, lb_cg_i64(cg, 0), nc);
  LLVMValueRef bv = widen(cg, lb_cg_load(cg, bdt, inr[1], LLVMBuildNSWAdd(B, brow, nl.i, "")), bdt, i32);
  if (bzp_s) bv = LLVMBuildSub(B, bv, bzp_s, "");
  else if (has_bzp) bv = LLVMBuildSub(B, bv, widen(cg, lb_cg_load(cg, bdt, inr[3], LLVMBuildNSWAdd(B, c0, nl.i, "")), bdt, i32), "");
  LLVMValueRef cur = lb_cg_load_ty(cg, i32, accp, nl.i, 4);
  lb_cg_store_ty(cg, i32, accp, nl.i, LLVMBuildAdd(B, cur, LLVMBuildMul(B, av, bv, ""), ""), 4);
  lb_cg_for_end(cg, &nl);
  lb_cg_for_end(cg, &kl);
  if (ql) {
    /* y = sat(rint(f32(acc) * (a_scale * b_scale / y_scale)) + y_zp) */
    LLVMValueRef ascale = lb_cg_load_ty(cg, f, inr[4], as_n == 1 ? lb_cg_i64(cg, 0) : m, 4);
    LLVMValueRef ys = lb_cg_load_ty(cg, f, inr[6], NULL, 4);
    LLVMValueRef yzpf = lb_cg_convert(cg, lb_cg_load(cg, odt, inr[7], NULL), odt, LB_DTYPE_F32);
    LLVMValueRef mult_s = bs_n == 1 ? LLVMBuildFDiv(B, LLVMBuildFMul(B, ascale, lb_cg_load_ty(cg, f, inr[5], NULL, 4), ""), ys, "") : NULL;
    struct lb_cg_loop ql_;
    lb_cg_for(cg, &ql_, lb_cg_i64(cg, 0), nc);
    LLVMValueRef mult = mult_s;
    if (!mult) {
      LLVMValueRef bsv = lb_cg_load_ty(cg, f, inr[5], LLVMBuildNSWAdd(B, c0, ql_.i, ""), 4);
      mult = LLVMBuildFDiv(B, LLVMBuildFMul(B, ascale, bsv, ""), ys, "");
    }
    LLVMValueRef accf = LLVMBuildSIToFP(B, lb_cg_load_ty(cg, i32, accp, ql_.i, 4), f, "");
    LLVMValueRef r = unary(cg, "llvm.rint", LLVMBuildFMul(B, accf, mult, ""));
    LLVMValueRef y = requant(cg, r, yzpf, LB_DTYPE_F32, odt);
    lb_cg_store(cg, odt, inr[8], LLVMBuildNSWAdd(B, ybase, LLVMBuildNSWAdd(B, c0, ql_.i, ""), ""), y);
    lb_cg_for_end(cg, &ql_);
  }
  lb_cg_for_end(cg, &cl);
  lb_cg_for_end(cg, &rl);
  lb_cg_par_end(cg, &p);
  return LB_OK;
}

enum lb_status lb_cg_emit_quant(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  switch (n->op) {
  case LB_OP_QUANTIZE_LINEAR: case LB_OP_DEQUANTIZE_LINEAR: return emit_qdq(cg, n, in, out);
  case LB_OP_DYNAMIC_QUANTIZE_LINEAR: return emit_dynq(cg, n, in, out);
  case LB_OP_MATMUL_INTEGER: case LB_OP_QLINEAR_MATMUL: return emit_qmm(cg, n, in, out);
  case LB_OP_QMATMUL: return lb_cg_emit_qmatmul(cg, n, in, out);
  case LB_OP_OBSERVE:
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n,
                         "observe nodes are calibration instrumentation: the calibration runner "
                         "(lowbit compile --calib) removes them before code generation");
  default: return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "no kernel for %s", lb_op_info[n->op].ir_name);
  }
}
