/* cg.h: the kernel-builder layer shared by the kernel families (internal to codegen/).
 *
 * One kernel function is generated per node:
 *
 *   void <model>_k<i>(ptr noalias in0, ..., ptr noalias out0, ...)
 *
 * A family emitter (lb_cg_emit_matmul, ...) receives the builder positioned in
 * that function's entry block plus the base pointers, and emits the body. Every
 * trip count and stride is a compile-time constant of the node's static shape.
 *
 * Helpers:
 *   loops      lb_cg_for / lb_cg_for_end: `for (i = begin; i < end; i++)`, i64 index
 *   memory     lb_cg_load / lb_cg_store (element `idx` of base), lb_cg_gep, lb_cg_memcpy
 *   dtypes     lb_cg_type (register type of a dtype; bool is i8), lb_cg_convert
 *   math       lb_cg_exp / log / tanh / erf / sigmoid ... on f32/f64 scalars or vectors,
 *              written as plain IR arithmetic so the loop vectorizer handles them
 *   parallel   lb_cg_par_begin / lb_cg_par_end: outline a [begin, end) range body into
 *              a task and call lbrt_parallel_for (or call it inline when work is small)
 *   constants  lb_cg_global_data: private constant 64-aligned global with given bytes
 */
#ifndef LB_CG_H
#define LB_CG_H

#include <llvm-c/Core.h>
#include <llvm-c/Target.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/codegen.h"

struct lb_cg {
  LLVMContextRef ctx;
  LLVMModuleRef mod;
  LLVMBuilderRef b;
  LLVMTargetMachineRef tm;
  struct lb_graph *g;
  struct lb_diag *d;
  const char *model;   /* C identifier prefix */
  bool is_x86, is_aarch64;
  int vbits;           /* widest profitable vector register in bits: 512/256/128 */
  LLVMTypeRef t_void, t_i1, t_i8, t_i16, t_i32, t_i64, t_f32, t_f64, t_ptr;
  LLVMValueRef fn;     /* function being emitted */
  LLVMValueRef *blob_globals; /* per graph blob, lazily created */
  int counter;         /* unique suffixes for helper functions/globals */
  int32_t n_kernels;   /* kernel functions after sharing (lb_cg_build_module) */
  int64_t par_threshold; /* work (flops or bytes) above which kernels go parallel */
};

/* ---- types and constants ---- */
LLVMTypeRef lb_cg_type(struct lb_cg *cg, enum lb_dtype dt);
LLVMValueRef lb_cg_i64(struct lb_cg *cg, int64_t v);
LLVMValueRef lb_cg_i32(struct lb_cg *cg, int32_t v);
/* Constant of type ty (scalar or vector: splat), from a double / int64. */
LLVMValueRef lb_cg_fconst(LLVMTypeRef ty, double v);
LLVMValueRef lb_cg_iconst(LLVMTypeRef ty, int64_t v);
/* Constant of dtype dt holding v (converted as C would). */
LLVMValueRef lb_cg_dconst(struct lb_cg *cg, enum lb_dtype dt, double v);
LLVMValueRef lb_cg_splat(struct lb_cg *cg, LLVMValueRef scalar, int n);
bool lb_cg_is_fp(LLVMTypeRef ty); /* float/double or vector of them */

/* ---- loops ---- */
struct lb_cg_loop {
  LLVMValueRef i;        /* the index (phi) */
  LLVMBasicBlockRef header, body, latch, exit;
  LLVMValueRef end;
};
/* Emits `for (i = begin; i < end; ++i) {` and leaves the builder in the body. */
void lb_cg_for(struct lb_cg *cg, struct lb_cg_loop *l, LLVMValueRef begin, LLVMValueRef end);
void lb_cg_for_c(struct lb_cg *cg, struct lb_cg_loop *l, int64_t begin, int64_t end);
/* Closes the loop; the builder continues after it. */
void lb_cg_for_end(struct lb_cg *cg, struct lb_cg_loop *l);

