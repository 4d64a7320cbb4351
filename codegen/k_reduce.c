/* k_reduce.c: reduce_{mean,sum,max,min}, softmax, log_softmax, layer_norm (with its
 * optional mean / inv-std-dev outputs), batch_norm (inference and training_mode).
 *
 * Reductions: input dims are grouped into runs of kept / reduced axes (a run is
 * contiguous in memory). Output elements are the loops over the kept runs; the
 * reduced runs are inner loops carrying the accumulator (sums are marked
 * reassociable so LLVM vectorizes them with partial sums). Row-wise norms
 * (softmax over the last axis, layer_norm) use a [rows, D] view: one row per
 * iteration of a parallel range, two or three vectorized passes over D. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

static bool is_float(enum lb_dtype dt) { return lb_dtype_traits[dt].is_float; }

static LLVMValueRef red_identity(struct lb_cg *cg, enum lb_op op, enum lb_dtype dt) {
  LLVMTypeRef ty = lb_cg_type(cg, dt);
  bool s = lb_dtype_traits[dt].is_signed;
  int bits = 8 * lb_dtype_traits[dt].size;
  switch (op) {
  case LB_OP_REDUCE_MAX:
    if (is_float(dt)) return LLVMConstReal(ty, -INFINITY);
    return s ? LLVMConstInt(ty, (unsigned long long)1 << (bits - 1), 0) : LLVMConstInt(ty, 0, 0);
  case LB_OP_REDUCE_MIN:
    if (is_float(dt)) return LLVMConstReal(ty, INFINITY);
    return s ? LLVMConstInt(ty, ((unsigned long long)1 << (bits - 1)) - 1, 0) : LLVMConstAllOnes(ty);
  default: return LLVMConstNull(ty);
  }
}

static LLVMValueRef red_step(struct lb_cg *cg, enum lb_op op, enum lb_dtype dt, LLVMValueRef acc, LLVMValueRef x) {
  LLVMBuilderRef B = cg->b;
  bool fl = is_float(dt), s = lb_dtype_traits[dt].is_signed && dt != LB_DTYPE_BOOL;
  switch (op) {
  case LB_OP_REDUCE_MAX:
    if (fl) return lb_cg_fmax(cg, acc, x);
    return LLVMBuildSelect(B, LLVMBuildICmp(B, s ? LLVMIntSGT : LLVMIntUGT, x, acc, ""), x, acc, "");
  case LB_OP_REDUCE_MIN:
    if (fl) return lb_cg_fmin(cg, acc, x);
    return LLVMBuildSelect(B, LLVMBuildICmp(B, s ? LLVMIntSLT : LLVMIntULT, x, acc, ""), x, acc, "");
  default:
    return fl ? lb_cg_reassoc(LLVMBuildFAdd(B, acc, x, "")) : LLVMBuildAdd(B, acc, x, "");
  }
}

enum lb_status lb_cg_emit_reduce(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  struct lb_value *xv = n->inputs[0], *ov = n->outputs[0];
  enum lb_dtype dt = xv->type.dtype;
  if (dt == LB_DTYPE_BOOL || dt == LB_DTYPE_F16 || dt == LB_DTYPE_BF16)
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "%s on %s", lb_op_info[n->op].ir_name, lb_dtype_traits[dt].name);
  const struct lb_attr *ax = lb_node_attr(n, "axes");
  const struct lb_shape *xs = &xv->type.shape;
  bool red[LB_MAX_RANK] = {0};
  if (!ax || ax->kind != LB_ATTR_INTS) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "missing axes");
  for (int64_t i = 0; i < ax->n; i++) {
    if (ax->ints[i] < 0 || ax->ints[i] >= xs->rank) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "axis out of range");
    red[ax->ints[i]] = true;
  }
  /* group into runs */
  int ng = 0;
  int64_t gdim[LB_MAX_RANK], gst[LB_MAX_RANK];
  bool gred[LB_MAX_RANK];
  int64_t xst[LB_MAX_RANK];
  lb_cg_strides(xs, xst);
  int64_t count = 1;
  for (int d = 0; d < xs->rank; d++) {
    if (red[d]) count *= xs->dims[d];
    if (xs->dims[d] == 1) continue;
    if (ng > 0 && gred[ng - 1] == red[d]) {
      gdim[ng - 1] *= xs->dims[d];
      gst[ng - 1] = xst[d];
    } else {
      gdim[ng] = xs->dims[d];
      gst[ng] = xst[d];
      gred[ng] = red[d];
      ng++;
    }
  }
  int64_t nout = lb_shape_numel(&ov->type.shape);
  if (nout == 0) return LB_OK;
  /* kept groups: output index is row-major over them */
  int64_t kept_dims[LB_MAX_RANK], kept_st[LB_MAX_RANK];
  int nk = 0;
  for (int gi = 0; gi < ng; gi++)
    if (!gred[gi]) {
      kept_dims[nk] = gdim[gi];
      kept_st[nk] = gst[gi];
      nk++;
    }
  bool par = lb_cg_want_parallel(cg, lb_shape_numel(xs));
  LLVMValueRef ptrs[2] = {in[0], out[0]}, inr[2], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, nout, 1 + 16384 / (count ? count : 1), par, ptrs, 2, inr, &begin, &end);
  struct lb_cg_loop ol;
  lb_cg_for(cg, &ol, begin, end);
  /* input base offset of output element o */
  LLVMValueRef rem = ol.i, base = lb_cg_i64(cg, 0);
  for (int k = nk - 1; k >= 0; k--) {
    LLVMValueRef idx = k == 0 ? rem : LLVMBuildSRem(cg->b, rem, lb_cg_i64(cg, kept_dims[k]), "");
    if (k > 0) rem = LLVMBuildSDiv(cg->b, rem, lb_cg_i64(cg, kept_dims[k]), "");
    base = LLVMBuildNSWAdd(cg->b, base, LLVMBuildNSWMul(cg->b, idx, lb_cg_i64(cg, kept_st[k]), ""), "");
  }
  /* nested reduction loops over the reduced groups */
  struct lb_cg_rloop rl[LB_MAX_RANK];
  int nr = 0;
  LLVMValueRef acc = red_identity(cg, n->op, dt), off = base;
  for (int gi = 0; gi < ng; gi++) {
    if (!gred[gi]) continue;
    lb_cg_rfor(cg, &rl[nr], lb_cg_i64(cg, 0), lb_cg_i64(cg, gdim[gi]), 1, &acc);
    acc = rl[nr].phi[0];
    off = LLVMBuildNSWAdd(cg->b, off, LLVMBuildNSWMul(cg->b, rl[nr].l.i, lb_cg_i64(cg, gst[gi]), ""), "");
    nr++;
  }
  acc = red_step(cg, n->op, dt, acc, lb_cg_load(cg, dt, inr[0], off));
  for (int r = nr - 1; r >= 0; r--) {
    lb_cg_rfor_end(cg, &rl[r], &acc);
    acc = rl[r].out[0];
  }
  if (n->op == LB_OP_REDUCE_MEAN) {
    if (is_float(dt)) acc = LLVMBuildFMul(cg->b, acc, LLVMConstReal(lb_cg_type(cg, dt), 1.0 / (double)(count ? count : 1)), "");
    else if (count > 0) acc = lb_dtype_traits[dt].is_signed ? LLVMBuildSDiv(cg->b, acc, LLVMConstInt(lb_cg_type(cg, dt), (unsigned long long)count, 0), "")
                                                          : LLVMBuildUDiv(cg->b, acc, LLVMConstInt(lb_cg_type(cg, dt), (unsigned long long)count, 0), "");
  }
  lb_cg_store(cg, dt, inr[1], ol.i, acc);
  lb_cg_for_end(cg, &ol);
  lb_cg_par_end(cg, &p);
  return LB_OK;
}

