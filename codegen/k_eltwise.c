/* k_eltwise.c: elementwise unary, binary and n-ary ops with numpy broadcasting,
 * where, clip, cast, comparisons, logical ops.
 *
 * Every op goes through one loop-nest emitter (lb_cg_ew_strided): dims of size 1
 * are dropped and neighbouring dims merged when every operand is contiguous across
 * them, so the inner loop is as long as possible with stride 1 or 0; LLVM then
 * vectorizes it. The per-element function (ew_apply) is plain IR. */
#include <math.h>
#include <string.h>

#include "codegen/cg.h"

/* ---- loop nest ------------------------------------------------------------------ */
struct ew_nest {
  int rank, nin;
  int64_t dims[LB_MAX_RANK];
  int64_t st[17][LB_MAX_RANK]; /* operand strides, last = output */
};

static void ew_collapse(struct ew_nest *e) {
  int nops = e->nin + 1;
  /* drop size-1 dims */
  int r = 0;
  for (int d = 0; d < e->rank; d++) {
    if (e->dims[d] == 1) continue;
    e->dims[r] = e->dims[d];
    for (int k = 0; k < nops; k++) e->st[k][r] = e->st[k][d];
    r++;
  }
  if (r == 0) {
    e->dims[0] = 1;
    for (int k = 0; k < nops; k++) e->st[k][0] = 0;
    r = 1;
  }
  /* merge d into d+1 when contiguous for every operand */
  int w = 0;
  for (int d = 1; d < r; d++) {
    bool ok = true;
    for (int k = 0; k < nops; k++)
      if (e->st[k][w] != e->st[k][d] * e->dims[d]) ok = false;
    if (ok) {
      e->dims[w] *= e->dims[d];
      for (int k = 0; k < nops; k++) e->st[k][w] = e->st[k][d];
    } else {
      w++;
      e->dims[w] = e->dims[d];
      for (int k = 0; k < nops; k++) e->st[k][w] = e->st[k][d];
    }
  }
  e->rank = w + 1;
}

void lb_cg_ew_strided(struct lb_cg *cg, int nin, const LLVMValueRef *bases, const enum lb_dtype *dts,
                      const int64_t (*strides)[LB_MAX_RANK], LLVMValueRef out, enum lb_dtype odt,
                      const struct lb_shape *oshape, lb_cg_ew_fn f, void *ud, int64_t cost) {
  LB_ASSERT(nin <= 16);
  struct ew_nest e;
  memset(&e, 0, sizeof e);
  e.rank = oshape->rank;
  e.nin = nin;
  for (int d = 0; d < e.rank; d++) e.dims[d] = oshape->dims[d];
  for (int k = 0; k < nin; k++)
    for (int d = 0; d < e.rank; d++) e.st[k][d] = strides[k][d];
  lb_cg_strides(oshape, e.st[nin]);
  int64_t numel = lb_shape_numel(oshape);
  if (numel == 0) return;
  ew_collapse(&e);

  /* parallel over dim 0; inner dims in full */
  int64_t inner = 1;
  for (int d = 1; d < e.rank; d++) inner *= e.dims[d];
  bool par = lb_cg_want_parallel(cg, numel * (cost < 1 ? 1 : cost) * 4);
  int64_t grain = 16384 / (inner * (cost < 1 ? 1 : cost)) + 1;
  LLVMValueRef ptrs[17], inr[17], begin, end;
  for (int k = 0; k < nin; k++) ptrs[k] = bases[k];
  ptrs[nin] = out;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, e.dims[0], grain, par, ptrs, nin + 1, inr, &begin, &end);
  struct lb_cg_loop loops[LB_MAX_RANK];
  LLVMValueRef off[17];
  for (int k = 0; k <= nin; k++) off[k] = lb_cg_i64(cg, 0);
  for (int d = 0; d < e.rank; d++) {
    if (d == 0) lb_cg_for(cg, &loops[d], begin, end);
    else lb_cg_for_c(cg, &loops[d], 0, e.dims[d]);
    for (int k = 0; k <= nin; k++) {
      if (e.st[k][d] == 0) continue;
      LLVMValueRef t = e.st[k][d] == 1 ? loops[d].i : LLVMBuildNSWMul(cg->b, loops[d].i, lb_cg_i64(cg, e.st[k][d]), "");
      off[k] = LLVMBuildNSWAdd(cg->b, off[k], t, "");
    }
  }
  LLVMValueRef x[16];
  for (int k = 0; k < nin; k++) x[k] = lb_cg_load(cg, dts[k], inr[k], off[k]);
  LLVMValueRef y = f(cg, ud, x);
  lb_cg_store(cg, odt, inr[nin], off[nin], y);
  for (int d = e.rank - 1; d >= 0; d--) lb_cg_for_end(cg, &loops[d]);
  lb_cg_par_end(cg, &p);
}

