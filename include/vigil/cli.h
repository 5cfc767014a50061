/*
 * cli.h - the command-line flags both daemons share, and signal handling.
 *
 * vigil-agent and vigil-collector take the same core flags (DESIGN.md:
 * --config, --listen, --data-dir, --log-level, --version, --help), and flags
 * override the file. Parsing them in one place keeps the two binaries'
 * behaviour and help text identical. Signals are blocked in every thread and
 * taken synchronously by the main thread with sigwait, so shutdown and reload
 * run as ordinary code, not in a signal handler.
 */
#ifndef VIGIL_CLI_H
#define VIGIL_CLI_H

typedef struct vg_cli {
    const char *config;       /* --config FILE, NULL = embedded default */
    const char *listen;       /* --listen ADDR */
    const char *data_dir;     /* --data-dir DIR */
    const char *log_level;    /* --log-level error|warn|info|debug */
    const char *check_config; /* --check-config FILE: validate and exit */
    int version;              /* --version */
    int help;                 /* --help */
} vg_cli;

/* Parse argv. Returns 0 to run, -1 when the program should exit with status 0
 * (after --help or --version), or 2 on a usage error (message on stderr). */
int vg_cli_parse(int argc, char **argv, const char *prog, const char *summary, vg_cli *out);

/* A flag one program adds to the shared set: --NAME VALUE, stored as text
 * in *value (the program parses and checks it). Shown in --help after the
 * shared flags. */
typedef struct vg_cli_extra {
    const char *name;   /* without dashes: "query.max-samples" */
    const char *arg;    /* placeholder in --help: "N" */
    const char *help;   /* one line */
    const char **value; /* set when the flag is given */
} vg_cli_extra;

/* vg_cli_parse with up to 16 program-specific flags. Same return values. */
int vg_cli_parse_extra(int argc, char **argv, const char *prog, const char *summary,
                       const vg_cli_extra *extra, int nextra, vg_cli *out);

/* Block SIGINT, SIGTERM, SIGHUP, SIGPIPE in the calling thread (call before
 * starting any thread so they inherit the mask). */
void vg_cli_block_signals(void);
/* Wait for SIGINT, SIGTERM or SIGHUP; returns the signal number. */
int vg_cli_wait_signal(void);

#endif
