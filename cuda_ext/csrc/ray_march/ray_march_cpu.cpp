// Ray marching on CPU: one pass over blocks of rays, each block keeping its samples in its own
// buffer; the buffers are then concatenated in ray order.
#include <algorithm>
#include <vector>

#include "ray_march.h"

namespace recon {

void march_rays_cpu(const float* origins, const float* dirs, const float* near, const float* far,
                    const float* offsets, int64_t n_rays, const bool* occ, const MarchParams& p,
                    int64_t* counts, const std::function<float*(int64_t)>& alloc, int n_threads) {
    const int64_t block = 64;
    const int64_t n_blocks = (n_rays + block - 1) / block;
    std::vector<std::vector<float>> kept(n_blocks);
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
    for (int64_t b = 0; b < n_blocks; ++b) {
        std::vector<float>& buf = kept[b];
        for (int64_t r = b * block; r < std::min(n_rays, (b + 1) * block); ++r) {
            const float off = offsets ? offsets[r] : 0.f;
            const size_t before = buf.size();
            float t0;
            for (int64_t k = 0; k < p.max_steps; ++k) {
                const int s = march_sample<false>(origins + 3 * r, dirs + 3 * r, near[r], far[r], off, k, p, occ, &t0);
                if (s < 0 && p.step > 0.f) break;
                if (s > 0) buf.push_back(t0);
            }
            counts[r] = int64_t(buf.size() - before);
        }
    }
    std::vector<int64_t> first(n_blocks + 1, 0);
    for (int64_t b = 0; b < n_blocks; ++b) first[b + 1] = first[b] + int64_t(kept[b].size());
    float* out = alloc(first[n_blocks]);
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t b = 0; b < n_blocks; ++b) std::copy(kept[b].begin(), kept[b].end(), out + first[b]);
}

}  // namespace recon
