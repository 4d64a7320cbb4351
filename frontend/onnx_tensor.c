/* onnx_tensor.c: tensor data from ONNX files into graph blobs.
 *
 * A TensorProto stores its elements in one of: raw_data (little-endian bytes),
 * a typed repeated field (float_data, int32_data, int64_data, double_data,
 * uint64_data; int32_data also carries int8/uint8/int16/uint16/bool and the
 * uint16 bit patterns of f16/bf16), or an external file (data_location =
 * EXTERNAL, external_data keys location/offset/length). Every size is checked
 * against the element count and opt->max_tensor_bytes before allocating; the
 * data is always copied out of protobuf memory.
 *
 * External files resolve inside the model's folder only: absolute paths,
 * `..` components that climb out of it and symlinks that resolve outside it
 * are refused.
 *
 * --bind files are .npy (recognized by their magic) or a serialized TensorProto.
 */
#include "frontend/fe_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if !defined(__BYTE_ORDER__) || __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "raw_data and .npy are little-endian; add byte swapping for this host"
#endif

void *fe_alloc(size_t size) {
  size_t rounded = (size + 63) & ~(size_t)63;
  if (rounded < size) return NULL;
  if (!rounded) rounded = 64;
  void *p = aligned_alloc(64, rounded);
  if (p) memset(p, 0, rounded);
  return p;
}

enum lb_status fe_read_file(struct lb_diag *d, const char *path, int64_t limit, void **data,
                            size_t *len) {
  *data = NULL;
  *len = 0;
  /* O_NONBLOCK: a FIFO or device given as the model must not block the open */
  int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0) return lb_diag_error(d, LB_ERR_IO, NULL, "cannot open \"%s\": %s", path, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return lb_diag_error(d, LB_ERR_IO, NULL, "\"%s\" is not a regular file", path);
  }
  if (st.st_size > limit) {
    close(fd);
    return lb_diag_error(d, LB_ERR_LIMIT, NULL, "\"%s\" is %lld bytes, over the limit of %lld",
                         path, (long long)st.st_size, (long long)limit);
  }
  size_t n = (size_t)st.st_size;
  unsigned char *buf = malloc(n ? n : 1);
  if (!buf) {
    close(fd);
    return lb_diag_error(d, LB_ERR_LIMIT, NULL, "out of memory reading \"%s\"", path);
  }
  size_t got = 0;
  while (got < n) {
    ssize_t r = read(fd, buf + got, n - got);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      free(buf);
      close(fd);
      return lb_diag_error(d, LB_ERR_IO, NULL, "cannot read \"%s\"%s%s", path, r < 0 ? ": " : "",
                           r < 0 ? strerror(errno) : " (file shrank while reading)");
    }
    got += (size_t)r;
  }
  close(fd);
  *data = buf;
  *len = n;
  return LB_OK;
}

/* ---- external data ------------------------------------------------------------- */

/* Strict non-negative decimal. */
static bool parse_u64(const char *s, int64_t *out) {
  if (!s || !*s) return false;
  int64_t v = 0;
  for (; *s; s++) {
    if (*s < '0' || *s > '9') return false;
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s - '0', &v)) return false;
  }
  *out = v;
  return true;
}

/* A relative path whose `..` components never climb above its start. */
static bool path_stays_inside(const char *loc) {
  int depth = 0;
  const char *p = loc;
  while (*p) {
    const char *q = strchr(p, '/');
    size_t n = q ? (size_t)(q - p) : strlen(p);
    if (n == 2 && p[0] == '.' && p[1] == '.') {
      if (--depth < 0) return false;
    } else if (n > 0 && !(n == 1 && p[0] == '.')) {
      depth++;
    }
    p += n;
    if (*p == '/') p++;
  }
  return true;
}

