/* cg_builder.c: the kernel-builder layer (loops, memory, conversions, parallel ranges).
 * Vectorizable math lives in cg_math.c. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

/* ---- types and constants ------------------------------------------------- */
LLVMTypeRef lb_cg_type(struct lb_cg *cg, enum lb_dtype dt) {
  switch (dt) {
  case LB_DTYPE_F32: return cg->t_f32;
  case LB_DTYPE_F64: return cg->t_f64;
  case LB_DTYPE_F16: return LLVMHalfTypeInContext(cg->ctx);
  case LB_DTYPE_BF16: return LLVMBFloatTypeInContext(cg->ctx);
  case LB_DTYPE_I8: case LB_DTYPE_U8: case LB_DTYPE_BOOL: return cg->t_i8;
  case LB_DTYPE_I16: case LB_DTYPE_U16: return cg->t_i16;
  case LB_DTYPE_I32: case LB_DTYPE_U32: return cg->t_i32;
  case LB_DTYPE_I64: case LB_DTYPE_U64: return cg->t_i64;
  default: LB_ASSERT(!"lb_cg_type: bad dtype"); return NULL;
  }
}

LLVMValueRef lb_cg_i64(struct lb_cg *cg, int64_t v) { return LLVMConstInt(cg->t_i64, (unsigned long long)v, 1); }
LLVMValueRef lb_cg_i32(struct lb_cg *cg, int32_t v) { return LLVMConstInt(cg->t_i32, (unsigned long long)(int64_t)v, 1); }

static LLVMValueRef splat_const(LLVMTypeRef ty, LLVMValueRef s) {
  if (LLVMGetTypeKind(ty) != LLVMVectorTypeKind) return s;
  unsigned n = LLVMGetVectorSize(ty);
  LLVMValueRef *e = malloc(sizeof *e * n);
  for (unsigned i = 0; i < n; i++) e[i] = s;
  LLVMValueRef v = LLVMConstVector(e, n);
  free(e);
  return v;
}

static LLVMTypeRef scalar_of(LLVMTypeRef ty) {
  return LLVMGetTypeKind(ty) == LLVMVectorTypeKind ? LLVMGetElementType(ty) : ty;
}

LLVMValueRef lb_cg_fconst(LLVMTypeRef ty, double v) { return splat_const(ty, LLVMConstReal(scalar_of(ty), v)); }
LLVMValueRef lb_cg_iconst(LLVMTypeRef ty, int64_t v) {
  return splat_const(ty, LLVMConstInt(scalar_of(ty), (unsigned long long)v, 1));
}

LLVMValueRef lb_cg_dconst(struct lb_cg *cg, enum lb_dtype dt, double v) {
  LLVMTypeRef ty = lb_cg_type(cg, dt);
  if (lb_dtype_traits[dt].is_float) return LLVMConstReal(ty, v);
  if (dt == LB_DTYPE_BOOL) return LLVMConstInt(ty, v != 0, 0);
  if (lb_dtype_traits[dt].is_signed) return LLVMConstInt(ty, (unsigned long long)(int64_t)v, 1);
  return LLVMConstInt(ty, (unsigned long long)v, 0);
}

bool lb_cg_is_fp(LLVMTypeRef ty) {
  LLVMTypeKind k = LLVMGetTypeKind(scalar_of(ty));
  return k == LLVMFloatTypeKind || k == LLVMDoubleTypeKind || k == LLVMHalfTypeKind ||
         k == LLVMBFloatTypeKind;
}

LLVMValueRef lb_cg_splat(struct lb_cg *cg, LLVMValueRef s, int n) {
  LLVMTypeRef vt = LLVMVectorType(LLVMTypeOf(s), (unsigned)n);
  LLVMValueRef v = LLVMBuildInsertElement(cg->b, LLVMGetPoison(vt), s, lb_cg_i32(cg, 0), "");
  LLVMValueRef mask = LLVMConstNull(LLVMVectorType(cg->t_i32, (unsigned)n));
  return LLVMBuildShuffleVector(cg->b, v, LLVMGetPoison(vt), mask, "");
}

