// Hash-grid encoding on CUDA: one thread per (point, level); the backward scatters with atomicAdd.
#include <cuda_runtime.h>

#include "hash_grid.h"

namespace recon {
namespace {

__global__ void fwd_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ table,
                           const HashGridLevels g, float* __restrict__ out) {
    const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (tid >= n * g.n_levels) return;
    const int64_t i = tid / g.n_levels;
    const int l = int(tid % g.n_levels);
    const int nf = g.n_features;
    const HashGridCell cell = hash_grid_cell(x + 3 * i, g.resolution[l]);
    float* o = out + i * g.n_levels * nf + l * nf;
    // features in chunks of up to 8 register accumulators, in the twin's corner order
    for (int f0 = 0; f0 < nf; f0 += 8) {
        const int m = nf - f0 < 8 ? nf - f0 : 8;
        float acc[8] = {0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f, 0.f};
        for (int c = 0; c < 8; ++c) {
            const float w = hash_grid_weight(cell, c);
            const float* row = table + hash_grid_corner_row(cell, c, g, l) * nf + f0;
#pragma unroll
            for (int f = 0; f < 8; ++f)
                if (f < m) acc[f] += w * row[f];
        }
#pragma unroll
        for (int f = 0; f < 8; ++f)
            if (f < m) o[f0 + f] = acc[f];
    }
}

__global__ void bwd_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ grad_out,
                           const HashGridLevels g, float* __restrict__ grad_table) {
    const int64_t tid = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (tid >= n * g.n_levels) return;
    const int64_t i = tid / g.n_levels;
    const int l = int(tid % g.n_levels);
    const int nf = g.n_features;
    const HashGridCell cell = hash_grid_cell(x + 3 * i, g.resolution[l]);
    const float* go = grad_out + i * g.n_levels * nf + l * nf;
    for (int c = 0; c < 8; ++c) {
        const float w = hash_grid_weight(cell, c);
        float* row = grad_table + hash_grid_corner_row(cell, c, g, l) * nf;
        for (int f = 0; f < nf; ++f) atomicAdd(row + f, w * go[f]);
    }
}

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }

}  // namespace

void hash_grid_fwd_cuda(const float* x, int64_t n, const float* table, const HashGridLevels& g, float* out,
                        void* stream) {
    const int64_t work = n * g.n_levels;
    if (work == 0) return;
    fwd_kernel<<<blocks_for(work), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, n, table, g, out);
}

void hash_grid_bwd_cuda(const float* x, int64_t n, const float* grad_out, const HashGridLevels& g,
                        float* grad_table, void* stream) {
    const int64_t work = n * g.n_levels;
    if (work == 0) return;
    bwd_kernel<<<blocks_for(work), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(x, n, grad_out, g,
                                                                                      grad_table);
}

namespace {

__global__ void bwd_x_kernel(const float* __restrict__ x, int64_t n, const float* __restrict__ table,
                             const float* __restrict__ grad_out, const HashGridLevels g, float* __restrict__ grad_x) {
    const int64_t i = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (i < n) hash_grid_grad_x(x, i, table, grad_out, g, grad_x + 3 * i);
}

}  // namespace

void hash_grid_bwd_x_cuda(const float* x, int64_t n, const float* table, const float* grad_out,
                          const HashGridLevels& g, float* grad_x, void* stream) {
    if (n == 0) return;
    bwd_x_kernel<<<unsigned((n + 127) / 128), 128, 0, static_cast<cudaStream_t>(stream)>>>(x, n, table, grad_out, g,
                                                                                            grad_x);
}

}  // namespace recon
