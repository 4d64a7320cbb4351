/* k_qmatmul_lowbit.c: qmatmul with 2/3/4-bit (or grouped 8-bit) weights and
 * group-wise scales (docs/ir-ops.md "Low-bit weights"), called from
 * k_qmatmul.c for every weight that is not 8-bit per column / per tensor.
 *
 * Codes are stored unsigned: u = code + 2^(bits-1) when symmetric (the zero
 * point z' is then that constant), u = code with the zero point z' = zp when
 * asymmetric; grouped 8-bit keeps the signed code (z' = 0). The weight is
 * packed at compile time into one stream per panel of NR = NV * VL columns,
 * group after group, which the kernel reads once from start to end:
 *
 *   panel[p] = block[g] for g in groups, block = codes | scales f16[NR] | zps u8[NR] (asym)
 *   codes    = units of CPB code vectors of E = VL * KG codes each:
 *              4 bits: E bytes, vector t of the unit in bits 4t..4t+3 of every byte;
 *              2 bits: E bytes, vector t in bits 2t..2t+1 (CPB 4);
 *              3 bits: 3E bytes for 8 vectors: the low two bits of vectors 0-3
 *                      (as 2-bit), of vectors 4-7, then bit 2 of vector t in bit t;
 *              8 bits: E bytes, one vector
 *   vector v = step kk = v / NV, column vector j = v % NV: code l*KG + e of it is
 *              column p*NR + j*VL + l, row g*G + kk*KG + e of the group
 *
 * so a 4-bit weight with groups of 32 takes 0.5 + 2/32 bytes per weight (3 bits:
 * 0.375 + 2/32). Unpacking is a shift and a mask per vector (3 bits: two).
 * Groups are zero-padded to GP rows (a multiple of KG * CPB); the activations'
 * padding is 0 so padded codes never count.
 *
 * Integer modes (static/dynamic) quantize each row once per task into
 * b = q - za (s8 when za = 0 and q is signed, else i16) per padded group,
 * with each group's sum sb. Per group and column the exact i32
 *   acc_g = sum b * (u - z') = dot(u, b) - z' * sb
 * comes from vpdpbusd (u8 weights x s8 activations), vpmaddubsw + vpmaddwd
 * (AVX2 / AVX-512 without VNNI), aarch64 sdot, or, for i16 activations (a
 * zero point or u8 range) and grouped 8-bit codes, vpmaddwd or widening
 * multiplies, and y += (float)acc_g * (sa * scale) in f32
 * (a multiply, then an add: the evaluator's order and roundings). a_quant
 * none at batch 1 dequantizes u - z' to f32 in registers, FMAs with the
 * activations per group and adds the group sum times its scale; at M > 1 it
 * dequantizes each panel once per task into an f32 tile laid out as the float
 * GEMM's packed B and runs the float microkernel over the rows (lbq_body_tiles).
 *
 * F16 weights (a const f16[K,N] without scales, a_quant none) take the same
 * paths with 16-bit "codes": one group of K rows, blocks without scales, one
 * code vector of VL halves per unit, converted by vcvtph2ps where the x86
 * target has F16C, by fcvtl on aarch64, else by moving the bits into an f32
 * (half_to_f32; with a select for inf and NaN when the weight holds them). */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"
#include "codegen/k_qmatmul_util.h"
#include "codegen/qmatmul_desc.h"

/* LBQ_MADDUBS: x86 without VNNI, vpmaddubsw (u8 x s8 pairs to i16: no
 * saturation, since 2 * 15 * 128 < 2^15) then vpmaddwd by ones to i32 */
enum lbq_isa { LBQ_VNNI, LBQ_MADDUBS, LBQ_PMADDWD, LBQ_SDOT, LBQ_WIDEN, LBQ_FLOAT };

struct lbq {
  struct lb_qmm_desc d;    /* shapes, dtypes, act, a_quant, input and output qparams */
  enum lbq_isa isa;
  int vl, nv, kg, cpb, bits, mr; /* cpb: code vectors per packing unit (see the header) */
  bool asym, wsigned;      /* asymmetric (zps in the stream); 8-bit signed codes */
  enum lb_qfloat fp8;      /* fp8 codes (8-bit, a_quant none): lbq_code_f32 decodes them */
  bool fp8_special;        /* some code is NaN or inf: the decoder must select them */
  bool fp8_f16;            /* decode through f16 (fp8_to_f32_via_f16) */
  bool f16;                /* f16 weights: 16-bit codes, no scales (bits 16) */
  bool f16_special;        /* some f16 weight is inf or NaN (for the bit-moving decoder) */
  bool f16_cvt;            /* f16 -> f32 is one instruction (F16C, aarch64) */
  int32_t zconst;          /* z' of symmetric codes */
  int64_t G, GP, ng, Kp, np, block, cbytes;
  int64_t MC, nmc;
  enum lb_dtype bdt;       /* activation buffer element */
  LLVMValueRef wp;
};

/* Bits a stored code takes (3-bit codes are split over planes, see the header). */
static int lbq_code_bits(const struct lbq *q) { return q->f16 ? 16 : q->bits == 3 ? 3 : 8 / q->cpb; }

/* The register type of a unit's code bytes: <E x i8>, f16 <E x i16>. */
static LLVMTypeRef lbq_code_type(struct lb_cg *cg, const struct lbq *q, int e) {
  return vty(q->f16 ? cg->t_i16 : cg->t_i8, e);
}

static LLVMValueRef bytes_at(struct lb_cg *cg, LLVMValueRef base, LLVMValueRef off) {
  return lb_cg_gep(cg, cg->t_i8, base, off);
}

/* IEEE half bits of f, round to nearest even (scales are f16 values already
 * when the verifier passed; this only rounds foreign ones). */
static uint16_t f16_bits(float f) {
  uint16_t sign = signbit(f) ? 0x8000 : 0;
  double a = fabs((double)f);
  if (isnan(a)) return sign | 0x7e00;
  if (a >= 65520) return sign | 0x7c00;
  if (a < ldexp(1, -14)) return sign | (uint16_t)nearbyint(ldexp(a, 24));
  int e;
  frexp(a, &e);
  double m = nearbyint(ldexp(a, 11 - e)); /* [1024, 2048] */
  if (m >= 2048) m /= 2, e++;
  return sign | (uint16_t)((e - 1 + 15) << 10) | ((uint16_t)m & 0x3ff);
}

/* ---- instruction choice and packing ------------------------------------------------ */

static void lbq_choose_isa(struct lb_cg *cg, struct lbq *q) {
  struct lb_cg_qmm_features f;
  lb_cg_qmm_features(cg, &f);
  /* s8 activation buffers need q - za in [-128, 127] */
  bool s8 = !q->d.none && q->d.za == 0 && q->d.qlo < 0;
  if (cg->is_x86) {
    if (q->d.none) {
      q->isa = LBQ_FLOAT, q->vl = cg->vbits >= 512 ? 16 : cg->vbits >= 256 ? 8 : 4;
    } else if (s8 && !q->wsigned && f.z512 && f.vnni512) {
      q->isa = LBQ_VNNI, q->vl = 16;
    } else if (s8 && !q->wsigned && f.avx2 && f.vnni256) {
      q->isa = LBQ_VNNI, q->vl = 8;
    } else if (s8 && !q->wsigned && (f.z512 || f.avx2)) {
      q->isa = LBQ_MADDUBS, q->vl = f.z512 ? 16 : 8;
    } else {
      q->isa = LBQ_PMADDWD, q->vl = f.z512 ? 16 : f.avx2 ? 8 : 4;
    }
    q->nv = q->vl == 16 ? 4 : 2;
  } else {
    q->vl = 4, q->nv = 4;
    q->isa = q->d.none ? LBQ_FLOAT : s8 && !q->wsigned && f.dotprod ? LBQ_SDOT : LBQ_WIDEN;
  }
  q->kg = q->isa == LBQ_VNNI || q->isa == LBQ_MADDUBS || q->isa == LBQ_SDOT ? 4 : q->isa == LBQ_PMADDWD ? 2 : 1;
  q->bdt = q->d.none ? LB_DTYPE_F32 : q->kg == 4 ? LB_DTYPE_I8 : LB_DTYPE_I16;
  /* M > 1: narrower panels, more rows per unpacked code vector: 2 x mr group
   * sums + 2 x mr outputs in registers (32 on AVX-512 and aarch64, 16 on AVX2) */
  if (q->d.R > 1) q->nv = 2, q->mr = cg->is_x86 && q->vl < 16 ? 3 : 6;
  else q->mr = 1;
}