/* ---- softmax / log_softmax -------------------------------------------------------- */
static enum lb_status emit_softmax(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  struct lb_value *xv = n->inputs[0];
  enum lb_dtype dt = xv->type.dtype;
  if (!is_float(dt)) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "softmax of a non-float");
  const struct lb_shape *xs = &xv->type.shape;
  int64_t axis = lb_node_attr_int(n, "axis", xs->rank - 1);
  if (axis < 0) axis += xs->rank;
  if (axis < 0 || axis >= xs->rank) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "axis out of range");
  int64_t outer = 1, A = xs->dims[axis], inner = 1;
  for (int d = 0; d < axis; d++) outer *= xs->dims[d];
  for (int d = (int)axis + 1; d < xs->rank; d++) inner *= xs->dims[d];
  if (outer * A * inner == 0) return LB_OK;
  bool logsm = n->op == LB_OP_LOG_SOFTMAX;
  LLVMTypeRef T = lb_cg_type(cg, dt);
  int64_t rows = outer * inner;
  bool par = lb_cg_want_parallel(cg, rows * A * 20);
  LLVMValueRef ptrs[2] = {in[0], out[0]}, inr[2], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, rows, 1 + 4096 / A, par, ptrs, 2, inr, &begin, &end);
  struct lb_cg_loop rlp;
  lb_cg_for(cg, &rlp, begin, end);
  /* row r = (o, i): element a at o*A*inner + a*inner + i */
  LLVMValueRef base;
  if (inner == 1) {
    base = LLVMBuildNSWMul(cg->b, rlp.i, lb_cg_i64(cg, A), "");
  } else {
    LLVMValueRef o = LLVMBuildSDiv(cg->b, rlp.i, lb_cg_i64(cg, inner), "");
    LLVMValueRef i = LLVMBuildSRem(cg->b, rlp.i, lb_cg_i64(cg, inner), "");
    base = LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, o, lb_cg_i64(cg, A * inner), ""), i, "");
  }
  LLVMValueRef step = lb_cg_i64(cg, inner);
