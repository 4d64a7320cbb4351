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

#endif