/* code vector v of block (p, g), byte (l, e) -> the stored unsigned code */
static int lbq_code(const struct lbq *q, const int8_t *w, int64_t p, int64_t g, int64_t v, int64_t byte) {
  int64_t kk = v / q->nv, j = v % q->nv, l = byte / q->kg, e = byte % q->kg;
  int64_t kl = kk * q->kg + e, k = g * q->G + kl, n = p * q->nv * q->vl + j * q->vl + l;
  if (kl >= q->G || k >= q->d.K || n >= q->d.N) return 0;
  int c = w[k * q->d.N + n];
  return q->wsigned ? c : q->asym ? c : c + q->zconst;
}

/* f16: vector v = step kk * NV + j of a panel holds the VL halves of row kk,
 * columns p*NR + j*VL + l (zero past N) */
static void lbq_pack_f16(struct lb_cg *cg, struct lbq *q, const uint16_t *w) {
  int NR = q->nv * q->vl;
  size_t total = (size_t)(q->np * q->ng * q->block);
  uint16_t *pk = calloc(total ? total / 2 : 1, 2);
  if (!pk) abort();
  LB_ASSERT((q->ng == 0 || (q->ng == 1 && q->GP == q->d.K)) && q->block == (int64_t)NR * q->GP * 2);
  for (int64_t p = 0; p < q->np; p++)
    for (int64_t kk = 0; kk < q->d.K; kk++)
      for (int j = 0; j < NR; j++) {
        int64_t n = p * NR + j;
        pk[(p * q->d.K + kk) * NR + j] = n < q->d.N ? w[kk * q->d.N + n] : 0;
      }
  q->wp = lb_cg_global_data(cg, "qwh", pk, total ? total : 1);
  free(pk);
}

static void lbq_pack(struct lb_cg *cg, struct lbq *q, const int8_t *w, const struct lb_qparams *qw) {
  int NR = q->nv * q->vl, E = q->vl * q->kg, bw = 8 / q->cpb;
  size_t total = (size_t)(q->np * q->ng * q->block);
  uint8_t *pk = calloc(total ? total : 1, 1);
  if (!pk) abort();
  for (int64_t p = 0; p < q->np; p++)
    for (int64_t g = 0; g < q->ng; g++) {
      uint8_t *blk = pk + (p * q->ng + g) * q->block;
      int64_t ub = (int64_t)E * q->cpb * (q->bits == 3 ? 3 : 8 / q->cpb) / 8; /* bytes per unit */
      for (int64_t c = 0; c < q->cbytes / ub; c++)
        for (int b = 0; b < E; b++) {
          unsigned u[8] = {0};
          for (int t = 0; t < q->cpb; t++) u[t] = (unsigned)lbq_code(q, w, p, g, c * q->cpb + t, b);
          if (q->bits == 3) {
            /* two 2-bit planes (vectors 0-3, 4-7), then the eight high bits */
            unsigned lo0 = 0, lo1 = 0, hi = 0;
            for (int t = 0; t < 4; t++) lo0 |= (u[t] & 3) << (2 * t), lo1 |= (u[t + 4] & 3) << (2 * t);
            for (int t = 0; t < 8; t++) hi |= (u[t] >> 2 & 1) << t;
            blk[c * ub + b] = (uint8_t)lo0, blk[c * ub + E + b] = (uint8_t)lo1, blk[c * ub + 2 * E + b] = (uint8_t)hi;
          } else {
            unsigned v = 0;
            for (int t = 0; t < q->cpb; t++) v |= (u[t] & ((1u << bw) - 1)) << (t * bw);
            blk[c * ub + b] = (uint8_t)v;
          }
        }
      for (int j = 0; j < NR; j++) {
        int64_t n = p * NR + j;
        if (n >= q->d.N) continue;
        int64_t si = qw->n == 1 ? 0 : qw->group_size > 0 ? g * q->d.N + n : n;
        uint16_t h = f16_bits(qw->scales[si]);
        memcpy(blk + q->cbytes + 2 * j, &h, 2);
        if (q->asym) blk[q->cbytes + 2 * NR + j] = (uint8_t)qw->zero_points[si];
      }
    }
  q->wp = lb_cg_global_data(cg, "qw4", pk, total ? total : 1);
  free(pk);
}

/* ---- activation rows -> buffer --------------------------------------------------- */

/* void qrows(a, buf, sums, rowscale, nrows): each row's K values into Kp
 * (groups padded to GP with 0): b = q - za for the integer modes with each
 * group's sum of b in sums (ng i32 per row), the f32 values for none. */
static LLVMValueRef emit_lbq_rows(struct lb_cg *cg, const struct lbq *q) {
  LLVMValueRef fn = lb_cg_new_fn(cg, "q4rows", 4, 1), saved;
  LLVMBasicBlockRef bb = fn_begin(cg, fn, &saved);
  LLVMBuilderRef B = cg->b;
  LLVMValueRef a = LLVMGetParam(fn, 0), buf = LLVMGetParam(fn, 1), sums = LLVMGetParam(fn, 2);
  LLVMValueRef rsc = LLVMGetParam(fn, 3);
  LLVMTypeRef f32 = cg->t_f32, i32 = cg->t_i32, bt = lb_cg_type(cg, q->bdt);
  struct lb_cg_loop rl, gl;
  lb_cg_for(cg, &rl, lb_cg_i64(cg, 0), LLVMGetParam(fn, 4));
  LLVMValueRef arow = LLVMBuildNSWMul(B, rl.i, lb_cg_i64(cg, q->d.K), "");
  LLVMValueRef brow = lb_cg_gep(cg, bt, buf, LLVMBuildNSWMul(B, rl.i, lb_cg_i64(cg, q->Kp), ""));
  LLVMValueRef srow = lb_cg_gep(cg, i32, sums, LLVMBuildNSWMul(B, rl.i, lb_cg_i64(cg, q->ng), ""));
  LLVMValueRef sa = LLVMConstReal(f32, q->d.sa);
  if (q->d.dynamic) {
    LLVMValueRef zero = LLVMConstReal(f32, 0);
    struct lb_cg_rloop mx;
    lb_cg_rfor(cg, &mx, lb_cg_i64(cg, 0), lb_cg_i64(cg, q->d.K), 1, &zero);
    LLVMValueRef x = lb_cg_load(cg, LB_DTYPE_F32, a, LLVMBuildNSWAdd(B, arow, mx.l.i, ""));
    LLVMValueRef nx = lb_cg_reassoc(call2(cg, "llvm.maxnum", mx.phi[0], call1(cg, "llvm.fabs", x)));
    lb_cg_rfor_end(cg, &mx, &nx);
    LLVMValueRef amax = mx.out[0];
    sa = LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOEQ, amax, zero, ""), LLVMConstReal(f32, 1),
                         LLVMBuildFDiv(B, amax, LLVMConstReal(f32, 127), ""), "");
    lb_cg_store(cg, LB_DTYPE_F32, rsc, rl.i, sa);
  }
  lb_cg_for_c(cg, &gl, 0, q->ng);
  LLVMValueRef zero32 = lb_cg_i32(cg, 0);
  struct lb_cg_rloop kl;
  lb_cg_rfor(cg, &kl, lb_cg_i64(cg, 0), lb_cg_i64(cg, q->GP), 1, &zero32);
  LLVMValueRef k = LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, gl.i, lb_cg_i64(cg, q->G), ""), kl.l.i, "");
  LLVMValueRef valid = LLVMBuildAnd(B, LLVMBuildICmp(B, LLVMIntSLT, kl.l.i, lb_cg_i64(cg, q->G), ""),
                                    LLVMBuildICmp(B, LLVMIntSLT, k, lb_cg_i64(cg, q->d.K), ""), "");
  LLVMValueRef ai = LLVMBuildNSWAdd(B, arow, LLVMBuildSelect(B, valid, k, lb_cg_i64(cg, 0), ""), "");
  LLVMValueRef bi = LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, gl.i, lb_cg_i64(cg, q->GP), ""), kl.l.i, "");
  LLVMValueRef nsum = kl.phi[0];
  if (q->d.none) {
    LLVMValueRef x = lb_cg_load(cg, LB_DTYPE_F32, a, ai);
    lb_cg_store(cg, LB_DTYPE_F32, brow, bi, LLVMBuildSelect(B, valid, x, LLVMConstReal(f32, 0), ""));
  } else {
    LLVMValueRef qv;
    if (q->d.adt == LB_DTYPE_F32) {
      LLVMValueRef r = call1(cg, "llvm.rint", LLVMBuildFDiv(B, lb_cg_load(cg, LB_DTYPE_F32, a, ai), sa, ""));
      qv = sat_int(cg, r, q->d.za, q->d.qlo, q->d.qhi, i32);
    } else {
      qv = lb_cg_convert(cg, lb_cg_load(cg, q->d.adt, a, ai), q->d.adt, LB_DTYPE_I32);
    }
    qv = LLVMBuildSelect(B, valid, LLVMBuildSub(B, qv, lb_cg_i32(cg, q->d.za), ""), zero32, "");
    lb_cg_store_ty(cg, bt, brow, bi, LLVMBuildTrunc(B, qv, bt, ""), 1);
    nsum = LLVMBuildAdd(B, nsum, qv, "");
  }
  lb_cg_rfor_end(cg, &kl, &nsum);
  if (!q->d.none) lb_cg_store_ty(cg, i32, srow, gl.i, kl.out[0], 4);
  lb_cg_for_end(cg, &gl);
  lb_cg_for_end(cg, &rl);
  fn_end(cg, saved, bb);
  return fn;
}

