/* codegen.h: IR -> LLVM IR -> native object / executable / library. */
#ifndef LB_CODEGEN_H
#define LB_CODEGEN_H

#include "ir/ir.h"

enum lb_emit {
  LB_EMIT_EXE,  /* static executable linked with the runtime (default) */
  LB_EMIT_OBJ,  /* object file defining <model>_run and <model>_info */
  LB_EMIT_ASM,  /* target assembly */
  LB_EMIT_LLVM, /* optimized LLVM IR text */
  LB_EMIT_LIB,  /* static library lib<model>.a + <model>.h */
  LB_EMIT_COUNT
};

struct lb_codegen_options {
  const char *target_triple; /* NULL: x86_64-unknown-linux-gnu */
  const char *cpu;           /* NULL: host CPU if same arch as host, else generic; "generic" */
  const char *features;      /* extra LLVM feature string, may be NULL */
  int32_t opt_level;         /* 0..3, default 3 */
  enum lb_emit emit;
  const char *output;        /* output path (for LIB: the .a path; header next to it) */
  const char *model_name;    /* C identifier prefix for symbols; NULL: from output basename */
  const char *runtime_dir;   /* folder holding <triple>/liblbrt_*.a; NULL: next to the binary */
  bool verbose;              /* print link commands */
};

/* Generates code for a verified graph whose memory has been planned. Writes
 * only `output` (and for LIB, the header beside it); on failure nothing is
 * left at those paths. */
enum lb_status lb_codegen_compile(struct lb_graph *g, const struct lb_codegen_options *o,
                                  struct lb_diag *d);

/* ---- in-process JIT (codegen/jit.c): same code as lb_codegen_compile, run in
 * this process through LLVM ORC. Used by tests and by calibration. The graph
 * must be planned (mem_offset on intermediates) like for lb_codegen_compile;
 * options: target/cpu/features/opt_level/model_name as above (emit/output ignored;
 * the target is always the host). */
struct lb_jit;
typedef void (*lb_jit_task_fn)(void *ctx, int64_t begin, int64_t end);
typedef void (*lb_jit_parallel_for_fn)(lb_jit_task_fn fn, void *ctx, int64_t n, int64_t grain);
/* The lbrt_parallel_for the JIT'd code calls (default: serial, fn(ctx, 0, n)).
 * Takes effect for later lb_jit_compile calls. */
void lb_jit_set_parallel_for(lb_jit_parallel_for_fn f);
enum lb_status lb_jit_compile(struct lb_graph *g, const struct lb_codegen_options *o, struct lb_jit **out,
                              struct lb_diag *d);
/* Calls <model>_run. activations: lb_jit_activations_size() bytes, 64-aligned. */
int32_t lb_jit_run(struct lb_jit *j, const void *const *inputs, void *const *outputs, void *activations);
int64_t lb_jit_activations_size(const struct lb_jit *j);
void lb_jit_free(struct lb_jit *j);

#endif
