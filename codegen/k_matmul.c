/* k_matmul.c: matmul (numpy batch broadcast), gemm, fused_matmul.
 *
 * Floating point GEMMs use a register-blocked microkernel: an MR x NR block of C
 * lives in MR * (NR/VW) vector accumulators (phis of the K loop), NR = 2 vectors.
 * Per k it loads NR values of B (two vectors), broadcasts MR values of A and does
 * MR*2 vector FMAs. A constant B is packed at compile time into panels
 * [N/NR][K][NR] (last panel zero padded) so the microkernel streams it with unit
 * stride; a non-constant row-major B is read in place (masked loads in the last
 * panel). Work is split over (batch, M-chunk, N-panel) units with
 * lbrt_parallel_for; a unit runs the microkernel over the M-chunk's rows, so a
 * panel is read once per M-chunk (for M=1 exactly once: GEMV streams the weights).
 * Integer matmuls and B with a non-unit column stride use plain loops.
 */
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"

static int vw_of(struct lb_cg *cg, enum lb_dtype dt) {
  int w = cg->vbits / (8 * lb_dtype_traits[dt].size);
  return w < 1 ? 1 : w;
}

int lb_cg_gemm_nr(struct lb_cg *cg, enum lb_dtype dt) { return 2 * vw_of(cg, dt); }

static int mr_of(struct lb_cg *cg) {
  if (cg->is_x86 && cg->vbits >= 512) return 8;  /* 16 accumulators of 32 zmm */
  if (cg->is_x86) return 6;                      /* 12 of 16 ymm */
  return 8;                                      /* NEON: 16 of 32 q regs */
}

LLVMValueRef lb_cg_gemm_pack_b(struct lb_cg *cg, enum lb_dtype dt, const void *data, int64_t batch, int64_t K,
                               int64_t N, int64_t rs, int64_t cs, int64_t bstride) {
  int NR = lb_cg_gemm_nr(cg, dt);
  int64_t np = (N + NR - 1) / NR;
  size_t es = (size_t)lb_dtype_traits[dt].size;
  size_t total = (size_t)(batch * np * K * NR) * es;
  unsigned char *buf = calloc(total ? total : 1, 1);
  if (!buf) abort();
  const unsigned char *src = data;
  size_t w = 0;
  for (int64_t b = 0; b < batch; b++)
    for (int64_t p = 0; p < np; p++)
      for (int64_t k = 0; k < K; k++)
        for (int64_t j = 0; j < NR; j++, w += es) {
          int64_t n = p * NR + j;
          if (n < N) memcpy(buf + w, src + (size_t)(b * bstride + k * rs + n * cs) * es, es);
        }
  LLVMValueRef gv = lb_cg_global_data(cg, "packed", buf, total ? total : 1);
  free(buf);
  return gv;
}

/* ---- microkernel ----------------------------------------------------------------- */
struct uk_key {
  int mr;
  int64_t nvalid; /* NR for full panels */
};

static LLVMValueRef const_mask(struct lb_cg *cg, int vw, int64_t valid) {
  LLVMValueRef e[64];
  for (int i = 0; i < vw; i++) e[i] = LLVMConstInt(cg->t_i1, i < valid, 0);
  return LLVMConstVector(e, (unsigned)vw);
}

static LLVMValueRef masked_load(struct lb_cg *cg, LLVMTypeRef vty, LLVMValueRef ptr, LLVMValueRef mask,
                                unsigned align) {
  LLVMTypeRef over[2] = {vty, cg->t_ptr};
  LLVMValueRef args[4] = {ptr, lb_cg_i32(cg, (int32_t)align), mask, LLVMConstNull(vty)};
  return lb_cg_intrin2(cg, "llvm.masked.load", over, 2, args, 4);
}

static void masked_store(struct lb_cg *cg, LLVMValueRef v, LLVMValueRef ptr, LLVMValueRef mask, unsigned align) {
  LLVMTypeRef over[2] = {LLVMTypeOf(v), cg->t_ptr};
  LLVMValueRef args[4] = {v, ptr, lb_cg_i32(cg, (int32_t)align), mask};
  lb_cg_intrin2(cg, "llvm.masked.store", over, 2, args, 4);
}

