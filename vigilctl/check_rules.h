/*
 * check_rules.h (vigilctl) - validate Prometheus rule files like promtool.
 */
#ifndef VIGILCTL_CHECK_RULES_H
#define VIGILCTL_CHECK_RULES_H

/* Check each file; print promtool's report. 0 all good, 1 any failed, 2 usage. */
int vg_ctl_check_rules(int nfiles, char **files);

#endif
