// cuda_bf16.h stand-in: compiles the axo kernel sources (codegen/kernels/
// common.cuh + any .cuh, or a fused kernel of codegen/fusegen.c) as host C++
// and runs them on a small SIMT emulator, so kernels are checked against the
// CPU reference on a machine without a GPU (test_attention_tc_emu.cc,
// test_quant_emu.cc, and the CUDA executor's emulated device, emu_device.cc).
//
// What it models: a CTA's threads are coroutines (ucontext) on one OS thread,
// (1-D or 2-D blocks; warps are 32 consecutive linear thread ids)
// switched only at __syncthreads and warp collectives. The scheduling policy
// (emu.policy) picks the next thread to resume: round robin, or always the
// lowest (highest) numbered thread that is not blocked — the latter let one
// warp run as far ahead of the others as the barriers allow, which exposes a
// missing __syncthreads.
// __syncthreads is a block barrier (__syncthreads_or also ORs the threads'
// predicates); __shfl_xor_sync, __ballot_sync and mma.sync are warp
// collectives (every lane posts its registers, a warp barrier, every lane
// reads what it needs; double-buffered by call so one barrier suffices);
// __syncwarp is the warp barrier alone.
// __shared__ is static thread_local: a kernel's static __shared__ arrays are
// one per OS thread, so shared by the CTA's coroutines (one CTA runs at a
// time); the dynamic shared memory (AX_DYN_SMEM) is emu_dyn_smem(), one per
// OS thread too, which emu_launch callers pass to be filled with 0xff before
// every CTA. The emulator's state is thread_local as well, so several OS
// threads (local ranks) may each run kernels.
// cp.async copies are queued per thread and done at the thread's
// cp.async.wait_group (the latest moment the hardware may complete them), so
// a read of a tile before its wait + barrier sees the previous contents.
// Dynamic shared memory is filled with 0xff bytes (bf16 / fp32 NaN) before
// every CTA. mma.m16n8k16 follows the PTX ISA fragment layout as written at
// common.cuh's tensor-core section — so this checks the kernels' use of that
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
#include <memory>
#include <utility>
#include <vector>

#define __device__
#define __host__
#define __global__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local
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
inline double __dadd_rn(double a, double b) { return a + b; }
inline double __dmul_rn(double a, double b) { return a * b; }
inline double __ddiv_rn(double a, double b) { return a / b; }
inline int __popc(unsigned v) { return __builtin_popcount(v); }
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
// Coroutine switching. On x86-64 (without AddressSanitizer, which must see
// stack switches through swapcontext) a switch saves the callee-saved
// registers on the old stack and swaps the stack pointer: no system call,
// unlike swapcontext's signal-mask save. (MXCSR and the x87 control word are
// not switched: no kernel changes them.)
#if defined(__x86_64__) && !defined(__SANITIZE_ADDRESS__)
#define EMU_FAST_SWITCH 1
// *save = the current stack pointer after pushing the state; resume at `to`.
// Top-level assembly (a COMDAT section, so every translation unit may carry
// it) behind an extern declaration: the compiler must assume a full call
// (interprocedural register allocation cannot see into it).
__asm__(".pushsection .text.axo_emu_switch,\"axG\",@progbits,axo_emu_switch,comdat\n\t"
        ".globl axo_emu_switch\n\t.hidden axo_emu_switch\n\t.type axo_emu_switch,@function\n"
        "axo_emu_switch:\n\t"
        "pushq %rbp\n\tpushq %rbx\n\tpushq %r12\n\tpushq %r13\n\tpushq %r14\n\tpushq %r15\n\t"
        "movq %rsp, (%rdi)\n\tmovq %rsi, %rsp\n\t"
        "popq %r15\n\tpopq %r14\n\tpopq %r13\n\tpopq %r12\n\tpopq %rbx\n\tpopq %rbp\n\tret\n\t"
        ".size axo_emu_switch, .-axo_emu_switch\n\t.popsection\n");
