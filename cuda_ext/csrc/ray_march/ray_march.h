// Occupancy-grid ray marching (see recon/ops/ray_march.py for the contract).
// origins, dirs (R, 3); near, far, offsets (R,) float32; occupancy (G, G, G) bool, contiguous.
#pragma once
#include <cmath>
#include <cstdint>
#include <functional>

#include "../common.h"

namespace recon {

struct MarchParams {
    float bound;       // float(bound)
    float two_bound;   // float(2 * bound), the divisor of the cell rule (CPU twin)
    float inv_two_bound;  // 1.0f / float(2 * bound): torch on CUDA multiplies by it instead
    float step;        // float(step)
    float half_step;   // float(0.5 * step)
    float grid;        // float(G)
    int32_t G;
    int64_t max_steps;
};

// Sample k of a ray kept? The same float32 operations, in the same order, as the torch twin:
// t0 = near + (k + offset) * step; mid = t0 + step/2; p = o + d * mid; kept when t0 < far,
// |p| < bound on every axis and occupancy[floor((p + bound) / (2 bound) * G)] (clamped).
// Returns -1 when t0 >= far (and every later sample too, as t0 grows with k), 1 kept, 0 skipped.
// kCuda mirrors torch's CUDA division by a scalar, which multiplies by its reciprocal.
template <bool kCuda>
RECON_HD int march_sample(const float* o, const float* d, float near, float far, float off, int64_t k,
                          const MarchParams& p, const bool* occ, float* t0_out) {
#ifdef __CUDA_ARCH__
#define RECON_ADD(a, b) __fadd_rn(a, b)
#define RECON_MUL(a, b) __fmul_rn(a, b)
#else
#define RECON_ADD(a, b) ((a) + (b))
#define RECON_MUL(a, b) ((a) * (b))
#endif
    const float t0 = RECON_ADD(near, RECON_MUL(RECON_ADD(float(k), off), p.step));
    *t0_out = t0;
    if (!(t0 < far)) return -1;
    const float mid = RECON_ADD(t0, p.half_step);
    int64_t cell[3];
    for (int a = 0; a < 3; ++a) {
        const float x = RECON_ADD(o[a], RECON_MUL(d[a], mid));
        if (!(fabsf(x) < p.bound)) return 0;
        const float s = RECON_ADD(x, p.bound);
        const float u = kCuda ? RECON_MUL(s, p.inv_two_bound) : s / p.two_bound;
        int64_t c = int64_t(floor_small(RECON_MUL(u, p.grid)));  // |x| < bound: u * G in [0, G]
        cell[a] = c < 0 ? 0 : (c >= p.G ? p.G - 1 : c);
    }
#undef RECON_ADD
#undef RECON_MUL
    return occ[(cell[0] * p.G + cell[1]) * p.G + cell[2]] ? 1 : 0;
}

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
