/* onnx_wire.c: a depth check on the raw protobuf bytes of a ModelProto.
 *
 * protobuf-c unpacks nested messages recursively with no depth limit, so a
 * hostile file nesting subgraphs (AttributeProto.g) or sequence types
 * (TypeProto.sequence_type.elem_type) a hundred thousand levels deep would
 * overflow the stack. This walk follows only the fields that can nest (the
 * schema below, from onnx.proto) and stops at the limits before unpacking.
 */
#include "frontend/fe_internal.h"

enum wire_msg {
  W_SKIP, W_MODEL, W_GRAPH, W_NODE, W_ATTR, W_VINFO, W_TYPE, W_TYPE_ELEM, W_TYPE_MAP,
  W_TRAINING, W_FUNCTION,
};

enum { WIRE_MAX_DEPTH = 64 }; /* messages nested in messages, all kinds */

/* Which message a length-delimited field of `m` holds (W_SKIP: cannot nest). */
static enum wire_msg wire_child(enum wire_msg m, uint64_t field) {
  switch (m) {
  case W_MODEL: return field == 7 ? W_GRAPH : field == 20 ? W_TRAINING
                     : field == 25 ? W_FUNCTION : W_SKIP;
  case W_TRAINING: return field == 1 || field == 2 ? W_GRAPH : W_SKIP;
  case W_FUNCTION: return field == 7 ? W_NODE : W_SKIP;
  case W_GRAPH: return field == 1 ? W_NODE : field >= 11 && field <= 13 ? W_VINFO : W_SKIP;
  case W_NODE: return field == 5 ? W_ATTR : W_SKIP;
  case W_ATTR: return field == 6 || field == 11 ? W_GRAPH
                      : field == 14 || field == 15 ? W_TYPE : W_SKIP;
  case W_VINFO: return field == 2 ? W_TYPE : W_SKIP;
  case W_TYPE: return field == 4 || field == 9 ? W_TYPE_ELEM : field == 5 ? W_TYPE_MAP : W_SKIP;
  case W_TYPE_ELEM: return field == 1 ? W_TYPE : W_SKIP;
  case W_TYPE_MAP: return field == 2 ? W_TYPE : W_SKIP;
  default: return W_SKIP;
  }
}

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *out) {
  uint64_t v = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (*p >= end) return false;
    uint8_t b = *(*p)++;
    v |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *out = v;
      return true;
    }
  }
  return false;
}

struct wire {
  int32_t max_graph_depth;
  enum lb_status st; /* LB_ERR_PARSE or LB_ERR_LIMIT once failed */
  const char *why;
};

static bool wire_walk(struct wire *w, const uint8_t *p, const uint8_t *end, enum wire_msg m,
                      int depth, int graph_depth) {
  if (depth > WIRE_MAX_DEPTH) {
    w->st = LB_ERR_LIMIT;
    w->why = "messages nested too deeply";
    return false;
  }
  if (m == W_GRAPH && graph_depth > w->max_graph_depth) {
    w->st = LB_ERR_LIMIT;
    w->why = "subgraphs nested too deeply";
    return false;
  }
  while (p < end) {
    uint64_t key, len;
    if (!read_varint(&p, end, &key)) goto bad;
    uint64_t field = key >> 3;
    switch (key & 7) {
    case 0:
      if (!read_varint(&p, end, &len)) goto bad;
      break;
    case 1:
      if (end - p < 8) goto bad;
      p += 8;
      break;
    case 5:
      if (end - p < 4) goto bad;
      p += 4;
      break;
    case 2: {
      if (!read_varint(&p, end, &len) || len > (uint64_t)(end - p)) goto bad;
      enum wire_msg child = wire_child(m, field);
      if (child != W_SKIP &&
          !wire_walk(w, p, p + len, child, depth + 1, graph_depth + (child == W_GRAPH)))
        return false;
      p += len;
      break;
    }
    default: goto bad; /* groups (3, 4) are not used by ONNX; 6, 7 do not exist */
    }
    if (field == 0) goto bad;
  }
  return true;
bad:
  w->st = LB_ERR_PARSE;
  return false;
}

enum lb_status fe_wire_check(const uint8_t *data, size_t len, int32_t max_graph_depth,
                             struct lb_diag *d) {
  struct wire w = {max_graph_depth, LB_OK, NULL};
  /* The main graph is at graph depth 0; its subgraphs at 1, ... */
  if (wire_walk(&w, data, data + len, W_MODEL, 0, -1)) return LB_OK;
  if (w.st == LB_ERR_PARSE)
    return lb_diag_error(d, LB_ERR_PARSE, NULL, "not a valid ONNX model (protobuf parse failed)");
  return lb_diag_error(d, LB_ERR_LIMIT, NULL,
                       "not loading the model: %s (subgraph depth limit %d)", w.why,
                       (int)max_graph_depth);
}
