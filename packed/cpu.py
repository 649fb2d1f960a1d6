"""The packed engine's XNOR-popcount kernels for the CPU, compiled by Numba
(Courbariaux et al., arXiv:1602.02830, Sec. 3).

d[i, j] = popcount(a[i] XOR w[j]) on packed rows, a . w = K - 2 d, with
XOR, popcount and sum in registers in one pass. The threads share tiles of
64 rows of a by 64 rows of w; a tile runs 2 rows of a by 4 of
w at a time, so that each word loaded serves 2 or 4 popcounts, and LLVM
vectorises the sum over words (8 words a VPOPCNTQ with AVX-512 VPOPCNTDQ).

A hidden layer, sign_bits, compares each tile's sums with the thresholds
and packs the bits while the sums are in cache. The first layer takes the
8-bit pixels as bit planes, p = sum_b 2^b plane_b, through the same tiles.
"""
import time

import numba
from numba import prange, types
from numba.extending import intrinsic
import numpy

from packed import reference

WORD_BITS = 64
# Rows of a and of w per tile: 64 w rows of the paper's 4096 bits are 32 KiB,
# within a level-1 cache, and a tile's outputs fill whole packed words.
TILE = 64
_JIT = {'cache': True, 'nogil': True, 'boundscheck': False,
        'error_model': 'numpy'}


@intrinsic
def _popcount(typingctx, x):
    """popcount(x) of a uint64 word, as LLVM's ctpop: POPCNT or VPOPCNTQ."""
    if x != types.uint64:
        return None

    def codegen(context, builder, signature, args):
        return builder.ctpop(args[0])
    # A count of at most 64, typed int64 so that sums of it stay integers.
    return types.int64(types.uint64), codegen


@numba.njit(**_JIT)
def _dot(x, y):
    """sum_k popcount(x[k] XOR y[k]) for two packed rows."""
    s = 0
    for k in range(len(x)):
        s += _popcount(x[k] ^ y[k])
    return s


@numba.njit(**_JIT)
def _tile(a, w, shift, out):
    """out[i, j] += sum_k popcount(a[i, k] XOR w[j, k]) << shift."""
    m, n, kw = len(a), len(w), w.shape[1]
    for i in range(0, m - 1, 2):
        x0, x1 = a[i], a[i + 1]
        for j in range(0, n - 3, 4):
            y0, y1, y2, y3 = w[j], w[j + 1], w[j + 2], w[j + 3]
            s00 = s01 = s02 = s03 = s10 = s11 = s12 = s13 = 0
            for k in range(kw):
                p, q = x0[k], x1[k]
                s00 += _popcount(p ^ y0[k])
                s01 += _popcount(p ^ y1[k])
                s02 += _popcount(p ^ y2[k])
                s03 += _popcount(p ^ y3[k])
                s10 += _popcount(q ^ y0[k])
                s11 += _popcount(q ^ y1[k])
                s12 += _popcount(q ^ y2[k])
                s13 += _popcount(q ^ y3[k])
            out[i, j] += s00 << shift
            out[i, j + 1] += s01 << shift
            out[i, j + 2] += s02 << shift
            out[i, j + 3] += s03 << shift
            out[i + 1, j] += s10 << shift
            out[i + 1, j + 1] += s11 << shift
            out[i + 1, j + 2] += s12 << shift
            out[i + 1, j + 3] += s13 << shift
        for j in range(n - n % 4, n):
            out[i, j] += _dot(x0, w[j]) << shift
            out[i + 1, j] += _dot(x1, w[j]) << shift
    if m % 2:
        for j in range(n):
            out[m - 1, j] += _dot(a[m - 1], w[j]) << shift


@numba.njit(**_JIT)
def _tile_sums(planes, w, t, col_tiles):
    """Tile t's rows r0:r1, columns c0:c1 and the sums of sign_bits' S over
    them, in a buffer that stays in cache while the planes add to it."""
    r0, c0 = t // col_tiles * TILE, t % col_tiles * TILE
    r1, c1 = min(r0 + TILE, planes.shape[1]), min(c0 + TILE, len(w))
    s = numpy.zeros((r1 - r0, c1 - c0), numpy.int32)
    for b in range(len(planes)):
        _tile(planes[b, r0:r1], w[c0:c1], b, s)
    return r0, r1, c0, c1, s


