/*
 * rw_decode.h - a WriteRequest decoder written for the remote-write hot path.
 *
 * Why: protobuf-c's generic unpack walks its descriptors for every field of
 * every Sample and Label, and was the largest single cost of ingest (~11% of
 * the collector's CPU in bench/ingest_vs_vm_prom). This decoder knows the
 * four messages the store reads (WriteRequest, TimeSeries, Label, Sample) and
 * fills the same protobuf-c structs, so the receiver, the store and their
 * tests see no difference. Metadata entries are rare and still go through
 * protobuf-c. Exemplars and fields the store does not read are skipped (never
 * allocated); their wire format is still checked.
 */
#ifndef VIGIL_REMOTEWRITE_RW_DECODE_H
#define VIGIL_REMOTEWRITE_RW_DECODE_H

#include <stddef.h>
#include <stdint.h>

#include "prometheus/remote.pb-c.h"
#include "vigil/arena.h"
#include "vigil/error.h"

/* Decode the protobuf bytes p[0..n) (untrusted) into *out, every allocation
 * from arena a and at most budget bytes in all. VG_EPARSE for malformed
 * input (a bad varint, a length past its message, a wrong wire type for a
 * known field, a group), VG_ETOOLARGE past the budget, VG_ENOMEM. Strings
 * are copied and NUL-terminated; a missing string field is "". *out lives as
 * long as the arena. */
vg_err_t vg_rw_unpack(const uint8_t *p, size_t n, vg_arena_t *a, size_t budget,
                      Prometheus__WriteRequest **out);

#endif
