/* examples/embed/main.c: calling a model compiled with `--emit lib` from C.
 *
 *   lowbit compile examples/mlp/model.onnx --dim batch=2 --emit lib --name mlp -o build/embed/libmlp.a
 *   cc -I build/embed examples/embed/main.c build/embed/libmlp.a -lm -lpthread -o build/embed/demo
 *   ./build/embed/demo
 *
 * The caller owns all memory: the sizes are macros in the generated header. */
#include <stdio.h>

#include "mlp.h"

static _Alignas(64) unsigned char activations[MLP_ACTIVATIONS_SIZE];
static float x[MLP_INPUT_0_SIZE / sizeof(float)];
static float probs[MLP_OUTPUT_0_SIZE / sizeof(float)];

int main(void) {
  for (unsigned i = 0; i < sizeof x / sizeof x[0]; i++) x[i] = (float)(i % 7) * 0.25f - 0.75f;
  lbrt_threads_init(2);
  const void *inputs[MLP_NUM_INPUTS] = {x};
  void *outputs[MLP_NUM_OUTPUTS] = {probs};
  int32_t rc = mlp_run(inputs, outputs, activations);
  if (rc != 0) {
    fprintf(stderr, "mlp_run failed: %d\n", (int)rc);
    return 1;
  }
  /* each row of the softmax output sums to 1 */
  for (int row = 0; row < 2; row++) {
    float sum = 0;
    for (int j = 0; j < 8; j++) sum += probs[row * 8 + j];
    printf("row %d: sum of probabilities %.6f\n", row, sum);
    if (sum < 0.999f || sum > 1.001f) return 1;
  }
  lbrt_threads_shutdown();
  return 0;
}