static enum lb_status read_external(struct fe_ctx *c, const Onnx__TensorProto *t,
                                    const char *what, size_t nbytes, void *dst) {
  struct lb_diag *d = c->d;
  const char *loc = NULL, *off_s = NULL, *len_s = NULL;
  for (size_t i = 0; i < t->n_external_data; i++) {
    const Onnx__StringStringEntryProto *e = t->external_data[i];
    if (!e->key) continue;
    if (strcmp(e->key, "location") == 0) loc = e->value;
    else if (strcmp(e->key, "offset") == 0) off_s = e->value;
    else if (strcmp(e->key, "length") == 0) len_s = e->value;
    /* "checksum" and unknown keys are ignored */
  }
  if (!loc || !*loc)
    return lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: external data has no location", what);
  int64_t offset = 0, length = (int64_t)nbytes;
  if (off_s && !parse_u64(off_s, &offset))
    return lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: bad external data offset \"%s\"", what, off_s);
  if (len_s && !parse_u64(len_s, &length))
    return lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: bad external data length \"%s\"", what, len_s);
  if (length != (int64_t)nbytes)
    return lb_diag_error(d, LB_ERR_INVALID, NULL,
                         "%s: external data length %lld does not match the tensor's %zu bytes",
                         what, (long long)length, nbytes);
  if (!c->base_dir)
    return lb_diag_error(d, LB_ERR_INVALID, NULL,
                         "%s: external data \"%s\" but the model was not loaded from a folder",
                         what, loc);
  if (loc[0] == '/')
    return lb_diag_error(d, LB_ERR_INVALID, NULL,
                         "%s: external data location \"%s\" is an absolute path; it must be "
                         "relative to the model's folder", what, loc);
  if (!path_stays_inside(loc))
    return lb_diag_error(d, LB_ERR_INVALID, NULL,
                         "%s: external data location \"%s\" leaves the model's folder", what, loc);

  size_t plen = strlen(c->base_dir) + strlen(loc) + 2;
  char *joined = malloc(plen);
  if (!joined) return lb_diag_error(d, LB_ERR_LIMIT, NULL, "out of memory");
  snprintf(joined, plen, "%s/%s", c->base_dir, loc);
  char base_real[PATH_MAX], file_real[PATH_MAX];
  if (!realpath(c->base_dir, base_real)) {
    free(joined);
    return lb_diag_error(d, LB_ERR_IO, NULL, "cannot resolve the model's folder \"%s\": %s",
                         c->base_dir, strerror(errno));
  }
  if (!realpath(joined, file_real)) {
    enum lb_status st = lb_diag_error(d, LB_ERR_IO, NULL, "%s: cannot open external data \"%s\": %s",
                                      what, joined, strerror(errno));
    free(joined);
    return st;
  }
  free(joined);
  size_t bl = strlen(base_real);
  bool inside = strncmp(file_real, base_real, bl) == 0 &&
                (file_real[bl] == '/' || (bl == 1 && base_real[0] == '/'));
  if (!inside)
    return lb_diag_error(d, LB_ERR_INVALID, NULL,
                         "%s: external data \"%s\" resolves outside the model's folder (to \"%s\")",
                         what, loc, file_real);

  int fd = open(file_real, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd < 0)
    return lb_diag_error(d, LB_ERR_IO, NULL, "%s: cannot open external data \"%s\": %s", what,
                         file_real, strerror(errno));
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    close(fd);
    return lb_diag_error(d, LB_ERR_IO, NULL, "%s: external data \"%s\" is not a regular file",
                         what, loc);
  }
  int64_t end;
  if (__builtin_add_overflow(offset, length, &end) || end > (int64_t)st.st_size) {
    close(fd);
    return lb_diag_error(d, LB_ERR_INVALID, NULL,
                         "%s: external data \"%s\" is %lld bytes, too short for offset %lld + "
                         "length %lld", what, loc, (long long)st.st_size, (long long)offset,
                         (long long)length);
  }
  size_t got = 0;
  while (got < nbytes) {
    ssize_t r = pread(fd, (char *)dst + got, nbytes - got, (off_t)(offset + (int64_t)got));
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      close(fd);
      return lb_diag_error(d, LB_ERR_IO, NULL, "%s: cannot read external data \"%s\"", what, loc);
    }
    got += (size_t)r;
  }
  close(fd);
  return LB_OK;
}