/* Loop-carried values: a for loop whose body updates n values (phis). */
struct lb_cg_rloop {
  struct lb_cg_loop l;
  int n;
  LLVMValueRef phi[64];  /* current values in the body */
  LLVMValueRef out[64];  /* values after the loop (valid after lb_cg_rfor_end) */
  LLVMBasicBlockRef pre;
};
void lb_cg_rfor(struct lb_cg *cg, struct lb_cg_rloop *r, LLVMValueRef begin, LLVMValueRef end,
                int n, const LLVMValueRef *init);
void lb_cg_rfor_end(struct lb_cg *cg, struct lb_cg_rloop *r, const LLVMValueRef *next);

/* if (cond) { ... } [else { ... }] */
struct lb_cg_if {
  LLVMBasicBlockRef then_bb, else_bb, end_bb;
};
void lb_cg_if_begin(struct lb_cg *cg, struct lb_cg_if *f, LLVMValueRef cond);
void lb_cg_if_else(struct lb_cg *cg, struct lb_cg_if *f);
void lb_cg_if_end(struct lb_cg *cg, struct lb_cg_if *f);

/* ---- memory ---- */
LLVMValueRef lb_cg_gep(struct lb_cg *cg, LLVMTypeRef elem, LLVMValueRef base, LLVMValueRef idx);
LLVMValueRef lb_cg_gep_bytes(struct lb_cg *cg, LLVMValueRef base, int64_t off);
LLVMValueRef lb_cg_load(struct lb_cg *cg, enum lb_dtype dt, LLVMValueRef base, LLVMValueRef idx);
void lb_cg_store(struct lb_cg *cg, enum lb_dtype dt, LLVMValueRef base, LLVMValueRef idx,
                 LLVMValueRef v);
LLVMValueRef lb_cg_load_ty(struct lb_cg *cg, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx,
                           unsigned align);
void lb_cg_store_ty(struct lb_cg *cg, LLVMTypeRef ty, LLVMValueRef base, LLVMValueRef idx,
                    LLVMValueRef v, unsigned align);
void lb_cg_memcpy(struct lb_cg *cg, LLVMValueRef dst, LLVMValueRef src, LLVMValueRef nbytes);
void lb_cg_memset0(struct lb_cg *cg, LLVMValueRef dst, int64_t nbytes);
/* Private constant 64-aligned global holding a copy of data. */
LLVMValueRef lb_cg_global_data(struct lb_cg *cg, const char *hint, const void *data, size_t size);
/* Table of int64 constants (for offset lookups). */
LLVMValueRef lb_cg_global_i64s(struct lb_cg *cg, const int64_t *v, int64_t n);

/* ---- arithmetic ---- */
LLVMValueRef lb_cg_convert(struct lb_cg *cg, LLVMValueRef v, enum lb_dtype from, enum lb_dtype to);
LLVMValueRef lb_cg_intrin(struct lb_cg *cg, const char *name, LLVMTypeRef overload,
                          LLVMValueRef *args, int nargs);
LLVMValueRef lb_cg_intrin2(struct lb_cg *cg, const char *name, LLVMTypeRef *over, int nover,
                           LLVMValueRef *args, int nargs);
/* Sets reassoc+contract (for reductions the vectorizer may reorder). */
LLVMValueRef lb_cg_reassoc(LLVMValueRef inst);
LLVMValueRef lb_cg_fma(struct lb_cg *cg, LLVMValueRef a, LLVMValueRef b, LLVMValueRef c);
LLVMValueRef lb_cg_fmax(struct lb_cg *cg, LLVMValueRef a, LLVMValueRef b); /* NaN-propagating */
LLVMValueRef lb_cg_fmin(struct lb_cg *cg, LLVMValueRef a, LLVMValueRef b);
LLVMValueRef lb_cg_exp(struct lb_cg *cg, LLVMValueRef x);
LLVMValueRef lb_cg_log(struct lb_cg *cg, LLVMValueRef x);
LLVMValueRef lb_cg_tanh(struct lb_cg *cg, LLVMValueRef x);
LLVMValueRef lb_cg_erf(struct lb_cg *cg, LLVMValueRef x);
LLVMValueRef lb_cg_sigmoid(struct lb_cg *cg, LLVMValueRef x);
LLVMValueRef lb_cg_gelu(struct lb_cg *cg, LLVMValueRef x, bool tanh_approx);
/* Applies an activation by name ("none", "relu", "gelu", "gelu_tanh", "sigmoid", "tanh"). */
LLVMValueRef lb_cg_act(struct lb_cg *cg, const char *act, LLVMValueRef x);