/* ---- microkernel ------------------------------------------------------------------ */

/* f16 bits (i16 vector) -> f32: the half's exponent and mantissa moved into
 * place and scaled by 2^112, exact for normals and subnormals. */
static LLVMValueRef half_to_f32(struct lb_cg *cg, LLVMValueRef h, int n) {
  LLVMBuilderRef B = cg->b;
  LLVMTypeRef i32v = vty(cg->t_i32, n), f32v = vty(cg->t_f32, n);
  LLVMValueRef x = LLVMBuildZExt(B, h, i32v, "");
  LLVMValueRef mag = LLVMBuildShl(B, LLVMBuildAnd(B, x, lb_cg_iconst(i32v, 0x7fff), ""), lb_cg_iconst(i32v, 13), "");
  LLVMValueRef sign = LLVMBuildShl(B, LLVMBuildAnd(B, x, lb_cg_iconst(i32v, 0x8000), ""), lb_cg_iconst(i32v, 16), "");
  LLVMValueRef f = LLVMBuildFMul(B, LLVMBuildBitCast(B, mag, f32v, ""), lb_cg_fconst(f32v, ldexp(1, 112)), "");
  return LLVMBuildBitCast(B, LLVMBuildOr(B, LLVMBuildBitCast(B, f, i32v, ""), sign, ""), f32v, "");
}

/* fp8 codes (<n x i8>) -> f32, exactly: the sign-extended code shifted so its
 * exponent and mantissa bits land in f32's (the copies of the sign masked out
 * of the exponent), times 2^(127 - bias), which also scales subnormals right;
 * then, when the weight has any, NaN codes (e4m3 s1111111, e5m2 s11111mm with
 * mm != 0) and e5m2's infinities get f32's all-ones exponent and the code's
 * mantissa. */
static LLVMValueRef fp8_to_f32(struct lb_cg *cg, enum lb_qfloat f, bool has_special, LLVMValueRef u, int n) {
  LLVMBuilderRef B = cg->b;
  LLVMTypeRef i32v = vty(cg->t_i32, n), f32v = vty(cg->t_f32, n);
  bool e4 = f == LB_QFLOAT_E4M3;
  int shift = e4 ? 20 : 21, bias = e4 ? 7 : 15;
  uint32_t mag = 0x7Fu << shift, special = e4 ? mag : 0x7Cu << shift;
  LLVMValueRef x = LLVMBuildShl(B, LLVMBuildSExt(B, u, i32v, ""), lb_cg_iconst(i32v, shift), "");
  x = LLVMBuildAnd(B, x, lb_cg_iconst(i32v, (int64_t)(0x80000000u | mag)), "");
  LLVMValueRef v = LLVMBuildFMul(B, LLVMBuildBitCast(B, x, f32v, ""), lb_cg_fconst(f32v, ldexp(1, 127 - bias)), "");
  if (!has_special) return v; /* no such code in this weight (known at compile time) */
  LLVMValueRef m = LLVMBuildAnd(B, x, lb_cg_iconst(i32v, mag), "");
  LLVMValueRef is_special = LLVMBuildICmp(B, e4 ? LLVMIntEQ : LLVMIntUGE, m, lb_cg_iconst(i32v, special), "");
  LLVMValueRef sp = LLVMBuildOr(B, x, lb_cg_iconst(i32v, 0x7F800000), ""); /* e4m3: mantissa 111, a NaN */
  return LLVMBuildSelect(B, is_special, LLVMBuildBitCast(B, sp, f32v, ""), v, "");
}

/* fp8 codes -> f32 through f16 where converting f16 is one instruction
 * (AVX-512's vcvtph2ps, aarch64's fcvtl): an e5m2 code is the high byte of an
 * f16 (exact, inf and NaN included); an e4m3 code's sign and magnitude moved
 * to bits 15 and 13..7 make the f16 fp8 * 2^-8 (subnormals too; not NaN: only
 * for weights without NaN codes), lbq_scale_f32 puts the 2^8 into the scale. */
static LLVMValueRef fp8_to_f32_via_f16(struct lb_cg *cg, enum lb_qfloat f, LLVMValueRef u, int n) {
  LLVMBuilderRef B = cg->b;
  LLVMTypeRef i16v = vty(cg->t_i16, n);
  LLVMValueRef h;
  if (f == LB_QFLOAT_E5M2) {
    h = LLVMBuildShl(B, LLVMBuildZExt(B, u, i16v, ""), lb_cg_iconst(i16v, 8), "");
  } else {
    h = LLVMBuildShl(B, LLVMBuildSExt(B, u, i16v, ""), lb_cg_iconst(i16v, 7), "");
    h = LLVMBuildAnd(B, h, lb_cg_iconst(i16v, 0xBF80), "");
  }
  LLVMValueRef hf = LLVMBuildBitCast(B, h, vty(LLVMHalfTypeInContext(cg->ctx), n), "");
  return LLVMBuildFPExt(B, hf, vty(cg->t_f32, n), "");
}

/* f16 weights (<n x i16>) -> f32 without F16C: half_to_f32, and where the
 * weight has any, inf and NaN (exponent 31) get f32's all-ones exponent with
 * the sign and mantissa moved into place. */
static LLVMValueRef f16_to_f32_bits(struct lb_cg *cg, LLVMValueRef h, int n, bool has_special) {
  LLVMBuilderRef B = cg->b;
  LLVMValueRef v = half_to_f32(cg, h, n);
  if (!has_special) return v;
  LLVMTypeRef i32v = vty(cg->t_i32, n);
  LLVMValueRef x = LLVMBuildZExt(B, h, i32v, "");
  LLVMValueRef is_special = LLVMBuildICmp(B, LLVMIntEQ, LLVMBuildAnd(B, x, lb_cg_iconst(i32v, 0x7C00), ""),
                                          lb_cg_iconst(i32v, 0x7C00), "");
  LLVMValueRef sign = LLVMBuildShl(B, LLVMBuildAnd(B, x, lb_cg_iconst(i32v, 0x8000), ""), lb_cg_iconst(i32v, 16), "");
  LLVMValueRef mant = LLVMBuildShl(B, LLVMBuildAnd(B, x, lb_cg_iconst(i32v, 0x3FF), ""), lb_cg_iconst(i32v, 13), "");
  LLVMValueRef sp = LLVMBuildOr(B, LLVMBuildOr(B, sign, mant, ""), lb_cg_iconst(i32v, 0x7F800000), "");
  return LLVMBuildSelect(B, is_special, LLVMBuildBitCast(B, sp, vty(cg->t_f32, n), ""), v, "");
}

/* A group's f16 scales (i16 vector) as f32, times what the code decoding left
 * out (2^8 for e4m3 through f16). */
static LLVMValueRef lbq_scale_f32(struct lb_cg *cg, const struct lbq *q, LLVMValueRef h, int n) {
  LLVMValueRef sc = half_to_f32(cg, h, n);
  if (q->fp8_f16 && q->fp8 == LB_QFLOAT_E4M3) sc = LLVMBuildFMul(cg->b, sc, lb_cg_fconst(LLVMTypeOf(sc), 256), "");
  return sc;
}

/* A code vector <n x i8> (f16: <n x i16>) as f32: u - z' is done by the caller for integers */
static LLVMValueRef lbq_code_f32(struct lb_cg *cg, const struct lbq *q, LLVMValueRef u, int n) {
  if (q->f16 && q->f16_cvt)
    return LLVMBuildFPExt(cg->b, LLVMBuildBitCast(cg->b, u, vty(LLVMHalfTypeInContext(cg->ctx), n), ""),
                          vty(cg->t_f32, n), "");
  if (q->f16) return f16_to_f32_bits(cg, u, n, q->f16_special);
  if (q->fp8_f16) return fp8_to_f32_via_f16(cg, q->fp8, u, n);
  if (q->fp8) return fp8_to_f32(cg, q->fp8, q->fp8_special, u, n);
  LLVMTypeRef ft = vty(cg->t_f32, n);
  return q->wsigned ? LLVMBuildSIToFP(cg->b, u, ft, "") : LLVMBuildUIToFP(cg->b, u, ft, "");
}

/* One step of one group: S code steps (kk) of mr rows, S = sets * the
 * steps of one packing unit. `blk` is the group's block, `kk0` the first
 * step; the accumulators acc[(set * mr + i) * NV + j]: the kk of a unit go
 * to set kk / unit steps, so that `sets` chains hide the dot-product latency. */
