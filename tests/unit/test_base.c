#include "ir/base.h"
#include "tests/check.h"

#include <stdlib.h>
#include <unistd.h>

int main(void) {
    /* bf16 rounding: round-to-nearest-even, as __float2bfloat16_rn */
    CHECK_EQ(ax_f32_to_bf16(1.0f), 0x3f80);
    union { uint32_t u; float f; } v;
    v.u = 0x3f808000u; /* exactly half-way, lsb 0 -> stays */
    CHECK_EQ(ax_f32_to_bf16(v.f), 0x3f80);
    v.u = 0x3f818000u; /* half-way, lsb 1 -> rounds up */
    CHECK_EQ(ax_f32_to_bf16(v.f), 0x3f82);
    v.u = 0x3f808001u; /* above half -> up */
    CHECK_EQ(ax_f32_to_bf16(v.f), 0x3f81);
    CHECK(ax_bf16_to_f32(ax_f32_to_bf16(-2.5f)) == -2.5f);
    v.u = 0x7fc00001u;
    CHECK(isnan(ax_bf16_to_f32(ax_f32_to_bf16(v.f))));
    /* f16 round trip on representable values, incl. subnormals */
    float vals[] = {0.0f, 1.0f, -2.0f, 65504.0f, 6.103515625e-05f, 5.960464477539063e-08f, 0.333251953125f};
    for (size_t i = 0; i < AX_ARRAY_LEN(vals); i++) CHECK(ax_f16_to_f32(ax_f32_to_f16(vals[i])) == vals[i]);
    CHECK_EQ(ax_f32_to_f16(1e6f), 0x7c00);

    /* arena + buf */
    ax_arena *a = ax_arena_create();
    char *s = ax_arena_printf(a, "%s-%d", "x", 42);
    CHECK_STREQ(s, "x-42");
    for (int i = 0; i < 10000; i++) CHECK(ax_arena_alloc(a, 100) != NULL);
    ax_arena_destroy(a);
    ax_buf b = {0};
    ax_buf_u32(&b, 0x01020304u);
    CHECK_EQ(b.len, 4);
    CHECK_EQ((unsigned char)b.data[0], 4);
    ax_buf_free(&b);
    /* appending a part of the buffer to itself while it grows (the tokenizer's scratch did, found by fuzzing) */
    ax_buf_puts(&b, "abcdefgh");
    for (int i = 0; i < 12; i++) ax_buf_append(&b, b.data + 2, b.len - 2);
    int same = b.len > 8;
    for (size_t i = 8; i < b.len && same; i++) same = b.data[i] >= 'a' && b.data[i] <= 'h';
    CHECK(same && b.data[b.len] == 0 && !memcmp(b.data + 8, "cdefgh", 6));
    ax_buf_free(&b);

    /* diag */
    ax_diag d;
    ax_diag_init(&d);
    char loc[64];
    ax_error(&d, ax_loc(loc, sizeof loc, "c.yml", 3, 7), "expected %s, found %s", "integer", "'x'");
    CHECK_EQ(d.nerrors, 1);
    CHECK_STREQ(d.entries[0].where, "c.yml:3:7");
    CHECK(ax_diag_contains(&d, "expected integer"));
    ax_diag_free(&d);

    /* atomic write */
    char path[] = "/tmp/axo_test_base_XXXXXX";
    int fd = mkstemp(path);
    close(fd);
    ax_diag_init(&d);
    CHECK_EQ(ax_write_file_atomic(path, "hello", 5, &d), 0);
    size_t n;
    char *txt = ax_read_file(path, &n, &d);
    CHECK_STREQ(txt, "hello");
    free(txt);
    unlink(path);
    CHECK(ax_read_file("/nonexistent/file", &n, &d) == NULL);
    CHECK(ax_diag_contains(&d, "/nonexistent/file"));
    ax_diag_free(&d);
    return check_done();
}
