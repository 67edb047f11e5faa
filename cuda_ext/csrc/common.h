// Shared by every kernel file: host/device qualifiers. Kernel headers include no torch and no
// CUDA headers, so the CPU kernels and the .cu files compile on their own (see tests/ops).
#pragma once

#ifdef __CUDACC__
#define RECON_HD __host__ __device__ __forceinline__
#else
#define RECON_HD inline
#endif
