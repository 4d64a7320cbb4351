/* codegen.c: IR -> LLVM module -> .ll / .s / .o / static executable / static library.
 *
 * The module holds one private constant global per weight blob, one internal
 * kernel function per node (k_*.c emit their bodies), the entry
 *   int32_t <model>_run(const void *const *inputs, void *const *outputs, void *activations)
 * and `<model>_info` (struct lbrt_model_info of runtime/lbrt_abi.h). */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <llvm-c/Analysis.h>
#include <llvm-c/Transforms/PassBuilder.h>

#include "codegen/cg.h"

extern char **environ;

/* ---- target ---------------------------------------------------------------- */
static int vbits_for_cpu(const char *cpu, const char *features, bool x86) {
  if (!x86) return 128;
  if (features && strstr(features, "+avx512f")) return 512;
  static const char *const z512[] = {"znver4", "znver5", "skylake-avx512", "cascadelake", "cooperlake",
                                     "icelake", "tigerlake", "sapphirerapids", "graniterapids",
                                     "emeraldrapids", "rocketlake", "cannonlake", "x86-64-v4", NULL};
  static const char *const z256[] = {"znver1", "znver2", "znver3", "haswell", "broadwell", "skylake",
                                     "alderlake", "raptorlake", "meteorlake", "x86-64-v3", "btver2",
                                     "bdver", NULL};
  if (features && (strstr(features, "+avx2") || strstr(features, "+avx,"))) {
    if (!strstr(features, "-avx512f")) {
      for (int i = 0; z512[i]; i++)
        if (strstr(cpu, z512[i])) return 512;
    }
    return 256;
  }
  for (int i = 0; z512[i]; i++)
    if (strstr(cpu, z512[i])) return 512;
  for (int i = 0; z256[i]; i++)
    if (strstr(cpu, z256[i])) return 256;
  return 128;
}

