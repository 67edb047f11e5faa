// Rasterization on CUDA: one thread per face walks its box and keeps the nearest key per pixel with
// a 64-bit atomicMin; one thread per pixel then resolves its winner (the same arithmetic as the CPU
// kernel, see rasterize.h; nvcc may fuse multiply-adds, so near-ties can differ in the last bit).
// Backward: one thread per pixel, atomicAdd into the vertices.
#include <cuda_runtime.h>

#include "rasterize.h"

namespace recon {
namespace {

__global__ void clear_kernel(unsigned long long* keys, int64_t n) {
    const int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (p < n) keys[p] = kRasterEmpty;
}

__global__ void depth_kernel(const float* __restrict__ verts, const int64_t* __restrict__ faces, int64_t n_faces,
                             int H, int W, unsigned long long* __restrict__ keys) {
    const int64_t f = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (f >= n_faces) return;
    RasterFace t;
    if (!raster_face(verts, faces, f, H, W, t)) return;
    for (int row = t.y0; row <= t.y1; ++row)
        for (int col = t.x0; col <= t.x1; ++col) {
            float e[3];
            if (!raster_edges(t, row, col, e)) continue;
            const float z = raster_depth(t, e);
            if (!(z > 0.f)) continue;
            atomicMin(keys + int64_t(row) * W + col, (unsigned long long)raster_key(z, f));
        }
}

__global__ void resolve_kernel(const float* __restrict__ verts, const int64_t* __restrict__ faces, int H, int W,
                               const unsigned long long* __restrict__ keys, int64_t* __restrict__ face_id,
                               float* __restrict__ bary, float* __restrict__ depth) {
    const int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (p < int64_t(H) * W) raster_resolve(verts, faces, keys[p], int(p / W), int(p % W), p, face_id, bary, depth);
}

__global__ void bwd_kernel(const float* __restrict__ verts, const int64_t* __restrict__ faces,
                           const int64_t* __restrict__ face_id, int H, int W, const float* __restrict__ grad_bary,
                           const float* __restrict__ grad_depth, float* __restrict__ grad_verts) {
    const int64_t p = int64_t(blockIdx.x) * blockDim.x + threadIdx.x;
    if (p >= int64_t(H) * W) return;
    const int64_t f = face_id[p];
    if (f < 0) return;
    const float zero[3] = {0.f, 0.f, 0.f};
    float g[9];
    raster_pixel_grad(verts, faces + 3 * f, int(p / W), int(p % W), grad_bary ? grad_bary + 3 * p : zero,
                      grad_depth ? grad_depth[p] : 0.f, g);
    for (int k = 0; k < 3; ++k) {
        float* gv = grad_verts + 3 * faces[3 * f + k];
        atomicAdd(gv, g[3 * k]);
        atomicAdd(gv + 1, g[3 * k + 1]);
        atomicAdd(gv + 2, g[3 * k + 2]);
    }
}

constexpr int kThreads = 256;

unsigned blocks_for(int64_t n) { return unsigned((n + kThreads - 1) / kThreads); }

}  // namespace

void rasterize_fwd_cuda(const float* verts, const int64_t* faces, int64_t n_faces, int H, int W, uint64_t* keys,
                        int64_t* face_id, float* bary, float* depth, void* stream) {
    const int64_t n_pix = int64_t(H) * W;
    if (n_pix == 0) return;
    auto s = static_cast<cudaStream_t>(stream);
    auto* k = reinterpret_cast<unsigned long long*>(keys);
    clear_kernel<<<blocks_for(n_pix), kThreads, 0, s>>>(k, n_pix);
    if (n_faces > 0) depth_kernel<<<blocks_for(n_faces), kThreads, 0, s>>>(verts, faces, n_faces, H, W, k);
    resolve_kernel<<<blocks_for(n_pix), kThreads, 0, s>>>(verts, faces, H, W, k, face_id, bary, depth);
}

void rasterize_bwd_cuda(const float* verts, const int64_t* faces, const int64_t* face_id, int H, int W,
                        const float* grad_bary, const float* grad_depth, float* grad_verts, void* stream) {
    const int64_t n_pix = int64_t(H) * W;
    if (n_pix == 0) return;
    bwd_kernel<<<blocks_for(n_pix), kThreads, 0, static_cast<cudaStream_t>(stream)>>>(
        verts, faces, face_id, H, W, grad_bary, grad_depth, grad_verts);
}

}  // namespace recon
