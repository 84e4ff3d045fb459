// cuda_bf16.h stand-in for tests/unit/test_attention_tc_emu.cc: compiles the
// axo kernel sources (codegen/kernels/common.cuh + attention_tc.cuh) as host
// C++ and runs them on a small SIMT emulator, so the tensor-core attention
// kernels are checked against the CPU reference on a machine without a GPU.
//
// What it models: a CTA's threads are coroutines (ucontext) on one OS thread,
// switched only at __syncthreads and warp collectives. The scheduling policy
// (emu.policy) picks the next thread to resume: round robin, or always the
// lowest (highest) numbered thread that is not blocked — the latter let one
// warp run as far ahead of the others as the barriers allow, which exposes a
// missing __syncthreads.
// __syncthreads is a block barrier (__syncthreads_or also ORs the threads'
// predicates); __shfl_xor_sync and mma.sync are warp
// collectives (every lane posts its registers, a warp barrier, every lane
// reads what it needs; double-buffered by call so one barrier suffices).
// cp.async copies are queued per thread and done at the thread's
// cp.async.wait_group (the latest moment the hardware may complete them), so
// a read of a tile before its wait + barrier sees the previous contents.
// Dynamic shared memory is filled with 0xff bytes (bf16 / fp32 NaN) before
// every CTA. mma.m16n8k16 follows the PTX ISA fragment layout as written at
// the top of attention_tc.cuh — so this checks the kernels' use of that
// layout, tiling, masking, softmax, pipelining and barriers, not the layout
// itself or the hardware's rounding inside mma.
#pragma once
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <ucontext.h>

#include <algorithm>
#include <functional>
#include <vector>

#define __device__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(n)
#define __shared__
#define __align__(n) __attribute__((aligned(n)))

using std::max;
using std::min;

struct __nv_bfloat16 {
    unsigned short x;
};
struct __nv_bfloat162 {
    __nv_bfloat16 x, y;
};
struct float2 {
    float x, y;
};
struct float4 {
    float x, y, z, w;
};
struct uint4 {
    unsigned x, y, z, w;
};
inline float4 make_float4(float a, float b, float c, float d) { return float4{a, b, c, d}; }
inline float __bfloat162float(__nv_bfloat16 h) {
    uint32_t u = (uint32_t)h.x << 16;
    float f;
    memcpy(&f, &u, 4);
    return f;
}
inline __nv_bfloat16 __float2bfloat16_rn(float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return __nv_bfloat16{(unsigned short)((u >> 16) | 0x40)};
    u += 0x7fffu + ((u >> 16) & 1u);
    return __nv_bfloat16{(unsigned short)(u >> 16)};
}
inline __nv_bfloat162 __floats2bfloat162_rn(float a, float b) {
    return __nv_bfloat162{__float2bfloat16_rn(a), __float2bfloat16_rn(b)};
}
inline float2 __bfloat1622float2(__nv_bfloat162 h) { return float2{__bfloat162float(h.x), __bfloat162float(h.y)}; }
inline float __int_as_float(int i) {
    float f;
    memcpy(&f, &i, 4);
    return f;
}
inline unsigned __float_as_uint(float f) {
    unsigned u;
    memcpy(&u, &f, 4);
    return u;
}
inline __nv_bfloat16 __ushort_as_bfloat16(unsigned short u) { return __nv_bfloat16{u}; }
// IEEE single-precision ops, each rounded once to nearest as on the device
// (the targets are built with -ffp-contract=off, so none is fused on the host)
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fsub_rn(float a, float b) { return a - b; }
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __fsqrt_rn(float a) { return sqrtf(a); }
inline int atomicMin(int *p, int v) {
    int o = *p;
    if (v < o) *p = v;
    return o;
}

