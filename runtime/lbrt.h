/* lbrt.h: public API of the lowbit C runtime (thread pool, tensor files,
 * CPU feature check). The contract with generated code is lbrt_abi.h; this
 * header is for runtime/main.c, embedders and tests.
 *
 * Nothing here exits or prints on its own: functions that can fail return an
 * enum lbrt_status and write a one-line message into a caller buffer
 * (`err`, `errlen`; either may be NULL/0). Input files are untrusted: every
 * reader validates fully and never allocates more than a small multiple of
 * the bytes the file really holds.
 */
#ifndef LBRT_H
#define LBRT_H

#include <stddef.h>
#include <stdint.h>

#include "runtime/lbrt_abi.h"

enum lbrt_status {
  LBRT_OK = 0,
  LBRT_ERR_IO = 1,          /* open/read/write/rename failed */
  LBRT_ERR_FORMAT = 2,      /* malformed file */
  LBRT_ERR_UNSUPPORTED = 3, /* well-formed but not something we handle */
  LBRT_ERR_NOMEM = 4,
  LBRT_ERR_ARG = 5, /* bad argument from the caller */
};

/* ---- tensors ------------------------------------------------------------ */

#define LBRT_MAX_RANK 8
#define LBRT_NAME_MAX 256 /* including the NUL; longer names are truncated */
/* Data buffers the readers allocate are aligned to this (SIMD-friendly). */
#define LBRT_DATA_ALIGN 64

/* A dense row-major little-endian tensor. Readers allocate `data` (free it
 * with lbrt_tensor_free); writers only read it, so a tensor may also be a
 * view of memory the caller owns. */
struct lbrt_tensor {
  int32_t dtype; /* enum lbrt_dtype */
  int32_t rank;  /* 0..LBRT_MAX_RANK; 0 is a scalar (one element) */
  int64_t dims[LBRT_MAX_RANK];
  void *data;     /* nbytes bytes; non-NULL after a successful read */
  int64_t nbytes; /* product(dims) * lbrt_dtype_size(dtype) */
  char name[LBRT_NAME_MAX];
};

enum lbrt_format {
  LBRT_FORMAT_PB = 1,  /* ONNX TensorProto */
  LBRT_FORMAT_NPY = 2, /* NumPy .npy */
};

/* Bytes per element, or 0 for a dtype the runtime does not handle. */
int64_t lbrt_dtype_size(int32_t dtype);
/* Short name ("f32", "i64", "bool", ...), or "?" for an unknown dtype. */
const char *lbrt_dtype_name(int32_t dtype);
/* Writes e.g. "f32[1,4]" (scalars: "f32[]"); always NUL-terminates. */
void lbrt_shape_format(char *buf, size_t len, int32_t dtype, int32_t rank, const int64_t *dims);
/* Element count of dims into *count; LBRT_ERR_FORMAT on negative dims or
 * int64 overflow of the count or of count * elem_size. */
enum lbrt_status lbrt_shape_count(int32_t rank, const int64_t *dims, int64_t elem_size,
                                  int64_t *count, int64_t *nbytes);
/* Frees t->data and zeroes *t. Safe on a zeroed tensor. */
void lbrt_tensor_free(struct lbrt_tensor *t);

/* Decode a whole file image. On success *t owns a new data buffer; on error *t
 * is zeroed. `buf` may be NULL when len is 0. */
enum lbrt_status lbrt_tensor_pb_decode(const uint8_t *buf, size_t len, struct lbrt_tensor *t,
                                       char *err, size_t errlen);
enum lbrt_status lbrt_tensor_npy_decode(const uint8_t *buf, size_t len, struct lbrt_tensor *t,
                                        char *err, size_t errlen);

/* Encode everything that precedes the raw element bytes (which follow
 * verbatim, little-endian) into hdr[0..cap). Headers fit in
 * LBRT_HEADER_MAX bytes. */
#define LBRT_HEADER_MAX 1024
enum lbrt_status lbrt_tensor_pb_header(const struct lbrt_tensor *t, uint8_t *hdr, size_t cap,
                                       size_t *len, char *err, size_t errlen);
enum lbrt_status lbrt_tensor_npy_header(const struct lbrt_tensor *t, uint8_t *hdr, size_t cap,
                                        size_t *len, char *err, size_t errlen);

/* Reads a whole file (regular file or pipe) into a malloc'd buffer. */
enum lbrt_status lbrt_file_read(const char *path, uint8_t **buf, size_t *len, char *err,
                                size_t errlen);
/* Reads a .npy (by its magic) or TensorProto file. *fmt may be NULL. */
enum lbrt_status lbrt_tensor_read(const char *path, struct lbrt_tensor *t, enum lbrt_format *fmt,
                                  char *err, size_t errlen);
/* Writes header + data to an open fd (no rename, no close). */
enum lbrt_status lbrt_tensor_write_fd(int fd, const struct lbrt_tensor *t, enum lbrt_format fmt,
                                      char *err, size_t errlen);
/* Creates a new temporary file next to `path` (same directory, so a rename
 * is atomic); returns its fd and writes its name to tmp[0..tmplen). */
enum lbrt_status lbrt_file_create_temp(const char *path, int *fd, char *tmp, size_t tmplen,
                                       char *err, size_t errlen);
/* Atomically writes `t` to `path`: temp file in the same directory, then
 * rename. On failure neither a partial `path` nor the temp file is left. */
enum lbrt_status lbrt_tensor_write(const char *path, const struct lbrt_tensor *t,
                                   enum lbrt_format fmt, char *err, size_t errlen);

/* ---- thread pool (lbrt_parallel_for is declared in lbrt_abi.h) ---------- */

/* Starts a pool of n threads in total, counting the caller (n <= 0: all
 * online cores; capped at LBRT_MAX_THREADS). Re-initializing shuts the old
 * pool down first. Returns the thread count in use (>= 1): if threads cannot
 * be created the pool runs with fewer. Not thread-safe against concurrent
 * lbrt_parallel_for calls. */
#define LBRT_MAX_THREADS 256
int lbrt_threads_init(int n);
/* Joins the workers; afterwards lbrt_parallel_for runs serially. */
void lbrt_threads_shutdown(void);
/* Threads lbrt_parallel_for uses (1 without a pool). */
int lbrt_threads_count(void);
/* Online cores (>= 1). */
int lbrt_threads_online_cores(void);

/* ---- CPU feature check --------------------------------------------------- */

/* 1: this CPU (and OS) supports the LLVM-named feature; 0: it does not;
 * -1: the runtime does not know the name (such features are not checked). */
int lbrt_cpu_has_feature(const char *name);
/* Parses a comma-separated LLVM feature list ("+avx2,+fma,-avx512f"): for each
 * "+name" (or bare "name") that has(name, ud) reports as 0, appends the name
 * to missing ("a, b", deduplicated, truncated with "..." if too long).
 * "-name" entries and unknown (-1) names are ignored. Returns the number of
 * missing features. A NULL `features` has none. */
typedef int (*lbrt_cpu_has_fn)(const char *name, void *ud);
int lbrt_cpu_missing_features(const char *features, lbrt_cpu_has_fn has, void *ud,
                              char *missing, size_t missinglen);
/* Checks the model's features against this CPU. Returns 0 if it can run,
 * else 1 with a full message in msg ("this executable was built for CPU ..."). */
int lbrt_cpu_check(const struct lbrt_model_info *info, char *msg, size_t msglen);

#endif
