// Python bindings of the kernels: tensor checks, output allocation, dispatch by device.
// Compiled into the CPU extension, and with RECON_WITH_CUDA into the CUDA one, which adds the
// launchers of the .cu files. The kernel files themselves know nothing of torch.
// ATen + torch's pybind casters only: half the compile time of <torch/extension.h>.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/csrc/utils/pybind.h>

#include <optional>
#include <vector>

#include "composite/composite.h"
#include "hash_grid/hash_grid.h"
#include "rasterize/rasterize.h"
#include "ray_march/ray_march.h"

#ifdef RECON_WITH_CUDA
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace {

using at::Tensor;

void check(const Tensor& t, const char* name, at::ScalarType dtype, const Tensor& like) {
    TORCH_CHECK(t.scalar_type() == dtype, name, " must be ", dtype, ", got ", t.scalar_type());
    TORCH_CHECK(t.device() == like.device(), name, " is on ", t.device(), ", expected ", like.device());
}

bool on_cuda(const Tensor& t) {
    if (!t.is_cuda()) {
        TORCH_CHECK(t.is_cpu(), "recon kernels run on CPU or CUDA tensors, got ", t.device());
        return false;
    }
#ifdef RECON_WITH_CUDA
    return true;
#else
    TORCH_CHECK(false, "this recon extension was built without CUDA; got a CUDA tensor");
#endif
}

#ifdef RECON_WITH_CUDA
void* stream_of(const Tensor& t) { return c10::cuda::getCurrentCUDAStream(t.device().index()).stream(); }
#define RECON_DEVICE_GUARD(t) const c10::cuda::OptionalCUDAGuard guard_(t.device())
#else
#define RECON_DEVICE_GUARD(t) (void)0
#endif

int n_threads() { return at::get_num_threads(); }

recon::HashGridLevels make_levels(const std::vector<int64_t>& res, const std::vector<int64_t>& offsets,
                                  int64_t n_features, int64_t n_rows) {
    TORCH_CHECK(!res.empty() && res.size() <= size_t(recon::HashGridLevels::kMaxLevels),
                "hash grid: 1 to ", recon::HashGridLevels::kMaxLevels, " levels, got ", res.size());
    TORCH_CHECK(offsets.size() == res.size() + 1, "hash grid: offsets needs n_levels + 1 entries");
    TORCH_CHECK(offsets.back() <= n_rows, "hash grid: the table has ", n_rows, " rows, the levels need ",
                offsets.back());
    recon::HashGridLevels g{};
    g.n_levels = int(res.size());
    g.n_features = int(n_features);
    for (size_t l = 0; l < res.size(); ++l) {
        TORCH_CHECK(res[l] >= 1 && offsets[l + 1] > offsets[l] && offsets[l] >= 0, "hash grid: bad level ", l);
        g.resolution[l] = int32_t(res[l]);
        g.offset[l] = offsets[l];
    }
    g.offset[res.size()] = offsets.back();
    return g;
}

Tensor hash_grid_fwd(Tensor x, Tensor table, std::vector<int64_t> res, std::vector<int64_t> offsets) {
    check(x, "x", at::kFloat, table);
    check(table, "table", at::kFloat, table);
    TORCH_CHECK(x.dim() == 2 && x.size(1) == 3, "x must be (N, 3)");
    TORCH_CHECK(table.dim() == 2, "table must be (n_params, F)");
    x = x.contiguous();
    table = table.contiguous();
    const auto g = make_levels(res, offsets, table.size(1), table.size(0));
    auto out = at::empty({x.size(0), int64_t(g.n_levels) * g.n_features}, table.options());
    if (x.size(0) == 0) return out;
    RECON_DEVICE_GUARD(x);
    if (on_cuda(x)) {
#ifdef RECON_WITH_CUDA
        recon::hash_grid_fwd_cuda(x.data_ptr<float>(), x.size(0), table.data_ptr<float>(), g,
                                  out.data_ptr<float>(), stream_of(x));
#endif
    } else {
        recon::hash_grid_fwd_cpu(x.data_ptr<float>(), x.size(0), table.data_ptr<float>(), g,
                                 out.data_ptr<float>(), n_threads());
    }
    return out;
}

Tensor hash_grid_bwd(Tensor x, Tensor grad_out, std::vector<int64_t> res, std::vector<int64_t> offsets,
                     int64_t n_rows, int64_t n_features) {
    check(grad_out, "grad_out", at::kFloat, x);
    x = x.contiguous();
    grad_out = grad_out.contiguous();
    const auto g = make_levels(res, offsets, n_features, n_rows);
    TORCH_CHECK(grad_out.dim() == 2 && grad_out.size(0) == x.size(0) &&
                grad_out.size(1) == int64_t(g.n_levels) * g.n_features, "grad_out must be (N, L*F)");
    auto grad_table = at::zeros({n_rows, n_features}, grad_out.options());
    if (x.size(0) == 0) return grad_table;
    RECON_DEVICE_GUARD(x);
    if (on_cuda(x)) {
#ifdef RECON_WITH_CUDA
        recon::hash_grid_bwd_cuda(x.data_ptr<float>(), x.size(0), grad_out.data_ptr<float>(), g,
                                  grad_table.data_ptr<float>(), stream_of(x));
#endif
    } else {
        recon::hash_grid_bwd_cpu(x.data_ptr<float>(), x.size(0), grad_out.data_ptr<float>(), g,
                                 grad_table.data_ptr<float>(), n_threads());
    }
    return grad_table;
}

Tensor hash_grid_bwd_x(Tensor x, Tensor table, Tensor grad_out, std::vector<int64_t> res,
                       std::vector<int64_t> offsets) {
    check(x, "x", at::kFloat, table);
    check(grad_out, "grad_out", at::kFloat, table);
    x = x.contiguous();
    table = table.contiguous();
    grad_out = grad_out.contiguous();
    const auto g = make_levels(res, offsets, table.size(1), table.size(0));
    TORCH_CHECK(x.dim() == 2 && x.size(1) == 3, "x must be (N, 3)");
    TORCH_CHECK(grad_out.dim() == 2 && grad_out.size(0) == x.size(0) &&
                grad_out.size(1) == int64_t(g.n_levels) * g.n_features, "grad_out must be (N, L*F)");
    auto grad_x = at::empty_like(x);
    if (x.size(0) == 0) return grad_x;
    RECON_DEVICE_GUARD(x);
    if (on_cuda(x)) {
#ifdef RECON_WITH_CUDA
        recon::hash_grid_bwd_x_cuda(x.data_ptr<float>(), x.size(0), table.data_ptr<float>(),
                                    grad_out.data_ptr<float>(), g, grad_x.data_ptr<float>(), stream_of(x));
#endif
    } else {
        recon::hash_grid_bwd_x_cpu(x.data_ptr<float>(), x.size(0), table.data_ptr<float>(),
                                   grad_out.data_ptr<float>(), g, grad_x.data_ptr<float>(), n_threads());
    }
    return grad_x;
}

std::vector<Tensor> march_rays(Tensor origins, Tensor dirs, Tensor near, Tensor far, Tensor occupancy,
                               double bound, double step, int64_t max_steps, std::optional<Tensor> offsets) {
    for (auto* t : {&dirs, &near, &far}) check(*t, "rays", at::kFloat, origins);
    check(origins, "origins", at::kFloat, origins);
    check(occupancy, "occupancy", at::kBool, origins);
    const int64_t R = origins.size(0);
    TORCH_CHECK(origins.dim() == 2 && origins.size(1) == 3 && dirs.sizes() == origins.sizes(),
                "origins and dirs must be (R, 3)");
    TORCH_CHECK(near.numel() == R && far.numel() == R, "near and far must be (R,)");
    TORCH_CHECK(occupancy.dim() == 3 && occupancy.size(0) == occupancy.size(1) &&
                occupancy.size(0) == occupancy.size(2) && occupancy.size(0) > 0, "occupancy must be (G, G, G)");
    TORCH_CHECK(occupancy.size(0) <= 1290, "occupancy grids up to 1290^3 (int32 cell indices)");
    TORCH_CHECK(max_steps < (int64_t(1) << 24), "max_steps must be below 2^24 (exact float steps)");
    origins = origins.contiguous();
    dirs = dirs.contiguous();
    near = near.contiguous();
    far = far.contiguous();
    occupancy = occupancy.contiguous();
    Tensor off;
    if (offsets.has_value()) {
        off = offsets->contiguous();
        check(off, "offsets", at::kFloat, origins);
        TORCH_CHECK(off.numel() == R, "offsets must be (R,)");
    }
    const float* offp = off.defined() ? off.data_ptr<float>() : nullptr;
    recon::MarchParams p{};
    p.bound = float(bound);
    p.two_bound = float(2.0 * bound);
    p.inv_two_bound = 1.0f / float(2.0 * bound);
    p.step = float(step);
    p.half_step = float(0.5 * step);
    p.G = int32_t(occupancy.size(0));
    p.grid = float(p.G);
    p.grid_max = float(p.G - 1);
    p.max_steps = int32_t(std::max<int64_t>(max_steps, 0));
    auto counts = at::empty({R}, origins.options().dtype(at::kLong));
    Tensor t_starts;
    RECON_DEVICE_GUARD(origins);
    if (on_cuda(origins)) {
#ifdef RECON_WITH_CUDA
        void* stream = stream_of(origins);
        if (R > 0)
            recon::march_rays_count_cuda(origins.data_ptr<float>(), dirs.data_ptr<float>(), near.data_ptr<float>(),
                                         far.data_ptr<float>(), offp, R, occupancy.data_ptr<bool>(), p,
                                         counts.data_ptr<int64_t>(), stream);
        auto starts = at::cumsum(counts, 0) - counts;
        const int64_t total = R > 0 ? (starts[R - 1] + counts[R - 1]).item<int64_t>() : 0;
        t_starts = at::empty({total}, origins.options());
        auto t_ends = at::empty({total}, origins.options());
        if (total > 0)
            recon::march_rays_fill_cuda(origins.data_ptr<float>(), dirs.data_ptr<float>(), near.data_ptr<float>(),
                                        far.data_ptr<float>(), offp, R, occupancy.data_ptr<bool>(), p,
                                        starts.data_ptr<int64_t>(), t_starts.data_ptr<float>(),
                                        t_ends.data_ptr<float>(), stream);
        return {at::stack({starts, counts}, 1), t_starts, t_ends};
#endif
    }
    recon::march_rays_cpu(origins.data_ptr<float>(), dirs.data_ptr<float>(), near.data_ptr<float>(),
                          far.data_ptr<float>(), offp, R, occupancy.data_ptr<bool>(), p,
                          counts.data_ptr<int64_t>(),
                          [&](int64_t total) {
                              t_starts = at::empty({total}, origins.options());
                              return t_starts.data_ptr<float>();
                          },
                          n_threads());
    auto starts = at::cumsum(counts, 0) - counts;
    return {at::stack({starts, counts}, 1), t_starts, t_starts + step};
}

void check_composite(const Tensor& alphas, const Tensor& values, const Tensor& packed) {
    check(alphas, "alphas", at::kFloat, alphas);
    check(values, "values", at::kFloat, alphas);
    check(packed, "packed", at::kLong, alphas);
    TORCH_CHECK(alphas.dim() == 1, "alphas must be (S,)");
    TORCH_CHECK(values.dim() == 2 && values.size(0) == alphas.size(0), "values must be (S, C)");
    TORCH_CHECK(packed.dim() == 2 && packed.size(1) == 2, "packed must be (R, 2)");
}

// Returns (out, opacity, weights, trans); trans (S,) is what the backward needs.
std::vector<Tensor> composite_fwd(Tensor alphas, Tensor values, Tensor packed) {
    check_composite(alphas, values, packed);
    alphas = alphas.contiguous();
    values = values.contiguous();
    packed = packed.contiguous();
    const int64_t R = packed.size(0), C = values.size(1);
    auto out = at::empty({R, C}, values.options());
    auto opacity = at::empty({R}, alphas.options());
    auto weights = at::zeros_like(alphas);  // zeros: samples no ray covers
    auto trans = at::zeros_like(alphas);
    if (R == 0) return {out, opacity, weights, trans};
    RECON_DEVICE_GUARD(alphas);
    if (on_cuda(alphas)) {
#ifdef RECON_WITH_CUDA
        recon::composite_fwd_cuda(alphas.data_ptr<float>(), values.data_ptr<float>(), packed.data_ptr<int64_t>(),
                                  R, C, out.data_ptr<float>(), opacity.data_ptr<float>(),
                                  weights.data_ptr<float>(), trans.data_ptr<float>(), stream_of(alphas));
#endif
    } else {
        recon::composite_fwd_cpu(alphas.data_ptr<float>(), values.data_ptr<float>(), packed.data_ptr<int64_t>(),
                                 R, C, out.data_ptr<float>(), opacity.data_ptr<float>(),
                                 weights.data_ptr<float>(), trans.data_ptr<float>(), n_threads());
    }
    return {out, opacity, weights, trans};
}

// Returns (grad_alphas, grad_values); grad_values is undefined (None) unless need_values.
std::vector<Tensor> composite_bwd(Tensor alphas, Tensor values, Tensor packed, Tensor trans,
                                  std::optional<Tensor> g_out, std::optional<Tensor> g_opacity,
                                  std::optional<Tensor> g_weights, bool need_values) {
    check_composite(alphas, values, packed);
    check(trans, "trans", at::kFloat, alphas);
    TORCH_CHECK(trans.sizes() == alphas.sizes(), "trans must be (S,)");
    alphas = alphas.contiguous();
    values = values.contiguous();
    packed = packed.contiguous();
    trans = trans.contiguous();
    const int64_t R = packed.size(0), C = values.size(1);
    auto grad_or_null = [&](std::optional<Tensor>& g, at::IntArrayRef shape, const char* name) -> const float* {
        if (!g.has_value() || !g->defined()) return nullptr;
        check(*g, name, at::kFloat, alphas);
        TORCH_CHECK(g->sizes() == shape, name, " has shape ", g->sizes(), ", expected ", shape);
        *g = g->contiguous();
        return g->data_ptr<float>();
    };
    recon::CompositeGrads gr{};
    gr.g_out = grad_or_null(g_out, {R, C}, "grad_out");
    gr.g_opacity = grad_or_null(g_opacity, {R}, "grad_opacity");
    gr.g_weights = grad_or_null(g_weights, {alphas.size(0)}, "grad_weights");
    auto g_alphas = at::zeros_like(alphas);
    Tensor g_values;
    if (need_values) g_values = at::zeros_like(values);
    gr.g_alphas = g_alphas.data_ptr<float>();
    gr.g_values = need_values ? g_values.data_ptr<float>() : nullptr;
    if (R == 0) return {g_alphas, g_values};
    RECON_DEVICE_GUARD(alphas);
    if (on_cuda(alphas)) {
#ifdef RECON_WITH_CUDA
        recon::composite_bwd_cuda(alphas.data_ptr<float>(), values.data_ptr<float>(), trans.data_ptr<float>(),
                                  packed.data_ptr<int64_t>(), R, C, gr, stream_of(alphas));
#endif
    } else {
        recon::composite_bwd_cpu(alphas.data_ptr<float>(), values.data_ptr<float>(), trans.data_ptr<float>(),
                                 packed.data_ptr<int64_t>(), R, C, gr, n_threads());
    }
    return {g_alphas, g_values};
}

void check_mesh(const Tensor& verts, const Tensor& faces) {
    check(verts, "verts", at::kFloat, verts);
    check(faces, "faces", at::kLong, verts);
    TORCH_CHECK(verts.dim() == 2 && verts.size(1) == 3, "verts must be (V, 3), got ", verts.sizes());
    TORCH_CHECK(faces.dim() == 2 && faces.size(1) == 3, "faces must be (F, 3), got ", faces.sizes());
    TORCH_CHECK(faces.size(0) < (int64_t(1) << 31), "rasterize: at most 2^31 - 1 faces");
}

// Returns (face_id, bary, depth).
std::vector<Tensor> rasterize_fwd(Tensor verts, Tensor faces, int64_t height, int64_t width) {
    check_mesh(verts, faces);
    TORCH_CHECK(height >= 0 && width >= 0 && height * width < (int64_t(1) << 31), "rasterize: bad size ", height,
                " x ", width);
    verts = verts.contiguous();
    faces = faces.contiguous();
    if (faces.numel() > 0) {
        const auto [lo, hi] = at::aminmax(faces);  // one pass over the indices
        TORCH_CHECK(lo.item<int64_t>() >= 0 && hi.item<int64_t>() < verts.size(0),
                    "faces index outside the ", verts.size(0), " vertices");
    }
    const int H = int(height), W = int(width);
    auto face_id = at::empty({H, W}, faces.options());
    auto bary = at::empty({H, W, 3}, verts.options());
    auto depth = at::empty({H, W}, verts.options());
    if (int64_t(H) * W == 0) return {face_id, bary, depth};
    RECON_DEVICE_GUARD(verts);
    if (on_cuda(verts)) {
#ifdef RECON_WITH_CUDA
        auto keys = at::empty({int64_t(H) * W}, faces.options());
        recon::rasterize_fwd_cuda(verts.data_ptr<float>(), faces.data_ptr<int64_t>(), faces.size(0), H, W,
                                  reinterpret_cast<uint64_t*>(keys.data_ptr<int64_t>()),
                                  face_id.data_ptr<int64_t>(), bary.data_ptr<float>(), depth.data_ptr<float>(),
                                  stream_of(verts));
#endif
    } else {
        recon::rasterize_fwd_cpu(verts.data_ptr<float>(), faces.data_ptr<int64_t>(), faces.size(0), H, W,
                                 face_id.data_ptr<int64_t>(), bary.data_ptr<float>(), depth.data_ptr<float>(),
                                 n_threads());
    }
    return {face_id, bary, depth};
}

Tensor rasterize_bwd(Tensor verts, Tensor faces, Tensor face_id, std::optional<Tensor> grad_bary,
                     std::optional<Tensor> grad_depth) {
    check_mesh(verts, faces);
    check(face_id, "face_id", at::kLong, verts);
    TORCH_CHECK(face_id.dim() == 2, "face_id must be (H, W)");
    verts = verts.contiguous();
    faces = faces.contiguous();
    face_id = face_id.contiguous();
    TORCH_CHECK(face_id.numel() == 0 || face_id.max().item<int64_t>() < faces.size(0),
                "face_id names a face beyond the ", faces.size(0), " faces");
    const int H = int(face_id.size(0)), W = int(face_id.size(1));
    auto grad_or_null = [&](std::optional<Tensor>& g, at::IntArrayRef shape, const char* name) -> const float* {
        if (!g.has_value() || !g->defined()) return nullptr;
        check(*g, name, at::kFloat, verts);
        TORCH_CHECK(g->sizes() == shape, name, " has shape ", g->sizes(), ", expected ", shape);
        *g = g->contiguous();
        return g->data_ptr<float>();
    };
    const float* gb = grad_or_null(grad_bary, {H, W, 3}, "grad_bary");
    const float* gd = grad_or_null(grad_depth, {H, W}, "grad_depth");
    auto grad_verts = at::zeros_like(verts);
    if (int64_t(H) * W == 0 || (gb == nullptr && gd == nullptr)) return grad_verts;
    RECON_DEVICE_GUARD(verts);
    if (on_cuda(verts)) {
#ifdef RECON_WITH_CUDA
        recon::rasterize_bwd_cuda(verts.data_ptr<float>(), faces.data_ptr<int64_t>(), face_id.data_ptr<int64_t>(),
                                  H, W, gb, gd, grad_verts.data_ptr<float>(), stream_of(verts));
#endif
    } else {
        recon::rasterize_bwd_cpu(verts.data_ptr<float>(), verts.size(0), faces.data_ptr<int64_t>(),
                                 face_id.data_ptr<int64_t>(), H, W, gb, gd, grad_verts.data_ptr<float>(), n_threads());
    }
    return grad_verts;
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
    m.doc() = "recon compiled kernels (see recon/ops for the contracts)";
#ifdef RECON_WITH_CUDA
    m.attr("with_cuda") = true;
#else
    m.attr("with_cuda") = false;
#endif
    m.def("hash_grid_fwd", &hash_grid_fwd, "hash-grid encode: (x, table, resolutions, offsets) -> (N, L*F)");
    m.def("hash_grid_bwd", &hash_grid_bwd,
          "gradient of the encoding wrt the table: (x, grad_out, resolutions, offsets, n_rows, n_features)");
    m.def("hash_grid_bwd_x", &hash_grid_bwd_x,
          "gradient of the encoding wrt x: (x, table, grad_out, resolutions, offsets) -> (N, 3)");
    m.def("march_rays", &march_rays, "occupancy-grid ray marching -> (packed, t_starts, t_ends)");
    m.def("composite_fwd", &composite_fwd, "(alphas, values, packed) -> (out, opacity, weights, trans)");
    m.def("rasterize_fwd", &rasterize_fwd, "(verts, faces, height, width) -> (face_id, bary, depth)");
    m.def("rasterize_bwd", &rasterize_bwd,
          "(verts, faces, face_id, grad_bary, grad_depth) -> grad_verts");
    m.def("composite_bwd", &composite_bwd,
          "(alphas, values, packed, trans, g_out, g_opacity, g_weights, need_values) -> (g_alphas, g_values)");
}
