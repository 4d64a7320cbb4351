/* tensor_pb.c: ONNX TensorProto (.pb) reader and writer.
 *
 * A hand-written protobuf wire decoder keeps the runtime free of a protobuf
 * library. The file is untrusted: every varint, length and count is checked
 * against the bytes that are really there before anything is allocated.
 * Decoding is two passes: the first validates and counts, the second copies
 * the data into a buffer sized from the validated element count.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/lbrt_internal.h"

/* TensorProto field numbers (onnx.proto). */
enum {
  F_DIMS = 1,
  F_DATA_TYPE = 2,
  F_FLOAT_DATA = 4,
  F_INT32_DATA = 5,
  F_STRING_DATA = 6,
  F_INT64_DATA = 7,
  F_NAME = 8,
  F_RAW_DATA = 9,
  F_DOUBLE_DATA = 10,
  F_UINT64_DATA = 11,
  F_EXTERNAL_DATA = 13,
  F_DATA_LOCATION = 14,
};

enum { WT_VARINT = 0, WT_I64 = 1, WT_LEN = 2, WT_I32 = 5 };

struct cursor {
  const uint8_t *p, *end;
};

/* 0 on success; -1 if the varint runs past the end or is longer than 10 bytes. */
static int get_varint(struct cursor *c, uint64_t *out) {
  uint64_t v = 0;
  for (int i = 0; i < 10; i++) {
    if (c->p >= c->end) return -1;
    uint8_t b = *c->p++;
    if (i == 9 && b > 1) return -1; /* bits past 64 */
    v |= (uint64_t)(b & 0x7f) << (7 * i);
    if (!(b & 0x80)) {
      *out = v;
      return 0;
    }
  }
  return -1;
}

static bool take(struct cursor *c, size_t n, const uint8_t **out) {
  if ((size_t)(c->end - c->p) < n) return false;
  *out = c->p;
  c->p += n;
  return true;
}

/* One decoded field: number, wire type, and its scalar or byte-range value. */
struct field {
  uint32_t num;
  int wt;
  uint64_t v;         /* WT_VARINT, WT_I64, WT_I32 */
  const uint8_t *buf; /* WT_LEN payload (and the fixed-width bytes) */
  size_t len;
};

/* Reads the next field; on failure writes why into err. */
static enum lbrt_status next_field(struct cursor *c, struct field *f, char *err, size_t errlen) {
  uint64_t key;
  if (get_varint(c, &key) != 0) return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "truncated field key");
  if (key >> 3 == 0 || key >> 3 > 0x1fffffff)
    return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "invalid field number %llu",
                     (unsigned long long)(key >> 3));
  f->num = (uint32_t)(key >> 3);
  f->wt = (int)(key & 7);
  f->buf = NULL;
  f->len = 0;
  f->v = 0;
  switch (f->wt) {
  case WT_VARINT:
    if (get_varint(c, &f->v) != 0)
      return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "field %u: truncated varint", f->num);
    return LBRT_OK;
  case WT_I64:
    if (!take(c, 8, &f->buf))
      return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "field %u: truncated fixed64", f->num);
    memcpy(&f->v, f->buf, 8);
    f->len = 8;
    return LBRT_OK;
  case WT_I32: {
    uint32_t v32;
    if (!take(c, 4, &f->buf))
      return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "field %u: truncated fixed32", f->num);
    memcpy(&v32, f->buf, 4);
    f->v = v32;
    f->len = 4;
    return LBRT_OK;
  }
  case WT_LEN: {
    uint64_t len;
    if (get_varint(c, &len) != 0)
      return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "field %u: truncated length", f->num);
    if (len > (uint64_t)(c->end - c->p))
      return lbrt_fail(LBRT_ERR_FORMAT, err, errlen,
                       "field %u: length %llu runs past the end of the file", f->num,
                       (unsigned long long)len);
    take(c, (size_t)len, &f->buf);
    f->len = (size_t)len;
    return LBRT_OK;
  }
  case 3:
  case 4:
    return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "field %u: unsupported group wire type %d",
                     f->num, f->wt);
  default:
    return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "field %u: invalid wire type %d", f->num,
                     f->wt);
  }
}

/* Number of varints in a packed payload, or -1 if one is malformed. */
static int64_t count_varints(const uint8_t *buf, size_t len) {
  struct cursor c = {buf, buf + len};
  int64_t n = 0;
  uint64_t v;
  while (c.p < c.end) {
    if (get_varint(&c, &v) != 0) return -1;
    n++;
  }
  return n;
}