#define IDX(a) LLVMBuildNSWAdd(cg->b, base, inner == 1 ? (a) : LLVMBuildNSWMul(cg->b, (a), step, ""), "")
  /* pass 1: max */
  LLVMValueRef init = LLVMConstReal(T, -INFINITY);
  struct lb_cg_rloop r1;
  lb_cg_rfor(cg, &r1, lb_cg_i64(cg, 0), lb_cg_i64(cg, A), 1, &init);
  LLVMValueRef x = lb_cg_load(cg, dt, inr[0], IDX(r1.l.i));
  /* max without NaN handling so it vectorizes; NaNs still propagate through exp */
  LLVMValueRef mx = LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOGT, x, r1.phi[0], ""), x, r1.phi[0], "");
  lb_cg_rfor_end(cg, &r1, &mx);
  LLVMValueRef rmax = r1.out[0];
  /* all -inf row: subtract 0 instead to avoid NaN from -inf - -inf */
  rmax = LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, LLVMRealOEQ, rmax, LLVMConstReal(T, -INFINITY), ""),
                         LLVMConstReal(T, 0), rmax, "");
  /* pass 2: sum of exp (softmax stores the exps) */
  LLVMValueRef zero = LLVMConstReal(T, 0);
  struct lb_cg_rloop r2;
  lb_cg_rfor(cg, &r2, lb_cg_i64(cg, 0), lb_cg_i64(cg, A), 1, &zero);
  LLVMValueRef idx2 = IDX(r2.l.i);
  LLVMValueRef e = lb_cg_exp(cg, LLVMBuildFSub(cg->b, lb_cg_load(cg, dt, inr[0], idx2), rmax, ""));
  if (!logsm) lb_cg_store(cg, dt, inr[1], idx2, e);
  LLVMValueRef s = lb_cg_reassoc(LLVMBuildFAdd(cg->b, r2.phi[0], e, ""));
  lb_cg_rfor_end(cg, &r2, &s);
  LLVMValueRef sum = r2.out[0];
  /* pass 3: normalize */
  LLVMValueRef k = logsm ? LLVMBuildFAdd(cg->b, rmax, lb_cg_log(cg, sum), "")
                         : LLVMBuildFDiv(cg->b, LLVMConstReal(T, 1.0), sum, "");
  struct lb_cg_loop l3;
  lb_cg_for_c(cg, &l3, 0, A);
  LLVMValueRef idx3 = IDX(l3.i);
  LLVMValueRef y = logsm ? LLVMBuildFSub(cg->b, lb_cg_load(cg, dt, inr[0], idx3), k, "")
                         : LLVMBuildFMul(cg->b, lb_cg_load(cg, dt, inr[1], idx3), k, "");
  lb_cg_store(cg, dt, inr[1], idx3, y);
  lb_cg_for_end(cg, &l3);