/* ---- TensorProto ----------------------------------------------------------------- */

static enum lb_status count_mismatch(struct lb_diag *d, const char *what, const char *field,
                                     size_t have, int64_t want) {
  return lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: %s has %zu elements, the shape needs %lld",
                       what, field, have, (long long)want);
}

enum { ONNX_UINT4 = 21, ONNX_INT4 = 22 };

/* An int4/uint4 tensor (two elements per byte, low nibble first, in raw_data,
 * external data or int32_data) loaded unpacked as i8/u8; its name is recorded
 * in c->narrow_bits so that DequantizeLinear knows the codes have 4 bits. */
static enum lb_status load_4bit(struct fe_ctx *c, const Onnx__TensorProto *t, const char *what,
                                struct lb_type *type, void **data) {
  struct lb_diag *d = c->d;
  bool is_signed = t->data_type == ONNX_INT4;
  if (t->n_dims > LB_MAX_RANK)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "%s: rank %zu is over the maximum of %d", what,
                         t->n_dims, LB_MAX_RANK);
  type->dtype = is_signed ? LB_DTYPE_I8 : LB_DTYPE_U8;
  type->shape.rank = (int32_t)t->n_dims;
  for (size_t i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 0)
      return lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: negative dim %lld", what, (long long)t->dims[i]);
    type->shape.dims[i] = t->dims[i];
  }
  int64_t numel;
  if (!lb_shape_numel_checked(&type->shape, c->max_bytes, &numel))
    return lb_diag_error(d, LB_ERR_LIMIT, NULL, "%s: tensor is larger than the limit of %lld bytes", what,
                         (long long)c->max_bytes);
  size_t packed = (size_t)(numel + 1) / 2;
  unsigned char *buf = fe_alloc((size_t)numel), *src = fe_alloc(packed);
  if (!buf || !src) {
    free(buf);
    free(src);
    return lb_diag_error(d, LB_ERR_LIMIT, NULL, "%s: out of memory for %lld elements", what, (long long)numel);
  }
  enum lb_status st = LB_OK;
  if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
    st = read_external(c, t, what, packed, src);
  } else if (t->has_raw_data) {
    if (t->raw_data.len != packed)
      st = lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: raw_data has %zu bytes, %lld 4-bit elements need %zu", what,
                         t->raw_data.len, (long long)numel, packed);
    else if (packed)
      memcpy(src, t->raw_data.data, packed);
  } else if (t->n_int32_data != packed) {
    st = count_mismatch(d, what, "int32_data (two 4-bit elements each)", t->n_int32_data, (int64_t)packed);
  } else {
    for (size_t i = 0; i < packed; i++) src[i] = (unsigned char)t->int32_data[i];
  }
  for (int64_t i = 0; st == LB_OK && i < numel; i++) {
    int v = (src[i / 2] >> (4 * (i % 2))) & 0xf;
    buf[i] = (unsigned char)(is_signed && v >= 8 ? v - 16 : v);
  }
  free(src);
  if (st != LB_OK) {
    free(buf);
    return st;
  }
  if (t->name && t->name[0]) fe_map_put(&c->narrow_bits, t->name, (void *)(intptr_t)4);
  *data = buf;
  return LB_OK;
}

