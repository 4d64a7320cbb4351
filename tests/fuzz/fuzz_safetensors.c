/* fuzz_safetensors: bytes -> lb_safetensors_parse (frontend/safetensors.c), the
 * reader of --lora adapter files. Properties: an accepted file's tensors lie
 * inside its data section and hold their shape's bytes, and each widens to f32
 * (reading every byte of its range, so ASan sees a range that escapes). */
#include <stdlib.h>

#include "frontend/safetensors.h"
#include "tests/fuzz/fuzz_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  struct lb_safetensors st;
  struct lb_diag d;
  lb_diag_init(&d, "fuzz");
  if (lb_safetensors_parse(data, size, "fuzz", &st, &d) == LB_OK) {
    for (int32_t i = 0; i < st.n; i++) {
      const struct lb_st_tensor *t = &st.tensors[i];
      FUZZ_CHECK(t->begin <= t->end && t->end <= st.data_len, "tensor %d range [%llu, %llu) of %llu", (int)i,
                 (unsigned long long)t->begin, (unsigned long long)t->end, (unsigned long long)st.data_len);
      FUZZ_CHECK(t->end - t->begin == (uint64_t)lb_shape_numel(&t->shape) * (uint64_t)lb_dtype_traits[t->dtype].size,
                 "tensor %d size", (int)i);
      free(lb_safetensors_read_f32(&st, i));
    }
    lb_safetensors_free(&st);
  } else {
    FUZZ_CHECK(d.text != NULL, "an error without a message");
  }
  lb_diag_free(&d);
  return 0;
}
