// Triangle rasterization with a z-buffer and perspective-correct barycentrics (see
// recon/ops/rasterize.py for the contract). Raw-pointer kernels: verts (V, 3) float32 screen-space
// (u, v, z), faces (F, 3) int64; outputs face_id (H, W) int64, bary (H, W, 3) and depth (H, W)
// float32; all contiguous.
//
// The per-face and per-pixel arithmetic below is the torch twin's, operation for operation in
// float32 (no FMA contraction on the CPU build), so the CPU kernel picks bitwise the same faces
// and values:
//   edge k runs from corner k+1 to k+2, its endpoints in canonical (lexicographic) order a -> a+d
//   with sign s = +-1; e_k(p) = s_in_k * (d.x * (p.y - a.y) - d.y * (p.x - a.x)), s_in = s * sign(area);
//   a pixel centre is inside when every e_k >= 0; w_k = e_k / z_k, b_k = w_k / ((w_0 + w_1) + w_2),
//   depth = ((e_0 + e_1) + e_2) / ((w_0 + w_1) + w_2); the smallest (float32 depth bits << 32 | face)
//   key wins.
//
// Backward (gradients wrt the vertices from grad_bary (H, W, 3) and grad_depth (H, W)), per covered
// pixel, with S = sum w, E = sum e, upstream gb_k and gd:
//   dL/dw_j = (gb_j - sum_k gb_k b_k - gd * depth) / S,
//   dL/de_j = dL/dw_j / z_j + gd / S,   dL/dz_j = -dL/dw_j * e_j / z_j^2,
// and e_k = (q - p) x (P - p) with p, q = corners k+1, k+2 (the canonical form is the same function):
//   de_k/dp = (q.y - P.y, P.x - q.x),  de_k/dq = (P.y - p.y, p.x - P.x).
#pragma once
#include <cmath>
#include <cstdint>
#include <cstring>

#include "../common.h"