enum lb_status fe_tensor_load(struct fe_ctx *c, const Onnx__TensorProto *t, const char *what,
                              struct lb_type *type, void **data) {
  struct lb_diag *d = c->d;
  *data = NULL;
  memset(type, 0, sizeof *type);
  int code = t->has_data_type ? t->data_type : 0;
  if (code == ONNX_UINT4 || code == ONNX_INT4) return load_4bit(c, t, what, type, data);
  enum lb_dtype dt = lb_dtype_from_onnx(code);
  if (dt == LB_DTYPE_UNDEF)
    return lb_diag_error(d, code == 0 ? LB_ERR_INVALID : LB_ERR_UNSUPPORTED, NULL,
                         "%s: unsupported element type %d (TensorProto.DataType)", what, code);
  if (t->segment)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "%s: segmented tensors are not supported",
                         what);
  if (t->n_dims > LB_MAX_RANK)
    return lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "%s: rank %zu is over the maximum of %d",
                         what, t->n_dims, LB_MAX_RANK);
  type->dtype = dt;
  type->shape.rank = (int32_t)t->n_dims;
  for (size_t i = 0; i < t->n_dims; i++) {
    if (t->dims[i] < 0)
      return lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: negative dim %lld", what,
                           (long long)t->dims[i]);
    type->shape.dims[i] = t->dims[i];
  }
  int64_t numel, esize = lb_dtype_traits[dt].size;
  if (!lb_shape_numel_checked(&type->shape, c->max_bytes / esize, &numel))
    return lb_diag_error(d, LB_ERR_LIMIT, NULL,
                         "%s: %s tensor is larger than the limit of %lld bytes", what,
                         lb_dtype_traits[dt].name, (long long)c->max_bytes);
  size_t nbytes = (size_t)(numel * esize);
  unsigned char *buf = fe_alloc(nbytes);
  if (!buf)
    return lb_diag_error(d, LB_ERR_LIMIT, NULL, "%s: out of memory for %zu bytes", what, nbytes);

  enum lb_status st = LB_OK;
  size_t n = (size_t)numel;
  if (t->has_data_location && t->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL) {
    st = read_external(c, t, what, nbytes, buf);
  } else if (t->has_raw_data) {
    if (t->raw_data.len != nbytes)
      st = lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: raw_data has %zu bytes, the %s%s needs %zu",
                         what, t->raw_data.len, lb_dtype_traits[dt].name,
                         type->shape.rank ? " tensor" : " scalar", nbytes);
    else if (nbytes)
      memcpy(buf, t->raw_data.data, nbytes);
  } else {
    switch (dt) {
    case LB_DTYPE_F32:
      if (t->n_float_data != n) st = count_mismatch(d, what, "float_data", t->n_float_data, numel);
      else if (n) memcpy(buf, t->float_data, nbytes);
      break;
    case LB_DTYPE_F64:
      if (t->n_double_data != n) st = count_mismatch(d, what, "double_data", t->n_double_data, numel);
      else if (n) memcpy(buf, t->double_data, nbytes);
      break;
    case LB_DTYPE_I64:
      if (t->n_int64_data != n) st = count_mismatch(d, what, "int64_data", t->n_int64_data, numel);
      else if (n) memcpy(buf, t->int64_data, nbytes);
      break;
    case LB_DTYPE_U64:
    case LB_DTYPE_U32:
      if (t->n_uint64_data != n) {
        st = count_mismatch(d, what, "uint64_data", t->n_uint64_data, numel);
      } else {
        for (size_t i = 0; i < n; i++) {
          if (dt == LB_DTYPE_U64) ((uint64_t *)buf)[i] = t->uint64_data[i];
          else ((uint32_t *)buf)[i] = (uint32_t)t->uint64_data[i];
        }
      }
      break;
    case LB_DTYPE_I32: case LB_DTYPE_I16: case LB_DTYPE_I8: case LB_DTYPE_U16:
    case LB_DTYPE_U8: case LB_DTYPE_BOOL: case LB_DTYPE_F16: case LB_DTYPE_BF16:
      if (t->n_int32_data != n) {
        st = count_mismatch(d, what, "int32_data", t->n_int32_data, numel);
        break;
      }
      for (size_t i = 0; i < n; i++) {
        int32_t v = t->int32_data[i];
        switch (esize) {
        case 4: ((int32_t *)buf)[i] = v; break;
        case 2: ((uint16_t *)buf)[i] = (uint16_t)v; break;
        default: buf[i] = dt == LB_DTYPE_BOOL ? (v != 0) : (unsigned char)v; break;
        }
      }
      break;
    default:
      st = lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "%s: no data field for element type %d",
                         what, code);
      break;
    }
  }
  if (st != LB_OK) {
    free(buf);
    return st;
  }
  *data = buf;
  return LB_OK;
}

