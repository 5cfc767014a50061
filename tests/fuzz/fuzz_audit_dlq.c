/*
 * fuzz_audit_dlq.c - dead letters from the network into the audit store
 * (vg_auditstore_dlq_ingest: POST /ingest/v1/dlq and the Kafka dead-letter
 * topic), then the store's own dlq.log read back at open.
 *
 * Any client can post a body, so ingest must store valid entries or refuse
 * with VG_EPARSE/VG_EINVAL/VG_ETOOLARGE, never crash, leak or write outside
 * the store (the tenant comes from the body). The store is then reopened,
 * which reads every tenant's dlq.log to rebuild the dedup keys, and the
 * same body ingested again: nothing may be stored twice, so the listing
 * must not change.
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "fuzz_files.h"
#include "auditstore/auditstore.h"
#include "vigil/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Only the store may be in the harness's directory: no tenant escaped it. */
static void check_contained(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    while (d && (e = readdir(d)))
        if (strcmp(e->d_name, ".") && strcmp(e->d_name, "..") && strcmp(e->d_name, "store"))
            abort();
    if (d) closedir(d);
}

/* Open the store, ingest the body, list every tenant's dead letters into out. */
static int ingest(const char *dir, const uint8_t *data, size_t size, vg_buf *out)
{
    vg_auditstore_opts o = {.dir = dir, .interval_ms = -1, .seal_grace_ms = -1};
    vg_auditstore_t *s = NULL;
    if (vg_auditstore_open(&o, &s, NULL) != VG_OK) return -1;
    (void)vg_auditstore_dlq_ingest(s, NULL, data, size, NULL);
    vg_err_t rc = vg_auditstore_dlq_list(s, NULL, 1000, out, NULL);
    vg_auditstore_free(s);
    return rc == VG_OK ? 0 : -1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/dev/shm/vigil-fuzz-dlq-XXXXXX", store[64];
    vg_log_threshold = -1; /* silent: bad bodies are expected here */
    if (!mkdtemp(dir)) return 0;
    snprintf(store, sizeof(store), "%s/store", dir);
    vg_buf a, b;
    vg_buf_init(&a, 0);
    vg_buf_init(&b, 0);
    if (ingest(store, data, size, &a) == 0) {
        if (ingest(store, data, size, &b) != 0) abort();
        if (a.len != b.len || (a.len && memcmp(a.data, b.data, a.len))) abort();
    }
    check_contained(dir);
    vg_buf_free(&a);
    vg_buf_free(&b);
    fz_rm_tree(dir);
    return 0;
}
