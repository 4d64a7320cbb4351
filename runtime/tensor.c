/* tensor.c: dtype table, shapes, and file I/O shared by the .pb and .npy codecs. */
#include <errno.h>
#include <stdatomic.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "runtime/lbrt_internal.h"

enum lbrt_status lbrt_fail(enum lbrt_status st, char *err, size_t errlen, const char *fmt, ...) {
  if (err && errlen) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
  }
  return st;
}

void *lbrt_data_alloc(int64_t nbytes) {
  if (nbytes < 0 || (uint64_t)nbytes > SIZE_MAX - LBRT_DATA_ALIGN) return NULL;
  /* aligned_alloc wants a size that is a multiple of the alignment. */
  size_t size = ((size_t)nbytes + LBRT_DATA_ALIGN - 1) / LBRT_DATA_ALIGN * LBRT_DATA_ALIGN;
  if (size == 0) size = LBRT_DATA_ALIGN;
  return aligned_alloc(LBRT_DATA_ALIGN, size);
}

int64_t lbrt_dtype_size(int32_t dtype) {
  switch (dtype) {
  case LBRT_DTYPE_U8:
  case LBRT_DTYPE_I8:
  case LBRT_DTYPE_BOOL: return 1;
  case LBRT_DTYPE_U16:
  case LBRT_DTYPE_I16:
  case LBRT_DTYPE_F16:
  case LBRT_DTYPE_BF16: return 2;
  case LBRT_DTYPE_F32:
  case LBRT_DTYPE_I32:
  case LBRT_DTYPE_U32: return 4;
  case LBRT_DTYPE_I64:
  case LBRT_DTYPE_U64:
  case LBRT_DTYPE_F64: return 8;
  default: return 0;
  }
}

const char *lbrt_dtype_name(int32_t dtype) {
  switch (dtype) {
  case LBRT_DTYPE_F32: return "f32";
  case LBRT_DTYPE_U8: return "u8";
  case LBRT_DTYPE_I8: return "i8";
  case LBRT_DTYPE_U16: return "u16";
  case LBRT_DTYPE_I16: return "i16";
  case LBRT_DTYPE_I32: return "i32";
  case LBRT_DTYPE_I64: return "i64";
  case LBRT_DTYPE_BOOL: return "bool";
  case LBRT_DTYPE_F16: return "f16";
  case LBRT_DTYPE_F64: return "f64";
  case LBRT_DTYPE_U32: return "u32";
  case LBRT_DTYPE_U64: return "u64";
  case LBRT_DTYPE_BF16: return "bf16";
  default: return "?";
  }
}

void lbrt_shape_format(char *buf, size_t len, int32_t dtype, int32_t rank, const int64_t *dims) {
  if (!buf || !len) return;
  size_t pos = 0;
  int n = snprintf(buf, len, "%s[", lbrt_dtype_name(dtype));
  pos = n < 0 ? 0 : (size_t)n;
  for (int32_t i = 0; i < rank && pos < len; i++) {
    n = snprintf(buf + pos, len - pos, "%s%lld", i ? "," : "", (long long)dims[i]);
    pos += n < 0 ? 0 : (size_t)n;
  }
  if (pos < len) snprintf(buf + pos, len - pos, "]");
}

enum lbrt_status lbrt_shape_count(int32_t rank, const int64_t *dims, int64_t elem_size,
                                  int64_t *count, int64_t *nbytes) {
  int64_t c = 1;
  if (rank < 0 || rank > LBRT_MAX_RANK || elem_size < 0) return LBRT_ERR_FORMAT;
  for (int32_t i = 0; i < rank; i++) {
    if (dims[i] < 0 || __builtin_mul_overflow(c, dims[i], &c)) return LBRT_ERR_FORMAT;
  }
  int64_t b;
  if (__builtin_mul_overflow(c, elem_size, &b)) return LBRT_ERR_FORMAT;
  if (count) *count = c;
  if (nbytes) *nbytes = b;
  return LBRT_OK;
}

void lbrt_tensor_free(struct lbrt_tensor *t) {
  if (!t) return;
  free(t->data);
  memset(t, 0, sizeof *t);
}

