// Rasterization on CPU. Forward, for views whose z-buffer is small enough to hold one per thread
// (kPrivateBytes in all): each thread sets up and draws runs of faces dealt round into its own
// z-buffer; then every pixel takes the smallest (depth, face) of the buffers (the same winner whatever
// the split) and resolves it. Bigger views: the faces are binned into bands of rows by their rows of
// pixel centres; each band (one OpenMP task, its rows owned by it alone) sets its faces up and runs
// them through its part of the z-buffer. Nothing per face is stored beyond the bins: setting a face up
// again (in registers) costs less than writing and reading back tens of bytes per face. Backward:
// the rows are cut into kGradChunks fixed runs; each run adds its covered pixels' 9 corner gradients
// into its own vertex-gradient buffer in pixel order (runs in parallel), then the buffers are summed in
// run order: the same bits on any thread count.
#include <algorithm>
#include <vector>

#include <omp.h>

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
    std::vector<int32_t> zbuf;  // z-buffers: depth bits and face ids, rows of stride W + kPad
    std::vector<int32_t> ids;
    std::vector<float> grads;

    void trim_all() {
        trim(rows);
        trim(list);
        trim(zbuf);
        trim(ids);
        trim(grads);
    }
};

Workspace& workspace() {
    static thread_local Workspace ws;
    return ws;
}

// The z-buffer keeps, per pixel, the depth's float32 bits (depth > 0: they order like the floats, also as
// int32) and the face id; kEmptyDepth above any depth. Its rows are padded by kPad so that four columns
// from any column of a row stay inside that row. A face replaces the pixel's winner when its depth is
// strictly smaller: a thread offers its faces in increasing order, so at equal depths the smaller face id
// stays, which is the smallest (depth, face) key of rasterize.h.
constexpr int32_t kEmptyDepth = 0x7fffffff;
constexpr int kPad = 4;

// Offers face f's pixel centres in rows [r0, r1] of its box to the z-buffer (zb / id: the whole view's,
// row stride W + kPad). With SSE2 (every x86-64) four columns at a time: the same float operations in
// the same order as raster_edges / raster_depth (IEEE lanes, no FMA), so the same bits; the depth (a
// division) only for the groups with a centre inside; the winners are blended in without branches.
inline void draw_rows(const RasterFace& t, int64_t f, int W, int r0, int r1, int32_t* zb, int32_t* id) {
    const int ya = t.y0 > r0 ? t.y0 : r0, yb = t.y1 < r1 ? t.y1 : r1;
    const size_t stride = size_t(W) + kPad;
#if defined(__SSE2__)
    __m128 dy[3], ax[3], iz[3];
    for (int k = 0; k < 3; ++k) {
        dy[k] = _mm_set1_ps(t.dy[k]);
        ax[k] = _mm_set1_ps(t.ax[k]);
        iz[k] = _mm_set1_ps(t.iz[k]);
    }
    const __m128 zero = _mm_setzero_ps(), half = _mm_set1_ps(0.5f);
    const __m128i face = _mm_set1_epi32(int32_t(f)), lane = _mm_setr_epi32(0, 1, 2, 3);
    for (int row = ya; row <= yb; ++row) {
        int32_t* zrow = zb + row * stride;
        int32_t* irow = id + row * stride;
        const float py = float(row) + 0.5f;
        __m128 c[3];
        for (int k = 0; k < 3; ++k) c[k] = _mm_set1_ps(t.dx[k] * (py - t.ay[k]));
        for (int col = t.x0; col <= t.x1; col += 4) {
            const __m128 px = _mm_add_ps(_mm_cvtepi32_ps(_mm_add_epi32(_mm_set1_epi32(col), lane)), half);
            __m128 e[3];
            __m128 inside = _mm_castsi128_ps(_mm_cmplt_epi32(lane, _mm_set1_epi32(t.x1 - col + 1)));  // in the box
            for (int k = 0; k < 3; ++k) {
                e[k] = _mm_sub_ps(c[k], _mm_mul_ps(dy[k], _mm_sub_ps(px, ax[k])));
                inside = _mm_and_ps(inside, _mm_cmpge_ps(e[k], zero));
            }
            if (!_mm_movemask_ps(inside)) continue;
            const __m128 ws = _mm_add_ps(_mm_add_ps(_mm_mul_ps(e[0], iz[0]), _mm_mul_ps(e[1], iz[1])), _mm_mul_ps(e[2], iz[2]));
            const __m128 z = _mm_div_ps(_mm_add_ps(_mm_add_ps(e[0], e[1]), e[2]), ws);
            const __m128i zi = _mm_castps_si128(z), old = _mm_loadu_si128(reinterpret_cast<__m128i*>(zrow + col));
            // z > 0 (rounding at slivers; NaN fails) and nearer than the pixel's winner
            const __m128i win = _mm_and_si128(_mm_castps_si128(_mm_and_ps(inside, _mm_cmpgt_ps(z, zero))),
                                              _mm_cmplt_epi32(zi, old));
            const __m128i old_id = _mm_loadu_si128(reinterpret_cast<__m128i*>(irow + col));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(zrow + col),
                             _mm_or_si128(_mm_and_si128(win, zi), _mm_andnot_si128(win, old)));
            _mm_storeu_si128(reinterpret_cast<__m128i*>(irow + col),
                             _mm_or_si128(_mm_and_si128(win, face), _mm_andnot_si128(win, old_id)));
        }
    }
