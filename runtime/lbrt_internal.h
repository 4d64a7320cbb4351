/* lbrt_internal.h: helpers shared by the runtime's .c files (not installed). */
#ifndef LBRT_INTERNAL_H
#define LBRT_INTERNAL_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include "runtime/lbrt.h"

/* The file formats and the ABI are little-endian; so are all our targets. */
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "lbrt assumes a little-endian host"
#endif

#if defined(__GNUC__)
#define LBRT_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define LBRT_PRINTF(a, b)
#endif

/* Formats into err (if any) and returns st, so callers can `return lbrt_fail(...)`. */
enum lbrt_status lbrt_fail(enum lbrt_status st, char *err, size_t errlen, const char *fmt, ...)
    LBRT_PRINTF(4, 5);

/* LBRT_DATA_ALIGN-aligned buffer of at least max(nbytes, 1) bytes, or NULL. */
void *lbrt_data_alloc(int64_t nbytes);

/* Checks that t's dtype is known and its dims agree with t->nbytes (before
 * writing it); LBRT_ERR_ARG with a message otherwise. */
enum lbrt_status lbrt_tensor_check(const struct lbrt_tensor *t, char *err, size_t errlen);

#endif
