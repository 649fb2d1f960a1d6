"""PackedMLP: a trained MnistMLP as packed sign bits and folded thresholds,
BinaryNet's run-time form (Courbariaux et al., arXiv:1602.02830, Sec. 3).

The math is packed/reference.py's. PackedMLP folds a net once and chooses,
in ``forward`` alone, the kernels that run it: on the CPU packed/cpu.py's,
compiled by Numba, where Numba imports (else the NumPy reference); on a GPU
the 1-bit tensor cores (packed/mma.py) from sm_80 on, else the __popcll
kernel (packed/cuda.py).
"""
import functools
import zipfile

import numpy

from packed import cuda
from packed import mma
from packed import reference
from utils import atomic_file
from utils import numba_kernels


class PackedError(ValueError):
    """A packed model file that is missing or not what it claims."""


@functools.lru_cache(maxsize=None)
def compiled():
    """The module packed.cpu, or None where Numba does not import: the
    packed engine then runs on NumPy (numba_kernels.load says so)."""
    return numba_kernels.load('packed.cpu')


def xnor_popcount(a, w):
    """d[i, j] = popcount(a[i] XOR w[j]) for packed rows a (M, KW), w (N, KW),
    by the fastest kernel for where a is: a . w = K - 2 d."""
    if not isinstance(a, numpy.ndarray):
        # The 1-bit tensor cores where the device has them (sm_80 on).
        if mma.supported():
            return mma.xnor_popcount(a, w)
        return cuda.xnor_popcount(a, w)
    return (compiled() or reference).xnor_popcount(a, w)


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
        self._compiled = None
        signs = reference.unpack_signs(self.arrays['l1/W'],
                                       int(self.arrays['l1/in_size']))
        self._first = numpy.where(signs, 1, -1).astype(numpy.float32).T

    @classmethod
    def from_chain(cls, mlp, input_affine=(1 / 255., 0.)):
        """Folds a MnistMLP whose input is x = scale p + shift for the
        pixels p, ``input_affine`` = (scale, shift): its recipe's
        (recipes.Recipe.input_affine)."""
        scale, shift = input_affine
        arrays = {}
        layers = mlp.layers()
        for k, (linear, bn) in enumerate(layers, 1):
            W = numpy.asarray(reference.to_cpu(linear.W.array))
            b = (numpy.zeros(len(W)) if linear.b is None else
                 numpy.asarray(reference.to_cpu(linear.b.array),
                               numpy.float64))
            signs = W >= 0
            if k == 1:
                # a = scale (p . w) + shift sum(w) + b, with S = p . w.
                alpha = scale
                c = shift * (2. * signs.sum(axis=1) - W.shape[1]) + b
            else:
                # a = K - 2 popcount(x XOR w) + b, with S = the popcount.
                alpha, c = -2., W.shape[1] + b
            name = 'l{}/'.format(k)
            arrays[name + 'W'] = reference.pack_signs(signs)
            arrays[name + 'in_size'] = numpy.array(W.shape[1])
            if k < len(layers):
                arrays[name + 'threshold'], arrays[name + 'flip'] = \
                    reference.fold_threshold(alpha, c, bn)
            else:
                scale_out, shift_out = reference.fold_affine(alpha, c, bn)
                arrays[name + 'scale'] = scale_out.astype(numpy.float32)
                arrays[name + 'shift'] = shift_out.astype(numpy.float32)
        return cls(arrays)

    def to_device(self, xp):
        """Moves the arrays to ``xp`` (numpy or cupy)."""
        self.arrays = {k: xp.asarray(v) for k, v in self.arrays.items()}
        self.xp = xp
        self._first = xp.asarray(self._first)
        self._mma = (mma.TensorCoreMLP(self.arrays, self.n_layers)
                     if xp is not numpy and self.n_layers > 1 and
                     mma.supported() else None)
        return self

    def save(self, path):
        with atomic_file.open_for_write(path) as f:
            numpy.savez_compressed(
                f, **{k: reference.to_cpu(v) for k, v in self.arrays.items()})

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
            if self._compiled is None:
                self._compiled = kernels.CompiledLayers(self.arrays,
                                                        self.n_layers)
            s = self._compiled.scores(pixels, hidden)
        elif self._mma is not None:
            s = self._mma.scores(reference.first_sums(pixels, self._first),
                                 hidden)
        else:
            s = reference.scores(
                self.arrays, self.n_layers,
                reference.first_sums(pixels, self._first), xnor_popcount,
                hidden)
        name = 'l{}/'.format(self.n_layers)
        # Exact: the scores are integers below 2^24.
        return (s.astype(numpy.float32) * self.arrays[name + 'scale'] +
                self.arrays[name + 'shift'])

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
