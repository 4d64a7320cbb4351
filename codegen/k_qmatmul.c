/* k_qmatmul.c: qmatmul, the matmul with a constant int8 weight (docs/ir-ops.md
 * "Quantized matmul"), on the target's integer dot products.
 *
 * The weight is packed at compile time into panels of NR = NV * VL output
 * columns (VL = i32 lanes of a vector register) that the microkernel streams
 * with unit stride:
 *
 *   packed[panel][k / KG][NR columns][KG]   int8, K zero-padded to KG, N to NR
 *
 * KG is what one i32 lane of the dot-product instruction consumes: 4 for x86
 * vpdpbusd (u8 x s8) and aarch64 sdot (s8 x s8), 2 for x86 vpmaddwd (i16 pairs,
 * exact, unlike vpmaddubsw which saturates), 1 for the widening multiply-add
 * (aarch64 without dotprod: smull/smlal) and for the weight-only f32 path.
 *
 * Activations (a_quant static/dynamic) are quantized per M-chunk into a stack
 * buffer of Kp bytes (or i16) per row, shifted by `a_off` to the signedness the
 * instruction wants (+128 makes signed values u8 for vpdpbusd, -128 makes u8
 * values s8 for sdot). The shift and the zero point come out exactly through
 * the per-column weight sums: sum (q - za) w = dot(q + a_off, w) - (a_off + za) *
 * colsum, so the i32 correction -(a_off + za) * colsum[n] is a compile-time
 * constant added in the epilogue. Dynamic rows get their scale in the kernel.
 * The epilogue then converts to f32, multiplies by sa * scale[n] (a per-column
 * constant when static; rounded to f32 per row when dynamic), adds the bias,
 * applies the activation and stores f32 or requantizes to i8/u8 (y / sy, ties
 * to even, + zy, saturated) exactly as ir/eval.c does, so integer paths agree
 * with the evaluator bit for bit up to the activation's libm differences.
 *
 * a_quant "none" (W8): f32 activations read in place, weight bytes widened to
 * f32 in registers (sitofp) and FMA'd; the per-column scale is applied once at
 * the end. At batch 1 this is memory bound: every panel is streamed exactly
 * once, by one thread, with two accumulator sets to keep loads in flight.
 *
 * Work units are (M-chunk, panel), chunk-major, split across threads with
 * lbrt_parallel_for; a task quantizes a chunk's rows when it enters the chunk
 * (its first unit or panel 0), so the activations are quantized about once per
 * thread and chunk, not once per panel. */
#include <stdlib.h>
#include <string.h>

#include "codegen/cg.h"
#include "codegen/k_qmatmul_util.h"
#include "codegen/qmatmul_desc.h"

enum qmm_isa {
  QMM_VNNI,    /* x86 vpdpbusd: avx512vnni (zmm; ymm with avx512vl) or avxvnni (ymm) */
  QMM_PMADDWD, /* x86 without VNNI: i16 activations x sign-extended weight pairs */
  QMM_SDOT,    /* aarch64 +dotprod */
  QMM_WIDEN,   /* aarch64 baseline: i16 activations x widened weights, i32 multiply-add */
  QMM_FLOAT,   /* a_quant none: weights widened to f32, FMA */
};

struct qmm {
  struct lb_qmm_desc d;  /* shapes, dtypes, act, a_quant, input and output qparams */
  enum qmm_isa isa;
  int vl, nv, mr, kg;    /* lanes, vectors per panel, rows per microkernel, k per lane */
  int64_t Kp, np;
  int64_t MC, nmc;       /* rows per M-chunk, chunks */
  enum lb_dtype bdt;     /* activation buffer element */
  int32_t a_off;         /* added to quantized activations in the buffer */
  LLVMValueRef wp, corr, scale; /* packed weights, i32 correction, f32 scale per column */
  LLVMValueRef uk[2][2];        /* microkernels: [partial panel][remainder rows] */
};

/* ---- target features ---------------------------------------------------------- */

/* Whether the target machine has feature `name`: the last "+name" / "-name" of
 * its feature string decides (the host's features and --features end up
 * there); without one, whether the CPU is one of `cpus` (name prefixes), since
 * LLVM's C API does not expose what a named CPU implies. */
static int feature_state(struct lb_cg *cg, const char *name) { /* 1 on, -1 off, 0 not named */
  char *fs = LLVMGetTargetMachineFeatureString(cg->tm);
  size_t len = strlen(name);
  int state = 0;
  for (const char *p = fs; p && *p;) {
    const char *e = strchr(p, ',');
    size_t n = e ? (size_t)(e - p) : strlen(p);
    if (n == len + 1 && (p[0] == '+' || p[0] == '-') && !strncmp(p + 1, name, len)) state = p[0] == '+' ? 1 : -1;
    p += n + (e ? 1 : 0);
  }
  LLVMDisposeMessage(fs);
  return state;
}

