/*
 * fuzz_selector.c - the PromQL vector-selector parser on arbitrary bytes.
 *
 * Any input must give VG_OK with matchers, or an error with a message, and
 * never crash, leak or read past the input (which is not NUL-terminated).
 */
#include <stdint.h>
#include <string.h>

#include "promql/lex.h"
#include "promql/selector.h"
#include "vigil/alloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *copy = vg_malloc(size ? size : 1);
    if (!copy) return 0;
    if (size) memcpy(copy, data, size);
    vg_selector sel;
    vg_error err = {0};
    vg_err_t rc = vg_selector_parse(copy, size, &sel, &err);
    if (rc == VG_OK && sel.n == 0) __builtin_trap();
    if (rc != VG_OK && rc != VG_ENOMEM && err.msg[0] == 0) __builtin_trap();
    vg_selector_free(&sel);
    /* The lexer alone, in case the parser stopped early. */
    vg_lexer l;
    vg_tok t;
    vg_lex_init(&l, copy, size);
    for (size_t i = 0; i <= size + 1; i++) {
        vg_lex_next(&l, &t);
        if (t.pos > size || t.len > size - t.pos) __builtin_trap();
        if (t.type == VG_TOK_EOF) break;
    }
    vg_free(copy);
    return 0;
}