static void lbq_step(struct lb_cg *cg, const struct lbq *q, LLVMValueRef blk, LLVMValueRef abuf, LLVMValueRef kk0,
                     int mr, int sets, int64_t astride, LLVMValueRef const *zf, LLVMValueRef *acc) {
  LLVMBuilderRef B = cg->b;
  int VL = q->vl, NV = q->nv, kg = q->kg, E = VL * kg, bw = 8 / q->cpb;
  int S1 = q->cpb > NV ? q->cpb / NV : 1, S = S1 * sets, nvec = S * NV;
  LLVMTypeRef i8 = cg->t_i8, i16 = cg->t_i16, i32 = cg->t_i32, f32 = cg->t_f32;
  LLVMValueRef v0 = LLVMBuildNSWMul(B, kk0, lb_cg_i64(cg, NV), "");
  int64_t esz = lb_dtype_traits[q->bdt].size;
  LLVMValueRef av[16][8];
  LB_ASSERT(S <= 16 && mr <= 8);
  for (int s = 0; s < S; s++)
    for (int i = 0; i < mr; i++) {
      LLVMValueRef off = LLVMBuildNSWMul(B, LLVMBuildNSWAdd(B, kk0, lb_cg_i64(cg, s), ""), lb_cg_i64(cg, kg * esz), "");
      LLVMValueRef p = bytes_at(cg, abuf, LLVMBuildNSWAdd(B, off, lb_cg_i64(cg, i * astride), ""));
      switch (q->isa) {
      case LBQ_VNNI: case LBQ_MADDUBS: case LBQ_SDOT: case LBQ_PMADDWD:
        av[s][i] = lb_cg_splat(cg, ld(cg, i32, p), VL);
        break;
      case LBQ_WIDEN: av[s][i] = lb_cg_splat(cg, LLVMBuildSExt(B, ld(cg, i16, p), i32, ""), VL); break;
      case LBQ_FLOAT: av[s][i] = lb_cg_splat(cg, ld(cg, f32, p), VL); break;
      }
    }
  int64_t ub = (int64_t)E * q->cpb * lbq_code_bits(q) / 8; /* bytes per unit */
  LLVMTypeRef CT = lbq_code_type(cg, q, E);
  for (int c = 0; c < nvec / q->cpb; c++) {
    LLVMValueRef cbyte = LLVMBuildNSWMul(B, LLVMBuildNSWAdd(B, LLVMBuildSDiv(B, v0, lb_cg_i64(cg, q->cpb), ""),
                                                            lb_cg_i64(cg, c), ""), lb_cg_i64(cg, ub), "");
    LLVMValueRef chunk = ld(cg, CT, bytes_at(cg, blk, cbyte)), lo1 = NULL, hi = NULL;
    if (q->bits == 3) {
      lo1 = ld(cg, CT, bytes_at(cg, blk, LLVMBuildNSWAdd(B, cbyte, lb_cg_i64(cg, E), "")));
      hi = ld(cg, CT, bytes_at(cg, blk, LLVMBuildNSWAdd(B, cbyte, lb_cg_i64(cg, 2 * E), "")));
    }
    for (int t = 0; t < q->cpb; t++) {
      int v = c * q->cpb + t, s = v / NV, j = v % NV;
      LLVMValueRef u = chunk; /* <E x i8>: unsigned code, or the signed 8-bit code */
      if (q->bits == 3) {
        /* low two bits from plane t / 4, bit 2 from the high plane */
        u = t < 4 ? chunk : lo1;
        if (t % 4) u = LLVMBuildLShr(B, u, lb_cg_iconst(CT, 2 * (t % 4)), "");
        if (t % 4 != 3) u = LLVMBuildAnd(B, u, lb_cg_iconst(CT, 3), "");
        LLVMValueRef h = t < 2 ? LLVMBuildShl(B, hi, lb_cg_iconst(CT, 2 - t), "")
                       : t > 2 ? LLVMBuildLShr(B, hi, lb_cg_iconst(CT, t - 2), "") : hi;
        u = LLVMBuildOr(B, u, LLVMBuildAnd(B, h, lb_cg_iconst(CT, 4), ""), "");
      } else if (q->cpb > 1) {
        if (t) u = LLVMBuildLShr(B, u, lb_cg_iconst(CT, t * bw), "");
        if (t < q->cpb - 1) u = LLVMBuildAnd(B, u, lb_cg_iconst(CT, (1 << bw) - 1), "");
      }
      LLVMValueRef wv;
      for (int i = 0; i < mr; i++) {
        LLVMValueRef *a = &acc[((s / S1) * mr + i) * NV + j];
        switch (q->isa) {
        case LBQ_VNNI: {
          wv = LLVMBuildBitCast(B, u, vty(i32, VL), "");
          LLVMValueRef args[3] = {*a, wv, av[s][i]}; /* u8 codes . s8 activations */
          *a = lb_cg_intrin(cg, VL == 16 ? "llvm.x86.avx512.vpdpbusd.512" : "llvm.x86.avx512.vpdpbusd.256", NULL,
                            args, 3);
          break;
        }
        case LBQ_MADDUBS: {
          LLVMValueRef args[2] = {u, LLVMBuildBitCast(B, av[s][i], CT, "")};
          LLVMValueRef p16 = lb_cg_intrin(cg, VL == 16 ? "llvm.x86.avx512.pmaddubs.w.512" : "llvm.x86.avx2.pmadd.ub.sw",
                                          NULL, args, 2);
          LLVMValueRef args2[2] = {p16, lb_cg_iconst(vty(i16, 2 * VL), 1)};
          const char *wd = VL == 16 ? "llvm.x86.avx512.pmaddw.d.512" : "llvm.x86.avx2.pmadd.wd";
          *a = LLVMBuildAdd(B, *a, lb_cg_intrin(cg, wd, NULL, args2, 2), "");
          break;
        }
        case LBQ_SDOT: {
          LLVMTypeRef over[2] = {vty(i32, 4), vty(i8, 16)};
          LLVMValueRef args[3] = {*a, u, LLVMBuildBitCast(B, av[s][i], vty(i8, 16), "")};
          *a = lb_cg_intrin2(cg, "llvm.aarch64.neon.sdot", over, 2, args, 3);
          break;
        }
        case LBQ_PMADDWD: {
          wv = q->wsigned ? LLVMBuildSExt(B, u, vty(i16, E), "") : LLVMBuildZExt(B, u, vty(i16, E), "");
          const char *name = VL == 16 ? "llvm.x86.avx512.pmaddw.d.512" : VL == 8 ? "llvm.x86.avx2.pmadd.wd"
                                                                                  : "llvm.x86.sse2.pmadd.wd";
          LLVMValueRef args[2] = {LLVMBuildBitCast(B, av[s][i], vty(i16, E), ""), wv};
          *a = LLVMBuildAdd(B, *a, lb_cg_intrin(cg, name, NULL, args, 2), "");
          break;
        }
        case LBQ_WIDEN:
          wv = q->wsigned ? LLVMBuildSExt(B, u, vty(i32, VL), "") : LLVMBuildZExt(B, u, vty(i32, VL), "");
          *a = LLVMBuildAdd(B, *a, LLVMBuildNSWMul(B, av[s][i], wv, ""), "");
          break;
        case LBQ_FLOAT:
          wv = lbq_code_f32(cg, q, u, VL);
          if (zf[j]) wv = LLVMBuildFSub(B, wv, zf[j], "");
          *a = lb_cg_fma(cg, av[s][i], wv, *a);
          break;
        }
      }
    }
  }
}

/* void uk(abuf, sums, rowscale, w, y, bias): rows [0, mr) x columns
 * [0, nvalid) of one panel, all groups, with the epilogue. */