/* Reads until EOF, growing by what really arrives (for pipes and such). */
static enum lbrt_status read_stream(int fd, const char *path, uint8_t **out, size_t *outlen,
                                    char *err, size_t errlen) {
  size_t cap = 1 << 16, len = 0;
  uint8_t *buf = malloc(cap);
  if (!buf) return lbrt_fail(LBRT_ERR_NOMEM, err, errlen, "%s: out of memory", path);
  for (;;) {
    if (len == cap) {
      if (cap > SIZE_MAX / 2) {
        free(buf);
        return lbrt_fail(LBRT_ERR_NOMEM, err, errlen, "%s: file too large", path);
      }
      uint8_t *nb = realloc(buf, cap * 2);
      if (!nb) {
        free(buf);
        return lbrt_fail(LBRT_ERR_NOMEM, err, errlen, "%s: out of memory", path);
      }
      buf = nb;
      cap *= 2;
    }
    ssize_t r = read(fd, buf + len, cap - len);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      free(buf);
      return lbrt_fail(LBRT_ERR_IO, err, errlen, "%s: %s", path, strerror(e));
    }
    if (r == 0) break;
    len += (size_t)r;
  }
  *out = buf;
  *outlen = len;
  return LBRT_OK;
}

enum lbrt_status lbrt_file_read(const char *path, uint8_t **out, size_t *outlen, char *err,
                                size_t errlen) {
  *out = NULL;
  *outlen = 0;
  int fd = open(path, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return lbrt_fail(LBRT_ERR_IO, err, errlen, "%s: %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0) {
    int e = errno;
    close(fd);
    return lbrt_fail(LBRT_ERR_IO, err, errlen, "%s: %s", path, strerror(e));
  }
  if (S_ISDIR(st.st_mode)) {
    close(fd);
    return lbrt_fail(LBRT_ERR_IO, err, errlen, "%s: is a directory", path);
  }
  if (!S_ISREG(st.st_mode)) {
    enum lbrt_status s = read_stream(fd, path, out, outlen, err, errlen);
    close(fd);
    return s;
  }
  if ((uint64_t)st.st_size >= SIZE_MAX) {
    close(fd);
    return lbrt_fail(LBRT_ERR_NOMEM, err, errlen, "%s: file too large", path);
  }
  size_t size = (size_t)st.st_size;
  uint8_t *buf = malloc(size ? size : 1);
  if (!buf) {
    close(fd);
    return lbrt_fail(LBRT_ERR_NOMEM, err, errlen, "%s: out of memory (%zu bytes)", path, size);
  }
  size_t got = 0;
  while (got < size) {
    ssize_t r = read(fd, buf + got, size - got);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0) {
      int e = errno;
      free(buf);
      close(fd);
      return lbrt_fail(LBRT_ERR_IO, err, errlen, "%s: %s", path, strerror(e));
    }
    if (r == 0) break; /* file shrank while we read: use what we got */
    got += (size_t)r;
  }
  close(fd);
  *out = buf;
  *outlen = got;
  return LBRT_OK;
}

enum lbrt_status lbrt_tensor_read(const char *path, struct lbrt_tensor *t, enum lbrt_format *fmt,
                                  char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  uint8_t *buf;
  size_t len;
  enum lbrt_status s = lbrt_file_read(path, &buf, &len, err, errlen);
  if (s != LBRT_OK) return s;
  /* Decide by content, not by the file name. */
  int is_npy = len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0;
  if (fmt) *fmt = is_npy ? LBRT_FORMAT_NPY : LBRT_FORMAT_PB;
  char msg[512];
  s = is_npy ? lbrt_tensor_npy_decode(buf, len, t, msg, sizeof msg)
             : lbrt_tensor_pb_decode(buf, len, t, msg, sizeof msg);
  free(buf);
  if (s != LBRT_OK)
    return lbrt_fail(s, err, errlen, "%s: %s%s", path, is_npy ? "" : "not a valid TensorProto: ",
                     msg);
  return LBRT_OK;
}

static enum lbrt_status write_all(int fd, const void *p, size_t n, char *err, size_t errlen) {
  const uint8_t *b = p;
  while (n) {
    ssize_t w = write(fd, b, n);
    if (w < 0 && errno == EINTR) continue;
    if (w <= 0) return lbrt_fail(LBRT_ERR_IO, err, errlen, "write failed: %s", strerror(errno));
    b += w;
    n -= (size_t)w;
  }
  return LBRT_OK;
}

