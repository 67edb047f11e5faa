// Volume compositing on CPU: OpenMP over rays, each ray walked front to back.
// The channel count is a template parameter for 1-4 channels (accumulators in registers) and a
// run-time value (kC == 0) otherwise.
#include <vector>

#include "composite.h"

namespace recon {
namespace {

template <int kC>
void fwd_ray(const float* alphas, const float* values, int64_t b, int64_t e, int64_t n_channels, float* o,
             float* opacity, float* weights) {
    const int64_t C = kC > 0 ? kC : n_channels;
    float acc[kC > 0 ? kC : 1] = {};
    if (kC == 0)
        for (int64_t c = 0; c < C; ++c) o[c] = 0.f;
    float op = 0.f;
    double T = 1.0;
    for (int64_t s = b; s < e; ++s) {
        const float a = clamp_alpha(alphas[s]);
        const float w = a * float(T);
        weights[s] = w;
        op += w;
        const float* v = values + s * C;
        if (kC > 0) {
            for (int c = 0; c < kC; ++c) acc[c] += w * v[c];
        } else {
            for (int64_t c = 0; c < C; ++c) o[c] += w * v[c];
        }
        T *= 1.0 - double(a);
    }
    if (kC > 0)
        for (int c = 0; c < kC; ++c) o[c] = acc[c];
    *opacity = op;
}

// Two walks over the ray: forward, storing T_s and G_s = dL/dw_s; then backward, carrying
// U_s = sum_{k>s} G_k a_k prod_{s<j<k} (1 - a_j), so that S_s / (1 - a_s) = T_s U_s and
// dL/da_s = T_s (G_s - U_s), with no division by 1 - a_s (see composite.h).
template <int kC>
void bwd_ray(const float* alphas, const float* values, int64_t r, int64_t b, int64_t e, int64_t n_channels,
             const CompositeGrads& gr, std::vector<double>& T, std::vector<double>& G) {
    const int64_t C = kC > 0 ? kC : n_channels;
    const float* go = gr.g_out ? gr.g_out + r * C : nullptr;
    const double gop = gr.g_opacity ? gr.g_opacity[r] : 0.0;
    const int64_t n = e - b;
    if (int64_t(T.size()) < n) {
        T.resize(n);
        G.resize(n);
    }
    double t = 1.0;
    for (int64_t i = 0; i < n; ++i) {
        const int64_t s = b + i;
        double g = gop + (gr.g_weights ? gr.g_weights[s] : 0.f);
        if (go) {
            const float* v = values + s * C;
            for (int64_t c = 0; c < C; ++c) g += double(go[c]) * v[c];
        }
        T[i] = t;
        G[i] = g;
        t *= 1.0 - double(clamp_alpha(alphas[s]));
    }
    double U = 0.0;
    for (int64_t i = n - 1; i >= 0; --i) {
        const int64_t s = b + i;
        const double a = clamp_alpha(alphas[s]);
        gr.g_alphas[s] = alpha_in_range(alphas[s]) ? float(T[i] * (G[i] - U)) : 0.f;
        if (gr.g_values) {
            const float w = float(a) * float(T[i]);
            float* gv = gr.g_values + s * C;
            for (int64_t c = 0; c < C; ++c) gv[c] = go ? w * go[c] : 0.f;
        }
        U = G[i] * a + (1.0 - a) * U;
    }
}

template <int kC>
void fwd(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays, int64_t C, float* out,
         float* opacity, float* weights, int n_threads) {
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 16)
    for (int64_t r = 0; r < n_rays; ++r)
        fwd_ray<kC>(alphas, values, packed[2 * r], packed[2 * r] + packed[2 * r + 1], C, out + r * C, opacity + r,
                    weights);
}

template <int kC>
void bwd(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays, int64_t C,
         const CompositeGrads& grads, int n_threads) {
#pragma omp parallel num_threads(n_threads)
    {
        std::vector<double> T, G;  // per-thread buffers, as long as the longest ray seen
#pragma omp for schedule(dynamic, 16)
        for (int64_t r = 0; r < n_rays; ++r)
            bwd_ray<kC>(alphas, values, r, packed[2 * r], packed[2 * r] + packed[2 * r + 1], C, grads, T, G);
    }
}

}  // namespace

void composite_fwd_cpu(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                       int64_t n_channels, float* out, float* opacity, float* weights, int n_threads) {
    switch (n_channels) {
        case 1: return fwd<1>(alphas, values, packed, n_rays, 1, out, opacity, weights, n_threads);
        case 2: return fwd<2>(alphas, values, packed, n_rays, 2, out, opacity, weights, n_threads);
        case 3: return fwd<3>(alphas, values, packed, n_rays, 3, out, opacity, weights, n_threads);
        case 4: return fwd<4>(alphas, values, packed, n_rays, 4, out, opacity, weights, n_threads);
        default: return fwd<0>(alphas, values, packed, n_rays, n_channels, out, opacity, weights, n_threads);
    }
}

void composite_bwd_cpu(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                       int64_t n_channels, const CompositeGrads& grads, int n_threads) {
    switch (n_channels) {
        case 1: return bwd<1>(alphas, values, packed, n_rays, 1, grads, n_threads);
        case 2: return bwd<2>(alphas, values, packed, n_rays, 2, grads, n_threads);
        case 3: return bwd<3>(alphas, values, packed, n_rays, 3, grads, n_threads);
        case 4: return bwd<4>(alphas, values, packed, n_rays, 4, grads, n_threads);
        default: return bwd<0>(alphas, values, packed, n_rays, n_channels, grads, n_threads);
    }
}

}  // namespace recon
