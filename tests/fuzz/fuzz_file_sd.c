/*
 * fuzz_file_sd.c - arbitrary bytes into the file_sd target-group parser.
 *
 * The first byte picks the format (even: JSON through jansson, odd: YAML
 * through the config document layer); the rest is the file. Either may
 * accept or reject; neither may crash, hang or leak. Accepted groups are
 * walked and checked: sorted, valid label names, __meta_filepath present.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "scrape/file_sd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) return 0;
    vg_arena_t *a = vg_arena_new(0);
    if (!a) return 0;
    vg_static_group_t *g = NULL;
    size_t n = 0;
    vg_error err;
    if (vg_file_sd_parse("fuzz.json", (const char *)data + 1, size - 1, data[0] & 1, a, &g, &n,
                         &err) == VG_OK) {
        for (size_t i = 0; i < n; i++) {
            if (!vg_labels_get(g[i].labels, g[i].nlabels, "__meta_filepath")) __builtin_trap();
            for (size_t j = 0; j < g[i].nlabels; j++) {
                const char *name = g[i].labels[j].name;
                if (!vg_label_name_valid(name, strlen(name))) __builtin_trap();
                if (j && strcmp(g[i].labels[j - 1].name, name) >= 0) __builtin_trap();
            }
            for (size_t j = 0; j < g[i].ntargets; j++) (void)strlen(g[i].targets[j]);
        }
    }
    vg_arena_free(a);
    return 0;
}