/* ---- parallel ranges ---- */
struct lb_cg_par {
  LLVMValueRef outer_fn;          /* kernel function we came from */
  LLVMBasicBlockRef outer_bb;
  LLVMValueRef body_fn, task_fn;
  LLVMValueRef outer_ptrs[32];
  int nptrs;
  int64_t n, grain;
  bool parallel;
};
/* Starts a range body over [0, n). `ptrs` are the kernel's base pointers; in the
 * body, use `inner` (same order) instead, and *begin / *end as the range. When
 * `parallel` is false the body is called once inline for [0, n). */
void lb_cg_par_begin(struct lb_cg *cg, struct lb_cg_par *p, int64_t n, int64_t grain, bool parallel,
                     const LLVMValueRef *ptrs, int nptrs, LLVMValueRef *inner, LLVMValueRef *begin,
                     LLVMValueRef *end);
void lb_cg_par_end(struct lb_cg *cg, struct lb_cg_par *p);
/* Whether work of the given size (~flops) should be split across threads. */
bool lb_cg_want_parallel(struct lb_cg *cg, int64_t work);

/* New internal function with n pointer params (noalias) and extra i64 params. */
LLVMValueRef lb_cg_new_fn(struct lb_cg *cg, const char *name, int nptr, int ni64);

/* ---- shapes ---- */
/* Row-major strides (in elements) of shape s. */
void lb_cg_strides(const struct lb_shape *s, int64_t *st);
/* Strides of `in` broadcast to `out` rank/shape (0 on broadcast dims). */
void lb_cg_bcast_strides(const struct lb_shape *in, const struct lb_shape *out, int64_t *st);

/* ---- kernel families (k_*.c) ---- */
typedef enum lb_status (*lb_cg_emit_fn)(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in,
                                        LLVMValueRef *out);
enum lb_status lb_cg_emit_matmul(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in,
                                 LLVMValueRef *out);
enum lb_status lb_cg_emit_eltwise(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in,
                                  LLVMValueRef *out);
enum lb_status lb_cg_emit_reduce(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in,
                                 LLVMValueRef *out);
enum lb_status lb_cg_emit_norm(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in,
                               LLVMValueRef *out);
enum lb_status lb_cg_emit_move(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in,
                               LLVMValueRef *out);
enum lb_status lb_cg_emit_conv(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in,
                               LLVMValueRef *out);
enum lb_status lb_cg_emit_pool(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in,
                               LLVMValueRef *out);
enum lb_status lb_cg_emit_quant(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in,
                                LLVMValueRef *out);
/* qmatmul (k_qmatmul.c), dispatched by lb_cg_emit_quant */
enum lb_status lb_cg_emit_qmatmul(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in,
                                  LLVMValueRef *out);
/* qmatmul with 2/3/4-bit, grouped, fp8 or f16 weights (k_qmatmul_lowbit.c), called by lb_cg_emit_qmatmul */
enum lb_status lb_cg_emit_qmatmul_lowbit(struct lb_cg *cg, struct lb_node *n, LLVMValueRef *in,
                                         LLVMValueRef *out);
/* Integer dot-product features of the target (k_qmatmul.c) */
struct lb_cg_qmm_features {
  bool avx2, z512, vnni512, vnni256; /* z512: avx512f + avx512bw on zmm */
  bool f16c;                         /* vcvtph2ps (f16 -> f32 in one instruction) */
  bool dotprod;                      /* aarch64 */
};
void lb_cg_qmm_features(struct lb_cg *cg, struct lb_cg_qmm_features *f);

