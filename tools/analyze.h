/* analyze.h: `lowbit analyze` (tools/analyze.c), per-layer sensitivity to
 * weight quantization on calibration samples (codegen/sensitivity.h). */
#ifndef LB_TOOLS_ANALYZE_H
#define LB_TOOLS_ANALYZE_H

/* Usage text of the subcommand (part of `lowbit --help`). */
extern const char lb_analyze_usage[];

/* argv holds the arguments after "analyze". Returns the exit status: 0, 1 (the
 * model or samples could not be analyzed) or 2 (usage; printed). */
int lb_cmd_analyze(int argc, char **argv);

#endif
