"""Bit-packed XNOR-popcount inference for a trained MnistMLP.

With a, w in {-1, +1}^K stored one bit each (1 for +1), the binary product is
a . w = K - 2 popcount(a XOR w) (paper, Sec. 3): 64 multiply-accumulates per
XOR and popcount of two uint64 words, and 32x less memory than float32.

A hidden layer's BatchNormalization and sign() fold into one integer
threshold per unit, so a hidden layer is popcount, compare, packed bits out.
The first layer multiplies the 8-bit pixels by +-1 weights in float32, which
is exact: every partial sum is an integer below 2^24. The output layer maps
its integer scores through its BatchNormalization to logits.

On the CPU, where Numba imports, xnor_cpu's compiled kernels run the layers
instead, the first on the pixels' bit planes; NumPy's path stays the
reference, and runs where Numba does not import.
"""
import functools
import sys
import zipfile

import numpy

import xnor_mma

WORD_BITS = 64
# Beyond any popcount or pixel sum of this package's nets: "always" or
# "never" for units whose threshold is out of reach.
_FAR = 2 ** 30

_CUDA_SOURCE = r'''
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


class PackedError(ValueError):
    """A packed model file that is missing or not what it claims."""


def _xp(a):
    if isinstance(a, numpy.ndarray):
        return numpy
    import cupy
    return cupy


def pack_signs(bits):
    """Rows of booleans (True for +1) as uint64 words, 64 bits to a word.

    Each row is padded with 0 bits to whole words; a padded bit is 0 in the
    activations and in the weights alike, so its XOR adds nothing.
    """
    xp = _xp(bits)
    rows, k = bits.shape
    words = -(-k // WORD_BITS)
    padded = xp.zeros((rows, words * WORD_BITS), dtype=bool)
    padded[:, :k] = bits
    # Packing the flattened rows: CuPy's packbits takes no axis.
    packed = xp.packbits(padded.ravel(), bitorder='little')
    return packed.view('<u8').reshape(rows, words)


def unpack_signs(words, k):
    """The inverse of pack_signs: (rows, k) booleans."""
    xp = _xp(words)
    bits = xp.unpackbits(words.ravel().view(xp.uint8), bitorder='little')
    return bits.reshape(len(words), -1)[:, :k].astype(bool)


def _popcount_swar(x):
    """popcount of each uint64, for NumPy < 2, which has no bitwise_count."""
    m1, m2, m4, h01 = (numpy.uint64(c) for c in (
        0x5555555555555555, 0x3333333333333333, 0x0f0f0f0f0f0f0f0f,
        0x0101010101010101))
    x = x - ((x >> numpy.uint64(1)) & m1)
    x = (x & m2) + ((x >> numpy.uint64(2)) & m2)
    x = (x + (x >> numpy.uint64(4))) & m4
    return ((x * h01) >> numpy.uint64(56)).astype(numpy.uint8)


popcount = getattr(numpy, 'bitwise_count', _popcount_swar)


@functools.lru_cache(maxsize=None)
def compiled():
    """The module xnor_cpu, or None where Numba does not import: then one
    line says so and the packed engine runs on NumPy."""
    try:
        import xnor_cpu
    except ImportError as e:
        print('note: numba is not available ({}); the packed engine uses '
              'NumPy'.format(e), file=sys.stderr)
        return None
    return xnor_cpu


def xnor_popcount(a, w):
    """d[i, j] = popcount(a[i] XOR w[j]) for packed rows a (M, KW), w (N, KW).

    a[i] . w[j] = K - 2 d[i, j] for the +-1 vectors the rows hold.
    """
    if _xp(a) is not numpy:
        return _xnor_popcount_gpu(a, w)
    if compiled() is not None:
        return compiled().xnor_popcount(a, w)
    return xnor_popcount_numpy(a, w)


def xnor_popcount_numpy(a, w):
    """xnor_popcount in NumPy: the reference for the compiled kernels."""
    m, n = len(a), len(w)
    d = numpy.zeros((m, n), numpy.int32)
    w_t = numpy.ascontiguousarray(w.T)
    # Word by word over blocks of rows: the temporaries stay in cache.
    block = max(1, 2 ** 18 // max(n, 1))
    for start in range(0, m, block):
        rows = a[start:start + block]
        out = d[start:start + block]
        for k in range(a.shape[1]):
            out += popcount(rows[:, k, None] ^ w_t[k])
    return d


_kernel = None


def _xnor_popcount_gpu(a, w):
    # The 1-bit tensor cores where the device has them (sm_80 on).
    if xnor_mma.supported():
        return xnor_mma.xnor_popcount(a, w)
    return xnor_popcount_popcll(a, w)


def xnor_popcount_popcll(a, w):
    """xnor_popcount on a GPU by __popcll: before sm_80, and the reference
    for the tensor-core kernel."""
    import cupy
    global _kernel
    if _kernel is None:
        _kernel = cupy.RawKernel(_CUDA_SOURCE, 'xnor_popcount')
    a = cupy.ascontiguousarray(a)
    w = cupy.ascontiguousarray(w)
    m, n = len(a), len(w)
    d = cupy.empty((m, n), cupy.int32)
    grid = (-(-n // 64), -(-m // 64))
    _kernel(grid, (256,), (a, w, d, numpy.int32(m), numpy.int32(n),
                           numpy.int32(a.shape[1])))
    return d


def fold_threshold(alpha, c, bn):
    """Integer thresholds t and flips f with bst(BN(alpha S + c)) = +1 iff
    (S >= t) XOR f, for integer S, in BatchNormalization's inference mode.

    BN(a) = gamma (a - mean) / sqrt(var + eps) + beta >= 0 solves, per unit,
    to S >= r / g (g > 0) or S <= r / g (g < 0) with g = gamma alpha and
    r = gamma (mean - c) - beta sqrt(var + eps); where g = 0 the unit is
    constant: +1 iff beta >= 0.
    """
    gamma, beta, mean, std = _bn_arrays(bn)
    g = gamma * alpha
    r = gamma * (mean - c) - beta * std
    with numpy.errstate(divide='ignore', invalid='ignore'):
        bound = numpy.clip(r / numpy.where(g == 0, 1, g), -_FAR, _FAR)
    threshold = numpy.where(g > 0, numpy.ceil(bound), numpy.floor(bound) + 1)
    threshold = numpy.where(g == 0, -_FAR, threshold).astype(numpy.int32)
    flip = numpy.where(g == 0, beta < 0, g < 0)
    return threshold, flip


def fold_affine(alpha, c, bn):
    """Per class (scale, shift) with BN(alpha S + c) = scale S + shift."""
    gamma, beta, mean, std = _bn_arrays(bn)
    return gamma * alpha / std, gamma * (c - mean) / std + beta


def _bn_arrays(bn):
    arrays = (bn.gamma.array, bn.beta.array, bn.avg_mean, bn.avg_var)
    gamma, beta, mean, var = (numpy.asarray(_to_cpu(a), numpy.float64)
                              for a in arrays)
    return gamma, beta, mean, numpy.sqrt(var + bn.eps)


def _to_cpu(a):
    return a if isinstance(a, numpy.ndarray) else a.get()


class PackedMLP(object):

    """A trained MnistMLP as packed bits and integer thresholds.

    ``arrays`` maps names to NumPy arrays, as ``from_chain`` makes them and
    ``save``/``load`` store them: per layer k ``l{k}/W`` (packed sign(W))
    and ``l{k}/in_size``, ``l{k}/threshold`` and ``l{k}/flip`` for the
    hidden layers, ``l{k}/scale`` and ``l{k}/shift`` for the output layer.
    Its input is the 8-bit pixels p, whatever scaling the net was trained
    with: that scaling is folded into the first layer's thresholds.
    """

    def __init__(self, arrays):
        self.arrays = dict(arrays)
        self.n_layers = sum(1 for name in self.arrays
                            if name.endswith('/W'))
        self.xp = numpy
        self._mma = None
        self._compiled_layers = None
        self._unpack_first_layer()

    @classmethod
    def from_chain(cls, mlp, signed_input=False):
        """Folds a MnistMLP; ``signed_input``: it was trained on 2x - 1."""
        scale, shift = (2 / 255, -1.) if signed_input else (1 / 255, 0.)
        arrays = {}
        layers = mlp.layers()
        for k, (linear, bn) in enumerate(layers, 1):
            W = numpy.asarray(_to_cpu(linear.W.array))
            b = (numpy.zeros(len(W)) if linear.b is None else
                 numpy.asarray(_to_cpu(linear.b.array), numpy.float64))
            signs = W >= 0
            if k == 1:
                # a = scale (p . w) + shift sum(w) + b, with S = p . w.
                alpha = scale
                c = shift * (2. * signs.sum(axis=1) - W.shape[1]) + b
            else:
                # a = K - 2 popcount(x XOR w) + b, with S = the popcount.
                alpha, c = -2., W.shape[1] + b
            name = 'l{}/'.format(k)
            arrays[name + 'W'] = pack_signs(signs)
            arrays[name + 'in_size'] = numpy.array(W.shape[1])
            if k < len(layers):
                arrays[name + 'threshold'], arrays[name + 'flip'] = \
                    fold_threshold(alpha, c, bn)
            else:
                scale_out, shift_out = fold_affine(alpha, c, bn)
                arrays[name + 'scale'] = scale_out.astype(numpy.float32)
                arrays[name + 'shift'] = shift_out.astype(numpy.float32)
        return cls(arrays)

    def _unpack_first_layer(self):
        signs = unpack_signs(self.arrays['l1/W'],
                             int(self.arrays['l1/in_size']))
        self._first = self.xp.asarray(
            numpy.where(signs, 1, -1).astype(numpy.float32).T)

    def to_device(self, xp):
        """Moves the arrays to ``xp`` (numpy or cupy)."""
        self.arrays = {k: xp.asarray(v) for k, v in self.arrays.items()}
        self.xp = xp
        self._first = xp.asarray(self._first)
        self._mma = (xnor_mma.TensorCoreMLP(self.arrays, self.n_layers)
                     if xp is not numpy and self.n_layers > 1 and
                     xnor_mma.supported() else None)
        return self

    def save(self, path):
        import atomic_file
        with atomic_file.open_for_write(path) as f:
            numpy.savez_compressed(
                f, **{k: _to_cpu(v) for k, v in self.arrays.items()})

    @classmethod
    def load(cls, path):
        try:
            with numpy.load(path, allow_pickle=False) as npz:
                return cls({name: npz[name] for name in npz.files})
        except FileNotFoundError:
            raise PackedError('{}: no such file'.format(path))
        except (OSError, ValueError, KeyError, zipfile.BadZipFile) as e:
            raise PackedError('{} is not a packed model ({})'.format(
                path, e))

    def forward(self, pixels, hidden=None):
        """Logits (float32) for uint8 pixels of shape (M, 784).

        ``hidden``: a list to which each hidden layer's packed bits are added.
        """
        kernels = compiled() if self.xp is numpy else None
        if kernels is not None and self.n_layers > 1:
            s = self._scores_compiled(kernels, pixels, hidden)
        elif self._mma is not None:
            s = self._mma.scores(self._first_sums(pixels), hidden)
        else:
            s = self._scores(pixels, hidden)
        name = 'l{}/'.format(self.n_layers)
        # Exact: the scores are integers below 2^24.
        return (s.astype(numpy.float32) * self.arrays[name + 'scale'] +
                self.arrays[name + 'shift'])

    def _first_sums(self, pixels):
        """The first layer's sums of +-pixels, exact in float32."""
        return self.xp.asarray(pixels, numpy.float32).dot(self._first)

    def _scores(self, pixels, hidden):
        s = self._first_sums(pixels).astype(numpy.int32)
        for k in range(1, self.n_layers):
            name = 'l{}/'.format(k)
            bits = ((s >= self.arrays[name + 'threshold']) ^
                    self.arrays[name + 'flip'])
            x = pack_signs(bits)
            if hidden is not None:
                hidden.append(x)
            s = xnor_popcount(x, self.arrays['l{}/W'.format(k + 1)])
        return s

    def _scores_compiled(self, kernels, pixels, hidden):
        if self._compiled_layers is None:
            self._compiled_layers = self._fold_bit_planes(kernels)
        first, layers = self._compiled_layers[0], self._compiled_layers[1:]
        x = kernels.first_sign_bits(pixels, first)
        if hidden is not None:
            hidden.append(x)
        for w, threshold, flip, wt in layers:
            x = kernels.sign_bits(x[None], w, threshold, flip, wt)
            if hidden is not None:
                hidden.append(x)
        return kernels.xnor_popcount(
            x, self.arrays['l{}/W'.format(self.n_layers)])

    def _fold_bit_planes(self, kernels):
        """The hidden layers as xnor_cpu takes them: the first on the path
        that xnor_cpu.FIRST_LAYER names, the others with their transposed
        weights."""
        layers = [kernels.first_layer(
            self._first.T.astype(numpy.int8), self.arrays['l1/threshold'],
            self.arrays['l1/flip'])]
        for k in range(2, self.n_layers):
            name = 'l{}/'.format(k)
            layers.append((self.arrays[name + 'W'],
                           self.arrays[name + 'threshold'],
                           self.arrays[name + 'flip'],
                           kernels.transpose(self.arrays[name + 'W'])))
        return layers

    def logits(self, pixels, batchsize=10000):
        """forward(), ``batchsize`` images at a time."""
        return self.xp.concatenate([
            self.forward(pixels[i:i + batchsize])
            for i in range(0, len(pixels), batchsize)])

    def summary(self):
        """A table in the manner of Larq's model summary, one row a layer.

        float32 B counts the Chainer layer's W, b and BatchNormalization's
        gamma, beta, mean and var; packed B, what this model keeps instead.
        """
        head = ('layer', 'outputs', '1-bit params', 'float32 B', 'packed B',
                'ratio', '1-bit MACs', '8-bit MACs')
        rows, totals = [], [0] * 6
        for k in range(1, self.n_layers + 1):
            name = 'l{}/'.format(k)
            n, k_in = (len(self.arrays[name + 'W']),
                       int(self.arrays[name + 'in_size']))
            kept = sum(a.nbytes for key, a in self.arrays.items()
                       if key.startswith(name) and key != name + 'in_size')
            # The first layer's inputs are the 8-bit pixels.
            macs = (0, n * k_in) if k == 1 else (n * k_in, 0)
            values = (n * k_in, 4 * (n * k_in + 5 * n), kept) + macs
            rows.append((name[:-1], n) + values)
            totals = [t + v for t, v in zip(totals, (n,) + values)]
        rows.append(('total', '') + tuple(totals[1:]))
        rows = [r[:5] + ('{:.1f}x'.format(r[3] / r[4]),) + r[5:]
                for r in rows]
        table = [head] + rows
        widths = [max(len(str(r[i])) for r in table) for i in range(8)]
        lines = ['  '.join(str(v).rjust(w) for v, w in zip(r, widths))
                 for r in table]
        rule = '-' * len(lines[0])
        return '\n'.join([lines[0], rule] + lines[1:-1] + [rule, lines[-1]])