static LLVMValueRef emit_lbq_uk(struct lb_cg *cg, const struct lbq *q, int mr, int64_t nvalid) {
  LLVMValueRef fn = lb_cg_new_fn(cg, "q4kernel", 6, 0), saved;
  LLVMBasicBlockRef bb = fn_begin(cg, fn, &saved);
  LLVMBuilderRef B = cg->b;
  LLVMValueRef abuf = LLVMGetParam(fn, 0), sums = LLVMGetParam(fn, 1), rsc = LLVMGetParam(fn, 2);
  LLVMValueRef w = LLVMGetParam(fn, 3), y = LLVMGetParam(fn, 4), bias = LLVMGetParam(fn, 5);
  int VL = q->vl, NV = q->nv, NR = VL * NV, nacc = mr * NV;
  bool fl = q->isa == LBQ_FLOAT;
  LLVMTypeRef f32 = cg->t_f32, i32 = cg->t_i32, AT = vty(fl ? f32 : i32, VL), FT = vty(f32, VL);
  LLVMTypeRef IT = vty(i32, VL);
  int64_t esz = lb_dtype_traits[q->bdt].size, astride = q->Kp * esz;
  /* batch 1: two accumulator sets when the group's steps split evenly */
  int S1 = q->cpb > NV ? q->cpb / NV : 1, sets = mr == 1 && q->GP / q->kg / S1 % 2 == 0 ? 2 : 1;
  int S = S1 * sets, nak = sets * nacc;
  int64_t nsteps = q->GP / q->kg / S;
  LLVMValueRef yinit[64], acc[64], ynext[64];
  for (int i = 0; i < nacc; i++) yinit[i] = LLVMConstNull(FT);
  LLVMValueRef rowsa[8];
  for (int i = 0; i < mr; i++)
    rowsa[i] = q->d.dynamic ? lb_cg_splat(cg, lb_cg_load(cg, LB_DTYPE_F32, rsc, lb_cg_i64(cg, i)), VL)
                          : lb_cg_fconst(FT, q->d.sa);
  struct lb_cg_rloop gr;
  lb_cg_rfor(cg, &gr, lb_cg_i64(cg, 0), lb_cg_i64(cg, q->ng), nacc, yinit);
  LLVMValueRef blk = bytes_at(cg, w, LLVMBuildNSWMul(B, gr.l.i, lb_cg_i64(cg, q->block), ""));
  LLVMValueRef ag = bytes_at(cg, abuf, LLVMBuildNSWMul(B, gr.l.i, lb_cg_i64(cg, q->GP * esz), ""));
  /* z' per column vector: f32 for none, i32 for the integer modes */
  LLVMValueRef zv[4];
  for (int j = 0; j < NV; j++) {
    if (q->asym) {
      LLVMValueRef p = bytes_at(cg, blk, lb_cg_i64(cg, q->cbytes + 2 * NR + (int64_t)j * VL));
      LLVMValueRef z = LLVMBuildZExt(B, ld(cg, vty(cg->t_i8, VL), p), IT, "");
      zv[j] = fl ? LLVMBuildSIToFP(B, z, FT, "") : z;
    } else {
      zv[j] = q->zconst ? (fl ? lb_cg_fconst(FT, q->zconst) : lb_cg_iconst(IT, q->zconst)) : NULL;
    }
  }
  struct lb_cg_rloop kr;
  LLVMValueRef ainit[64];
  LB_ASSERT(nak <= 64);
  for (int i = 0; i < nak; i++) ainit[i] = LLVMConstNull(AT);
  lb_cg_rfor(cg, &kr, lb_cg_i64(cg, 0), lb_cg_i64(cg, nsteps), nak, ainit);
  for (int i = 0; i < nak; i++) acc[i] = kr.phi[i];
  LLVMValueRef kk0 = LLVMBuildNSWMul(B, kr.l.i, lb_cg_i64(cg, S), "");
  /* none dequantizes u - z' per element; the integer modes subtract z' * sb per group */
  lbq_step(cg, q, blk, ag, kk0, mr, sets, astride, zv, acc);
  lb_cg_rfor_end(cg, &kr, acc);
  for (int i = 0; i < nak; i++) acc[i] = kr.out[i];
  for (int i = 0; i < nacc && sets == 2; i++) /* exact in i32; f32 (none) in another order */
    acc[i] = fl ? LLVMBuildFAdd(B, acc[i], acc[nacc + i], "") : LLVMBuildAdd(B, acc[i], acc[nacc + i], "");
  for (int j = 0; j < NV; j++) {
    if ((int64_t)j * VL >= nvalid) {
      for (int i = 0; i < mr; i++) ynext[i * NV + j] = gr.phi[i * NV + j];
      continue;
    }
    LLVMValueRef sc = NULL; /* f16: no scales */
    if (!q->f16) {
      LLVMValueRef h = ld(cg, vty(cg->t_i16, VL), bytes_at(cg, blk, lb_cg_i64(cg, q->cbytes + 2 * (int64_t)j * VL)));
      sc = lbq_scale_f32(cg, q, h, VL);
    }
    for (int i = 0; i < mr; i++) {
      LLVMValueRef a = acc[i * NV + j], t;
      if (fl) {
        t = sc ? LLVMBuildFMul(B, a, sc, "") : a;
      } else {
        if (zv[j]) {
          LLVMValueRef si = LLVMBuildNSWAdd(B, gr.l.i, lb_cg_i64(cg, i * q->ng), "");
          LLVMValueRef sb = lb_cg_load_ty(cg, i32, lb_cg_gep(cg, i32, sums, si), NULL, 4);
          a = LLVMBuildSub(B, a, LLVMBuildMul(B, zv[j], lb_cg_splat(cg, sb, VL), ""), "");
        }
        t = LLVMBuildFMul(B, LLVMBuildSIToFP(B, a, FT, ""), LLVMBuildFMul(B, rowsa[i], sc, ""), "");
      }
      ynext[i * NV + j] = LLVMBuildFAdd(B, gr.phi[i * NV + j], t, "");
    }
  }
  lb_cg_rfor_end(cg, &gr, ynext);

  /* epilogue */
  bool yint = q->d.ydt != LB_DTYPE_F32;
  for (int j = 0; j < NV; j++) {
    int64_t valid = nvalid - (int64_t)j * VL;
    if (valid <= 0) break;
    LLVMValueRef mask = valid < VL ? vmask(cg, VL, valid) : NULL;
    LLVMValueRef col = lb_cg_i64(cg, (int64_t)j * VL);
    LLVMValueRef bv = NULL;
    if (q->d.has_bias) {
      LLVMValueRef p = lb_cg_gep(cg, f32, bias, col);
      if (mask) {
        LLVMTypeRef over[2] = {FT, cg->t_ptr};
        LLVMValueRef args[4] = {p, lb_cg_i32(cg, 1), mask, LLVMConstNull(FT)};
        bv = lb_cg_intrin2(cg, "llvm.masked.load", over, 2, args, 4);
      } else {
        bv = ld(cg, FT, p);
      }
    }
    for (int i = 0; i < mr; i++) {
      LLVMValueRef v = gr.out[i * NV + j];
      if (bv) v = LLVMBuildFAdd(B, v, bv, "");
      v = lb_cg_act(cg, q->d.act, v);
      LLVMValueRef yi = lb_cg_i64(cg, i * q->d.N + (int64_t)j * VL);
      if (yint) {
        bool u = q->d.ydt == LB_DTYPE_U8;
        LLVMValueRef r8 = call1(cg, "llvm.rint", LLVMBuildFDiv(B, v, lb_cg_fconst(FT, q->d.sy), ""));
        v = LLVMBuildTrunc(B, sat_int(cg, r8, q->d.zy, u ? 0 : -128, u ? 255 : 127, IT), vty(cg->t_i8, VL), "");
      }
      LLVMValueRef p = lb_cg_gep(cg, yint ? cg->t_i8 : f32, y, yi);
      if (mask) {
        LLVMTypeRef over[2] = {LLVMTypeOf(v), cg->t_ptr};
        LLVMValueRef args[4] = {v, p, lb_cg_i32(cg, 1), mask};
        lb_cg_intrin2(cg, "llvm.masked.store", over, 2, args, 4);
      } else {
        lb_cg_store_ty(cg, LLVMTypeOf(v), p, NULL, v, 1);
      }
    }
  }
  fn_end(cg, saved, bb);
  return fn;
}

/* ---- a_quant none, M > 1: dequantized tiles -------------------------------------- */

/* A group's scales sc[j] and -z' * scale zf[j] (NULL when z' = 0) per column vector. */
static void lbq_deq_consts(struct lb_cg *cg, const struct lbq *q, LLVMValueRef blk, LLVMValueRef *sc,
                           LLVMValueRef *zf) {
  LLVMBuilderRef B = cg->b;
  int VL = q->vl, NR = VL * q->nv;
  LLVMTypeRef CT = vty(cg->t_i8, VL), FT = vty(cg->t_f32, VL);
  for (int j = 0; j < q->nv && q->f16; j++) sc[j] = zf[j] = NULL; /* f16: the codes are the weights */
  for (int j = 0; j < q->nv && !q->f16; j++) {
    LLVMValueRef h = ld(cg, vty(cg->t_i16, VL), bytes_at(cg, blk, lb_cg_i64(cg, q->cbytes + 2 * (int64_t)j * VL)));
    sc[j] = lbq_scale_f32(cg, q, h, VL); /* fp8: with what the code decoding leaves out */
    if (q->asym)
      zf[j] = LLVMBuildUIToFP(B, ld(cg, CT, bytes_at(cg, blk, lb_cg_i64(cg, q->cbytes + 2 * NR + (int64_t)j * VL))),
                              FT, "");
    else
      zf[j] = q->zconst ? lb_cg_fconst(FT, q->zconst) : NULL;
    /* -z' * scale is exact, and so is the fused u * scale - z' * scale */
    if (zf[j]) zf[j] = LLVMBuildFNeg(B, LLVMBuildFMul(B, zf[j], sc[j], ""), "");
  }
}

