"""The packed engine on the 1-bit tensor cores of sm_80 and later GPUs
(Courbariaux et al., arXiv:1602.02830, Sec. 3).

mma.sync.m16n8k256.b1 with .and.popc gives P = popcount(a AND w), and
popcount(a XOR w) = popcount(a) + popcount(w) - 2 P: the row counts of W
are taken when the model is folded, those of the activations when they are
packed. (On sm_90 the .xor.popc form is lowered to two AND MMAs.) Rows are
padded with zero words to 256 bits, one MMA's k, which adds nothing to P.

A hidden layer is one kernel: the product, the threshold, the flip and the
packing of the output bits, with the output's row counts, so no int32
matrix goes through memory.

Every index the kernels compute is a formula of FORMULAS, valid C and
Python both: the CUDA source is generated from them, and the tests run
them, with the same constants, in a NumPy emulation of the kernels.
"""
import functools

import numpy

# A block computes BLOCK_M rows by BLOCK_N units of the product, a warp
# WARP_M x WARP_N of them as 4 x 8 MMAs of 16 x 8 each.
BLOCK_M, BLOCK_N, WARP_M, WARP_N = 128, 128, 64, 64
WARPS = BLOCK_M // WARP_M * (BLOCK_N // WARP_N)
THREADS = 32 * WARPS
# One MMA's k, 256 bits, is a step of the main loop; STAGES steps are in
# flight at once (cp.async, multi-buffered in shared memory).
STEP_WORDS, STAGES = 4, 3
# A tile's row of 32 bytes, padded to 48: the 8 rows an ldmatrix phase
# reads then start 16 bytes apart modulo 128, in 8 different bank groups.
ROW_BYTES = 48
# Each thread's 16-byte copies per step: both tiles' rows, two halves each.
COPIES = (BLOCK_M + BLOCK_N) * 2 // THREADS
# sign_words and row_counts: a warp per row.
ROW_THREADS = 256
# Beyond any a - 2 P of this package: a padded unit's bit is never set.
NEVER = numpy.iinfo(numpy.int32).max

CONSTANTS = {name: globals()[name] for name in (
    'BLOCK_M', 'BLOCK_N', 'WARP_M', 'WARP_N', 'WARPS', 'THREADS',
    'STEP_WORDS', 'STAGES', 'ROW_BYTES', 'COPIES', 'ROW_THREADS')}

# name: (arguments, expression), each a C int function and a Python one.
FORMULAS = {
    # A thread's q-th copy of a step: tile row (A's, then W's) and half.
    'copy_index': ('tid, q', 'tid + q * THREADS'),
    'tile_row': ('e', 'e >> 1'),
    'tile_half': ('e', 'e & 1'),
    # The word of a row that a step's half starts at.
    'step_word': ('step, half', 'step * STEP_WORDS + half * 2'),
    'buffer': ('step', 'step % STAGES'),
    'tile_offset': ('row, half', 'row * ROW_BYTES + half * 16'),
    # W's tile row p holds unit w_unit(p) of the block: within a warp's 64,
    # fragment column 2 t + h of MMA j is unit 16 t + 2 j + h, so that the
    # thread with t = lane % 4 holds 16 consecutive units of a row.
    'w_unit': ('p', '(p & -64) + ((p & 7) >> 1) * 16 + ((p & 63) >> 3) * 2 '
               '+ (p & 1)'),
    'warp_row': ('warp', '(warp >> 1) * WARP_M'),
    'warp_unit': ('warp', '(warp & 1) * WARP_N'),
    # ldmatrix.x4: lane l names row l % 8 of matrix l / 8 and gets a 32-bit
    # word of each matrix, as the MMA's fragments want them. Of A's 16 rows
    # (an MMA's) the matrices are rows 0-7 and 8-15 of half 0 (bits 0-127),
    # then of half 1: a0..a3. Of W's, MMA j's halves 0 and 1, then MMA
    # j + 1's: b0 and b1 of each.
    'a_row': ('lane', '(lane & 7) + (lane >> 3 & 1) * 8'),
    'a_half': ('lane', 'lane >> 4'),
    'w_row': ('lane', '(lane & 7) + (lane >> 4) * 8'),
    'w_half': ('lane', 'lane >> 3 & 1'),
    # Accumulator e of MMA (i, j): its row and its unit in the warp's tile.
    'acc_row': ('lane, i, e', 'i * 16 + (lane >> 2) + (e >> 1) * 8'),
    'acc_unit': ('lane, j, e', 'w_unit((lane & 3) * 2 + j * 8 + (e & 1))'),
    # The hidden layer's output: 16 bits a thread, at 16-bit piece
    # lane % 4 of the warp's 64-bit word.
    'piece': ('lane', 'lane & 3'),
    'piece_bit': ('j, e', 'j * 2 + (e & 1)'),
    'row_of_warp': ('block, tid', 'block * (ROW_THREADS >> 5) + (tid >> 5)'),
}


