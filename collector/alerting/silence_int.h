/*
 * silence_int.h - the silence store's insides, shared by silence.c (store,
 * rules, file) and silence_api.c (HTTP). Not for other modules.
 */
#ifndef VIGIL_ALERTING_SILENCE_INT_H
#define VIGIL_ALERTING_SILENCE_INT_H

#include <jansson.h>
#include <pthread.h>

#include "alerting/silence.h"

typedef struct vg_silence {
    char id[37];
    vg_matcher_t **ms;
    size_t nms;
    int64_t starts_at, ends_at, updated_at; /* ms */
    char *created_by, *comment;
} vg_silence_t;

struct vg_silences {
    pthread_mutex_t mu;
    vg_silence_t *items;
    size_t n, cap;
    char *dir; /* NULL = memory only */
    vg_metric_t *persist_errors;
};

/* Free x's contents and zero it. */
void vg_silence_clear(vg_silence_t *x);
/* "pending", "active" or "expired" at now. */
const char *vg_silence_state(const vg_silence_t *x, int64_t now);
/* GettableSilence JSON (status left out when now < 0). NULL on ENOMEM. */
json_t *vg_silence_to_json(const vg_silence_t *x, int64_t now);
/* Decode a silence object into x (zeroed on failure). */
vg_err_t vg_silence_from_json(json_t *o, vg_silence_t *x, vg_error *err);
/* Silence by id with s->mu held, or NULL. */
vg_silence_t *vg_silences_find_locked(vg_silences_t *s, const char *id);

#endif
