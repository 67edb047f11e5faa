// Volume compositing on CUDA: one thread per ray, the same per-ray walks as composite_cpu.cpp.
#include <cuda_runtime.h>

#include "composite.h"

namespace recon {
namespace {

__global__ void fwd_kernel(const float* __restrict__ alphas, const float* __restrict__ values,
                           const int64_t* __restrict__ packed, int64_t n_rays, int64_t C, float* __restrict__ out,
                           float* __restrict__ opacity, float* __restrict__ weights, float* __restrict__ trans) {
    const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r >= n_rays) return;
    const int64_t b = packed[2 * r], e = b + packed[2 * r + 1];
    float* o = out + r * C;
    for (int64_t c = 0; c < C; ++c) o[c] = 0.f;
    float op = 0.f;
    double T = 1.0;
    for (int64_t s = b; s < e; ++s) {
        const float a = clamp_alpha(alphas[s]);
        const float t = float(T);
        const float w = a * t;
        trans[s] = t;
        weights[s] = w;
        op += w;
        for (int64_t c = 0; c < C; ++c) o[c] += w * values[s * C + c];
        T *= 1.0 - double(a);
    }
    opacity[r] = op;
}

__global__ void bwd_kernel(const float* __restrict__ alphas, const float* __restrict__ values,
                           const float* __restrict__ trans, const int64_t* __restrict__ packed, int64_t n_rays,
                           int64_t C, const CompositeGrads gr) {
    const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r >= n_rays) return;
    const int64_t b = packed[2 * r];
    composite_bwd_ray<0>(alphas, values, trans, r, b, b + packed[2 * r + 1], C, gr);
}

constexpr int kThreads = 128;

unsigned blocks_for(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }

}  // namespace

void composite_fwd_cuda(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                        int64_t n_channels, float* out, float* opacity, float* weights, float* trans,
                        void* stream) {
    if (n_rays == 0) return;
    fwd_kernel<<<blocks_for(n_rays), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        alphas, values, packed, n_rays, n_channels, out, opacity, weights, trans);
}

void composite_bwd_cuda(const float* alphas, const float* values, const float* trans, const int64_t* packed,
                        int64_t n_rays, int64_t n_channels, const CompositeGrads& grads, void* stream) {
    if (n_rays == 0) return;
    bwd_kernel<<<blocks_for(n_rays), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        alphas, values, trans, packed, n_rays, n_channels, grads);
}

}  // namespace recon
