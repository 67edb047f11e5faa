// Occupancy-grid ray marching (see recon/ops/ray_march.py for the contract).
// origins, dirs (R, 3); near, far, offsets (R,) float32; occupancy (G, G, G) bool, contiguous.
#pragma once
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <functional>

#include "../common.h"

namespace recon {

struct MarchParams {
    float bound;          // float(bound)
    float two_bound;      // float(2 * bound), the divisor of the cell rule (CPU twin)
    float inv_two_bound;  // 1.0f / float(2 * bound): torch on CUDA multiplies by it instead
    float step;           // float(step)
    float half_step;      // float(0.5 * step)
    float grid;           // float(G)
    float grid_max;       // float(G - 1)
    int32_t G;            // G^3 < 2^31
    int32_t max_steps;    // < 2^24, so float(k) is exact
};

// The rule of the torch twin, in the same float32 operations and order (so the same samples):
// t0 = near + (k + offset) * step; mid = t0 + step/2; p = o + d * mid; sample k is kept when
// t0 < far, |p| < bound on every axis and occupancy[clamp(floor((p + bound) / (2 bound) * G))].
// t0 grows with k (step > 0), so the first k with t0 >= far ends the ray.
#ifdef __CUDA_ARCH__
#define RECON_ADD(a, b) __fadd_rn(a, b)  // no FMA contraction: torch rounds every op
#define RECON_MUL(a, b) __fmul_rn(a, b)
#else
#define RECON_ADD(a, b) ((a) + (b))
#define RECON_MUL(a, b) ((a) * (b))
#endif

RECON_HD float march_t0(float near, float off, int32_t k, const MarchParams& p) {
    return RECON_ADD(near, RECON_MUL(RECON_ADD(float(k), off), p.step));
}

// Cell coordinate of a midpoint coordinate x inside the cube (|x| < bound, so v below lies in
// [0, G]): clamp(floor((x + bound) / (2 bound) * G), 0, G-1) == floor(min(v, G-1)), and floor is
// truncation for v >= 0. kCuda mirrors torch's CUDA division by a scalar, which multiplies by
// its reciprocal.
template <bool kCuda>
RECON_HD int32_t march_axis(float x, const MarchParams& p) {
    const float s = RECON_ADD(x, p.bound);
    const float v = RECON_MUL(kCuda ? RECON_MUL(s, p.inv_two_bound) : s / p.two_bound, p.grid);
#ifdef __CUDA_ARCH__
    return int32_t(fminf(fmaxf(v, 0.f), p.grid_max));
#else
    return int32_t(std::min(std::max(v, 0.f), p.grid_max));  // the form GCC vectorises
#endif
}

// Flat occupancy index of the cell holding the midpoint of the sample starting at t0, or -1 when
// the midpoint is outside the cube. Branch-free, so the CPU loop over a chunk of steps vectorises.
template <bool kCuda>
RECON_HD int32_t march_cell(const float* o, const float* d, float t0, const MarchParams& p) {
    const float mid = RECON_ADD(t0, p.half_step);
    float x[3];
    bool inside = true;
    for (int a = 0; a < 3; ++a) {
        const float xa = RECON_ADD(o[a], RECON_MUL(d[a], mid));
        const bool in = fabsf(xa) < p.bound;
        inside = inside & in;
        x[a] = in ? xa : 0.f;  // keeps march_axis finite (NaN, inf) whatever the ray
    }
    const int32_t idx = (march_axis<kCuda>(x[0], p) * p.G + march_axis<kCuda>(x[1], p)) * p.G +
                        march_axis<kCuda>(x[2], p);
    return inside ? idx : -1;
}

#undef RECON_ADD
#undef RECON_MUL

// CPU (OpenMP over blocks of rays, one pass). counts: (R,) filled; the kept t_starts are written,
// ray by ray, into the buffer that alloc(total) returns.
void march_rays_cpu(const float* origins, const float* dirs, const float* near, const float* far,
                    const float* offsets, int64_t n_rays, const bool* occ, const MarchParams& p,
                    int64_t* counts, const std::function<float*(int64_t)>& alloc, int n_threads);

// CUDA launchers (ray_march.cu): count, then (after the caller's exclusive scan of counts) fill.
void march_rays_count_cuda(const float* origins, const float* dirs, const float* near, const float* far,
                           const float* offsets, int64_t n_rays, const bool* occ, const MarchParams& p,
                           int64_t* counts, void* stream);
void march_rays_fill_cuda(const float* origins, const float* dirs, const float* near, const float* far,
                          const float* offsets, int64_t n_rays, const bool* occ, const MarchParams& p,
                          const int64_t* starts, float* t_starts, float* t_ends, void* stream);

}  // namespace recon
