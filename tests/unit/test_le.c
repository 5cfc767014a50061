/*
 * test_le.c - the little-endian helpers every on-disk format uses: byte
 * order fixed whatever the host, unaligned addresses, round trips.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "vigil/le.h"

static void test_byte_order(void **state)
{
    (void)state;
    uint8_t b[11] = {0};
    vg_le_put16(b + 1, 0x0102);
    assert_memory_equal(b + 1, "\x02\x01", 2);
    vg_le_put32(b + 1, 0x01020304u); /* odd address: unaligned */
    assert_memory_equal(b + 1, "\x04\x03\x02\x01", 4);
    vg_le_put64(b + 3, 0x0102030405060708ull);
    assert_memory_equal(b + 3, "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
    assert_int_equal(vg_le_get16((const uint8_t *)"\xff\x80"), 0x80ff);
    assert_int_equal(vg_le_get32((const uint8_t *)"\x78\x56\x34\x12"), 0x12345678u);
    assert_true(vg_le_get64((const uint8_t *)"\x01\x00\x00\x00\x00\x00\x00\x80") ==
                0x8000000000000001ull);
}

static void test_round_trip(void **state)
{
    (void)state;
    static const uint64_t v[] = {
        0, 1, 0xff, 0x100, 0xffff, 0xffffffffu, 0x100000000ull, UINT64_MAX, 0x8000000000000000ull};
    uint8_t b[9];
    for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) {
        vg_le_put64(b + 1, v[i]);
        assert_true(vg_le_get64(b + 1) == v[i]);
        vg_le_put32(b + 1, (uint32_t)v[i]);
        assert_int_equal(vg_le_get32(b + 1), (uint32_t)v[i]);
        vg_le_put16(b + 1, (uint16_t)v[i]);
        assert_int_equal(vg_le_get16(b + 1), (uint16_t)v[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_byte_order),
        cmocka_unit_test(test_round_trip),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
