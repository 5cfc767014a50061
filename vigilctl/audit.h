/*
 * audit.h - `vigilctl audit verify|erase`: offline checks and erasure on a
 * collector's audit store (its data directory).
 */
#ifndef VIGIL_VIGILCTL_AUDIT_H
#define VIGIL_VIGILCTL_AUDIT_H

/* `vigilctl audit verify --data-dir DIR [--tenant T]` and
 * `vigilctl audit erase --subject USER_ID --tenant T --data-dir DIR`
 * (argv[0] is "audit"); returns the exit status: 0 intact / erased,
 * 1 when verify found a problem, 2 on usage or I/O errors. */
int vg_ctl_audit_main(int argc, char **argv);

#endif
