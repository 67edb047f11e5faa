// Shared by every kernel file: host/device qualifiers. Kernel headers include no torch and no
// CUDA headers, so the CPU kernels and the .cu files compile on their own (see tests/ops).
#pragma once

#ifdef __CUDACC__
#define RECON_HD __host__ __device__ __forceinline__
#else
// forced: GCC leaves some of these helpers out of line (a call per select or floor in the inner loops)
#define RECON_HD inline __attribute__((always_inline))
#endif

// floor of a float within the int32 range (callers clamp or bound it first): exact, and inline
// on baseline x86-64, where SSE2 has no rounding instruction and floorf is a libm call.
RECON_HD float floor_small(float x) {
#ifdef __CUDA_ARCH__
    return floorf(x);
#else
    const float t = float(int(x));  // truncates toward zero
    return t > x ? t - 1.f : t;
#endif
}