/* Which typed field holds a dtype's values (ONNX rules), or 0 for none. */
static uint32_t typed_field_for(int32_t dtype) {
  switch (dtype) {
  case LBRT_DTYPE_F32: return F_FLOAT_DATA;
  case LBRT_DTYPE_I32:
  case LBRT_DTYPE_I16:
  case LBRT_DTYPE_I8:
  case LBRT_DTYPE_U16:
  case LBRT_DTYPE_U8:
  case LBRT_DTYPE_BOOL:
  case LBRT_DTYPE_F16:
  case LBRT_DTYPE_BF16: return F_INT32_DATA;
  case LBRT_DTYPE_I64: return F_INT64_DATA;
  case LBRT_DTYPE_F64: return F_DOUBLE_DATA;
  case LBRT_DTYPE_U32:
  case LBRT_DTYPE_U64: return F_UINT64_DATA;
  default: return 0;
  }
}

static const char *field_name(uint32_t num) {
  switch (num) {
  case F_DIMS: return "dims";
  case F_DATA_TYPE: return "data_type";
  case F_FLOAT_DATA: return "float_data";
  case F_INT32_DATA: return "int32_data";
  case F_INT64_DATA: return "int64_data";
  case F_NAME: return "name";
  case F_RAW_DATA: return "raw_data";
  case F_DOUBLE_DATA: return "double_data";
  case F_UINT64_DATA: return "uint64_data";
  case F_DATA_LOCATION: return "data_location";
  default: return "?";
  }
}

static const char *onnx_dtype_name(int64_t dt) {
  switch (dt) {
  case 8: return "STRING";
  case 14: return "COMPLEX64";
  case 15: return "COMPLEX128";
  case 17: return "FLOAT8E4M3FN";
  case 18: return "FLOAT8E4M3FNUZ";
  case 19: return "FLOAT8E5M2";
  case 20: return "FLOAT8E5M2FNUZ";
  case 21: return "UINT4";
  case 22: return "INT4";
  default: return "unknown";
  }
}

/* Typed fields: index into per-field counters. */
static int typed_index(uint32_t num) {
  switch (num) {
  case F_FLOAT_DATA: return 0;
  case F_INT32_DATA: return 1;
  case F_INT64_DATA: return 2;
  case F_DOUBLE_DATA: return 3;
  case F_UINT64_DATA: return 4;
  default: return -1;
  }
}
static const uint32_t typed_fields[5] = {F_FLOAT_DATA, F_INT32_DATA, F_INT64_DATA, F_DOUBLE_DATA,
                                         F_UINT64_DATA};

/* Element width on the wire for packed fixed-width typed fields, 0 for varints. */
static size_t fixed_width(uint32_t num) {
  return num == F_FLOAT_DATA ? 4 : num == F_DOUBLE_DATA ? 8 : 0;
}
static int expected_wt(uint32_t num) {
  return num == F_FLOAT_DATA ? WT_I32 : num == F_DOUBLE_DATA ? WT_I64 : WT_VARINT;
}

/* Stores one wire value into element i of t (little-endian truncation, as
 * protobuf does for narrower ints; f16/bf16 are their bit patterns). */
static void store_elem(struct lbrt_tensor *t, int64_t i, uint64_t v, int64_t esize) {
  uint8_t *dst = (uint8_t *)t->data + i * esize;
  if (t->dtype == LBRT_DTYPE_BOOL) v = v != 0;
  memcpy(dst, &v, (size_t)esize);
}

/* Pass 2: copy the values of typed field `num` into t->data. Validated by pass 1. */
static void fill_typed(const uint8_t *buf, size_t len, uint32_t num, struct lbrt_tensor *t,
                       int64_t esize) {
  struct cursor c = {buf, buf + len};
  struct field f;
  int64_t i = 0;
  size_t fw = fixed_width(num);
  while (c.p < c.end && next_field(&c, &f, NULL, 0) == LBRT_OK) {
    if (f.num != num) continue;
    if (f.wt == WT_LEN) {
      if (fw) {
        /* Packed floats/doubles are already little-endian element bytes. */
        memcpy((uint8_t *)t->data + i * esize, f.buf, f.len);
        i += (int64_t)(f.len / fw);
      } else {
        struct cursor pc = {f.buf, f.buf + f.len};
        uint64_t v;
        while (pc.p < pc.end && get_varint(&pc, &v) == 0) store_elem(t, i++, v, esize);
      }
    } else {
      if (fw)
        memcpy((uint8_t *)t->data + i * esize, f.buf, fw);
      else
        store_elem(t, i, f.v, esize);
      i++;
    }
  }
}

