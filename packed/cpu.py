"""The packed engine's kernels for the CPU, compiled by Numba (Courbariaux
et al., arXiv:1602.02830, Sec. 3).

d[i, j] = popcount(a[i] XOR w[j]) on packed rows, a . w = K - 2 d, with
XOR, popcount and sum in registers in one pass. The threads share tiles of
64 rows of a by 64 rows of w; a tile runs 4 rows of a by 32 of w at a
time, a word of a broadcast against 8 rows of w that transpose() lays side
by side, so that each sum stays in its own vector lane, with no horizontal
sum however few words a row has.

A hidden layer, sign_bits, compares each tile's sums with the thresholds,
64 units to a vector compare into a mask, and packs the bits while the
sums are in cache. The first layer multiplies the 8-bit pixels by the +-1
weights with VPDPBUSD where the CPU has AVX512-VNNI (FIRST_LAYER says
which), else takes them as bit planes, p = sum_b 2^b plane_b, through the
popcount tiles; its sums are exact integers either way.
"""
import time

import numba
from numba import prange, types
from numba.core import cgutils
from numba.extending import intrinsic
from llvmlite import binding as llvm, ir
import numpy

from packed import reference

WORD_BITS = 64
# Rows of a and of w per tile: 64 w rows of the paper's 4096 bits are 32 KiB,
# within a level-1 cache, and a tile's outputs fill whole packed words.
TILE = 64
_I8, _I32, _I64 = ir.IntType(8), ir.IntType(32), ir.IntType(64)
_V8I32, _V8I64 = ir.VectorType(_I32, 8), ir.VectorType(_I64, 8)
_V16I32, _V64I32 = ir.VectorType(_I32, 16), ir.VectorType(_I32, 64)
_V64I8 = ir.VectorType(_I8, 64)
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


def _pointer(context, builder, ary_type, ary, row, offset):
    """A byte pointer to ary[row] plus offset bytes, for a C-contiguous
    array."""
    ary = context.make_array(ary_type)(context, builder, ary)
    stride = cgutils.unpack_tuple(builder, ary.strides, ary_type.ndim)[0]
    return builder.gep(builder.bitcast(ary.data, _I8.as_pointer()),
                       [builder.add(builder.mul(row, stride), offset)])


def _rows(context, builder, ary_type, ary, first, count):
    """Byte pointers to the rows first, ..., first + count - 1 of ary."""
    return [_pointer(context, builder, ary_type, ary,
                     builder.add(first, _I64(r)), _I64(0))
            for r in range(count)]


def _load(builder, pointer, ty):
    return builder.load(builder.bitcast(pointer, ty.as_pointer()), align=1)


def _splat(builder, value, lanes):
    vector = builder.insert_element(
        ir.Constant(ir.VectorType(value.type, lanes), None), value, _I32(0))
    return builder.shuffle_vector(
        vector, vector, ir.Constant(ir.VectorType(_I32, lanes), [0] * lanes))


def _accumulators(builder, ty, count):
    # Stack slots that LLVM's mem2reg turns into registers.
    zero = ir.Constant(ty, [0] * ty.count)
    return [cgutils.alloca_once_value(builder, zero) for _ in range(count)]


