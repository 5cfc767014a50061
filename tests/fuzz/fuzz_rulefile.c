/*
 * fuzz_rulefile.c - Prometheus rule files from untrusted text.
 *
 * Rule files come from operators and from `vigilctl check rules` on any file
 * handed to it. Whatever parses or fails, the result must be consistent: a
 * valid file has no errors and its rules have names and expressions; an
 * invalid one has at least one error naming the file. Nothing may crash or
 * leak.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rules/rulefile.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > 64 * 1024) return 0;
    vg_rulefile *f = NULL;
    vg_err_t rc = vg_rulefile_parse("fuzz.yml", (const char *)data, size, &f, NULL);
    if (!f) {
        if (rc != VG_ENOMEM) abort();
        return 0;
    }
    if (rc == VG_OK && f->nerrors) abort();
    if (rc != VG_OK && (!f->nerrors || strncmp(f->errors[0], "fuzz.yml", 8))) abort();
    for (size_t i = 0; rc == VG_OK && i < f->ngroups; i++)
        for (size_t j = 0; j < f->groups[i].nrules; j++)
            if (!f->groups[i].rules[j].name[0] || !f->groups[i].rules[j].expr[0]) abort();
    vg_rulefile_free(f);
    return 0;
}