/* ---- --bind files ------------------------------------------------------------------ */

static const struct {
  const char *descr; /* without the byte-order character */
  enum lb_dtype dtype;
} npy_types[] = {
    {"f4", LB_DTYPE_F32}, {"f8", LB_DTYPE_F64}, {"f2", LB_DTYPE_F16}, {"i8", LB_DTYPE_I64},
    {"i4", LB_DTYPE_I32}, {"i2", LB_DTYPE_I16}, {"i1", LB_DTYPE_I8},  {"u1", LB_DTYPE_U8},
    {"u2", LB_DTYPE_U16}, {"u4", LB_DTYPE_U32}, {"u8", LB_DTYPE_U64}, {"b1", LB_DTYPE_BOOL},
};

/* Finds `'key':` in the header dict and returns the position after the colon. */
static const char *npy_key(const char *h, const char *key) {
  char pat[32];
  snprintf(pat, sizeof pat, "'%s'", key);
  const char *p = strstr(h, pat);
  if (!p) return NULL;
  p += strlen(pat);
  while (*p == ' ') p++;
  if (*p != ':') return NULL;
  p++;
  while (*p == ' ') p++;
  return p;
}

/* The exact subset numpy writes: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), } */
static enum lb_status npy_parse(struct fe_ctx *c, const char *path, const unsigned char *buf,
                                size_t len, struct lb_type *type, void **data) {
  struct lb_diag *d = c->d;
  if (len < 10 || buf[6] < 1 || buf[6] > 3)
    return lb_diag_error(d, LB_ERR_PARSE, NULL, "%s: unsupported .npy version", path);
  size_t hlen, hoff;
  if (buf[6] == 1) {
    hlen = (size_t)buf[8] | (size_t)buf[9] << 8;
    hoff = 10;
  } else {
    if (len < 12) return lb_diag_error(d, LB_ERR_PARSE, NULL, "%s: truncated .npy header", path);
    hlen = (size_t)buf[8] | (size_t)buf[9] << 8 | (size_t)buf[10] << 16 | (size_t)buf[11] << 24;
    hoff = 12;
  }
  if (hlen > len - hoff)
    return lb_diag_error(d, LB_ERR_PARSE, NULL, "%s: truncated .npy header", path);
  char *h = malloc(hlen + 1);
  if (!h) return lb_diag_error(d, LB_ERR_LIMIT, NULL, "out of memory");
  memcpy(h, buf + hoff, hlen);
  h[hlen] = 0;
  enum lb_status st = LB_OK;
  const char *p = npy_key(h, "descr");
  const char *fo = npy_key(h, "fortran_order");
  const char *sh = npy_key(h, "shape");
  enum lb_dtype dt = LB_DTYPE_UNDEF;
  if (!p || !fo || !sh || (*p != '\'' && *p != '"')) {
    st = lb_diag_error(d, LB_ERR_PARSE, NULL, "%s: malformed .npy header", path);
    goto done;
  }
  char bo = p[1];
  for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++) {
    size_t dl = strlen(npy_types[i].descr);
    if (strncmp(p + 2, npy_types[i].descr, dl) == 0 && p[2 + dl] == p[0]) dt = npy_types[i].dtype;
  }
  bool one_byte = dt == LB_DTYPE_I8 || dt == LB_DTYPE_U8 || dt == LB_DTYPE_BOOL;
  bool order_ok = bo == '<' || bo == '|' || bo == '=' || (bo == '>' && one_byte);
  if (dt == LB_DTYPE_UNDEF || !order_ok) {
    st = lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "%s: unsupported .npy dtype", path);
    goto done;
  }
  if (strncmp(fo, "False", 5) != 0) {
    st = lb_diag_error(d, LB_ERR_UNSUPPORTED, NULL, "%s: fortran-order .npy is not supported", path);
    goto done;
  }
  if (*sh != '(') {
    st = lb_diag_error(d, LB_ERR_PARSE, NULL, "%s: malformed .npy shape", path);
    goto done;
  }
  sh++;
  memset(type, 0, sizeof *type);
  type->dtype = dt;
  for (;;) {
    while (*sh == ' ' || *sh == ',') sh++;
    if (*sh == ')') break;
    int64_t v = 0;
    int digits = 0;
    while (*sh >= '0' && *sh <= '9') {
      if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *sh - '0', &v)) {
        digits = -1000;
        break;
      }
      sh++;
      digits++;
    }
    if (*sh == 'L') sh++;
    if (digits <= 0 || type->shape.rank >= LB_MAX_RANK) {
      st = lb_diag_error(d, LB_ERR_PARSE, NULL, "%s: malformed or too large .npy shape", path);
      goto done;
    }
    type->shape.dims[type->shape.rank++] = v;
  }
  int64_t numel, es = lb_dtype_traits[dt].size;
  if (!lb_shape_numel_checked(&type->shape, c->max_bytes / es, &numel)) {
    st = lb_diag_error(d, LB_ERR_LIMIT, NULL, "%s: tensor over the size limit", path);
    goto done;
  }
  size_t nbytes = (size_t)(numel * es);
  if (len - hoff - hlen != nbytes) {
    st = lb_diag_error(d, LB_ERR_INVALID, NULL, "%s: .npy holds %zu data bytes, its shape needs %zu",
                       path, len - hoff - hlen, nbytes);
    goto done;
  }
  *data = fe_alloc(nbytes);
  if (!*data) {
    st = lb_diag_error(d, LB_ERR_LIMIT, NULL, "out of memory");
    goto done;
  }
  if (nbytes) memcpy(*data, buf + hoff + hlen, nbytes);
