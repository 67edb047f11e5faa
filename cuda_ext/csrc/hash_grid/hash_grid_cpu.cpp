// Hash-grid encoding on CPU: OpenMP over blocks of points (forward) and over levels (backward).
//
// Both passes are bound by the latency of random table rows (a 2^19-row level is 4 MB, the
// table tens of MB), so they work on blocks of points: first every corner row and weight of the
// block at one level, then the gathers (or scatters) with the rows of a few points ahead
// prefetched, which keeps many cache misses in flight instead of one at a time.
#include <algorithm>

#include "hash_grid.h"

namespace recon {
namespace {

constexpr int kBlock = 64;     // points per block
constexpr int kPrefetch = 16;  // points ahead whose rows are prefetched

struct BlockRows {
    int64_t row[kBlock][8];  // first float of each corner's row (row index * F)
    float weight[kBlock][8];
};

void block_rows(const float* x, int64_t i0, int nb, const HashGridLevels& g, int l, BlockRows& b) {
    for (int p = 0; p < nb; ++p) {
        const HashGridCell cell = hash_grid_cell(x + 3 * (i0 + p), g.resolution[l]);
        for (int c = 0; c < 8; ++c) {
            b.row[p][c] = hash_grid_corner_row(cell, c, g, l) * g.n_features;
            b.weight[p][c] = hash_grid_weight(cell, c);
        }
    }
}

template <int Rw>  // 0: prefetch for reading, 1: for writing
inline void prefetch_rows(const float* base, const BlockRows& b, int p) {
    for (int c = 0; c < 8; ++c) __builtin_prefetch(base + b.row[p][c], Rw);
}

// F > 0: features known at compile time; F == 0: g.n_features at run time.
template <int F>
void fwd_block(const float* x, int64_t i0, int nb, const float* table, const HashGridLevels& g, float* out,
               BlockRows& b) {
    const int nf = F > 0 ? F : g.n_features;
    const int64_t stride = int64_t(g.n_levels) * nf;
    for (int l = 0; l < g.n_levels; ++l) {
        block_rows(x, i0, nb, g, l, b);
        for (int p = 0; p < std::min(kPrefetch, nb); ++p) prefetch_rows<0>(table, b, p);
        for (int p = 0; p < nb; ++p) {
            if (p + kPrefetch < nb) prefetch_rows<0>(table, b, p + kPrefetch);
            float* o = out + (i0 + p) * stride + l * nf;
            // the twin's order: feat = 0; feat = feat + w_c * row_c for c = 0..7
            if (F > 0) {
                float acc[F > 0 ? F : 1] = {};
                for (int c = 0; c < 8; ++c)
                    for (int f = 0; f < F; ++f) acc[f] += b.weight[p][c] * table[b.row[p][c] + f];
                for (int f = 0; f < F; ++f) o[f] = acc[f];
            } else {
                std::fill(o, o + nf, 0.f);
                for (int c = 0; c < 8; ++c)
                    for (int f = 0; f < nf; ++f) o[f] += b.weight[p][c] * table[b.row[p][c] + f];
            }
        }
    }
}

template <int F>
void fwd(const float* x, int64_t n, const float* table, const HashGridLevels& g, float* out, int n_threads) {
    const int64_t n_blocks = (n + kBlock - 1) / kBlock;
#pragma omp parallel num_threads(n_threads)
    {
        BlockRows b;
#pragma omp for schedule(static)
        for (int64_t k = 0; k < n_blocks; ++k)
            fwd_block<F>(x, k * kBlock, int(std::min<int64_t>(kBlock, n - k * kBlock)), table, g, out, b);
    }
}

// Scatter the gradient of points [begin, end) at level l. Atomic only when several threads share
// a level; otherwise a level belongs to one thread and its sums are deterministic.
template <bool Atomic>
void bwd_level(const float* x, int64_t begin, int64_t end, const float* grad_out, const HashGridLevels& g,
               int l, float* grad_table, BlockRows& b) {
    const int nf = g.n_features;
    const int64_t stride = int64_t(g.n_levels) * nf;
    for (int64_t i0 = begin; i0 < end; i0 += kBlock) {
        const int nb = int(std::min<int64_t>(kBlock, end - i0));
        block_rows(x, i0, nb, g, l, b);
        for (int p = 0; p < std::min(kPrefetch, nb); ++p) prefetch_rows<1>(grad_table, b, p);
        for (int p = 0; p < nb; ++p) {
            if (p + kPrefetch < nb) prefetch_rows<1>(grad_table, b, p + kPrefetch);
            const float* go = grad_out + (i0 + p) * stride + l * nf;
            for (int c = 0; c < 8; ++c) {
                float* row = grad_table + b.row[p][c];
                const float w = b.weight[p][c];
                for (int f = 0; f < nf; ++f) {
                    if (Atomic) {
#pragma omp atomic
                        row[f] += w * go[f];
                    } else {
                        row[f] += w * go[f];
                    }
                }
            }
        }
    }
}

}  // namespace

void hash_grid_fwd_cpu(const float* x, int64_t n, const float* table, const HashGridLevels& g, float* out,
                       int n_threads) {
    switch (g.n_features) {
        case 1: return fwd<1>(x, n, table, g, out, n_threads);
        case 2: return fwd<2>(x, n, table, g, out, n_threads);
        case 4: return fwd<4>(x, n, table, g, out, n_threads);
        case 8: return fwd<8>(x, n, table, g, out, n_threads);
        default: return fwd<0>(x, n, table, g, out, n_threads);
    }
}

void hash_grid_bwd_cpu(const float* x, int64_t n, const float* grad_out, const HashGridLevels& g,
                       float* grad_table, int n_threads) {
    const int L = g.n_levels;
    // One task per level (fine, costly levels first), or per (level, point range) with atomic
    // adds when there are at least twice as many threads as levels.
    const int parts = std::max(1, n_threads / std::max(L, 1));
    const int64_t span = (n + parts - 1) / parts;
#pragma omp parallel num_threads(n_threads)
    {
        BlockRows b;
#pragma omp for schedule(dynamic, 1)
        for (int task = 0; task < L * parts; ++task) {
            const int l = L - 1 - task % L;
            const int64_t begin = (task / L) * span, end = std::min(n, begin + span);
            if (parts > 1)
                bwd_level<true>(x, begin, end, grad_out, g, l, grad_table, b);
            else
                bwd_level<false>(x, begin, end, grad_out, g, l, grad_table, b);
        }
    }
}

void hash_grid_bwd_x_cpu(const float* x, int64_t n, const float* table, const float* grad_out,
                         const HashGridLevels& g, float* grad_x, int n_threads) {
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t i = 0; i < n; ++i) hash_grid_grad_x(x, i, table, grad_out, g, grad_x + 3 * i);
}

}  // namespace recon
