/* cg_math.c: transcendental functions as plain LLVM IR arithmetic (f32, scalar or
 * vector) so the loop vectorizer can vectorize loops that use them. f64 (and
 * f16/bf16 via f32) take libm-accurate paths: llvm intrinsics or libm calls.
 *
 * exp: Cephes expf range reduction (x = n ln2 + r, |r| <= ln2/2) and a degree-6
 * polynomial; 2^n applied as two factors so denormal results stay right.
 * log: Cephes logf (mantissa in [sqrt(1/2), sqrt(2)), degree-9 polynomial).
 * tanh: Cephes tanhf polynomial for |x| < 0.625, else 1 - 2/(exp(2|x|)+1).
 * erf: rational approximation x P(x^2)/Q(x^2) on [-4, 4] (a few ulp), +-1 outside.
 */
#include <math.h>
#include <string.h>

#include "codegen/cg.h"

static LLVMTypeRef scal(LLVMTypeRef ty) {
  return LLVMGetTypeKind(ty) == LLVMVectorTypeKind ? LLVMGetElementType(ty) : ty;
}
static bool is_f32(LLVMTypeRef ty) { return LLVMGetTypeKind(scal(ty)) == LLVMFloatTypeKind; }
static bool is_f64(LLVMTypeRef ty) { return LLVMGetTypeKind(scal(ty)) == LLVMDoubleTypeKind; }

/* integer type with the same shape as float type ty */
static LLVMTypeRef int_like(struct lb_cg *cg, LLVMTypeRef ty) {
  LLVMTypeRef it = is_f64(ty) ? cg->t_i64 : cg->t_i32;
  if (LLVMGetTypeKind(ty) == LLVMVectorTypeKind) return LLVMVectorType(it, LLVMGetVectorSize(ty));
  return it;
}

#define C(v) lb_cg_fconst(ty, (v))
#define FMUL(a, b) LLVMBuildFMul(B, (a), (b), "")
#define FADD(a, b) LLVMBuildFAdd(B, (a), (b), "")
#define FSUB(a, b) LLVMBuildFSub(B, (a), (b), "")
#define SEL(c, a, b) LLVMBuildSelect(B, (c), (a), (b), "")
#define FCMP(p, a, b) LLVMBuildFCmp(B, (p), (a), (b), "")

static LLVMValueRef poly(struct lb_cg *cg, LLVMValueRef x, const double *c, int n) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMValueRef y = lb_cg_fconst(ty, c[0]);
  for (int i = 1; i < n; i++) y = lb_cg_fma(cg, y, x, lb_cg_fconst(ty, c[i]));
  return y;
}

static LLVMValueRef unary_intrin(struct lb_cg *cg, const char *name, LLVMValueRef x) {
  LLVMValueRef a[1] = {x};
  return lb_cg_intrin(cg, name, LLVMTypeOf(x), a, 1);
}

/* scalar libm call for f64 (name of the double function) */
static LLVMValueRef libm1(struct lb_cg *cg, const char *name, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  LB_ASSERT(LLVMGetTypeKind(ty) == LLVMDoubleTypeKind);
  LLVMTypeRef fty = LLVMFunctionType(ty, &ty, 1, 0);
  LLVMValueRef fn = LLVMGetNamedFunction(cg->mod, name);
  if (!fn) {
    fn = LLVMAddFunction(cg->mod, name, fty);
    unsigned k = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex, LLVMCreateEnumAttribute(cg->ctx, k, 0));
  }
  return LLVMBuildCall2(cg->b, fty, fn, &x, 1, "");
}

/* f16/bf16: compute in f32 */
typedef LLVMValueRef (*mathfn)(struct lb_cg *, LLVMValueRef);
static LLVMValueRef via_f32(struct lb_cg *cg, mathfn f, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMTypeRef ft = cg->t_f32;
  if (LLVMGetTypeKind(ty) == LLVMVectorTypeKind) ft = LLVMVectorType(ft, LLVMGetVectorSize(ty));
  return LLVMBuildFPTrunc(cg->b, f(cg, LLVMBuildFPExt(cg->b, x, ft, "")), ty, "");
}