static bool target_has(struct lb_cg *cg, const char *name, const char *const *cpus) {
  int state = feature_state(cg, name);
  if (state) return state > 0;
  char *cpu = LLVMGetTargetMachineCPU(cg->tm);
  bool on = false;
  for (int i = 0; cpus[i]; i++)
    if (!strncmp(cpu, cpus[i], strlen(cpus[i]))) on = true;
  LLVMDisposeMessage(cpu);
  return on;
}

static const char *const cpus_avx512vnni[] = {"cascadelake", "cooperlake", "icelake", "tigerlake", "rocketlake",
                                              "sapphirerapids", "emeraldrapids", "graniterapids", "diamondrapids",
                                              "znver4", "znver5", NULL};
static const char *const cpus_avxvnni[] = {"alderlake", "raptorlake", "meteorlake", "arrowlake", "lunarlake",
                                           "pantherlake", "gracemont", "sierraforest", "grandridge",
                                           "clearwaterforest", "sapphirerapids", "emeraldrapids", "graniterapids",
                                           "diamondrapids", "znver5", NULL};
static const char *const cpus_avx512bw[] = {"skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake",
                                            "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids",
                                            "graniterapids", "diamondrapids", "znver4", "znver5", "x86-64-v4", NULL};
static const char *const cpus_avx512vl[] = {"skylake-avx512", "cascadelake", "cooperlake", "cannonlake", "icelake",
                                            "tigerlake", "rocketlake", "sapphirerapids", "emeraldrapids",
                                            "graniterapids", "diamondrapids", "znver4", "znver5", "x86-64-v4", NULL};
static const char *const cpus_avx2[] = {"haswell", "broadwell", "skylake", "cascadelake", "cooperlake", "cannonlake",
                                        "icelake", "tigerlake", "rocketlake", "alderlake", "raptorlake", "meteorlake",
                                        "arrowlake", "lunarlake", "pantherlake", "gracemont", "sierraforest",
                                        "grandridge", "clearwaterforest", "sapphirerapids", "emeraldrapids",
                                        "graniterapids", "diamondrapids", "znver", "bdver4", "x86-64-v3",
                                        "x86-64-v4", NULL};
/* F16C: Ivy Bridge, Piledriver, Jaguar and every AVX2 CPU above */
static const char *const cpus_f16c[] = {"ivybridge", "haswell", "broadwell", "skylake", "cascadelake", "cooperlake",
                                        "cannonlake", "icelake", "tigerlake", "rocketlake", "alderlake", "raptorlake",
                                        "meteorlake", "arrowlake", "lunarlake", "pantherlake", "gracemont",
                                        "sierraforest", "grandridge", "clearwaterforest", "sapphirerapids",
                                        "emeraldrapids", "graniterapids", "diamondrapids", "znver", "bdver2",
                                        "bdver3", "bdver4", "btver2", "x86-64-v3", "x86-64-v4", NULL};
static const char *const cpus_dotprod[] = {"cortex-a55", "cortex-a65", "cortex-a75", "cortex-a76", "cortex-a77",
                                           "cortex-a78", "cortex-a710", "cortex-a715", "cortex-a720", "cortex-a725",
                                           "cortex-x", "neoverse-n1", "neoverse-n2", "neoverse-n3", "neoverse-v",
                                           "neoverse-512tvb", "apple-a13", "apple-a14", "apple-a15", "apple-a16",
                                           "apple-a17", "apple-m", "ampere1", "oryon", NULL};

/* dotprod, named or implied by an architecture level (+v8.4a and later) */
static bool aarch64_dotprod(struct lb_cg *cg) {
  static const char *const levels[] = {"v8.4a", "v8.5a", "v8.6a", "v8.7a", "v8.8a", "v8.9a",
                                       "v9a", "v9.1a", "v9.2a", "v9.3a", "v9.4a", "v9.5a", NULL};
  if (feature_state(cg, "dotprod")) return feature_state(cg, "dotprod") > 0;
  for (int i = 0; levels[i]; i++)
    if (feature_state(cg, levels[i]) > 0) return true;
  return target_has(cg, "dotprod", cpus_dotprod);
}

/* The integer dot-product features k_qmatmul_lowbit.c chooses from (cg.h). */
void lb_cg_qmm_features(struct lb_cg *cg, struct lb_cg_qmm_features *f) {
  memset(f, 0, sizeof *f);
  if (cg->is_x86) {
    f->avx2 = cg->vbits >= 256 && target_has(cg, "avx2", cpus_avx2);
    f->z512 = cg->vbits >= 512 && target_has(cg, "avx512f", cpus_avx512bw) && target_has(cg, "avx512bw", cpus_avx512bw);
    f->vnni512 = target_has(cg, "avx512vnni", cpus_avx512vnni);
    f->vnni256 = (f->vnni512 && target_has(cg, "avx512f", cpus_avx512bw) &&
                  target_has(cg, "avx512vl", cpus_avx512vl)) ||
                 target_has(cg, "avxvnni", cpus_avxvnni);
    f->f16c = target_has(cg, "f16c", cpus_f16c);
  } else {
    f->dotprod = aarch64_dotprod(cg);
  }
}

