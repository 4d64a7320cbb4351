/* k_move.c: reshape (and flatten/squeeze/unsqueeze), transpose, concat, split, slice,
 * gather, expand, trilu, pad.
 *
 * Strided copies (transpose, slice, expand) reuse the elementwise loop nest with
 * an identity function and the input's strides rearranged, so dims collapse the
 * same way; concat/split copy contiguous row blocks with memcpy. */
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

static LLVMValueRef ident(struct lb_cg *cg, void *ud, LLVMValueRef *x) {
  (void)cg;
  (void)ud;
  return x[0];
}

static void copy_all(struct lb_cg *cg, LLVMValueRef dst, LLVMValueRef src, int64_t nbytes) {
  if (nbytes > 0) lb_cg_memcpy(cg, dst, src, lb_cg_i64(cg, nbytes));
}

/* concat (split=false) or split (split=true) along axis with plain memcpys */
static enum lb_status emit_concat_split(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out,
                                        bool split) {
  struct lb_value *big = split ? n->inputs[0] : n->outputs[0];
  int nparts = split ? n->n_outputs : n->n_inputs;
  const struct lb_shape *bs = &big->type.shape;
  int64_t axis = lb_node_attr_int(n, "axis", 0);
  if (axis < 0) axis += bs->rank;
  if (axis < 0 || axis >= bs->rank) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "axis out of range");
  int64_t es = lb_dtype_traits[big->type.dtype].size;
  int64_t outer = 1, inner = 1;
  for (int d = 0; d < axis; d++) outer *= bs->dims[d];
  for (int d = (int)axis + 1; d < bs->rank; d++) inner *= bs->dims[d];
  int64_t row = bs->dims[axis] * inner * es, off = 0;
  for (int k = 0; k < nparts; k++) {
    struct lb_value *pv = split ? n->outputs[k] : n->inputs[k];
    if (!pv) continue;
    if (pv->type.shape.rank != bs->rank) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "rank mismatch");
    int64_t part = pv->type.shape.dims[axis] * inner * es;
    LLVMValueRef pptr = split ? out[k] : in[k];
    LLVMValueRef bptr = split ? in[0] : out[0];
    if (part > 0 && outer > 0) {
      if (outer == 1) {
        LLVMValueRef b = lb_cg_gep_bytes(cg, bptr, off);
        if (split) copy_all(cg, pptr, b, part);
        else copy_all(cg, b, pptr, part);
      } else {
        struct lb_cg_loop l;
        lb_cg_for_c(cg, &l, 0, outer);
        LLVMValueRef bo = lb_cg_gep(cg, cg->t_i8, bptr, LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, l.i, lb_cg_i64(cg, row), ""), lb_cg_i64(cg, off), ""));
        LLVMValueRef po = lb_cg_gep(cg, cg->t_i8, pptr, LLVMBuildNSWMul(cg->b, l.i, lb_cg_i64(cg, part), ""));
        if (split) copy_all(cg, po, bo, part);
        else copy_all(cg, bo, po, part);
        lb_cg_for_end(cg, &l);
      }
    }
    off += part;
  }
  return LB_OK;
}