/* keeps only the "+name" entries */
static char *plus_features(const char *f) {
  size_t n = f ? strlen(f) : 0;
  char *out = malloc(n + 1);
  if (!out) abort();
  out[0] = 0;
  if (!f) return out;
  char *copy = strdup(f);
  if (!copy) abort();
  char *save = NULL;
  for (char *tok = strtok_r(copy, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
    if (tok[0] != '+') continue;
    if (out[0]) strcat(out, ",");
    strcat(out, tok);
  }
  free(copy);
  return out;
}

static void init_llvm_targets(void) {
  static bool done;
  if (done) return;
  done = true;
  LLVMInitializeX86TargetInfo();
  LLVMInitializeX86Target();
  LLVMInitializeX86TargetMC();
  LLVMInitializeX86AsmPrinter();
  LLVMInitializeX86AsmParser();
  LLVMInitializeAArch64TargetInfo();
  LLVMInitializeAArch64Target();
  LLVMInitializeAArch64TargetMC();
  LLVMInitializeAArch64AsmPrinter();
  LLVMInitializeAArch64AsmParser();
}

/* LLVM takes any CPU name: it warns on stderr and falls back to a CPU that may
 * lack 64-bit mode, which later aborts. So probe the name first: build a target
 * machine and emit an empty module with stderr sent to a temporary file, and
 * look for LLVM's "not a recognized processor" warning. */
static bool cpu_name_known(LLVMTargetRef target, const char *triple, const char *cpu, bool x86) {
  char path[] = "/tmp/lowbit-cpu-XXXXXX";
  int fd = mkstemp(path);
  if (fd < 0) return true; /* cannot probe: let LLVM decide */
  unlink(path);
  fflush(stderr);
  int saved = dup(STDERR_FILENO);
  dup2(fd, STDERR_FILENO);
  LLVMTargetMachineRef tm = LLVMCreateTargetMachine(target, triple, cpu, x86 ? "+64bit" : "",
                                                    LLVMCodeGenLevelNone, LLVMRelocPIC,
                                                    LLVMCodeModelDefault);
  if (tm) {
    LLVMContextRef ctx = LLVMContextCreate();
    LLVMModuleRef m = LLVMModuleCreateWithNameInContext("probe", ctx);
    LLVMSetTarget(m, triple);
    LLVMMemoryBufferRef buf = NULL;
    char *err = NULL;
    if (!LLVMTargetMachineEmitToMemoryBuffer(tm, m, LLVMObjectFile, &err, &buf)) LLVMDisposeMemoryBuffer(buf);
    else LLVMDisposeMessage(err);
    LLVMDisposeModule(m);
    LLVMContextDispose(ctx);
    LLVMDisposeTargetMachine(tm);
  }
  fflush(stderr);
  dup2(saved, STDERR_FILENO);
  close(saved);
  char text[512] = {0};
  ssize_t n = pread(fd, text, sizeof text - 1, 0);
  close(fd);
  return !(n > 0 && strstr(text, "not a recognized processor"));
}

/* A named (not host) x86 CPU: LLVM's C API does not tell which features the
 * name implies, so record at least the vector ISA level the kernels were
 * built for, which the runtime checks at start (an AVX-512 build on an AVX2
 * machine then stops with a message instead of SIGILL). */
static void add_vector_level_features(struct lb_cg_target *t) {
  const char *level = t->vbits >= 512 ? "+avx,+avx2,+fma,+avx512f,+avx512bw,+avx512dq,+avx512vl"
                      : t->vbits >= 256 ? "+avx,+avx2,+fma" : "";
  if (!*level) return;
  size_t need = strlen(t->info_features) + strlen(level) + 2;
  char *f = malloc(need);
  if (!f) abort();
  snprintf(f, need, "%s%s%s", t->info_features, *t->info_features ? "," : "", level);
  free(t->info_features);
  t->info_features = f;
}

enum lb_status lb_cg_target_init(const struct lb_codegen_options *o, struct lb_cg_target *t,
                                 LLVMTargetMachineRef *tm, struct lb_diag *d) {
  memset(t, 0, sizeof *t);
  init_llvm_targets();
  const char *req = o && o->target_triple ? o->target_triple : "x86_64-unknown-linux-gnu";
  char *norm = LLVMNormalizeTargetTriple(req);
  snprintf(t->triple, sizeof t->triple, "%s", norm);
  LLVMDisposeMessage(norm);
  if (!strncmp(t->triple, "x86_64", 6)) {
    t->is_x86 = true;
    snprintf(t->short_triple, sizeof t->short_triple, "x86_64-linux-gnu");
  } else if (!strncmp(t->triple, "aarch64", 7) || !strncmp(t->triple, "arm64", 5)) {
    t->is_aarch64 = true;
    snprintf(t->short_triple, sizeof t->short_triple, "aarch64-linux-gnu");
  } else {
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL,
                         "unsupported target '%s' (supported: x86_64-linux-gnu, aarch64-linux-gnu)", req);
  }
#if defined(__x86_64__)
  t->host_arch = t->is_x86;
#elif defined(__aarch64__)
  t->host_arch = t->is_aarch64;
#endif
  char *hostcpu = LLVMGetHostCPUName();
  const char *cpu = o && o->cpu ? o->cpu : (t->host_arch ? hostcpu : "generic");
  snprintf(t->cpu, sizeof t->cpu, "%s", cpu);
  bool use_host_features = t->host_arch && !strcmp(t->cpu, hostcpu);
  LLVMDisposeMessage(hostcpu);
  char *hf = use_host_features ? LLVMGetHostCPUFeatures() : NULL;
  size_t need = (hf ? strlen(hf) : 0) + (o && o->features ? strlen(o->features) : 0) + 2;
  t->features = malloc(need);
  if (!t->features) abort();
  snprintf(t->features, need, "%s%s%s", hf ? hf : "", hf && o && o->features && *o->features ? "," : "",
           o && o->features ? o->features : "");
  if (hf) LLVMDisposeMessage(hf);
  t->info_features = plus_features(t->features);
  t->vbits = vbits_for_cpu(t->cpu, t->features, t->is_x86);

  LLVMTargetRef target;
  char *err = NULL;
  if (LLVMGetTargetFromTriple(t->triple, &target, &err)) {
    enum lb_status st = lb_diag_error(d, LB_ERR_BACKEND, NULL, "LLVM target '%s': %s", t->triple, err);
    LLVMDisposeMessage(err);
    return st;
  }
  if (strcmp(t->cpu, "generic") != 0 && !cpu_name_known(target, t->triple, t->cpu, t->is_x86))
    return lb_diag_error(d, LB_ERR_USAGE, NULL,
                         "unknown CPU '%s' for %s (llc-19 -mtriple=%s -mcpu=help lists the names)",
                         t->cpu, t->short_triple, t->short_triple);
  if (!use_host_features && t->is_x86) add_vector_level_features(t);
  int lvl = o ? o->opt_level : 3;
  LLVMCodeGenOptLevel cl = lvl <= 0 ? LLVMCodeGenLevelNone : lvl == 1 ? LLVMCodeGenLevelLess
                           : lvl == 2 ? LLVMCodeGenLevelDefault : LLVMCodeGenLevelAggressive;
  *tm = LLVMCreateTargetMachine(target, t->triple, t->cpu, t->features, cl, LLVMRelocPIC,
                                LLVMCodeModelDefault);
  if (!*tm) return lb_diag_error(d, LB_ERR_BACKEND, NULL, "cannot create an LLVM target machine for %s/%s",
                                 t->triple, t->cpu);
  return LB_OK;
}