/* Units per dequantizing iteration: whole steps of NV vectors (an 8-bit unit
 * holds one vector). */
static int lbq_deq_units(const struct lbq *q) { return q->cpb >= q->nv ? 1 : q->nv / q->cpb; }

/* Iteration `it` of a group's block: its U * cpb code vectors dequantized to
 * f32 in f[v]; vector v is step it * steps + v / NV, column vector v % NV. */
static int lbq_deq_iter(struct lb_cg *cg, const struct lbq *q, LLVMValueRef blk, LLVMValueRef it,
                        LLVMValueRef const *sc, LLVMValueRef const *zf, LLVMValueRef *f) {
  LLVMBuilderRef B = cg->b;
  int VL = q->vl, NV = q->nv, cpb = q->cpb, bw = 8 / cpb, U = lbq_deq_units(q);
  LLVMTypeRef CT = lbq_code_type(cg, q, VL);
  int64_t ub = (int64_t)VL * cpb * lbq_code_bits(q) / 8; /* bytes per unit */
  for (int uu = 0; uu < U; uu++) {
    LLVMValueRef cbyte = LLVMBuildNSWMul(B, LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, it, lb_cg_i64(cg, U), ""),
                                                            lb_cg_i64(cg, uu), ""), lb_cg_i64(cg, ub), "");
    LLVMValueRef chunk = ld(cg, CT, bytes_at(cg, blk, cbyte)), lo1 = NULL, hi = NULL;
    if (q->bits == 3) {
      lo1 = ld(cg, CT, bytes_at(cg, blk, LLVMBuildNSWAdd(B, cbyte, lb_cg_i64(cg, VL), "")));
      hi = ld(cg, CT, bytes_at(cg, blk, LLVMBuildNSWAdd(B, cbyte, lb_cg_i64(cg, 2 * VL), "")));
    }
    for (int t = 0; t < cpb; t++) {
      int v = uu * cpb + t, j = v % NV;
      LLVMValueRef u = chunk; /* as in lbq_step */
      if (q->bits == 3) {
        u = t < 4 ? chunk : lo1;
        if (t % 4) u = LLVMBuildLShr(B, u, lb_cg_iconst(CT, 2 * (t % 4)), "");
        if (t % 4 != 3) u = LLVMBuildAnd(B, u, lb_cg_iconst(CT, 3), "");
        LLVMValueRef h = t < 2 ? LLVMBuildShl(B, hi, lb_cg_iconst(CT, 2 - t), "")
                       : t > 2 ? LLVMBuildLShr(B, hi, lb_cg_iconst(CT, t - 2), "") : hi;
        u = LLVMBuildOr(B, u, LLVMBuildAnd(B, h, lb_cg_iconst(CT, 4), ""), "");
      } else if (cpb > 1) {
        if (t) u = LLVMBuildLShr(B, u, lb_cg_iconst(CT, t * bw), "");
        if (t < cpb - 1) u = LLVMBuildAnd(B, u, lb_cg_iconst(CT, (1 << bw) - 1), "");
      }
      LLVMValueRef x = lbq_code_f32(cg, q, u, VL); /* integer codes, or fp8 decoded */
      f[v] = zf[j] ? lb_cg_fma(cg, x, sc[j], zf[j]) : sc[j] ? LLVMBuildFMul(B, x, sc[j], "") : x;
    }
  }
  return U * cpb;
}

/* f[v] -> tile rows kk0 + v / NV (the float GEMM's packed B) */
static void lbq_deq_store(struct lb_cg *cg, const struct lbq *q, LLVMValueRef tile, LLVMValueRef kk0,
                          LLVMValueRef const *f, int nvec) {
  LLVMBuilderRef B = cg->b;
  int VL = q->vl, NV = q->nv;
  for (int v = 0; v < nvec; v++) {
    LLVMValueRef row = LLVMBuildNSWAdd(B, kk0, lb_cg_i64(cg, v / NV), "");
    LLVMValueRef idx = LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, row, lb_cg_i64(cg, (int64_t)VL * NV), ""),
                                       lb_cg_i64(cg, (int64_t)(v % NV) * VL), "");
    lb_cg_store_ty(cg, vty(cg->t_f32, VL), lb_cg_gep(cg, cg->t_f32, tile, idx), NULL, f[v], (unsigned)VL * 4);
  }
}

/* void deq(w, tile): one panel's real weights scale * (u - z') in f32 (exact:
 * an f16 scale times a small integer) laid out as the float GEMM's packed B,
 * row g*G + kk of group g at tile[(g*G + kk) * NR]. A group's padding rows
 * land on the next group's first rows, which that group writes afterwards;
 * the last group's go past row K, where the GEMM does not read. */
static LLVMValueRef emit_lbq_deq(struct lb_cg *cg, const struct lbq *q) {
  LLVMValueRef fn = lb_cg_new_fn(cg, "q4deq", 2, 0), saved;
  LLVMBasicBlockRef bb = fn_begin(cg, fn, &saved);
  LLVMBuilderRef B = cg->b;
  LLVMValueRef w = LLVMGetParam(fn, 0), tile = LLVMGetParam(fn, 1);
  int U = lbq_deq_units(q), steps = U * q->cpb / q->nv;
  int64_t ub = (int64_t)q->vl * q->cpb * lbq_code_bits(q) / 8;
  LB_ASSERT(q->kg == 1 && (q->cpb * U) % q->nv == 0);
  struct lb_cg_loop gl, cl;
  lb_cg_for_c(cg, &gl, 0, q->ng);
  LLVMValueRef blk = bytes_at(cg, w, LLVMBuildNSWMul(B, gl.i, lb_cg_i64(cg, q->block), ""));
  LLVMValueRef sc[4], zf[4], f[16];
  lbq_deq_consts(cg, q, blk, sc, zf);
  LLVMValueRef row0 = LLVMBuildNSWMul(B, gl.i, lb_cg_i64(cg, q->G), "");
  lb_cg_for_c(cg, &cl, 0, q->cbytes / ub / U);
  int nvec = lbq_deq_iter(cg, q, blk, cl.i, sc, zf, f);
  lbq_deq_store(cg, q, tile, LLVMBuildNSWAdd(B, row0, LLVMBuildNSWMul(B, cl.i, lb_cg_i64(cg, steps), ""), ""), f,
                nvec);
  lb_cg_for_end(cg, &cl);
  lb_cg_for_end(cg, &gl);
  fn_end(cg, saved, bb);
  return fn;
}

/* Tiles of at most this many bytes (K x NR f32) stay in L2 while all rows of
 * the chunk pass over them. */
enum { LBQ_TILE_MAX = 1 << 20 };

/* Rows from which a panel's dequantization pays for itself: it costs 1.5-2 rows
 * of the register path, and tile rows are 25-30% cheaper (Zen4, M = 5-7). */
enum { LBQ_TILE_MIN_ROWS = 6 };

static bool lbq_use_tiles(struct lb_cg *cg, const struct lbq *q) {
  int NR = q->nv * q->vl;
  return q->d.none && q->d.R >= LBQ_TILE_MIN_ROWS && q->d.K > 0 && q->d.ydt == LB_DTYPE_F32 && NR == lb_cg_gemm_nr(cg, LB_DTYPE_F32) &&
         ((q->ng - 1) * q->G + q->GP) * NR * 4 <= LBQ_TILE_MAX;
}

/* a_quant none at M > 1 is compute-bound: per (N-panel, M-chunk) unit, panel
 * major, a task dequantizes the panel once into a stack tile in the float
 * GEMM's packed layout and runs the float microkernel over the chunk's rows,
 * so a code is converted once per panel and task instead of once per row block. */