static enum lb_status emit_gather(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  struct lb_value *dv = n->inputs[0], *iv = n->inputs[1];
  const struct lb_shape *ds = &dv->type.shape;
  int64_t axis = lb_node_attr_int(n, "axis", 0);
  if (axis < 0) axis += ds->rank;
  if (axis < 0 || axis >= ds->rank) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "axis out of range");
  enum lb_dtype idt = iv->type.dtype;
  if (idt != LB_DTYPE_I32 && idt != LB_DTYPE_I64)
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "gather indices must be i32 or i64");
  enum lb_dtype dt = dv->type.dtype;
  int64_t outer = 1, inner = 1, A = ds->dims[axis], nidx = lb_shape_numel(&iv->type.shape);
  for (int d = 0; d < axis; d++) outer *= ds->dims[d];
  for (int d = (int)axis + 1; d < ds->rank; d++) inner *= ds->dims[d];
  if (outer * inner * nidx == 0) return LB_OK;
  if (A == 0) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "gather from an empty axis");
  LLVMValueRef ptrs[3] = {in[0], in[1], out[0]}, inr[3], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, outer * nidx, 1 + 4096 / inner, lb_cg_want_parallel(cg, outer * nidx * inner * 2), ptrs, 3,
                  inr, &begin, &end);
  struct lb_cg_loop l, il;
  lb_cg_for(cg, &l, begin, end);
  LLVMValueRef o = LLVMBuildSDiv(cg->b, l.i, lb_cg_i64(cg, nidx), "");
  LLVMValueRef j = LLVMBuildSRem(cg->b, l.i, lb_cg_i64(cg, nidx), "");
  LLVMValueRef ix = lb_cg_convert(cg, lb_cg_load(cg, idt, inr[1], j), idt, LB_DTYPE_I64);
  /* negative wraps; out of range clamps (ONNX: an error; never read out of bounds) */
  ix = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, ix, lb_cg_i64(cg, 0), ""),
                       LLVMBuildAdd(cg->b, ix, lb_cg_i64(cg, A), ""), ix, "");
  ix = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, ix, lb_cg_i64(cg, 0), ""), lb_cg_i64(cg, 0), ix, "");
  ix = LLVMBuildSelect(cg->b, LLVMBuildICmp(cg->b, LLVMIntSGE, ix, lb_cg_i64(cg, A), ""), lb_cg_i64(cg, A - 1), ix, "");
  LLVMValueRef src = LLVMBuildNSWMul(cg->b, LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, o, lb_cg_i64(cg, A), ""), ix, ""),
                                     lb_cg_i64(cg, inner), "");
  LLVMValueRef dst = LLVMBuildNSWMul(cg->b, l.i, lb_cg_i64(cg, inner), "");
  if (inner >= 16) {
    int64_t es = lb_dtype_traits[dt].size;
    LLVMTypeRef T = lb_cg_type(cg, dt);
    lb_cg_memcpy(cg, lb_cg_gep(cg, T, inr[2], dst), lb_cg_gep(cg, T, inr[0], src), lb_cg_i64(cg, inner * es));
  } else {
    lb_cg_for_c(cg, &il, 0, inner);
    LLVMValueRef v = lb_cg_load(cg, dt, inr[0], LLVMBuildNSWAdd(cg->b, src, il.i, ""));
    lb_cg_store(cg, dt, inr[2], LLVMBuildNSWAdd(cg->b, dst, il.i, ""), v);
    lb_cg_for_end(cg, &il);
  }
  lb_cg_for_end(cg, &l);
  lb_cg_par_end(cg, &p);
  return LB_OK;
}

static enum lb_status emit_trilu(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  struct lb_value *xv = n->inputs[0];
  const struct lb_shape *xs = &xv->type.shape;
  if (xs->rank < 2) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "trilu needs rank >= 2");
  enum lb_dtype dt = xv->type.dtype;
  bool upper = lb_node_attr_int(n, "upper", 1) != 0;
  int64_t k = lb_node_attr_int(n, "k", 0);
  int64_t R = xs->dims[xs->rank - 2], C = xs->dims[xs->rank - 1];
  int64_t batch = lb_shape_numel(xs) / ((R * C) != 0 ? R * C : 1);
  if (batch * R * C == 0) return LB_OK;
  struct lb_cg_loop bl, rl, cl;
  lb_cg_for_c(cg, &bl, 0, batch);
  lb_cg_for_c(cg, &rl, 0, R);
  LLVMValueRef rowb = LLVMBuildNSWMul(cg->b, LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, bl.i, lb_cg_i64(cg, R), ""), rl.i, ""),
                                      lb_cg_i64(cg, C), "");
  lb_cg_for_c(cg, &cl, 0, C);
  LLVMValueRef idx = LLVMBuildNSWAdd(cg->b, rowb, cl.i, "");
  LLVMValueRef diff = LLVMBuildSub(cg->b, cl.i, rl.i, "");
  LLVMValueRef keep = LLVMBuildICmp(cg->b, upper ? LLVMIntSGE : LLVMIntSLE, diff, lb_cg_i64(cg, k), "");
  LLVMValueRef v = lb_cg_load(cg, dt, in[0], idx);
  v = LLVMBuildSelect(cg->b, keep, v, LLVMConstNull(lb_cg_type(cg, dt)), "");
  lb_cg_store(cg, dt, out[0], idx, v);
  lb_cg_for_end(cg, &cl);
  lb_cg_for_end(cg, &rl);
  lb_cg_for_end(cg, &bl);
  return LB_OK;
}