def _xor_popcount_block(rows, accumulate):
    """out[si + r, sj + 8 c + l] (+)= sum_k popcount(a[i + r, k] XOR
    wt[g + c, k, l]) << shift, for r < rows, c < 4, l < 8: added to out
    where ``accumulate``, else stored.

    A word of a, broadcast, meets 8 rows of w at once (wt holds them
    transposed), so that the sums need no horizontal reduction: narrow rows
    cost no more per word than wide ones.
    """
    @intrinsic
    def block(typingctx, a, i, wt, g, out, si, sj, shift):
        sig = types.void(a, types.intp, wt, types.intp, out, types.intp,
                         types.intp, types.intp)

        def codegen(context, builder, signature, args):
            a_ty, _, wt_ty, _, out_ty, _, _, _ = signature.args
            a, i, wt, g, out, si, sj, shift = args
            words = cgutils.unpack_tuple(builder, context.make_array(a_ty)(
                context, builder, a).shape, 2)[1]
            xs = _rows(context, builder, a_ty, a, i, rows)
            ys = _rows(context, builder, wt_ty, wt, g, 4)
            accs = _accumulators(builder, _V8I64, rows * 4)
            ctpop = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_V8I64, [_V8I64]),
                'llvm.ctpop.v8i64')
            with cgutils.for_range(builder, words) as loop:
                k = loop.index
                y = [_load(builder, builder.gep(p, [builder.mul(k, _I64(64))]),
                           _V8I64) for p in ys]
                for r in range(rows):
                    x = _splat(builder, _load(builder, builder.gep(
                        xs[r], [builder.mul(k, _I64(8))]), _I64), 8)
                    for c in range(4):
                        acc = accs[4 * r + c]
                        builder.store(builder.add(builder.load(acc),
                                                  builder.call(ctpop, [
                                                      builder.xor(x, y[c])])),
                                      acc)
            amount = _splat(builder, builder.trunc(shift, _I32), 8)
            for r in range(rows):
                for c in range(4):
                    p = _pointer(context, builder, out_ty, out,
                                 builder.add(si, _I64(r)),
                                 builder.mul(builder.add(sj, _I64(8 * c)),
                                             _I64(4)))
                    s = builder.shl(builder.trunc(
                        builder.load(accs[4 * r + c]), _V8I32), amount)
                    if accumulate:
                        s = builder.add(_load(builder, p, _V8I32), s)
                    builder.store(s, builder.bitcast(p, _V8I32.as_pointer()),
                                  align=1)
            return context.get_dummy_value()
        return sig, codegen
    return block


_xor_popcount_4 = _xor_popcount_block(4, False)
_xor_popcount_1 = _xor_popcount_block(1, False)
_xor_popcount_add_4 = _xor_popcount_block(4, True)
_xor_popcount_add_1 = _xor_popcount_block(1, True)


