/*
 * log.c - logfmt writer.
 *
 * The line is assembled in a 4 KiB stack buffer and written with a single
 * write(2): POSIX keeps such writes to a pipe atomic up to PIPE_BUF, and in
 * practice to a terminal or file too, so concurrent threads do not interleave.
 */
#include "vigil/log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

int vg_log_threshold = VG_LOG_INFO;

static const char *const level_names[] = {"error", "warn", "info", "debug"};

vg_err_t vg_log_set_level_name(const char *name)
{
    for (int i = 0; i < 4; i++) {
        if (name && strcmp(name, level_names[i]) == 0) {
            vg_log_threshold = i;
            return VG_OK;
        }
    }
    return VG_EINVAL;
}

void vg_log_set_level(vg_log_level lvl)
{
    vg_log_threshold = (int)lvl;
}

const char *vg_logq(char *buf, size_t n, const char *s)
{
    size_t o = 0;
    if (n < 3) {
        if (n) buf[0] = '\0';
        return buf;
    }
    buf[o++] = '"';
    for (; s && *s && o + 3 < n; s++) {
        char c = *s;
        if (c == '"' || c == '\\') {
            buf[o++] = '\\';
            buf[o++] = c;
        } else if (c == '\n') {
            buf[o++] = '\\';
            buf[o++] = 'n';
        } else if ((unsigned char)c < 0x20) {
            buf[o++] = ' ';
        } else {
            buf[o++] = c;
        }
    }
    buf[o++] = '"';
    buf[o] = '\0';
    return buf;
}

static size_t put_ts(char *p, size_t n)
{
    struct timeval tv;
    struct tm tm;
    gettimeofday(&tv, NULL);
    gmtime_r(&tv.tv_sec, &tm);
    size_t k = strftime(p, n, "ts=%Y-%m-%dT%H:%M:%S", &tm);
    int m = snprintf(p + k, n - k, ".%03dZ", (int)(tv.tv_usec / 1000));
    return k + (m > 0 ? (size_t)m : 0);
}

void vg_log_write(vg_log_level lvl, const char *component, const char *file, int line,
                  const char *msg, const char *kvfmt, ...)
{
    char out[4096], q[1024];
    size_t o = put_ts(out, sizeof(out));
    int lv = (int)lvl < 0 ? 0 : (int)lvl > 3 ? 3 : (int)lvl;
    o +=
        (size_t)snprintf(out + o, sizeof(out) - o, " level=%s component=%s msg=%s", level_names[lv],
                         component ? component : "main", vg_logq(q, sizeof(q), msg ? msg : ""));
    if (kvfmt && o < sizeof(out) - 2) {
        out[o++] = ' ';
        va_list ap;
        va_start(ap, kvfmt);
        int m = vsnprintf(out + o, sizeof(out) - o, kvfmt, ap);
        va_end(ap);
        if (m > 0) o += (size_t)m;
    }
    if (o < sizeof(out) - 2 && lvl <= VG_LOG_WARN) {
        const char *base = strrchr(file, '/');
        int m = snprintf(out + o, sizeof(out) - o, " src=%s:%d", base ? base + 1 : file, line);
        if (m > 0) o += (size_t)m;
    }
    if (o > sizeof(out) - 2) o = sizeof(out) - 2;
    out[o++] = '\n';
    ssize_t w = write(STDERR_FILENO, out, o);
    (void)w;
}