/* pad: per-dim tables map each output index to a source offset (-1 = fill),
 * computed at compile time with the evaluator's rule (lb_pad_source_index);
 * the loop nest adds the offsets and selects the fill where any is -1. */
static enum lb_status emit_pad(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  const struct lb_type *tx = &n->inputs[0]->type, *ty = &n->outputs[0]->type;
  const struct lb_attr *pa = lb_node_attr(n, "pads");
  int32_t rank = tx->shape.rank;
  if (!pa || pa->n != 2 * rank) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "pad needs 2*rank pads");
  if (lb_shape_numel(&ty->shape) == 0) return LB_OK;
  char mode = lb_node_attr_string(n, "mode", "constant")[0];
  enum lb_dtype dt = tx->dtype;
  int64_t xst[LB_MAX_RANK];
  lb_cg_strides(&tx->shape, xst);
  LLVMValueRef tables[LB_MAX_RANK];
  for (int32_t k = 0; k < rank; k++) {
    int64_t len = ty->shape.dims[k];
    int64_t *map = malloc(sizeof *map * (size_t)len);
    if (!map) abort();
    for (int64_t o = 0; o < len; o++) {
      int64_t s = lb_pad_source_index(o, tx->shape.dims[k], pa->ints[k], pa->ints[rank + k], mode);
      map[o] = s < 0 ? -1 : s * xst[k];
    }
    tables[k] = lb_cg_global_i64s(cg, map, len);
    free(map);
  }
  LLVMValueRef fill = lb_cg_dconst(cg, dt, lb_node_attr_float(n, "value", 0.0));
  struct lb_cg_loop loops[LB_MAX_RANK];
  LLVMValueRef src = lb_cg_i64(cg, 0), dst = lb_cg_i64(cg, 0), zero = lb_cg_i64(cg, 0);
  for (int32_t k = 0; k < rank; k++) {
    lb_cg_for_c(cg, &loops[k], 0, ty->shape.dims[k]);
    LLVMValueRef t = lb_cg_load_ty(cg, cg->t_i64, tables[k], loops[k].i, 8);
    LLVMValueRef bad = LLVMBuildOr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, src, zero, ""),
                                   LLVMBuildICmp(cg->b, LLVMIntSLT, t, zero, ""), "");
    src = LLVMBuildSelect(cg->b, bad, lb_cg_i64(cg, -1), LLVMBuildNSWAdd(cg->b, src, t, ""), "");
    dst = LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, dst, lb_cg_i64(cg, ty->shape.dims[k]), ""),
                          loops[k].i, "");
  }
  LLVMValueRef is_fill = LLVMBuildICmp(cg->b, LLVMIntSLT, src, zero, "");
  LLVMValueRef safe = LLVMBuildSelect(cg->b, is_fill, zero, src, "");
  LLVMValueRef v = LLVMBuildSelect(cg->b, is_fill, fill, lb_cg_load(cg, dt, in[0], safe), "");
  lb_cg_store(cg, dt, out[0], dst, v);
  for (int32_t k = rank - 1; k >= 0; k--) lb_cg_for_end(cg, &loops[k]);
  return LB_OK;
}