/* ---- loops --------------------------------------------------------------- */
void lb_cg_for(struct lb_cg *cg, struct lb_cg_loop *l, LLVMValueRef begin, LLVMValueRef end) {
  LLVMBasicBlockRef pre = LLVMGetInsertBlock(cg->b);
  l->header = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "for");
  l->body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "body");
  l->exit = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "endfor");
  l->end = end;
  LLVMBuildBr(cg->b, l->header);
  LLVMPositionBuilderAtEnd(cg->b, l->header);
  l->i = LLVMBuildPhi(cg->b, cg->t_i64, "i");
  LLVMAddIncoming(l->i, &begin, &pre, 1);
  LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, l->i, end, ""), l->body, l->exit);
  LLVMPositionBuilderAtEnd(cg->b, l->body);
}

void lb_cg_for_c(struct lb_cg *cg, struct lb_cg_loop *l, int64_t begin, int64_t end) {
  lb_cg_for(cg, l, lb_cg_i64(cg, begin), lb_cg_i64(cg, end));
}

void lb_cg_for_end(struct lb_cg *cg, struct lb_cg_loop *l) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(cg->b);
  LLVMValueRef next = LLVMBuildNSWAdd(cg->b, l->i, lb_cg_i64(cg, 1), "");
  LLVMBuildBr(cg->b, l->header);
  LLVMAddIncoming(l->i, &next, &cur, 1);
  LLVMPositionBuilderAtEnd(cg->b, l->exit);
}

void lb_cg_rfor(struct lb_cg *cg, struct lb_cg_rloop *r, LLVMValueRef begin, LLVMValueRef end, int n,
                const LLVMValueRef *init) {
  LB_ASSERT(n <= 64);
  r->n = n;
  r->pre = LLVMGetInsertBlock(cg->b);
  struct lb_cg_loop *l = &r->l;
  l->header = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "rfor");
  l->body = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "rbody");
  l->exit = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "endrfor");
  l->end = end;
  LLVMBuildBr(cg->b, l->header);
  LLVMPositionBuilderAtEnd(cg->b, l->header);
  l->i = LLVMBuildPhi(cg->b, cg->t_i64, "i");
  LLVMAddIncoming(l->i, &begin, &r->pre, 1);
  for (int k = 0; k < n; k++) {
    r->phi[k] = LLVMBuildPhi(cg->b, LLVMTypeOf(init[k]), "acc");
    LLVMValueRef v = init[k];
    LLVMAddIncoming(r->phi[k], &v, &r->pre, 1);
    r->out[k] = r->phi[k];
  }
  LLVMBuildCondBr(cg->b, LLVMBuildICmp(cg->b, LLVMIntSLT, l->i, end, ""), l->body, l->exit);
  LLVMPositionBuilderAtEnd(cg->b, l->body);
}

void lb_cg_rfor_end(struct lb_cg *cg, struct lb_cg_rloop *r, const LLVMValueRef *next) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(cg->b);
  LLVMValueRef ni = LLVMBuildNSWAdd(cg->b, r->l.i, lb_cg_i64(cg, 1), "");
  LLVMBuildBr(cg->b, r->l.header);
  LLVMAddIncoming(r->l.i, &ni, &cur, 1);
  for (int k = 0; k < r->n; k++) {
    LLVMValueRef v = next[k];
    LLVMAddIncoming(r->phi[k], &v, &cur, 1);
  }
  LLVMPositionBuilderAtEnd(cg->b, r->l.exit);
}

void lb_cg_if_begin(struct lb_cg *cg, struct lb_cg_if *f, LLVMValueRef cond) {
  f->then_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "then");
  f->else_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "else");
  f->end_bb = LLVMAppendBasicBlockInContext(cg->ctx, cg->fn, "endif");
  LLVMBuildCondBr(cg->b, cond, f->then_bb, f->else_bb);
  LLVMPositionBuilderAtEnd(cg->b, f->then_bb);
}

void lb_cg_if_else(struct lb_cg *cg, struct lb_cg_if *f) {
  LLVMBuildBr(cg->b, f->end_bb);
  LLVMPositionBuilderAtEnd(cg->b, f->else_bb);
}

