// Front-to-back volume compositing of packed samples (see recon/ops/composite.py for the contract).
// alphas (S,), values (S, C), packed (R, 2) int64 [first sample, count]; outputs out (R, C),
// opacity (R,), weights (S,), all float32 and contiguous.
//
// Backward, with a_i = clamp(alpha_i), T_i = prod_{j<i} (1 - a_j), w_i = a_i T_i and the upstream
// gradients g_out (R, C), g_opacity (R,), g_weights (S,): every output is linear in the weights,
// so dL/dw_i = G_i = <g_out, v_i> + g_opacity + g_weights_i, and since w_k (k > i) carries the
// factor (1 - a_i):
//   dL/da_i = G_i T_i - S_i / (1 - a_i),  S_i = sum_{k>i} G_k w_k (the suffix sum),
// times the clamp's gradient (1 where 0 <= alpha_i <= ALPHA_MAX, else 0); dL/dv_i = w_i g_out.
// The CPU kernel walks each ray back with U_i = S_i / T_{i+1} = sum_{k>i} G_k a_k prod_{i<j<k} (1 - a_j),
// U_{i-1} = G_i a_i + (1 - a_i) U_i, and takes dL/da_i = T_i (G_i - U_i): no division. The CUDA
// kernel, without a per-ray buffer for T_i, takes S_i = total - prefix and divides by
// 1 - a_i >= 1e-6. Both sum in double.
#pragma once
#include <cstdint>

#include "../common.h"

namespace recon {

// torch clamps with float(1.0 - 1e-6); the same constant, rounded the same way.
constexpr float kAlphaMax = float(1.0 - 1e-6);

RECON_HD float clamp_alpha(float a) { return a > 0.f ? (a < kAlphaMax ? a : kAlphaMax) : 0.f; }
RECON_HD bool alpha_in_range(float a) { return a >= 0.f && a <= kAlphaMax; }

// g_out, g_opacity, g_weights may be null (no gradient: zero); g_values may be null (not needed).
struct CompositeGrads {
    const float* g_out;
    const float* g_opacity;
    const float* g_weights;
    float* g_alphas;
    float* g_values;
};

void composite_fwd_cpu(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                       int64_t n_channels, float* out, float* opacity, float* weights, int n_threads);
void composite_bwd_cpu(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                       int64_t n_channels, const CompositeGrads& grads, int n_threads);

void composite_fwd_cuda(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                        int64_t n_channels, float* out, float* opacity, float* weights, void* stream);
void composite_bwd_cuda(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                        int64_t n_channels, const CompositeGrads& grads, void* stream);

}  // namespace recon