/* void uk(a, b, c, e): C[0:mr, 0:nvalid] = epilogue(A[0:mr, :] * B[:, 0:NR]) */
static LLVMValueRef emit_ukernel(struct lb_cg *cg, const struct lb_cg_gemm *gm, struct uk_key key) {
  enum lb_dtype dt = gm->dt;
  LLVMTypeRef T = lb_cg_type(cg, dt);
  int VW = vw_of(cg, dt), NR = 2 * VW, NV = 2, mr = key.mr;
  unsigned es = (unsigned)lb_dtype_traits[dt].size;
  LLVMTypeRef VT = LLVMVectorType(T, (unsigned)VW);
  LLVMValueRef saved_fn = cg->fn;
  LLVMBasicBlockRef saved_bb = LLVMGetInsertBlock(cg->b);
  LLVMValueRef fn = lb_cg_new_fn(cg, "ukernel", 4, 0);
  cg->fn = fn;
  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, fn, "entry"));
  LLVMValueRef a = LLVMGetParam(fn, 0), bp = LLVMGetParam(fn, 1), c = LLVMGetParam(fn, 2), e = LLVMGetParam(fn, 3);
  bool partial = key.nvalid < NR;
  LLVMValueRef mask[2] = {NULL, NULL};
  if (partial)
    for (int j = 0; j < NV; j++) mask[j] = const_mask(cg, VW, key.nvalid - (int64_t)j * VW);
  int64_t b_rs = gm->b_packed ? NR : gm->b_rs;

  LLVMValueRef init[64];
  for (int i = 0; i < mr * NV; i++) init[i] = LLVMConstNull(VT);
  struct lb_cg_rloop r;
  lb_cg_rfor(cg, &r, lb_cg_i64(cg, 0), lb_cg_i64(cg, gm->K), mr * NV, init);
  LLVMValueRef k = r.l.i;
  LLVMValueRef bv[2];
  LLVMValueRef brow = LLVMBuildNSWMul(cg->b, k, lb_cg_i64(cg, b_rs), "");
  for (int j = 0; j < NV; j++) {
    LLVMValueRef idx = LLVMBuildNSWAdd(cg->b, brow, lb_cg_i64(cg, (int64_t)j * VW), "");
    LLVMValueRef p = lb_cg_gep(cg, T, bp, idx);
    if (!gm->b_packed && partial) {
      if (key.nvalid <= (int64_t)j * VW) bv[j] = LLVMConstNull(VT);
      else bv[j] = masked_load(cg, VT, p, mask[j], es);
    } else {
      bv[j] = lb_cg_load_ty(cg, VT, p, NULL, es);
    }
  }
  LLVMValueRef acol = gm->a_cs == 1 ? k : LLVMBuildNSWMul(cg->b, k, lb_cg_i64(cg, gm->a_cs), "");
  LLVMValueRef next[64];
  for (int i = 0; i < mr; i++) {
    LLVMValueRef ai = LLVMBuildNSWAdd(cg->b, acol, lb_cg_i64(cg, (int64_t)i * gm->a_rs), "");
    LLVMValueRef av = lb_cg_splat(cg, lb_cg_load_ty(cg, T, a, ai, es), VW);
    for (int j = 0; j < NV; j++) next[i * NV + j] = lb_cg_fma(cg, av, bv[j], r.phi[i * NV + j]);
  }
  lb_cg_rfor_end(cg, &r, next);

  /* epilogue */
  for (int i = 0; i < mr; i++) {
    for (int j = 0; j < NV; j++) {
      if (partial && key.nvalid <= (int64_t)j * VW) continue;
      LLVMValueRef v = r.out[i * NV + j];
      if (gm->alpha != 1.0) v = LLVMBuildFMul(cg->b, v, lb_cg_fconst(VT, gm->alpha), "");
      if (gm->e) {
        LLVMValueRef ev;
        int64_t eoff = (int64_t)i * gm->e_rs + (int64_t)j * VW * gm->e_cs;
        if (gm->e_cs == 0) {
          LLVMValueRef s = lb_cg_load(cg, gm->e_dt, e, lb_cg_i64(cg, eoff));
          ev = lb_cg_splat(cg, lb_cg_convert(cg, s, gm->e_dt, dt), VW);
        } else {
          LB_ASSERT(gm->e_cs == 1 && gm->e_dt == dt);
          LLVMValueRef p = lb_cg_gep(cg, T, e, lb_cg_i64(cg, eoff));
          ev = partial ? masked_load(cg, VT, p, mask[j], es) : lb_cg_load_ty(cg, VT, p, NULL, es);
        }
        if (gm->beta != 1.0) ev = LLVMBuildFMul(cg->b, ev, lb_cg_fconst(VT, gm->beta), "");
        v = LLVMBuildFAdd(cg->b, v, ev, "");
      }
      v = lb_cg_act(cg, gm->act, v);
      LLVMValueRef p = lb_cg_gep(cg, T, c, lb_cg_i64(cg, (int64_t)i * gm->ldc + (int64_t)j * VW));
      if (partial) masked_store(cg, v, p, mask[j], es);
      else lb_cg_store_ty(cg, VT, p, NULL, v, es);
    }
  }
  LLVMBuildRetVoid(cg->b);
  cg->fn = saved_fn;
  LLVMPositionBuilderAtEnd(cg->b, saved_bb);
  return fn;
}