void lb_cg_target_free(struct lb_cg_target *t) {
  free(t->features);
  free(t->info_features);
  t->features = t->info_features = NULL;
}

void lb_cg_model_name(const struct lb_codegen_options *o, char *buf, size_t n) {
  const char *src = o && o->model_name ? o->model_name : NULL;
  char tmp[256];
  if (!src && o && o->output) {
    const char *base = strrchr(o->output, '/');
    base = base ? base + 1 : o->output;
    snprintf(tmp, sizeof tmp, "%s", base);
    char *dot = strchr(tmp, '.');
    if (dot) *dot = 0;
    if (o->emit == LB_EMIT_LIB && !strncmp(tmp, "lib", 3) && tmp[3]) memmove(tmp, tmp + 3, strlen(tmp + 3) + 1);
    src = tmp;
  }
  if (!src || !*src) src = "model";
  size_t k = 0;
  if (src[0] >= '0' && src[0] <= '9' && k + 1 < n) buf[k++] = '_';
  for (size_t i = 0; src[i] && k + 1 < n; i++) {
    char c = src[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
    buf[k++] = ok ? c : '_';
  }
  buf[k] = 0;
}

/* ---- module ------------------------------------------------------------------ */
static LLVMValueRef blob_global(struct lb_cg *cg, int32_t blob) {
  if (!cg->blob_globals[blob]) {
    struct lb_blob *bl = &cg->g->blobs[blob];
    cg->blob_globals[blob] = lb_cg_global_data(cg, "w", bl->data, bl->size ? bl->size : 1);
  }
  return cg->blob_globals[blob];
}

static LLVMValueRef cstr(struct lb_cg *cg, const char *s) {
  LLVMValueRef gv = lb_cg_global_data(cg, "str", s, strlen(s) + 1);
  LLVMSetAlignment(gv, 1);
  return gv;
}

static enum lb_status emit_kernel(struct lb_cg *cg, struct lb_node *n, int idx, LLVMValueRef *vals) {
  (void)vals;
  lb_cg_emit_fn fn = NULL;
  switch (lb_op_info[n->op].kind) {
  case LB_KIND_UNARY: case LB_KIND_BINARY: fn = lb_cg_emit_eltwise; break;
  case LB_KIND_REDUCE: fn = lb_cg_emit_reduce; break;
  case LB_KIND_NORM: fn = lb_cg_emit_norm; break;
  case LB_KIND_MATMUL: fn = lb_cg_emit_matmul; break;
  case LB_KIND_CONV: fn = lb_cg_emit_conv; break;
  case LB_KIND_POOL: fn = lb_cg_emit_pool; break;
  case LB_KIND_MOVE: fn = lb_cg_emit_move; break;
  case LB_KIND_QUANT: fn = lb_cg_emit_quant; break;
  default: break;
  }
  if (!fn)
    return lb_diag_error(cg->d, LB_ERR_UNSUPPORTED, n, "no kernel for op '%s'", lb_op_info[n->op].ir_name);
  char name[64];
  snprintf(name, sizeof name, "k%d.%s", idx, lb_op_info[n->op].ir_name);
  int np = n->n_inputs + n->n_outputs;
  LLVMValueRef kfn = lb_cg_new_fn(cg, name, np, 0);
  /* Kernels stay separate functions: inlining thousands of loop nests into
   * <model>_run gains nothing and makes O3 superlinear on big graphs. */
  LLVMAddAttributeAtIndex(kfn, LLVMAttributeFunctionIndex,
                          LLVMCreateEnumAttribute(cg->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
  LLVMValueRef saved = cg->fn;
  cg->fn = kfn;
  LLVMBasicBlockRef saved_bb = LLVMGetInsertBlock(cg->b);
  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, kfn, "entry"));
  LLVMValueRef in[64], out[64];
  LB_ASSERT(n->n_inputs <= 64 && n->n_outputs <= 64);
  for (int i = 0; i < n->n_inputs; i++) in[i] = n->inputs[i] ? LLVMGetParam(kfn, (unsigned)i) : NULL;
  for (int i = 0; i < n->n_outputs; i++) out[i] = LLVMGetParam(kfn, (unsigned)(n->n_inputs + i));
  enum lb_status st = fn(cg, n, in, out);
  if (st == LB_OK) LLVMBuildRetVoid(cg->b);
  cg->fn = saved;
  LLVMPositionBuilderAtEnd(cg->b, saved_bb);
  if (st != LB_OK) {
    if (cg->d->status == LB_OK)
      lb_diag_error(cg->d, st, n, "code generation failed");
    return st;
  }
  /* call it from the entry */
  LLVMValueRef args[128];
  for (int i = 0; i < n->n_inputs; i++)
    args[i] = n->inputs[i] ? vals[n->inputs[i]->id] : LLVMConstNull(cg->t_ptr);
  for (int i = 0; i < n->n_outputs; i++) args[n->n_inputs + i] = vals[n->outputs[i]->id];
  LLVMBuildCall2(cg->b, LLVMGlobalGetValueType(kfn), kfn, args, (unsigned)np, "");
  return LB_OK;
}

static LLVMValueRef tensor_infos(struct lb_cg *cg, LLVMTypeRef tinfo_ty, struct lb_value **vs, int n,
                                 const char *what) {
  if (n == 0) return LLVMConstNull(cg->t_ptr);
  LLVMValueRef *elems = calloc((size_t)n, sizeof *elems);
  if (!elems) abort();
  for (int k = 0; k < n; k++) {
    struct lb_value *v = vs[k];
    int64_t dims[LB_MAX_RANK];
    for (int r = 0; r < v->type.shape.rank; r++) dims[r] = v->type.shape.dims[r];
    LLVMValueRef dg = v->type.shape.rank ? lb_cg_global_data(cg, what, dims, sizeof(int64_t) * (size_t)v->type.shape.rank)
                                         : LLVMConstNull(cg->t_ptr);
    LLVMValueRef f[5] = {cstr(cg, v->name), lb_cg_i32(cg, lb_dtype_traits[v->type.dtype].onnx),
                         lb_cg_i32(cg, v->type.shape.rank), dg, lb_cg_i64(cg, lb_type_nbytes(&v->type))};
    elems[k] = LLVMConstNamedStruct(tinfo_ty, f, 5);
  }
  LLVMTypeRef aty = LLVMArrayType2(tinfo_ty, (uint64_t)n);
  char name[96];
  snprintf(name, sizeof name, "%s.%s", cg->model, what);
  LLVMValueRef gv = LLVMAddGlobal(cg->mod, aty, name);
  LLVMSetInitializer(gv, LLVMConstArray2(tinfo_ty, elems, (uint64_t)n));
  LLVMSetGlobalConstant(gv, 1);
  LLVMSetLinkage(gv, LLVMPrivateLinkage);
  free(elems);
  return gv;
}

enum lb_status lb_cg_build_module(struct lb_cg *cg, const struct lb_cg_target *t, bool exe_main,
                                  int64_t *activations_size) {
  struct lb_graph *g = cg->g;
  struct lb_diag *d = cg->d;
  cg->t_void = LLVMVoidTypeInContext(cg->ctx);
  cg->t_i1 = LLVMInt1TypeInContext(cg->ctx);
  cg->t_i8 = LLVMInt8TypeInContext(cg->ctx);
  cg->t_i16 = LLVMInt16TypeInContext(cg->ctx);
  cg->t_i32 = LLVMInt32TypeInContext(cg->ctx);
  cg->t_i64 = LLVMInt64TypeInContext(cg->ctx);
  cg->t_f32 = LLVMFloatTypeInContext(cg->ctx);
  cg->t_f64 = LLVMDoubleTypeInContext(cg->ctx);
  cg->t_ptr = LLVMPointerTypeInContext(cg->ctx, 0);
  cg->is_x86 = t->is_x86;
  cg->is_aarch64 = t->is_aarch64;
  cg->vbits = t->vbits;
  cg->par_threshold = (int64_t)1 << 17;
  cg->b = LLVMCreateBuilderInContext(cg->ctx);
  LLVMSetTarget(cg->mod, t->triple);
  LLVMTargetDataRef dl = LLVMCreateTargetDataLayout(cg->tm);
  LLVMSetModuleDataLayout(cg->mod, dl);
  LLVMDisposeTargetData(dl);

  for (int32_t b = 0; b < g->n_blobs; b++)
    if (!g->blobs[b].data && g->blobs[b].size)
      return lb_diag_error(d, LB_ERR_INVALID, NULL, "graph has elided weights (blob \"%s\" has no data)",
                           g->blobs[b].name);
  int32_t nvals = lb_graph_index_values(g);
  cg->blob_globals = calloc((size_t)(g->n_blobs ? g->n_blobs : 1), sizeof *cg->blob_globals);
  LLVMValueRef *vals = calloc((size_t)(nvals ? nvals : 1), sizeof *vals);
  if (!cg->blob_globals || !vals) abort();

  /* entry function */
  char name[160];
  snprintf(name, sizeof name, "%s_run", cg->model);
  LLVMTypeRef rparams[3] = {cg->t_ptr, cg->t_ptr, cg->t_ptr};
  LLVMTypeRef rty = LLVMFunctionType(cg->t_i32, rparams, 3, 0);
  LLVMValueRef run = LLVMAddFunction(cg->mod, name, rty);
  cg->fn = run;
  LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, run, "entry"));
  LLVMValueRef p_in = LLVMGetParam(run, 0), p_out = LLVMGetParam(run, 1), p_act = LLVMGetParam(run, 2);

  for (int k = 0; k < g->n_inputs; k++)
    vals[g->inputs[k]->id] = lb_cg_load_ty(cg, cg->t_ptr, p_in, lb_cg_i64(cg, k), 8);
  enum lb_status st = LB_OK;
  int64_t act_max = g->activations_size;
  for (int32_t i = 0; i < g->n_nodes; i++) {
    struct lb_node *n = g->nodes[i];
    for (int o = 0; o < n->n_outputs; o++) {
      struct lb_value *v = n->outputs[o];
      if (n->op == LB_OP_CONST) {
        if (n->blob < 0) {
          free(vals);
          return lb_diag_error(d, LB_ERR_INVALID, n, "const without data");
        }
        vals[v->id] = blob_global(cg, n->blob);
        continue;
      }
      int ko = -1;
      for (int k = 0; k < g->n_outputs; k++)
        if (g->outputs[k] == v) { ko = k; break; }
      if (ko >= 0) {
        vals[v->id] = lb_cg_load_ty(cg, cg->t_ptr, p_out, lb_cg_i64(cg, ko), 8);
      } else if (v->mem_offset < 0) {
        free(vals);
        return lb_diag_error(d, LB_ERR_INVALID, n,
                             "internal error: value \"%s\" has no activation offset (run plan-memory first)",
                             v->name);
      } else {
        int64_t end = v->mem_offset + lb_type_nbytes(&v->type);
        if (end > act_max) act_max = end;
        vals[v->id] = lb_cg_gep_bytes(cg, p_act, v->mem_offset);
      }
    }
  }
  for (int32_t i = 0; i < g->n_nodes && st == LB_OK; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->op == LB_OP_CONST) continue;
    enum lb_status s = emit_kernel(cg, n, i, vals);
    if (s != LB_OK && st == LB_OK) st = s;
  }
  if (st == LB_OK) {
    /* graph outputs that are inputs, consts, or a repeated value: copy */
    for (int k = 0; k < g->n_outputs; k++) {
      struct lb_value *v = g->outputs[k];
      bool direct = v->producer && v->producer->op != LB_OP_CONST;
      if (direct) {
        int first = -1;
        for (int j = 0; j < g->n_outputs; j++)
          if (g->outputs[j] == v) { first = j; break; }
        if (first == k) continue;
      }
      LLVMValueRef dst = lb_cg_load_ty(cg, cg->t_ptr, p_out, lb_cg_i64(cg, k), 8);
      lb_cg_memcpy(cg, dst, vals[v->id], lb_cg_i64(cg, lb_type_nbytes(&v->type)));
    }
    LLVMBuildRet(cg->b, lb_cg_i32(cg, 0));
  }
  free(vals);
  if (st != LB_OK) return st;
  if (activations_size) *activations_size = act_max;

  /* <model>_info */
  LLVMTypeRef tf[5] = {cg->t_ptr, cg->t_i32, cg->t_i32, cg->t_ptr, cg->t_i64};
  LLVMTypeRef tinfo = LLVMStructCreateNamed(cg->ctx, "lbrt_tensor_info");
  LLVMStructSetBody(tinfo, tf, 5, 0);
  LLVMTypeRef mf[13] = {cg->t_i32, cg->t_ptr, cg->t_i32, cg->t_i32, cg->t_ptr, cg->t_ptr, cg->t_i64,
                        cg->t_i64, cg->t_ptr, cg->t_ptr, cg->t_ptr, cg->t_ptr};
  LLVMTypeRef minfo = LLVMStructCreateNamed(cg->ctx, "lbrt_model_info");
  LLVMStructSetBody(minfo, mf, 12, 0);
  LLVMValueRef fields[12] = {
      lb_cg_i32(cg, 1), cstr(cg, cg->model), lb_cg_i32(cg, g->n_inputs), lb_cg_i32(cg, g->n_outputs),
      tensor_infos(cg, tinfo, g->inputs, g->n_inputs, "inputs"),
      tensor_infos(cg, tinfo, g->outputs, g->n_outputs, "outputs"),
      lb_cg_i64(cg, act_max), lb_cg_i64(cg, 64), cstr(cg, t->triple), cstr(cg, t->cpu),
      cstr(cg, t->info_features), run};
  snprintf(name, sizeof name, "%s_info", cg->model);
  LLVMValueRef info = LLVMAddGlobal(cg->mod, minfo, name);
  LLVMSetInitializer(info, LLVMConstNamedStruct(minfo, fields, 12));
  LLVMSetGlobalConstant(info, 1);
  if (exe_main) {
    LLVMValueRef mm = LLVMAddGlobal(cg->mod, cg->t_ptr, "lbrt_main_model");
    LLVMSetInitializer(mm, info);
    LLVMSetGlobalConstant(mm, 1);
  }

  char *msg = NULL;
  if (LLVMVerifyModule(cg->mod, LLVMReturnStatusAction, &msg)) {
    st = lb_diag_error(d, LB_ERR_BACKEND, NULL, "internal error: generated LLVM module is invalid: %.2000s",
                       msg ? msg : "");
  }
  if (msg) LLVMDisposeMessage(msg);
  return st;
}

