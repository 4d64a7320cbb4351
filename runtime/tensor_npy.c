/* tensor_npy.c: NumPy .npy reader and writer (format versions 1.0, 2.0, 3.0).
 *
 * The header is a Python dict literal; we parse the exact subset numpy
 * writes ({'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }) and
 * reject anything else. Sizes are checked against the bytes in the file
 * before any allocation.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "runtime/lbrt_internal.h"

static const struct {
  const char *descr; /* without the byte-order character */
  int32_t dtype;
} npy_types[] = {
    {"f4", LBRT_DTYPE_F32}, {"f8", LBRT_DTYPE_F64},  {"f2", LBRT_DTYPE_F16},
    {"i8", LBRT_DTYPE_I64}, {"i4", LBRT_DTYPE_I32},  {"i2", LBRT_DTYPE_I16},
    {"i1", LBRT_DTYPE_I8},  {"u1", LBRT_DTYPE_U8},   {"u2", LBRT_DTYPE_U16},
    {"u4", LBRT_DTYPE_U32}, {"u8", LBRT_DTYPE_U64},  {"b1", LBRT_DTYPE_BOOL},
};

struct hparser {
  const char *p, *end;
};

static void skip_ws(struct hparser *h) {
  while (h->p < h->end && (*h->p == ' ' || *h->p == '\t' || *h->p == '\n' || *h->p == '\r'))
    h->p++;
}

static bool eat(struct hparser *h, char ch) {
  skip_ws(h);
  if (h->p < h->end && *h->p == ch) {
    h->p++;
    return true;
  }
  return false;
}

/* A '...' or "..." literal without escapes, copied into out (NUL-terminated). */
static bool parse_str(struct hparser *h, char *out, size_t cap) {
  skip_ws(h);
  if (h->p >= h->end || (*h->p != '\'' && *h->p != '"')) return false;
  char q = *h->p++;
  size_t n = 0;
  while (h->p < h->end && *h->p != q) {
    if (*h->p == '\\' || n + 1 >= cap) return false;
    out[n++] = *h->p++;
  }
  if (h->p >= h->end) return false;
  h->p++;
  out[n] = '\0';
  return true;
}

static bool parse_word(struct hparser *h, const char *w) {
  skip_ws(h);
  size_t n = strlen(w);
  if ((size_t)(h->end - h->p) < n || memcmp(h->p, w, n) != 0) return false;
  h->p += n;
  return true;
}

/* Non-negative decimal integer (Python 2 files may append 'L'); -1 if bad, -2 on overflow. */
static int parse_dim(struct hparser *h, int64_t *out) {
  skip_ws(h);
  int64_t v = 0;
  int digits = 0;
  while (h->p < h->end && *h->p >= '0' && *h->p <= '9') {
    if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *h->p - '0', &v)) return -2;
    h->p++;
    digits++;
  }
  if (!digits) return -1;
  if (h->p < h->end && *h->p == 'L') h->p++;
  *out = v;
  return 0;
}