LLVMValueRef lb_cg_exp(struct lb_cg *cg, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  if (is_f64(ty)) return unary_intrin(cg, "llvm.exp", x);
  if (!is_f32(ty)) return via_f32(cg, lb_cg_exp, x);
  LLVMBuilderRef B = cg->b;
  LLVMTypeRef ity = int_like(cg, ty);
  LLVMValueRef xc = SEL(FCMP(LLVMRealOLT, x, C(-104.0)), C(-104.0), x);
  xc = SEL(FCMP(LLVMRealOGT, xc, C(88.8)), C(88.8), xc);
  LLVMValueRef fn = unary_intrin(cg, "llvm.rint", FMUL(xc, C(1.44269504088896341)));
  LLVMValueRef r = lb_cg_fma(cg, fn, C(-0.693359375), xc);
  r = lb_cg_fma(cg, fn, C(2.12194440e-4), r);
  static const double P[] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                             4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
  LLVMValueRef p = poly(cg, r, P, 6);
  LLVMValueRef y = lb_cg_fma(cg, FMUL(p, r), r, FADD(r, C(1.0)));
  LLVMValueRef n = LLVMBuildFPToSI(B, fn, ity, "");
  LLVMValueRef n1 = LLVMBuildAShr(B, n, lb_cg_iconst(ity, 1), "");
  LLVMValueRef n2 = LLVMBuildSub(B, n, n1, "");
  LLVMValueRef s1 = LLVMBuildBitCast(B, LLVMBuildShl(B, LLVMBuildAdd(B, n1, lb_cg_iconst(ity, 127), ""), lb_cg_iconst(ity, 23), ""), ty, "");
  LLVMValueRef s2 = LLVMBuildBitCast(B, LLVMBuildShl(B, LLVMBuildAdd(B, n2, lb_cg_iconst(ity, 127), ""), lb_cg_iconst(ity, 23), ""), ty, "");
  y = FMUL(FMUL(y, s1), s2);
  y = SEL(FCMP(LLVMRealOGT, x, C(88.72283935546875)), C(INFINITY), y);
  y = SEL(FCMP(LLVMRealOLT, x, C(-103.97)), C(0.0), y);
  return SEL(FCMP(LLVMRealUNO, x, x), x, y);
}

LLVMValueRef lb_cg_log(struct lb_cg *cg, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  if (is_f64(ty)) return unary_intrin(cg, "llvm.log", x);
  if (!is_f32(ty)) return via_f32(cg, lb_cg_log, x);
  LLVMBuilderRef B = cg->b;
  LLVMTypeRef ity = int_like(cg, ty);
  /* scale denormals up by 2^25 */
  LLVMValueRef den = FCMP(LLVMRealOLT, x, C(1.17549435e-38));
  LLVMValueRef xs = SEL(den, FMUL(x, C(33554432.0)), x);
  LLVMValueRef eadj = SEL(den, C(-25.0), C(0.0));
  LLVMValueRef bits = LLVMBuildBitCast(B, xs, ity, "");
  LLVMValueRef ei = LLVMBuildSub(B, LLVMBuildLShr(B, bits, lb_cg_iconst(ity, 23), ""), lb_cg_iconst(ity, 126), "");
  LLVMValueRef e = FADD(LLVMBuildSIToFP(B, ei, ty, ""), eadj);
  LLVMValueRef mb = LLVMBuildOr(B, LLVMBuildAnd(B, bits, lb_cg_iconst(ity, 0x007fffff), ""), lb_cg_iconst(ity, 0x3f000000), "");
  LLVMValueRef m = LLVMBuildBitCast(B, mb, ty, ""); /* [0.5, 1) */
  LLVMValueRef small = FCMP(LLVMRealOLT, m, C(0.707106781186547524));
  e = SEL(small, FSUB(e, C(1.0)), e);
  m = SEL(small, FSUB(FADD(m, m), C(1.0)), FSUB(m, C(1.0)));
  LLVMValueRef z = FMUL(m, m);
  static const double P[] = {7.0376836292E-2, -1.1514610310E-1, 1.1676998740E-1,
                             -1.2420140846E-1, 1.4249322787E-1, -1.6668057665E-1,
                             2.0000714765E-1, -2.4999993993E-1, 3.3333331174E-1};
  LLVMValueRef y = FMUL(FMUL(m, z), poly(cg, m, P, 9));
  y = lb_cg_fma(cg, e, C(-2.12194440e-4), y);
  y = lb_cg_fma(cg, z, C(-0.5), y);
  LLVMValueRef r = FADD(m, y);
  r = lb_cg_fma(cg, e, C(0.693359375), r);
  r = SEL(FCMP(LLVMRealOEQ, x, C(INFINITY)), x, r);
  r = SEL(FCMP(LLVMRealOEQ, x, C(0.0)), C(-INFINITY), r);
  r = SEL(FCMP(LLVMRealOLT, x, C(0.0)), C(NAN), r);
  return SEL(FCMP(LLVMRealUNO, x, x), x, r);
}

