"""The packed engine's reference: BinaryNet's run-time products in NumPy
(Courbariaux et al., arXiv:1602.02830, Sec. 3).

With a, w in {-1, +1}^K stored one bit each (1 for +1), the binary product
is a . w = K - 2 popcount(a XOR w): 64 multiply-accumulates per XOR and
popcount of two uint64 words, and 32x less memory than float32.

A hidden layer's bias, BatchNormalization and sign() fold into one integer
threshold per unit (``fold_threshold``), so a hidden layer is popcount,
compare, packed bits out; the output layer's fold into a scale and a shift
per class (``fold_affine``). The first layer multiplies the 8-bit pixels by
+-1 weights in float32, which is exact: every partial sum is an integer
below 2^24.

Every function here runs on NumPy arrays (and, where noted, on CuPy's):
this module is the oracle the compiled and CUDA kernels are tested against.
"""
import numpy

WORD_BITS = 64
# Beyond any popcount or pixel sum of this package's nets: "always" or
# "never" for units whose threshold is out of reach.
_FAR = 2 ** 30


def array_module(a):
    """numpy, or cupy for a CuPy array."""
    if isinstance(a, numpy.ndarray):
        return numpy
    import cupy
    return cupy


def to_cpu(a):
    return a if isinstance(a, numpy.ndarray) else a.get()


def pack_signs(bits):
    """Rows of booleans (True for +1) as uint64 words, 64 bits to a word,
    on NumPy or CuPy.

    Each row is padded with 0 bits to whole words; a padded bit is 0 in the
    activations and in the weights alike, so its XOR adds nothing.
    """
    xp = array_module(bits)
    rows, k = bits.shape
    words = -(-k // WORD_BITS)
    padded = xp.zeros((rows, words * WORD_BITS), dtype=bool)
    padded[:, :k] = bits
    # Packing the flattened rows: CuPy's packbits takes no axis.
    packed = xp.packbits(padded.ravel(), bitorder='little')
    return packed.view('<u8').reshape(rows, words)


def unpack_signs(words, k):
    """The inverse of pack_signs: (rows, k) booleans."""
    xp = array_module(words)
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


def xnor_popcount(a, w):
    """d[i, j] = popcount(a[i] XOR w[j]) for packed rows a (M, KW), w (N, KW).

    a[i] . w[j] = K - 2 d[i, j] for the +-1 vectors the rows hold.
    """
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


def ternary_rows(x):
    """The packed rows of u over those of v, u = sign(x) with sign(0) = +1
    and v = sign(x) with sign(0) = -1, for x in {-c, 0, +c}^(M x K): then
    x = (c / 2) (u + v)."""
    xp = array_module(x)
    return xp.concatenate([pack_signs(x >= 0), pack_signs(x > 0)])


def ternary_sums(d, x):
    """x . w^T = c (K - d_u - d_v) from d = xnor_popcount(ternary_rows(x),
    w), its first M rows d_u, its last d_v; in x's dtype."""
    m, k = x.shape
    c = abs(x).max() if x.size else 0
    return ((k - d[:m] - d[m:]) * c).astype(x.dtype)


def ternary_product(x, w):
    """y = x . w^T for x in {-c, 0, +c}^(M x K), c a power of two, as sign()
    and dropout leave a hidden layer's input, and the packed +-1 rows w
    (N, KW): popcounts alone, exact.

    Every partial sum of such a product is a multiple of c below 2^24 c in
    magnitude, which float32 holds exactly: a BLAS product of the same
    float32 arrays, in whatever order it sums, is this, bit for bit.
    """
    return ternary_sums(xnor_popcount(ternary_rows(x), w), x)


def fold_threshold(alpha, c, bn):
    """Integer thresholds t and flips f with bst(BN(alpha S + c)) = +1 iff
    (S >= t) XOR f, for integer S, in BatchNormalization's inference mode.

    BN(a) = gamma (a - mean) / std + beta >= 0 solves, per unit, to
    S >= r / g (g > 0) or S <= r / g (g < 0) with g = gamma alpha and
    r = gamma (mean - c) - beta std; where g = 0 the unit is constant: +1
    iff beta >= 0.
    """
    gamma, beta, mean, std = bn_arrays(bn)
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
    gamma, beta, mean, std = bn_arrays(bn)
    return gamma * alpha / std, gamma * (c - mean) / std + beta


def bn_arrays(bn):
    """gamma, beta, and the population mean and std of a BatchNormalization
    link, in float64: std = sqrt(var + eps), or 1 / inv_std for a link that
    keeps Lasagne's running inv_std (the paper preset's); a link with
    ``population_terms()`` (the shift-based one) gives its own."""
    if hasattr(bn, 'population_terms'):
        return bn.population_terms()
    inv_std = getattr(bn, 'avg_inv_std', None)
    spread = bn.avg_var if inv_std is None else inv_std
    gamma, beta, mean, spread = (
        numpy.asarray(to_cpu(a), numpy.float64)
        for a in (bn.gamma.array, bn.beta.array, bn.avg_mean, spread))
    std = numpy.sqrt(spread + bn.eps) if inv_std is None else 1 / spread
    return gamma, beta, mean, std


def first_sums(pixels, first):
    """The first layer's sums S = p . w of the pixels p (M, K) and the +-1
    weights ``first`` (K, N), exact in float32, on NumPy or CuPy."""
    xp = array_module(first)
    return xp.asarray(pixels, numpy.float32).dot(first)


def scores(arrays, n_layers, s, product, hidden=None):
    """The output layer's integer popcounts, from the first layer's sums s:
    each hidden layer x = pack((S >= t) XOR f), then S = product(x, W) of
    the next layer; ``hidden`` collects each x."""
    s = s.astype(numpy.int32)
    for k in range(1, n_layers):
        name = 'l{}/'.format(k)
        x = pack_signs((s >= arrays[name + 'threshold']) ^
                       arrays[name + 'flip'])
        if hidden is not None:
            hidden.append(x)
        s = product(x, arrays['l{}/W'.format(k + 1)])
    return s