@numba.njit(parallel=True, **_JIT)
def _product(planes, w, d):
    col_tiles = -(-len(w) // TILE)
    for t in prange(-(-planes.shape[1] // TILE) * col_tiles):
        r0, r1, c0, c1, s = _tile_sums(planes, w, t, col_tiles)
        d[r0:r1, c0:c1] = s


def xnor_popcount(a, w):
    """d[i, j] = popcount(a[i] XOR w[j]) (int32) for packed rows a (M, KW)
    and w (N, KW)."""
    d = numpy.empty((len(a), len(w)), numpy.int32)
    _product(numpy.ascontiguousarray(a)[None], numpy.ascontiguousarray(w), d)
    return d


@numba.njit(parallel=True, **_JIT)
def _sign_bits(planes, w, threshold, flip, bits):
    col_tiles = -(-len(w) // TILE)
    for t in prange(-(-planes.shape[1] // TILE) * col_tiles):
        r0, r1, c0, c1, s = _tile_sums(planes, w, t, col_tiles)
        for i in range(r1 - r0):
            word = numpy.uint64(0)
            for j in range(c1 - c0):
                if (s[i, j] >= threshold[c0 + j]) != flip[c0 + j]:
                    word |= numpy.uint64(1) << numpy.uint64(j)
            bits[r0 + i, c0 // WORD_BITS] = word


def sign_bits(planes, w, threshold, flip):
    """Packed bits of (S >= threshold) XOR flip, per unit, for
    S[i, j] = sum_b 2^b popcount(planes[b, i] XOR w[j]).

    planes (B, M, KW) holds B packed rows per input (B = 1 for a hidden
    layer's activations), w (N, KW) the packed weights; the bits of the
    last word past N are 0, as pack_signs pads them.
    """
    bits = numpy.empty((planes.shape[1], -(-len(w) // WORD_BITS)),
                       numpy.uint64)
    _sign_bits(numpy.ascontiguousarray(planes), numpy.ascontiguousarray(w),
               numpy.ascontiguousarray(threshold, numpy.int32),
               numpy.ascontiguousarray(flip, numpy.bool_), bits)
    return bits


@numba.njit(parallel=True, **_JIT)
def _bit_planes(pixels, planes):
    for i in prange(len(pixels)):
        for k in range(-(-pixels.shape[1] // WORD_BITS)):
            row = pixels[i, k * WORD_BITS:(k + 1) * WORD_BITS]
            for b in range(8):
                word = numpy.uint64(0)
                for t in range(len(row)):
                    word |= numpy.uint64(row[t] >> b & 1) << numpy.uint64(t)
                planes[b, i, k] = word


def bit_planes(pixels, words):
    """planes (8, M, words) with p = sum_b 2^b planes[b] for uint8 pixels
    (M, K), each plane's rows packed as pack_signs packs them, 0 bits past
    K."""
    planes = numpy.zeros((8, len(pixels), words), numpy.uint64)
    _bit_planes(numpy.ascontiguousarray(pixels, numpy.uint8), planes)
    return planes


@numba.njit(**_JIT)
def _xor_popcount_sum(words, repeat):
    s = 0
    for r in range(repeat):
        # A key loaded, not computed: the compiler cannot reorder the
        # passes into a loop over keys.
        key = words[r % len(words)]
        for k in range(len(words)):
            s += _popcount(words[k] ^ key)
    return s


def xor_popcount_rate(seconds=0.2):
    """Words a second of s += popcount(x XOR y) alone, its words in the
    level-1 cache, times the threads: the yardstick for the product's rate.

    It runs on one core, timed by that thread's CPU time, so that other
    programs on the machine do not lower it.
    """
    # 16 KiB, in any level-1 cache, in passes long enough to hide the sum
    # at the end of each.
    words = numpy.arange(2048, dtype=numpy.uint64) * numpy.uint64(
        0x9E3779B97F4A7C15)
    _xor_popcount_sum(words, 1)
    repeat = 1
    while True:
        start = time.thread_time()
        _xor_popcount_sum(words, repeat)
        elapsed = time.thread_time() - start
        if elapsed >= seconds:
            return len(words) * repeat / elapsed * numba.get_num_threads()
        repeat *= 2


class CompiledLayers(object):

    """The hidden layers of PackedMLP.arrays as sign_bits takes them, the
    first on the pixels' bit planes p = sum_b 2^b plane_b.

    For w in {-1, +1} (bits 1 for +1), p . w = 255 popcount(w) - D with
    D = sum_b 2^b popcount(plane_b XOR w), so S >= t iff
    not D >= 255 popcount(w) - t + 1.
    """

    def __init__(self, arrays, n_layers):
        w = arrays['l1/W']
        # Rows of whole 16-word steps of the vectorised loop over words
        # (with AVX-512): 784 bits in 13 words would take its scalar tail.
        padded = numpy.zeros((len(w), -(-w.shape[1] // 16) * 16), w.dtype)
        padded[:, :w.shape[1]] = w
        t = (255 * reference.popcount(w).sum(axis=1, dtype=numpy.int64) -
             arrays['l1/threshold'] + 1)
        self.layers = [(padded, t.astype(numpy.int32), ~arrays['l1/flip'])]
        for k in range(2, n_layers):
            name = 'l{}/'.format(k)
            self.layers.append((arrays[name + 'W'], arrays[name + 'threshold'],
                                arrays[name + 'flip']))
        self.last = arrays['l{}/W'.format(n_layers)]

    def scores(self, pixels, hidden=None):
        """The output layer's popcounts for uint8 pixels (M, K); ``hidden``
        collects each hidden layer's packed bits."""
        planes = bit_planes(pixels, self.layers[0][0].shape[1])
        for w, threshold, flip in self.layers:
            x = sign_bits(planes, w, threshold, flip)
            if hidden is not None:
                hidden.append(x)
            planes = x[None]
        return xnor_popcount(x, self.last)
