// Rasterization on CPU. Forward: the faces are binned into bands of rows by their rows of
// pixel centres; each band (one OpenMP task, its rows owned by it alone) sets its faces up and runs
// them through its part of the z-buffer; then every pixel resolves its winner. Nothing per face is
// stored beyond the bins: setting a face up again (in registers) costs less than writing and reading
// back tens of bytes per face. Backward: each covered pixel's 9 corner gradients in parallel, then
// one ordered pass adds them into the vertices (deterministic).
#include <vector>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "rasterize.h"

namespace recon {
namespace {

// Rows per band: about 4 bands per thread (dynamic scheduling evens them out), 8 to 64 rows; fewer,
// taller bands mean fewer faces set up twice (once per band they cross).
int band_rows(int H, int n_threads) {
    const int b = H / (4 * (n_threads > 0 ? n_threads : 1));
    return b < 8 ? 8 : (b > 64 ? 64 : b);
}

// Buffers kept between calls (per calling thread): fresh multi-megabyte allocations cost more in page
// faults than the rasterization of a 256 x 256 view itself. One larger than kKeepBytes (a big render)
// is freed after the call instead of being held for the life of the thread.
constexpr size_t kKeepBytes = size_t(32) << 20;

template <class T>
void trim(std::vector<T>& v) {
    if (v.capacity() * sizeof(T) > kKeepBytes) std::vector<T>().swap(v);
}

struct Workspace {
    std::vector<int32_t> rows;  // (F, 2) first and last band of each face, -1 when it draws nothing
    std::vector<int64_t> start;
    std::vector<int32_t> list;
    std::vector<uint64_t> keys;
    std::vector<float> grads;

    void trim_all() {
        trim(rows);
        trim(list);
        trim(keys);
        trim(grads);
    }
};

Workspace& workspace() {
    static thread_local Workspace ws;
    return ws;
}

// Offer face f's pixel centres in one row of its box to the z-buffer row krow. With SSE2 (every x86-64)
// four columns at a time: the same float operations in the same order as raster_edges / raster_depth
// (IEEE lanes, no FMA), so the same bits; then the covered lanes compete for their pixels.
inline void depth_row(const RasterFace& t, int64_t f, int row, uint64_t* krow) {
    int col = t.x0;
#if defined(__SSE2__)
    const float py = float(row) + 0.5f;
    __m128 c[3], dy[3], ax[3], iz[3];
    for (int k = 0; k < 3; ++k) {
        c[k] = _mm_set1_ps(t.dx[k] * (py - t.ay[k]));
        dy[k] = _mm_set1_ps(t.dy[k]);
        ax[k] = _mm_set1_ps(t.ax[k]);
        iz[k] = _mm_set1_ps(t.iz[k]);
    }
    const __m128 zero = _mm_setzero_ps(), half = _mm_set1_ps(0.5f);
    for (; col <= t.x1; col += 4) {
        const __m128 px = _mm_add_ps(_mm_cvtepi32_ps(_mm_setr_epi32(col, col + 1, col + 2, col + 3)), half);
        __m128 e[3], inside = _mm_castsi128_ps(_mm_set1_epi32(-1));
        for (int k = 0; k < 3; ++k) {
            e[k] = _mm_sub_ps(c[k], _mm_mul_ps(dy[k], _mm_sub_ps(px, ax[k])));
            inside = _mm_and_ps(inside, _mm_cmpge_ps(e[k], zero));
        }
        const __m128 ws = _mm_add_ps(_mm_add_ps(_mm_mul_ps(e[0], iz[0]), _mm_mul_ps(e[1], iz[1])), _mm_mul_ps(e[2], iz[2]));
        const __m128 z = _mm_div_ps(_mm_add_ps(_mm_add_ps(e[0], e[1]), e[2]), ws);
        int hits = _mm_movemask_ps(_mm_and_ps(inside, _mm_cmpgt_ps(z, zero)));  // z > 0: rounding at slivers
        hits &= (1 << (t.x1 - col + 1 < 4 ? t.x1 - col + 1 : 4)) - 1;  // lanes past the box
        if (!hits) continue;
        alignas(16) float zs[4];
        _mm_store_ps(zs, z);
        for (int lane = 0; lane < 4; ++lane) {
            if (!(hits >> lane & 1)) continue;
            const uint64_t key = raster_key(zs[lane], f);
            if (key < krow[col + lane]) krow[col + lane] = key;
        }
    }
#endif
    for (; col <= t.x1; ++col) {  // the portable path (without SSE2)
        float e[3];
        const bool inside = raster_edges(t, row, col, e);
        const float z = raster_depth(t, e);
        const uint64_t key = raster_key(z, f);
        const bool win = inside & (z > 0.f) & (key < krow[col]);
        krow[col] = win ? key : krow[col];
    }
}

}  // namespace

void rasterize_fwd_cpu(const float* verts, const int64_t* faces, int64_t n_faces, int H, int W, int64_t* face_id,
                       float* bary, float* depth, int n_threads) {
    Workspace& ws = workspace();
    const int band = band_rows(H, n_threads);
    ws.rows.resize(size_t(n_faces) * 2);
    int32_t* rows = ws.rows.data();
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t f = 0; f < n_faces; ++f) {  // the box only: the full set-up waits for the bands
        float x[3], y[3], z[3];
        int32_t box[4];
        const bool ok = raster_corners(verts, faces, f, x, y, z) & raster_box(x, y, H, W, box);
        rows[2 * f] = ok ? box[1] / band : -1;
        rows[2 * f + 1] = ok ? box[3] / band : -2;
    }