#undef IDX
  lb_cg_for_end(cg, &rlp);
  lb_cg_par_end(cg, &p);
  return LB_OK;
}

/* ---- layer_norm ---------------------------------------------------------------------- */
/* index of element d of a per-row parameter of shape s broadcast to the normalized dims */
static bool param_mode(const struct lb_value *v, int64_t D, int *mode) {
  int64_t c = lb_shape_numel(&v->type.shape);
  if (c == D) *mode = 1;
  else if (c == 1) *mode = 0;
  else return false;
  return true;
}

static enum lb_status emit_layer_norm(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  struct lb_value *xv = n->inputs[0];
  enum lb_dtype dt = xv->type.dtype;
  if (!is_float(dt)) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "layer_norm of a non-float");
  const struct lb_shape *xs = &xv->type.shape;
  int64_t axis = lb_node_attr_int(n, "axis", -1);
  if (axis < 0) axis += xs->rank;
  if (axis < 0 || axis >= xs->rank) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "axis out of range");
  double eps = lb_node_attr_float(n, "epsilon", 1e-5);
  int64_t rows = 1, D = 1;
  for (int d = 0; d < axis; d++) rows *= xs->dims[d];
  for (int d = (int)axis; d < xs->rank; d++) D *= xs->dims[d];
  if (rows * D == 0) return LB_OK;
  int smode = 0, bmode = 0;
  bool has_bias = n->n_inputs > 2 && n->inputs[2];
  if (!param_mode(n->inputs[1], D, &smode) || (has_bias && !param_mode(n->inputs[2], D, &bmode)))
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "layer_norm scale/bias must have the normalized shape");
  enum lb_dtype sdt = n->inputs[1]->type.dtype, bdt = has_bias ? n->inputs[2]->type.dtype : dt;
  LLVMTypeRef T = lb_cg_type(cg, dt);
  bool extra = n->n_outputs > 1;
  LLVMValueRef ptrs[6] = {in[0], in[1], has_bias ? in[2] : LLVMConstNull(cg->t_ptr), out[0],
                          extra ? out[1] : LLVMConstNull(cg->t_ptr),
                          n->n_outputs > 2 ? out[2] : LLVMConstNull(cg->t_ptr)};
  LLVMValueRef inr[6], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, rows, 1 + 4096 / D, lb_cg_want_parallel(cg, rows * D * 8), ptrs, 6, inr, &begin, &end);
  struct lb_cg_loop rl;
  lb_cg_for(cg, &rl, begin, end);
  LLVMValueRef base = LLVMBuildNSWMul(cg->b, rl.i, lb_cg_i64(cg, D), "");
  LLVMValueRef zero = LLVMConstReal(T, 0);
  struct lb_cg_rloop r1;
  lb_cg_rfor(cg, &r1, lb_cg_i64(cg, 0), lb_cg_i64(cg, D), 1, &zero);
  LLVMValueRef s = lb_cg_reassoc(LLVMBuildFAdd(cg->b, r1.phi[0], lb_cg_load(cg, dt, inr[0], LLVMBuildNSWAdd(cg->b, base, r1.l.i, "")), ""));
  lb_cg_rfor_end(cg, &r1, &s);
  LLVMValueRef mean = LLVMBuildFMul(cg->b, r1.out[0], LLVMConstReal(T, 1.0 / (double)D), "");
  struct lb_cg_rloop r2;
  lb_cg_rfor(cg, &r2, lb_cg_i64(cg, 0), lb_cg_i64(cg, D), 1, &zero);
  LLVMValueRef dlt = LLVMBuildFSub(cg->b, lb_cg_load(cg, dt, inr[0], LLVMBuildNSWAdd(cg->b, base, r2.l.i, "")), mean, "");
  LLVMValueRef s2 = lb_cg_reassoc(LLVMBuildFAdd(cg->b, r2.phi[0], LLVMBuildFMul(cg->b, dlt, dlt, ""), ""));
  lb_cg_rfor_end(cg, &r2, &s2);
  LLVMValueRef var = LLVMBuildFMul(cg->b, r2.out[0], LLVMConstReal(T, 1.0 / (double)D), "");
  LLVMValueRef args[1] = {LLVMBuildFAdd(cg->b, var, LLVMConstReal(T, eps), "")};
  LLVMValueRef rstd = LLVMBuildFDiv(cg->b, LLVMConstReal(T, 1.0), lb_cg_intrin(cg, "llvm.sqrt", T, args, 1), "");
  struct lb_cg_loop l3;
  lb_cg_for_c(cg, &l3, 0, D);
  LLVMValueRef idx = LLVMBuildNSWAdd(cg->b, base, l3.i, "");
  LLVMValueRef y = LLVMBuildFMul(cg->b, LLVMBuildFSub(cg->b, lb_cg_load(cg, dt, inr[0], idx), mean, ""), rstd, "");
  LLVMValueRef sc = lb_cg_convert(cg, lb_cg_load(cg, sdt, inr[1], smode ? l3.i : lb_cg_i64(cg, 0)), sdt, dt);
  y = LLVMBuildFMul(cg->b, y, sc, "");
  if (has_bias) y = LLVMBuildFAdd(cg->b, y, lb_cg_convert(cg, lb_cg_load(cg, bdt, inr[2], bmode ? l3.i : lb_cg_i64(cg, 0)), bdt, dt), "");
  lb_cg_store(cg, dt, inr[3], idx, y);
  lb_cg_for_end(cg, &l3);
  if (extra) lb_cg_store(cg, n->outputs[1]->type.dtype, inr[4], rl.i, lb_cg_convert(cg, mean, dt, n->outputs[1]->type.dtype));
  if (n->n_outputs > 2)
    lb_cg_store(cg, n->outputs[2]->type.dtype, inr[5], rl.i, lb_cg_convert(cg, rstd, dt, n->outputs[2]->type.dtype));
  lb_cg_for_end(cg, &rl);
  lb_cg_par_end(cg, &p);
  return LB_OK;
}

