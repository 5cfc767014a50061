/*
 * cli.c - shared flag parsing and signal waiting for the daemons.
 *
 * getopt_long with the same table for both programs; unknown flags are a
 * usage error (exit 2), never ignored.
 */
#include "vigil/cli.h"

#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "vigil/log.h"

#define MAX_EXTRA 16

static void usage(FILE *f, const char *prog, const char *summary, const vg_cli_extra *extra,
                  int nextra)
{
    fprintf(f,
            "usage: %s [flags]\n\n%s\n\n"
            "flags (a flag overrides the config file):\n"
            "  --config FILE        YAML config file (default: the embedded default)\n"
            "  --check-config FILE  validate FILE, print errors as file:line:col, exit\n"
            "  --listen ADDR        HTTP listen address host:port\n"
            "  --data-dir DIR       state directory\n"
            "  --log-level LEVEL    error, warn, info (default) or debug\n"
            "  --version            print the version and exit\n"
            "  --help               print this help and exit\n",
            prog, summary);
    for (int i = 0; i < nextra; i++) {
        char flag[64];
        snprintf(flag, sizeof flag, "%s %s", extra[i].name, extra[i].arg);
        if (strlen(flag) < 19)
            fprintf(f, "  --%-19s%s\n", flag, extra[i].help);
        else
            fprintf(f, "  --%s\n%23s%s\n", flag, "", extra[i].help);
    }
}

int vg_cli_parse(int argc, char **argv, const char *prog, const char *summary, vg_cli *out)
{
    return vg_cli_parse_extra(argc, argv, prog, summary, NULL, 0, out);
}

int vg_cli_parse_extra(int argc, char **argv, const char *prog, const char *summary,
                       const vg_cli_extra *extra, int nextra, vg_cli *out)
{
    struct option opts[8 + MAX_EXTRA] = {
        {"config", required_argument, 0, 'c'},
        {"listen", required_argument, 0, 'l'},
        {"data-dir", required_argument, 0, 'd'},
        {"log-level", required_argument, 0, 'L'},
        {"check-config", required_argument, 0, 'k'},
        {"version", no_argument, 0, 'V'},
        {"help", no_argument, 0, 'h'},
    };
    if (nextra > MAX_EXTRA) nextra = MAX_EXTRA;
    for (int i = 0; i < nextra; i++)
        opts[7 + i] = (struct option){extra[i].name, required_argument, 0, 1000 + i};
    memset(out, 0, sizeof(*out));
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "c:l:d:L:k:Vh", opts, NULL)) != -1) {
        if (c >= 1000 && c < 1000 + nextra) {
            *extra[c - 1000].value = optarg;
            continue;
        }
        switch (c) {
        case 'c': out->config = optarg; break;
        case 'l': out->listen = optarg; break;
        case 'd': out->data_dir = optarg; break;
        case 'L': out->log_level = optarg; break;
        case 'k': out->check_config = optarg; break;
        case 'V': printf("%s %s\n", prog, VIGIL_VERSION); return -1;
        case 'h': usage(stdout, prog, summary, extra, nextra); return -1;
        default: usage(stderr, prog, summary, extra, nextra); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", prog, argv[optind]);
        return 2;
    }
    if (out->log_level && vg_log_set_level_name(out->log_level) != VG_OK) {
        fprintf(stderr, "%s: --log-level must be error, warn, info or debug, not '%s'\n", prog,
                out->log_level);
        return 2;
    }
    return 0;
}

static void signal_set(sigset_t *s)
{
    sigemptyset(s);
    sigaddset(s, SIGINT);
    sigaddset(s, SIGTERM);
    sigaddset(s, SIGHUP);
}

void vg_cli_block_signals(void)
{
    sigset_t s;
    signal_set(&s);
    pthread_sigmask(SIG_BLOCK, &s, NULL);
    signal(SIGPIPE, SIG_IGN);
}

int vg_cli_wait_signal(void)
{
    sigset_t s;
    signal_set(&s);
    int sig = 0;
    while (sigwait(&s, &sig) != 0) {
    }
    return sig;
}