LLVMValueRef lb_cg_gemm_ukernel(struct lb_cg *cg, const struct lb_cg_gemm *gm, int mr, int64_t nvalid) {
  return emit_ukernel(cg, gm, (struct uk_key){mr, nvalid});
}

int lb_cg_gemm_mr(struct lb_cg *cg) { return mr_of(cg); }

static LLVMValueRef tab_load(struct lb_cg *cg, const int64_t *vals, int64_t n, LLVMValueRef idx) {
  bool allzero = true;
  for (int64_t i = 0; i < n; i++)
    if (vals[i]) allzero = false;
  if (allzero) return lb_cg_i64(cg, 0);
  if (n == 1) return lb_cg_i64(cg, vals[0]);
  LLVMValueRef g = lb_cg_global_i64s(cg, vals, n);
  return lb_cg_load_ty(cg, cg->t_i64, g, idx, 8);
}

/* Blocked microkernel path (float, B packed or unit column stride). */
static void gemm_blocked(struct lb_cg *cg, struct lb_cg_gemm *gm) {
  enum lb_dtype dt = gm->dt;
  LLVMTypeRef T = lb_cg_type(cg, dt);
  int NR = lb_cg_gemm_nr(cg, dt), MR = mr_of(cg);
  int64_t M = gm->M, N = gm->N, K = gm->K;
  int64_t np = (N + NR - 1) / NR;
  int64_t lastcols = N - (np - 1) * NR;
  /* rows per M-chunk: keep the chunk of A in ~256 KiB */
  int64_t es = lb_dtype_traits[dt].size;
  int64_t MC = (256 * 1024) / (K * es + 1);
  MC = MC / MR * MR;
  if (MC < MR) MC = MR;
  if (MC > 256) MC = 256;
  if (MC >= M) MC = M;
  int64_t nmc = (M + MC - 1) / MC;
  /* Even chunks: units are split into contiguous ranges across threads, so a
   * short last chunk would leave one thread with most of the work. */
  if (nmc > 1) {
    MC = (M + nmc - 1) / nmc;
    MC = (MC + MR - 1) / MR * MR;
    nmc = (M + MC - 1) / MC;
  }
  int64_t lastrows = M - (nmc - 1) * MC;
  int64_t units = gm->batch * nmc * np;
  int64_t work = 2 * gm->batch * M * N * K;
  bool par = lb_cg_want_parallel(cg, work);

  LLVMValueRef ptrs[4] = {gm->a, gm->b, gm->c, gm->e ? gm->e : LLVMConstNull(cg->t_ptr)};
  LLVMValueRef inr[4], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, units, 1, par, ptrs, 4, inr, &begin, &end);
  /* microkernels: full/partial panel x MR/remainder rows */
  LLVMValueRef uk_full_mr = emit_ukernel(cg, gm, (struct uk_key){MR < M ? MR : (int)M, NR});
  struct lb_cg_loop ul;
  lb_cg_for(cg, &ul, begin, end);
  LLVMValueRef u = ul.i;
  LLVMValueRef pidx = LLVMBuildSRem(cg->b, u, lb_cg_i64(cg, np), "");
  LLVMValueRef t = LLVMBuildSDiv(cg->b, u, lb_cg_i64(cg, np), "");
  LLVMValueRef mc = LLVMBuildSRem(cg->b, t, lb_cg_i64(cg, nmc), "");
  LLVMValueRef bi = LLVMBuildSDiv(cg->b, t, lb_cg_i64(cg, nmc), "");
  LLVMValueRef aoff = tab_load(cg, gm->aoff, gm->batch, bi);
  LLVMValueRef boff = tab_load(cg, gm->boff, gm->batch, bi);
  LLVMValueRef coff = tab_load(cg, gm->coff, gm->batch, bi);
  LLVMValueRef m0 = LLVMBuildNSWMul(cg->b, mc, lb_cg_i64(cg, MC), "");
  LLVMValueRef n0 = LLVMBuildNSWMul(cg->b, pidx, lb_cg_i64(cg, NR), "");
  LLVMValueRef a_base = lb_cg_gep(cg, T, inr[0], LLVMBuildNSWAdd(cg->b, aoff, LLVMBuildNSWMul(cg->b, m0, lb_cg_i64(cg, gm->a_rs), ""), ""));
  LLVMValueRef b_base;
  if (gm->b_packed)
    b_base = lb_cg_gep(cg, T, inr[1], LLVMBuildNSWAdd(cg->b, boff, LLVMBuildNSWMul(cg->b, pidx, lb_cg_i64(cg, K * NR), ""), ""));
  else
    b_base = lb_cg_gep(cg, T, inr[1], LLVMBuildNSWAdd(cg->b, boff, LLVMBuildNSWMul(cg->b, n0, lb_cg_i64(cg, gm->b_cs), ""), ""));
  LLVMValueRef c_base = lb_cg_gep(cg, T, inr[2], LLVMBuildNSWAdd(cg->b, coff, LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, m0, lb_cg_i64(cg, gm->ldc), ""), n0, ""), ""));
  LLVMValueRef e_base = inr[3];
  if (gm->e) {
    LLVMValueRef eo = LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, m0, lb_cg_i64(cg, gm->e_rs), ""),
                                      LLVMBuildNSWMul(cg->b, n0, lb_cg_i64(cg, gm->e_cs), ""), "");
    e_base = lb_cg_gep(cg, lb_cg_type(cg, gm->e_dt), inr[3], eo);
  }

  /* for each (rows of this chunk) x (full or partial panel) */
  LLVMValueRef is_lastp = LLVMBuildICmp(cg->b, LLVMIntEQ, pidx, lb_cg_i64(cg, np - 1), "");
  LLVMValueRef is_lastm = LLVMBuildICmp(cg->b, LLVMIntEQ, mc, lb_cg_i64(cg, nmc - 1), "");
  for (int pv = 0; pv < 2; pv++) {
    int64_t nvalid = pv ? lastcols : NR;
    struct lb_cg_if fp;
    if (lastcols != NR) lb_cg_if_begin(cg, &fp, pv ? is_lastp : LLVMBuildNot(cg->b, is_lastp, ""));
    else if (pv) break;
    for (int mv = 0; mv < 2; mv++) {
      int64_t rows = mv ? lastrows : MC;
      struct lb_cg_if fm;
      if (lastrows != MC) lb_cg_if_begin(cg, &fm, mv ? is_lastm : LLVMBuildNot(cg->b, is_lastm, ""));
      else if (mv) break;
      int64_t nfull = rows / MR, rem = rows % MR;
      LLVMValueRef ukf = nvalid == NR && MR <= M ? uk_full_mr : NULL;
      if (nfull > 0) {
        if (!ukf) ukf = emit_ukernel(cg, gm, (struct uk_key){MR, nvalid});
        struct lb_cg_loop ml;
        lb_cg_for_c(cg, &ml, 0, nfull);
        LLVMValueRef mrow = LLVMBuildNSWMul(cg->b, ml.i, lb_cg_i64(cg, MR), "");
        LLVMValueRef args[4] = {
            lb_cg_gep(cg, T, a_base, LLVMBuildNSWMul(cg->b, mrow, lb_cg_i64(cg, gm->a_rs), "")), b_base,
            lb_cg_gep(cg, T, c_base, LLVMBuildNSWMul(cg->b, mrow, lb_cg_i64(cg, gm->ldc), "")),
            gm->e ? lb_cg_gep(cg, lb_cg_type(cg, gm->e_dt), e_base, LLVMBuildNSWMul(cg->b, mrow, lb_cg_i64(cg, gm->e_rs), "")) : e_base};
        LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(ukf), ukf, args, 4, "");
        lb_cg_for_end(cg, &ml);
      }
      if (rem > 0) {
        LLVMValueRef ukr = emit_ukernel(cg, gm, (struct uk_key){(int)rem, nvalid});
        int64_t mrow = nfull * MR;
        LLVMValueRef args[4] = {
            lb_cg_gep(cg, T, a_base, lb_cg_i64(cg, mrow * gm->a_rs)), b_base,
            lb_cg_gep(cg, T, c_base, lb_cg_i64(cg, mrow * gm->ldc)),
            gm->e ? lb_cg_gep(cg, lb_cg_type(cg, gm->e_dt), e_base, lb_cg_i64(cg, mrow * gm->e_rs)) : e_base};
        LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(ukr), ukr, args, 4, "");
      }
      if (lastrows != MC) lb_cg_if_end(cg, &fm);
    }
    if (lastcols != NR) lb_cg_if_end(cg, &fp);
  }
  lb_cg_for_end(cg, &ul);
  lb_cg_par_end(cg, &p);
}