enum lb_status lb_cg_emit_move(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  struct lb_value *xv = n->inputs[0], *ov = n->outputs[0];
  const struct lb_shape *xs = &xv->type.shape, *os = &ov->type.shape;
  enum lb_dtype dt = xv->type.dtype;
  int64_t st[1][LB_MAX_RANK];
  switch (n->op) {
  case LB_OP_RESHAPE: case LB_OP_FLATTEN: case LB_OP_SQUEEZE: case LB_OP_UNSQUEEZE:
    if (lb_type_nbytes(&xv->type) != lb_type_nbytes(&ov->type))
      return lb_diag_error(cg->d, LB_ERR_INVALID, n, "reshape changes the size");
    copy_all(cg, out[0], in[0], lb_type_nbytes(&ov->type));
    return LB_OK;
  case LB_OP_TRANSPOSE: {
    const struct lb_attr *pa = lb_node_attr(n, "perm");
    int64_t xst[LB_MAX_RANK];
    lb_cg_strides(xs, xst);
    if (!pa || pa->n != xs->rank || os->rank != xs->rank)
      return lb_diag_error(cg->d, LB_ERR_INVALID, n, "transpose needs a perm with one entry per dim");
    for (int d = 0; d < os->rank; d++) {
      int64_t s = pa->ints[d];
      if (s < 0 || s >= xs->rank) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "bad perm");
      st[0][d] = xs->dims[s] == 1 ? 0 : xst[s];
    }
    lb_cg_ew_strided(cg, 1, in, &dt, (const int64_t(*)[LB_MAX_RANK])st, out[0], dt, os, ident, NULL, 1);
    return LB_OK;
  }
  case LB_OP_EXPAND:
    if (xs->rank > os->rank) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "expand to a lower rank");
    lb_cg_bcast_strides(xs, os, st[0]);
    lb_cg_ew_strided(cg, 1, in, &dt, (const int64_t(*)[LB_MAX_RANK])st, out[0], dt, os, ident, NULL, 1);
    return LB_OK;
  case LB_OP_SLICE: {
    const struct lb_attr *sa = lb_node_attr(n, "starts"), *ea = lb_node_attr(n, "ends"), *pa = lb_node_attr(n, "steps");
    if (!sa || sa->n != xs->rank || (pa && pa->n != xs->rank) || os->rank != xs->rank)
      return lb_diag_error(cg->d, LB_ERR_INVALID, n, "slice needs starts/ends/steps per dim");
    (void)ea;
    int64_t xst[LB_MAX_RANK], off = 0;
    lb_cg_strides(xs, xst);
    for (int d = 0; d < xs->rank; d++) {
      int64_t step = pa ? pa->ints[d] : 1;
      if (step == 0) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "slice step 0");
      int64_t s0 = sa->ints[d];
      if (os->dims[d] > 0 && (s0 < 0 || s0 >= xs->dims[d] || s0 + (os->dims[d] - 1) * step < 0 ||
                              s0 + (os->dims[d] - 1) * step >= xs->dims[d]))
        return lb_diag_error(cg->d, LB_ERR_INVALID, n, "slice out of range in dim %d", d);
      if (os->dims[d] > 0) off += s0 * xst[d];
      st[0][d] = xst[d] * step;
    }
    if (lb_shape_numel(os) == 0) return LB_OK;
    LLVMValueRef base = lb_cg_gep(cg, lb_cg_type(cg, dt), in[0], lb_cg_i64(cg, off));
    lb_cg_ew_strided(cg, 1, &base, &dt, (const int64_t(*)[LB_MAX_RANK])st, out[0], dt, os, ident, NULL, 1);
    return LB_OK;
  }
  case LB_OP_CONCAT: return emit_concat_split(cg, n, in, out, false);
  case LB_OP_SPLIT: return emit_concat_split(cg, n, in, out, true);
  case LB_OP_GATHER: return emit_gather(cg, n, in, out);
  case LB_OP_TRILU: return emit_trilu(cg, n, in, out);
  case LB_OP_PAD: return emit_pad(cg, n, in, out);
  default: return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "no kernel for op '%s'", lb_op_info[n->op].ir_name);
  }
}
