/* analyze.h: `lowbit analyze` (tools/analyze.c), per-layer sensitivity to
 * weight quantization on calibration samples (codegen/sensitivity.h), the
 * mixed-precision plan and its report (tools/report.h). */
#ifndef LB_TOOLS_ANALYZE_H
#define LB_TOOLS_ANALYZE_H

#include "ir/ir.h"

/* Usage text of the subcommand (part of `lowbit --help`). */
extern const char lb_analyze_usage[];

/* argv holds the arguments after "analyze". Returns the exit status: 0, 1 (the
 * model or samples could not be analyzed) or 2 (usage; printed). */
int lb_cmd_analyze(int argc, char **argv);

struct lb_mixed_options;

/* `lowbit compile --quant auto --report FILE`: lb_mixed_run on g (mo's
 * pipeline; its plan-memory runs after the report) with the same report as
 * `lowbit analyze --html`, the chosen model measured against a float copy of
 * g on mo->calib_dir, written to path as HTML. */
enum lb_status lb_analyze_compile_report(struct lb_graph *g, const struct lb_mixed_options *mo, const char *path,
                                         struct lb_diag *d);

#endif