/* Plain loops: any dtype, any strides. C[m,n] = sum_k A[m,k] B[k,n] (+ epilogue for floats). */
static void gemm_simple(struct lb_cg *cg, struct lb_cg_gemm *gm) {
  enum lb_dtype dt = gm->dt;
  bool fl = lb_dtype_traits[dt].is_float;
  LLVMTypeRef T = lb_cg_type(cg, dt);
  int64_t rows = gm->batch * gm->M;
  bool par = lb_cg_want_parallel(cg, 2 * rows * gm->N * gm->K);
  LLVMValueRef ptrs[4] = {gm->a, gm->b, gm->c, gm->e ? gm->e : LLVMConstNull(cg->t_ptr)};
  LLVMValueRef inr[4], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, rows, 1, par, ptrs, 4, inr, &begin, &end);
  struct lb_cg_loop rl, nl;
  lb_cg_for(cg, &rl, begin, end);
  LLVMValueRef bi = LLVMBuildSDiv(cg->b, rl.i, lb_cg_i64(cg, gm->M), "");
  LLVMValueRef m = LLVMBuildSRem(cg->b, rl.i, lb_cg_i64(cg, gm->M), "");
  LLVMValueRef abase = LLVMBuildNSWAdd(cg->b, tab_load(cg, gm->aoff, gm->batch, bi), LLVMBuildNSWMul(cg->b, m, lb_cg_i64(cg, gm->a_rs), ""), "");
  LLVMValueRef bbase = tab_load(cg, gm->boff, gm->batch, bi);
  LLVMValueRef cbase = LLVMBuildNSWAdd(cg->b, tab_load(cg, gm->coff, gm->batch, bi), LLVMBuildNSWMul(cg->b, m, lb_cg_i64(cg, gm->ldc), ""), "");
  lb_cg_for_c(cg, &nl, 0, gm->N);
  LLVMValueRef n = nl.i;
  LLVMValueRef zero = fl ? LLVMConstReal(T, 0) : LLVMConstInt(T, 0, 0);
  struct lb_cg_rloop kr;
  lb_cg_rfor(cg, &kr, lb_cg_i64(cg, 0), lb_cg_i64(cg, gm->K), 1, &zero);
  LLVMValueRef k = kr.l.i;
  LLVMValueRef av = lb_cg_load(cg, dt, inr[0], LLVMBuildNSWAdd(cg->b, abase, LLVMBuildNSWMul(cg->b, k, lb_cg_i64(cg, gm->a_cs), ""), ""));
  LLVMValueRef bidx = LLVMBuildNSWAdd(cg->b, bbase, LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, k, lb_cg_i64(cg, gm->b_rs), ""),
                                                                     LLVMBuildNSWMul(cg->b, n, lb_cg_i64(cg, gm->b_cs), ""), ""), "");
  LLVMValueRef bv = lb_cg_load(cg, dt, inr[1], bidx);
  LLVMValueRef nx;
  if (fl) nx = lb_cg_reassoc(LLVMBuildFAdd(cg->b, kr.phi[0], lb_cg_reassoc(LLVMBuildFMul(cg->b, av, bv, "")), ""));
  else nx = LLVMBuildAdd(cg->b, kr.phi[0], LLVMBuildMul(cg->b, av, bv, ""), "");
  lb_cg_rfor_end(cg, &kr, &nx);
  LLVMValueRef v = kr.out[0];
  if (fl) {
    if (gm->alpha != 1.0) v = LLVMBuildFMul(cg->b, v, LLVMConstReal(T, gm->alpha), "");
    if (gm->e) {
      LLVMValueRef eidx = LLVMBuildNSWAdd(cg->b, LLVMBuildNSWMul(cg->b, m, lb_cg_i64(cg, gm->e_rs), ""),
                                          LLVMBuildNSWMul(cg->b, n, lb_cg_i64(cg, gm->e_cs), ""), "");
      LLVMValueRef ev = lb_cg_convert(cg, lb_cg_load(cg, gm->e_dt, inr[3], eidx), gm->e_dt, dt);
      if (gm->beta != 1.0) ev = LLVMBuildFMul(cg->b, ev, LLVMConstReal(T, gm->beta), "");
      v = LLVMBuildFAdd(cg->b, v, ev, "");
    }
    v = lb_cg_act(cg, gm->act, v);
  }
  lb_cg_store(cg, dt, inr[2], LLVMBuildNSWAdd(cg->b, cbase, n, ""), v);
  lb_cg_for_end(cg, &nl);
  lb_cg_for_end(cg, &rl);
  lb_cg_par_end(cg, &p);
}

