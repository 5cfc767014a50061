/*
 * audit.c - `vigilctl audit verify|erase`.
 *
 * Both work on the files, not over HTTP, so an auditor can check a copy of
 * the store on another machine. DIR is the collector's data_dir (the store
 * is DIR/audit) or the audit directory itself. Erase opens the store as
 * the collector does, so it takes the store's lock: against a running
 * collector use DELETE /api/v1/audit/subject/{user_id} instead.
 */
#include "audit.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "auditstore/auditstore.h"

static void usage(void)
{
    fprintf(stderr, "usage: vigilctl audit verify --data-dir DIR [--tenant T]\n"
                    "       vigilctl audit erase --subject USER_ID --tenant T --data-dir DIR\n");
}

struct args {
    const char *data_dir, *tenant, *subject;
};

static int parse(int argc, char **argv, struct args *a)
{
    for (int i = 0; i < argc; i++) {
        const char **dst = !strcmp(argv[i], "--data-dir")  ? &a->data_dir
                           : !strcmp(argv[i], "--tenant")  ? &a->tenant
                           : !strcmp(argv[i], "--subject") ? &a->subject
                                                           : NULL;
        if (!dst || i + 1 >= argc) return -1;
        *dst = argv[++i];
    }
    return a->data_dir ? 0 : -1;
}

/* DIR/audit when it exists, else DIR. */
static void store_dir(const char *d, char *out, size_t cap)
{
    struct stat st;
    snprintf(out, cap, "%s/audit", d);
    if (stat(out, &st) != 0 || !S_ISDIR(st.st_mode)) snprintf(out, cap, "%s", d);
}

static int cmd_verify(const struct args *a)
{
    char dir[4096];
    store_dir(a->data_dir, dir, sizeof(dir));
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        fprintf(stderr, "vigilctl audit verify: %s: not a directory\n", dir);
        return 2;
    }
    int problems = 0;
    vg_error err = {0};
    vg_err_t rc = vg_audit_verify(dir, a->tenant, stdout, &problems, &err);
    if (rc) {
        fprintf(stderr, "vigilctl audit verify: %s\n", vg_error_msg(&err, rc));
        return 2;
    }
    if (problems) {
        fprintf(stderr, "audit store NOT intact: %d problem(s)\n", problems);
        return 1;
    }
    printf("audit store intact\n");
    return 0;
}

static int cmd_erase(const struct args *a)
{
    if (!a->subject || !a->tenant) {
        usage();
        return 2;
    }
    char dir[4096];
    store_dir(a->data_dir, dir, sizeof(dir));
    vg_auditstore_opts o = {.dir = dir, .interval_ms = -1, .seal_grace_ms = -1};
    vg_auditstore_t *s = NULL;
    vg_error err = {0};
    uint64_t removed = 0;
    vg_err_t rc = vg_auditstore_open(&o, &s, &err);
    if (!rc) rc = vg_auditstore_erase(s, a->tenant, a->subject, &removed, &err);
    vg_auditstore_free(s);
    if (rc) {
        fprintf(stderr, "vigilctl audit erase: %s\n", vg_error_msg(&err, rc));
        return 2;
    }
    printf("erased %" PRIu64 " records of the subject from tenant %s\n", removed, a->tenant);
    return 0;
}

int vg_ctl_audit_main(int argc, char **argv)
{
    struct args a = {0};
    if (argc < 2 || parse(argc - 2, argv + 2, &a) != 0) {
        usage();
        return 2;
    }
    if (!strcmp(argv[1], "verify")) return cmd_verify(&a);
    if (!strcmp(argv[1], "erase")) return cmd_erase(&a);
    usage();
    return 2;
}