def index(name, **values):
    """FORMULAS[name] evaluated in Python on ints or NumPy int arrays."""
    scope = dict(CONSTANTS, **values)
    scope.update((f, functools.partial(_call, f)) for f in FORMULAS)
    return eval(FORMULAS[name][1], {'__builtins__': {}}, scope)


def _call(name, *args):
    names = FORMULAS[name][0].split(', ')
    return index(name, **dict(zip(names, args)))


def _source():
    defines = ''.join('#define {} {}\n'.format(k, v)
                      for k, v in CONSTANTS.items())
    functions = ''.join(
        '__device__ __forceinline__ int {}({}) {{ return {}; }}\n'.format(
            name, ', '.join('int ' + a for a in args.split(', ')), expr)
        for name, (args, expr) in FORMULAS.items())
    return defines + functions + _KERNELS


_KERNELS = r'''
typedef unsigned long long u64;

__device__ __forceinline__ unsigned int shared_address(const void* p)
{
    return (unsigned int)__cvta_generic_to_shared(p);
}

// Global to shared memory without registers; 0 bytes read (a row past the
// matrix) writes 16 zeros.
__device__ __forceinline__ void copy16(unsigned int to, const u64* from,
                                       bool valid)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;\n"
                 :: "r"(to), "l"(from), "r"(valid ? 16 : 0));
}

__device__ __forceinline__ void ldmatrix4(unsigned int* r,
                                          unsigned int address)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 "
                 "{%0, %1, %2, %3}, [%4];\n"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3])
                 : "r"(address));
}

__device__ __forceinline__ void and_popc(int* c, const unsigned int* a,
                                         const unsigned int* b)
{
    asm volatile("mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc "
                 "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, "
                 "{%0, %1, %2, %3};\n"
                 : "+r"(c[0]), "+r"(c[1]), "+r"(c[2]), "+r"(c[3])
                 : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]),
                   "r"(b[0]), "r"(b[1]));
}

// acc[i][j][e] = popcount(a AND w) for the warp's MMAs (i, j) of the
// block's tile: rows of A (M x KW words), units of W (N x KW), KW a
// multiple of STEP_WORDS.
__device__ __forceinline__ void and_popcount_tile(
    const u64* __restrict__ A, const u64* __restrict__ W, int M, int N,
    int KW, int (&acc)[4][8][4])
{
    __shared__ __align__(16) unsigned char
        tiles[STAGES][(BLOCK_M + BLOCK_N) * ROW_BYTES];
    const int tid = threadIdx.x, lane = tid & 31, warp = tid >> 5;
    const int steps = KW / STEP_WORDS;
    const u64* from[COPIES];
    unsigned int to[COPIES];
    int half[COPIES];
    bool valid[COPIES];
    for (int q = 0; q < COPIES; ++q) {
        const int e = copy_index(tid, q), row = tile_row(e);
        const int g = row < BLOCK_M ? (int)blockIdx.y * BLOCK_M + row
            : (int)blockIdx.x * BLOCK_N + w_unit(row - BLOCK_M);
        valid[q] = g < (row < BLOCK_M ? M : N);
        from[q] = (row < BLOCK_M ? A : W) + (long long)(valid[q] ? g : 0) * KW;
        half[q] = tile_half(e);
        to[q] = tile_offset(row, half[q]);
    }
    for (int i = 0; i < 4; ++i)
        for (int j = 0; j < 8; ++j)
            for (int e = 0; e < 4; ++e)
                acc[i][j][e] = 0;
    for (int s = 0; s < STAGES - 1; ++s) {
        if (s < steps)
            for (int q = 0; q < COPIES; ++q)
                copy16(shared_address(tiles[buffer(s)]) + to[q],
                       from[q] + step_word(s, half[q]), valid[q]);
        asm volatile("cp.async.commit_group;\n" ::);
    }
    const int m0 = warp_row(warp), n0 = BLOCK_M + warp_unit(warp);
    for (int s = 0; s < steps; ++s) {
        // Step s's copies have landed, this thread's by the wait, all by
        // the barrier; past it no warp reads step s - 1's buffer, which the
        // copies of step s + STAGES - 1 refill.
        asm volatile("cp.async.wait_group %0;\n" :: "n"(STAGES - 2));
        __syncthreads();
        const int next = s + STAGES - 1;
        if (next < steps)
            for (int q = 0; q < COPIES; ++q)
                copy16(shared_address(tiles[buffer(next)]) + to[q],
                       from[q] + step_word(next, half[q]), valid[q]);
        // Empty at the end: the wait's count stays that of the steps.
        asm volatile("cp.async.commit_group;\n" ::);
        const unsigned int tile = shared_address(tiles[buffer(s)]);
        unsigned int a[4][4], b[8][2];
        for (int i = 0; i < 4; ++i)
            ldmatrix4(a[i], tile + tile_offset(m0 + i * 16 + a_row(lane),
                                               a_half(lane)));
        for (int j = 0; j < 8; j += 2) {
            unsigned int r[4];
            ldmatrix4(r, tile + tile_offset(n0 + j * 8 + w_row(lane),
                                            w_half(lane)));
            b[j][0] = r[0];
            b[j][1] = r[1];
            b[j + 1][0] = r[2];
            b[j + 1][1] = r[3];
        }
        for (int i = 0; i < 4; ++i)
            for (int j = 0; j < 8; ++j)
                and_popc(acc[i][j], a[i], b[j]);
    }
}

// D = popcount(A XOR W^T) from the rows' counts of ones.
extern "C" __global__ void __launch_bounds__(THREADS)
xnor_product(const u64* __restrict__ A, const u64* __restrict__ W,
             const int* __restrict__ a_counts,
             const int* __restrict__ w_counts, int* __restrict__ D,
             int M, int N, int KW)
{
    int acc[4][8][4];
    and_popcount_tile(A, W, M, N, KW, acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int row0 = blockIdx.y * BLOCK_M + warp_row(warp);
    const int unit0 = blockIdx.x * BLOCK_N + warp_unit(warp);
    int w_count[8][2];
    for (int j = 0; j < 8; ++j)
        for (int h = 0; h < 2; ++h) {
            const int u = unit0 + acc_unit(lane, j, h);
            w_count[j][h] = u < N ? w_counts[u] : 0;
        }
    // A thread's units of a row are 16 consecutive ones, 4 from
    // acc_unit(lane, 2 q, 0) on: one 16-byte store where rows are whole
    // multiples of 16 bytes. Unrolled, so that acc stays in registers.
    const bool aligned = (N & 3) == 0;
    #pragma unroll
    for (int i = 0; i < 4; ++i)
        #pragma unroll
        for (int e = 0; e < 4; e += 2) {
            const int r = row0 + acc_row(lane, i, e);
            if (r >= M)
                continue;
            const int a_count = a_counts[r];
            #pragma unroll
            for (int q = 0; q < 4; ++q) {
                int v[4];
                #pragma unroll
                for (int x = 0; x < 4; ++x)
                    v[x] = a_count + w_count[2 * q + x / 2][x % 2] -
                        2 * acc[i][2 * q + x / 2][e + x % 2];
                const int u = unit0 + acc_unit(lane, 2 * q, 0);
                int* d = D + (long long)r * N + u;
                if (aligned && u < N)
                    *(int4*)d = make_int4(v[0], v[1], v[2], v[3]);
                else
                    #pragma unroll
                    for (int x = 0; x < 4; ++x)
                        if (u + x < N)
                            d[x] = v[x];
            }
        }
}

// Y's bits: (popcount(X XOR W^T) >= threshold) XOR flip, as bound[u] =
// threshold[u] - popcount(w_u) and the flips packed like Y, padded units
// bound NEVER; Y's row counts are added to y_counts (zeros).
extern "C" __global__ void __launch_bounds__(THREADS)
hidden_layer(const u64* __restrict__ X, const u64* __restrict__ W,
             const int* __restrict__ x_counts, const int* __restrict__ bound,
             const unsigned short* __restrict__ flips,
             unsigned short* __restrict__ Y, int* __restrict__ y_counts,
             int M, int N, int KW, int YW)
{
    int acc[4][8][4];
    and_popcount_tile(X, W, M, N, KW, acc);
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int row0 = blockIdx.y * BLOCK_M + warp_row(warp);
    const int unit0 = blockIdx.x * BLOCK_N + warp_unit(warp);
    int bounds[8][2];
    for (int j = 0; j < 8; ++j)
        for (int h = 0; h < 2; ++h)
            bounds[j][h] = bound[unit0 + acc_unit(lane, j, h)];
    const unsigned int flip = flips[unit0 / 16 + piece(lane)];
    for (int i = 0; i < 4; ++i)
        for (int e = 0; e < 4; e += 2) {
            const int r = row0 + acc_row(lane, i, e);
            const int x_count = r < M ? x_counts[r] : 0;
            unsigned int bits = 0;
            for (int j = 0; j < 8; ++j)
                for (int h = 0; h < 2; ++h)
                    bits |= (unsigned int)(x_count - 2 * acc[i][j][e + h]
                                           >= bounds[j][h])
                        << piece_bit(j, h);
            bits ^= flip;
            if (r < M)
                Y[(long long)r * YW * 4 + unit0 / 16 + piece(lane)] = bits;
            // The row's count over the warp's 64 units: its quad's pieces.
            int n = __popc(bits);
            n += __shfl_xor_sync(0xffffffffu, n, 1);
            n += __shfl_xor_sync(0xffffffffu, n, 2);
            if (r < M && piece(lane) == 0)
                atomicAdd(y_counts + r, n);
        }
}

// The first hidden layer's bits from its integer sums S (exact in float32),
// 32 units a ballot, and their row counts; units from N to 64 YW are 0.
extern "C" __global__ void __launch_bounds__(ROW_THREADS)
sign_words(const float* __restrict__ S, const int* __restrict__ threshold,
           const bool* __restrict__ flip, unsigned int* __restrict__ Y,
           int* __restrict__ y_counts, int M, int N, int YW)
{
    const int lane = threadIdx.x & 31;
    const int r = row_of_warp(blockIdx.x, threadIdx.x);
    if (r >= M)
        return;
    int n = 0;
    for (int k = 0; k < 2 * YW; ++k) {
        const int u = k * 32 + lane;
        const bool bit = u < N &&
            (((int)S[(long long)r * N + u] >= threshold[u]) != flip[u]);
        const unsigned int word = __ballot_sync(0xffffffffu, bit);
        if (lane == 0)
            Y[(long long)r * 2 * YW + k] = word;
        n += __popc(word);
    }
    if (lane == 0)
        y_counts[r] = n;
}

// counts[r] = popcount of row r of X (M x KW words).
extern "C" __global__ void __launch_bounds__(ROW_THREADS)
row_counts(const u64* __restrict__ X, int* __restrict__ counts, int M,
           int KW)
{
    const int lane = threadIdx.x & 31;
    const int r = row_of_warp(blockIdx.x, threadIdx.x);
    if (r >= M)
        return;
    int n = 0;
    for (int k = lane; k < KW; k += 32)
        n += __popcll(X[(long long)r * KW + k]);
    for (int d = 16; d > 0; d >>= 1)
        n += __shfl_xor_sync(0xffffffffu, n, d);
    if (lane == 0)
        counts[r] = n;
}
'''

