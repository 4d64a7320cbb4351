/* fuzz_tensor.h: the decode -> encode -> decode property shared by the
 * TensorProto and .npy targets. */
#ifndef LB_FUZZ_TENSOR_H
#define LB_FUZZ_TENSOR_H

#include <string.h>

#include "runtime/lbrt.h"
#include "tests/fuzz/fuzz_common.h"

typedef enum lbrt_status (*fuzz_decode_fn)(const uint8_t *, size_t, struct lbrt_tensor *, char *,
                                           size_t);
typedef enum lbrt_status (*fuzz_header_fn)(const struct lbrt_tensor *, uint8_t *, size_t, size_t *,
                                           char *, size_t);

static inline void fuzz_tensor_roundtrip(const uint8_t *data, size_t size, fuzz_decode_fn decode,
                                         fuzz_header_fn header, const char *fmt) {
  struct lbrt_tensor t;
  char err[256] = "";
  enum lbrt_status st = decode(data, size, &t, err, sizeof err);
  if (st != LBRT_OK) {
    FUZZ_CHECK(t.data == NULL && t.nbytes == 0 && t.rank == 0, "%s: error leaves a tensor", fmt);
    FUZZ_CHECK(err[0] != '\0', "%s: error %d without a message", fmt, (int)st);
    return;
  }
  FUZZ_CHECK(t.data != NULL, "%s: no data after a successful decode", fmt);
  FUZZ_CHECK(t.rank >= 0 && t.rank <= LBRT_MAX_RANK, "%s: rank %d", fmt, (int)t.rank);
  int64_t count, nbytes;
  FUZZ_CHECK(lbrt_shape_count(t.rank, t.dims, lbrt_dtype_size(t.dtype), &count, &nbytes) ==
                     LBRT_OK &&
                 nbytes == t.nbytes && (uint64_t)nbytes <= 8 * (uint64_t)size,
             "%s: inconsistent shape, nbytes %lld from %zu input bytes", fmt, (long long)t.nbytes,
             size); /* packed varints: at most 8 bytes per input byte */

  /* Every tensor a decoder returns can be written back in the same format. */
  uint8_t hdr[LBRT_HEADER_MAX];
  size_t hlen = 0;
  st = header(&t, hdr, sizeof hdr, &hlen, err, sizeof err);
  FUZZ_CHECK(st == LBRT_OK && hlen > 0 && hlen <= sizeof hdr, "%s: header of a decoded tensor: %s",
             fmt, err);
  size_t total = hlen + (size_t)t.nbytes;
  uint8_t *file = malloc(total);
  FUZZ_CHECK(file != NULL, "malloc");
  memcpy(file, hdr, hlen);
  if (t.nbytes) memcpy(file + hlen, t.data, (size_t)t.nbytes);

  struct lbrt_tensor u;
  st = decode(file, total, &u, err, sizeof err);
  FUZZ_CHECK(st == LBRT_OK, "%s: re-encoded tensor does not decode: %s", fmt, err);
  FUZZ_CHECK(u.dtype == t.dtype && u.rank == t.rank && u.nbytes == t.nbytes,
             "%s: dtype/rank/nbytes differ after a round trip", fmt);
  FUZZ_CHECK(memcmp(u.dims, t.dims, sizeof(int64_t) * (size_t)t.rank) == 0,
             "%s: dims differ after a round trip", fmt);
  FUZZ_CHECK(strcmp(u.name, t.name) == 0, "%s: name \"%s\" became \"%s\"", fmt, t.name, u.name);
  FUZZ_CHECK(t.nbytes == 0 || memcmp(u.data, t.data, (size_t)t.nbytes) == 0,
             "%s: data differs after a round trip", fmt);
  free(file);
  lbrt_tensor_free(&u);
  lbrt_tensor_free(&t);
}

#endif
