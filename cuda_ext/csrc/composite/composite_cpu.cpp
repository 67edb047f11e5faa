// Volume compositing on CPU: OpenMP over rays, each ray walked front to back (forward) and back
// to front (backward, see composite.h). The channel count is a template parameter for 1-4
// channels (accumulators in registers) and a run-time value (kC == 0) otherwise.
#include "composite.h"

namespace recon {
namespace {

template <int kC>
void fwd_ray(const float* alphas, const float* values, int64_t b, int64_t e, int64_t n_channels, float* o,
             float* opacity, float* weights, float* trans) {
    const int64_t C = kC > 0 ? kC : n_channels;
    float acc[kC > 0 ? kC : 1] = {};
    if (kC == 0)
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

template <int kC>
void fwd(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays, int64_t C, float* out,
         float* opacity, float* weights, float* trans, int n_threads) {
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 16)
    for (int64_t r = 0; r < n_rays; ++r)
        fwd_ray<kC>(alphas, values, packed[2 * r], packed[2 * r] + packed[2 * r + 1], C, out + r * C, opacity + r,
                    weights, trans);
}

template <int kC>
void bwd(const float* alphas, const float* values, const float* trans, const int64_t* packed, int64_t n_rays,
         int64_t C, const CompositeGrads& grads, int n_threads) {
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 16)
    for (int64_t r = 0; r < n_rays; ++r)
        composite_bwd_ray<kC>(alphas, values, trans, r, packed[2 * r], packed[2 * r] + packed[2 * r + 1], C, grads);
}

}  // namespace

void composite_fwd_cpu(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                       int64_t n_channels, float* out, float* opacity, float* weights, float* trans,
                       int n_threads) {
    switch (n_channels) {
        case 1: return fwd<1>(alphas, values, packed, n_rays, 1, out, opacity, weights, trans, n_threads);
        case 2: return fwd<2>(alphas, values, packed, n_rays, 2, out, opacity, weights, trans, n_threads);
        case 3: return fwd<3>(alphas, values, packed, n_rays, 3, out, opacity, weights, trans, n_threads);
        case 4: return fwd<4>(alphas, values, packed, n_rays, 4, out, opacity, weights, trans, n_threads);
        default: return fwd<0>(alphas, values, packed, n_rays, n_channels, out, opacity, weights, trans, n_threads);
    }
}

void composite_bwd_cpu(const float* alphas, const float* values, const float* trans, const int64_t* packed,
                       int64_t n_rays, int64_t n_channels, const CompositeGrads& grads, int n_threads) {
    switch (n_channels) {
        case 1: return bwd<1>(alphas, values, trans, packed, n_rays, 1, grads, n_threads);
        case 2: return bwd<2>(alphas, values, trans, packed, n_rays, 2, grads, n_threads);
        case 3: return bwd<3>(alphas, values, trans, packed, n_rays, 3, grads, n_threads);
        case 4: return bwd<4>(alphas, values, trans, packed, n_rays, 4, grads, n_threads);
        default: return bwd<0>(alphas, values, trans, packed, n_rays, n_channels, grads, n_threads);
    }
}

}  // namespace recon
