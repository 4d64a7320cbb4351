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
#include <stdarg.h>
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

/* ---- kernel sharing ------------------------------------------------------------
 * Nodes whose kernels would be identical share one LLVM function: a 100k-node
 * graph of a few repeated layer shapes then costs a few kernels of LLVM time,
 * not 100k. The key is a canonical signature of everything a kernel emitter
 * reads: the op, every attribute (floats bit-exact, tensor attributes by the
 * blob's hash and size), every input's and output's dtype, shape and qparams,
 * and for constant inputs (whose data emitters may bake in at compile time:
 * packed matmul weights, conv filters, batch-norm parameters) the blob's size
 * and hash; a hash match is confirmed byte for byte before sharing. Pointers
 * (activation offsets, weight globals) are call arguments, so they may differ. */
struct sig_buf {
  char *s;
  size_t n, cap;
};

static void sig_put(struct sig_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void sig_put(struct sig_buf *b, const char *fmt, ...) {
  for (;;) {
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(b->s ? b->s + b->n : NULL, b->s ? b->cap - b->n : 0, fmt, ap);
    va_end(ap);
    LB_ASSERT(k >= 0);
    if (b->s && b->n + (size_t)k < b->cap) {
      b->n += (size_t)k;
      return;
    }
    b->cap = (b->cap ? b->cap : 256) * 2 + (size_t)k;
    b->s = realloc(b->s, b->cap);
    if (!b->s) abort();
    if (b->n == 0) b->s[0] = 0;
  }
}

static void sig_bytes(struct sig_buf *b, const void *p, size_t n) {
  const unsigned char *c = p;
  for (size_t i = 0; i < n; i++) sig_put(b, "%02x", c[i]);
}

static void sig_type(struct sig_buf *b, const struct lb_value *v) {
  sig_put(b, "%d[", (int)v->type.dtype);
  for (int r = 0; r < v->type.shape.rank; r++) sig_put(b, "%lld,", (long long)v->type.shape.dims[r]);
  sig_put(b, "]");
  const struct lb_qparams *q = v->qparams;
  if (q) {
    sig_put(b, "q%d,%d,%d,%d,%d,%lld:", q->bits, q->axis, q->group_size, (int)q->symmetric, (int)q->is_unsigned,
            (long long)q->n);
    if (q->scales) sig_bytes(b, q->scales, sizeof *q->scales * (size_t)q->n);
    sig_put(b, "/");
    if (q->zero_points) sig_bytes(b, q->zero_points, sizeof *q->zero_points * (size_t)q->n);
  }
}

static void sig_blob(struct sig_buf *b, const struct lb_graph *g, int32_t blob) {
  const struct lb_blob *bl = &g->blobs[blob];
  sig_put(b, "blob%zu:%016llx", bl->size, (unsigned long long)lb_hash_bytes(bl->data, bl->size));
}

/* The kernel signature of n (b is reset). */
static void kernel_signature(const struct lb_graph *g, const struct lb_node *n, struct sig_buf *b) {
  b->n = 0;
  sig_put(b, "%d|", (int)n->op);
  for (int32_t a = 0; a < n->n_attrs; a++) {
    const struct lb_attr *at = &n->attrs[a];
    sig_put(b, "%s=%d:", at->name, (int)at->kind);
    switch (at->kind) {
    case LB_ATTR_INT: sig_put(b, "%lld", (long long)at->i); break;
    case LB_ATTR_FLOAT: sig_bytes(b, &at->f, sizeof at->f); break;
    case LB_ATTR_STRING: sig_put(b, "%zu:%s", strlen(at->s ? at->s : ""), at->s ? at->s : ""); break;
    case LB_ATTR_INTS:
      for (int64_t k = 0; k < at->n; k++) sig_put(b, "%lld,", (long long)at->ints[k]);
      break;
    case LB_ATTR_FLOATS: sig_bytes(b, at->floats, sizeof *at->floats * (size_t)at->n); break;
    case LB_ATTR_STRINGS:
      for (int64_t k = 0; k < at->n; k++)
        sig_put(b, "%zu:%s,", strlen(at->strings[k] ? at->strings[k] : ""), at->strings[k] ? at->strings[k] : "");
      break;
    case LB_ATTR_TENSOR:
      sig_put(b, "%d[", (int)at->ttype.dtype);
      for (int r = 0; r < at->ttype.shape.rank; r++) sig_put(b, "%lld,", (long long)at->ttype.shape.dims[r]);
      sig_put(b, "]");
      if (at->blob >= 0) sig_blob(b, g, at->blob);
      break;
    default: sig_put(b, "?%p", (const void *)at); break; /* unknown kind: never shared */
    }
    sig_put(b, ";");
  }
  sig_put(b, "|");
  for (int32_t i = 0; i < n->n_inputs; i++) {
    const struct lb_value *v = n->inputs[i];
    if (!v) {
      sig_put(b, "-;");
      continue;
    }
    sig_type(b, v);
    if (v->producer && v->producer->op == LB_OP_CONST && v->producer->blob >= 0) {
      sig_put(b, "c");
      sig_blob(b, g, v->producer->blob);
    }
    sig_put(b, ";");
  }
  sig_put(b, "|");
  for (int32_t i = 0; i < n->n_outputs; i++) {
    sig_type(b, n->outputs[i]);
    sig_put(b, ";");
  }
}

/* True if the constant inputs and tensor attributes of a and b (same signature)
 * hold the same bytes: a hash collision must not share a kernel. */
static bool same_const_data(const struct lb_graph *g, const struct lb_node *a, const struct lb_node *b) {
  for (int32_t i = 0; i < a->n_inputs; i++) {
    const struct lb_value *va = a->inputs[i], *vb = b->inputs[i];
    bool ca = va && va->producer && va->producer->op == LB_OP_CONST && va->producer->blob >= 0;
    bool cb = vb && vb->producer && vb->producer->op == LB_OP_CONST && vb->producer->blob >= 0;
    if (ca != cb) return false;
    if (!ca || va->producer->blob == vb->producer->blob) continue;
    const struct lb_blob *x = &g->blobs[va->producer->blob], *y = &g->blobs[vb->producer->blob];
    if (x->size != y->size || (x->size && memcmp(x->data, y->data, x->size) != 0)) return false;
  }
  for (int32_t k = 0; k < a->n_attrs; k++) {
    const struct lb_attr *x = &a->attrs[k], *y = &b->attrs[k];
    if (x->kind != LB_ATTR_TENSOR || x->blob == y->blob || x->blob < 0 || y->blob < 0) continue;
    const struct lb_blob *p = &g->blobs[x->blob], *q = &g->blobs[y->blob];
    if (p->size != q->size || (p->size && memcmp(p->data, q->data, p->size) != 0)) return false;
  }
  return true;
}

/* signature -> (kernel function, first node using it); open addressing */
struct kernel_table {
  char **keys;
  LLVMValueRef *fns;
  const struct lb_node **nodes;
  uint64_t *hashes;
  size_t cap, count;
};

static size_t kt_slot(const struct kernel_table *t, const char *key, size_t len, uint64_t h) {
  size_t mask = t->cap - 1;
  for (size_t i = (size_t)h & mask;; i = (i + 1) & mask)
    if (!t->keys[i] || (t->hashes[i] == h && strlen(t->keys[i]) == len && memcmp(t->keys[i], key, len) == 0))
      return i;
}

static void kt_grow(struct kernel_table *t) {
  struct kernel_table old = *t;
  t->cap = old.cap ? old.cap * 2 : 256;
  t->keys = calloc(t->cap, sizeof *t->keys);
  t->fns = calloc(t->cap, sizeof *t->fns);
  t->nodes = calloc(t->cap, sizeof *t->nodes);
  t->hashes = calloc(t->cap, sizeof *t->hashes);
  if (!t->keys || !t->fns || !t->nodes || !t->hashes) abort();
  for (size_t i = 0; i < old.cap; i++) {
    if (!old.keys[i]) continue;
    size_t s = kt_slot(t, old.keys[i], strlen(old.keys[i]), old.hashes[i]);
    t->keys[s] = old.keys[i];
    t->fns[s] = old.fns[i];
    t->nodes[s] = old.nodes[i];
    t->hashes[s] = old.hashes[i];
  }
  free(old.keys);
  free(old.fns);
  free(old.nodes);
  free(old.hashes);
}

static void kt_free(struct kernel_table *t) {
  for (size_t i = 0; i < t->cap; i++) free(t->keys[i]);
  free(t->keys);
  free(t->fns);
  free(t->nodes);
  free(t->hashes);
  memset(t, 0, sizeof *t);
}

/* Parameters a kernel function takes: one pointer per input and output. */
enum { KERNEL_MAX_PARAMS = 48 };

/* Where each value's pointer comes from inside <model>_run and its parts: the
 * pointer is materialized (a load from the inputs/outputs arrays, an offset into
 * the activations) once per function that uses it. */
enum val_kind { VAL_NONE, VAL_INPUT, VAL_OUTPUT, VAL_ACT, VAL_GLOBAL };
struct run_vals {
  uint8_t *kind;
  int64_t *arg;          /* input/output index or activation offset */
  LLVMValueRef *cached;  /* in function `part` */
  int32_t *part;
  int32_t cur;           /* the function being filled */
  LLVMValueRef p_in, p_out, p_act;
};

static LLVMValueRef run_val(struct lb_cg *cg, struct run_vals *rv, int32_t id) {
  if (rv->kind[id] == VAL_GLOBAL) return rv->cached[id];
  if (rv->part[id] == rv->cur && rv->cached[id]) return rv->cached[id];
  LLVMValueRef v;
  switch (rv->kind[id]) {
  case VAL_INPUT: v = lb_cg_load_ty(cg, cg->t_ptr, rv->p_in, lb_cg_i64(cg, rv->arg[id]), 8); break;
  case VAL_OUTPUT: v = lb_cg_load_ty(cg, cg->t_ptr, rv->p_out, lb_cg_i64(cg, rv->arg[id]), 8); break;
  case VAL_ACT: v = lb_cg_gep_bytes(cg, rv->p_act, rv->arg[id]); break;
  default: LB_ASSERT(!"value without a pointer"); return NULL;
  }
  rv->cached[id] = v;
  rv->part[id] = rv->cur;
  return v;
}

static enum lb_status emit_kernel(struct lb_cg *cg, struct lb_node *n, int idx, struct run_vals *rv,
                                  struct kernel_table *kt, struct sig_buf *sig) {
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
  int np = n->n_inputs + n->n_outputs;
  if (n->n_inputs < 0 || n->n_outputs < 0 || np > KERNEL_MAX_PARAMS)
    return lb_diag_error(cg->d, LB_ERR_LIMIT, n, "has %d inputs and %d outputs; kernels take at most %d",
                         (int)n->n_inputs, (int)n->n_outputs, KERNEL_MAX_PARAMS);

  LLVMValueRef kfn = NULL;
  kernel_signature(cg->g, n, sig);
  uint64_t h = lb_hash_bytes(sig->s, sig->n);
  if ((kt->count + 1) * 2 > kt->cap) kt_grow(kt);
  size_t slot = kt_slot(kt, sig->s, sig->n, h);
  if (kt->keys[slot] && same_const_data(cg->g, kt->nodes[slot], n)) kfn = kt->fns[slot];

  if (!kfn) {
    char name[64];
    snprintf(name, sizeof name, "k%d.%s", idx, lb_op_info[n->op].ir_name);
    kfn = lb_cg_new_fn(cg, name, np, 0);
    /* Kernels stay separate functions: inlining thousands of loop nests into
     * <model>_run gains nothing and makes O3 superlinear on big graphs. */
    LLVMAddAttributeAtIndex(kfn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(cg->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
    LLVMValueRef saved = cg->fn;
    cg->fn = kfn;
    LLVMBasicBlockRef saved_bb = LLVMGetInsertBlock(cg->b);
    LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, kfn, "entry"));
    LLVMValueRef in[KERNEL_MAX_PARAMS], out[KERNEL_MAX_PARAMS];
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
    if (!kt->keys[slot]) { /* first of its signature (a collision keeps its own kernel) */
      kt->keys[slot] = malloc(sig->n + 1);
      if (!kt->keys[slot]) abort();
      memcpy(kt->keys[slot], sig->s, sig->n + 1);
      kt->fns[slot] = kfn;
      kt->nodes[slot] = n;
      kt->hashes[slot] = h;
      kt->count++;
    }
  }
  /* call it from the entry with this node's pointers */
  LLVMValueRef args[KERNEL_MAX_PARAMS];
  for (int i = 0; i < n->n_inputs; i++)
    args[i] = n->inputs[i] ? run_val(cg, rv, n->inputs[i]->id) : LLVMConstNull(cg->t_ptr);
  for (int i = 0; i < n->n_outputs; i++) args[n->n_inputs + i] = run_val(cg, rv, n->outputs[i]->id);
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
  size_t nv = (size_t)(nvals ? nvals : 1);
  cg->blob_globals = calloc((size_t)(g->n_blobs ? g->n_blobs : 1), sizeof *cg->blob_globals);
  struct run_vals rv = {.kind = calloc(nv, 1), .arg = calloc(nv, sizeof *rv.arg),
                        .cached = calloc(nv, sizeof *rv.cached), .part = calloc(nv, sizeof *rv.part)};
  /* value id -> 1 + its first position among the graph outputs, 0 if none */
  int32_t *out_index = calloc(nv, sizeof *out_index);
  if (!cg->blob_globals || !rv.kind || !rv.arg || !rv.cached || !rv.part || !out_index) abort();
  for (int k = g->n_outputs - 1; k >= 0; k--) out_index[g->outputs[k]->id] = k + 1;
  for (int k = 0; k < g->n_inputs; k++) {
    rv.kind[g->inputs[k]->id] = VAL_INPUT;
    rv.arg[g->inputs[k]->id] = k;
  }
  enum lb_status st = LB_OK;
  int64_t act_max = g->activations_size;
  int32_t n_calls = 0;
  for (int32_t i = 0; i < g->n_nodes && st == LB_OK; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->op != LB_OP_CONST) n_calls++;
    for (int o = 0; o < n->n_outputs; o++) {
      struct lb_value *v = n->outputs[o];
      if (n->op == LB_OP_CONST) {
        if (n->blob < 0) {
          st = lb_diag_error(d, LB_ERR_INVALID, n, "const without data");
          break;
        }
        rv.kind[v->id] = VAL_GLOBAL;
        rv.cached[v->id] = blob_global(cg, n->blob);
        continue;
      }
      int ko = out_index[v->id] - 1;
      if (ko >= 0) {
        rv.kind[v->id] = VAL_OUTPUT;
        rv.arg[v->id] = ko;
      } else if (v->mem_offset < 0) {
        st = lb_diag_error(d, LB_ERR_INVALID, n,
                           "internal error: value \"%s\" has no activation offset (run plan-memory first)",
                           v->name);
        break;
      } else {
        int64_t end = v->mem_offset + lb_type_nbytes(&v->type);
        if (end > act_max) act_max = end;
        rv.kind[v->id] = VAL_ACT;
        rv.arg[v->id] = v->mem_offset;
      }
    }
  }

  /* entry function; on big graphs the kernel calls go into internal parts of
   * RUN_PART_CALLS calls each, so that no function handed to LLVM's backend
   * grows with the graph (instruction selection and register allocation are
   * superlinear in a function's size) */
  enum { RUN_PART_CALLS = 512 };
  char name[160];
  snprintf(name, sizeof name, "%s_run", cg->model);
  LLVMTypeRef rparams[3] = {cg->t_ptr, cg->t_ptr, cg->t_ptr};
  LLVMTypeRef rty = LLVMFunctionType(cg->t_i32, rparams, 3, 0);
  LLVMTypeRef pty = LLVMFunctionType(cg->t_void, rparams, 3, 0);
  LLVMValueRef run = LLVMAddFunction(cg->mod, name, rty);
  LLVMBasicBlockRef run_bb = LLVMAppendBasicBlockInContext(cg->ctx, run, "entry");
  LLVMPositionBuilderAtEnd(cg->b, run_bb);
  bool parts = n_calls > RUN_PART_CALLS;
  LLVMValueRef part_fn = NULL;
  int32_t calls_in_part = 0, n_parts = 0;
  rv.cur = 0;
  rv.p_in = LLVMGetParam(run, 0);
  rv.p_out = LLVMGetParam(run, 1);
  rv.p_act = LLVMGetParam(run, 2);
  cg->fn = run;

  struct kernel_table kt = {0};
  struct sig_buf sig = {0};
  for (int32_t i = 0; i < g->n_nodes && st == LB_OK; i++) {
    struct lb_node *n = g->nodes[i];
    if (n->op == LB_OP_CONST) continue;
    if (parts && (!part_fn || calls_in_part == RUN_PART_CALLS)) {
      if (part_fn) LLVMBuildRetVoid(cg->b);
      char pname[180];
      snprintf(pname, sizeof pname, "%s_run.part%d", cg->model, (int)n_parts);
      part_fn = LLVMAddFunction(cg->mod, pname, pty);
      LLVMSetLinkage(part_fn, LLVMInternalLinkage);
      LLVMAddAttributeAtIndex(part_fn, LLVMAttributeFunctionIndex,
                              LLVMCreateEnumAttribute(cg->ctx, LLVMGetEnumAttributeKindForName("noinline", 8), 0));
      LLVMPositionBuilderAtEnd(cg->b, run_bb);
      LLVMValueRef pargs[3] = {LLVMGetParam(run, 0), LLVMGetParam(run, 1), LLVMGetParam(run, 2)};
      LLVMBuildCall2(cg->b, pty, part_fn, pargs, 3, "");
      LLVMPositionBuilderAtEnd(cg->b, LLVMAppendBasicBlockInContext(cg->ctx, part_fn, "entry"));
      cg->fn = part_fn;
      rv.cur = ++n_parts;
      rv.p_in = LLVMGetParam(part_fn, 0);
      rv.p_out = LLVMGetParam(part_fn, 1);
      rv.p_act = LLVMGetParam(part_fn, 2);
      calls_in_part = 0;
    }
    calls_in_part++;
    enum lb_status s = emit_kernel(cg, n, i, &rv, &kt, &sig);
    if (s != LB_OK && st == LB_OK) st = s;
  }
  cg->n_kernels = (int32_t)kt.count;
  kt_free(&kt);
  free(sig.s);
  if (st == LB_OK) {
    if (part_fn) {
      LLVMBuildRetVoid(cg->b);
      LLVMPositionBuilderAtEnd(cg->b, run_bb);
      cg->fn = run;
      rv.cur = 0;
      rv.p_in = LLVMGetParam(run, 0);
      rv.p_out = LLVMGetParam(run, 1);
      rv.p_act = LLVMGetParam(run, 2);
    }
    /* graph outputs that are inputs, consts, or a repeated value: copy */
    for (int k = 0; k < g->n_outputs; k++) {
      struct lb_value *v = g->outputs[k];
      bool direct = v->producer && v->producer->op != LB_OP_CONST;
      if (direct && out_index[v->id] - 1 == k) continue;
      LLVMValueRef dst = lb_cg_load_ty(cg, cg->t_ptr, rv.p_out, lb_cg_i64(cg, k), 8);
      lb_cg_memcpy(cg, dst, run_val(cg, &rv, v->id), lb_cg_i64(cg, lb_type_nbytes(&v->type)));
    }
    LLVMBuildRet(cg->b, lb_cg_i32(cg, 0));
  }
  free(rv.kind);
  free(rv.arg);
  free(rv.cached);
  free(rv.part);
  free(out_index);
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
