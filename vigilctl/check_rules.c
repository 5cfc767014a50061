/*
 * check_rules.c (vigilctl) - `vigilctl check rules FILE...`, promtool's twin.
 *
 * Prints what `promtool check rules` prints for each file ("Checking F",
 * then "  SUCCESS: N rules found" or "  FAILED:" and one error per line on
 * stderr) so scripts and CI written for promtool keep working; exits 1 when
 * any file failed. Validation itself lives in rules/rulefile.c, shared with
 * the collector, so what passes here is what the collector will load.
 */
#include <stdio.h>

#include "check_rules.h"
#include "rules/rulefile.h"

static int check_one(const char *path)
{
    vg_rulefile *f = NULL;
    vg_error err = {0};
    printf("Checking %s\n", path);
    vg_err_t rc = vg_rulefile_load(path, &f, &err);
    if (!rc) {
        printf("  SUCCESS: %zu rules found\n\n", vg_rulefile_nrules(f));
        vg_rulefile_free(f);
        return 0;
    }
    fflush(stdout);
    fprintf(stderr, "  FAILED:\n");
    if (!f || !f->nerrors) fprintf(stderr, "%s\n", vg_error_msg(&err, rc));
    for (size_t i = 0; f && i < f->nerrors; i++) fprintf(stderr, "%s\n", f->errors[i]);
    fprintf(stderr, "\n");
    vg_rulefile_free(f);
    return 1;
}

int vg_ctl_check_rules(int nfiles, char **files)
{
    int bad = 0;
    if (nfiles < 1) {
        fprintf(stderr, "usage: vigilctl check rules FILE...\n");
        return 2;
    }
    for (int i = 0; i < nfiles; i++) bad |= check_one(files[i]);
    return bad;
}
