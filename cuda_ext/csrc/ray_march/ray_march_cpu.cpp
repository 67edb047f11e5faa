// Ray marching on CPU: one pass over blocks of rays, each block keeping its samples in its own
// buffer; the buffers are then concatenated in ray order. Each ray is walked in chunks of steps:
// first the cells of the whole chunk (branch-free, vectorised), then the occupancy tests.
#include <algorithm>
#include <vector>

#include "ray_march.h"

namespace recon {
namespace {

constexpr int kChunk = 16;

// Appends the kept t0 of ray r to buf; returns how many.
int64_t march_ray(const float* o, const float* d, float near, float far, float off, const bool* occ,
                  const MarchParams& p, std::vector<float>& buf) {
    const size_t before = buf.size();
    float t0[kChunk];
    int32_t cell[kChunk];
    for (int32_t k0 = 0; k0 < p.max_steps; k0 += kChunk) {
        for (int q = 0; q < kChunk; ++q) {
            t0[q] = march_t0(near, off, k0 + q, p);
            cell[q] = march_cell<false>(o, d, t0[q], p);
        }
        const int m = std::min(kChunk, p.max_steps - k0);
        for (int q = 0; q < m; ++q) {
            if (!(t0[q] < far)) {
                if (p.step > 0.f) return int64_t(buf.size() - before);  // and every later step
                continue;
            }
            if (cell[q] >= 0 && occ[cell[q]]) buf.push_back(t0[q]);
        }
    }
    return int64_t(buf.size() - before);
}

}  // namespace

void march_rays_cpu(const float* origins, const float* dirs, const float* near, const float* far,
                    const float* offsets, int64_t n_rays, const bool* occ, const MarchParams& p,
                    int64_t* counts, const std::function<float*(int64_t)>& alloc, int n_threads) {
    const int64_t block = 16;  // rays per task: small, so that threads share uneven rays well
    const int64_t n_blocks = (n_rays + block - 1) / block;
    std::vector<std::vector<float>> kept(n_blocks);
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
    for (int64_t b = 0; b < n_blocks; ++b)
        for (int64_t r = b * block; r < std::min(n_rays, (b + 1) * block); ++r)
            counts[r] = march_ray(origins + 3 * r, dirs + 3 * r, near[r], far[r], offsets ? offsets[r] : 0.f, occ,
                                  p, kept[b]);
    std::vector<int64_t> first(n_blocks + 1, 0);
    for (int64_t b = 0; b < n_blocks; ++b) first[b + 1] = first[b] + int64_t(kept[b].size());
    float* out = alloc(first[n_blocks]);
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t b = 0; b < n_blocks; ++b) std::copy(kept[b].begin(), kept[b].end(), out + first[b]);
}

}  // namespace recon