#else
    for (int row = ya; row <= yb; ++row) {  // the portable path (without SSE2)
        int32_t* zrow = zb + row * stride;
        int32_t* irow = id + row * stride;
        for (int col = t.x0; col <= t.x1; ++col) {
            float e[3];
            const bool inside = raster_edges(t, row, col, e);
            const float z = raster_depth(t, e);
            int32_t zi;
            memcpy(&zi, &z, 4);
            if (inside & (z > 0.f) & (zi < zrow[col])) {
                zrow[col] = zi;
                irow[col] = int32_t(f);
            }
        }
    }
#endif
}

inline void draw_face(const float* verts, const int64_t* faces, int64_t f, int H, int W, int r0, int r1,
                      int32_t* zb, int32_t* id) {
    RasterFace t;
    if (raster_face(verts, faces, f, H, W, t)) draw_rows(t, f, W, r0, r1, zb, id);  // else nothing to draw
}

#if defined(__SSE2__)
// rasterize.h's raster_face for the four faces f0 .. f0 + 3 at once, lane by lane the same float
// operations (so the same bits); returns the mask of the faces that draw something.
inline __m128 sel(__m128 m, __m128 a, __m128 b) { return _mm_or_ps(_mm_and_ps(m, a), _mm_andnot_ps(m, b)); }
inline __m128 floor4(__m128 x) {  // floor_small
    const __m128 t = _mm_cvtepi32_ps(_mm_cvttps_epi32(x));
    return sel(_mm_cmpgt_ps(t, x), _mm_sub_ps(t, _mm_set1_ps(1.f)), t);
}
inline __m128 neg4(__m128 x) { return _mm_xor_ps(x, _mm_set1_ps(-0.f)); }
inline __m128 clamp4(__m128 x, float hi) {  // clamp_box
    const __m128 h = _mm_set1_ps(hi), lo = _mm_set1_ps(-2.f);
    return sel(_mm_cmpgt_ps(x, lo), sel(_mm_cmplt_ps(x, h), x, h), lo);
}
inline __m128 min4(__m128 a, __m128 b) { return sel(_mm_cmplt_ps(a, b), a, b); }  // a < b ? a : b
inline __m128 max4(__m128 a, __m128 b) { return sel(_mm_cmpgt_ps(a, b), a, b); }