/* Picks the instruction family and the register blocking for the target. */
static void qmm_choose_isa(struct lb_cg *cg, struct qmm *q) {
  if (cg->is_x86) {
    bool avx2 = cg->vbits >= 256 && target_has(cg, "avx2", cpus_avx2);
    /* the explicit intrinsics need their features: --features -avx512f must not get zmm */
    bool z512 = cg->vbits >= 512 && target_has(cg, "avx512f", cpus_avx512bw) &&
                target_has(cg, "avx512bw", cpus_avx512bw);
    bool vnni512 = target_has(cg, "avx512vnni", cpus_avx512vnni);
    bool vnni256 = (vnni512 && target_has(cg, "avx512f", cpus_avx512bw) && target_has(cg, "avx512vl", cpus_avx512vl)) ||
                   target_has(cg, "avxvnni", cpus_avxvnni);
    q->vl = z512 ? 16 : avx2 ? 8 : 4;
    if (q->d.none) {
      /* 32 zmm: 6 x 4 accumulators; 16 ymm/xmm: 6 x 2 */
      q->isa = QMM_FLOAT;
      q->vl = cg->vbits >= 512 ? 16 : cg->vbits >= 256 ? 8 : 4;
      q->nv = q->vl == 16 ? 4 : 2;
      q->mr = 6;
    } else if (z512 && vnni512) {
      q->isa = QMM_VNNI, q->nv = 4, q->mr = 6;
    } else if (avx2 && vnni256) {
      q->isa = QMM_VNNI, q->vl = 8, q->nv = 2, q->mr = 6;
    } else {
      q->isa = QMM_PMADDWD;
      q->nv = q->vl == 16 ? 4 : 2;
      q->mr = q->vl == 16 ? 6 : 4;
    }
  } else {
    q->vl = 4;
    if (q->d.none) q->isa = QMM_FLOAT, q->nv = 4, q->mr = 6;
    else if (aarch64_dotprod(cg)) q->isa = QMM_SDOT, q->nv = 4, q->mr = 6;
    else q->isa = QMM_WIDEN, q->nv = 4, q->mr = 4;
  }
  switch (q->isa) {
  case QMM_VNNI: q->kg = 4, q->bdt = LB_DTYPE_U8; break;
  case QMM_SDOT: q->kg = 4, q->bdt = LB_DTYPE_I8; break;
  case QMM_PMADDWD: q->kg = 2, q->bdt = LB_DTYPE_I16; break;
  case QMM_WIDEN: q->kg = 1, q->bdt = LB_DTYPE_I16; break;
  case QMM_FLOAT: q->kg = 1, q->bdt = LB_DTYPE_F32; break;
  }
  /* shift the activations into the buffer type's range (see the header) */
  bool q_unsigned = !q->d.dynamic && q->d.qlo == 0;
  q->a_off = q->isa == QMM_VNNI && !q_unsigned ? 128 : q->isa == QMM_SDOT && q_unsigned ? -128 : 0;
}

/* ---- compile-time packing ------------------------------------------------------ */

static void qmm_pack(struct lb_cg *cg, struct qmm *q, const int8_t *w, const struct lb_qparams *qw) {
  int NR = q->nv * q->vl, kg = q->kg;
  int64_t K = q->d.K, N = q->d.N, Kp = q->Kp, Np = q->np * NR;
  size_t psize = (size_t)(q->np * Kp * NR);
  int8_t *pk = calloc(psize ? psize : 1, 1);
  int32_t *corr = calloc((size_t)Np, sizeof *corr);
  float *scale = calloc((size_t)Np, sizeof *scale);
  if (!pk || !corr || !scale) abort();
  size_t o = 0;
  for (int64_t p = 0; p < q->np; p++)
    for (int64_t g = 0; g < Kp / kg; g++)
      for (int64_t j = 0; j < NR; j++)
        for (int e = 0; e < kg; e++, o++) {
          int64_t k = g * kg + e, n = p * NR + j;
          if (k < K && n < N) pk[o] = w[k * N + n];
        }
  for (int64_t n = 0; n < N; n++) {
    int32_t colsum = 0;
    for (int64_t k = 0; k < K; k++) colsum += w[k * N + n];
    corr[n] = -(q->a_off + q->d.za) * colsum;
    float ws = qw->scales[qw->n == 1 ? 0 : n];
    /* static: the contract's (sa * scale[n]) rounded to f32, folded here */
    scale[n] = q->d.none || q->d.dynamic ? ws : q->d.sa * ws;
  }
  q->wp = lb_cg_global_data(cg, "qw", pk, psize ? psize : 1);
  q->corr = lb_cg_global_data(cg, "qcorr", corr, (size_t)Np * sizeof *corr);
  q->scale = lb_cg_global_data(cg, "qscale", scale, (size_t)Np * sizeof *scale);
  free(pk);
  free(corr);
  free(scale);
}