void lb_cg_if_end(struct lb_cg *cg, struct lb_cg_if *f) {
  LLVMBasicBlockRef cur = LLVMGetInsertBlock(cg->b);
  LLVMBuildBr(cg->b, f->end_bb);
  if (cur == f->then_bb || LLVMGetBasicBlockTerminator(f->else_bb) == NULL) {
    /* no else part was opened: make the else block fall through */
    if (LLVMGetBasicBlockTerminator(f->else_bb) == NULL) {
      LLVMPositionBuilderAtEnd(cg->b, f->else_bb);
      LLVMBuildBr(cg->b, f->end_bb);
    }
  }
  LLVMPositionBuilderAtEnd(cg->b, f->end_bb);
}

/* ---- memory -------------------------------------------------------------- */
LLVMValueRef lb_cg_gep(struct lb_cg *cg, LLVMTypeRef elem, LLVMValueRef base, LLVMValueRef idx) {
  return LLVMBuildInBoundsGEP2(cg->b, elem, base, &idx, 1, "");
}

LLVMValueRef lb_cg_gep_bytes(struct lb_cg *cg, LLVMValueRef base, int64_t off) {
  if (off == 0) return base;
  return lb_cg_gep(cg, cg->t_i8, base, lb_cg_i64(cg, off));
}

LLVMValueRef lb_cg_load_ty(struct lb_cg *cg, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx,
                           unsigned align) {
  LLVMValueRef p = idx ? lb_cg_gep(cg, ty, base, idx) : base;
  LLVMValueRef v = LLVMBuildLoad2(cg->b, ty, p, "");
  LLVMSetAlignment(v, align);
  return v;
}

void lb_cg_store_ty(struct lb_cg *cg, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx,
                    LLVMValueRef v, unsigned align) {
  LLVMValueRef p = idx ? lb_cg_gep(cg, ty, base, idx) : base;
  LLVMValueRef s = LLVMBuildStore(cg->b, v, p);
  LLVMSetAlignment(s, align);
}

LLVMValueRef lb_cg_load(struct lb_cg *cg, enum lb_dtype dt, LLVMValueRef base, LLVMValueRef idx) {
  return lb_cg_load_ty(cg, lb_cg_type(cg, dt), base, idx, (unsigned)lb_dtype_traits[dt].size);
}

void lb_cg_store(struct lb_cg *cg, enum lb_dtype dt, LLVMValueRef base, LLVMValueRef idx,
                 LLVMValueRef v) {
  lb_cg_store_ty(cg, lb_cg_type(cg, dt), base, idx, v, (unsigned)lb_dtype_traits[dt].size);
}

void lb_cg_memcpy(struct lb_cg *cg, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef nbytes) {
  LLVMBuildMemCpy(cg->b, dst, 1, src, 1, nbytes);
}

void lb_cg_memset0(struct lb_cg *cg, LLVMValueRef dst, int64_t nbytes) {
  LLVMBuildMemSet(cg->b, dst, LLVMConstInt(cg->t_i8, 0, 0), lb_cg_i64(cg, nbytes), 1);
}

LLVMValueRef lb_cg_global_data(struct lb_cg *cg, const char *hint, const void *data, size_t size) {
  char name[96];
  snprintf(name, sizeof name, "%s.%s.%d", cg->model, hint ? hint : "c", cg->counter++);
  LLVMTypeRef ty = LLVMArrayType2(cg->t_i8, size);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, ty, name);
  LLVMSetInitializer(gv, LLVMConstStringInContext2(cg->ctx, data, size, 1));
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  LLVMSetUnnamedAddr(gv, 1);
  LLVMSetAlignment(gv, 64);
  return gv;
}

LLVMValueRef lb_cg_global_i64s(struct lb_cg *cg, const int64_t *v, int64_t n) {
  return lb_cg_global_data(cg, "tab", v, (size_t)(n ? n : 1) * sizeof *v);
}

/* ---- arithmetic ---------------------------------------------------------- */
LLVMValueRef lb_cg_intrin2(struct lb_cg *cg, const char *name, LLVMTypeRef *over, int nover,
                           LLVMValueRef *args, int nargs) {
  unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
  LB_ASSERT(id != 0);
  LLVMValueRef fn = LLVMGetIntrinsicDeclaration(cg->mod, id, over, (size_t)nover);
  LLVMTypeRef fty = LLVMIntrinsicGetType(cg->ctx, id, over, (size_t)nover);
  return LLVMBuildCall2(cg->b, fty, fn, args, (unsigned)nargs, "");
}

