/*
 * fuzz_promql.c - the PromQL parser and printer on arbitrary bytes.
 *
 * Any input must parse or fail with a message, never crash, leak or read
 * past the input (which is not NUL-terminated). When it parses, printing,
 * parsing the print and printing again must give the same text: the
 * printer's output is the canonical form format_query returns, and it must
 * mean the same query.
 */
#include <stdint.h>
#include <string.h>

#include "promql/engine.h"
#include "vigil/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char *print(const vg_promql_expr_t *e)
{
    vg_buf b;
    vg_buf_init(&b, 0);
    if (vg_promql_format(e, &b) != VG_OK) __builtin_trap();
    return vg_buf_steal(&b, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = vg_malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    vg_promql_expr_t *e = NULL, *e2 = NULL;
    vg_error err = {0};
    vg_err_t rc = vg_promql_parse(copy, size, &e, &err);
    vg_free(copy);
    if (rc != VG_OK) {
        if (rc != VG_ENOMEM && err.msg[0] == 0) __builtin_trap();
        return 0;
    }
    char *once = print(e);
    vg_promql_expr_free(e);
    if (vg_promql_parse(once, strlen(once), &e2, &err) != VG_OK) __builtin_trap();
    char *twice = print(e2);
    vg_promql_expr_free(e2);
    if (strcmp(once, twice) != 0) __builtin_trap();
    vg_free(once);
    vg_free(twice);
    return 0;
}