static void lbq_body_tiles(struct lb_cg *cg, struct lbq *q, LLVMValueRef *in, LLVMValueRef *out) {
  LLVMBuilderRef B = cg->b;
  int NR = q->nv * q->vl, MR = lb_cg_gemm_mr(cg);
  int64_t R = q->d.R, K = q->d.K, N = q->d.N, trows = (q->ng - 1) * q->G + q->GP;
  /* M-chunks (units for the threads) as in the float GEMM: ~256 KiB of rows */
  int64_t MC = 256 * 1024 / (K * 4 + 1) / MR * MR;
  if (MC < MR) MC = MR;
  if (MC >= R) MC = R;
  int64_t nmc = (R + MC - 1) / MC;
  if (nmc > 1) {
    MC = (R + nmc - 1) / nmc;
    MC = (MC + MR - 1) / MR * MR;
    nmc = (R + MC - 1) / MC;
  }
  int64_t lastrows = R - (nmc - 1) * MC, lastcols = N - (q->np - 1) * NR;
  bool par = lb_cg_want_parallel(cg, 2 * R * N * K);
  LLVMValueRef ptrs[3] = {in[0], out[0], q->d.has_bias ? in[2] : LLVMConstNull(cg->t_ptr)}, inr[3], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, q->np * nmc, 1, par, ptrs, 3, inr, &begin, &end);
  LLVMValueRef tile = LLVMBuildAlloca(B, LLVMArrayType2(cg->t_f32, (uint64_t)(trows * NR)), "qtile");
  LLVMSetAlignment(tile, 64);
  LLVMValueRef deq = emit_lbq_deq(cg, q);
  struct lb_cg_gemm gm = {.dt = LB_DTYPE_F32, .batch = 1, .M = R, .N = N, .K = K, .a_rs = K, .a_cs = 1,
                          .b_packed = true, .ldc = N, .alpha = 1, .e = q->d.has_bias ? inr[2] : NULL,
                          .e_cs = 1, .beta = 1, .e_dt = LB_DTYPE_F32, .act = q->d.act};
  struct lb_cg_loop ul;
  lb_cg_for(cg, &ul, begin, end);
  LLVMValueRef u = ul.i;
  LLVMValueRef pidx = LLVMBuildSDiv(B, u, lb_cg_i64(cg, nmc), "");
  LLVMValueRef mc = LLVMBuildSRem(B, u, lb_cg_i64(cg, nmc), "");
  {
    /* a task dequantizes a panel when it enters it */
    struct lb_cg_if fq;
    lb_cg_if_begin(cg, &fq, LLVMBuildOr(B, LLVMBuildICmp(B, LLVMIntEQ, u, begin, ""),
                                        LLVMBuildICmp(B, LLVMIntEQ, mc, lb_cg_i64(cg, 0), ""), ""));
    LLVMValueRef args[2] = {bytes_at(cg, q->wp, LLVMBuildNSWMul(B, pidx, lb_cg_i64(cg, q->ng * q->block), "")),
                            tile};
    LLVMBuildCall2(B, LLVMGlobalGetValueType(deq), deq, args, 2, "");
    lb_cg_if_end(cg, &fq);
  }
  LLVMValueRef r0 = LLVMBuildNSWMul(B, mc, lb_cg_i64(cg, MC), "");
  LLVMValueRef n0 = LLVMBuildNSWMul(B, pidx, lb_cg_i64(cg, NR), "");
  LLVMValueRef a0 = lb_cg_gep(cg, cg->t_f32, inr[0], LLVMBuildNSWMul(B, r0, lb_cg_i64(cg, K), ""));
  LLVMValueRef y0 = lb_cg_gep(cg, cg->t_f32, inr[1], LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, r0, lb_cg_i64(cg, N), ""), n0, ""));
  LLVMValueRef bias = q->d.has_bias ? lb_cg_gep(cg, cg->t_f32, inr[2], n0) : inr[2];
  LLVMValueRef is_lastm = LLVMBuildICmp(B, LLVMIntEQ, mc, lb_cg_i64(cg, nmc - 1), "");
  LLVMValueRef is_lastp = LLVMBuildICmp(B, LLVMIntEQ, pidx, lb_cg_i64(cg, q->np - 1), "");
  LLVMValueRef ukc[2][2] = {{NULL, NULL}, {NULL, NULL}}; /* rem is 0 in full chunks when nmc > 1 */
  for (int pv = 0; pv < 2; pv++) {
    int64_t nvalid = pv ? lastcols : NR;
    struct lb_cg_if fp;
    if (lastcols != NR) lb_cg_if_begin(cg, &fp, pv ? is_lastp : LLVMBuildNot(B, is_lastp, ""));
    else if (pv) break;
    for (int mv = 0; mv < 2; mv++) {
      int64_t nr = mv ? lastrows : MC;
      struct lb_cg_if fm;
      if (lastrows != MC) lb_cg_if_begin(cg, &fm, mv ? is_lastm : LLVMBuildNot(B, is_lastm, ""));
      else if (mv) break;
      int64_t nfull = nr / MR, rem = nr % MR;
      for (int part = 0; part < 2; part++) {
        int mr = part ? (int)rem : MR;
        if (mr == 0 || (!part && nfull == 0)) continue;
        LLVMValueRef *ukp = &ukc[pv][part];
        if (!*ukp) *ukp = lb_cg_gemm_ukernel(cg, &gm, mr, nvalid);
        struct lb_cg_loop ml;
        LLVMValueRef i0;
        if (!part) {
          lb_cg_for_c(cg, &ml, 0, nfull);
          i0 = LLVMBuildNSWMul(B, ml.i, lb_cg_i64(cg, MR), "");
        } else {
          i0 = lb_cg_i64(cg, nfull * MR);
        }
        LLVMValueRef args[4] = {lb_cg_gep(cg, cg->t_f32, a0, LLVMBuildNSWMul(B, i0, lb_cg_i64(cg, K), "")), tile,
                                lb_cg_gep(cg, cg->t_f32, y0, LLVMBuildNSWMul(B, i0, lb_cg_i64(cg, N), "")), bias};
        LLVMBuildCall2(B, LLVMGlobalGetValueType(*ukp), *ukp, args, 4, "");
        if (!part) lb_cg_for_end(cg, &ml);
      }
      if (lastrows != MC) lb_cg_if_end(cg, &fm);
    }
    if (lastcols != NR) lb_cg_if_end(cg, &fp);
  }
  lb_cg_for_end(cg, &ul);
  lb_cg_par_end(cg, &p);
}

/* ---- the node -------------------------------------------------------------------- */

