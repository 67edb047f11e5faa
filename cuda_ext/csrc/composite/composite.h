// Front-to-back volume compositing of packed samples (see recon/ops/composite.py for the contract).
// alphas (S,), values (S, C), packed (R, 2) int64 [first sample, count]; outputs out (R, C),
// opacity (R,), weights (S,) and, for the backward, the transmittance trans (S,); all float32
// and contiguous.
//
// Forward, with a_i = clamp(alpha_i): T_i = prod_{j<i} (1 - a_j) (a product in double, stored
// as float like the twin's exp(cumsum(log1p(-a)))), w_i = a_i T_i.
//
// Backward, with the upstream gradients g_out (R, C), g_opacity (R,), g_weights (S,): every
// output is linear in the weights, so dL/dw_i = G_i = <g_out, v_i> + g_opacity + g_weights_i,
// and since w_k (k > i) carries the factor (1 - a_i):
//   dL/da_i = G_i T_i - S_i / (1 - a_i),  S_i = sum_{k>i} G_k w_k (the suffix sum),
// times the clamp's gradient (1 where 0 <= alpha_i <= ALPHA_MAX, else 0); dL/dv_i = w_i g_out.
// The kernels walk each ray back carrying U_i = S_i / T_{i+1} = sum_{k>i} G_k a_k prod_{i<j<k} (1 - a_j),
// U_{i-1} = G_i a_i + (1 - a_i) U_i (in double; G_i in float), and take dL/da_i = T_i (G_i - U_i): one walk,
// no division by 1 - a_i, and none of the cancellation that division amplifies.
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

// dL/da and dL/dv of samples [b, e) of ray r (outputs as in CompositeGrads, trans from the forward).
template <int kC>  // channels, or 0: n_channels at run time
RECON_HD void composite_bwd_ray(const float* alphas, const float* values, const float* trans, int64_t r,
                                int64_t b, int64_t e, int64_t n_channels, const CompositeGrads& gr) {
    const int64_t C = kC > 0 ? kC : n_channels;
    const float* go = gr.g_out ? gr.g_out + r * C : nullptr;
    const float gop = gr.g_opacity ? gr.g_opacity[r] : 0.f;
    double U = 0.0;
    for (int64_t s = e - 1; s >= b; --s) {
        float G = gop + (gr.g_weights ? gr.g_weights[s] : 0.f);  // float, as the twin's autograd
        if (go)
            for (int64_t c = 0; c < C; ++c) G += go[c] * values[s * C + c];
        const float a = clamp_alpha(alphas[s]);
        gr.g_alphas[s] = alpha_in_range(alphas[s]) ? float(double(trans[s]) * (double(G) - U)) : 0.f;
        if (gr.g_values) {
            const float w = a * trans[s];
            for (int64_t c = 0; c < C; ++c) gr.g_values[s * C + c] = go ? w * go[c] : 0.f;
        }
        U = double(G) * double(a) + (1.0 - double(a)) * U;
    }
}

void composite_fwd_cpu(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                       int64_t n_channels, float* out, float* opacity, float* weights, float* trans,
                       int n_threads);
void composite_bwd_cpu(const float* alphas, const float* values, const float* trans, const int64_t* packed,
                       int64_t n_rays, int64_t n_channels, const CompositeGrads& grads, int n_threads);

void composite_fwd_cuda(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                        int64_t n_channels, float* out, float* opacity, float* weights, float* trans,
                        void* stream);
void composite_bwd_cuda(const float* alphas, const float* values, const float* trans, const int64_t* packed,
                        int64_t n_rays, int64_t n_channels, const CompositeGrads& grads, void* stream);

}  // namespace recon