/* ---- per-element semantics -------------------------------------------------------- */
struct ew_ctx {
  struct lb_node *n;
  enum lb_dtype in_dt[16];
  enum lb_dtype out_dt;
  int nin;
  double pow_const; /* NAN unless pow's exponent is a known scalar */
  bool clip_has_min, clip_has_max;
};

static bool is_float(enum lb_dtype dt) { return lb_dtype_traits[dt].is_float; }
static bool is_signed(enum lb_dtype dt) { return lb_dtype_traits[dt].is_signed && dt != LB_DTYPE_BOOL; }

static LLVMValueRef gen_max(struct lb_cg *cg, enum lb_dtype dt, LLVMValueRef a, LLVMValueRef b) {
  if (is_float(dt)) return lb_cg_fmax(cg, a, b);
  LLVMValueRef c = LLVMBuildICmp(cg->b, is_signed(dt) ? LLVMIntSGT : LLVMIntUGT, a, b, "");
  return LLVMBuildSelect(cg->b, c, a, b, "");
}

static LLVMValueRef gen_min(struct lb_cg *cg, enum lb_dtype dt, LLVMValueRef a, LLVMValueRef b) {
  if (is_float(dt)) return lb_cg_fmin(cg, a, b);
  LLVMValueRef c = LLVMBuildICmp(cg->b, is_signed(dt) ? LLVMIntSLT : LLVMIntULT, a, b, "");
  return LLVMBuildSelect(cg->b, c, a, b, "");
}

static LLVMValueRef unary_intrin(struct lb_cg *cg, const char *name, LLVMValueRef x) {
  LLVMValueRef a[1] = {x};
  return lb_cg_intrin(cg, name, LLVMTypeOf(x), a, 1);
}

static LLVMValueRef int_div(struct lb_cg *cg, enum lb_dtype dt, LLVMValueRef a, LLVMValueRef b, bool rem) {
  LLVMBuilderRef B = cg->b;
  LLVMTypeRef ty = LLVMTypeOf(a);
  LLVMValueRef zero = LLVMConstNull(ty), one = LLVMConstInt(ty, 1, 0);
  LLVMValueRef bz = LLVMBuildICmp(B, LLVMIntEQ, b, zero, "");
  if (!is_signed(dt)) {
    LLVMValueRef den = LLVMBuildSelect(B, bz, one, b, "");
    LLVMValueRef q = rem ? LLVMBuildURem(B, a, den, "") : LLVMBuildUDiv(B, a, den, "");
    return LLVMBuildSelect(B, bz, zero, q, "");
  }
  /* avoid the traps of x/0 and INT_MIN/-1 */
  LLVMValueRef bm1 = LLVMBuildICmp(B, LLVMIntEQ, b, LLVMConstAllOnes(ty), "");
  LLVMValueRef den = LLVMBuildSelect(B, LLVMBuildOr(B, bz, bm1, ""), one, b, "");
  LLVMValueRef q = rem ? LLVMBuildSRem(B, a, den, "") : LLVMBuildSDiv(B, a, den, "");
  q = LLVMBuildSelect(B, bm1, rem ? zero : LLVMBuildSub(B, zero, a, ""), q, "");
  return LLVMBuildSelect(B, bz, zero, q, "");
}

