/* lbrt_abi.h: the contract between code that lowbit generates and the C runtime.
 *
 * A compiled model is one object file that defines two symbols, for a model
 * named M (the -o basename, or --name):
 *
 *   int32_t M_run(const void *const inputs[], void *const outputs[], void *activations);
 *   extern const struct lbrt_model_info M_info;
 *
 * M_run never allocates: `inputs` and `outputs` point at dense row-major
 * buffers of the sizes in M_info, and `activations` at a scratch region of
 * M_info.activations_size bytes aligned to M_info.activations_align. Weights
 * live in the object's read-only data. M_run returns 0 on success.
 *
 * When lowbit links an executable, the object also defines
 *   const struct lbrt_model_info *const lbrt_main_model = &M_info;
 * which runtime/main.c uses. The runtime knows nothing else of the compiler.
 */
#ifndef LBRT_ABI_H
#define LBRT_ABI_H

#include <stdint.h>

#define LBRT_ABI_VERSION 1

/* Element types use ONNX TensorProto.DataType codes so .pb files map 1:1. */
enum lbrt_dtype {
  LBRT_DTYPE_F32 = 1,
  LBRT_DTYPE_U8 = 2,
  LBRT_DTYPE_I8 = 3,
  LBRT_DTYPE_U16 = 4,
  LBRT_DTYPE_I16 = 5,
  LBRT_DTYPE_I32 = 6,
  LBRT_DTYPE_I64 = 7,
  LBRT_DTYPE_BOOL = 9,
  LBRT_DTYPE_F16 = 10,
  LBRT_DTYPE_F64 = 11,
  LBRT_DTYPE_U32 = 12,
  LBRT_DTYPE_U64 = 13,
  LBRT_DTYPE_BF16 = 16,
};

struct lbrt_tensor_info {
  const char *name;    /* graph input/output name, as in the ONNX model */
  int32_t dtype;       /* enum lbrt_dtype */
  int32_t rank;
  const int64_t *dims; /* rank entries, all static */
  int64_t nbytes;      /* product(dims) * element size */
};

struct lbrt_model_info {
  int32_t abi_version; /* LBRT_ABI_VERSION */
  const char *name;
  int32_t num_inputs;
  int32_t num_outputs;
  const struct lbrt_tensor_info *inputs;
  const struct lbrt_tensor_info *outputs;
  int64_t activations_size;
  int64_t activations_align;
  const char *target_triple; /* e.g. "x86_64-unknown-linux-gnu" */
  const char *cpu;           /* e.g. "znver4" or "generic" */
  /* Comma-separated CPU features the code needs, as LLVM names them
   * ("+avx2,+fma,+avx512f"); the runtime checks the ones it knows at start. */
  const char *features;
  int32_t (*run)(const void *const inputs[], void *const outputs[], void *activations);
};

/* Thread pool entry the generated code calls for parallel kernels. `fn` is
 * called with disjoint [begin, end) ranges covering [0, n); with no pool (or
 * one thread) it runs fn(ctx, 0, n) on the caller. Chunks are at least
 * `grain` iterations. Defined in runtime/threads.c. */
typedef void (*lbrt_task_fn)(void *ctx, int64_t begin, int64_t end);
void lbrt_parallel_for(lbrt_task_fn fn, void *ctx, int64_t n, int64_t grain);

#endif