/* ---- batch_norm (training_mode=1) ------------------------------------------------------ */
/* One channel per iteration of a parallel range: mean and population variance over
 * the batch and spatial dims (two passes), then y = x * a + b with a = scale / sqrt(var +
 * eps), b = bias - mean * a; outputs 1, 2: input stat * momentum + batch stat * (1 - momentum). */
static enum lb_status emit_batch_norm_train(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  enum lb_dtype dt = n->inputs[0]->type.dtype;
  const struct lb_shape *xs = &n->inputs[0]->type.shape;
  double eps = lb_node_attr_float(n, "epsilon", 1e-5), mom = lb_node_attr_float(n, "momentum", 0.9);
  int64_t N = xs->dims[0], C = xs->dims[1], S = 1;
  for (int d = 2; d < xs->rank; d++) S *= xs->dims[d];
  for (int i = 1; i < 5; i++)
    if (n->inputs[i]->type.dtype != dt) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "batch_norm parameter types differ");
  for (int i = 1; i < n->n_outputs; i++)
    if (n->outputs[i]->type.dtype != dt) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "batch_norm output types differ");
  if (C == 0) return LB_OK;
  LLVMTypeRef T = lb_cg_type(cg, dt);
  LLVMBuilderRef B = cg->b;
  LLVMValueRef nullp = LLVMConstNull(cg->t_ptr);
  LLVMValueRef ptrs[8] = {in[0], in[1], in[2], in[3], in[4], out[0], n->n_outputs > 1 ? out[1] : nullp,
                          n->n_outputs > 2 ? out[2] : nullp};
  LLVMValueRef inr[8], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, C, 1 + 16384 / (N * S + 1), lb_cg_want_parallel(cg, C * N * S * 4), ptrs, 8, inr, &begin, &end);
  struct lb_cg_loop cl;
  lb_cg_for(cg, &cl, begin, end);
  LLVMValueRef c = cl.i;
  LLVMValueRef zero = LLVMConstReal(T, 0);
  /* element (b, s) of channel c: (b * C + c) * S + s */
