/*
 * fuzz_silences.c - Alertmanager silences from untrusted JSON
 * (collector/alerting/silence.c, silence_api.c's POST body).
 *
 * Two ways in. With the first byte even the rest is <data_dir>/silences,
 * read at start: it loads or is refused with a message; a valid silence is
 * then posted, so the store writes back all it loaded. With it odd the rest
 * is a POST /api/v2/silences body from any client: it becomes a silence or
 * is refused; an accepted one is read back, listed with a filter, matched
 * against labels, posted again with its id (the update path) and expired.
 * Either way the file on disk was then written by the store itself, so
 * reopening the directory must load it again.
 * Nothing may crash, leak or trip UBSan on extreme times.
 */
#include <dirent.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz_files.h"
#include "alerting/amconfig.h"
#include "alerting/silence.h"
#include "vigil/alloc.h"
#include "vigil/labels.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const int64_t NOW = 1700000000000LL;
static const char FIXED[] =
    "{\"matchers\":[{\"name\":\"job\",\"value\":\"node\",\"isRegex\":false}],"
    "\"startsAt\":\"2023-11-14T22:13:20Z\",\"endsAt\":\"2023-11-15T22:13:20Z\","
    "\"createdBy\":\"fuzz\",\"comment\":\"c\"}";

/* Everything a reader of the store can ask. */
static void read_back(vg_silences_t *s, const char *id)
{
    vg_label_t l[] = {{"alertname", "Down"}, {"job", "node"}};
    vg_matcher_t *f = NULL;
    vg_buf out;
    vg_buf_init(&out, 0);
    vg_silences_list_json(s, NULL, 0, NOW, &out);
    if (vg_am_matcher_parse("job=~\"n.*\"", &f, NULL) == VG_OK) {
        vg_buf_reset(&out);
        vg_silences_list_json(s, &f, 1, NOW + 3600000, &out);
        vg_matcher_free(f);
    }
    if (id) {
        vg_buf_reset(&out);
        if (vg_silences_get_json(s, id, NOW, &out) != VG_OK) abort();
    }
    vg_buf_free(&out);
    char ids[4][37];
    (void)vg_silences_mutes(s, l, 2, NOW, ids, 4);
    (void)vg_silences_mutes(s, l, 2, NOW + 86400000, NULL, 0);
}

/* The accepted body again, now naming id: Alertmanager's update path. */
static void post_again(vg_silences_t *s, const uint8_t *body, size_t len, const char *id)
{
    char *again = vg_malloc(len + 64), nid[37];
    if (!again) return;
    int n = snprintf(again, 64, "{\"id\":\"%s\",", id);
    const uint8_t *brace = memchr(body, '{', len);
    if (brace) {
        size_t rest = len - (size_t)(brace + 1 - body);
        memcpy(again + n, brace + 1, rest);
        (void)vg_silences_set_json(s, again, (size_t)n + rest, NOW + 1000, nid, NULL);
    }
    vg_free(again);
}

static void post(vg_silences_t *s, const uint8_t *body, size_t len)
{
    char id[37];
    if (vg_silences_set_json(s, (const char *)body, len, NOW, id, NULL) != VG_OK) return;
    read_back(s, id);
    post_again(s, body, len, id);
    (void)vg_silences_expire(s, id, NOW + 2000, NULL);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char dir[] = "/dev/shm/vigil-fuzz-silences-XXXXXX", p[512];
    vg_silences_t *s = NULL;
    if (!size || !mkdtemp(dir)) return 0;
    if (!(data[0] & 1)) {
        snprintf(p, sizeof(p), "%s/silences", dir);
        int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
        if (fd >= 0 && size > 1 && write(fd, data + 1, size - 1) != (ssize_t)(size - 1)) {
            /* a short write is just another input */
        }
        if (fd >= 0) close(fd);
    }
    if (vg_silences_open(dir, NULL, &s, NULL) == VG_OK) {
        if (data[0] & 1)
            post(s, data + 1, size - 1);
        else /* a change makes the store write every loaded silence back */
            post(s, (const uint8_t *)FIXED, sizeof(FIXED) - 1);
        read_back(s, NULL);
        vg_silences_free(s);
        if (vg_silences_open(dir, NULL, &s, NULL) != VG_OK) abort();
        vg_silences_free(s);
    }
    fz_rm_tree(dir);
    return 0;
}