enum lbrt_status lbrt_tensor_write_fd(int fd, const struct lbrt_tensor *t, enum lbrt_format fmt,
                                      char *err, size_t errlen) {
  uint8_t hdr[LBRT_HEADER_MAX];
  size_t hlen;
  enum lbrt_status s;
  if (fmt == LBRT_FORMAT_PB)
    s = lbrt_tensor_pb_header(t, hdr, sizeof hdr, &hlen, err, errlen);
  else if (fmt == LBRT_FORMAT_NPY)
    s = lbrt_tensor_npy_header(t, hdr, sizeof hdr, &hlen, err, errlen);
  else
    return lbrt_fail(LBRT_ERR_ARG, err, errlen, "unknown output format %d", (int)fmt);
  if (s != LBRT_OK) return s;
  if (t->nbytes > 0 && !t->data) return lbrt_fail(LBRT_ERR_ARG, err, errlen, "tensor has no data");
  s = write_all(fd, hdr, hlen, err, errlen);
  if (s == LBRT_OK && t->nbytes > 0) s = write_all(fd, t->data, (size_t)t->nbytes, err, errlen);
  return s;
}

enum lbrt_status lbrt_file_create_temp(const char *path, int *fd, char *tmp, size_t tmplen,
                                       char *err, size_t errlen) {
  static _Atomic unsigned counter;
  const char *slash = strrchr(path, '/');
  int dirlen = slash ? (int)(slash - path + 1) : 0;
  const char *base = slash ? slash + 1 : path;
  /* Hidden name so a crash leaves nothing that looks like an output; O_EXCL
   * with pid + counter + retries makes the name ours. */
  for (int attempt = 0; attempt < 100; attempt++) {
    int n = snprintf(tmp, tmplen, "%.*s.%s.tmp.%ld.%u", dirlen, path, base, (long)getpid(),
                     atomic_fetch_add(&counter, 1u));
    if (n < 0 || (size_t)n >= tmplen)
      return lbrt_fail(LBRT_ERR_ARG, err, errlen, "%s: path too long", path);
    *fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0666);
    if (*fd >= 0) return LBRT_OK;
    if (errno != EEXIST) break;
  }
  return lbrt_fail(LBRT_ERR_IO, err, errlen, "%s: cannot create temporary file: %s", path,
                   strerror(errno));
}

enum lbrt_status lbrt_tensor_write(const char *path, const struct lbrt_tensor *t,
                                   enum lbrt_format fmt, char *err, size_t errlen) {
  char tmp[4096], msg[512];
  int fd;
  enum lbrt_status s = lbrt_file_create_temp(path, &fd, tmp, sizeof tmp, err, errlen);
  if (s != LBRT_OK) return s;
  s = lbrt_tensor_write_fd(fd, t, fmt, msg, sizeof msg);
  if (close(fd) != 0 && s == LBRT_OK)
    s = lbrt_fail(LBRT_ERR_IO, msg, sizeof msg, "close failed: %s", strerror(errno));
  if (s == LBRT_OK && rename(tmp, path) != 0)
    s = lbrt_fail(LBRT_ERR_IO, msg, sizeof msg, "rename failed: %s", strerror(errno));
  if (s != LBRT_OK) {
    unlink(tmp);
    return lbrt_fail(s, err, errlen, "%s: %s", path, msg);
  }
  return LBRT_OK;
}

enum lbrt_status lbrt_tensor_check(const struct lbrt_tensor *t, char *err, size_t errlen) {
  int64_t esize = lbrt_dtype_size(t->dtype), nbytes;
  if (esize == 0)
    return lbrt_fail(LBRT_ERR_ARG, err, errlen, "unsupported dtype %d", (int)t->dtype);
  if (lbrt_shape_count(t->rank, t->dims, esize, NULL, &nbytes) != LBRT_OK || nbytes != t->nbytes)
    return lbrt_fail(LBRT_ERR_ARG, err, errlen, "inconsistent tensor shape and size");
  return LBRT_OK;
}