/* Used by the matmul family and by conv (1x1 as a GEMM). See k_matmul.c. */
struct lb_cg_gemm {
  enum lb_dtype dt;
  int64_t batch, M, N, K;
  /* A[b][m,k] at a + aoff[b] + m*a_rs + k*a_cs */
  LLVMValueRef a; int64_t a_rs, a_cs; const int64_t *aoff;
  /* B: either packed (b_packed, global of panels [N/NR][K][NR] per batch, boff in
   * elements) or B[b][k,n] at b + boff[b] + k*b_rs + n*b_cs */
  LLVMValueRef b; int64_t b_rs, b_cs; const int64_t *boff; bool b_packed;
  /* C[b][m,n] at c + coff[b] + m*ldc + n (dense rows) */
  LLVMValueRef c; int64_t ldc; const int64_t *coff;
  double alpha;
  /* epilogue: + beta * E[m,n] with E at e + m*e_rs + n*e_cs (e may be NULL) */
  LLVMValueRef e; int64_t e_rs, e_cs; double beta; enum lb_dtype e_dt;
  const char *act;
};
enum lb_status lb_cg_gemm_emit(struct lb_cg *cg, const struct lb_node *n, struct lb_cg_gemm *gm);
/* Packs a const [batch][K][N] (strided) matrix into panels; returns the global. */
LLVMValueRef lb_cg_gemm_pack_b(struct lb_cg *cg, enum lb_dtype dt, const void *data, int64_t batch,
                               int64_t K, int64_t N, int64_t rs, int64_t cs, int64_t bstride);
int lb_cg_gemm_nr(struct lb_cg *cg, enum lb_dtype dt);
/* The float microkernel `void uk(a, b, c, e)`: C[0:mr, 0:nvalid] = epilogue(A[0:mr, :] *
 * B[:, 0:NR]) over gm's K, strides and epilogue (B packed [K][NR] when b_packed), and the
 * row block MR it is built for; for kernels that pack B themselves (k_qmatmul_lowbit.c). */
LLVMValueRef lb_cg_gemm_ukernel(struct lb_cg *cg, const struct lb_cg_gemm *gm, int mr, int64_t nvalid);
int lb_cg_gemm_mr(struct lb_cg *cg);

/* ---- elementwise loop nests (k_eltwise.c) ---- */
/* Computes out[i] = f(x_0[i], ..., x_{nin-1}[i]) over out's shape; operand k element i
 * is at bases[k] + sum(i_d * strides[k][d]) (elements; 0 = broadcast). Dims are
 * collapsed where all operands are contiguous across them; the outer dim is split
 * across threads when the work is large. f receives loaded values (register type of
 * dts[k]) and returns a value of dtype odt. `cost` ~ flops per element. */
typedef LLVMValueRef (*lb_cg_ew_fn)(struct lb_cg *cg, void *ud, LLVMValueRef *x);
void lb_cg_ew_strided(struct lb_cg *cg, int nin, const LLVMValueRef *bases, const enum lb_dtype *dts,
                      const int64_t (*strides)[LB_MAX_RANK], LLVMValueRef out, enum lb_dtype odt,
                      const struct lb_shape *oshape, lb_cg_ew_fn f, void *ud, int64_t cost);

/* ---- driver internals shared by codegen.c and jit.c ---- */
struct lb_cg_target {
  char triple[128];   /* normalized LLVM triple */
  char short_triple[64]; /* runtime folder name: x86_64-linux-gnu, aarch64-linux-gnu */
  char cpu[64];
  char *features;     /* heap: passed to LLVM */
  char *info_features;/* heap: "+a,+b" for the runtime's check */
  bool is_x86, is_aarch64, host_arch;
  int vbits;
};
enum lb_status lb_cg_target_init(const struct lb_codegen_options *o, struct lb_cg_target *t,
                                 LLVMTargetMachineRef *tm, struct lb_diag *d);
void lb_cg_target_free(struct lb_cg_target *t);
/* Builds the whole module (kernels, entry, info) into cg->mod (ctx given). */
enum lb_status lb_cg_build_module(struct lb_cg *cg, const struct lb_cg_target *t, bool exe_main,
                                  int64_t *activations_size);
enum lb_status lb_cg_optimize(struct lb_cg *cg, int opt_level);
void lb_cg_model_name(const struct lb_codegen_options *o, char *buf, size_t n);

#endif