CUDA_SOURCE = _source()
KERNELS = ('xnor_product', 'hidden_layer', 'sign_words', 'row_counts')


def supported():
    """Whether the current CUDA device has the 1-bit MMA: sm_80 or later."""
    import cupy
    return int(cupy.cuda.Device().compute_capability) >= 80


@functools.lru_cache(maxsize=None)
def kernels():
    """The compiled kernels, by name, called as kernel(grid, block, args)."""
    import cupy
    module = cupy.RawModule(code=CUDA_SOURCE)
    return {name: module.get_function(name) for name in KERNELS}


def _xp(a):
    if isinstance(a, numpy.ndarray):
        return numpy
    import cupy
    return cupy


def padded_words(n_bits):
    """Words a row of n_bits takes, padded to whole MMA steps of 256 bits."""
    return -(-n_bits // (64 * STEP_WORDS)) * STEP_WORDS


def pad_rows(x):
    """Packed rows x (rows, KW) with zero words up to a multiple of 4."""
    xp = _xp(x)
    words = padded_words(64 * x.shape[1])
    if words == x.shape[1]:
        return xp.ascontiguousarray(x)
    padded = xp.zeros((len(x), words), numpy.uint64)
    padded[:, :x.shape[1]] = x
    return padded


def row_counts(x):
    """popcount of each packed row of x (rows, KW), int32."""
    xp = _xp(x)
    counts = xp.empty(len(x), numpy.int32)
    if len(x):
        kernels()['row_counts'](
            (-(-len(x) // (ROW_THREADS // 32)),), (ROW_THREADS,),
            (x, counts, numpy.int32(len(x)), numpy.int32(x.shape[1])))
    return counts


def product(a, a_counts, w, w_counts):
    """d = a_counts + w_counts - 2 popcount(a AND w): xnor_popcount on rows
    that pad_rows padded and row_counts counted, as a layer runs it (the
    weights counted once when folded, the activations by the layer before).
    """
    m, n = len(a), len(w)
    d = _xp(a).empty((m, n), numpy.int32)
    if m and n:
        kernels()['xnor_product'](
            (-(-n // BLOCK_N), -(-m // BLOCK_M)), (THREADS,),
            (a, w, a_counts, w_counts, d, numpy.int32(m), numpy.int32(n),
             numpy.int32(a.shape[1])))
    return d


def xnor_popcount(a, w):
    """d[i, j] = popcount(a[i] XOR w[j]) for packed rows a (M, KW), w (N, KW),
    through popcount(a) + popcount(w) - 2 popcount(a AND w)."""
    a, w = pad_rows(a), pad_rows(w)
    return product(a, row_counts(a), w, row_counts(w))


class TensorCoreMLP(object):

    """x_1 = (s >= t_1) XOR f_1 and x_k = (popcount(x_k-1 XOR w) >= t_k)
    XOR f_k, a kernel each, then the output layer's popcounts.

    Folded once from PackedMLP.arrays (NumPy or CuPy; ``n_layers`` >= 2):
    each W after the first padded to 256-bit rows, with its row counts, and
    per unit of the later hidden layers bound = t - popcount(w) and the
    flips packed as the layer's bits are.
    """

    def __init__(self, arrays, n_layers):
        self.first = (arrays['l1/threshold'], arrays['l1/flip'])
        self.layers = []
        for k in range(2, n_layers + 1):
            name = 'l{}/'.format(k)
            w = pad_rows(arrays[name + 'W'])
            layer = {'W': w, 'counts': row_counts(w)}
            if k < n_layers:
                layer['bound'], layer['flips'] = self._fold_threshold(
                    arrays[name + 'threshold'], arrays[name + 'flip'],
                    layer['counts'])
            self.layers.append(layer)

    @staticmethod
    def _fold_threshold(threshold, flip, w_counts):
        xp = _xp(threshold)
        units = 64 * padded_words(len(threshold))
        bound = xp.full(units, NEVER, numpy.int32)
        bound[:len(threshold)] = threshold - w_counts
        bits = xp.zeros(units, bool)
        bits[:len(flip)] = flip
        return bound, xp.packbits(bits, bitorder='little').view(numpy.uint16)

    def scores(self, s, hidden=None):
        """The output layer's integer scores for the first layer's sums s
        (M, units) of +-pixels; ``hidden``: a list to which each hidden
        layer's packed bits are added, as pack_signs packs them."""
        xp = _xp(s)
        m, units = s.shape
        x, counts = self._sign_words(s, *self.first)
        for layer in self.layers[:-1]:
            if hidden is not None:
                hidden.append(x[:, :-(-units // 64)])
            units = len(layer['W'])
            y = xp.empty((m, padded_words(units)), numpy.uint64)
            y_counts = xp.zeros(m, numpy.int32)
            if m:
                kernels()['hidden_layer'](
                    (y.shape[1] * 64 // BLOCK_N, -(-m // BLOCK_M)),
                    (THREADS,),
                    (x, layer['W'], counts, layer['bound'], layer['flips'],
                     y, y_counts, numpy.int32(m), numpy.int32(units),
                     numpy.int32(x.shape[1]), numpy.int32(y.shape[1])))
            x, counts = y, y_counts
        if hidden is not None:
            hidden.append(x[:, :-(-units // 64)])
        last = self.layers[-1]
        return product(x, counts, last['W'], last['counts'])

    @staticmethod
    def _sign_words(s, threshold, flip):
        xp = _xp(s)
        m, n = s.shape
        y = xp.empty((m, padded_words(n)), numpy.uint64)
        counts = xp.empty(m, numpy.int32)
        if m:
            kernels()['sign_words'](
                (-(-m // (ROW_THREADS // 32)),), (ROW_THREADS,),
                (xp.ascontiguousarray(s, numpy.float32), threshold, flip, y,
                 counts, numpy.int32(m), numpy.int32(n),
                 numpy.int32(y.shape[1])))
        return y, counts