static LLVMValueRef ew_apply(struct lb_cg *cg, void *ud, LLVMValueRef *x) {
  struct ew_ctx *c = ud;
  struct lb_node *n = c->n;
  LLVMBuilderRef B = cg->b;
  enum lb_dtype dt = c->in_dt[0];
  bool fl = is_float(dt);
  LLVMValueRef a = x[0];
  LLVMTypeRef ty = LLVMTypeOf(a);
  switch (n->op) {
  case LB_OP_IDENTITY: case LB_OP_DROPOUT: return a;
  case LB_OP_NEG: return fl ? LLVMBuildFNeg(B, a, "") : LLVMBuildNeg(B, a, "");
  case LB_OP_ABS:
    if (fl) return unary_intrin(cg, "llvm.fabs", a);
    if (!is_signed(dt)) return a;
    return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, a, LLVMConstNull(ty), ""), LLVMBuildNeg(B, a, ""), a, "");
  case LB_OP_SQRT: return unary_intrin(cg, "llvm.sqrt", a);
  case LB_OP_RECIPROCAL: return LLVMBuildFDiv(B, lb_cg_fconst(ty, 1.0), a, "");
  case LB_OP_EXP: return lb_cg_exp(cg, a);
  case LB_OP_LOG: return lb_cg_log(cg, a);
  case LB_OP_ERF: return lb_cg_erf(cg, a);
  case LB_OP_TANH: return lb_cg_tanh(cg, a);
  case LB_OP_SIGMOID: return lb_cg_sigmoid(cg, a);
  case LB_OP_RELU:
    if (fl) return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOLT, a, lb_cg_fconst(ty, 0), ""), lb_cg_fconst(ty, 0), a, "");
    if (!is_signed(dt)) return a;
    return LLVMBuildSelect(B, LLVMBuildICmp(B, LLVMIntSLT, a, LLVMConstNull(ty), ""), LLVMConstNull(ty), a, "");
  case LB_OP_LEAKY_RELU: {
    double al = lb_node_attr_float(n, "alpha", 0.01);
    return LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOLT, a, lb_cg_fconst(ty, 0), ""),
                           LLVMBuildFMul(B, a, lb_cg_fconst(ty, al), ""), a, "");
  }
  case LB_OP_HARD_SIGMOID: case LB_OP_HARD_SWISH: {
    bool sw = n->op == LB_OP_HARD_SWISH;
    double al = sw ? 1.0 / 6.0 : lb_node_attr_float(n, "alpha", 0.2);
    double be = sw ? 0.5 : lb_node_attr_float(n, "beta", 0.5);
    LLVMValueRef t = lb_cg_fma(cg, a, lb_cg_fconst(ty, al), lb_cg_fconst(ty, be));
    t = LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOGT, t, lb_cg_fconst(ty, 1), ""), lb_cg_fconst(ty, 1), t, "");
    t = LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOLT, t, lb_cg_fconst(ty, 0), ""), lb_cg_fconst(ty, 0), t, "");
    return sw ? LLVMBuildFMul(B, a, t, "") : t;
  }
  case LB_OP_GELU: {
    const char *ap = lb_node_attr_string(n, "approximate", "none");
    return lb_cg_gelu(cg, a, !strcmp(ap, "tanh"));
  }
  case LB_OP_SIN: return unary_intrin(cg, "llvm.sin", a);
  case LB_OP_COS: return unary_intrin(cg, "llvm.cos", a);
  case LB_OP_FLOOR: return unary_intrin(cg, "llvm.floor", a);
  case LB_OP_CEIL: return unary_intrin(cg, "llvm.ceil", a);
  case LB_OP_NOT:
    return LLVMBuildZExt(B, LLVMBuildICmp(B, LLVMIntEQ, a, LLVMConstNull(ty), ""), ty, "");
  case LB_OP_CAST: return lb_cg_convert(cg, a, dt, c->out_dt);
  case LB_OP_CLIP: {
    int k = 1;
    if (c->clip_has_min) a = gen_max(cg, dt, a, x[k++]);
    if (c->clip_has_max) a = gen_min(cg, dt, a, x[k++]);
    if (fl) { /* keep NaN inputs NaN */
      LLVMValueRef nan = LLVMBuildFCmp(B, LLVMRealUNO, x[0], x[0], "");
      a = LLVMBuildSelect(B, nan, x[0], a, "");
    }
    return a;
  }
  case LB_OP_ADD: return fl ? LLVMBuildFAdd(B, a, x[1], "") : LLVMBuildAdd(B, a, x[1], "");
  case LB_OP_SUB: return fl ? LLVMBuildFSub(B, a, x[1], "") : LLVMBuildSub(B, a, x[1], "");
  case LB_OP_MUL: return fl ? LLVMBuildFMul(B, a, x[1], "") : LLVMBuildMul(B, a, x[1], "");
  case LB_OP_DIV: return fl ? LLVMBuildFDiv(B, a, x[1], "") : int_div(cg, dt, a, x[1], false);
  case LB_OP_POW: {
    if (fl) {
      double pc = c->pow_const;
      if (pc == 1.0) return a;
      if (pc == 2.0) return LLVMBuildFMul(B, a, a, "");
      if (pc == 3.0) return LLVMBuildFMul(B, LLVMBuildFMul(B, a, a, ""), a, "");
      if (pc == 0.5) return unary_intrin(cg, "llvm.sqrt", a);
      if (pc == -1.0) return LLVMBuildFDiv(B, lb_cg_fconst(ty, 1.0), a, "");
      LLVMValueRef e = lb_cg_convert(cg, x[1], c->in_dt[1], dt);
      LLVMValueRef args[2] = {a, e};
      return lb_cg_intrin(cg, "llvm.pow", ty, args, 2);
    }
    LLVMValueRef af = lb_cg_convert(cg, a, dt, LB_DTYPE_F64);
    LLVMValueRef ef = lb_cg_convert(cg, x[1], c->in_dt[1], LB_DTYPE_F64);
    LLVMValueRef args[2] = {af, ef};
    return lb_cg_convert(cg, lb_cg_intrin(cg, "llvm.pow", cg->t_f64, args, 2), LB_DTYPE_F64, dt);
  }
  case LB_OP_MIN: case LB_OP_MAX: {
    LLVMValueRef r = a;
    for (int k = 1; k < c->nin; k++) r = n->op == LB_OP_MIN ? gen_min(cg, dt, r, x[k]) : gen_max(cg, dt, r, x[k]);
    return r;
  }
  case LB_OP_EQUAL: case LB_OP_LESS: case LB_OP_LESS_EQUAL: case LB_OP_GREATER: case LB_OP_GREATER_EQUAL: {
    LLVMValueRef cmp;
    if (fl) {
      LLVMRealPredicate p = n->op == LB_OP_EQUAL ? LLVMRealOEQ : n->op == LB_OP_LESS ? LLVMRealOLT
                            : n->op == LB_OP_LESS_EQUAL ? LLVMRealOLE : n->op == LB_OP_GREATER ? LLVMRealOGT : LLVMRealOGE;
      cmp = LLVMBuildFCmp(B, p, a, x[1], "");
    } else {
      bool s = is_signed(dt);
      LLVMIntPredicate p = n->op == LB_OP_EQUAL ? LLVMIntEQ
                           : n->op == LB_OP_LESS ? (s ? LLVMIntSLT : LLVMIntULT)
                           : n->op == LB_OP_LESS_EQUAL ? (s ? LLVMIntSLE : LLVMIntULE)
                           : n->op == LB_OP_GREATER ? (s ? LLVMIntSGT : LLVMIntUGT) : (s ? LLVMIntSGE : LLVMIntUGE);
      cmp = LLVMBuildICmp(B, p, a, x[1], "");
    }
    return LLVMBuildZExt(B, cmp, cg->t_i8, "");
  }
  case LB_OP_AND: case LB_OP_OR: {
    LLVMValueRef an = LLVMBuildICmp(B, LLVMIntNE, a, LLVMConstNull(ty), "");
    LLVMValueRef bn = LLVMBuildICmp(B, LLVMIntNE, x[1], LLVMConstNull(LLVMTypeOf(x[1])), "");
    LLVMValueRef r = n->op == LB_OP_AND ? LLVMBuildAnd(B, an, bn, "") : LLVMBuildOr(B, an, bn, "");
    return LLVMBuildZExt(B, r, cg->t_i8, "");
  }
  case LB_OP_WHERE: {
    LLVMValueRef cn = LLVMBuildICmp(B, LLVMIntNE, a, LLVMConstNull(ty), "");
    return LLVMBuildSelect(B, cn, x[1], x[2], "");
  }
  default: break;
  }
  LB_ASSERT(!"ew_apply: unhandled op");
  return NULL;
}

