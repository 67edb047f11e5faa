// Volume compositing on CPU: OpenMP over rays, each ray walked front to back.
#include "composite.h"

namespace recon {

void composite_fwd_cpu(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                       int64_t n_channels, float* out, float* opacity, float* weights, int n_threads) {
    const int64_t C = n_channels;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 16)
    for (int64_t r = 0; r < n_rays; ++r) {
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
            const float* v = values + s * C;
            for (int64_t c = 0; c < C; ++c) o[c] += w * v[c];
            T *= 1.0 - double(a);
        }
        opacity[r] = op;
    }
}

void composite_bwd_cpu(const float* alphas, const float* values, const int64_t* packed, int64_t n_rays,
                       int64_t n_channels, const CompositeGrads& gr, int n_threads) {
    const int64_t C = n_channels;
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 16)
    for (int64_t r = 0; r < n_rays; ++r) {
        const int64_t b = packed[2 * r], e = b + packed[2 * r + 1];
        const float* go = gr.g_out ? gr.g_out + r * C : nullptr;
        const double gop = gr.g_opacity ? gr.g_opacity[r] : 0.0;
        // dL/dw_s, recomputed in both passes rather than stored
        auto dl_dw = [&](int64_t s) {
            double G = gop + (gr.g_weights ? gr.g_weights[s] : 0.f);
            if (go)
                for (int64_t c = 0; c < C; ++c) G += double(go[c]) * values[s * C + c];
            return G;
        };
        // pass 1: total = sum_s G_s w_s, so that the suffix sum is total - prefix
        double T = 1.0, total = 0.0;
        for (int64_t s = b; s < e; ++s) {
            const float a = clamp_alpha(alphas[s]);
            total += dl_dw(s) * double(a * float(T));
            T *= 1.0 - double(a);
        }
        T = 1.0;
        double prefix = 0.0;
        for (int64_t s = b; s < e; ++s) {
            const float a = clamp_alpha(alphas[s]);
            const float w = a * float(T);
            const double G = dl_dw(s);
            prefix += G * double(w);
            const double one_minus_a = 1.0 - double(a);
            const double ga = G * T - (total - prefix) / one_minus_a;
            gr.g_alphas[s] = alpha_in_range(alphas[s]) ? float(ga) : 0.f;
            if (gr.g_values)
                for (int64_t c = 0; c < C; ++c) gr.g_values[s * C + c] = go ? w * go[c] : 0.f;
            T *= one_minus_a;
        }
    }
}

}  // namespace recon