def transpose(w):
    """wt[c, k, l] = w[8 c + l, k], 0 past N (rounded up to a tile): packed
    weights (N, KW) as the products take them, made once per weights."""
    padded = numpy.zeros((-(-len(w) // TILE) * TILE, w.shape[1]),
                         numpy.uint64)
    padded[:len(w)] = w
    return numpy.ascontiguousarray(
        padded.reshape(-1, 8, w.shape[1]).transpose(0, 2, 1))


@numba.njit(**_JIT)
def _sums(planes, wt, r0, r1, c0, out, oi, oj):
    """out[oi + i, oj + j] = S[r0 + i, c0 + j], sign_bits' S, for
    i < r1 - r0, j < TILE."""
    for b in range(len(planes)):
        a = planes[b]
        for i in range(r0, r1 - 3, 4):
            for j in range(0, TILE, 32):
                if b == 0:
                    _xor_popcount_4(a, i, wt, (c0 + j) // 8, out,
                                    oi + i - r0, oj + j, b)
                else:
                    _xor_popcount_add_4(a, i, wt, (c0 + j) // 8, out,
                                        oi + i - r0, oj + j, b)
        for i in range(r1 - (r1 - r0) % 4, r1):
            for j in range(0, TILE, 32):
                if b == 0:
                    _xor_popcount_1(a, i, wt, (c0 + j) // 8, out,
                                    oi + i - r0, oj + j, b)
                else:
                    _xor_popcount_add_1(a, i, wt, (c0 + j) // 8, out,
                                        oi + i - r0, oj + j, b)


@numba.njit(**_JIT)
def _n_tiles(rows, n):
    """How many tiles cover a (rows, n) result, as _tile numbers them."""
    return -(-rows // TILE) * -(-n // TILE)


@numba.njit(**_JIT)
def _tile(t, rows, n):
    """Tile t's rows r0:r1 and columns c0:c1."""
    col_tiles = -(-n // TILE)
    r0, c0 = t // col_tiles * TILE, t % col_tiles * TILE
    return r0, min(r0 + TILE, rows), c0, min(c0 + TILE, n)


@numba.njit(**_JIT)
def _tile_sums(planes, wt, n, t):
    """Tile t's rows and columns and the sums of sign_bits' S over them, in
    a buffer that stays in cache while the planes add to it."""
    r0, r1, c0, c1 = _tile(t, planes.shape[1], n)
    s = numpy.empty((TILE, TILE), numpy.int32)
    _sums(planes, wt, r0, r1, c0, s, 0, 0)
    return r0, r1, c0, c1, s


@numba.njit(**_JIT)
def _product_tile(planes, wt, d, t):
    """Tile t of d[i, j] = sum_b 2^b popcount(planes[b, i] XOR w[j])."""
    m, n = d.shape
    r0, r1, c0, c1 = _tile(t, m, n)
    if c1 - c0 == TILE:
        # Straight into d: no buffer to fill and copy.
        _sums(planes, wt, r0, r1, c0, d, r0, c0)
    else:
        r0, r1, c0, c1, s = _tile_sums(planes, wt, n, t)
        d[r0:r1, c0:c1] = s[:r1 - r0, :c1 - c0]


@numba.njit(parallel=True, **_JIT)
def _product(planes, wt, d):
    for t in prange(_n_tiles(d.shape[0], d.shape[1])):
        _product_tile(planes, wt, d, t)


@numba.njit(**_JIT)
def transpose_signs(w, wt):
    """wt = transpose(pack_signs(w >= 0)) in place, for real-valued or +-1
    weights w (N, K), in one pass over w: for weights that change at every
    training step. wt's rows past N stay as they are (0)."""
    for row in range(len(w)):
        for word in range(wt.shape[1]):
            start = word * WORD_BITS
            bits = numpy.uint64(0)
            for j in range(min(WORD_BITS, w.shape[1] - start)):
                bits |= numpy.uint64(w[row, start + j] >= 0) << numpy.uint64(j)
            wt[row // 8, word, row % 8] = bits


def xnor_popcount(a, w, wt=None):
    """d[i, j] = popcount(a[i] XOR w[j]) (int32) for packed rows a (M, KW)
    and w (N, KW); wt: transpose(w), where the caller keeps it."""
    d = numpy.empty((len(a), len(w)), numpy.int32)
    _product(numpy.ascontiguousarray(a)[None],
             transpose(w) if wt is None else wt, d)
    return d


# One thread: beside OpenBLAS's threads, which spin between the products,
# its own made a port epoch 3.4x slower (13.25 s against 3.94 s, 2 cores,
# in training's forward). A function of its own: Numba's cache names a
# compiled function by its source, not by its flags, and a second njit of
# _product's Python function loaded whichever of the two had compiled first.
@numba.njit(**_JIT)
def _serial_product(planes, wt, d):
    for t in range(_n_tiles(d.shape[0], d.shape[1])):
        _product_tile(planes, wt, d, t)


def sign_product(x, wt, n):
    """x . w^T = K - 2 popcount(x XOR w) for rows x of +-1 (M, K), in x's
    dtype, and the N = n packed weights w kept transposed, wt = transpose(w):
    exact integers, as any float32 sum of K <= 2^24 such products is."""
    a = reference.pack_signs(x >= 0)
    d = numpy.empty((len(a), n), numpy.int32)
    _serial_product(a[None], wt, d)
    return (x.shape[1] - 2 * d).astype(x.dtype)


def ternary_product(x, wt, n):
    """reference.ternary_product(x, w) for N = n packed weights w kept
    transposed, wt = transpose(w): x . w^T, exact, for x in {-c, 0, +c}."""
    a = reference.ternary_rows(x)
    d = numpy.empty((len(a), n), numpy.int32)
    _serial_product(a[None], wt, d)
    return reference.ternary_sums(d, x)


@intrinsic
def _pack_row(typingctx, s, i, threshold, flip, c0):
    """The word of bits (s[i, j] >= threshold[c0 + j]) XOR flip[c0 + j],
    bit j for j < 64, by vector compares into a mask."""
    sig = types.uint64(s, types.intp, threshold, flip, types.intp)

    def codegen(context, builder, signature, args):
        s_ty, _, t_ty, f_ty, _ = signature.args
        s, i, threshold, flip, c0 = args
        sums = _load(builder, _pointer(context, builder, s_ty, s, i, _I64(0)),
                     _V64I32)
        t = _load(builder, _pointer(context, builder, t_ty, threshold, c0,
                                    _I64(0)), _V64I32)
        f = _load(builder, _pointer(context, builder, f_ty, flip, c0,
                                    _I64(0)), _V64I8)
        zero = ir.Constant(_V64I8, [0] * 64)
        bits = builder.xor(builder.icmp_signed('>=', sums, t),
                           builder.icmp_unsigned('!=', f, zero))
        return builder.bitcast(bits, _I64)
    return sig, codegen


@numba.njit(**_JIT)
def _pack_tile(s, r0, r1, c0, threshold, flip, bits):
    """bits[r0:r1] of word c0 / 64 = (s >= threshold) XOR flip, packed."""
    for i in range(r1 - r0):
        bits[r0 + i, c0 // WORD_BITS] = _pack_row(s, i, threshold, flip, c0)


def _padded(threshold, flip):
    """threshold and flip to whole words of units, the units past N never
    +1, as _pack_row reads them."""
    n = -(-len(threshold) // WORD_BITS) * WORD_BITS
    t = numpy.full(n, numpy.iinfo(numpy.int32).max, numpy.int32)
    t[:len(threshold)] = threshold
    f = numpy.zeros(n, numpy.bool_)
    f[:len(flip)] = flip
    return t, f


@numba.njit(parallel=True, **_JIT)
def _sign_bits(planes, wt, threshold, flip, bits):
    for t in prange(_n_tiles(planes.shape[1], len(threshold))):
        r0, r1, c0, c1, s = _tile_sums(planes, wt, len(threshold), t)
        _pack_tile(s, r0, r1, c0, threshold, flip, bits)


def sign_bits(planes, w, threshold, flip, wt=None):
    """Packed bits of (S >= threshold) XOR flip, per unit, for
    S[i, j] = sum_b 2^b popcount(planes[b, i] XOR w[j]).

    planes (B, M, KW) holds B packed rows per input (B = 1 for a hidden
    layer's activations), w (N, KW) the packed weights, wt: transpose(w),
    where the caller keeps it; the bits of the last word past N are 0, as
    pack_signs pads them.
    """
    bits = numpy.empty((planes.shape[1], -(-len(w) // WORD_BITS)),
                       numpy.uint64)
    _sign_bits(numpy.ascontiguousarray(planes),
               transpose(w) if wt is None else wt, *_padded(threshold, flip),
               bits)
    return bits


def _dpbusd_block(rows):
    """out[si + r, 16 c + l] = sum_k p[i + r, k] wt[g + c, k // 4, l, k % 4]
    over k < K, for uint8 pixels p (M, K), r < rows, c < 4, l < 16.

    Each VPDPBUSD multiplies 4 pixels of a row, broadcast, by the weights of
    16 units and adds the 4 products into each unit's int32 sum.
    """
    @intrinsic
    def block(typingctx, p, i, wt, g, out, si):
        sig = types.void(p, types.intp, wt, types.intp, out, types.intp)

        def codegen(context, builder, signature, args):
            p_ty, _, wt_ty, _, out_ty, _ = signature.args
            p, i, wt, g, out, si = args
            k = cgutils.unpack_tuple(builder, context.make_array(p_ty)(
                context, builder, p).shape, 2)[1]
            xs = _rows(context, builder, p_ty, p, i, rows)
            ys = _rows(context, builder, wt_ty, wt, g, 4)
            dpbusd = cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(_V16I32, [_V16I32] * 3),
                'llvm.x86.avx512.vpdpbusd.512')
            accs = _accumulators(builder, _V16I32, rows * 4)

            def step(q, quads):
                y = [_load(builder, builder.gep(p, [builder.mul(q, _I64(64))]),
                           _V16I32) for p in ys]
                for r in range(rows):
                    x = _splat(builder, quads(xs[r], q), 16)
                    for c in range(4):
                        acc = accs[4 * r + c]
                        builder.store(builder.call(
                            dpbusd, [builder.load(acc), x, y[c]]), acc)

            def quad(row, q):
                return _load(builder, builder.gep(
                    row, [builder.mul(q, _I64(4))]), _I32)

            def last_quad(row, q):
                # The 1-3 pixels past the last whole 4, zero-extended
                # without reading past the row.
                x = _I32(0)
                for b in range(3):
                    at = builder.add(builder.mul(q, _I64(4)), _I64(b))
                    inside = builder.icmp_signed('<', at, k)
                    byte = builder.load(builder.gep(row, [builder.select(
                        inside, at, builder.sub(k, _I64(1)))]))
                    byte = builder.select(inside, builder.zext(byte, _I32),
                                          _I32(0))
                    x = builder.or_(x, builder.shl(byte, _I32(8 * b)))
                return x

            quads = builder.sdiv(k, _I64(4))
            with cgutils.for_range(builder, quads) as loop:
                step(loop.index, quad)
            with builder.if_then(builder.icmp_signed(
                    '!=', builder.srem(k, _I64(4)), _I64(0))):
                step(quads, last_quad)
            for r in range(rows):
                for c in range(4):
                    pointer = _pointer(context, builder, out_ty, out,
                                       builder.add(si, _I64(r)),
                                       _I64(64 * c))
                    builder.store(builder.load(accs[4 * r + c]),
                                  builder.bitcast(pointer,
                                                  _V16I32.as_pointer()),
                                  align=1)
            return context.get_dummy_value()
        return sig, codegen
    return block


_dpbusd_4 = _dpbusd_block(4)
_dpbusd_1 = _dpbusd_block(1)


def dpbusd_weights(signs):
    """wt (N / 16, K / 4, 16, 4) int8 for the +-1 weights signs (N, K), as
    _dpbusd_block takes them: wt[c, q, l, b] = signs[16 c + l, 4 q + b],
    0 past N (rounded up to a tile) and past K."""
    n, k = signs.shape
    padded = numpy.zeros((-(-n // TILE) * TILE, -(-k // 4) * 4), numpy.int8)
    padded[:n, :k] = signs
    return numpy.ascontiguousarray(padded.reshape(
        len(padded) // 16, 16, -1, 4).transpose(0, 2, 1, 3))


@numba.njit(parallel=True, **_JIT)
def _pixel_sign_bits(pixels, wt, threshold, flip, bits):
    for t in prange(_n_tiles(len(pixels), len(threshold))):
        r0, r1, c0, _ = _tile(t, len(pixels), len(threshold))
        s = numpy.empty((TILE, TILE), numpy.int32)
        for i in range(r0, r1 - 3, 4):
            _dpbusd_4(pixels, i, wt, c0 // 16, s, i - r0)
        for i in range(r1 - (r1 - r0) % 4, r1):
            _dpbusd_1(pixels, i, wt, c0 // 16, s, i - r0)
        _pack_tile(s, r0, r1, c0, threshold, flip, bits)


def pixel_sign_bits(pixels, wt, threshold, flip):
    """Packed bits of (S >= threshold) XOR flip for S = p . w, uint8 pixels
    p (M, K) and +-1 weights w, wt = dpbusd_weights(w); with AVX512-VNNI
    only (FIRST_LAYER)."""
    bits = numpy.empty((len(pixels), -(-len(threshold) // WORD_BITS)),
                       numpy.uint64)
    _pixel_sign_bits(numpy.ascontiguousarray(pixels, numpy.uint8), wt,
                     *_padded(threshold, flip), bits)
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


def first_layer(signs, threshold, flip, path=None):
    """The first layer, bits (S >= threshold) XOR flip for S = p . w with
    the +-1 weights signs (N, K), as first_sign_bits takes it on ``path``
    (FIRST_LAYER unless given)."""
    path = path or FIRST_LAYER
    threshold = numpy.asarray(threshold, numpy.int32)
    if path == VNNI:
        return path, dpbusd_weights(signs), threshold, flip, None
    # p . w = 255 popcount(w) - D for D = sum_b 2^b popcount(plane_b XOR w),
    # so S >= t iff not D >= 255 popcount(w) - t + 1.
    ones = signs > 0
    padded = numpy.zeros((len(signs), -(-signs.shape[1] // WORD_BITS) *
                          WORD_BITS), bool)
    padded[:, :signs.shape[1]] = ones
    w = numpy.packbits(padded, axis=1, bitorder='little').view('<u8')
    t = 255 * ones.sum(axis=1, dtype=numpy.int64) - threshold + 1
    return (path, w, t.astype(numpy.int32), ~numpy.asarray(flip, bool),
            transpose(w))


def first_sign_bits(pixels, layer):
    """The first layer's packed bits for uint8 pixels (M, K), layer =
    first_layer(...)."""
    path, w, threshold, flip, wt = layer
    if path == VNNI:
        return pixel_sign_bits(pixels, w, threshold, flip)
    return sign_bits(bit_planes(pixels, w.shape[1]), w, threshold, flip, wt)


def _has_vnni():
    """Whether Numba compiles for a CPU with AVX512-VNNI."""
    if numba.config.CPU_NAME not in (None, 'host'):
        return '+avx512vnni' in (numba.config.CPU_FEATURES or '')
    return bool(llvm.get_host_cpu_features().get('avx512vnni'))


VNNI, BIT_PLANES = 'VNNI (vpdpbusd)', 'bit planes'
# The first layer's path on this CPU: 64 pixel-by-weight products a
# VPDPBUSD where the CPU has it, else 8 bit planes through the popcounts.
FIRST_LAYER = VNNI if _has_vnni() else BIT_PLANES


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

    """A PackedMLP's layers as these kernels take them, folded once: the
    first on the path FIRST_LAYER names, the others with their weights also
    transposed (transpose())."""

    def __init__(self, arrays, n_layers):
        signs = reference.unpack_signs(arrays['l1/W'],
                                       int(arrays['l1/in_size']))
        self.first = first_layer(numpy.where(signs, 1, -1).astype(numpy.int8),
                                 arrays['l1/threshold'], arrays['l1/flip'])
        self.layers = []
        for k in range(2, n_layers):
            name = 'l{}/'.format(k)
            self.layers.append((arrays[name + 'W'], arrays[name + 'threshold'],
                                arrays[name + 'flip'],
                                transpose(arrays[name + 'W'])))
        self.last = arrays['l{}/W'.format(n_layers)]
        self.last_t = transpose(self.last)

    def scores(self, pixels, hidden=None):
        """The output layer's popcounts for uint8 pixels (M, K); ``hidden``
        collects each hidden layer's packed bits."""
        x = first_sign_bits(pixels, self.first)
        if hidden is not None:
            hidden.append(x)
        for w, threshold, flip, wt in self.layers:
            x = sign_bits(x[None], w, threshold, flip, wt)
            if hidden is not None:
                hidden.append(x)
        return xnor_popcount(x, self.last, self.last_t)