enum lb_status lb_cg_optimize(struct lb_cg *cg, int opt_level) {
  LLVMPassBuilderOptionsRef pbo = LLVMCreatePassBuilderOptions();
  LLVMPassBuilderOptionsSetLoopVectorization(pbo, 1);
  LLVMPassBuilderOptionsSetSLPVectorization(pbo, 1);
  LLVMPassBuilderOptionsSetLoopInterleaving(pbo, 1);
  LLVMPassBuilderOptionsSetLoopUnrolling(pbo, 1);
  char pipeline[32];
  snprintf(pipeline, sizeof pipeline, "default<O%d>", opt_level < 0 ? 0 : opt_level > 3 ? 3 : opt_level);
  LLVMErrorRef err = LLVMRunPasses(cg->mod, pipeline, cg->tm, pbo);
  LLVMDisposePassBuilderOptions(pbo);
  if (err) {
    char *m = LLVMGetErrorMessage(err);
    enum lb_status st = lb_diag_error(cg->d, LB_ERR_BACKEND, NULL, "LLVM optimization failed: %s", m);
    LLVMDisposeErrorMessage(m);
    return st;
  }
  return LB_OK;
}

/* ---- files and tools ----------------------------------------------------------- */
static enum lb_status run_tool(struct lb_diag *d, char *const argv[], bool verbose, const char *install_hint) {
  if (verbose) {
    for (int i = 0; argv[i]; i++) fprintf(stderr, "%s%s", i ? " " : "", argv[i]);
    fputc('\n', stderr);
  }
  pid_t pid;
  int rc = posix_spawnp(&pid, argv[0], NULL, NULL, argv, environ);
  if (rc != 0)
    return lb_diag_error(d, LB_ERR_BACKEND, NULL, "cannot run '%s': %s%s%s", argv[0], strerror(rc),
                         install_hint ? "; " : "", install_hint ? install_hint : "");
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    if (errno != EINTR) return lb_diag_error(d, LB_ERR_BACKEND, NULL, "waitpid: %s", strerror(errno));
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
    return lb_diag_error(d, LB_ERR_BACKEND, NULL, "'%s' failed (status %d)", argv[0],
                         WIFEXITED(status) ? WEXITSTATUS(status) : -1);
  return LB_OK;
}