extern "C" void axo_emu_switch(void **save, void *to);
#define emu_switch axo_emu_switch
#else
#define EMU_FAST_SWITCH 0
#endif
struct emu_thread {
#if EMU_FAST_SWITCH
    void *sp; // saved stack pointer while switched out
#else
    ucontext_t ctx; // not movable (points into itself): threads are held by pointer
#endif
    int started;
    emu_dim3 tid;
    int done;
    const struct emu_bar *wait_bar; // blocked until wait_bar->gen != wait_gen
    unsigned wait_gen;
    long coll; // warp collectives this lane has entered
    long committed;
    std::vector<emu_copy> pending;
    std::unique_ptr<char[]> stack;
};
constexpr size_t emu_stack_bytes = 256 * 1024;
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
#if EMU_FAST_SWITCH
    void *sched_sp;
#else
    ucontext_t sched;
#endif
    std::vector<std::unique_ptr<emu_thread>> th; // persistent coroutines, one per thread slot
    emu_bar block_bar;
    std::vector<emu_bar> warp_bar;
    std::vector<emu_slot> slots; // [warp][2][32]
    std::function<void()> body;
    long long yields;
    int policy; // 0 round robin, 1 lowest-numbered runnable thread first, 2 highest first
    int bar_or[2]; // __syncthreads_or of block barrier generation gen, in bar_or[gen & 1]
    long long block_syncs; // block barriers completed (every CTA, every launch): tests count loop trips by it
};
// The state is reached through a thread_local pointer (constant-initialised:
// no TLS wrapper call on every threadIdx) to the thread's emu.
inline thread_local emu_state emu; // tests set emu.policy
inline thread_local emu_state *emu_p_ = nullptr;
inline emu_state *emu_st() {
    emu_state *p = emu_p_;
    if (__builtin_expect(!p, 0)) p = emu_p_ = &emu;
    return p;
}
#define EMU (*emu_st())
// the dynamic shared memory the kernels declare (AX_DYN_SMEM, common.cuh)
constexpr size_t emu_smem_bytes = 232448; // the sm_90 opt-in limit, 227 KiB
inline unsigned char *emu_dyn_smem() {
    alignas(16) static thread_local unsigned char b[emu_smem_bytes];
    return b;
}
#define AX_DYN_SMEM(T, name) T *const name = reinterpret_cast<T *>(emu_dyn_smem())
inline int emu_lin() { return (int)(EMU.cur->tid.x + EMU.cur->tid.y * EMU.block.x); } // linear thread id

#define threadIdx (EMU.cur->tid)
#define blockIdx (EMU.bid)
#define blockDim (EMU.block)
#define gridDim (EMU.grid)

inline void emu_yield() {
    EMU.yields++;
#if EMU_FAST_SWITCH
    emu_switch(&EMU.cur->sp, EMU.sched_sp);
#else
    swapcontext(&EMU.cur->ctx, &EMU.sched);
#endif
}
inline void emu_bar_wait(emu_bar &b) {
    const unsigned g = b.gen;
    if (++b.count == b.n) {
        b.count = 0;
        // every thread has read the result of generation gen - 1 (it reads it before it can arrive here), so
        // its slot is free for generation gen + 1
        if (&b == &EMU.block_bar) {
            EMU.bar_or[(b.gen + 1) & 1] = 0;
            EMU.block_syncs++;
        }
        b.gen++;
        return;
    }
    EMU.cur->wait_bar = &b;
    EMU.cur->wait_gen = g;
    emu_yield();
    EMU.cur->wait_bar = nullptr;
}
inline void __syncthreads() { emu_bar_wait(EMU.block_bar); }
inline int __syncthreads_or(int pred) {
    const unsigned g = EMU.block_bar.gen;
    if (pred) EMU.bar_or[g & 1] = 1;
    emu_bar_wait(EMU.block_bar);
    return EMU.bar_or[g & 1];
}