    // bin the faces into bands (counts, offsets, then the lists in face order)
    const int n_bands = (H + band - 1) / band;
    std::vector<int64_t>& start = ws.start;
    start.assign(size_t(n_bands) + 1, 0);
    for (int64_t f = 0; f < n_faces; ++f)
        for (int b = rows[2 * f]; b <= rows[2 * f + 1]; ++b) ++start[b + 1];
    for (int b = 0; b < n_bands; ++b) start[b + 1] += start[b];
    std::vector<int32_t>& list = ws.list;
    list.resize(size_t(start[n_bands]));
    {
        std::vector<int64_t> fill(start.begin(), start.end() - 1);
        for (int64_t f = 0; f < n_faces; ++f)
            for (int b = rows[2 * f]; b <= rows[2 * f + 1]; ++b) list[fill[b]++] = int32_t(f);
    }

    std::vector<uint64_t>& keys = ws.keys;
    keys.assign(size_t(H) * W, kRasterEmpty);
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
    for (int b = 0; b < n_bands; ++b) {
        const int r0 = b * band, r1 = r0 + band - 1 < H - 1 ? r0 + band - 1 : H - 1;
        for (int64_t i = start[b]; i < start[b + 1]; ++i) {
            const int64_t f = list[i];
            RasterFace t;
            if (!raster_face(verts, faces, f, H, W, t)) continue;  // zero area
            const int ya = t.y0 > r0 ? t.y0 : r0, yb = t.y1 < r1 ? t.y1 : r1;
            for (int row = ya; row <= yb; ++row) depth_row(t, f, row, keys.data() + size_t(row) * W);
        }
    }

    const int64_t n_pix = int64_t(H) * W;
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t p = 0; p < n_pix; ++p) raster_resolve(verts, faces, H, W, keys[p], p, face_id, bary, depth);
    ws.trim_all();
}

void rasterize_bwd_cpu(const float* verts, const int64_t* faces, const int64_t* face_id, int H, int W,
                       const float* grad_bary, const float* grad_depth, float* grad_verts, int n_threads) {
    const int64_t n_pix = int64_t(H) * W;
    std::vector<float>& buf = workspace().grads;
    if (buf.size() < size_t(n_pix) * 9) buf.resize(size_t(n_pix) * 9);  // written for covered pixels only
    float* g = buf.data();
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int64_t p = 0; p < n_pix; ++p) {
        const int64_t f = face_id[p];
        if (f < 0) continue;
        const float zero[3] = {0.f, 0.f, 0.f};
        raster_pixel_grad(verts, faces + 3 * f, int(p / W), int(p % W), grad_bary ? grad_bary + 3 * p : zero,
                          grad_depth ? grad_depth[p] : 0.f, g + 9 * p);
    }
    for (int64_t p = 0; p < n_pix; ++p) {
        const int64_t f = face_id[p];
        if (f < 0) continue;
        const float* gp = g + 9 * p;
        for (int k = 0; k < 3; ++k) {
            float* gv = grad_verts + 3 * faces[3 * f + k];
            gv[0] += gp[3 * k];
            gv[1] += gp[3 * k + 1];
            gv[2] += gp[3 * k + 2];
        }
    }
    workspace().trim_all();
}

}  // namespace recon
