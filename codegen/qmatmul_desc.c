/* qmatmul_desc.c: lb_qmm_describe (codegen/qmatmul_desc.h), one reader for both
 * qmatmul emitters so that they cannot disagree on what a node says. */
#include "codegen/qmatmul_desc.h"

#include <string.h>

enum lb_status lb_qmm_describe(const struct lb_node *n, struct lb_qmm_desc *out, struct lb_diag *d) {
  const struct lb_value *av = n->inputs[0], *wv = n->inputs[1], *yv = n->outputs[0];
  const struct lb_qparams *qa = av->qparams, *qy = yv->qparams;
  LB_ASSERT(wv->type.shape.rank == 2);
  memset(out, 0, sizeof *out);
  out->K = wv->type.shape.dims[0];
  out->N = wv->type.shape.dims[1];
  out->adt = av->type.dtype;
  out->ydt = yv->type.dtype;
  out->R = out->N ? lb_shape_numel(&yv->type.shape) / out->N : 0;
  out->has_bias = n->n_inputs > 2 && n->inputs[2];
  out->act = lb_node_attr_string(n, "act", "none");
  const char *aq = lb_node_attr_string(n, "a_quant", "none");
  out->none = !strcmp(aq, "none");
  out->dynamic = !strcmp(aq, "dynamic");
  if (out->R == 0 || out->N == 0) return LB_OK;
  if (out->dynamic) {
    out->qlo = -127, out->qhi = 127;
  } else if (!out->none) {
    if (!qa || qa->n != 1)
      return lb_diag_error(d, LB_ERR_INVALID, n, "a_quant=\"static\" needs per-tensor qparams on input 0");
    out->sa = qa->scales[0];
    out->za = qa->zero_points ? qa->zero_points[0] : 0;
    out->qlo = qa->is_unsigned ? 0 : -128;
    out->qhi = qa->is_unsigned ? 255 : 127;
  }
  if (out->ydt != LB_DTYPE_F32) {
    if (!qy || qy->n != 1)
      return lb_diag_error(d, LB_ERR_INVALID, n, "an %s qmatmul output needs per-tensor qparams",
                           lb_dtype_traits[out->ydt].name);
    out->sy = qy->scales[0];
    out->zy = qy->zero_points ? qy->zero_points[0] : 0;
  }
  return LB_OK;
}