// ---- the emulator ----------------------------------------------------------
struct emu_dim3 {
    unsigned x, y, z;
};
struct emu_copy {
    void *dst;
    const void *src;
    int bytes;
    long group;
};
struct emu_thread {
    ucontext_t ctx;
    emu_dim3 tid;
    int done;
    const struct emu_bar *wait_bar; // blocked until wait_bar->gen != wait_gen
    unsigned wait_gen;
    long coll; // warp collectives this lane has entered
    long committed;
    std::vector<emu_copy> pending;
    std::vector<char> stack;
};
struct emu_bar {
    int n, count;
    unsigned gen;
};
struct emu_slot {
    float f[4];
    unsigned a[4], b[2];
};
struct emu_state {
    emu_dim3 grid, block, bid;
    emu_thread *cur;
    ucontext_t sched;
    std::vector<emu_thread> th;
    emu_bar block_bar;
    std::vector<emu_bar> warp_bar;
    std::vector<emu_slot> slots; // [warp][2][32]
    std::function<void()> body;
    long long yields;
    int policy; // 0 round robin, 1 lowest-numbered runnable thread first, 2 highest first
    int bar_or[2]; // __syncthreads_or of block barrier generation gen, in bar_or[gen & 1]
};
inline emu_state emu;

#define threadIdx (emu.cur->tid)
#define blockIdx (emu.bid)
#define blockDim (emu.block)
#define gridDim (emu.grid)

inline void emu_yield() {
    emu.yields++;
    swapcontext(&emu.cur->ctx, &emu.sched);
}
inline void emu_bar_wait(emu_bar &b) {
    const unsigned g = b.gen;
    if (++b.count == b.n) {
        b.count = 0;
        // every thread has read the result of generation gen - 1 (it reads it before it can arrive here), so
        // its slot is free for generation gen + 1
        if (&b == &emu.block_bar) emu.bar_or[(b.gen + 1) & 1] = 0;
        b.gen++;
        return;
    }
    emu.cur->wait_bar = &b;
    emu.cur->wait_gen = g;
    emu_yield();
    emu.cur->wait_bar = nullptr;
}
inline void __syncthreads() { emu_bar_wait(emu.block_bar); }
inline int __syncthreads_or(int pred) {
    const unsigned g = emu.block_bar.gen;
    if (pred) emu.bar_or[g & 1] = 1;
    emu_bar_wait(emu.block_bar);
    return emu.bar_or[g & 1];
}

// A warp collective: post this lane's slot, wait for the warp, return the warp's slots of this call.
inline emu_slot *emu_collective(const emu_slot &mine) {
    const int tid = (int)emu.cur->tid.x, w = tid >> 5, lane = tid & 31;
    emu_slot *buf = &emu.slots[((size_t)w * 2 + (size_t)(emu.cur->coll & 1)) * 32];
    emu.cur->coll++;
    buf[lane] = mine;
    emu_bar_wait(emu.warp_bar[(size_t)w]);
    return buf;
}
template <typename T> inline T __shfl_xor_sync(unsigned mask, T v, int o) {
    emu_slot s = {};
    static_assert(sizeof(T) <= sizeof s.f, "shuffle of a large type");
    memcpy(s.f, &v, sizeof v);
    emu_slot *buf = emu_collective(s);
    T r;
    memcpy(&r, buf[(emu.cur->tid.x & 31) ^ (unsigned)o].f, sizeof r);
    return r;
}

