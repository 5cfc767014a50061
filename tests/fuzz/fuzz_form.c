/*
 * fuzz_form.c - libFuzzer harness for the query-string / form-body decoder.
 *
 * Feeds the input to vg_http_parse_args twice (as the server does for a form
 * body followed by a query string) and checks the invariants handlers rely
 * on: decoded strings are NUL-terminated, never longer than their source,
 * and the argument count never exceeds the number of '&'-separated pairs.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../../common/httpd_args.h"

static void check(const vg_http_args *args, size_t len)
{
    for (size_t i = 0; i < args->n; i++) {
        const vg_http_arg *a = &args->v[i];
        if (a->name[a->name_len] != '\0' || a->value[a->value_len] != '\0') abort();
        if (a->name_len + a->value_len > len) abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vg_arena_t *a = vg_arena_new(0);
    if (!a) return 0;
    vg_http_args args = {0};
    const char *s = (const char *)data;
    if (vg_http_parse_args(a, s, size, &args) == VG_OK) {
        check(&args, size);
        size_t first = args.n;
        if (vg_http_parse_args(a, s, size, &args) == VG_OK && args.n != 2 * first) abort();
        check(&args, size);
    }
    if (args.n > size + 1) abort();
    vg_arena_free(a);
    return 0;
}
