"""The packed engine's XNOR-popcount product on a GPU by __popcll
(Courbariaux et al., arXiv:1602.02830, Sec. 3): the kernel for GPUs before
sm_80, which have no 1-bit tensor cores (packed/mma.py), and the reference
the tensor-core kernels are tested against on a GPU.
"""
import functools

import numpy

CUDA_SOURCE = r'''
extern "C" __global__
void xnor_popcount(const unsigned long long* __restrict__ A,
                   const unsigned long long* __restrict__ B,
                   int* __restrict__ D, int M, int N, int KW)
{
    // A block computes a 64 x 64 tile of D, a thread 4 x 4 of its outputs;
    // the tiles of A and B pass through shared memory TK words at a time.
    const int TK = 16;
    __shared__ unsigned long long As[TK][65];
    __shared__ unsigned long long Bs[TK][65];
    const int tx = threadIdx.x % 16, ty = threadIdx.x / 16;
    const int row0 = blockIdx.y * 64, col0 = blockIdx.x * 64;
    int acc[4][4];
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 4; ++j)
            acc[i][j] = 0;
    for (int k0 = 0; k0 < KW; k0 += TK) {
        for (int e = threadIdx.x; e < 64 * TK; e += blockDim.x) {
            const int r = e / TK, k = e % TK, gk = k0 + k;
            const int ga = row0 + r, gb = col0 + r;
            // Zero words past the end add popcount(0 ^ 0) = 0.
            As[k][r] = (ga < M && gk < KW) ? A[(long long)ga * KW + gk] : 0ULL;
            Bs[k][r] = (gb < N && gk < KW) ? B[(long long)gb * KW + gk] : 0ULL;
        }
        __syncthreads();
        for (int k = 0; k < TK; ++k) {
            unsigned long long a[4], b[4];
            for (int i = 0; i < 4; ++i) a[i] = As[k][ty + 16 * i];
            for (int j = 0; j < 4; ++j) b[j] = Bs[k][tx + 16 * j];
            for (int i = 0; i < 4; ++i)
                for (int j = 0; j < 4; ++j)
                    acc[i][j] += __popcll(a[i] ^ b[j]);
        }
        __syncthreads();
    }
    for (int i = 0; i < 4; ++i) {
        const int r = row0 + ty + 16 * i;
        for (int j = 0; j < 4; ++j) {
            const int c = col0 + tx + 16 * j;
            if (r < M && c < N) D[(long long)r * N + c] = acc[i][j];
        }
    }
}
'''


@functools.lru_cache(maxsize=None)
def _kernel():
    import cupy
    return cupy.RawKernel(CUDA_SOURCE, 'xnor_popcount')


def xnor_popcount(a, w):
    """d[i, j] = popcount(a[i] XOR w[j]) (int32) for packed CuPy rows
    a (M, KW), w (N, KW)."""
    import cupy
    a = cupy.ascontiguousarray(a)
    w = cupy.ascontiguousarray(w)
    m, n = len(a), len(w)
    d = cupy.empty((m, n), cupy.int32)
    # CUDA refuses a grid with a zero dimension.
    if m and n:
        _kernel()((-(-n // 64), -(-m // 64)), (256,),
                  (a, w, d, numpy.int32(m), numpy.int32(n),
                   numpy.int32(a.shape[1])))
    return d
