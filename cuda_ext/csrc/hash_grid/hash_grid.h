// Multiresolution hash-grid encoding (see recon/ops/hash_grid.py for the contract).
// Raw-pointer kernels: x (N, 3), table (n_rows, F), out / grad_out (N, L*F), all float32, contiguous.
#pragma once
#include <cmath>
#include <cstdint>

#include "../common.h"

namespace recon {

struct HashGridLevels {
    static constexpr int kMaxLevels = 32;
    int n_levels;
    int n_features;
    int32_t resolution[kMaxLevels];
    int64_t offset[kMaxLevels + 1];  // offset[l + 1] - offset[l] = rows of level l
};

// Row of vertex (i, j, k) within level l: dense when the level's (res+1)^3 vertices fit its rows,
// else the spatial hash (i * 1 ^ j * 2654435761 ^ k * 805459861) in uint32, mod the level's rows.
RECON_HD int64_t hash_grid_row(uint32_t i, uint32_t j, uint32_t k, int64_t res, int64_t size) {
    const int64_t r1 = res + 1;
    if (r1 * r1 * r1 <= size) return int64_t(i) + int64_t(j) * r1 + int64_t(k) * r1 * r1;
    const uint32_t h = (i * 1u) ^ (j * 2654435761u) ^ (k * 805459861u);
    const uint64_t s = uint64_t(size);
    // hashed levels have 2^log2_hashmap_size rows (see HashGridSpec): a mask, not a division
    return int64_t((s & (s - 1)) == 0 ? (uint64_t(h) & (s - 1)) : (uint64_t(h) % s));
}

// Corner c of the cell around x (clamped to [0,1]) at resolution res: its vertex and trilinear
// weight, in the same float32 operations as the torch twin (pos = x*res, p0 = clamp(floor(pos)),
// frac = pos - p0, weight = prod over axes of frac or 1 - frac).
struct HashGridCell {
    uint32_t p0[3];
    float frac[3];
};

RECON_HD HashGridCell hash_grid_cell(const float* x, int res) {
    HashGridCell cell;
    const float rf = float(res);
    for (int d = 0; d < 3; ++d) {
        float xc = x[d];
        xc = xc > 0.f ? (xc < 1.f ? xc : 1.f) : 0.f;  // NaN -> 0 (never an out-of-range row)
        const float pos = xc * rf;
        float p0 = floor_small(pos);  // pos in [0, res]
        p0 = p0 < 0.f ? 0.f : (p0 > rf - 1.f ? rf - 1.f : p0);
        cell.p0[d] = uint32_t(p0);
        cell.frac[d] = pos - p0;
    }
    return cell;
}

RECON_HD float hash_grid_weight(const HashGridCell& cell, int c) {
    const float w0 = (c & 1) ? cell.frac[0] : 1.f - cell.frac[0];
    const float w1 = (c & 2) ? cell.frac[1] : 1.f - cell.frac[1];
    const float w2 = (c & 4) ? cell.frac[2] : 1.f - cell.frac[2];
    return w0 * w1 * w2;
}

RECON_HD int64_t hash_grid_corner_row(const HashGridCell& cell, int c, const HashGridLevels& g, int l) {
    return g.offset[l] + hash_grid_row(cell.p0[0] + (c & 1), cell.p0[1] + ((c >> 1) & 1),
                                       cell.p0[2] + ((c >> 2) & 1), g.resolution[l],
                                       g.offset[l + 1] - g.offset[l]);
}

// dL/dx of point i (3 floats into gx) from grad_out (N, L*F): through the trilinear weights, as the twin's
// autograd: frac = clamp(x, 0, 1) * res - p0, so dfrac/dx = res where 0 <= x <= 1 (the clamp passes its
// ends) and 0 outside; dw_c/dfrac_d = +-(the other two factors of w_c), + where corner c has bit d.
RECON_HD void hash_grid_grad_x(const float* x, int64_t i, const float* table, const float* grad_out,
                               const HashGridLevels& g, float* gx) {
    const int nf = g.n_features;
    float acc[3] = {0.f, 0.f, 0.f};
    for (int l = 0; l < g.n_levels; ++l) {
        const HashGridCell cell = hash_grid_cell(x + 3 * i, g.resolution[l]);
        const float* go = grad_out + (i * g.n_levels + l) * nf;
        float lv[3] = {0.f, 0.f, 0.f};
        for (int c = 0; c < 8; ++c) {
            const float* row = table + hash_grid_corner_row(cell, c, g, l) * nf;
            float dot = 0.f;
            for (int f = 0; f < nf; ++f) dot += go[f] * row[f];
            float w[3];
            for (int d = 0; d < 3; ++d) w[d] = ((c >> d) & 1) ? cell.frac[d] : 1.f - cell.frac[d];
            for (int d = 0; d < 3; ++d) {
                const float other = w[(d + 1) % 3] * w[(d + 2) % 3];
                lv[d] += ((c >> d) & 1) ? other * dot : -other * dot;
            }
        }
        const float rf = float(g.resolution[l]);
        for (int d = 0; d < 3; ++d) acc[d] += lv[d] * rf;
    }
    for (int d = 0; d < 3; ++d) {
        const float xd = x[3 * i + d];
        gx[d] = (xd >= 0.f && xd <= 1.f) ? acc[d] : 0.f;
    }
}

// CPU (OpenMP). out: (N, L*F); grad_table: (n_rows, F), zeroed by the caller, accumulated into.
void hash_grid_fwd_cpu(const float* x, int64_t n, const float* table, const HashGridLevels& g, float* out,
                       int n_threads);
void hash_grid_bwd_cpu(const float* x, int64_t n, const float* grad_out, const HashGridLevels& g,
                       float* grad_table, int n_threads);
void hash_grid_bwd_x_cpu(const float* x, int64_t n, const float* table, const float* grad_out,
                         const HashGridLevels& g, float* grad_x, int n_threads);

// CUDA launchers (hash_grid.cu); stream is a cudaStream_t.
void hash_grid_fwd_cuda(const float* x, int64_t n, const float* table, const HashGridLevels& g, float* out,
                        void* stream);
void hash_grid_bwd_cuda(const float* x, int64_t n, const float* grad_out, const HashGridLevels& g,
                        float* grad_table, void* stream);
void hash_grid_bwd_x_cuda(const float* x, int64_t n, const float* table, const float* grad_out,
                          const HashGridLevels& g, float* grad_x, void* stream);

}  // namespace recon