LLVMValueRef lb_cg_intrin(struct lb_cg *cg, const char *name, LLVMTypeRef overload,
                          LLVMValueRef *args, int nargs) {
  return lb_cg_intrin2(cg, name, &overload, overload ? 1 : 0, args, nargs);
}

LLVMValueRef lb_cg_reassoc(LLVMValueRef inst) {
  if (LLVMIsAInstruction(inst) && LLVMCanValueUseFastMathFlags(inst))
    LLVMSetFastMathFlags(inst, LLVMFastMathAllowReassoc | LLVMFastMathAllowContract);
  return inst;
}

LLVMValueRef lb_cg_fma(struct lb_cg *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c) {
  LLVMValueRef args[3] = {a, b, c};
  return lb_cg_intrin(cg, "llvm.fmuladd", LLVMTypeOf(a), args, 3);
}

LLVMValueRef lb_cg_fmax(struct lb_cg *cg, LLVMValueRef a, LLVMValueRef b) {
  /* NaN-propagating like numpy.maximum / ONNX Max */
  LLVMValueRef c = LLVMBuildFCmp(cg->b, LLVMRealOGT, a, b, "");
  LLVMValueRef m = LLVMBuildSelect(cg->b, c, a, b, "");
  LLVMValueRef an = LLVMBuildFCmp(cg->b, LLVMRealUNO, a, a, "");
  return LLVMBuildSelect(cg->b, an, a, m, "");
}

LLVMValueRef lb_cg_fmin(struct lb_cg *cg, LLVMValueRef a, LLVMValueRef b) {
  LLVMValueRef c = LLVMBuildFCmp(cg->b, LLVMRealOLT, a, b, "");
  LLVMValueRef m = LLVMBuildSelect(cg->b, c, a, b, "");
  LLVMValueRef an = LLVMBuildFCmp(cg->b, LLVMRealUNO, a, a, "");
  return LLVMBuildSelect(cg->b, an, a, m, "");
}

LLVMValueRef lb_cg_convert(struct lb_cg *cg, LLVMValueRef v, enum lb_dtype from, enum lb_dtype to) {
  if (from == to) return v;
  LLVMTypeRef tt = lb_cg_type(cg, to);
  const struct lb_dtype_traits *f = &lb_dtype_traits[from], *t = &lb_dtype_traits[to];
  LLVMBuilderRef b = cg->b;
  if (to == LB_DTYPE_BOOL) {
    LLVMValueRef nz = f->is_float ? LLVMBuildFCmp(b, LLVMRealUNE, v, LLVMConstNull(LLVMTypeOf(v)), "")
                                  : LLVMBuildICmp(b, LLVMIntNE, v, LLVMConstNull(LLVMTypeOf(v)), "");
    return LLVMBuildZExt(b, nz, tt, "");
  }
  bool fsigned = f->is_signed && from != LB_DTYPE_BOOL;
  if (f->is_float && t->is_float) {
    unsigned fb = (unsigned)f->size, tb = (unsigned)t->size;
    if (fb == tb) { /* f16 <-> bf16 */
      return LLVMBuildFPTrunc(b, LLVMBuildFPExt(b, v, cg->t_f32, ""), tt, "");
    }
    return fb < tb ? LLVMBuildFPExt(b, v, tt, "") : LLVMBuildFPTrunc(b, v, tt, "");
  }
  if (!f->is_float && t->is_float)
    return fsigned ? LLVMBuildSIToFP(b, v, tt, "") : LLVMBuildUIToFP(b, v, tt, "");
  if (f->is_float && !t->is_float) {
    /* saturating: NaN -> 0, out of range -> min/max (C leaves it undefined) */
    LLVMTypeRef over[2] = {tt, LLVMTypeOf(v)};
    LLVMValueRef args[1] = {v};
    return lb_cg_intrin2(cg, t->is_signed ? "llvm.fptosi.sat" : "llvm.fptoui.sat", over, 2, args, 1);
  }
  /* int -> int */
  unsigned fw = LLVMGetIntTypeWidth(LLVMTypeOf(v)), tw = LLVMGetIntTypeWidth(tt);
  if (fw == tw) return v;
  if (fw > tw) return LLVMBuildTrunc(b, v, tt, "");
  return fsigned ? LLVMBuildSExt(b, v, tt, "") : LLVMBuildZExt(b, v, tt, "");
}