int raster_face4(const float* verts, const int64_t* faces, int64_t f0, int H, int W, RasterFace rf[4]) {
    alignas(16) float c[3][3][4];  // [x, y, z][corner][lane]
    for (int l = 0; l < 4; ++l)
        for (int k = 0; k < 3; ++k) {
            const float* v = verts + 3 * faces[3 * (f0 + l) + k];
            c[0][k][l] = v[0];
            c[1][k][l] = v[1];
            c[2][k][l] = v[2];
        }
    __m128 x[3], y[3], z[3];
    const __m128 inf = _mm_set1_ps(INFINITY), zero = _mm_setzero_ps(), one = _mm_set1_ps(1.f);
    const __m128 abs_mask = _mm_castsi128_ps(_mm_set1_epi32(0x7fffffff));
    __m128 ok = _mm_castsi128_ps(_mm_set1_epi32(-1));
    for (int k = 0; k < 3; ++k) {
        x[k] = _mm_load_ps(c[0][k]);
        y[k] = _mm_load_ps(c[1][k]);
        z[k] = _mm_load_ps(c[2][k]);
        ok = _mm_and_ps(ok, _mm_and_ps(_mm_and_ps(_mm_cmpgt_ps(z[k], zero), _mm_cmplt_ps(z[k], inf)),
                                       _mm_and_ps(_mm_cmplt_ps(_mm_and_ps(x[k], abs_mask), inf),
                                                  _mm_cmplt_ps(_mm_and_ps(y[k], abs_mask), inf))));
    }
    __m128 ax[3], ay[3], dx[3], dy[3], sgn[3], iz[3];
    for (int k = 0; k < 3; ++k) {
        const int p = (k + 1) % 3, q = (k + 2) % 3;
        const __m128 swap = _mm_or_ps(_mm_cmpgt_ps(x[p], x[q]),
                                      _mm_and_ps(_mm_cmpeq_ps(x[p], x[q]), _mm_cmpgt_ps(y[p], y[q])));
        ax[k] = sel(swap, x[q], x[p]);
        ay[k] = sel(swap, y[q], y[p]);
        dx[k] = _mm_sub_ps(sel(swap, x[p], x[q]), ax[k]);
        dy[k] = _mm_sub_ps(sel(swap, y[p], y[q]), ay[k]);
        sgn[k] = sel(swap, _mm_set1_ps(-1.f), one);
        iz[k] = _mm_div_ps(one, z[k]);
    }
    const __m128 area = _mm_mul_ps(sgn[0], _mm_sub_ps(_mm_mul_ps(dx[0], _mm_sub_ps(y[0], ay[0])),
                                                      _mm_mul_ps(dy[0], _mm_sub_ps(x[0], ax[0]))));
    ok = _mm_and_ps(ok, _mm_cmpneq_ps(area, zero));
    const __m128 flip = sel(_mm_cmplt_ps(area, zero), _mm_set1_ps(-1.f), one);
    for (int k = 0; k < 3; ++k) {
        const __m128 s = _mm_mul_ps(flip, sgn[k]);
        dx[k] = _mm_mul_ps(dx[k], s);
        dy[k] = _mm_mul_ps(dy[k], s);
    }
    // the box (raster_box)
    const float wx = float(W), hy_max = float(H), wm = float(W - 1), hm = float(H - 1);
    const __m128 half = _mm_set1_ps(0.5f);
    const __m128 lx = neg4(floor4(neg4(clamp4(_mm_sub_ps(min4(min4(x[0], x[1]), x[2]), half), wx))));
    const __m128 hx = floor4(clamp4(_mm_sub_ps(max4(max4(x[0], x[1]), x[2]), half), wx));
    const __m128 ly = neg4(floor4(neg4(clamp4(_mm_sub_ps(min4(min4(y[0], y[1]), y[2]), half), hy_max))));
    const __m128 hy = floor4(clamp4(_mm_sub_ps(max4(max4(y[0], y[1]), y[2]), half), hy_max));
    const __m128 w1 = _mm_set1_ps(wm), h1 = _mm_set1_ps(hm);
    ok = _mm_and_ps(ok, _mm_and_ps(_mm_and_ps(_mm_cmpge_ps(hx, zero), _mm_cmpge_ps(hy, zero)),
                                   _mm_and_ps(_mm_and_ps(_mm_cmple_ps(lx, w1), _mm_cmple_ps(ly, h1)),
                                              _mm_and_ps(_mm_cmple_ps(lx, hx), _mm_cmple_ps(ly, hy)))));
    const int mask = _mm_movemask_ps(ok);
    if (!mask) return 0;
    alignas(16) int32_t b[4][4];
    _mm_store_si128(reinterpret_cast<__m128i*>(b[0]), _mm_cvttps_epi32(sel(_mm_cmpgt_ps(lx, zero), lx, zero)));
    _mm_store_si128(reinterpret_cast<__m128i*>(b[1]), _mm_cvttps_epi32(sel(_mm_cmpgt_ps(ly, zero), ly, zero)));
    _mm_store_si128(reinterpret_cast<__m128i*>(b[2]), _mm_cvttps_epi32(sel(_mm_cmplt_ps(hx, w1), hx, w1)));
    _mm_store_si128(reinterpret_cast<__m128i*>(b[3]), _mm_cvttps_epi32(sel(_mm_cmplt_ps(hy, h1), hy, h1)));
    alignas(16) float o[6][3][4];
    for (int k = 0; k < 3; ++k) {
        _mm_store_ps(o[0][k], ax[k]);
        _mm_store_ps(o[1][k], ay[k]);
        _mm_store_ps(o[2][k], dx[k]);
        _mm_store_ps(o[3][k], dy[k]);
        _mm_store_ps(o[4][k], iz[k]);
    }
    for (int l = 0; l < 4; ++l) {
        if (!(mask >> l & 1)) continue;
        RasterFace& t = rf[l];
        for (int k = 0; k < 3; ++k) {
            t.ax[k] = o[0][k][l];
            t.ay[k] = o[1][k][l];
            t.dx[k] = o[2][k][l];
            t.dy[k] = o[3][k][l];
            t.iz[k] = o[4][k][l];
        }
        t.x0 = b[0][l];
        t.y0 = b[1][l];
        t.x1 = b[2][l];
        t.y1 = b[3][l];
    }
    return mask;
}
#endif