enum lbrt_status lbrt_tensor_pb_decode(const uint8_t *buf, size_t len, struct lbrt_tensor *t,
                                       char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  static const uint8_t empty[1];
  if (!buf) buf = empty, len = 0;
  struct cursor c = {buf, buf + len};
  struct field f;
  int64_t data_type = 0;
  const uint8_t *raw = NULL;
  size_t raw_len = 0;
  bool have_raw = false, have_type = false;
  int64_t typed_count[5] = {0};
  bool typed_present[5] = {false};
  enum lbrt_status s;
  int32_t rank = 0;

  while (c.p < c.end) {
    if ((s = next_field(&c, &f, err, errlen)) != LBRT_OK) goto fail;
    int ti = typed_index(f.num);
    switch (f.num) {
    case F_DIMS:
      if (f.wt == WT_VARINT) {
        if (rank >= LBRT_MAX_RANK) goto too_many_dims;
        t->dims[rank++] = (int64_t)f.v;
      } else if (f.wt == WT_LEN) {
        struct cursor pc = {f.buf, f.buf + f.len};
        uint64_t v;
        while (pc.p < pc.end) {
          if (get_varint(&pc, &v) != 0) {
            s = lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "dims: truncated varint");
            goto fail;
          }
          if (rank >= LBRT_MAX_RANK) goto too_many_dims;
          t->dims[rank++] = (int64_t)v;
        }
      } else {
        goto bad_wire_type;
      }
      break;
    case F_DATA_TYPE:
      if (f.wt != WT_VARINT) goto bad_wire_type;
      data_type = (int64_t)f.v;
      have_type = true;
      break;
    case F_STRING_DATA:
      s = lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen, "string tensors are not supported");
      goto fail;
    case F_NAME: {
      if (f.wt != WT_LEN) goto bad_wire_type;
      size_t n = f.len < LBRT_NAME_MAX - 1 ? f.len : LBRT_NAME_MAX - 1;
      memcpy(t->name, f.buf, n);
      t->name[n] = '\0';
      break;
    }
    case F_RAW_DATA:
      if (f.wt != WT_LEN) goto bad_wire_type;
      raw = f.buf; /* last one wins, as in protobuf */
      raw_len = f.len;
      have_raw = true;
      break;
    case F_EXTERNAL_DATA:
      s = lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen,
                    "tensors with external_data are not supported; save the data inline");
      goto fail;
    case F_DATA_LOCATION:
      if (f.wt != WT_VARINT) goto bad_wire_type;
      if (f.v != 0) {
        s = lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen,
                      "data_location EXTERNAL is not supported; save the data inline");
        goto fail;
      }
      break;
    default:
      if (ti < 0) break; /* unknown or ignored field (segment, doc_string, ...) */
      typed_present[ti] = true;
      if (f.wt == WT_LEN) {
        size_t fw = fixed_width(f.num);
        int64_t n;
        if (fw) {
          if (f.len % fw != 0) {
            s = lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "%s: %zu bytes is not a multiple of %zu",
                          field_name(f.num), f.len, fw);
            goto fail;
          }
          n = (int64_t)(f.len / fw);
        } else if ((n = count_varints(f.buf, f.len)) < 0) {
          s = lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "%s: truncated varint", field_name(f.num));
          goto fail;
        }
        typed_count[ti] += n; /* bounded by the file size: cannot overflow */
      } else if (f.wt == expected_wt(f.num)) {
        typed_count[ti] += 1;
      } else {
        goto bad_wire_type;
      }
      break;
    }
  }

  if (!have_type || data_type == 0) {
    s = lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "data_type is missing");
    goto fail;
  }
  if (data_type < 0 || data_type > INT32_MAX || lbrt_dtype_size((int32_t)data_type) == 0) {
    s = lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen, "unsupported data_type %lld (%s)",
                  (long long)data_type, onnx_dtype_name(data_type));
    goto fail;
  }
  t->dtype = (int32_t)data_type;
  t->rank = rank;
  int64_t esize = lbrt_dtype_size(t->dtype), count;
  for (int32_t i = 0; i < rank; i++) {
    if (t->dims[i] < 0) {
      s = lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "dims[%d] is negative (%lld)", (int)i,
                    (long long)t->dims[i]);
      goto fail;
    }
  }
  if (lbrt_shape_count(rank, t->dims, esize, &count, &t->nbytes) != LBRT_OK) {
    s = lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "dims overflow: the tensor would be too large");
    goto fail;
  }
  char shape[160];
  lbrt_shape_format(shape, sizeof shape, t->dtype, rank, t->dims);

  uint32_t want = typed_field_for(t->dtype);
  for (int k = 0; k < 5; k++) {
    if (!typed_present[k] || typed_count[k] == 0) continue;
    if (have_raw) {
      s = lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "both raw_data and %s are set",
                    field_name(typed_fields[k]));
      goto fail;
    }
    if (typed_fields[k] != want) {
      s = lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "%s cannot hold data_type %s",
                    field_name(typed_fields[k]), lbrt_dtype_name(t->dtype));
      goto fail;
    }
  }
  if (have_raw) {
    if ((uint64_t)raw_len != (uint64_t)t->nbytes) {
      s = lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "raw_data has %zu bytes, %s needs %lld",
                    raw_len, shape, (long long)t->nbytes);
      goto fail;
    }
  } else {
    int64_t have = typed_count[typed_index(want)];
    if (have != count) {
      s = lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "%s has %lld elements, %s needs %lld",
                    field_name(want), (long long)have, shape, (long long)count);
      goto fail;
    }
  }
  /* Only now, with nbytes proven to match what the file holds, allocate. */
  t->data = lbrt_data_alloc(t->nbytes);
  if (!t->data) {
    s = lbrt_fail(LBRT_ERR_NOMEM, err, errlen, "out of memory (%lld bytes)", (long long)t->nbytes);
    goto fail;
  }
  if (have_raw) {
    if (raw_len) memcpy(t->data, raw, raw_len);
    if (t->dtype == LBRT_DTYPE_BOOL) {
      uint8_t *b = t->data;
      for (size_t i = 0; i < raw_len; i++) b[i] = b[i] != 0;
    }
  } else if (count > 0) {
    fill_typed(buf, len, want, t, esize);
  }
  return LBRT_OK;

