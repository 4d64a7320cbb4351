/* fuzz_tensor_pb: TensorProto bytes -> lbrt_tensor_pb_decode (runtime/).
 * Property: a decoded tensor re-encoded (lbrt_tensor_pb_header + its raw
 * bytes) decodes to the same dtype, shape, name and data. */
#include <string.h>

#include "runtime/lbrt.h"
#include "tests/fuzz/fuzz_common.h"
#include "tests/fuzz/fuzz_tensor.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz_tensor_roundtrip(data, size, lbrt_tensor_pb_decode, lbrt_tensor_pb_header, "pb");
  return 0;
}
