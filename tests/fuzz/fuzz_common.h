/* fuzz_common.h: shared helpers of the libFuzzer targets (tests/fuzz/).
 * A failed property prints what went wrong and abort()s, so libFuzzer
 * records the input as a crash. Targets never write files. */
#ifndef LB_FUZZ_COMMON_H
#define LB_FUZZ_COMMON_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define FUZZ_CHECK(cond, ...)                                                   \
  do {                                                                          \
    if (!(cond)) {                                                              \
      fprintf(stderr, "fuzz property failed: %s (%s:%d)\n", #cond, __FILE__,    \
              __LINE__);                                                        \
      fprintf(stderr, __VA_ARGS__);                                             \
      fputc('\n', stderr);                                                      \
      abort();                                                                  \
    }                                                                           \
  } while (0)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#endif