done:
  free(h);
  return st;
}

enum lb_status fe_bind_load(struct fe_ctx *c, const char *path, struct lb_type *type,
                            void **data) {
  *data = NULL;
  void *buf;
  size_t len;
  /* a TensorProto file is at most its data plus a small header */
  int64_t limit = c->max_bytes > INT64_MAX - (1 << 20) ? INT64_MAX : c->max_bytes + (1 << 20);
  enum lb_status st = fe_read_file(c->d, path, limit, &buf, &len);
  if (st != LB_OK) return st;
  if (len >= 6 && memcmp(buf, "\x93NUMPY", 6) == 0) {
    st = npy_parse(c, path, buf, len, type, data);
    free(buf);
    return st;
  }
  Onnx__TensorProto *t = onnx__tensor_proto__unpack(NULL, len, buf);
  free(buf);
  if (!t)
    return lb_diag_error(c->d, LB_ERR_PARSE, NULL,
                         "%s: not a .npy file nor a valid TensorProto (protobuf parse failed)", path);
  size_t wl = strlen(path) + 16;
  char *what = malloc(wl);
  if (!what) abort();
  snprintf(what, wl, "\"%s\"", path);
  const char *saved = c->base_dir;
  c->base_dir = NULL; /* a bound value may not point at other files */
  st = fe_tensor_load(c, t, what, type, data);
  c->base_dir = saved;
  free(what);
  onnx__tensor_proto__free_unpacked(t, NULL);
  return st;
}