/* ---- small IR helpers (more in k_qmatmul_util.h) ------------------------------ */

static LLVMValueRef at_bytes(struct lb_cg *cg, LLVMValueRef base, LLVMValueRef off) {
  return lb_cg_gep(cg, cg->t_i8, base, off);
}

static LLVMValueRef masked_load(struct lb_cg *cg, LLVMTypeRef t, LLVMValueRef p, LLVMValueRef mask) {
  LLVMTypeRef over[2] = {t, cg->t_ptr};
  LLVMValueRef args[4] = {p, lb_cg_i32(cg, 1), mask, LLVMConstNull(t)};
  return lb_cg_intrin2(cg, "llvm.masked.load", over, 2, args, 4);
}

static void masked_store(struct lb_cg *cg, LLVMValueRef v, LLVMValueRef p, LLVMValueRef mask) {
  LLVMTypeRef over[2] = {LLVMTypeOf(v), cg->t_ptr};
  LLVMValueRef args[4] = {v, p, lb_cg_i32(cg, 1), mask};
  lb_cg_intrin2(cg, "llvm.masked.store", over, 2, args, 4);
}

/* ---- activation rows -> buffer ----------------------------------------------------- */

/* void qrows(a, buf, rowscale, nrows): quantizes nrows rows of a (K values
 * each) into buf (Kp values each, padding 0), plus a_off. Dynamic rows store
 * their scale max|row| / 127 (1 for an all-zero row) in rowscale. */
static LLVMValueRef emit_qrows(struct lb_cg *cg, const struct qmm *q) {
  LLVMValueRef fn = lb_cg_new_fn(cg, "qrows", 3, 1), saved;
  LLVMBasicBlockRef bb = fn_begin(cg, fn, &saved);
  LLVMBuilderRef B = cg->b;
  LLVMValueRef a = LLVMGetParam(fn, 0), buf = LLVMGetParam(fn, 1), rsc = LLVMGetParam(fn, 2);
  LLVMTypeRef f32 = cg->t_f32, bt = lb_cg_type(cg, q->bdt);
  bool af = q->d.adt == LB_DTYPE_F32;
  struct lb_cg_loop rl, kl;
  lb_cg_for(cg, &rl, lb_cg_i64(cg, 0), LLVMGetParam(fn, 3));
  LLVMValueRef arow = LLVMBuildNSWMul(B, rl.i, lb_cg_i64(cg, q->d.K), "");
  LLVMValueRef brow = lb_cg_gep(cg, bt, buf, LLVMBuildNSWMul(B, rl.i, lb_cg_i64(cg, q->Kp), ""));
  LLVMValueRef sa = LLVMConstReal(f32, q->d.sa);
  if (q->d.dynamic) {
    /* max|x| in vectors, then the tail (the loop vectorizer leaves maxnum
     * reductions scalar); maxnum ignores NaN, as the evaluator's fabsf(x) > amax */
    LLVMValueRef zero = LLVMConstReal(f32, 0), vzero = LLVMConstNull(vty(f32, q->vl));
    int64_t nvec = q->d.K / q->vl;
    struct lb_cg_rloop mv, mx;
    lb_cg_rfor(cg, &mv, lb_cg_i64(cg, 0), lb_cg_i64(cg, nvec), 1, &vzero);
    LLVMValueRef xi = LLVMBuildNSWAdd(B, arow, LLVMBuildNSWMul(B, mv.l.i, lb_cg_i64(cg, q->vl), ""), "");
    LLVMValueRef xv = lb_cg_load_ty(cg, vty(f32, q->vl), lb_cg_gep(cg, f32, a, xi), NULL, 4);
    LLVMValueRef nv = call2(cg, "llvm.maxnum", mv.phi[0], call1(cg, "llvm.fabs", xv));
    lb_cg_rfor_end(cg, &mv, &nv);
    LLVMValueRef vmax = lb_cg_intrin(cg, "llvm.vector.reduce.fmax", vty(f32, q->vl), &mv.out[0], 1);
    lb_cg_rfor(cg, &mx, lb_cg_i64(cg, nvec * q->vl), lb_cg_i64(cg, q->d.K), 1, &vmax);
    LLVMValueRef x = lb_cg_load(cg, LB_DTYPE_F32, a, LLVMBuildNSWAdd(B, arow, mx.l.i, ""));
    LLVMValueRef nx = call2(cg, "llvm.maxnum", mx.phi[0], call1(cg, "llvm.fabs", x));
    lb_cg_rfor_end(cg, &mx, &nx);
    LLVMValueRef amax = mx.out[0];
    sa = LLVMBuildSelect(B, LLVMBuildFCmp(B, LLVMRealOEQ, amax, zero, ""), LLVMConstReal(f32, 1),
                         LLVMBuildFDiv(B, amax, LLVMConstReal(f32, 127), ""), "");
    lb_cg_store(cg, LB_DTYPE_F32, rsc, rl.i, sa);
  }
  lb_cg_for_c(cg, &kl, 0, q->d.K);
  LLVMValueRef qv;
  if (af) {
    LLVMValueRef x = lb_cg_load(cg, LB_DTYPE_F32, a, LLVMBuildNSWAdd(B, arow, kl.i, ""));
    LLVMValueRef r = call1(cg, "llvm.rint", LLVMBuildFDiv(B, x, sa, ""));
    qv = sat_int(cg, r, q->d.za, q->d.qlo, q->d.qhi, cg->t_i32);
  } else {
    qv = lb_cg_convert(cg, lb_cg_load(cg, q->d.adt, a, LLVMBuildNSWAdd(B, arow, kl.i, "")), q->d.adt, LB_DTYPE_I32);
  }
  qv = LLVMBuildTrunc(B, LLVMBuildAdd(B, qv, lb_cg_i32(cg, q->a_off), ""), bt, "");
  lb_cg_store_ty(cg, bt, brow, kl.i, qv, 1);
  lb_cg_for_end(cg, &kl);
  for (int64_t k = q->d.K; k < q->Kp; k++) lb_cg_store_ty(cg, bt, brow, lb_cg_i64(cg, k), LLVMConstNull(bt), 1);
  lb_cg_for_end(cg, &rl);
  fn_end(cg, saved, bb);
  return fn;
}