static enum lb_status emit_file(struct lb_cg *cg, const char *path, LLVMCodeGenFileType ft) {
  char *err = NULL;
  if (LLVMTargetMachineEmitToFile(cg->tm, cg->mod, path, ft, &err)) {
    enum lb_status st = lb_diag_error(cg->d, LB_ERR_BACKEND, NULL, "LLVM could not emit %s: %s", path,
                                      err ? err : "");
    LLVMDisposeMessage(err);
    return st;
  }
  return LB_OK;
}

static bool file_exists(const char *p) {
  struct stat sb;
  return stat(p, &sb) == 0 && S_ISREG(sb.st_mode);
}

static void default_runtime_dir(char *buf, size_t n) {
  char exe[PATH_MAX];
  ssize_t k = readlink("/proc/self/exe", exe, sizeof exe - 1);
  if (k <= 0) {
    snprintf(buf, n, "lib/lowbit");
    return;
  }
  exe[k] = 0;
  char *slash = strrchr(exe, '/');
  if (slash) *slash = 0;
  if (snprintf(buf, n, "%s/../lib/lowbit", exe) >= (int)n) snprintf(buf, n, "lib/lowbit");
}

static enum lb_status copy_file(struct lb_diag *d, const char *from, const char *to) {
  FILE *in = fopen(from, "rb");
  if (!in) return lb_diag_error(d, LB_ERR_IO, NULL, "cannot read %s: %s", from, strerror(errno));
  FILE *out = fopen(to, "wb");
  if (!out) {
    fclose(in);
    return lb_diag_error(d, LB_ERR_IO, NULL, "cannot write %s: %s", to, strerror(errno));
  }
  char buf[65536];
  size_t r;
  bool ok = true;
  while ((r = fread(buf, 1, sizeof buf, in)) > 0)
    if (fwrite(buf, 1, r, out) != r) ok = false;
  fclose(in);
  if (fclose(out) != 0) ok = false;
  return ok ? LB_OK : lb_diag_error(d, LB_ERR_IO, NULL, "cannot write %s", to);
}

