/*
 * siem_syslog_send.c - drives the syslog SIEM output (collector/siem/
 * out_syslog.c) from stdin, for test_siem_syslog.py's "output" modes.
 *
 * It is a minimal forwarder: one output handle for the whole run, stored
 * audit lines read from stdin ("<tenant>\t<ts_ms>\t<stored JSON>\n"), a batch
 * sent once it is full or stdin goes quiet for a moment, and a failed batch
 * resent (after 200 ms) until it is delivered. That keeps the test on the
 * real output code against a real rsyslogd - across a receiver restart on a
 * long-lived connection - independently of the collector's forwarder.
 *
 *   siem_syslog_send --address H:P [--batch N] [--timeout-ms N] [--tls]
 *                    [--ca-file F] [--cert-file F] [--key-file F]
 *                    [--server-name S] [--insecure-skip-verify]
 * Prints "sent=<records> batches=<n> failures=<n>" and exits 0 at EOF.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "siem/output.h"

enum { MAX_BATCH = 4096 };

typedef struct batch {
    vg_siem_rec recs[MAX_BATCH];
    char *lines[MAX_BATCH];
    size_t n;
} batch;

static int parse_args(int argc, char **argv, vg_siem_output_conf *c)
{
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "--tls"))
            c->tls = 1;
        else if (!strcmp(a, "--insecure-skip-verify"))
            c->insecure_skip_verify = 1;
        else if (!v)
            return -1;
        else if (!strcmp(a, "--address"))
            c->address = v, i++;
        else if (!strcmp(a, "--batch"))
            c->batch_records = (size_t)atol(v), i++;
        else if (!strcmp(a, "--timeout-ms"))
            c->timeout_ms = atol(v), i++;
        else if (!strcmp(a, "--ca-file"))
            c->ca_file = v, i++;
        else if (!strcmp(a, "--cert-file"))
            c->cert_file = v, i++;
        else if (!strcmp(a, "--key-file"))
            c->key_file = v, i++;
        else if (!strcmp(a, "--server-name"))
            c->server_name = v, i++;
        else
            return -1;
    }
    if (!c->address || c->batch_records < 1 || c->batch_records > MAX_BATCH) return -1;
    return 0;
}

/* "<tenant>\t<ts_ms>\t<json>" into the next slot of b (the line is kept). */
static int add_line(batch *b, char *line)
{
    char *t1 = strchr(line, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
    if (!t2) return -1;
    *t1 = *t2 = '\0';
    b->lines[b->n] = line;
    b->recs[b->n] = (vg_siem_rec){
        .tenant = line, .ts_ms = atoll(t1 + 1), .line = t2 + 1, .len = strlen(t2 + 1)};
    b->n++;
    return 0;
}

/* Send b until it is delivered; counts failed attempts. */
static void deliver(void *out, batch *b, long *failures)
{
    vg_error err = {0};
    while (vg_siem_out_syslog.send(out, b->recs, b->n, &err) != VG_OK) {
        fprintf(stderr, "send failed: %s\n", err.msg);
        (*failures)++;
        usleep(200000);
    }
    for (size_t i = 0; i < b->n; i++) free(b->lines[i]);
    b->n = 0;
}

static int stdin_quiet(void)
{
    struct pollfd p = {.fd = 0, .events = POLLIN};
    return poll(&p, 1, 100) == 0;
}

int main(int argc, char **argv)
{
    vg_siem_output_conf c = {.name = "siem_syslog_send",
                             .type = "syslog",
                             .app_name = "vigil",
                             .facility = 13,
                             .timeout_ms = 5000,
                             .batch_records = 64};
    if (parse_args(argc, argv, &c)) {
        fprintf(stderr, "usage: see the header of siem_syslog_send.c\n");
        return 2;
    }
    void *out = NULL;
    vg_error err = {0};
    if (vg_siem_out_syslog.open(&c, &out, &err)) {
        fprintf(stderr, "open: %s\n", err.msg);
        return 1;
    }
    static batch b;
    long sent = 0, batches = 0, failures = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t n;
    setvbuf(stdin, NULL, _IONBF, 0); /* so poll() on fd 0 sees what is unread */
    while ((n = getline(&line, &cap, stdin)) > 0) {
        if (line[n - 1] == '\n') line[n - 1] = '\0';
        if (add_line(&b, line)) {
            fprintf(stderr, "bad input line\n");
            return 1;
        }
        line = NULL, cap = 0;
        if (b.n == c.batch_records || stdin_quiet()) {
            sent += (long)b.n, batches++;
            deliver(out, &b, &failures);
        }
    }
    free(line);
    if (b.n) sent += (long)b.n, batches++, deliver(out, &b, &failures);
    vg_siem_out_syslog.close(out);
    printf("sent=%ld batches=%ld failures=%ld\n", sent, batches, failures);
    return 0;
}