/* ---- microkernel ------------------------------------------------------------------- */

/* One k-group g for mr rows x NV vectors: acc[i*NV + j] updated. astride is
 * the activation row stride in bytes. */
static void uk_step(struct lb_cg *cg, const struct qmm *q, LLVMValueRef abuf, LLVMValueRef w, LLVMValueRef g,
                    int mr, int64_t nvalid, int64_t astride, LLVMValueRef *acc) {
  LLVMBuilderRef B = cg->b;
  int VL = q->vl, NV = q->nv, NR = VL * NV, kg = q->kg;
  LLVMTypeRef i8 = cg->t_i8, i16 = cg->t_i16, i32 = cg->t_i32;
  LLVMValueRef wv[8];
  LLVMValueRef woff = LLVMBuildNSWMul(B, g, lb_cg_i64(cg, (int64_t)NR * kg), "");
  for (int j = 0; j < NV; j++) {
    if ((int64_t)j * VL >= nvalid) break;
    LLVMValueRef p = at_bytes(cg, w, LLVMBuildNSWAdd(B, woff, lb_cg_i64(cg, (int64_t)j * VL * kg), ""));
    switch (q->isa) {
    case QMM_VNNI: wv[j] = ld(cg, vty(i32, VL), p); break;
    case QMM_SDOT: wv[j] = ld(cg, vty(i8, 16), p); break;
    case QMM_PMADDWD: wv[j] = LLVMBuildSExt(B, ld(cg, vty(i8, 2 * VL), p), vty(i16, 2 * VL), ""); break;
    case QMM_WIDEN: wv[j] = LLVMBuildSExt(B, ld(cg, vty(i8, VL), p), vty(i32, VL), ""); break;
    case QMM_FLOAT: wv[j] = LLVMBuildSIToFP(B, ld(cg, vty(i8, VL), p), vty(cg->t_f32, VL), ""); break;
    }
  }
  int64_t esz = lb_dtype_traits[q->bdt].size;
  LLVMValueRef aoff = LLVMBuildNSWMul(B, g, lb_cg_i64(cg, kg * esz), "");
  for (int i = 0; i < mr; i++) {
    LLVMValueRef p = at_bytes(cg, abuf, LLVMBuildNSWAdd(B, aoff, lb_cg_i64(cg, i * astride), ""));
    LLVMValueRef av;
    switch (q->isa) {
    case QMM_VNNI: case QMM_SDOT: case QMM_PMADDWD: av = lb_cg_splat(cg, ld(cg, i32, p), VL); break;
    case QMM_WIDEN: av = lb_cg_splat(cg, LLVMBuildSExt(B, ld(cg, i16, p), i32, ""), VL); break;
    default: av = lb_cg_splat(cg, ld(cg, cg->t_f32, p), VL); break;
    }
    for (int j = 0; j < NV; j++) {
      if ((int64_t)j * VL >= nvalid) break;
      LLVMValueRef *c = &acc[i * NV + j];
      switch (q->isa) {
      case QMM_VNNI: {
        LLVMValueRef args[3] = {*c, av, wv[j]}; /* acc += u8(a) . s8(w) */
        *c = lb_cg_intrin(cg, VL == 16 ? "llvm.x86.avx512.vpdpbusd.512" : "llvm.x86.avx512.vpdpbusd.256", NULL,
                          args, 3);
        break;
      }
      case QMM_SDOT: {
        LLVMTypeRef over[2] = {vty(i32, 4), vty(i8, 16)};
        LLVMValueRef args[3] = {*c, wv[j], LLVMBuildBitCast(B, av, vty(i8, 16), "")};
        *c = lb_cg_intrin2(cg, "llvm.aarch64.neon.sdot", over, 2, args, 3);
        break;
      }
      case QMM_PMADDWD: {
        const char *name = VL == 16 ? "llvm.x86.avx512.pmaddw.d.512" : VL == 8 ? "llvm.x86.avx2.pmadd.wd"
                                                                                : "llvm.x86.sse2.pmadd.wd";
        LLVMValueRef args[2] = {LLVMBuildBitCast(B, av, vty(i16, 2 * VL), ""), wv[j]};
        *c = LLVMBuildAdd(B, *c, lb_cg_intrin(cg, name, NULL, args, 2), "");
        break;
      }
      case QMM_WIDEN: *c = LLVMBuildAdd(B, *c, LLVMBuildNSWMul(B, av, wv[j], ""), ""); break;
      case QMM_FLOAT: *c = lb_cg_fma(cg, av, wv[j], *c); break;
      }
    }
  }
}

