/* k_qmatmul_util.h: small LLVM builder helpers shared by the qmatmul emitters
 * (k_qmatmul.c: int8 weights; k_qmatmul_lowbit.c: 2/3/4-bit, fp8 and f16
 * weights). Private to those two files. */
#ifndef LB_CODEGEN_K_QMATMUL_UTIL_H
#define LB_CODEGEN_K_QMATMUL_UTIL_H

#include "codegen/cg.h"

static inline LLVMTypeRef vty(LLVMTypeRef t, int n) { return LLVMVectorType(t, (unsigned)n); }

static inline LLVMValueRef ld(struct lb_cg *cg, LLVMTypeRef t, LLVMValueRef p) {
  return lb_cg_load_ty(cg, t, p, NULL, 1);
}

/* The overloaded intrinsic `name` on x's type, with one or two operands. */
static inline LLVMValueRef call1(struct lb_cg *cg, const char *name, LLVMValueRef x) {
  return lb_cg_intrin(cg, name, LLVMTypeOf(x), &x, 1);
}
static inline LLVMValueRef call2(struct lb_cg *cg, const char *name, LLVMValueRef x, LLVMValueRef y) {
  LLVMValueRef a[2] = {x, y};
  return lb_cg_intrin(cg, name, LLVMTypeOf(x), a, 2);
}

/* <n x i1>: the first `valid` lanes on (masked loads and stores of a tail). */
static inline LLVMValueRef vmask(struct lb_cg *cg, int n, int64_t valid) {
  LLVMValueRef e[64];
  for (int i = 0; i < n; i++) e[i] = LLVMConstInt(cg->t_i1, i < valid, 0);
  return LLVMConstVector(e, (unsigned)n);
}

/* f (float scalar or vector, integral or NaN) + zp, NaN -> zp, clamped to
 * [lo, hi], as the integer type `it`: ONNX's saturate(round(x) + zp) once f = rint(x). */
static inline LLVMValueRef sat_int(struct lb_cg *cg, LLVMValueRef f, int32_t zp, int32_t lo, int32_t hi,
                                   LLVMTypeRef it) {
  LLVMTypeRef ft = LLVMTypeOf(f);
  LLVMValueRef z = lb_cg_fconst(ft, zp);
  LLVMValueRef v = LLVMBuildFAdd(cg->b, f, z, "");
  v = LLVMBuildSelect(cg->b, LLVMBuildFCmp(cg->b, LLVMRealUNO, v, v, ""), z, v, "");
  v = call2(cg, "llvm.maxnum", v, lb_cg_fconst(ft, lo));
  v = call2(cg, "llvm.minnum", v, lb_cg_fconst(ft, hi));
  return LLVMBuildFPToSI(cg->b, v, it, "");
}

/* Starts a helper function; returns the caller's block to come back to (fn_end). */
static inline LLVMBasicBlockRef fn_begin(struct lb_cg *cg, LLVMValueRef fn, LLVMValueRef *saved_fn) {
  *saved_fn = cg->fn;
  LLVMBasicBlockRef bb = LLVMGetInsertBlock(cg->b);
  cg->fn = fn;
  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
  return bb;
}

static inline void fn_end(struct lb_cg *cg, LLVMValueRef saved_fn, LLVMBasicBlockRef bb) {
  LLVMBuildRetVoid(cg->b);
  cg->fn = saved_fn;
  LLVMPositionBuilderAtEnd(cg->b, bb);
}

#endif