#define AXO_TC_EMU 1
typedef unsigned int tc_u32;
inline float emu_bf(unsigned u, int hi) {
    __nv_bfloat16 h{(unsigned short)(hi ? u >> 16 : u & 0xffffu)};
    return __bfloat162float(h);
}
// mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 with the PTX fragment layout.
inline void tc_mma(float (&c)[4], const tc_u32 (&a)[4], const tc_u32 (&b)[2]) {
    emu_slot s = {};
    for (int i = 0; i < 4; i++) s.a[i] = a[i], s.f[i] = c[i];
    s.b[0] = b[0], s.b[1] = b[1];
    emu_slot *w = emu_collective(s);
    float A[16][16], B[16][8];
    for (int l = 0; l < 32; l++) {
        const int g = l >> 2, t = l & 3;
        for (int h = 0; h < 2; h++) {
            A[g][2 * t + h] = emu_bf(w[l].a[0], h);
            A[g + 8][2 * t + h] = emu_bf(w[l].a[1], h);
            A[g][2 * t + 8 + h] = emu_bf(w[l].a[2], h);
            A[g + 8][2 * t + 8 + h] = emu_bf(w[l].a[3], h);
            B[2 * t + h][g] = emu_bf(w[l].b[0], h);
            B[2 * t + 8 + h][g] = emu_bf(w[l].b[1], h);
        }
    }
    const int lane = (int)(emu.cur->tid.x & 31), g = lane >> 2, t = lane & 3;
    for (int e = 0; e < 4; e++) {
        const int r = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        double acc = c[e];
        for (int kk = 0; kk < 16; kk++) acc += (double)A[r][kk] * (double)B[kk][col];
        c[e] = (float)acc;
    }
}
inline void tc_cp16(void *smem, const void *gmem, int bytes) {
    emu.cur->pending.push_back(emu_copy{smem, gmem, bytes, emu.cur->committed});
}
inline void tc_cp_commit() { emu.cur->committed++; }
inline void tc_cp_wait1() { // complete every committed group but the newest
    std::vector<emu_copy> keep;
    for (const emu_copy &c : emu.cur->pending) {
        if (c.group < emu.cur->committed - 1) {
            memset(c.dst, 0, 16);
            memcpy(c.dst, c.src, (size_t)c.bytes);
        } else {
            keep.push_back(c);
        }
    }
    emu.cur->pending.swap(keep);
}

inline void emu_entry() {
    emu.body();
    emu.cur->done = 1;
}
// Runs body as a grid of CTAs of nt threads (blockDim.x = nt), one CTA at a time.
inline void emu_launch(emu_dim3 grid, int nt, unsigned char *smem, size_t smem_bytes, std::function<void()> body) {
    emu.grid = grid;
    emu.block = emu_dim3{(unsigned)nt, 1, 1};
    emu.body = body;
    emu.th.clear();
    emu.th.resize((size_t)nt);
    emu.warp_bar.assign((size_t)(nt + 31) / 32, emu_bar{32, 0, 0});
    emu.slots.assign((size_t)((nt + 31) / 32) * 64, emu_slot{});
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                emu.bid = emu_dim3{bx, by, bz};
                memset(smem, 0xff, smem_bytes);
                emu.block_bar = emu_bar{nt, 0, 0};
                emu.bar_or[0] = emu.bar_or[1] = 0;
                for (int i = 0; i < nt; i++) {
                    emu_thread &t = emu.th[(size_t)i];
                    t.tid = emu_dim3{(unsigned)i, 0, 0};
                    t.done = 0;
                    t.wait_bar = nullptr;
                    t.coll = 0;
                    t.committed = 0;
                    t.pending.clear();
                    t.stack.resize(256 * 1024);
                    getcontext(&t.ctx);
                    t.ctx.uc_stack.ss_sp = t.stack.data();
                    t.ctx.uc_stack.ss_size = t.stack.size();
                    t.ctx.uc_link = &emu.sched;
                    makecontext(&t.ctx, emu_entry, 0);
                }
                for (int next = 0;;) {
                    int pick = -1;
                    for (int j = 0; j < nt && pick < 0; j++) {
                        const int i = emu.policy == 0 ? (next + j) % nt : emu.policy == 1 ? j : nt - 1 - j;
                        const emu_thread &t = emu.th[(size_t)i];
                        if (!t.done && !(t.wait_bar && t.wait_bar->gen == t.wait_gen)) pick = i;
                    }
                    if (pick < 0) break;
                    emu.cur = &emu.th[(size_t)pick];
                    swapcontext(&emu.sched, &emu.cur->ctx);
                    next = pick + 1;
                }
                for (int i = 0; i < nt; i++)
                    if (!emu.th[(size_t)i].done) {
                        fprintf(stderr, "emulator: deadlock, thread %d waits at a barrier no other thread reaches\n", i);
                        abort();
                    }
                for (int w = 0; w < (nt + 31) / 32; w++)
                    if (emu.warp_bar[(size_t)w].count) {
                        fprintf(stderr, "emulator: warp %d ended inside a collective\n", w);
                        abort();
                    }
            }
}
