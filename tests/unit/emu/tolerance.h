// tolerance.h — the element-wise check the emulator kernel tests share: got[i]
// is within rtol |ref[i]| + afrac max|ref| of ref[i] (the absolute part scaled
// by the largest finite reference value), or both are the same infinity (an
// lse of -inf: a query row that sees no key).
#ifndef AXO_EMU_TOLERANCE_H
#define AXO_EMU_TOLERANCE_H

#include <algorithm>
#include <cmath>
#include <cstdint>

struct emu_tol {
    int64_t bad;  // elements outside the tolerance
    int64_t wi;   // the worst one (relative to its tolerance)
    double worst; // its error over its tolerance (inf for a non-finite error)
};

static inline emu_tol emu_tol_scan(const float *got, const float *ref, int64_t n, double rtol, double afrac) {
    double mx = 0;
    for (int64_t i = 0; i < n; i++)
        if (std::isfinite(ref[i])) mx = std::max(mx, std::fabs((double)ref[i]));
    emu_tol t = {0, 0, 0.0};
    for (int64_t i = 0; i < n; i++) {
        const bool same_inf = std::isinf(ref[i]) && got[i] == ref[i];
        const double e = same_inf ? 0.0 : std::fabs((double)got[i] - (double)ref[i]),
                     lim = rtol * (same_inf ? 0.0 : std::fabs((double)ref[i])) + afrac * mx;
        const bool ok = e <= lim || same_inf;
        if (!ok) t.bad++;
        const double rel = std::isfinite(e) ? e / (lim > 0 ? lim : 1) : INFINITY;
        if (!ok || !(rel <= t.worst)) t.worst = rel, t.wi = i;
    }
    return t;
}

#endif