static void c_upper(const char *s, char *out, size_t n) {
  size_t i = 0;
  for (; s[i] && i + 1 < n; i++) out[i] = (char)(s[i] >= 'a' && s[i] <= 'z' ? s[i] - 32 : s[i]);
  out[i] = 0;
}

static enum lb_status write_header(struct lb_cg *cg, const char *path, int64_t act) {
  struct lb_graph *g = cg->g;
  FILE *f = fopen(path, "w");
  if (!f) return lb_diag_error(cg->d, LB_ERR_IO, NULL, "cannot write %s: %s", path, strerror(errno));
  char up[160];
  c_upper(cg->model, up, sizeof up);
  fprintf(f, "/* %s.h: generated by lowbit. Do not edit. */\n#ifndef %s_H\n#define %s_H\n\n#include <stdint.h>\n\n",
          cg->model, up, up);
  fprintf(f, "#define %s_NUM_INPUTS %d\n#define %s_NUM_OUTPUTS %d\n", up, g->n_inputs, up, g->n_outputs);
  for (int io = 0; io < 2; io++) {
    int cnt = io ? g->n_outputs : g->n_inputs;
    for (int k = 0; k < cnt; k++) {
      struct lb_value *v = io ? g->outputs[k] : g->inputs[k];
      fprintf(f, "/* %s %d: \"%s\" %s[", io ? "output" : "input", k, v->name, lb_dtype_traits[v->type.dtype].name);
      for (int r = 0; r < v->type.shape.rank; r++)
        fprintf(f, "%s%lld", r ? "," : "", (long long)v->type.shape.dims[r]);
      fprintf(f, "] */\n#define %s_%s_%d_SIZE %lld\n", up, io ? "OUTPUT" : "INPUT", k,
              (long long)lb_type_nbytes(&v->type));
    }
  }
  fprintf(f, "#define %s_ACTIVATIONS_SIZE %lld\n#define %s_ACTIVATIONS_ALIGN 64\n\n", up, (long long)act, up);
  fprintf(f, "#ifdef __cplusplus\nextern \"C\" {\n#endif\n");
  fprintf(f, "/* Runs the model; buffers are dense row-major, activations %s_ACTIVATIONS_SIZE bytes\n"
             " * aligned to %s_ACTIVATIONS_ALIGN. Returns 0 on success. Not reentrant per activations buffer. */\n",
          up, up);
  fprintf(f, "int32_t %s_run(const void *const inputs[], void *const outputs[], void *activations);\n", cg->model);
  fprintf(f, "\n/* The runtime's thread pool, inside the library: without a call to\n"
             " * lbrt_threads_init(n) kernels run on the calling thread; n <= 0 = all cores. */\n"
             "int lbrt_threads_init(int n);\nvoid lbrt_threads_shutdown(void);\n");
  fprintf(f, "#ifdef __cplusplus\n}\n#endif\n\n#endif\n");
  if (fclose(f) != 0) return lb_diag_error(cg->d, LB_ERR_IO, NULL, "cannot write %s", path);
  return LB_OK;
}