enum lb_status lb_cg_gemm_emit(struct lb_cg *cg, const struct lb_node *n, struct lb_cg_gemm *gm) {
  (void)n;
  if (gm->batch * gm->M * gm->N == 0) return LB_OK;
  bool fl = gm->dt == LB_DTYPE_F32 || gm->dt == LB_DTYPE_F64;
  if (gm->K == 0) {
    /* empty sum: epilogue of zeros; rare, use the simple path */
    gemm_simple(cg, gm);
    return LB_OK;
  }
  if (fl && (gm->b_packed || gm->b_cs == 1)) gemm_blocked(cg, gm);
  else gemm_simple(cg, gm);
  return LB_OK;
}

/* ---- nodes ---------------------------------------------------------------------- */
static void unravel(int64_t idx, const int64_t *dims, int rank, int64_t *out) {
  for (int d = rank - 1; d >= 0; d--) {
    out[d] = dims[d] ? idx % dims[d] : 0;
    idx = dims[d] ? idx / dims[d] : 0;
  }
}

static bool act_known(const char *a) {
  static const char *const acts[] = {"none", "relu", "gelu", "gelu_tanh", "sigmoid", "tanh", NULL};
  for (int i = 0; acts[i]; i++)
    if (!strcmp(acts[i], a)) return true;
  return false;
}