LLVMValueRef lb_cg_tanh(struct lb_cg *cg, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  if (is_f64(ty) && LLVMGetTypeKind(ty) != LLVMVectorTypeKind) return libm1(cg, "tanh", x);
  if (!is_f32(ty)) return via_f32(cg, lb_cg_tanh, x);
  LLVMBuilderRef B = cg->b;
  LLVMValueRef ax = unary_intrin(cg, "llvm.fabs", x);
  LLVMValueRef z = FMUL(x, x);
  static const double P[] = {-5.70498872745E-3, 2.06390887954E-2, -5.37397155531E-2,
                             1.33314422036E-1, -3.33332819422E-1};
  LLVMValueRef ys = lb_cg_fma(cg, FMUL(poly(cg, z, P, 5), z), x, x);
  LLVMValueRef e = lb_cg_exp(cg, FADD(ax, ax));
  LLVMValueRef yl = FSUB(C(1.0), LLVMBuildFDiv(B, C(2.0), FADD(e, C(1.0)), ""));
  LLVMValueRef args[2] = {yl, x};
  yl = lb_cg_intrin(cg, "llvm.copysign", ty, args, 2);
  return SEL(FCMP(LLVMRealOLT, ax, C(0.625)), ys, yl);
}

LLVMValueRef lb_cg_erf(struct lb_cg *cg, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  if (is_f64(ty) && LLVMGetTypeKind(ty) != LLVMVectorTypeKind) return libm1(cg, "erf", x);
  if (!is_f32(ty)) return via_f32(cg, lb_cg_erf, x);
  LLVMBuilderRef B = cg->b;
  /* rational approximation x * P(x^2) / Q(x^2) on [-4, 4] (as in Eigen / XLA) */
  LLVMValueRef xc = SEL(FCMP(LLVMRealOLT, x, C(-4.0)), C(-4.0), x);
  xc = SEL(FCMP(LLVMRealOGT, xc, C(4.0)), C(4.0), xc);
  LLVMValueRef z = FMUL(xc, xc);
  static const double P[] = {-2.72614225801306e-10, 2.77068142495902e-08, -2.10102402082508e-06,
                             -5.69250639462346e-05, -7.34990630326855e-04, -2.95459980854025e-03,
                             -1.60960333262415e-02};
  static const double Q[] = {-1.45660718464996e-05, -2.13374055278905e-04, -1.68282697438203e-03,
                             -7.37332916720468e-03, -1.42647390514189e-02};
  LLVMValueRef r = LLVMBuildFDiv(B, FMUL(xc, poly(cg, z, P, 7)), poly(cg, z, Q, 5), "");
  return SEL(FCMP(LLVMRealUNO, x, x), x, r);
}

LLVMValueRef lb_cg_sigmoid(struct lb_cg *cg, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMBuilderRef B = cg->b;
  LLVMValueRef e = lb_cg_exp(cg, LLVMBuildFNeg(B, x, ""));
  return LLVMBuildFDiv(B, C(1.0), FADD(C(1.0), e), "");
}

LLVMValueRef lb_cg_gelu(struct lb_cg *cg, LLVMValueRef x, bool tanh_approx) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMBuilderRef B = cg->b;
  LLVMValueRef inner;
  if (tanh_approx) {
    LLVMValueRef x3 = FMUL(FMUL(x, x), x);
    LLVMValueRef u = FMUL(C(0.7978845608028654), lb_cg_fma(cg, x3, C(0.044715), x));
    inner = lb_cg_tanh(cg, u);
  } else {
    inner = lb_cg_erf(cg, FMUL(x, C(0.7071067811865476)));
  }
  return FMUL(FMUL(C(0.5), x), FADD(C(1.0), inner));
}

LLVMValueRef lb_cg_act(struct lb_cg *cg, const char *act, LLVMValueRef x) {
  LLVMTypeRef ty = LLVMTypeOf(x);
  LLVMBuilderRef B = cg->b;
  if (!act || !strcmp(act, "none") || !*act) return x;
  if (!strcmp(act, "relu")) return SEL(FCMP(LLVMRealOLT, x, C(0.0)), C(0.0), x);
  if (!strcmp(act, "gelu")) return lb_cg_gelu(cg, x, false);
  if (!strcmp(act, "gelu_tanh")) return lb_cg_gelu(cg, x, true);
  if (!strcmp(act, "sigmoid")) return lb_cg_sigmoid(cg, x);
  if (!strcmp(act, "tanh")) return lb_cg_tanh(cg, x);
  return NULL;
}