// A warp collective: post this lane's slot, wait for the warp, return the warp's slots of this call.
inline emu_slot *emu_collective(const emu_slot &mine) {
    const int tid = emu_lin(), w = tid >> 5, lane = tid & 31;
    emu_slot *buf = &EMU.slots[((size_t)w * 2 + (size_t)(EMU.cur->coll & 1)) * 32];
    EMU.cur->coll++;
    buf[lane] = mine;
    emu_bar_wait(EMU.warp_bar[(size_t)w]);
    return buf;
}
template <typename T> inline T __shfl_xor_sync(unsigned, T v, int o) {
    emu_slot s = {};
    static_assert(sizeof(T) <= sizeof s.f, "shuffle of a large type");
    memcpy(s.f, &v, sizeof v);
    emu_slot *buf = emu_collective(s);
    T r;
    memcpy(&r, buf[(emu_lin() & 31) ^ o].f, sizeof r);
    return r;
}
inline unsigned __ballot_sync(unsigned mask, int pred) {
    emu_slot s = {};
    s.a[0] = pred != 0;
    emu_slot *buf = emu_collective(s);
    unsigned r = 0;
    for (int l = 0; l < 32; l++)
        if (buf[l].a[0]) r |= 1u << l;
    return r & mask;
}
inline void __syncwarp(unsigned mask = 0xffffffffu) {
    (void)mask;
    emu_bar_wait(EMU.warp_bar[(size_t)(emu_lin() >> 5)]);
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
    const int lane = emu_lin() & 31, g = lane >> 2, t = lane & 3;
    for (int e = 0; e < 4; e++) {
        const int r = g + 8 * (e >> 1), col = 2 * t + (e & 1);
        double acc = c[e];
        for (int kk = 0; kk < 16; kk++) acc += (double)A[r][kk] * (double)B[kk][col];
        c[e] = (float)acc;
    }
}
inline void tc_cp16(void *smem, const void *gmem, int bytes) {
    EMU.cur->pending.push_back(emu_copy{smem, gmem, bytes, EMU.cur->committed});
}
inline void tc_cp_commit() { EMU.cur->committed++; }
inline void tc_cp_wait1() { // complete every committed group but the newest
    std::vector<emu_copy> keep;
    for (const emu_copy &c : EMU.cur->pending) {
        if (c.group < EMU.cur->committed - 1) {
            memset(c.dst, 0, 16);
            memcpy(c.dst, c.src, (size_t)c.bytes);
        } else {
            keep.push_back(c);
        }
    }
    EMU.cur->pending.swap(keep);
}

