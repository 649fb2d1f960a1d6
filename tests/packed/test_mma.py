"""packed.mma's kernels: compiled by NVRTC where CuPy is, run on a GPU where
one is, and everywhere emulated in NumPy from the same formulas."""
import re
import sys
import types

import numpy
import pytest

from test_mlp import random_net
from test_reference import random_bits
import packed
from packed import cuda
from packed import mma
from packed import reference
from packed.mma import (BLOCK_M, BLOCK_N, COPIES, ROW_BYTES,
                        ROW_THREADS, STAGES, STEP_WORDS, THREADS, WARPS)

F = mma.index
LANE = numpy.arange(32)


def popcount32(x):
    return reference.popcount(
        numpy.asarray(x, numpy.uint32).astype(numpy.uint64))


def ldmatrix4(tile, address):
    """ldmatrix.sync.aligned.m8n8.x4.shared.b16, as the PTX ISA has it:
    lanes 8 q to 8 q + 7 name the rows of matrix q, 16 bytes each; lane l
    gets from each matrix its row l / 4, bytes 4 (l % 4) to 4 (l % 4) + 3.

    Checks that the rows are aligned and that the 8 rows of a matrix fall
    in 32 different banks (one pass, no conflict).
    """
    assert (address % 16 == 0).all()
    for q in range(4):
        banks = (address[8 * q:8 * q + 8, None] // 4 + numpy.arange(4)) % 32
        assert len(set(banks.ravel())) == 32
    rows = tile[address[:, None] + numpy.arange(16)].copy().view('<u4')
    return [rows[8 * q + LANE // 4, LANE % 4] for q in range(4)]


def mma_and_popc(c, a, b):
    """mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.and.popc by the PTX
    ISA's fragment layouts: a thread (g, t) = (lane / 4, lane % 4) holds
    32-bit words t and t + 4 (k from 32 t and 128 + 32 t) of A's rows g
    (a0, a2) and g + 8 (a1, a3) and of B's column g (b0, b1), and D's
    rows g (c0, c1) and g + 8 (c2, c3) at columns 2 t and 2 t + 1."""
    g, t = LANE // 4, LANE % 4
    A = numpy.zeros((16, 8), numpy.uint32)
    A[g, t], A[g + 8, t], A[g, t + 4], A[g + 8, t + 4] = a
    B = numpy.zeros((8, 8), numpy.uint32)
    B[g, t], B[g, t + 4] = b
    D = popcount32(A[:, None] & B[None]).sum(axis=2)
    return [c[0] + D[g, 2 * t], c[1] + D[g, 2 * t + 1],
            c[2] + D[g + 8, 2 * t], c[3] + D[g + 8, 2 * t + 1]]


def and_popcount_tile(A, W, M, N, KW, bx, by, early):
    """acc[warp, i, j, e] (each of 32 lanes) of and_popcount_tile for the
    block (bx, by), its threads in lockstep.

    Shared memory starts as noise; a commit group's copies land when a wait
    retires the group, or at once with ``early``: the two ends of when
    cp.async may write.
    """
    smem = numpy.random.RandomState(by * 997 + bx).randint(
        0, 256, (STAGES, (BLOCK_M + BLOCK_N) * ROW_BYTES)).astype(numpy.uint8)
    tid = numpy.arange(THREADS)
    copies = []
    for q in range(COPIES):
        e = F('copy_index', tid=tid, q=q)
        row = F('tile_row', e=e)
        of_a = row < BLOCK_M
        g = numpy.where(of_a, by * BLOCK_M + row,
                        bx * BLOCK_N + F('w_unit', p=row - BLOCK_M))
        valid = g < numpy.where(of_a, M, N)
        half = F('tile_half', e=e)
        # Whole copies of a thread are A's or W's: no divergence.
        assert of_a.all() or not of_a.any()
        copies.append((A if of_a[0] else W, numpy.where(valid, g, 0) * KW,
                       valid, half, F('tile_offset', row=row, half=half)))

    def issue(step):
        group = []
        for source, start, valid, half, to in copies:
            word = start + F('step_word', step=step, half=half)
            data = numpy.stack([source[word], source[word + 1]], axis=1)
            data = data.astype('<u8').view(numpy.uint8)
            data[~valid] = 0
            group.append((F('buffer', step=step),
                          to[:, None] + numpy.arange(16), data))
        return group

    def land(group):
        for buffer, where, data in group:
            smem[buffer][where] = data

    pending = []

    def commit(group):
        if early:
            land(group)
        pending.append([] if early else group)

    def wait_group(n):
        while len(pending) > n:
            land(pending.pop(0))

    steps = KW // STEP_WORDS
    for s in range(STAGES - 1):
        commit(issue(s) if s < steps else [])
    acc = numpy.zeros((WARPS, 4, 8, 4, 32), numpy.int64)
    for s in range(steps):
        wait_group(STAGES - 2)
        following = s + STAGES - 1
        commit(issue(following) if following < steps else [])
        tile = smem[F('buffer', step=s)]
        for warp in range(WARPS):
            m0 = F('warp_row', warp=warp)
            n0 = BLOCK_M + F('warp_unit', warp=warp)
            a = [ldmatrix4(tile, F('tile_offset',
                                   row=m0 + i * 16 + F('a_row', lane=LANE),
                                   half=F('a_half', lane=LANE)))
                 for i in range(4)]
            b = []
            for j in range(0, 8, 2):
                r = ldmatrix4(tile, F('tile_offset',
                                      row=n0 + j * 8 + F('w_row', lane=LANE),
                                      half=F('w_half', lane=LANE)))
                b += [r[:2], r[2:]]
            for i in range(4):
                for j in range(8):
                    acc[warp, i, j] = mma_and_popc(acc[warp, i, j], a[i],
                                                   b[j])
    return acc


class Emulator(dict):

    """mma.kernels() in NumPy: name -> kernel(grid, block, args)."""

    def __init__(self, early=False):
        super().__init__((name, getattr(self, name))
                         for name in mma.KERNELS)
        self.early = early

    def tiles(self, grid, block, A, W, M, N, KW):
        """(warp, its first row, its first unit, acc) of every block."""
        assert block == (THREADS,) and KW % STEP_WORDS == 0
        for by in range(grid[1]):
            for bx in range(grid[0]):
                acc = and_popcount_tile(A.ravel(), W.ravel(), M, N, KW, bx,
                                        by, self.early)
                for warp in range(WARPS):
                    yield (by * BLOCK_M + F('warp_row', warp=warp),
                           bx * BLOCK_N + F('warp_unit', warp=warp),
                           acc[warp])

    def xnor_product(self, grid, block, args):
        A, W, a_counts, w_counts, D, M, N, KW = args
        D = D.ravel()
        for row0, unit0, acc in self.tiles(grid, block, A, W, M, N, KW):
            w_count = [[numpy.where(u < N, w_counts[numpy.minimum(u, N - 1)],
                                    0)
                        for u in (unit0 + F('acc_unit', lane=LANE, j=j, e=h)
                                  for h in range(2))] for j in range(8)]
            for i in range(4):
                for e in (0, 2):
                    r = row0 + F('acc_row', lane=LANE, i=i, e=e)
                    rows = r < M
                    a_count = a_counts[numpy.minimum(r, M - 1)]
                    for q in range(4):
                        v = [a_count + w_count[2 * q + x // 2][x % 2] -
                             2 * acc[i, 2 * q + x // 2, e + x % 2]
                             for x in range(4)]
                        u = unit0 + F('acc_unit', lane=LANE, j=2 * q, e=0)
                        d = r * N + u
                        if N % 4 == 0:
                            # The 16-byte store: aligned, 4 units in rows.
                            mask = rows & (u < N)
                            assert (d[mask] % 4 == 0).all()
                            masks = [mask] * 4
                        else:
                            masks = [rows & (u + x < N) for x in range(4)]
                        for x in range(4):
                            D[d[masks[x]] + x] = v[x][masks[x]]

    def hidden_layer(self, grid, block, args):
        X, W, x_counts, bound, flips, Y, y_counts, M, N, KW, YW = args
        Y = Y.ravel().view(numpy.uint16)
        piece = F('piece', lane=LANE)
        for row0, unit0, acc in self.tiles(grid, block, X, W, M, N, KW):
            bounds = [[bound[unit0 + F('acc_unit', lane=LANE, j=j, e=h)]
                       for h in range(2)] for j in range(8)]
            flip = flips[unit0 // 16 + piece]
            for i in range(4):
                for e in (0, 2):
                    r = row0 + F('acc_row', lane=LANE, i=i, e=e)
                    rows = r < M
                    x_count = numpy.where(
                        rows, x_counts[numpy.minimum(r, M - 1)], 0)
                    bits = numpy.zeros(32, numpy.uint32)
                    for j in range(8):
                        for h in range(2):
                            bit = x_count - 2 * acc[i, j, e + h] >= \
                                bounds[j][h]
                            bits |= bit.astype(numpy.uint32) << F(
                                'piece_bit', j=j, e=h)
                    bits ^= flip
                    Y[(r * YW * 4 + unit0 // 16 + piece)[rows]] = bits[rows]
                    n = popcount32(bits).astype(numpy.int64)
                    n = n + n[LANE ^ 1]
                    n = n + n[LANE ^ 2]
                    first = rows & (piece == 0)
                    numpy.add.at(y_counts, r[first], n[first])

    def rows_of_warps(self, grid, block, M):
        assert block == (ROW_THREADS,)
        for b in range(grid[0]):
            for warp in range(ROW_THREADS // 32):
                r = F('row_of_warp', block=b, tid=warp * 32 + LANE)
                assert (r == r[0]).all()
                if r[0] < M:
                    yield r[0]

    def sign_words(self, grid, block, args):
        S, threshold, flip, Y, y_counts, M, N, YW = args
        S, Y = S.ravel(), Y.ravel().view(numpy.uint32)
        for r in self.rows_of_warps(grid, block, M):
            n = 0
            for k in range(2 * YW):
                u = k * 32 + LANE
                c = numpy.minimum(u, N - 1)
                bit = (u < N) & ((S[r * N + c].astype(numpy.int32) >=
                                  threshold[c]) != flip[c])
                # __ballot_sync: bit l of the word is lane l's.
                word = (bit.astype(numpy.uint64) <<
                        LANE.astype(numpy.uint64)).sum()
                Y[r * 2 * YW + k] = word
                n += int(popcount32([word])[0])
            y_counts[r] = n

    def row_counts(self, grid, block, args):
        X, counts, M, KW = args
        X = X.ravel()
        for r in self.rows_of_warps(grid, block, M):
            n = numpy.array([reference.popcount(X[r * KW + k:(r + 1) * KW:32])
                             .sum() for k in LANE], numpy.int64)
            for d in (16, 8, 4, 2, 1):
                n = n + n[LANE ^ d]
            counts[r] = n[0]


@pytest.fixture
def emulated(monkeypatch):
    def use(early=False):
        monkeypatch.setattr(mma, 'kernels', lambda: Emulator(early))
    use()
    return use


def test_every_formula_is_in_the_kernels():
    for name in mma.FORMULAS:
        calls = re.findall(r'\b{}\('.format(name), mma.CUDA_SOURCE)
        assert len(calls) >= 2, name


def test_tile_layout():
    p = numpy.arange(BLOCK_N)
    assert sorted(F('w_unit', p=p)) == list(p)
    copied = [(F('tile_row', e=e), F('tile_half', e=e))
              for e in F('copy_index', tid=numpy.arange(THREADS)[:, None],
                         q=numpy.arange(COPIES)).ravel()]
    assert sorted(copied) == [(r, h) for r in range(BLOCK_M + BLOCK_N)
                              for h in range(2)]
    lane = LANE[:, None, None]
    j, e = numpy.arange(8)[:, None], numpy.arange(4)
    # A thread's 16 units of a row are its 16-bit piece of the row's word,
    # and 4 from acc_unit(lane, 2 q, 0) on are consecutive.
    numpy.testing.assert_array_equal(
        F('acc_unit', lane=lane, j=j, e=e),
        16 * F('piece', lane=lane) + F('piece_bit', j=j, e=e))
    q = numpy.arange(4)[:, None]
    for x in range(4):
        numpy.testing.assert_array_equal(
            F('acc_unit', lane=LANE, j=2 * q + x // 2, e=x % 2),
            F('acc_unit', lane=LANE, j=2 * q, e=0) + x)


def test_rows_are_padded_to_256_bits_with_zeros():
    words = reference.pack_signs(random_bits(5, 784))
    padded = mma.pad_rows(words)
    assert words.shape == (5, 13) and padded.shape == (5, 16)
    numpy.testing.assert_array_equal(padded[:, :13], words)
    assert not padded[:, 13:].any()
    assert mma.padded_words(1) == 4 and mma.padded_words(257) == 8


@pytest.mark.parametrize('m,n,k,early', [
    (1, 1, 1, False), (130, 70, 65, False), (129, 260, 784, False),
    (129, 260, 784, True), (63, 65, 4096, False), (200, 300, 1000, True)])
def test_emulated_product_is_the_numpy_product(emulated, m, n, k, early):
    emulated(early)
    a = reference.pack_signs(random_bits(m, k, 1))
    w = reference.pack_signs(random_bits(n, k, 2))
    numpy.testing.assert_array_equal(mma.xnor_popcount(a, w),
                                     packed.xnor_popcount(a, w))


@pytest.mark.parametrize('n_units,n_hidden,m', [
    (63, 2, 40), (65, 1, 130), (1001, 3, 40)])
def test_emulated_layers_are_packed_mlp_forward(emulated, n_units, n_hidden,
                                                m):
    mlp = packed.PackedMLP.from_chain(
        random_net(n_units, n_hidden, seed=n_units))
    pixels = numpy.random.RandomState(1).randint(0, 256, (m, 784)).astype(
        numpy.uint8)
    expected_hidden, hidden = [], []
    expected = mlp.forward(pixels, expected_hidden)
    sums = pixels.astype(numpy.float32).dot(mlp._first)
    engine = mma.TensorCoreMLP(mlp.arrays, mlp.n_layers)
    name = 'l{}/'.format(mlp.n_layers)
    logits = (engine.scores(sums, hidden).astype(numpy.float32) *
              mlp.arrays[name + 'scale'] + mlp.arrays[name + 'shift'])
    numpy.testing.assert_array_equal(logits, expected)
    assert len(hidden) == n_hidden
    for words, expected_words in zip(hidden, expected_hidden,
                                     strict=True):
        numpy.testing.assert_array_equal(words, expected_words)


@pytest.mark.parametrize('capability,tensor_cores', [
    ('75', False), ('80', True), ('90', True)])
def test_the_kernel_is_chosen_by_compute_capability(monkeypatch, capability,
                                                    tensor_cores):
    device = types.SimpleNamespace(compute_capability=capability)
    cupy = types.SimpleNamespace(cuda=types.SimpleNamespace(
        Device=lambda: device))
    monkeypatch.setitem(sys.modules, 'cupy', cupy)
    assert mma.supported() is tensor_cores
    monkeypatch.setattr(mma, 'xnor_popcount', lambda a, w: 'mma')
    monkeypatch.setattr(cuda, 'xnor_popcount', lambda a, w: 'popcll')
    assert packed.xnor_popcount(None, None) == (
        'mma' if tensor_cores else 'popcll')


def nvrtc():
    module = pytest.importorskip('cupy_backends.cuda.libs.nvrtc')
    try:
        module.getVersion()
    except Exception as e:
        pytest.skip('CuPy has no NVRTC here ({})'.format(e))
    return module


@pytest.mark.parametrize('arch', ['sm_80', 'sm_90'])
def test_nvrtc_compiles_the_kernels_without_local_memory(arch):
    compiler = nvrtc()
    program = compiler.createProgram(mma.CUDA_SOURCE, 'mma.cu',
                                     (), ())
    try:
        compiler.compileProgram(program, ('-arch=' + arch, '-Xptxas=-v'))
        ptx = compiler.getPTX(program)
        log = compiler.getProgramLog(program)
    finally:
        compiler.destroyProgram(program)
    ptx = ptx.decode() if isinstance(ptx, bytes) else ptx
    assert ptx.count('mma.sync.aligned.m16n8k256.row.col.s32.b1.b1.s32.'
                     'and.popc') == 2 * 32
    for name in mma.KERNELS:
        properties = re.search(
            r"Function properties for {}\n.*?(\d+) bytes stack frame, (\d+) "
            r"bytes spill stores, (\d+) bytes spill loads".format(name), log)
        assert properties.groups() == ('0', '0', '0'), log


def require_tensor_cores():
    if not mma.supported():
        pytest.skip('the GPU is older than sm_80: no 1-bit MMA')


@pytest.mark.gpu
@pytest.mark.parametrize('m,n,k', [(1, 1, 1), (130, 70, 65), (129, 260, 784),
                                   (63, 65, 4096), (300, 4096, 4096)])
def test_gpu_mma_product_is_numpys_and_popclls(m, n, k):
    import cupy
    require_tensor_cores()
    a = reference.pack_signs(random_bits(m, k, 1))
    w = reference.pack_signs(random_bits(n, k, 2))
    expected = packed.xnor_popcount(a, w)
    a, w = cupy.asarray(a), cupy.asarray(w)
    numpy.testing.assert_array_equal(mma.xnor_popcount(a, w).get(),
                                     expected)
    numpy.testing.assert_array_equal(cuda.xnor_popcount(a, w).get(),
                                     expected)


@pytest.mark.gpu
@pytest.mark.parametrize('n_units,n_hidden,m', [
    (63, 2, 40), (1001, 3, 300), (4096, 3, 200)])
def test_gpu_layers_are_the_cpus(n_units, n_hidden, m):
    import cupy
    require_tensor_cores()
    mlp = random_net(n_units, n_hidden, seed=n_units)
    pixels = numpy.random.RandomState(1).randint(0, 256, (m, 784)).astype(
        numpy.uint8)
    expected_hidden, hidden = [], []
    expected = packed.PackedMLP.from_chain(mlp).forward(
        pixels, expected_hidden)
    gpu = packed.PackedMLP.from_chain(mlp).to_device(cupy)
    assert gpu._mma is not None
    numpy.testing.assert_array_equal(
        gpu.forward(cupy.asarray(pixels), hidden).get(), expected)
    assert len(expected_hidden) == n_hidden
    for words, expected_words in zip(hidden, expected_hidden, strict=True):
        numpy.testing.assert_array_equal(words.get(), expected_words)
