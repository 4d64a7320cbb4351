/* jit.c: run generated code in-process with ORC LLJIT (tests, calibration).
 *
 * The module is built and optimized exactly as lb_codegen_compile does, for the
 * host CPU; lbrt_parallel_for is bound to a function pointer the caller chooses
 * (serial by default), other external symbols (memcpy, libm) resolve against
 * this process. */
#include <stdlib.h>
#include <string.h>

#include <llvm-c/Error.h>
#include <llvm-c/LLJIT.h>
#include <llvm-c/Orc.h>

#include "codegen/cg.h"

struct lb_jit {
  LLVMOrcLLJITRef jit;
  int32_t (*run)(const void *const *, void *const *, void *);
  int64_t act_size;
};

static void serial_parallel_for(lb_jit_task_fn fn, void *ctx, int64_t n, int64_t grain) {
  (void)grain;
  if (n > 0) fn(ctx, 0, n);
}

static lb_jit_parallel_for_fn g_pfor = serial_parallel_for;

void lb_jit_set_parallel_for(lb_jit_parallel_for_fn f) { g_pfor = f ? f : serial_parallel_for; }

static enum lb_status orc_err(struct lb_diag *d, LLVMErrorRef e, const char *what) {
  char *m = LLVMGetErrorMessage(e);
  enum lb_status st = lb_diag_error(d, LB_ERR_BACKEND, NULL, "JIT %s: %s", what, m);
  LLVMDisposeErrorMessage(m);
  return st;
}

enum lb_status lb_jit_compile(struct lb_graph *g, const struct lb_codegen_options *o, struct lb_jit **out,
                              struct lb_diag *d) {
  *out = NULL;
  struct lb_codegen_options opts;
  memset(&opts, 0, sizeof opts);
  if (o) opts = *o;
  opts.target_triple = NULL;
#if defined(__aarch64__)
  opts.target_triple = "aarch64-unknown-linux-gnu";
#endif
  if (!o) opts.opt_level = 3;
  struct lb_cg_target t;
  struct lb_cg cg;
  memset(&cg, 0, sizeof cg);
  enum lb_status st = lb_cg_target_init(&opts, &t, &cg.tm, d);
  if (st != LB_OK) {
    lb_cg_target_free(&t);
    return st;
  }
  char model[128];
  lb_cg_model_name(&opts, model, sizeof model);
  cg.model = model;
  cg.g = g;
  cg.d = d;
  LLVMOrcThreadSafeContextRef tsc = LLVMOrcCreateNewThreadSafeContext();
  cg.ctx = LLVMOrcThreadSafeContextGetContext(tsc);
  cg.mod = LLVMModuleCreateWithNameInContext(model, cg.ctx);
  int64_t act = 0;
  st = lb_cg_build_module(&cg, &t, false, &act);
  if (st == LB_OK) st = lb_cg_optimize(&cg, opts.opt_level);
  if (cg.b) LLVMDisposeBuilder(cg.b);
  free(cg.blob_globals);
  if (st != LB_OK) {
    LLVMDisposeModule(cg.mod);
    LLVMOrcDisposeThreadSafeContext(tsc);
    LLVMDisposeTargetMachine(cg.tm);
    lb_cg_target_free(&t);
    return st;
  }
  /* the JIT gets its own target machine with the same settings */
  LLVMDisposeTargetMachine(cg.tm);
  LLVMTargetMachineRef jtm = NULL;
  struct lb_cg_target t2;
  st = lb_cg_target_init(&opts, &t2, &jtm, d);
  lb_cg_target_free(&t2);
  lb_cg_target_free(&t);
  if (st != LB_OK) {
    LLVMDisposeModule(cg.mod);
    LLVMOrcDisposeThreadSafeContext(tsc);
    return st;
  }
  LLVMOrcLLJITBuilderRef jb = LLVMOrcCreateLLJITBuilder();
  LLVMOrcLLJITBuilderSetJITTargetMachineBuilder(jb, LLVMOrcJITTargetMachineBuilderCreateFromTargetMachine(jtm));
  LLVMOrcLLJITRef jit;
  LLVMErrorRef err = LLVMOrcCreateLLJIT(&jit, jb);
  if (err) {
    LLVMDisposeModule(cg.mod);
    LLVMOrcDisposeThreadSafeContext(tsc);
    return orc_err(d, err, "create");
  }
  struct lb_jit *j = calloc(1, sizeof *j);
  if (!j) abort();
  j->jit = jit;
  j->act_size = act;
  LLVMOrcJITDylibRef jd = LLVMOrcLLJITGetMainJITDylib(jit);
  LLVMOrcDefinitionGeneratorRef gen;
  err = LLVMOrcCreateDynamicLibrarySearchGeneratorForProcess(&gen, LLVMOrcLLJITGetGlobalPrefix(jit), NULL, NULL);
  if (err) st = orc_err(d, err, "process symbols");
  else LLVMOrcJITDylibAddGenerator(jd, gen);
  if (st == LB_OK) {
    LLVMOrcCSymbolMapPair sym = {
        LLVMOrcLLJITMangleAndIntern(jit, "lbrt_parallel_for"),
        {(LLVMOrcExecutorAddress)(uintptr_t)g_pfor,
         {LLVMJITSymbolGenericFlagsExported | LLVMJITSymbolGenericFlagsCallable, 0}}};
    LLVMOrcMaterializationUnitRef mu = LLVMOrcAbsoluteSymbols(&sym, 1);
    err = LLVMOrcJITDylibDefine(jd, mu);
    if (err) st = orc_err(d, err, "define lbrt_parallel_for");
  }
  LLVMOrcThreadSafeModuleRef tsm = LLVMOrcCreateNewThreadSafeModule(cg.mod, tsc);
  LLVMOrcDisposeThreadSafeContext(tsc);
  if (st == LB_OK) {
    err = LLVMOrcLLJITAddLLVMIRModule(jit, jd, tsm);
    if (err) st = orc_err(d, err, "add module");
  } else {
    LLVMOrcDisposeThreadSafeModule(tsm);
  }
  if (st == LB_OK) {
    char name[160];
    snprintf(name, sizeof name, "%s_run", model);
    LLVMOrcExecutorAddress addr = 0;
    err = LLVMOrcLLJITLookup(jit, &addr, name);
    if (err) st = orc_err(d, err, "lookup");
    else j->run = (int32_t(*)(const void *const *, void *const *, void *))(uintptr_t)addr;
  }
  if (st != LB_OK) {
    lb_jit_free(j);
    return st;
  }
  *out = j;
  return LB_OK;
}

int32_t lb_jit_run(struct lb_jit *j, const void *const *inputs, void *const *outputs, void *activations) {
  return j->run(inputs, outputs, activations);
}

int64_t lb_jit_activations_size(const struct lb_jit *j) { return j->act_size; }

void lb_jit_free(struct lb_jit *j) {
  if (!j) return;
  LLVMErrorRef e = LLVMOrcDisposeLLJIT(j->jit);
  if (e) LLVMConsumeError(e);
  free(j);
}
