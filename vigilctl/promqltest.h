/*
 * promqltest.h - `vigilctl promql-test`: run Prometheus promqltest scripts
 * (load / clear / eval ... with expected results) in-process against the
 * PromQL engine over a scratch vg_tsdb_t, and report passed / failed /
 * skipped per file. The script language is upstream's
 * (promql/promqltest/README.md), so the conformance suite of Prometheus
 * runs unchanged.
 */
#ifndef VIGIL_VIGILCTL_PROMQLTEST_H
#define VIGIL_VIGILCTL_PROMQLTEST_H

#include <stddef.h>

/* Outcome counts of one or more script files. */
typedef struct vg_pqt_counts {
    size_t passed, failed, skipped;
} vg_pqt_counts;

/* `vigilctl promql-test [-v] [--thresholds FILE] FILE...` (argv[0] is the
 * command name). Prints one line per file and a total line; returns the
 * process exit status: 0 when nothing failed (or, with --thresholds, when
 * every file's pass rate is at least its recorded figure), 1 otherwise,
 * 2 on a usage error. */
int vg_promqltest_main(int argc, char **argv);

/* Run one script held in memory (name is used in messages). Adds to *c.
 * verbose: print each failure with its line, query, expected and got.
 * Returns 0, or -1 when the script could not be run at all (ENOMEM). */
int vg_promqltest_run(const char *name, const char *text, size_t len, int verbose,
                      vg_pqt_counts *c);

#endif
