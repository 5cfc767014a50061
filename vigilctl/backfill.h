/*
 * backfill.h - `vigilctl backfill`: import an exposition file with
 * timestamps into a collector over POST /ingest/v1/batch.
 */
#ifndef VIGIL_VIGILCTL_BACKFILL_H
#define VIGIL_VIGILCTL_BACKFILL_H

/* `vigilctl backfill [--tenant T] FILE` (argv[0] is the command name);
 * returns the exit status: 0 when every batch was accepted. */
int vg_backfill_main(int argc, char **argv);

#endif
