// Ray marching on CUDA: one thread per ray, twice (count, then fill at the scanned offsets).
#include <cuda_runtime.h>

#include "ray_march.h"

namespace recon {
namespace {

__global__ void count_kernel(const float* __restrict__ origins, const float* __restrict__ dirs,
                             const float* __restrict__ near, const float* __restrict__ far,
                             const float* __restrict__ offsets, int64_t n_rays, const bool* __restrict__ occ,
                             const MarchParams p, int64_t* __restrict__ counts) {
    const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r >= n_rays) return;
    const float off = offsets ? offsets[r] : 0.f;
    int64_t n = 0;
    for (int32_t k = 0; k < p.max_steps; ++k) {
        const float t0 = march_t0(near[r], off, k, p);
        if (!(t0 < far[r])) {
            if (p.step > 0.f) break;  // and every later step
            continue;
        }
        const int32_t cell = march_cell<true>(origins + 3 * r, dirs + 3 * r, t0, p);
        n += cell >= 0 && occ[cell];
    }
    counts[r] = n;
}

__global__ void fill_kernel(const float* __restrict__ origins, const float* __restrict__ dirs,
                            const float* __restrict__ near, const float* __restrict__ far,
                            const float* __restrict__ offsets, int64_t n_rays, const bool* __restrict__ occ,
                            const MarchParams p, const int64_t* __restrict__ starts, float* __restrict__ t_starts,
                            float* __restrict__ t_ends) {
    const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r >= n_rays) return;
    const float off = offsets ? offsets[r] : 0.f;
    int64_t j = starts[r];
    for (int32_t k = 0; k < p.max_steps; ++k) {
        const float t0 = march_t0(near[r], off, k, p);
        if (!(t0 < far[r])) {
            if (p.step > 0.f) break;
            continue;
        }
        const int32_t cell = march_cell<true>(origins + 3 * r, dirs + 3 * r, t0, p);
        if (cell >= 0 && occ[cell]) {
            t_starts[j] = t0;
            t_ends[j] = __fadd_rn(t0, p.step);
            ++j;
        }
    }
}

constexpr int kThreads = 128;

unsigned blocks_for(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }

}  // namespace

void march_rays_count_cuda(const float* origins, const float* dirs, const float* near, const float* far,
                           const float* offsets, int64_t n_rays, const bool* occ, const MarchParams& p,
                           int64_t* counts, void* stream) {
    if (n_rays == 0) return;
    count_kernel<<<blocks_for(n_rays), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        origins, dirs, near, far, offsets, n_rays, occ, p, counts);
}

void march_rays_fill_cuda(const float* origins, const float* dirs, const float* near, const float* far,
                          const float* offsets, int64_t n_rays, const bool* occ, const MarchParams& p,
                          const int64_t* starts, float* t_starts, float* t_ends, void* stream) {
    if (n_rays == 0) return;
    fill_kernel<<<blocks_for(n_rays), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        origins, dirs, near, far, offsets, n_rays, occ, p, starts, t_starts, t_ends);
}

}  // namespace recon