#define BN_IDX(bi, si) LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, (bi), lb_cg_i64(cg, C), ""), c, ""), lb_cg_i64(cg, S), ""), (si), "")
  LLVMValueRef mean = zero, var = zero;
  if (N * S > 0) {
    struct lb_cg_rloop rb, rs;
    lb_cg_rfor(cg, &rb, lb_cg_i64(cg, 0), lb_cg_i64(cg, N), 1, &zero);
    lb_cg_rfor(cg, &rs, lb_cg_i64(cg, 0), lb_cg_i64(cg, S), 1, &rb.phi[0]);
    LLVMValueRef sum = lb_cg_reassoc(LLVMBuildFAdd(B, rs.phi[0], lb_cg_load(cg, dt, inr[0], BN_IDX(rb.l.i, rs.l.i)), ""));
    lb_cg_rfor_end(cg, &rs, &sum);
    lb_cg_rfor_end(cg, &rb, &rs.out[0]);
    mean = LLVMBuildFMul(B, rb.out[0], LLVMConstReal(T, 1.0 / (double)(N * S)), "");
    struct lb_cg_rloop qb, qs;
    lb_cg_rfor(cg, &qb, lb_cg_i64(cg, 0), lb_cg_i64(cg, N), 1, &zero);
    lb_cg_rfor(cg, &qs, lb_cg_i64(cg, 0), lb_cg_i64(cg, S), 1, &qb.phi[0]);
    LLVMValueRef dl = LLVMBuildFSub(B, lb_cg_load(cg, dt, inr[0], BN_IDX(qb.l.i, qs.l.i)), mean, "");
    LLVMValueRef sq = lb_cg_reassoc(LLVMBuildFAdd(B, qs.phi[0], LLVMBuildFMul(B, dl, dl, ""), ""));
    lb_cg_rfor_end(cg, &qs, &sq);
    lb_cg_rfor_end(cg, &qb, &qs.out[0]);
    var = LLVMBuildFMul(B, qb.out[0], LLVMConstReal(T, 1.0 / (double)(N * S)), "");
  } else {
    mean = var = LLVMConstReal(T, NAN); /* an empty batch has no statistics */
  }
  LLVMValueRef km = LLVMConstReal(T, mom), k1 = LLVMConstReal(T, 1.0 - mom);
  if (n->n_outputs > 1)
    lb_cg_store(cg, dt, inr[6], c, LLVMBuildFAdd(B, LLVMBuildFMul(B, lb_cg_load(cg, dt, inr[3], c), km, ""), LLVMBuildFMul(B, mean, k1, ""), ""));
  if (n->n_outputs > 2)
    lb_cg_store(cg, dt, inr[7], c, LLVMBuildFAdd(B, LLVMBuildFMul(B, lb_cg_load(cg, dt, inr[4], c), km, ""), LLVMBuildFMul(B, var, k1, ""), ""));
  if (N * S > 0) {
    LLVMValueRef args[1] = {LLVMBuildFAdd(B, var, LLVMConstReal(T, eps), "")};
    LLVMValueRef a = LLVMBuildFDiv(B, lb_cg_load(cg, dt, inr[1], c), lb_cg_intrin(cg, "llvm.sqrt", T, args, 1), "");
    LLVMValueRef b = LLVMBuildFSub(B, lb_cg_load(cg, dt, inr[2], c), LLVMBuildFMul(B, mean, a, ""), "");
    struct lb_cg_loop yb, ys;
    lb_cg_for_c(cg, &yb, 0, N);
    lb_cg_for_c(cg, &ys, 0, S);
    LLVMValueRef idx = BN_IDX(yb.i, ys.i);
    lb_cg_store(cg, dt, inr[5], idx, lb_cg_fma(cg, lb_cg_load(cg, dt, inr[0], idx), a, b));
    lb_cg_for_end(cg, &ys);
    lb_cg_for_end(cg, &yb);
  }