static enum lbrt_status npy_decode(const uint8_t *buf, size_t len, struct lbrt_tensor *t,
                                   char *err, size_t errlen) {
  if (len < 10 || memcmp(buf, "\x93NUMPY", 6) != 0)
    return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "not a .npy file (bad magic)");
  uint8_t major = buf[6], minor = buf[7];
  if (major < 1 || major > 3 || minor != 0)
    return lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen, "unsupported .npy version %u.%u", major,
                     minor);
  size_t hstart = major == 1 ? 10 : 12;
  if (len < hstart) return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "truncated .npy header");
  uint64_t hlen = major == 1 ? (uint64_t)buf[8] | (uint64_t)buf[9] << 8
                             : (uint64_t)buf[8] | (uint64_t)buf[9] << 8 |
                                   (uint64_t)buf[10] << 16 | (uint64_t)buf[11] << 24;
  if (hlen > len - hstart)
    return lbrt_fail(LBRT_ERR_FORMAT, err, errlen,
                     ".npy header length %llu runs past the end of the file",
                     (unsigned long long)hlen);
  struct hparser h = {(const char *)buf + hstart, (const char *)buf + hstart + hlen};
  /* numpy terminates the header with '\n'; a NUL inside would be suspicious. */
  if (hlen == 0 || h.end[-1] != '\n' || memchr(h.p, '\0', hlen))
    return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "malformed .npy header");

  char descr[16] = "";
  bool fortran = false, have_descr = false, have_fortran = false, have_shape = false;
  int32_t rank = 0;
  if (!eat(&h, '{')) goto bad_dict;
  while (!eat(&h, '}')) {
    char key[32];
    if (!parse_str(&h, key, sizeof key) || !eat(&h, ':')) goto bad_dict;
    if (strcmp(key, "descr") == 0 && !have_descr) {
      if (!parse_str(&h, descr, sizeof descr)) {
        return lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen,
                         "unsupported .npy descr (structured or unknown dtype)");
      }
      have_descr = true;
    } else if (strcmp(key, "fortran_order") == 0 && !have_fortran) {
      if (parse_word(&h, "True"))
        fortran = true;
      else if (!parse_word(&h, "False"))
        goto bad_dict;
      have_fortran = true;
    } else if (strcmp(key, "shape") == 0 && !have_shape) {
      if (!eat(&h, '(')) goto bad_dict;
      while (!eat(&h, ')')) {
        int64_t d;
        int r = parse_dim(&h, &d);
        if (r == -2)
          return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, ".npy shape has a dimension too large");
        if (r != 0) goto bad_dict;
        if (rank >= LBRT_MAX_RANK)
          return lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen, "rank above %d is not supported",
                           LBRT_MAX_RANK);
        t->dims[rank++] = d;
        if (!eat(&h, ',')) {
          if (!eat(&h, ')')) goto bad_dict;
          /* A 1-tuple needs its trailing comma in Python: "(3)" is an int. */
          if (rank == 1) goto bad_dict;
          break;
        }
      }
      have_shape = true;
    } else {
      goto bad_dict;
    }
    if (!eat(&h, ',')) {
      if (!eat(&h, '}')) goto bad_dict;
      break;
    }
  }
  skip_ws(&h);
  if (h.p != h.end || !have_descr || !have_fortran || !have_shape) goto bad_dict;

  if (fortran)
    return lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen,
                     "fortran_order arrays are not supported; save with np.ascontiguousarray");
  size_t dl = strlen(descr);
  int32_t dtype = 0;
  if (dl == 3) {
    for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
      if (strcmp(descr + 1, npy_types[i].descr) == 0) dtype = npy_types[i].dtype;
  }
  if (!dtype)
    return lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen, "unsupported .npy dtype '%s'", descr);
  int64_t esize = lbrt_dtype_size(dtype);
  char order = descr[0];
  if (esize == 1 ? (order != '|' && order != '<' && order != '>') : order == '|')
    return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "invalid .npy dtype '%s'", descr);
  if (esize > 1 && order == '>')
    return lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen,
                     "big-endian .npy arrays ('%s') are not supported; save with "
                     "arr.astype(arr.dtype.newbyteorder('<'))",
                     descr);
  if (esize > 1 && order != '<')
    return lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen, "unsupported .npy dtype '%s'", descr);

  int64_t count;
  if (lbrt_shape_count(rank, t->dims, esize, &count, &t->nbytes) != LBRT_OK)
    return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, ".npy shape overflows: array too large");
  t->dtype = dtype;
  t->rank = rank;
  size_t data_off = hstart + (size_t)hlen, avail = len - data_off;
  char shape[160];
  lbrt_shape_format(shape, sizeof shape, dtype, rank, t->dims);
  if ((uint64_t)t->nbytes != (uint64_t)avail) {
    return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "%s needs %lld data bytes, the file has %zu (%s)",
                     shape, (long long)t->nbytes, avail,
                     (uint64_t)t->nbytes > avail ? "truncated" : "trailing bytes");
  }
  t->data = lbrt_data_alloc(t->nbytes);
  if (!t->data) return lbrt_fail(LBRT_ERR_NOMEM, err, errlen, "out of memory");
  if (avail) memcpy(t->data, buf + data_off, avail);
  if (dtype == LBRT_DTYPE_BOOL) {
    uint8_t *b = t->data;
    for (size_t i = 0; i < avail; i++) b[i] = b[i] != 0;
  }
  return LBRT_OK;

bad_dict:
  return lbrt_fail(LBRT_ERR_FORMAT, err, errlen, "malformed .npy header dict");
}

enum lbrt_status lbrt_tensor_npy_decode(const uint8_t *buf, size_t len, struct lbrt_tensor *t,
                                        char *err, size_t errlen) {
  memset(t, 0, sizeof *t);
  enum lbrt_status s = npy_decode(buf, len, t, err, errlen);
  if (s != LBRT_OK) memset(t, 0, sizeof *t); /* t->data is only set on success */
  return s;
}

enum lbrt_status lbrt_tensor_npy_header(const struct lbrt_tensor *t, uint8_t *hdr, size_t cap,
                                        size_t *len, char *err, size_t errlen) {
  enum lbrt_status st = lbrt_tensor_check(t, err, errlen);
  if (st != LBRT_OK) return st;
  const char *descr = NULL;
  for (size_t i = 0; i < sizeof npy_types / sizeof npy_types[0]; i++)
    if (npy_types[i].dtype == t->dtype) descr = npy_types[i].descr;
  if (!descr)
    return lbrt_fail(LBRT_ERR_UNSUPPORTED, err, errlen, "%s cannot be stored in .npy; use .pb",
                     lbrt_dtype_name(t->dtype));

  char dict[512];
  int n = snprintf(dict, sizeof dict, "{'descr': '%c%s', 'fortran_order': False, 'shape': (",
                   lbrt_dtype_size(t->dtype) == 1 ? '|' : '<', descr);
  for (int32_t i = 0; i < t->rank; i++)
    n += snprintf(dict + n, sizeof dict - (size_t)n, "%lld%s", (long long)t->dims[i],
                  t->rank == 1 ? "," : i + 1 < t->rank ? ", " : "");
  n += snprintf(dict + n, sizeof dict - (size_t)n, "), }");
  /* Version 1.0; pad with spaces + '\n' so the data starts 64-byte aligned. */
  size_t total = (10 + (size_t)n + 1 + 63) / 64 * 64;
  if (total > cap || total - 10 > 0xffff)
    return lbrt_fail(LBRT_ERR_ARG, err, errlen, "header buffer too small");
  memcpy(hdr, "\x93NUMPY\x01\x00", 8);
  hdr[8] = (uint8_t)((total - 10) & 0xff);
  hdr[9] = (uint8_t)((total - 10) >> 8);
  memcpy(hdr + 10, dict, (size_t)n);
  memset(hdr + 10 + n, ' ', total - 10 - (size_t)n - 1);
  hdr[total - 1] = '\n';
  *len = total;
  return LBRT_OK;
}