static enum lb_status do_emit(struct lb_cg *cg, const struct lb_codegen_options *o, const struct lb_cg_target *t,
                              int64_t act, char *tmpdir) {
  struct lb_diag *d = cg->d;
  const char *out = o->output;
  char tmp[PATH_MAX + 16];
  snprintf(tmp, sizeof tmp, "%s.tmp%d", out, (int)getpid());
  enum lb_status st = LB_OK;
  switch (o->emit) {
  case LB_EMIT_LLVM: {
    char *err = NULL;
    if (LLVMPrintModuleToFile(cg->mod, tmp, &err)) {
      st = lb_diag_error(d, LB_ERR_IO, NULL, "cannot write %s: %s", out, err ? err : "");
      LLVMDisposeMessage(err);
    }
    break;
  }
  case LB_EMIT_ASM: st = emit_file(cg, tmp, LLVMAssemblyFile); break;
  case LB_EMIT_OBJ: st = emit_file(cg, tmp, LLVMObjectFile); break;
  case LB_EMIT_EXE:
  case LB_EMIT_LIB: {
    char rtdir[PATH_MAX], lmain[PATH_MAX + 200], lcore[PATH_MAX + 200], obj[PATH_MAX];
    if (o->runtime_dir) snprintf(rtdir, sizeof rtdir, "%s", o->runtime_dir);
    else default_runtime_dir(rtdir, sizeof rtdir);
    snprintf(lmain, sizeof lmain, "%s/%s/liblbrt_main.a", rtdir, t->short_triple);
    snprintf(lcore, sizeof lcore, "%s/%s/liblbrt_core.a", rtdir, t->short_triple);
    if ((o->emit == LB_EMIT_EXE && !file_exists(lmain)) || !file_exists(lcore))
      return lb_diag_error(d, LB_ERR_IO, NULL,
                           "runtime archives for %s not found in %s/%s (build the lbrt_main/lbrt_core targets%s, "
                           "or pass the runtime folder)",
                           t->short_triple, rtdir, t->short_triple,
                           t->host_arch ? "" : " with the cross compiler installed: apt-get install gcc-aarch64-linux-gnu");
    if (!mkdtemp(tmpdir)) return lb_diag_error(d, LB_ERR_IO, NULL, "mkdtemp: %s", strerror(errno));
    snprintf(obj, sizeof obj, "%s/%s.o", tmpdir, cg->model);
    st = emit_file(cg, obj, LLVMObjectFile);
    if (st != LB_OK) break;
    bool aarch = t->is_aarch64;
#if defined(__aarch64__)
    bool cross = !aarch;
#else
    bool cross = aarch;
#endif
    const char *hint = cross ? (aarch ? "install the cross toolchain: apt-get install gcc-aarch64-linux-gnu binutils-aarch64-linux-gnu"
                                      : "install the cross toolchain: apt-get install gcc-x86-64-linux-gnu")
                             : "install a C compiler (apt-get install gcc)";
    if (o->emit == LB_EMIT_EXE) {
      const char *cc = cross ? (aarch ? "aarch64-linux-gnu-gcc" : "x86_64-linux-gnu-gcc") : "cc";
      char *argv[] = {(char *)cc, "-static", "-o", tmp, obj, lmain, lcore, "-lm", "-lpthread", NULL};
      st = run_tool(d, argv, o->verbose, hint);
    } else {
      const char *ar = cross ? (aarch ? "aarch64-linux-gnu-ar" : "x86_64-linux-gnu-ar") : "ar";
      st = copy_file(d, lcore, tmp);
      if (st != LB_OK) break;
      char *argv[] = {(char *)ar, "rs", tmp, obj, NULL};
      st = run_tool(d, argv, o->verbose, hint);
      if (st != LB_OK) break;
      /* header next to the archive */
      char hdr[PATH_MAX + 200], htmp[PATH_MAX + 220];
      const char *slash = strrchr(out, '/');
      if (slash) snprintf(hdr, sizeof hdr, "%.*s/%s.h", (int)(slash - out), out, cg->model);
      else snprintf(hdr, sizeof hdr, "%s.h", cg->model);
      snprintf(htmp, sizeof htmp, "%s.tmp%d", hdr, (int)getpid());
      st = write_header(cg, htmp, act);
      if (st == LB_OK && rename(htmp, hdr) != 0)
        st = lb_diag_error(d, LB_ERR_IO, NULL, "cannot write %s: %s", hdr, strerror(errno));
      if (st != LB_OK) unlink(htmp);
    }
    unlink(obj);
    break;
  }
  default: st = lb_diag_error(d, LB_ERR_USAGE, NULL, "bad emit kind");
  }
  if (st == LB_OK && rename(tmp, out) != 0)
    st = lb_diag_error(d, LB_ERR_IO, NULL, "cannot write %s: %s", out, strerror(errno));
  if (st != LB_OK) unlink(tmp);
  return st;
}