#undef BN_IDX
  lb_cg_for_end(cg, &cl);
  lb_cg_par_end(cg, &p);
  return LB_OK;
}

/* ---- batch_norm (inference) ---------------------------------------------------------- */
static enum lb_status emit_batch_norm(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  struct lb_value *xv = n->inputs[0];
  enum lb_dtype dt = xv->type.dtype;
  if (!is_float(dt)) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "batch_norm of a non-float");
  const struct lb_shape *xs = &xv->type.shape;
  if (xs->rank < 2) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "batch_norm input needs a channel dim");
  double eps = lb_node_attr_float(n, "epsilon", 1e-5);
  int64_t N = xs->dims[0], C = xs->dims[1], S = 1;
  for (int d = 2; d < xs->rank; d++) S *= xs->dims[d];
  for (int i = 1; i < 5; i++)
    if (!n->inputs[i] || lb_shape_numel(&n->inputs[i]->type.shape) != C)
      return lb_diag_error(cg->d, LB_ERR_INVALID, n, "batch_norm parameter %d must have C elements", i);
  if (lb_node_attr_int(n, "training_mode", 0)) return emit_batch_norm_train(cg, n, in, out);
  if (n->n_outputs > 1) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "inference batch_norm has one output");
  if (N * C * S == 0) return LB_OK;
  LLVMTypeRef T = lb_cg_type(cg, dt);
  /* fold into y = x * a[c] + b[c] when every parameter is constant */
  bool all_const = true;
  for (int i = 1; i < 5; i++)
    if (!lb_value_const_data(cg->g, n->inputs[i])) all_const = false;
  LLVMValueRef pa = NULL, pb = NULL;
  enum lb_dtype pdt = LB_DTYPE_F64;
  if (all_const) {
    double *a = malloc(sizeof *a * (size_t)C), *b = malloc(sizeof *b * (size_t)C);
    if (!a || !b) abort();
    const void *pd[5];
    for (int i = 1; i < 5; i++) pd[i] = lb_value_const_data(cg->g, n->inputs[i]);
    for (int64_t c = 0; c < C; c++) {
      double v[5];
      for (int i = 1; i < 5; i++) {
        enum lb_dtype t = n->inputs[i]->type.dtype;
        v[i] = t == LB_DTYPE_F32 ? ((const float *)pd[i])[c] : t == LB_DTYPE_F64 ? ((const double *)pd[i])[c] : NAN;
      }
      a[c] = v[1] / sqrt(v[4] + eps);
      b[c] = v[2] - v[3] * a[c];
    }
    if (dt == LB_DTYPE_F32) {
      float *af = malloc(sizeof *af * (size_t)C), *bf = malloc(sizeof *bf * (size_t)C);
      if (!af || !bf) abort();
      for (int64_t c = 0; c < C; c++) {
        af[c] = (float)a[c];
        bf[c] = (float)b[c];
      }
      pa = lb_cg_global_data(cg, "bn_a", af, sizeof *af * (size_t)C);
      pb = lb_cg_global_data(cg, "bn_b", bf, sizeof *bf * (size_t)C);
      pdt = LB_DTYPE_F32;
      free(af);
      free(bf);
    } else {
      pa = lb_cg_global_data(cg, "bn_a", a, sizeof *a * (size_t)C);
      pb = lb_cg_global_data(cg, "bn_b", b, sizeof *b * (size_t)C);
    }
    free(a);
    free(b);
  }
  LLVMValueRef ptrs[7] = {in[0], in[1], in[2], in[3], in[4], out[0], pa ? pa : LLVMConstNull(cg->t_ptr)};
  LLVMValueRef inr[8], begin, end;
  struct lb_cg_par p;
  LLVMValueRef ptrs8[8];
  memcpy(ptrs8, ptrs, sizeof ptrs);
  ptrs8[7] = pb ? pb : LLVMConstNull(cg->t_ptr);
  lb_cg_par_begin(cg, &p, N * C, 1 + 16384 / S, lb_cg_want_parallel(cg, N * C * S * 2), ptrs8, 8, inr, &begin, &end);
  struct lb_cg_loop l;
  lb_cg_for(cg, &l, begin, end);
  LLVMValueRef c = LLVMBuildSRem(cg->b, l.i, lb_cg_i64(cg, C), "");
  LLVMValueRef a, b;
  if (all_const) {
    a = lb_cg_convert(cg, lb_cg_load(cg, pdt, inr[6], c), pdt, dt);
    b = lb_cg_convert(cg, lb_cg_load(cg, pdt, inr[7], c), pdt, dt);
  } else {
    LLVMValueRef v[5];
    for (int i = 1; i < 5; i++) {
      enum lb_dtype t = n->inputs[i]->type.dtype;
      v[i] = lb_cg_convert(cg, lb_cg_load(cg, t, inr[i], c), t, dt);
    }
    LLVMValueRef args[1] = {LLVMBuildFAdd(cg->b, v[4], LLVMConstReal(T, eps), "")};
    a = LLVMBuildFDiv(cg->b, v[1], lb_cg_intrin(cg, "llvm.sqrt", T, args, 1), "");
    b = LLVMBuildFSub(cg->b, v[2], LLVMBuildFMul(cg->b, v[3], a, ""), "");
  }
  LLVMValueRef base = LLVMBuildNSWMul(cg->b, l.i, lb_cg_i64(cg, S), "");
  struct lb_cg_loop sl;
  lb_cg_for_c(cg, &sl, 0, S);
  LLVMValueRef idx = LLVMBuildNSWAdd(cg->b, base, sl.i, "");
  LLVMValueRef y = lb_cg_fma(cg, lb_cg_load(cg, dt, inr[0], idx), a, b);
  lb_cg_store(cg, dt, inr[5], idx, y);
  lb_cg_for_end(cg, &sl);
  lb_cg_for_end(cg, &l);
  lb_cg_par_end(cg, &p);
  return LB_OK;
}

enum lb_status lb_cg_emit_norm(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  switch (n->op) {
  case LB_OP_SOFTMAX: case LB_OP_LOG_SOFTMAX: return emit_softmax(cg, n, in, out);
  case LB_OP_LAYER_NORM: return emit_layer_norm(cg, n, in, out);
  case LB_OP_BATCH_NORM: return emit_batch_norm(cg, n, in, out);
  default: return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "no kernel for op '%s'", lb_op_info[n->op].ir_name);
  }
}