// Draws faces [f0, f1) in order into the z-buffer rows [r0, r1].
inline void draw_faces(const float* verts, const int64_t* faces, int64_t f0, int64_t f1, int H, int W, int r0,
                       int r1, int32_t* zb, int32_t* id) {
    int64_t f = f0;
#if defined(__SSE2__)
    for (; f + 4 <= f1; f += 4) {
        RasterFace t[4];
        const int mask = raster_face4(verts, faces, f, H, W, t);
        for (int l = 0; l < 4; ++l)
            if (mask >> l & 1) draw_rows(t[l], f + l, W, r0, r1, zb, id);
    }
#endif
    for (; f < f1; ++f) draw_face(verts, faces, f, H, W, r0, r1, zb, id);
}

// Pixel p's z-buffer entry as a rasterize.h key (kRasterEmpty when nothing covers it).
inline uint64_t entry_key(int32_t z, int32_t f) {
    return z == kEmptyDepth ? kRasterEmpty : (uint64_t(uint32_t(z)) << 32) | uint64_t(uint32_t(f));
}

// Every pixel's outputs from the smallest (depth, face) over n_bufs z-buffers (zb / id, each H rows of
// stride W + kPad, one after another).
void resolve_all(const float* verts, const int64_t* faces, int H, int W, const int32_t* zb, const int32_t* id,
                 int n_bufs, int64_t* face_id, float* bary, float* depth, int n_threads) {
    const size_t stride = size_t(W) + kPad, n_buf = size_t(H) * stride;
#pragma omp parallel for num_threads(n_threads) schedule(static)
    for (int row = 0; row < H; ++row)
        for (int col = 0; col < W; ++col) {
            const size_t q = size_t(row) * stride + size_t(col);
            int32_t z = zb[q], f = id[q];
            for (int k = 1; k < n_bufs; ++k) {
                const int32_t zk = zb[k * n_buf + q], fk = id[k * n_buf + q];
                if (zk < z || (zk == z && zk != kEmptyDepth && fk < f)) z = zk, f = fk;
            }
            raster_resolve(verts, faces, entry_key(z, f), row, col, int64_t(row) * W + col, face_id, bary, depth);
        }
}

}  // namespace

// Private z-buffers for views up to this many bytes of z-buffer over all threads; bands beyond.
constexpr size_t kPrivateBytes = size_t(16) << 20;
// Fixed runs of pixels whose vertex gradients the backward pass sums separately (in parallel).
constexpr int kGradChunks = 4;
// Faces per run dealt round to the threads (private z-buffers).
constexpr int64_t kRun = 256;