/* void uk(abuf, w, y, corr, scale, bias, rowscale): rows [0, mr) x columns
 * [0, nvalid) of one panel, with the epilogue. */
static LLVMValueRef emit_uk(struct lb_cg *cg, const struct qmm *q, int mr, int64_t nvalid) {
  LLVMValueRef fn = lb_cg_new_fn(cg, "qukernel", 7, 0), saved;
  LLVMBasicBlockRef bb = fn_begin(cg, fn, &saved);
  LLVMBuilderRef B = cg->b;
  LLVMValueRef abuf = LLVMGetParam(fn, 0), w = LLVMGetParam(fn, 1), y = LLVMGetParam(fn, 2);
  LLVMValueRef corr = LLVMGetParam(fn, 3), scale = LLVMGetParam(fn, 4), bias = LLVMGetParam(fn, 5);
  LLVMValueRef rsc = LLVMGetParam(fn, 6);
  int VL = q->vl, NV = q->nv;
  bool fl = q->isa == QMM_FLOAT;
  LLVMTypeRef f32 = cg->t_f32, AT = vty(fl ? f32 : cg->t_i32, VL), FT = vty(f32, VL);
  int64_t astride = fl ? q->d.K * 4 : q->Kp * lb_dtype_traits[q->bdt].size;
  /* W8 at batch 1: too few accumulators to cover the FMA latency; sum even
   * and odd k separately */
  int ku = fl && mr * NV < 8 ? 2 : 1, nacc = mr * NV;
  int64_t G = q->Kp / q->kg;
  LLVMValueRef init[64], acc[64];
  LB_ASSERT(ku * nacc <= 64);
  for (int i = 0; i < ku * nacc; i++) init[i] = LLVMConstNull(AT);
  struct lb_cg_rloop r;
  lb_cg_rfor(cg, &r, lb_cg_i64(cg, 0), lb_cg_i64(cg, G / ku), ku * nacc, init);
  for (int s = 0; s < ku; s++) {
    LLVMValueRef g = LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, r.l.i, lb_cg_i64(cg, ku), ""), lb_cg_i64(cg, s), "");
    for (int i = 0; i < nacc; i++) acc[s * nacc + i] = r.phi[s * nacc + i];
    uk_step(cg, q, abuf, w, g, mr, nvalid, astride, &acc[s * nacc]);
  }
  lb_cg_rfor_end(cg, &r, acc);
  for (int i = 0; i < ku * nacc; i++) acc[i] = r.out[i];
  if (G % ku) uk_step(cg, q, abuf, w, lb_cg_i64(cg, G - 1), mr, nvalid, astride, acc);
  for (int s = 1; s < ku; s++)
    for (int i = 0; i < nacc; i++) acc[i] = LLVMBuildFAdd(B, acc[i], acc[s * nacc + i], "");

  /* epilogue */
  bool yint = q->d.ydt != LB_DTYPE_F32;
  for (int j = 0; j < NV; j++) {
    int64_t valid = nvalid - (int64_t)j * VL;
    if (valid <= 0) break;
    LLVMValueRef mask = valid < VL ? vmask(cg, VL, valid) : NULL;
    LLVMValueRef col = lb_cg_i64(cg, (int64_t)j * VL);
    LLVMValueRef sc = ld(cg, FT, lb_cg_gep(cg, f32, scale, col));
    LLVMValueRef cv = fl ? NULL : ld(cg, AT, lb_cg_gep(cg, cg->t_i32, corr, col));
    LLVMValueRef bv = NULL;
    if (q->d.has_bias) {
      LLVMValueRef p = lb_cg_gep(cg, f32, bias, col);
      bv = mask ? masked_load(cg, FT, p, mask) : ld(cg, FT, p);
    }
    for (int i = 0; i < mr; i++) {
      LLVMValueRef v = acc[i * NV + j], s = sc;
      if (!fl) {
        v = LLVMBuildSIToFP(B, LLVMBuildAdd(B, v, cv, ""), FT, "");
        if (q->d.dynamic) s = LLVMBuildFMul(B, lb_cg_splat(cg, lb_cg_load(cg, LB_DTYPE_F32, rsc, lb_cg_i64(cg, i)), VL), s, "");
      }
      v = LLVMBuildFMul(B, v, s, "");
      if (bv) v = LLVMBuildFAdd(B, v, bv, "");
      v = lb_cg_act(cg, q->d.act, v);
      LLVMValueRef yi = lb_cg_i64(cg, i * q->d.N + (int64_t)j * VL);
      if (yint) {
        bool u = q->d.ydt == LB_DTYPE_U8;
        LLVMValueRef r8 = call1(cg, "llvm.rint", LLVMBuildFDiv(B, v, lb_cg_fconst(FT, q->d.sy), ""));
        v = LLVMBuildTrunc(B, sat_int(cg, r8, q->d.zy, u ? 0 : -128, u ? 255 : 127, vty(cg->t_i32, VL)),
                           vty(cg->t_i8, VL), "");
      }
      LLVMValueRef p = lb_cg_gep(cg, yint ? cg->t_i8 : f32, y, yi);
      if (mask) masked_store(cg, v, p, mask);
      else lb_cg_store_ty(cg, LLVMTypeOf(v), p, NULL, v, 1);
    }
  }
  fn_end(cg, saved, bb);
  return fn;
}