/* ---- functions and parallel ranges ------------------------------------- */
static void add_fn_attr(struct lb_cg *cg, LLVMValueRef fn, const char *name) {
  unsigned k = LLVMGetEnumAttributeKindForName(name, strlen(name));
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, k, 0));
}

static void add_str_attr(struct lb_cg *cg, LLVMValueRef fn, const char *k, const char *v) {
  LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                          LLVMCreateStringAttribute(cg->ctx, k, (unsigned)strlen(k), v, (unsigned)strlen(v)));
}

LLVMValueRef lb_cg_new_fn(struct lb_cg *cg, const char *name, int nptr, int ni64) {
  LLVMTypeRef params[48];
  LB_ASSERT(nptr + ni64 <= 48);
  for (int i = 0; i < nptr; i++) params[i] = cg->t_ptr;
  for (int i = 0; i < ni64; i++) params[nptr + i] = cg->t_i64;
  LLVMTypeRef fty = LLVMFunctionType(cg->t_void, params, (unsigned)(nptr + ni64), 0);
  char buf[128];
  snprintf(buf, sizeof buf, "%s.%s.%d", cg->model, name, cg->counter++);
  LLVMValueRef fn = LLVMAddFunction(cg->mod, buf, fty);
  LLVMSetLinkage(fn, LLVMInternalLinkage);
  unsigned na = LLVMGetEnumAttributeKindForName("noalias", 7);
  for (int i = 0; i < nptr; i++)
    LLVMAddAttributeAtIndex(fn, (unsigned)(i + 1), LLVMCreateEnumAttribute(cg->ctx, na, 0));
  add_fn_attr(cg, fn, "nounwind");
  add_fn_attr(cg, fn, "nofree");
  add_fn_attr(cg, fn, "nosync");
  if (cg->is_x86 && cg->vbits >= 512) {
    add_str_attr(cg, fn, "min-legal-vector-width", "512");
    add_str_attr(cg, fn, "prefer-vector-width", "512");
  }
  return fn;
}

bool lb_cg_want_parallel(struct lb_cg *cg, int64_t work) { return work >= cg->par_threshold; }

void lb_cg_par_begin(struct lb_cg *cg, struct lb_cg_par *p, int64_t n, int64_t grain, bool parallel,
                     const LLVMValueRef *ptrs, int nptrs, LLVMValueRef *inner, LLVMValueRef *begin,
                     LLVMValueRef *end) {
  LB_ASSERT(nptrs <= 32);
  memset(p, 0, sizeof *p);
  p->outer_fn = cg->fn;
  p->outer_bb = LLVMGetInsertBlock(cg->b);
  p->nptrs = nptrs;
  p->n = n;
  p->grain = grain < 1 ? 1 : grain;
  p->parallel = parallel && n > 1;
  for (int i = 0; i < nptrs; i++) p->outer_ptrs[i] = ptrs[i];
  p->body_fn = lb_cg_new_fn(cg, "body", nptrs, 2);
  add_fn_attr(cg, p->body_fn, "alwaysinline");
  cg->fn = p->body_fn;
  LLVMBasicBlockRef entry = LLVMAppendBasicBlockInContext(cg->ctx, p->body_fn, "entry");
  LLVMPositionBuilderAtEnd(cg->b, entry);
  for (int i = 0; i < nptrs; i++) inner[i] = LLVMGetParam(p->body_fn, (unsigned)i);
  *begin = LLVMGetParam(p->body_fn, (unsigned)nptrs);
  *end = LLVMGetParam(p->body_fn, (unsigned)nptrs + 1);
}

