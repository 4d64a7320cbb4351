/* fake_model.c: a hand-written stand-in for a lowbit-compiled model, to test
 * runtime/main.c. Inputs x f32[2,3], b i32[3]; outputs y = 2*x (f32[2,3],
 * computed through lbrt_parallel_for) and s = sum(b) (i64 scalar).
 * x[0] == 999 makes run fail with status 7, to test that path. */
#include <stdint.h>

#include "runtime/lbrt_abi.h"

static const int64_t x_dims[] = {2, 3}, b_dims[] = {3}, y_dims[] = {2, 3};
static const struct lbrt_tensor_info inputs[] = {
    {.name = "x", .dtype = LBRT_DTYPE_F32, .rank = 2, .dims = x_dims, .nbytes = 24},
    {.name = "b", .dtype = LBRT_DTYPE_I32, .rank = 1, .dims = b_dims, .nbytes = 12},
};
static const struct lbrt_tensor_info outputs[] = {
    {.name = "y", .dtype = LBRT_DTYPE_F32, .rank = 2, .dims = y_dims, .nbytes = 24},
    {.name = "s", .dtype = LBRT_DTYPE_I64, .rank = 0, .dims = 0, .nbytes = 8},
};

struct scale_ctx {
  const float *x;
  float *y;
};

static void scale(void *vctx, int64_t begin, int64_t end) {
  struct scale_ctx *c = vctx;
  for (int64_t i = begin; i < end; i++) c->y[i] = 2.0f * c->x[i];
}

static int32_t fake_run(const void *const in[], void *const out[], void *act) {
  if ((uintptr_t)act % 128 != 0) return 9;
  const float *x = in[0];
  const int32_t *b = in[1];
  if (x[0] == 999.0f) return 7;
  /* Touch the whole activation region so ASan checks its size. */
  unsigned char *a = act;
  for (int i = 0; i < 200; i++) a[i] = (unsigned char)i;
  struct scale_ctx c = {x, out[0]};
  lbrt_parallel_for(scale, &c, 6, 1);
  int64_t s = 0;
  for (int i = 0; i < 3; i++) s += b[i];
  *(int64_t *)out[1] = s;
  return 0;
}

static const struct lbrt_model_info fake_info = {
    .abi_version = LBRT_ABI_VERSION,
    .name = "fake\"model",
    .num_inputs = 2,
    .num_outputs = 2,
    .inputs = inputs,
    .outputs = outputs,
    .activations_size = 200,
    .activations_align = 128,
    .target_triple = "x86_64-unknown-linux-gnu",
#ifdef FAKE_NEEDS_MISSING
    /* Built for the CPU-check test: no current x86 desktop CPU has all of these. */
    .cpu = "sapphirerapids-ish",
    .features = "+avx2,+avx512fp16,+avx512vp2intersect-unknown,+sse4a,+avx512bf16,+avx512fp16",
#else
    .cpu = "generic",
    .features = "-avx512f,+not-a-real-feature",
#endif
    .run = fake_run,
};

const struct lbrt_model_info *const lbrt_main_model = &fake_info;