/* ---- the node ---------------------------------------------------------------------- */

static void qmm_body(struct lb_cg *cg, struct qmm *q, LLVMValueRef *in, LLVMValueRef *out) {
  LLVMBuilderRef B = cg->b;
  int NR = q->nv * q->vl, MR = q->mr;
  int64_t units = q->nmc * q->np;
  int64_t lastcols = q->d.N - (q->np - 1) * NR, lastrows = q->d.R - (q->nmc - 1) * q->MC;
  bool par = lb_cg_want_parallel(cg, 2 * q->d.R * q->d.N * q->d.K);
  LLVMValueRef ptrs[3] = {in[0], out[0], q->d.has_bias ? in[2] : LLVMConstNull(cg->t_ptr)}, inr[3], begin, end;
  struct lb_cg_par p;
  lb_cg_par_begin(cg, &p, units, 1, par, ptrs, 3, inr, &begin, &end);
  LLVMValueRef buf = NULL, rsc = LLVMConstNull(cg->t_ptr), qrows = NULL;
  if (!q->d.none) {
    /* the chunk's quantized rows, in the task's stack frame */
    buf = LLVMBuildAlloca(B, LLVMArrayType2(lb_cg_type(cg, q->bdt), (uint64_t)(q->MC * q->Kp + 1)), "qa");
    LLVMSetAlignment(buf, 64);
    rsc = LLVMBuildAlloca(B, LLVMArrayType2(cg->t_f32, (uint64_t)q->MC), "qscale");
    qrows = emit_qrows(cg, q);
  }
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
  if (!q->d.none) {
    struct lb_cg_if fq;
    LLVMValueRef enter = LLVMBuildOr(B, LLVMBuildICmp(B, LLVMIntEQ, u, begin, ""),
                                     LLVMBuildICmp(B, LLVMIntEQ, pidx, lb_cg_i64(cg, 0), ""), "");
    lb_cg_if_begin(cg, &fq, enter);
    LLVMValueRef nrows = LLVMBuildSelect(B, is_lastm, lb_cg_i64(cg, lastrows), lb_cg_i64(cg, q->MC), "");
    LLVMValueRef args[4] = {a_row0, buf, rsc, nrows};
    LLVMBuildCall2(B, LLVMGlobalGetValueType(qrows), qrows, args, 4, "");
    lb_cg_if_end(cg, &fq);
  }
  LLVMValueRef n0 = LLVMBuildNSWMul(B, pidx, lb_cg_i64(cg, NR), "");
  LLVMValueRef wpan = at_bytes(cg, q->wp, LLVMBuildNSWMul(B, pidx, lb_cg_i64(cg, q->Kp * NR), ""));
  LLVMValueRef corr = lb_cg_gep(cg, cg->t_i32, q->corr, n0), scale = lb_cg_gep(cg, cg->t_f32, q->scale, n0);
  LLVMValueRef bias = q->d.has_bias ? lb_cg_gep(cg, cg->t_f32, inr[2], n0) : inr[2];
  LLVMTypeRef yt = lb_cg_type(cg, q->d.ydt);
  LLVMValueRef y0 = lb_cg_gep(cg, yt, inr[1], LLVMBuildNSWAdd(B, LLVMBuildNSWMul(B, r0, lb_cg_i64(cg, q->d.N), ""), n0, ""));
  int64_t astride = q->d.none ? q->d.K * 4 : q->Kp * lb_dtype_traits[q->bdt].size;
  LLVMValueRef abase = q->d.none ? a_row0 : buf;
  for (int pv = 0; pv < 2; pv++) {
    int64_t nvalid = pv ? lastcols : NR;
    struct lb_cg_if fp;
    if (lastcols != NR) lb_cg_if_begin(cg, &fp, pv ? is_lastp : LLVMBuildNot(B, is_lastp, ""));
    else if (pv) break;
    for (int mv = 0; mv < 2; mv++) {
      int64_t rows = mv ? lastrows : q->MC;
      struct lb_cg_if fm;
      if (lastrows != q->MC) lb_cg_if_begin(cg, &fm, mv ? is_lastm : LLVMBuildNot(B, is_lastm, ""));
      else if (mv) break;
      int64_t nfull = rows / MR, rem = rows % MR;
      for (int part = 0; part < 2; part++) {
        int mr = part ? (int)rem : MR;
        if (mr == 0 || (!part && nfull == 0)) continue;
        LLVMValueRef *ukp = &q->uk[pv][part];
        /* the remainder kernel differs between full and last chunks only in mr */
        LLVMValueRef uk = part == 0 && *ukp ? *ukp : emit_uk(cg, q, mr, nvalid);
        if (part == 0) *ukp = uk;
        struct lb_cg_loop ml;
        LLVMValueRef i0;
        if (!part) {
          lb_cg_for_c(cg, &ml, 0, nfull);
          i0 = LLVMBuildNSWMul(B, ml.i, lb_cg_i64(cg, MR), "");
        } else {
          i0 = lb_cg_i64(cg, nfull * MR);
        }
        LLVMValueRef args[7] = {at_bytes(cg, abase, LLVMBuildNSWMul(B, i0, lb_cg_i64(cg, astride), "")), wpan,
                                lb_cg_gep(cg, yt, y0, LLVMBuildNSWMul(B, i0, lb_cg_i64(cg, q->d.N), "")), corr,
                                scale, bias, q->d.dynamic ? lb_cg_gep(cg, cg->t_f32, rsc, i0) : rsc};
        LLVMBuildCall2(B, LLVMGlobalGetValueType(uk), uk, args, 7, "");
        if (!part) lb_cg_for_end(cg, &ml);
      }
      if (lastrows != q->MC) lb_cg_if_end(cg, &fm);
    }
    if (lastcols != NR) lb_cg_if_end(cg, &fp);
  }
  lb_cg_for_end(cg, &ul);
  lb_cg_par_end(cg, &p);
}