too_many_dims:
  s = lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen, "rank above %d is not supported", LBRT_MAX_RANK);
  goto fail;
bad_wire_type:
  s = lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "field %u (%s) has unexpected wire type %d", f.num,
                field_name(f.num), f.wt);
fail:
  lbrt_tensor_free(t);
  return s;
}

static size_t put_varint(uint8_t *p, uint64_t v) {
  size_t n = 0;
  while (v >= 0x80) {
    p[n++] = (uint8_t)(v | 0x80);
    v >>= 7;
  }
  p[n++] = (uint8_t)v;
  return n;
}

enum lbrt_status lbrt_tensor_pb_header(const struct lbrt_tensor *t, uint8_t *hdr, size_t cap,
                                       size_t *len, char *err, size_t errlen) {
  enum lbrt_status st = lbrt_tensor_check(t, err, errlen);
  if (st != LBRT_OK) return st;
  size_t namelen = strnlen(t->name, LBRT_NAME_MAX - 1);
  /* Worst case: 8 dims * 11 + 11 + (2 + 2 + name) + 11 bytes. */
  if (cap < 128 + namelen) return lbrt_fail(LBRT_ERR_ARG, err, errlen, "header buffer too small");
  size_t n = 0;
  for (int32_t i = 0; i < t->rank; i++) { /* proto2 default: one unpacked entry per dim */
    hdr[n++] = F_DIMS << 3 | WT_VARINT;
    n += put_varint(hdr + n, (uint64_t)t->dims[i]);
  }
  hdr[n++] = F_DATA_TYPE << 3 | WT_VARINT;
  n += put_varint(hdr + n, (uint64_t)t->dtype);
  if (namelen) {
    hdr[n++] = F_NAME << 3 | WT_LEN;
    n += put_varint(hdr + n, namelen);
    memcpy(hdr + n, t->name, namelen);
    n += namelen;
  }
  hdr[n++] = F_RAW_DATA << 3 | WT_LEN;
  n += put_varint(hdr + n, (uint64_t)t->nbytes);
  *len = n;
  return LBRT_OK;
}