static void lbq_body(struct lb_cg *cg, struct lbq *q, LLVMValueRef *in, LLVMValueRef *out) {
  LLVMBuilderRef B = cg->b;
  int NR = q->nv * q->vl, MR = q->mr;
  int64_t units = q->nmc * q->np;
  int64_t lastcols = q->d.N - (q->np - 1) * NR, lastrows = q->d.R - (q->nmc - 1) * q->MC;
  /* memory-bound at batch 1: split the weight stream across threads */
  bool par = lb_cg_want_parallel(cg, 2 * q->d.R * q->d.N * q->d.K) || lb_cg_want_parallel(cg, q->np * q->ng * q->block);
  LLVMValueRef ptrs[3] = {in[0], out[0], q->d.has_bias ? in[2] : LLVMConstNull(cg->t_ptr)}, inr[3], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, units, 1, par, ptrs, 3, inr, &begin, &end);
  LLVMTypeRef bt = lb_cg_type(cg, q->bdt);
  LLVMValueRef buf = LLVMBuildAlloca(B, LLVMArrayType2(bt, (uint64_t)(q->MC * q->Kp + 16)), "qa");
  LLVMSetAlignment(buf, 64);
  LLVMValueRef sums = LLVMBuildAlloca(B, LLVMArrayType2(cg->t_i32, (uint64_t)(q->MC * q->ng)), "qsum");
  LLVMValueRef rsc = LLVMBuildAlloca(B, LLVMArrayType2(cg->t_f32, (uint64_t)q->MC), "qscale");
  LLVMValueRef rows = emit_lbq_rows(cg, q);
  struct lb_cg_loop ul;
  lb_cg_for(cg, &ul, begin, end);
  LLVMValueRef u = ul.i;
  LLVMValueRef pidx = LLVMBuildSRem(B, u, lb_cg_i64(cg, q->np), "");
  LLVMValueRef mc = LLVMBuildSDiv(B, u, lb_cg_i64(cg, q->np), "");
  LLVMValueRef r0 = LLVMBuildNSWMul(B, mc, lb_cg_i64(cg, q->MC), "");
  LLVMValueRef is_lastm = LLVMBuildICmp(B, LLVMIntEQ, mc, lb_cg_i64(cg, q->nmc - 1), "");
  LLVMValueRef is_lastp = LLVMBuildICmp(B, LLVMIntEQ, pidx, lb_cg_i64(cg, q->np - 1), "");
  LLVMValueRef a_row0 =
      lb_cg_gep(cg, lb_cg_type(cg, q->d.adt), inr[0], LLVMBuildNSWMul(B, r0, lb_cg_i64(cg, q->d.K), ""));
  {
    /* a task prepares a chunk's rows when it enters the chunk */
    struct lb_cg_if fq;
    LLVMValueRef enter = LLVMBuildOr(B, LLVMBuildICmp(B, LLVMIntEQ, u, begin, ""),
                                     LLVMBuildICmp(B, LLVMIntEQ, pidx, lb_cg_i64(cg, 0), ""), "");
    lb_cg_if_begin(cg, &fq, enter);
    LLVMValueRef nrows = LLVMBuildSelect(B, is_lastm, lb_cg_i64(cg, lastrows), lb_cg_i64(cg, q->MC), "");
    LLVMValueRef args[5] = {a_row0, buf, sums, rsc, nrows};
    LLVMBuildCall2(B, LLVMGlobalGetValueType(rows), rows, args, 5, "");
    lb_cg_if_end(cg, &fq);
  }
  LLVMValueRef n0 = LLVMBuildNSWMul(B, pidx, lb_cg_i64(cg, NR), "");
  LLVMValueRef wpan = bytes_at(cg, q->wp, LLVMBuildNSWMul(B, pidx, lb_cg_i64(cg, q->ng * q->block), ""));
  LLVMValueRef bias = q->d.has_bias ? lb_cg_gep(cg, cg->t_f32, inr[2], n0) : inr[2];
  LLVMTypeRef yt = lb_cg_type(cg, q->d.ydt);
  LLVMValueRef y0 =
      lb_cg_gep(cg, yt, inr[1], LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, r0, lb_cg_i64(cg, q->d.N), ""), n0, ""));
  int64_t astride = q->Kp * lb_dtype_traits[q->bdt].size;
  LLVMValueRef ukc[2][2] = {{NULL, NULL}, {NULL, NULL}};
  for (int pv = 0; pv < 2; pv++) {
    int64_t nvalid = pv ? lastcols : NR;
    struct lb_cg_if fp;
    if (lastcols != NR) lb_cg_if_begin(cg, &fp, pv ? is_lastp : LLVMBuildNot(B, is_lastp, ""));
    else if (pv) break;
    for (int mv = 0; mv < 2; mv++) {
      int64_t nr = mv ? lastrows : q->MC;
      struct lb_cg_if fm;
      if (lastrows != q->MC) lb_cg_if_begin(cg, &fm, mv ? is_lastm : LLVMBuildNot(B, is_lastm, ""));
      else if (mv) break;
      int64_t nfull = nr / MR, rem = nr % MR;
      for (int part = 0; part < 2; part++) {
        int mr = part ? (int)rem : MR;
        if (mr == 0 || (!part && nfull == 0)) continue;
        LLVMValueRef *ukp = &ukc[pv][part];
        LLVMValueRef uk = *ukp ? *ukp : emit_lbq_uk(cg, q, mr, nvalid);
        *ukp = uk;
        struct lb_cg_loop ml;
        LLVMValueRef i0;
        if (!part) {
          lb_cg_for_c(cg, &ml, 0, nfull);
          i0 = LLVMBuildNSWMul(B, ml.i, lb_cg_i64(cg, MR), "");
        } else {
          i0 = lb_cg_i64(cg, nfull * MR);
        }
        LLVMValueRef args[6] = {bytes_at(cg, buf, LLVMBuildNSWMul(B, i0, lb_cg_i64(cg, astride), "")),
                                lb_cg_gep(cg, cg->t_i32, sums, LLVMBuildNSWMul(B, i0, lb_cg_i64(cg, q->ng), "")),
                                lb_cg_gep(cg, cg->t_f32, rsc, i0), wpan,
                                lb_cg_gep(cg, yt, y0, LLVMBuildNSWMul(B, i0, lb_cg_i64(cg, q->d.N), "")), bias};
        LLVMBuildCall2(B, LLVMGlobalGetValueType(uk), uk, args, 6, "");
        if (!part) lb_cg_for_end(cg, &ml);
      }
      if (lastrows != q->MC) lb_cg_if_end(cg, &fm);
    }
    if (lastcols != NR) lb_cg_if_end(cg, &fp);
  }
  lb_cg_for_end(cg, &ul);
  lb_cg_par_end(cg, &p);
}

enum lb_status lb_cg_emit_qmatmul_lowbit(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  struct lb_value *wv = n->inputs[1];
  const int8_t *w = lb_value_const_data(cg->g, wv);
  const struct lb_qparams *qw = wv->qparams;
  int64_t K = wv->type.shape.dims[0], N = wv->type.shape.dims[1];
  struct lbq q;
  memset(&q, 0, sizeof q);
  q.f16 = wv->type.dtype == LB_DTYPE_F16; /* no qparams */
  if (q.f16 && strcmp(lb_node_attr_string(n, "a_quant", "none"), "none") != 0)
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "f16 qmatmul weights need a_quant=\"none\"");
  for (int64_t i = 0; q.f16 && !q.f16_special && i < K * N; i++)
    q.f16_special = (((const uint16_t *)w)[i] & 0x7C00) == 0x7C00;
  q.bits = q.f16 ? 16 : qw->bits;
  q.asym = !q.f16 && qw->zero_points != NULL;
  q.fp8 = q.f16 ? LB_QFLOAT_NONE : qw->fp8;
  for (int64_t i = 0; q.fp8 && !q.fp8_special && i < K * N; i++)
    q.fp8_special = !isfinite(lb_fp8_decode((uint8_t)w[i], q.fp8));
  q.wsigned = q.bits == 8 && !q.asym && !q.fp8;
  if (q.bits != 2 && q.bits != 3 && q.bits != 4 && q.bits != 8 && !q.f16)
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "qmatmul weights of %d bits (2, 3, 4 or 8 are supported)",
                         q.bits);
  if (q.asym && q.bits == 8)
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "asymmetric 8-bit qmatmul weights");
  if (q.fp8 && (q.asym || strcmp(lb_node_attr_string(n, "a_quant", "none"), "none") != 0))
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "fp8 qmatmul weights need a_quant=\"none\", no zero points");
  int64_t need = q.f16 ? 0 : qw->group_size > 0 ? (K + qw->group_size - 1) / qw->group_size * N
                                                 : qw->axis == -1 ? 1 : N;
  if (!q.f16 && qw->n != need)
    return lb_diag_error(cg->d, LB_ERR_INVALID, n, "qmatmul weight has %lld scales, needs %lld", (long long)qw->n,
                         (long long)need);
  q.zconst = q.bits < 8 && !q.asym ? 1 << (q.bits - 1) : 0;
  q.cpb = q.bits == 2 ? 4 : q.bits == 3 ? 8 : q.bits == 4 ? 2 : 1; /* 8 and 16: one code vector per unit */
  enum lb_status st = lb_qmm_describe(n, &q.d, cg->d);
  if (st != LB_OK || q.d.R == 0 || q.d.N == 0) return st;
  lbq_choose_isa(cg, &q);
  if (q.fp8) {
    struct lb_cg_qmm_features f;
    lb_cg_qmm_features(cg, &f);
    q.fp8_f16 = (f.z512 || !cg->is_x86) && !(q.fp8 == LB_QFLOAT_E4M3 && q.fp8_special);
  }
  if (q.f16) {
    struct lb_cg_qmm_features f;
    lb_cg_qmm_features(cg, &f);
    q.f16_cvt = !cg->is_x86 || f.f16c; /* aarch64: fcvtl is base NEON */
  }
  int NR = q.nv * q.vl;
  q.G = !q.f16 && qw->group_size > 0 ? qw->group_size : q.d.K > 0 ? q.d.K : 1; /* K = 0: no groups, y = bias */
  q.ng = (q.d.K + q.G - 1) / q.G;
  int64_t unit = (int64_t)q.kg * q.cpb;
  q.GP = (q.G + unit - 1) / unit * unit;
  q.Kp = q.ng * q.GP;
  q.np = (q.d.N + NR - 1) / NR;
  q.cbytes = NR * q.GP * lbq_code_bits(&q) / 8;
  q.block = q.cbytes + (q.f16 ? 0 : 2 * NR) + (q.asym ? NR : 0);
  /* the block layout's size: the codes fill whole bytes (no code is cut by the /8), then
   * one f16 scale and (asym) one u8 zero point per column (f16 weights: neither) */
  LB_ASSERT((int64_t)q.cbytes * 8 == (int64_t)NR * q.GP * lbq_code_bits(&q));
  LB_ASSERT(q.block == q.cbytes + (int64_t)NR * (q.f16 ? 0 : q.asym ? 3 : 2));
  /* M-chunk: its rows stay in L1 next to the panel's blocks */
  int64_t rowbytes = q.Kp * lb_dtype_traits[q.bdt].size;
  int64_t MC = 32 * 1024 / (rowbytes + 1) / q.mr * q.mr;
  if (MC < q.mr) MC = q.mr;
  if (MC > 240) MC = 240;
  if (MC >= q.d.R) MC = q.d.R;
  q.nmc = (q.d.R + MC - 1) / MC;
  if (q.nmc > 1) {
    MC = (q.d.R + q.nmc - 1) / q.nmc;
    MC = (MC + q.mr - 1) / q.mr * q.mr;
    q.nmc = (q.d.R + MC - 1) / MC;
  }
  q.MC = MC;
  if (q.f16) lbq_pack_f16(cg, &q, (const uint16_t *)w);
  else lbq_pack(cg, &q, w, qw);
  if (lbq_use_tiles(cg, &q)) lbq_body_tiles(cg, &q, in, out);
  else lbq_body(cg, &q, in, out);
  return LB_OK;
}
