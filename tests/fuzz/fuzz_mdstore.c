/*
 * fuzz_mdstore.c - bytes of a <data_dir>/metadata file into the metadata
 * table (vg_mdstore_load), then out as /api/v1/metadata JSON.
 *
 * The file is the collector's own, but a disk can hand back anything: a
 * torn write, a bit flip, another file put in its place. Whatever loads must
 * stay within the table's caps and render; nothing may crash or leak.
 */
#include <stddef.h>
#include <stdint.h>

#include "metadata/mdstore.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    vg_mdstore_opts o = {.max_entries = 1000, .max_per_metric = 3};
    vg_mdstore_t *md = NULL;
    vg_error err;
    if (vg_mdstore_open(&o, NULL, &md, NULL) != VG_OK) return 0;
    vg_mdstore_load(md, data, size, 1000, &err);
    vg_buf out;
    vg_buf_init(&out, 0);
    vg_mdstore_json(md, "default", NULL, -1, -1, 1000, &out);
    vg_buf_reset(&out);
    vg_mdstore_json(md, "default", NULL, 2, 1, 1000, &out);
    vg_buf_free(&out);
    vg_mdstore_free(md);
    return 0;
}