// A thread slot's coroutine: runs the body for each CTA it is resumed for,
// then parks (done) until the next CTA or launch resumes it.
[[noreturn]] inline void emu_thread_main() {
    for (;;) {
        EMU.body();
        EMU.cur->done = 1;
        emu_yield();
    }
}
inline void emu_resume(emu_thread &t) {
    EMU.cur = &t;
#if EMU_FAST_SWITCH
    if (!t.started) { // a fresh stack whose "return address" is emu_thread_main, as if called (rsp % 16 == 8)
        t.started = 1;
        uintptr_t top = ((uintptr_t)t.stack.get() + emu_stack_bytes) & ~(uintptr_t)15;
        void **sp = (void **)top;
        *--sp = nullptr; // never returned to
        *--sp = (void *)&emu_thread_main;
        for (int r = 0; r < 6; r++) *--sp = nullptr; // rbp rbx r12 r13 r14 r15
        t.sp = sp;
    }
    emu_switch(&EMU.sched_sp, t.sp);
#else
    if (!t.started) {
        t.started = 1;
        getcontext(&t.ctx);
        t.ctx.uc_stack.ss_sp = t.stack.get();
        t.ctx.uc_stack.ss_size = emu_stack_bytes;
        t.ctx.uc_link = nullptr; // emu_thread_main never returns
        makecontext(&t.ctx, (void (*)())emu_thread_main, 0);
    }
    swapcontext(&EMU.sched, &t.ctx);
#endif
}
// Runs body as a grid of CTAs of block.x * block.y threads, one CTA at a time;
// smem (smem_bytes) is filled with 0xff before each CTA.
inline void emu_launch_b(emu_dim3 grid, emu_dim3 block, unsigned char *smem, size_t smem_bytes,
                         std::function<void()> body) {
    const int nt = (int)(block.x * block.y);
    EMU.grid = grid;
    EMU.block = emu_dim3{block.x, block.y, 1};
    EMU.body = body;
    while (EMU.th.size() < (size_t)nt) { // coroutines and their stacks are kept from launch to launch
        EMU.th.emplace_back(new emu_thread());
        EMU.th.back()->stack.reset(new char[emu_stack_bytes]); // not zeroed: untouched pages stay free
    }
    EMU.warp_bar.assign((size_t)(nt + 31) / 32, emu_bar{32, 0, 0});
    EMU.slots.assign((size_t)((nt + 31) / 32) * 64, emu_slot{});
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                EMU.bid = emu_dim3{bx, by, bz};
                if (smem_bytes) memset(smem, 0xff, smem_bytes);
                EMU.block_bar = emu_bar{nt, 0, 0};
                EMU.bar_or[0] = EMU.bar_or[1] = 0;
                for (int i = 0; i < nt; i++) {
                    emu_thread &t = *EMU.th[(size_t)i];
                    t.tid = emu_dim3{(unsigned)i % block.x, (unsigned)i / block.x, 0};
                    t.done = 0;
                    t.wait_bar = nullptr;
                    t.coll = 0;
                    t.committed = 0;
                    t.pending.clear();
                }
                for (int next = 0;;) {
                    int pick = -1;
                    for (int j = 0, i = EMU.policy == 0 ? next : EMU.policy == 1 ? 0 : nt - 1; j < nt && pick < 0; j++) {
                        const emu_thread &t = *EMU.th[(size_t)i];
                        if (!t.done && !(t.wait_bar && t.wait_bar->gen == t.wait_gen)) pick = i;
                        i = EMU.policy == 2 ? i - 1 : i + 1 == nt ? 0 : i + 1;
                    }
                    if (pick < 0) break;
                    emu_resume(*EMU.th[(size_t)pick]);
                    next = pick + 1 == nt ? 0 : pick + 1;
                }
                for (int i = 0; i < nt; i++)
                    if (!EMU.th[(size_t)i]->done) {
                        fprintf(stderr, "emulator: deadlock, thread %d waits at a barrier no other thread reaches\n", i);
                        abort();
                    }
                for (int w = 0; w < (nt + 31) / 32; w++)
                    if (EMU.warp_bar[(size_t)w].count) {
                        fprintf(stderr, "emulator: warp %d ended inside a collective\n", w);
                        abort();
                    }
            }
}
// Runs body as a grid of CTAs of nt threads (blockDim.x = nt), one CTA at a time.
inline void emu_launch(emu_dim3 grid, int nt, unsigned char *smem, size_t smem_bytes, std::function<void()> body) {
    emu_launch_b(grid, emu_dim3{(unsigned)nt, 1, 1}, smem, smem_bytes, body);
}

// Calls kernel f with its parameters read from args (cudaLaunchKernel's
// form: args[i] points at parameter i). emu_invoker<decltype(&k), &k>::call.
template <typename F, F f> struct emu_invoker;
template <typename... A, void (*f)(A...)> struct emu_invoker<void (*)(A...), f> {
    template <size_t... I> static void call_(void **args, std::index_sequence<I...>) {
        f(*static_cast<A *>(args[I])...);
    }
    static void call(void **args) { call_(args, std::index_sequence_for<A...>{}); }
};
