// Volume compositing on CUDA: one thread per ray, the same per-ray walk as composite_cpu.cpp.
#include <cuda_runtime.h>

#include "composite.h"

namespace recon {
namespace {

__global__ void fwd_kernel(const float* __restrict__ alphas, const float* __restrict__ values,
                           const int64_t* __restrict__ packed, int64_t n_rays, int64_t C, float* __restrict__ out,
                           float* __restrict__ opacity, float* __restrict__ weights) {
    const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r >= n_rays) return;
    const int64_t b = packed[2 * r], e = b + packed[2 * r + 1];
    float* o = out + r * C;
    for (int64_t c = 0; c < C; ++c) o[c] = 0.f;
    float op = 0.f;
    double T = 1.0;
    for (int64_t s = b; s < e; ++s) {
        const float a = clamp_alpha(alphas[s]);
        const float w = a * float(T);
        weights[s] = w;
        op += w;
        for (int64_t c = 0; c < C; ++c) o[c] += w * values[s * C + c];
        T *= 1.0 - double(a);
    }
    opacity[r] = op;
}

__device__ double dl_dw(const CompositeGrads& gr, const float* values, const float* go, double gop, int64_t s,
                        int64_t C) {
    double G = gop + (gr.g_weights ? gr.g_weights[s] : 0.f);
    if (go)
        for (int64_t c = 0; c < C; ++c) G += double(go[c]) * values[s * C + c];
    return G;
}

__global__ void bwd_kernel(const float* __restrict__ alphas, const float* __restrict__ values,
                           const int64_t* __restrict__ packed, int64_t n_rays, int64_t C, const CompositeGrads gr) {
    const int64_t r = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (r >= n_rays) return;
    const int64_t b = packed[2 * r], e = b + packed[2 * r + 1];
    const float* go = gr.g_out ? gr.g_out + r * C : nullptr;
    const double gop = gr.g_opacity ? gr.g_opacity[r] : 0.0;
    double T = 1.0, total = 0.0;
    for (int64_t s = b; s < e; ++s) {
        const float a = clamp_alpha(alphas[s]);
        total += dl_dw(gr, values, go, gop, s, C) * double(a * float(T));
        T *= 1.0 - double(a);
    }
    T = 1.0;
    double prefix = 0.0;
    for (int64_t s = b; s < e; ++s) {
        const float a = clamp_alpha(alphas[s]);
        const float w = a * float(T);
        const double G = dl_dw(gr, values, go, gop, s, C);
        prefix += G * double(w);
        const double one_minus_a = 1.0 - double(a);
        const double ga = G * T - (total - prefix) / one_minus_a;
        gr.g_alphas[s] = alpha_in_range(alphas[s]) ? float(ga) : 0.f;
        if (gr.g_values)
            for (int64_t c = 0; c < C; ++c) gr.g_values[s * C + c] = go ? w * go[c] : 0.f;
        T *= one_minus_a;
    }
}

constexpr int kThreads = 128;

unsigned blocks_for(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }

}  // namespace

void composite_fwd_cuda(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                        int64_t n_channels, float* out, float* opacity, float* weights, void* stream) {
    if (n_rays == 0) return;
    fwd_kernel<<<blocks_for(n_rays), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        alphas, values, packed, n_rays, n_channels, out, opacity, weights);
}

void composite_bwd_cuda(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                        int64_t n_channels, const CompositeGrads& grads, void* stream) {
    if (n_rays == 0) return;
    bwd_kernel<<<blocks_for(n_rays), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        alphas, values, packed, n_rays, n_channels, grads);
}

}  // namespace recon