namespace recon {

// The edge data of one face, as the twin's per-face table.
// The sign s_in = +-1 is folded into d: (s dx)(py - ay) - (s dy)(px - ax) = s (dx (py - ay) - dy (px - ax))
// bitwise, since negation is exact and rounding symmetric.
struct RasterFace {
    float ax[3], ay[3], dx[3], dy[3];  // canonical start of edge k and its direction times s_in
    float iz[3];                       // 1 / z of the corners
    int32_t x0, y0, x1, y1;            // inclusive box of pixel centres (valid faces only)
};

// c ? a : b by bit masks: compilers turn a plain ?: on floats into a branch, which random triangle
// orientations mispredict half the time.
RECON_HD float select_bits(bool c, float a, float b) {
    uint32_t ua, ub;
    memcpy(&ua, &a, 4);
    memcpy(&ub, &b, 4);
    const uint32_t m = 0u - uint32_t(c);
    const uint32_t r = (ua & m) | (ub & ~m);
    float out;
    memcpy(&out, &r, 4);
    return out;
}

// ceil and floor of a float already clamped to [-2, 2^24] (inline; see floor_small).
RECON_HD float ceil_small(float x) { return -floor_small(-x); }
RECON_HD float clamp_box(float x, float hi) { return x > -2.f ? (x < hi ? x : hi) : -2.f; }
// min and max of three finite floats (fminf/fmaxf are library calls on the CPU)
RECON_HD float min3(float a, float b, float c) { const float m = a < b ? a : b; return m < c ? m : c; }
RECON_HD float max3(float a, float b, float c) { const float m = a > b ? a : b; return m > c ? m : c; }

// The corners of face f, and whether they can be drawn: finite, and in front of the camera (NaN fails
// every comparison).
RECON_HD bool raster_corners(const float* verts, const int64_t* faces, int64_t f, float x[3], float y[3], float z[3]) {
    bool ok = true;
    for (int k = 0; k < 3; ++k) {
        const float* v = verts + 3 * faces[3 * f + k];
        x[k] = v[0];
        y[k] = v[1];
        z[k] = v[2];
        ok &= (z[k] > 0.f) & (z[k] < INFINITY) & (fabsf(x[k]) < INFINITY) & (fabsf(y[k]) < INFINITY);
    }
    return ok;
}

// The box of pixel centres j + 0.5 within [min x, max x] (and rows likewise), clipped to the image;
// false when it holds none. Clamping first keeps the rounding in range and changes no pixel inside.
RECON_HD bool raster_box(const float x[3], const float y[3], int H, int W, int32_t box[4]) {
    const float wx = float(W), hy_max = float(H);
    const float lx = ceil_small(clamp_box(min3(x[0], x[1], x[2]) - 0.5f, wx));
    const float hx = floor_small(clamp_box(max3(x[0], x[1], x[2]) - 0.5f, wx));
    const float ly = ceil_small(clamp_box(min3(y[0], y[1], y[2]) - 0.5f, hy_max));
    const float hy = floor_small(clamp_box(max3(y[0], y[1], y[2]) - 0.5f, hy_max));
    box[0] = int32_t(lx > 0.f ? lx : 0.f);
    box[1] = int32_t(ly > 0.f ? ly : 0.f);
    box[2] = int32_t(hx < float(W - 1) ? hx : float(W - 1));
    box[3] = int32_t(hy < float(H - 1) ? hy : float(H - 1));
    return (hx >= 0.f) & (hy >= 0.f) & (lx <= float(W - 1)) & (ly <= float(H - 1)) & (lx <= hx) & (ly <= hy);
}

// The edges of a face with corners (x, y, z) into rf (not its box); false when its area is 0.
// Branch-free (the flag is computed, rf is filled either way).
RECON_HD bool raster_edges_setup(const float x[3], const float y[3], const float z[3], RasterFace& rf) {
    float sgn[3];
    for (int k = 0; k < 3; ++k) {
        const int p = (k + 1) % 3, q = (k + 2) % 3;
        // bit selects, no branches: triangle orientations are random, and mispredicted branches
        // would cost more than the arithmetic
        const bool swap = (x[p] > x[q]) | ((x[p] == x[q]) & (y[p] > y[q]));
        const float xa = select_bits(swap, x[q], x[p]), ya = select_bits(swap, y[q], y[p]);
        const float xb = select_bits(swap, x[p], x[q]), yb = select_bits(swap, y[p], y[q]);
        rf.ax[k] = xa;
        rf.ay[k] = ya;
        rf.dx[k] = xb - xa;
        rf.dy[k] = yb - ya;
        sgn[k] = select_bits(swap, -1.f, 1.f);
        rf.iz[k] = 1.f / z[k];
    }
    const float area = sgn[0] * (rf.dx[0] * (y[0] - rf.ay[0]) - rf.dy[0] * (x[0] - rf.ax[0]));
    const float flip = select_bits(area < 0.f, -1.f, 1.f);
    for (int k = 0; k < 3; ++k) {
        const float s = flip * sgn[k];
        rf.dx[k] *= s;
        rf.dy[k] *= s;
    }
    return area != 0.f;
}

// Sets up face f; false when it draws nothing (zero area, a corner at z <= 0, not finite, off-screen).
RECON_HD bool raster_face(const float* verts, const int64_t* faces, int64_t f, int H, int W, RasterFace& rf) {
    float x[3], y[3], z[3];
    bool ok = raster_corners(verts, faces, f, x, y, z);
    ok &= raster_edges_setup(x, y, z, rf);
    int32_t box[4];
    ok &= raster_box(x, y, H, W, box);
    rf.x0 = box[0];
    rf.y0 = box[1];
    rf.x1 = box[2];
    rf.y1 = box[3];
    return ok;
}

// Edge functions at pixel (row, col)'s centre; true when the centre is inside (every e >= 0).
RECON_HD bool raster_edges(const RasterFace& rf, int row, int col, float e[3]) {
    const float px = float(col) + 0.5f, py = float(row) + 0.5f;
    bool inside = true;
    for (int k = 0; k < 3; ++k) {
        e[k] = rf.dx[k] * (py - rf.ay[k]) - rf.dy[k] * (px - rf.ax[k]);
        inside &= e[k] >= 0.f;
    }
    return inside;
}

// Perspective-correct barycentrics b and depth from the edge functions; returns the depth.
RECON_HD float raster_interpolate(const RasterFace& rf, const float e[3], float b[3]) {
    float w[3];
    for (int k = 0; k < 3; ++k) w[k] = e[k] * rf.iz[k];
    const float ws = (w[0] + w[1]) + w[2];
    for (int k = 0; k < 3; ++k) b[k] = w[k] / ws;
    return ((e[0] + e[1]) + e[2]) / ws;
}

// The depth alone (the z-buffer pass), bitwise raster_interpolate's.
RECON_HD float raster_depth(const RasterFace& rf, const float e[3]) {
    const float ws = (e[0] * rf.iz[0] + e[1] * rf.iz[1]) + e[2] * rf.iz[2];
    return ((e[0] + e[1]) + e[2]) / ws;
}

// The z-buffer key of a hit: depth bits above, face below (depth > 0: its bits order like the floats).
RECON_HD uint64_t raster_key(float depth, int64_t f) {
    union {
        float f;
        uint32_t u;
    } bits;
    bits.f = depth;
    return (uint64_t(bits.u) << 32) | uint64_t(uint32_t(f));
}

constexpr uint64_t kRasterEmpty = ~uint64_t(0);

// Pixel p's (at row, col) outputs from its z-buffer key: the winning face's id, barycentrics and depth (or
// the background).
RECON_HD void raster_resolve(const float* verts, const int64_t* faces, uint64_t key, int row, int col, int64_t p,
                             int64_t* face_id, float* bary, float* depth) {
    float* bp = bary + 3 * p;
    if (key == kRasterEmpty) {
        face_id[p] = -1;
        bp[0] = bp[1] = bp[2] = 0.f;
        depth[p] = 0.f;
        return;
    }
    const int64_t f = int64_t(key & 0xFFFFFFFFull);
    RasterFace t;  // its edges only: the face drew this pixel, so it is valid
    float x[3], y[3], z[3];
    raster_corners(verts, faces, f, x, y, z);
    raster_edges_setup(x, y, z, t);
    float e[3];
    raster_edges(t, row, col, e);
    face_id[p] = f;
    depth[p] = raster_interpolate(t, e, bp);
}

// Gradient of one pixel's bary and depth wrt its face's 3 corners: out[3 * k + {0,1,2}] = dL/d(u, v, z)
// of corner k, in float32 like the twin (not bitwise its: the formula differs).
RECON_HD void raster_pixel_grad(const float* verts, const int64_t* face, int row, int col, const float* gb,
                                float gd, float out[9]) {
    float x[3], y[3], z[3];
    for (int k = 0; k < 3; ++k) {
        const float* v = verts + 3 * face[k];
        x[k] = v[0];
        y[k] = v[1];
        z[k] = v[2];
    }
    const float X = float(col) + 0.5f, Y = float(row) + 0.5f;
    float e[3], iz[3], w[3];
    for (int k = 0; k < 3; ++k) {
        const int p = (k + 1) % 3, q = (k + 2) % 3;
        e[k] = (x[q] - x[p]) * (Y - y[p]) - (y[q] - y[p]) * (X - x[p]);
        iz[k] = 1.f / z[k];
        w[k] = e[k] * iz[k];
    }
    const float inv_s = 1.f / (w[0] + w[1] + w[2]);  // four divisions in all
    const float depth = (e[0] + e[1] + e[2]) * inv_s;
    float gbb = 0.f;
    for (int k = 0; k < 3; ++k) gbb += gb[k] * w[k];
    gbb *= inv_s;
    float g[9] = {0, 0, 0, 0, 0, 0, 0, 0, 0};
    for (int k = 0; k < 3; ++k) {
        const float gw = (gb[k] - gbb - gd * depth) * inv_s;
        const float ge = gw * iz[k] + gd * inv_s;
        g[3 * k + 2] += -gw * w[k] * iz[k];
        const int p = (k + 1) % 3, q = (k + 2) % 3;
        g[3 * p + 0] += ge * (y[q] - Y);
        g[3 * p + 1] += ge * (X - x[q]);
        g[3 * q + 0] += ge * (Y - y[p]);
        g[3 * q + 1] += ge * (x[p] - X);
    }
    for (int k = 0; k < 9; ++k) out[k] = g[k];
}

void rasterize_fwd_cpu(const float* verts, const int64_t* faces, int64_t n_faces, int H, int W, int64_t* face_id,
                       float* bary, float* depth, int n_threads);
// grad_bary / grad_depth may be null (zero); grad_verts (n_verts, 3) must be zeroed by the caller.
void rasterize_bwd_cpu(const float* verts, int64_t n_verts, const int64_t* faces, const int64_t* face_id, int H,
                       int W, const float* grad_bary, const float* grad_depth, float* grad_verts, int n_threads);

void rasterize_fwd_cuda(const float* verts, const int64_t* faces, int64_t n_faces, int H, int W,
                        uint64_t* keys, int64_t* face_id, float* bary, float* depth, void* stream);
void rasterize_bwd_cuda(const float* verts, const int64_t* faces, const int64_t* face_id, int H, int W,
                        const float* grad_bary, const float* grad_depth, float* grad_verts, void* stream);

}  // namespace recon