enum lb_status lb_cg_emit_matmul(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  struct lb_value *av = n->inputs[0], *bv = n->inputs[1], *ov = n->outputs[0];
  enum lb_dtype dt = ov->type.dtype;
  if (av->type.dtype != dt || bv->type.dtype != dt)
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "mixed input/output types in %s", lb_op_info[n->op].ir_name);
  if (dt == LB_DTYPE_F16 || dt == LB_DTYPE_BF16 || dt == LB_DTYPE_BOOL)
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "%s on %s is not supported", lb_op_info[n->op].ir_name,
                         lb_dtype_traits[dt].name);
  bool fl = lb_dtype_traits[dt].is_float;
  struct lb_cg_gemm gm;
  memset(&gm, 0, sizeof gm);
  gm.dt = dt;
  gm.alpha = 1.0;
  gm.beta = 1.0;
  gm.act = "none";
  gm.c = out[0];
  gm.a = in[0];
  gm.b = in[1];
  int64_t zero = 0;
  const struct lb_shape *as = &av->type.shape, *bs = &bv->type.shape;
  const void *bdata = lb_value_const_data(cg->g, bv);
  int64_t *aoff = NULL, *boff = NULL, *coff = NULL;
  /* batch geometry */
  int rb = 0;
  int64_t bdims[LB_MAX_RANK], adims[LB_MAX_RANK], bbdims[LB_MAX_RANK];
  int64_t batch = 1, b_batch = 1, M, N, K;

  if (n->op == LB_OP_GEMM) {
    if (as->rank != 2 || bs->rank != 2) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "gemm needs 2-D inputs");
    bool ta = lb_node_attr_int(n, "transA", 0) != 0, tb = lb_node_attr_int(n, "transB", 0) != 0;
    M = ta ? as->dims[1] : as->dims[0];
    K = ta ? as->dims[0] : as->dims[1];
    N = tb ? bs->dims[0] : bs->dims[1];
    if ((tb ? bs->dims[1] : bs->dims[0]) != K) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "gemm inner dims differ");
    gm.a_rs = ta ? 1 : K;
    gm.a_cs = ta ? M : 1;
    gm.b_rs = tb ? 1 : N;
    gm.b_cs = tb ? K : 1;
    gm.alpha = lb_node_attr_float(n, "alpha", 1.0);
    gm.beta = lb_node_attr_float(n, "beta", 1.0);
    if (n->n_inputs > 2 && n->inputs[2] && gm.beta != 0.0) {
      struct lb_value *cv = n->inputs[2];
      struct lb_shape mn = {.rank = 2, .dims = {M, N}};
      int64_t st2[LB_MAX_RANK];
      if (cv->type.shape.rank > 2) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "gemm C must be at most 2-D");
      lb_cg_bcast_strides(&cv->type.shape, &mn, st2);
      gm.e = in[2];
      gm.e_rs = st2[0];
      gm.e_cs = st2[1];
      gm.e_dt = cv->type.dtype;
    }
  } else {
    /* matmul / fused_matmul: numpy semantics with batch broadcast */
    bool tb = n->op == LB_OP_FUSED_MATMUL && lb_node_attr_int(n, "transB", 0) != 0;
    int ar = as->rank, br = bs->rank;
    if (ar < 1 || br < 1) return lb_diag_error(cg->d, LB_ERR_INVALID, n, "matmul of a scalar");
    M = ar == 1 ? 1 : as->dims[ar - 2];
    K = as->dims[ar - 1];
    int64_t Kb;
    if (br == 1) {
      N = 1;
      Kb = bs->dims[0];
    } else if (tb) {
      N = bs->dims[br - 2];
      Kb = bs->dims[br - 1];
    } else {
      N = bs->dims[br - 1];
      Kb = bs->dims[br - 2];
    }
    if (K != Kb)
      return lb_diag_error(cg->d, LB_ERR_INVALID, n, "matmul inner dims differ (%lld vs %lld)", (long long)K, (long long)Kb);
    int abr = ar > 2 ? ar - 2 : 0, bbr = br > 2 ? br - 2 : 0;
    rb = abr > bbr ? abr : bbr;
    for (int d = 0; d < rb; d++) {
      int ia = d - (rb - abr), ib = d - (rb - bbr);
      adims[d] = ia >= 0 ? as->dims[ia] : 1;
      bbdims[d] = ib >= 0 ? bs->dims[ib] : 1;
      bdims[d] = adims[d] > bbdims[d] ? adims[d] : bbdims[d];
      if (adims[d] != bbdims[d] && adims[d] != 1 && bbdims[d] != 1)
        return lb_diag_error(cg->d, LB_ERR_INVALID, n, "matmul batch dims do not broadcast");
      batch *= bdims[d];
      b_batch *= bbdims[d];
    }
    gm.a_rs = K;
    gm.a_cs = 1;
    gm.b_rs = br == 1 ? 1 : tb ? 1 : N;
    gm.b_cs = br == 1 ? 1 : tb ? K : 1;
    if (n->op == LB_OP_FUSED_MATMUL) {
      gm.act = lb_node_attr_string(n, "act", "none");
      if (!act_known(gm.act))
        return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "fused_matmul act '%s' is not supported", gm.act);
      if (n->n_inputs > 2 && n->inputs[2]) {
        struct lb_value *bias = n->inputs[2];
        if (lb_shape_numel(&bias->type.shape) != N)
          return lb_diag_error(cg->d, LB_ERR_INVALID, n, "fused_matmul bias must have N elements");
        gm.e = in[2];
        gm.e_rs = 0;
        gm.e_cs = N == 1 ? 0 : 1;
        gm.e_dt = bias->type.dtype;
      }
    }
  }
  gm.K = K;
  gm.N = N;
  gm.ldc = N;
  if (!fl) {
    gm.e = NULL; /* int matmul: no epilogue */
  }
  bool blocked = fl && !(gm.e && (gm.e_cs > 1 || gm.e_dt != dt));
  bool pack = blocked && bdata != NULL;
  if (blocked && !pack && gm.b_cs != 1) blocked = false;
  bool a_full = true;
  for (int d = 0; d < rb; d++)
    if (adims[d] != bdims[d]) a_full = false;
  if (b_batch == 1 && a_full) {
    /* fold the batch into M: A rows and C rows are contiguous */
    gm.M = M * batch;
    gm.batch = 1;
    gm.aoff = gm.boff = gm.coff = &zero;
    if (pack) gm.b = lb_cg_gemm_pack_b(cg, dt, bdata, 1, K, N, gm.b_rs, gm.b_cs, 0);
  } else {
    gm.M = M;
    gm.batch = batch;
    aoff = malloc(sizeof *aoff * (size_t)batch);
    boff = malloc(sizeof *boff * (size_t)batch);
    coff = malloc(sizeof *coff * (size_t)batch);
    if (!aoff || !boff || !coff) abort();
    int NR = lb_cg_gemm_nr(cg, dt);
    int64_t packed_mat = ((N + NR - 1) / NR) * NR * K;
    for (int64_t b = 0; b < batch; b++) {
      int64_t idx[LB_MAX_RANK];
      unravel(b, bdims, rb, idx);
      int64_t ia = 0, ib = 0;
      for (int d = 0; d < rb; d++) {
        ia = ia * adims[d] + (adims[d] == 1 ? 0 : idx[d]);
        ib = ib * bbdims[d] + (bbdims[d] == 1 ? 0 : idx[d]);
      }
      aoff[b] = ia * M * K;
      boff[b] = pack ? ib * packed_mat : ib * K * N;
      coff[b] = b * M * N;
    }
    gm.aoff = aoff;
    gm.boff = boff;
    gm.coff = coff;
    if (pack) gm.b = lb_cg_gemm_pack_b(cg, dt, bdata, b_batch, K, N, gm.b_rs, gm.b_cs, K * N);
  }
  gm.b_packed = pack;
  enum lb_status st = LB_OK;
  if (gm.batch * gm.M * gm.N > 0) {
    if (blocked && K > 0) gemm_blocked(cg, &gm);
    else gemm_simple(cg, &gm);
  }
  free(aoff);
  free(boff);
  free(coff);
  return st;
}