enum lb_status lb_cg_emit_qmatmul(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in, LLVMValueRef *out) {
  struct lb_value *wv = n->inputs[1];
  const int8_t *w = lb_value_const_data(cg->g, wv);
  const struct lb_qparams *qw = wv->qparams;
  if (w && wv->type.dtype == LB_DTYPE_F16 && wv->type.shape.rank == 2 && !qw) /* f16 weights: no scales */
    return lb_cg_emit_qmatmul_lowbit(cg, n, in, out);
  if (!w || wv->type.dtype != (qw && qw->fp8 ? LB_DTYPE_U8 : LB_DTYPE_I8) || wv->type.shape.rank != 2 || !qw ||
      qw->n < 1)
    return lb_diag_error(cg->d, LB_ERR_INVALID, n, "qmatmul needs a const i8[K,N] (fp8: u8) weight with its scales");
  if (qw->bits != 8 || qw->group_size > 0 || qw->zero_points || qw->fp8)
    return lb_cg_emit_qmatmul_lowbit(cg, n, in, out);
  struct qmm q;
  memset(&q, 0, sizeof q);
  enum lb_status st = lb_qmm_describe(n, &q.d, cg->d);
  if (st != LB_OK || q.d.R == 0 || q.d.N == 0) return st;
  qmm_choose_isa(cg, &q);
  int NR = q.nv * q.vl;
  q.Kp = (q.d.K + q.kg - 1) / q.kg * q.kg;
  q.np = (q.d.N + NR - 1) / NR;
  /* M-chunk: its quantized rows stay in L1 (32 KiB) next to the panel; W8
   * reads rows in place (k_matmul's 256 KiB rule) */
  int64_t rowbytes = q.d.none ? q.d.K * 4 : q.Kp * lb_dtype_traits[q.bdt].size;
  int64_t MC = (q.d.none ? 256 * 1024 : 32 * 1024) / (rowbytes + 1) / q.mr * q.mr;
  if (MC < q.mr) MC = q.mr;
  if (MC > 240) MC = 240;
  if (MC >= q.d.R) MC = q.d.R;
  q.nmc = (q.d.R + MC - 1) / MC;
  if (q.nmc > 1) {
    /* even chunks, so that no thread is left with a long last one */
    MC = (q.d.R + q.nmc - 1) / q.nmc;
    MC = (MC + q.mr - 1) / q.mr * q.mr;
    q.nmc = (q.d.R + MC - 1) / MC;
  }
  q.MC = MC;
  qmm_pack(cg, &q, w, qw);
  qmm_body(cg, &q, in, out);
  return LB_OK;
}