enum lb_status lb_codegen_compile(struct lb_graph *g, const struct lb_codegen_options *o, struct lb_diag *d) {
  if (!o || !o->output) return lb_diag_error(d, LB_ERR_USAGE, NULL, "no output path");
  struct lb_cg_target t;
  struct lb_cg cg;
  memset(&cg, 0, sizeof cg);
  enum lb_status st = lb_cg_target_init(o, &t, &cg.tm, d);
  if (st != LB_OK) {
    lb_cg_target_free(&t);
    return st;
  }
  char model[128];
  lb_cg_model_name(o, model, sizeof model);
  cg.model = model;
  cg.g = g;
  cg.d = d;
  cg.ctx = LLVMContextCreate();
  cg.mod = LLVMModuleCreateWithNameInContext(model, cg.ctx);
  int64_t act = 0;
  st = lb_cg_build_module(&cg, &t, o->emit == LB_EMIT_EXE, &act);
  if (st == LB_OK) st = lb_cg_optimize(&cg, o->opt_level);
  char tmpdir[] = "/tmp/lowbit-XXXXXX";
  if (st == LB_OK) st = do_emit(&cg, o, &t, act, tmpdir);
  if (strcmp(tmpdir, "/tmp/lowbit-XXXXXX") != 0) rmdir(tmpdir);
  if (cg.b) LLVMDisposeBuilder(cg.b);
  LLVMDisposeModule(cg.mod);
  LLVMContextDispose(cg.ctx);
  LLVMDisposeTargetMachine(cg.tm);
  free(cg.blob_globals);
  lb_cg_target_free(&t);
  return st;
}