void lb_cg_par_end(struct lb_cg *cg, struct lb_cg_par *p) {
  LLVMBuildRetVoid(cg->b);
  LLVMTypeRef bty = LLVMGlobalGetValueType(p->body_fn);
  LLVMValueRef args[40];
  if (p->parallel) {
    /* task(ctx, begin, end): unpack the pointers and call the body */
    LLVMTypeRef tparams[3] = {cg->t_ptr, cg->t_i64, cg->t_i64};
    LLVMTypeRef tty = LLVMFunctionType(cg->t_void, tparams, 3, 0);
    char buf[128];
    /* named after its kernel (model.kN.op.M.par) so profiles show which node runs */
    size_t outer_len;
    const char *outer = LLVMGetValueName2(p->outer_fn, &outer_len);
    snprintf(buf, sizeof buf, "%.*s.par", (int)(outer_len < 100 ? outer_len : 100), outer);
    p->task_fn = LLVMAddFunction(cg->mod, buf, tty);
    LLVMSetLinkage(p->task_fn, LLVMInternalLinkage);
    add_fn_attr(cg, p->task_fn, "nounwind");
    if (cg->is_x86 && cg->vbits >= 512) {
      add_str_attr(cg, p->task_fn, "min-legal-vector-width", "512");
      add_str_attr(cg, p->task_fn, "prefer-vector-width", "512");
    }
    cg->fn = p->task_fn;
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, p->task_fn, "entry"));
    LLVMValueRef ctx = LLVMGetParam(p->task_fn, 0);
    for (int i = 0; i < p->nptrs; i++)
      args[i] = lb_cg_load_ty(cg, cg->t_ptr, ctx, lb_cg_i64(cg, i), 8);
    args[p->nptrs] = LLVMGetParam(p->task_fn, 1);
    args[p->nptrs + 1] = LLVMGetParam(p->task_fn, 2);
    LLVMBuildCall2(cg->b, bty, p->body_fn, args, (unsigned)p->nptrs + 2, "");
    LLVMBuildRetVoid(cg->b);
  }
  cg->fn = p->outer_fn;
  LLVMPositionBuilderAtEnd(cg->b, p->outer_bb);
  if (p->parallel) {
    /* ctx array on the stack of the kernel (alloca in the entry block) */
    LLVMBasicBlockRef entry = LLVMGetEntryBasicBlock(p->outer_fn);
    LLVMBuilderRef eb = LLVMCreateBuilderInContext(cg->ctx);
    LLVMValueRef first = LLVMGetFirstInstruction(entry);
    if (first) LLVMPositionBuilderBefore(eb, first);
    else LLVMPositionBuilderAtEnd(eb, entry);
    LLVMValueRef arr = LLVMBuildAlloca(eb, LLVMArrayType2(cg->t_ptr, (uint64_t)(p->nptrs ? p->nptrs : 1)), "ctx");
    LLVMSetAlignment(arr, 8);
    LLVMDisposeBuilder(eb);
    for (int i = 0; i < p->nptrs; i++) lb_cg_store_ty(cg, cg->t_ptr, arr, lb_cg_i64(cg, i), p->outer_ptrs[i], 8);
    LLVMValueRef pf = LLVMGetNamedFunction(cg->mod, "lbrt_parallel_for");
    LLVMTypeRef pparams[4] = {cg->t_ptr, cg->t_ptr, cg->t_i64, cg->t_i64};
    LLVMTypeRef pty = LLVMFunctionType(cg->t_void, pparams, 4, 0);
    if (!pf) pf = LLVMAddFunction(cg->mod, "lbrt_parallel_for", pty);
    LLVMValueRef cargs[4] = {p->task_fn, arr, lb_cg_i64(cg, p->n), lb_cg_i64(cg, p->grain)};
    LLVMBuildCall2(cg->b, pty, pf, cargs, 4, "");
  } else {
    for (int i = 0; i < p->nptrs; i++) args[i] = p->outer_ptrs[i];
    args[p->nptrs] = lb_cg_i64(cg, 0);
    args[p->nptrs + 1] = lb_cg_i64(cg, p->n);
    LLVMBuildCall2(cg->b, bty, p->body_fn, args, (unsigned)p->nptrs + 2, "");
  }
}

/* ---- shapes -------------------------------------------------------------- */
void lb_cg_strides(const struct lb_shape *s, int64_t *st) {
  int64_t acc = 1;
  for (int i = s->rank - 1; i >= 0; i--) {
    st[i] = acc;
    acc *= s->dims[i];
  }
}

void lb_cg_bcast_strides(const struct lb_shape *in, const struct lb_shape *out, int64_t *st) {
  int64_t ist[LB_MAX_RANK];
  lb_cg_strides(in, ist);
  int off = out->rank - in->rank;
  for (int i = 0; i < out->rank; i++) {
    int j = i - off;
    st[i] = (j < 0 || in->dims[j] == 1) ? 0 : ist[j];
  }
}