void rasterize_fwd_cpu(const float* verts, const int64_t* faces, int64_t n_faces, int H, int W, int64_t* face_id,
                       float* bary, float* depth, int n_threads) {
    Workspace& ws = workspace();
    n_threads = n_threads > 0 ? n_threads : 1;
    const size_t stride = size_t(W) + kPad, n_buf = size_t(H) * stride;
    if (n_buf * n_threads * 2 * sizeof(int32_t) <= kPrivateBytes) {  // a z-buffer per thread
        ws.zbuf.resize(n_buf * n_threads);
        ws.ids.resize(n_buf * n_threads);
        int used = 1;
#pragma omp parallel num_threads(n_threads)
        {
            const int k = omp_get_thread_num(), n = omp_get_num_threads();
#pragma omp single
            used = n;
            int32_t* zb = ws.zbuf.data() + k * n_buf;
            std::fill(zb, zb + n_buf, kEmptyDepth);
            // runs of faces dealt round (a mesh's faces are not spread evenly over the view); each thread
            // offers its faces in increasing order
            const int64_t n_runs = (n_faces + kRun - 1) / kRun;
#pragma omp for schedule(static, 1) nowait
            for (int64_t r = 0; r < n_runs; ++r)
                draw_faces(verts, faces, r * kRun, std::min(n_faces, (r + 1) * kRun), H, W, 0, H - 1, zb,
                           ws.ids.data() + k * n_buf);
        }
        resolve_all(verts, faces, H, W, ws.zbuf.data(), ws.ids.data(), used, face_id, bary, depth, n_threads);
        ws.trim_all();
        return;
    }
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

    ws.zbuf.assign(n_buf, kEmptyDepth);
    ws.ids.resize(n_buf);
#pragma omp parallel for num_threads(n_threads) schedule(dynamic, 1)
    for (int b = 0; b < n_bands; ++b) {  // a band owns its rows (padding included)
        const int r0 = b * band, r1 = r0 + band - 1 < H - 1 ? r0 + band - 1 : H - 1;
        for (int64_t i = start[b]; i < start[b + 1]; ++i)
            draw_face(verts, faces, list[i], H, W, r0, r1, ws.zbuf.data(), ws.ids.data());
    }

    resolve_all(verts, faces, H, W, ws.zbuf.data(), ws.ids.data(), 1, face_id, bary, depth, n_threads);
    ws.trim_all();
}

void rasterize_bwd_cpu(const float* verts, int64_t n_verts, const int64_t* faces, const int64_t* face_id, int H,
                       int W, const float* grad_bary, const float* grad_depth, float* grad_verts, int n_threads) {
    const int64_t n_vals = n_verts * 3;
    // kGradChunks fixed runs of rows (not one per thread: the sums must not depend on the thread count),
    // each into its own buffer; one run when the buffers would be big
    const int n_chunks = size_t(n_vals) * sizeof(float) * kGradChunks <= kPrivateBytes ? kGradChunks : 1;
    std::vector<float>& buf = workspace().grads;
    buf.assign(size_t(n_vals) * (n_chunks - 1), 0.f);
#pragma omp parallel for num_threads(n_threads) schedule(static, 1)
    for (int c = 0; c < n_chunks; ++c) {
        float* mine = c == 0 ? grad_verts : buf.data() + size_t(c - 1) * n_vals;  // run 0: the output itself
        const float zero[3] = {0.f, 0.f, 0.f};
        for (int row = H * c / n_chunks; row < H * (c + 1) / n_chunks; ++row)
            for (int col = 0; col < W; ++col) {
                const int64_t p = int64_t(row) * W + col, f = face_id[p];
                if (f < 0) continue;
                float g[9];
                raster_pixel_grad(verts, faces + 3 * f, row, col, grad_bary ? grad_bary + 3 * p : zero,
                                  grad_depth ? grad_depth[p] : 0.f, g);
                for (int k = 0; k < 3; ++k) {
                    float* gv = mine + 3 * faces[3 * f + k];
                    gv[0] += g[3 * k];
                    gv[1] += g[3 * k + 1];
                    gv[2] += g[3 * k + 2];
                }
            }
    }
    if (n_chunks > 1) {
#pragma omp parallel for num_threads(n_threads) schedule(static)
        for (int64_t i = 0; i < n_vals; ++i)
            for (int c = 1; c < n_chunks; ++c) grad_verts[i] += buf[size_t(c - 1) * n_vals + i];
    }
    workspace().trim_all();
}

}  // namespace recon
