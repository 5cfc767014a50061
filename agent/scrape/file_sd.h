/*
 * file_sd.h (agent, internal) - file-based service discovery.
 *
 * Prometheus's file_sd_configs: files matching the configured globs hold a
 * list of target groups, [{"targets": ["host:port", ...], "labels": {...}}],
 * in JSON (.json) or YAML (.yml, .yaml). Each group gets __meta_filepath.
 * A vg_file_sd_t tracks the files of one job: vg_file_sd_refresh re-globs,
 * stats every file and re-reads only those whose inode, size or mtime
 * changed. A file that fails to read or parse keeps its last good groups
 * (logged and counted); a file that is gone loses its groups.
 */
#ifndef VIGIL_AGENT_FILE_SD_H
#define VIGIL_AGENT_FILE_SD_H

#include <stddef.h>
#include <stdint.h>

#include "../config.h"
#include "vigil/arena.h"
#include "vigil/error.h"
#include "vigil/metrics.h"

/* Largest target-group file read. */
#define VG_FILE_SD_MAX_BYTES (16u << 20)

typedef struct vg_file_sd vg_file_sd_t;

/* Parse one file's text into groups allocated in a; yaml selects the format.
 * path becomes each group's __meta_filepath label (labels come out sorted).
 * VG_EPARSE with "path: ..." on malformed input, VG_ENOMEM. */
vg_err_t vg_file_sd_parse(const char *path, const char *text, size_t len, int yaml, vg_arena_t *a,
                          vg_static_group_t **groups, size_t *n, vg_error *err);

/* Track the files of sc's file_sd_configs (borrowed). inotify_fd (or -1)
 * gets watches on the folders of the globs; errors (may be NULL) counts
 * files that failed to read or parse. Does not read anything yet. */
vg_err_t vg_file_sd_new(const vg_scrape_config_t *sc, int inotify_fd, vg_metric_t *errors,
                        vg_file_sd_t **out, vg_error *err);
void vg_file_sd_free(vg_file_sd_t *f);
/* Re-check the files now; returns 1 when the groups changed, 0 otherwise. */
int vg_file_sd_refresh(vg_file_sd_t *f);
/* Current groups in file-name order (valid until the next refresh). */
const vg_static_group_t *vg_file_sd_groups(const vg_file_sd_t *f, size_t *n);
/* Shortest refresh_interval of the job's file_sd_configs, in ms. */
int64_t vg_file_sd_interval(const vg_file_sd_t *f);

#endif