static bool float_only(enum lb_op op) {
  switch (op) {
  case LB_OP_SQRT: case LB_OP_RECIPROCAL: case LB_OP_EXP: case LB_OP_LOG: case LB_OP_ERF: case LB_OP_TANH:
  case LB_OP_SIGMOID: case LB_OP_LEAKY_RELU: case LB_OP_HARD_SIGMOID: case LB_OP_HARD_SWISH: case LB_OP_GELU:
  case LB_OP_SIN: case LB_OP_COS: case LB_OP_FLOOR: case LB_OP_CEIL:
    return true;
  default: return false;
  }
}

static int64_t op_cost(enum lb_op op) {
  switch (op) {
  case LB_OP_EXP: case LB_OP_LOG: case LB_OP_SIGMOID: return 20;
  case LB_OP_TANH: case LB_OP_ERF: case LB_OP_GELU: return 30;
  case LB_OP_SIN: case LB_OP_COS: case LB_OP_POW: return 40;
  default: return 1;
  }
}

enum lb_status lb_cg_emit_eltwise(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  struct ew_ctx c;
  memset(&c, 0, sizeof c);
  c.n = n;
  c.pow_const = NAN;
  struct lb_value *ov = n->outputs[0];
  c.out_dt = ov->type.dtype;
  LLVMValueRef bases[16];
  int64_t st[16][LB_MAX_RANK];
  int nin = 0;
  if (n->n_inputs > 16) return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "more than 16 inputs");
  for (int i = 0; i < n->n_inputs; i++) {
    struct lb_value *v = n->inputs[i];
    if (!v) continue;
    if (n->op == LB_OP_DROPOUT && i > 0) break; /* ratio, training_mode */
    if (v->type.shape.rank > ov->type.shape.rank)
      return lb_diag_error(cg->d, LB_ERR_INVALID, n, "input %d has a higher rank than the output", i);
    bases[nin] = in[i];
    c.in_dt[nin] = v->type.dtype;
    lb_cg_bcast_strides(&v->type.shape, &ov->type.shape, st[nin]);
    nin++;
  }
  if (n->op == LB_OP_CLIP) {
    c.clip_has_min = n->n_inputs > 1 && n->inputs[1];
    c.clip_has_max = n->n_inputs > 2 && n->inputs[2];
  }
  if (n->op == LB_OP_POW && n->inputs[1] && lb_shape_numel(&n->inputs[1]->type.shape) == 1) {
    const void *p = lb_value_const_data(cg->g, n->inputs[1]);
    if (p) {
      switch (n->inputs[1]->type.dtype) {
      case LB_DTYPE_F32: c.pow_const = *(const float *)p; break;
      case LB_DTYPE_F64: c.pow_const = *(const double *)p; break;
      case LB_DTYPE_I32: c.pow_const = *(const int32_t *)p; break;
      case LB_DTYPE_I64: c.pow_const = (double)*(const int64_t *)p; break;
      default: break;
      }
    }
  }
  c.nin = nin;
  enum lb_dtype dt = c.in_dt[0];
  if (dt == LB_DTYPE_UNDEF || c.out_dt == LB_DTYPE_UNDEF)
    return lb_diag_error(cg->d, LB_ERR_INVALID, n, "untyped value");
  if (float_only(n->op) && !is_float(dt))
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "%s on %s is not supported", lb_op_info[n->op].ir_name,
                         lb_dtype_traits[dt].name);
  if (n->op == LB_OP_WHERE && nin != 3) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "where needs 3 inputs");
  lb_cg_ew_strided(cg, nin, bases, c.in_dt, (const int64_t(*)[LB_MAX_RANK])st, out[0], c.out_dt, &ov->type.shape,
                   ew_apply, &c, op_cost(n->op));
  /* Dropout's mask output (if present): all true */
  if (n->op == LB_OP_DROPOUT && n->n_outputs > 1) {
    int64_t nb = lb_type_nbytes(&n->outputs[1]->type);
    LLVMBuildMemSet(cg->b, out[1], LLVMConstInt(cg->t_i8, 1, 0), lb_cg_i64(cg, nb), 1);
  }
  return LB_OK;
}
