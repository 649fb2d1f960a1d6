#!/usr/bin/env python3
"""Measures the packed XNOR engine against float, side by side in one process.

1. product: d = popcount(a XOR w) on packed rows against a float32 matmul of
   the same +-1 matrices (and float16 on a GPU), M x K x N; on the CPU, BLAS's
   kernel and the first layer's path, the first call of the compiled
   kernels, and the words a second reached against a loop of nothing but
   XOR, popcount and sum over cached words;
   on a GPU also the __popcll kernel, which the 1-bit tensor cores replace
   from sm_80 on;
2. inference: the 10,000 MNIST test images through Chainer's float path and
   through packed.PackedMLP, for the port's net and the paper's width;
3. training: seconds per epoch of the BinaryNet MLP (port recipe) and of a
   float MLP of the same shape (Linear, BatchNormalization, ReLU);
4. a training step, batch 100, of the port's net and the paper's, by the
   fast path and by --plain's Chainer, against its yardstick: the float32
   products the step cannot avoid, x . W_b^T and gy^T . x for each layer
   and gy . W_b for each but the first, timed alone; and the snapshot that
   --frequency writes (the model, its state and the best model, into a
   folder made in the current one), against an epoch of those steps;
5. the same step in PyTorch (torch_peer.py, the port's net and the paper's
   written the usual PyTorch way), against PyTorch's own float32 products
   of that step and this package's fast step, on the CPU, where torch
   imports (requirements-torch.txt); one line says why where not.

Prints a table per part and, last, one JSON line with every figure.
"""
import json
import os
import platform
import sys
import tempfile
import time

import compat

import numpy
import threadpoolctl

import chainer
from chainer.dataset import convert
import chainer.functions as F
import chainer.links as L

import fast
import mnist
import packed
from packed import cuda
from packed import mma
from packed import reference
import recipes
from utils import cli
from utils import snapshot

PROG = os.path.basename(sys.argv[0]) or 'benchmark.py'

# Seconds slept after each run of the PyTorch part. When a call returns,
# OpenBLAS's threads spin (yielding) for about 0.1 s and torch's OpenMP
# threads (not yielding) for milliseconds, on the cores the next run needs,
# whichever process they are in: on 2 cores shared with a training run,
# the port's fast step right after a PyTorch step in another process took
# a median 159 ms, 96 ms after a 0.1 s pause, 89 ms after its own step and
# the pause. A subprocess for torch would not help; the pause lets each
# run, of either side, start on idle cores.
TORCH_PAUSE = 0.2

FULL = {
    'product': [(m, k, k) for m in (100, 10000) for k in (1024, 4096)],
    'nets': [(recipes.Port, 1000), (recipes.Paper, 4096),
             (recipes.Torch7, 2048)],
    'batchsizes': [100, 10000],
    'train_units': 1000,
    'train_iterations': 600,
    'steps': [(recipes.Port, 1000), (recipes.Paper, 4096),
              (recipes.Torch7, 2048)],
    'torch': [(recipes.Port, 1000), (recipes.Paper, 4096)],
    'torch_pause': TORCH_PAUSE,
}
# A smoke test of every path, in seconds.
QUICK = {
    'product': [(100, 256, 256), (300, 65, 130)],
    'nets': [(recipes.Port, 100), (recipes.Torch7, 100)],
    'batchsizes': [1000],
    'train_units': 100,
    'train_iterations': 10,
    'steps': [(recipes.Port, 100), (recipes.Paper, 100),
              (recipes.Torch7, 100)],
    'torch': [(recipes.Port, 100), (recipes.Paper, 100)],
    'torch_pause': 0.,
}


class FloatMLP(chainer.Chain):

    """The float baseline: h_k = relu(BN(Linear(h_k-1))), y = BN(Linear(h))."""

    def __init__(self, n_units, n_hidden=2):
        super().__init__()
        self.n_hidden = n_hidden
        sizes = [784] + [n_units] * n_hidden + [10]
        with self.init_scope():
            for k in range(1, n_hidden + 2):
                setattr(self, 'l{}'.format(k),
                        L.Linear(sizes[k - 1], sizes[k]))
                setattr(self, 'b{}'.format(k),
                        L.BatchNormalization(sizes[k]))

    def forward(self, x):
        for k in range(1, self.n_hidden + 1):
            x = F.relu(self['b{}'.format(k)](self['l{}'.format(k)](x)))
        k = self.n_hidden + 1
        return self['b{}'.format(k)](self['l{}'.format(k)](x))


def best_time(run, xp, min_total=1., max_repeat=5):
    """The shortest of a few runs of ``run()``, after one to warm up."""
    run()
    # The warm-up's queued work is not the first run's.
    cli.synchronize(xp)
    times = []
    while len(times) < max_repeat and (not times or sum(times) < min_total):
        start = time.perf_counter()
        run()
        cli.synchronize(xp)
        times.append(time.perf_counter() - start)
    return min(times)


def interleaved(runs, xp, min_total=3., min_rounds=5, max_rounds=30,
                pause=0.):
    """The shortest time of each of ``runs`` (name: function), run in turn
    for a few rounds after one to warm up: on a shared machine each sees
    the same spells of load. ``pause``: seconds slept, untimed, after each
    run."""
    times = {name: [] for name in runs}
    for rounds in range(max_rounds + 1):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            cli.synchronize(xp)
            times[name].append(time.perf_counter() - start)
            if pause:
                time.sleep(pause)
        # The first round warms up: it is not counted.
        total = sum(sum(t[1:]) for t in times.values())
        if rounds >= min_rounds and total >= min_total:
            break
    return {name: min(t[1:]) for name, t in times.items()}


def bench_compiled():
    """The first call of packed.cpu's kernels (importing Numba, compiling them
    for the engine's arrays or loading them from its cache), the threads,
    and the ceiling of their popcount rate; None without Numba."""
    start = time.perf_counter()
    kernels = packed.compiled()
    if kernels is None:
        return None
    words = numpy.zeros((1, 1), numpy.uint64)
    kernels.xnor_popcount(words, words)
    kernels.sign_bits(words[None], words, numpy.zeros(1, numpy.int32),
                      numpy.zeros(1, bool))
    kernels.first_sign_bits(numpy.zeros((1, 1), numpy.uint8),
                            kernels.first_layer(numpy.ones((1, 1), numpy.int8),
                                                numpy.zeros(1), [False]))
    seconds = time.perf_counter() - start
    import numba
    return {'first_call_s': seconds, 'threads': numba.get_num_threads(),
            'first_layer': kernels.FIRST_LAYER,
            'ceiling_words_per_s': kernels.xor_popcount_rate()}


def xnor_product(a, w):
    """The product of packed rows as inference runs it, for timing: the
    weights prepared once, as a layer keeps them (on the CPU also
    transposed; on the tensor cores padded and counted), the activations as
    the layer before leaves them (counted, on the tensor cores)."""
    if isinstance(a, numpy.ndarray):
        kernels = packed.compiled()
        if kernels is None:
            return lambda: packed.xnor_popcount(a, w)
        wt = kernels.transpose(w)
        return lambda: kernels.xnor_popcount(a, w, wt)
    if not mma.supported():
        return lambda: packed.xnor_popcount(a, w)
    a, w = mma.pad_rows(a), mma.pad_rows(w)
    a_counts, w_counts = mma.row_counts(a), mma.row_counts(w)
    return lambda: mma.product(a, a_counts, w, w_counts)


def bench_product(xp, shapes):
    rng = numpy.random.RandomState(0)
    rows = []
    for m, k, n in shapes:
        a = xp.asarray(numpy.where(rng.rand(m, k) < .5, 1, -1), numpy.float32)
        w = xp.asarray(numpy.where(rng.rand(n, k) < .5, 1, -1), numpy.float32)
        # Weights are packed once, in the layout their product takes, as the
        # float side's are transposed once; activations come packed from
        # the layer before: packing is not part of the product.
        a_bits = reference.pack_signs(a >= 0)
        w_bits = reference.pack_signs(w >= 0)
        w_t = w.T.copy()
        timed = xnor_product(a_bits, w_bits)
        # Runs for a second, not 5 runs: for a while after each call
        # OpenBLAS's threads spin, and the first runs of the product after
        # them wait for a core.
        row = {'m': m, 'k': k, 'n': n,
               'float32_s': best_time(lambda: a.dot(w_t), xp,
                                      max_repeat=1000),
               'xnor_s': best_time(timed, xp, max_repeat=1000)}
        row['words_per_s'] = m * n * a_bits.shape[1] / row['xnor_s']
        products = [lambda a, w: timed(), packed.xnor_popcount]
        if xp is not numpy:
            a16, w16 = a.astype(numpy.float16), w_t.astype(numpy.float16)
            row['float16_s'] = best_time(lambda: a16.dot(w16), xp)
            row['popcll_s'] = best_time(
                lambda: cuda.xnor_popcount(a_bits, w_bits), xp)
            products.append(cuda.xnor_popcount)
        row['equal'] = all(
            bool((k - 2 * product(a_bits, w_bits) == a.dot(w_t)).all())
            for product in products)
        rows.append(row)
    return rows


def calibrate(mlp, x):
    """Sets BatchNormalization's statistics to those of the images x.

    With random weights and the initial statistics (mean 0), many units sit
    exactly on their thresholds, where float32 rounding decides the sign;
    a trained net's statistics leave none there.
    """
    for _, bn in mlp.layers():
        bn.decay = 0.
    with chainer.using_config('train', True), chainer.no_backprop_mode():
        mlp(x)


def bench_inference(device, nets, batchsizes, x, pixels):
    rows = []
    for recipe, n_units in nets:
        numpy.random.seed(0)
        mlp = recipe.model(n_units).predictor
        n_hidden = mlp.n_hidden
        mlp.to_device(device)
        calibrate(mlp, x[:1000])
        engine = packed.PackedMLP.from_chain(mlp).to_device(device.xp)
        for batchsize in batchsizes:
            def chainer_path():
                with chainer.using_config('train', False), \
                        chainer.no_backprop_mode():
                    return [mlp(x[i:i + batchsize]).array
                            for i in range(0, len(x), batchsize)]
            row = {'hidden': n_hidden, 'units': n_units, 'batch': batchsize,
                   'chainer_s': best_time(chainer_path, device.xp),
                   'packed_s': best_time(
                       lambda: engine.logits(pixels, batchsize), device.xp)}
            agree = (engine.logits(pixels, batchsize).argmax(axis=1) ==
                     device.xp.concatenate(chainer_path()).argmax(axis=1))
            row['agree'] = int(agree.sum())
            rows.append(row)
    return rows


def bench_training(device, n_units, iterations, train):
    """Seconds per epoch (60,000 images, batch 100), both nets alternating."""
    batches = [convert.concat_examples(train[i:i + 100], device)
               for i in range(0, 100 * iterations, 100)]
    numpy.random.seed(0)
    binary = recipes.Port.model(n_units)
    numpy.random.seed(0)
    floats = L.Classifier(FloatMLP(n_units))
    for model in (binary, floats):
        model.to_device(device)
    baseline = chainer.optimizers.Adam()
    baseline.setup(floats)
    setups = {
        'binary': (binary, recipes.Port.optimizer(binary, 'all')),
        'float': (floats, baseline),
    }

    def epoch(name):
        model, optimizer = setups[name]
        for x, t in batches:
            optimizer.update(model, x, t)
        float(model.loss.array)

    per_epoch = 60000 / (100 * iterations)
    result = {name: best_time(lambda: epoch(name), device.xp, max_repeat=2)
              * per_epoch for name in ('binary', 'float')}
    return {'units': n_units, 'iterations': iterations,
            'binary_s_per_epoch': result['binary'],
            'float_s_per_epoch': result['float'],
            'ratio': result['binary'] / result['float']}


def yardstick_arrays(sizes, batchsize, seed=0):
    """(x, W_b, gy) per layer of the net of layer ``sizes``, float32, a
    step's shapes, W_b of +-1."""
    rng = numpy.random.RandomState(seed)
    layers = []
    for n_in, n_out in zip(sizes, sizes[1:]):
        x, gy = (rng.uniform(-1, 1, (batchsize, n)).astype(numpy.float32)
                 for n in (n_in, n_out))
        W_b = numpy.where(rng.rand(n_out, n_in) < .5, 1, -1).astype(
            numpy.float32)
        layers.append((x, W_b, gy))
    return layers


def yardstick(device, sizes, batchsize, seed=0):
    """A function running the float32 products of a step of the net of
    layer ``sizes``: per layer x . W_b^T, gy^T . x and, but for the first
    layer, gy . W_b, on +-1 weights, as BinaryLinearFunction runs them."""
    layers = [tuple(device.send(a) for a in layer)
              for layer in yardstick_arrays(sizes, batchsize, seed)]

    def products():
        xp = device.xp
        for k, (x, W_b, gy) in enumerate(layers):
            x.dot(W_b.T)
            xp.matmul(gy.T, x)
            if k:
                xp.matmul(gy, W_b)
    return products


def torch_yardstick(torch, sizes, batchsize, seed=0):
    """yardstick's products on its arrays, by torch.matmul, on the CPU."""
    layers = [tuple(torch.from_numpy(a) for a in layer)
              for layer in yardstick_arrays(sizes, batchsize, seed)]

    def products():
        for k, (x, W_b, gy) in enumerate(layers):
            torch.matmul(x, W_b.T)
            torch.matmul(gy.T, x)
            if k:
                torch.matmul(gy, W_b)
    return products


def step_batch(recipe, train, device, batchsize):
    """The first ``batchsize`` training images and labels, on ``device``,
    the images as ``recipe``'s net takes them."""
    x, t = convert.concat_examples(train[:batchsize], device)
    if recipe.signed_input:
        x = 2 * x - 1
    return x, t


def recipe_model(recipe, n_units, device):
    """``recipe``'s model, seeded, on ``device``, and its optimizer."""
    numpy.random.seed(0)
    model = recipe.model(n_units)
    model.to_device(device)
    return model, recipe.optimizer(model, recipe.clip)


def fast_step(recipe, model, optimizer):
    """The fast path's FlatAdam, stepping ``model`` as ``recipe`` does."""
    return fast.make_step(model, optimizer,
                          recipes.clipped_params(model, recipe.clip),
                          recipe.clip_timing)


def bench_steps(device, nets, train):
    """Seconds of one training step (batch 100) of each recipe's net, by the
    fast path and by Chainer's optimizer with its hooks and type checks
    (each on its own copy of the net), and of its yardstick, in turn."""
    batchsize = 100
    rows = []
    for recipe, n_units in nets:
        x, t = step_batch(recipe, train, device, batchsize)
        (fast_model, optimizer), (plain_model, plain) = (
            recipe_model(recipe, n_units, device) for _ in range(2))
        adam = fast_step(recipe, fast_model, optimizer)
        sizes = [784] + [n_units] * recipe.n_hidden + [10]
        times = interleaved({
            'fast_s': lambda: adam.update(fast_model, x, t),
            'plain_s': lambda: plain.update(plain_model, x, t),
            'yardstick_s': yardstick(device, sizes, batchsize)}, device.xp)
        row = dict({'net': recipe.name, 'hidden': recipe.n_hidden,
                    'units': n_units, 'batch': batchsize}, **times)
        row['fast_ratio'] = row['fast_s'] / row['yardstick_s']
        row['plain_ratio'] = row['plain_s'] / row['yardstick_s']
        row['epoch_steps'] = round(
            len(train) * (1 - recipe.validation_fraction)) // batchsize
        row['snapshot_s'], row['snapshot_bytes'] = bench_snapshot(
            fast_model, optimizer)
        row['snapshot_ratio'] = row['snapshot_s'] / (
            row['epoch_steps'] * row['fast_s'])
        rows.append(row)
    return rows


def load_torch_peer(device):
    """(torch_peer, None), or (None, the line that says why the PyTorch part
    is skipped): it runs on the CPU, where torch imports."""
    if device.xp is not numpy:
        return None, 'the same step in PyTorch: skipped, on the CPU only'
    try:
        import torch  # noqa: F401
    # A torch whose shared libraries do not load raises OSError.
    except (ImportError, OSError) as e:
        return None, ('the same step in PyTorch: skipped, torch does not '
                      'import ({}); pip install -r requirements-torch.txt '
                      'adds it'.format(e))
    import torch_peer
    return torch_peer, None


def bench_torch(torch_peer, nets, train, pause):
    """Seconds of one training step (batch 100) of each recipe's net written
    in PyTorch (torch_peer), of PyTorch's float32 products of that step
    (yardstick's, by torch.matmul) and of this package's fast step, in
    turn, ``pause`` seconds apart, on the CPU; with torch's version and
    threads."""
    torch = torch_peer.torch
    device = chainer.get_device('@numpy')
    batchsize = 100
    rows = []
    for recipe, n_units in nets:
        x, t = step_batch(recipe, train, device, batchsize)
        model, optimizer = recipe_model(recipe, n_units, device)
        adam = fast_step(recipe, model, optimizer)
        torch.manual_seed(0)
        step = torch_peer.Step(recipe, torch_peer.MnistMLP(recipe, n_units))
        # As a DataLoader gives them: the labels int64, as PyTorch's losses
        # take them.
        x_torch, t_torch = torch.from_numpy(x), torch.from_numpy(t).long()
        sizes = [784] + [n_units] * recipe.n_hidden + [10]
        times = interleaved({
            'torch_s': lambda: step(x_torch, t_torch),
            'products_s': torch_yardstick(torch, sizes, batchsize),
            'fast_s': lambda: adam.update(model, x, t)}, numpy, pause=pause)
        row = dict({'net': recipe.name, 'hidden': recipe.n_hidden,
                    'units': n_units, 'batch': batchsize}, **times)
        row['torch_fast_ratio'] = row['torch_s'] / row['fast_s']
        row['torch_ratio'] = row['torch_s'] / row['products_s']
        row['fast_ratio'] = row['fast_s'] / row['products_s']
        rows.append(row)
    return {'version': torch.__version__, 'threads': torch.get_num_threads(),
            'steps': rows}


def print_torch(result):
    print()
    print('the same step in PyTorch {}, eager, {}, batch 100 (ms); '
          'products: its float32 products alone (torch.matmul)'.format(
              result['version'], cli.plural(result['threads'], 'thread')))
    print('{:>6s} {:>10s} {:>9s} {:>9s} {:>9s} {:>9s} {:>9s} {:>9s}'.format(
        'preset', 'net', 'pytorch', 'products', 'fast', 'pytorch/f',
        'pytorch/p', 'fast/p'))
    for r in result['steps']:
        print('{:>6s} {:>10s} {:9.1f} {:9.1f} {:9.1f} {:8.2f}x {:8.2f}x '
              '{:8.2f}x'.format(
                  r['net'], '{hidden}x{units}'.format(**r), r['torch_s'] * 1e3,
                  r['products_s'] * 1e3, r['fast_s'] * 1e3,
                  r['torch_fast_ratio'], r['torch_ratio'], r['fast_ratio']))


def bench_snapshot(model, optimizer, repeat=3):
    """Median seconds of a snapshot after a new best (the best model kept,
    then the three files written and synced), and its bytes."""
    times = []
    with tempfile.TemporaryDirectory(dir='.') as out:
        snapshots = snapshot.Snapshots(out, {})
        for _ in range(repeat):
            start = time.perf_counter()
            snapshots.keep_best(model)
            snapshots.save(model, optimizer, [], quiet=True)
            times.append(time.perf_counter() - start)
        size = sum(os.path.getsize(os.path.join(out, name))
                   for name in os.listdir(out))
    return sorted(times)[len(times) // 2], size


def print_steps(rows):
    print()
    print('training step, batch 100 (ms); yardstick: its float32 products '
          'alone')
    print('{:>6s} {:>10s} {:>9s} {:>9s} {:>9s} {:>8s} {:>8s}'.format(
        'preset', 'net', 'fast', 'plain', 'yardstick', 'fast/y', 'plain/y'))
    for r in rows:
        print('{:>6s} {:>10s} {:9.1f} {:9.1f} {:9.1f} {:7.2f}x {:7.2f}x'
              .format(r['net'], '{hidden}x{units}'.format(**r),
                      r['fast_s'] * 1e3, r['plain_s'] * 1e3,
                      r['yardstick_s'] * 1e3, r['fast_ratio'],
                      r['plain_ratio']))
    print('snapshot with the best model, against an epoch of fast steps')
    for r in rows:
        print('{:>6s} {:>10s} {:7.1f} MB in {:.2f} s: {:.1%} of {}'.format(
            r['net'], '{hidden}x{units}'.format(**r),
            r['snapshot_bytes'] / 1e6, r['snapshot_s'], r['snapshot_ratio'],
            cli.plural(r['epoch_steps'], 'step')))


def machine(device):
    info = {'python': platform.python_version(), 'numpy': numpy.__version__,
            'chainer': chainer.__version__, 'cpu': cpu_name(),
            'cores': os.cpu_count(), 'blas': blas_kernel()}
    if device.xp is not numpy:
        cupy = device.xp
        info['cupy'] = cupy.__version__
        info['gpu'] = cupy.cuda.runtime.getDeviceProperties(
            device.device.id)['name'].decode()
        info['xnor_kernel'] = ('tensor cores (mma b1)' if mma.supported()
                               else '__popcll')
    return info


def blas_kernel():
    """NumPy's BLAS and the kernel it chose for this CPU, as threadpoolctl
    reads them from the library, and OPENBLAS_CORETYPE where it forced one."""
    names = ['{} {}'.format(lib['internal_api'], lib.get('architecture', ''))
             .strip() for lib in threadpoolctl.threadpool_info()
             if lib['user_api'] == 'blas']
    forced = os.environ.get('OPENBLAS_CORETYPE')
    return ', '.join(names or ['unknown']) + (
        ' (forced by OPENBLAS_CORETYPE={})'.format(forced) if forced else '')


def cpu_name():
    try:
        with open('/proc/cpuinfo') as f:
            for line in f:
                if line.startswith('model name'):
                    return line.split(':', 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or 'unknown'


def print_tables(result):
    gpu = 'gpu' in result['machine']
    print('product, M x K x N (ms); xnor: popcount(a XOR w) on packed words; '
          'float32 by {}'.format(result['machine']['blas']))
    print('{:>17s} {:>10s} {:>10s} {:>10s} {:>9s} {:>9s} {:>6s}'.format(
        'M x K x N', 'float32', 'float16' if gpu else '', 'xnor',
        'vs f32', 'Gword/s', 'equal'))
    for r in result['product']:
        print('{:>17s} {:10.2f} {:>10s} {:10.2f} {:8.2f}x {:9.1f} {:>6s}'
              .format('{m}x{k}x{n}'.format(**r), r['float32_s'] * 1e3,
                      '{:.2f}'.format(r['float16_s'] * 1e3) if gpu else '',
                      r['xnor_s'] * 1e3, r['float32_s'] / r['xnor_s'],
                      r['words_per_s'] / 1e9, str(r['equal'])))
    cpu = result['compiled']
    if cpu is not None:
        best = max(r['words_per_s'] for r in result['product'])
        print('compiled kernels: first call {:.2f} s (compiling, or loading '
              'the cache); {} threads; XOR-popcount-sum over cached words '
              '{:.1f} Gword/s, of which the product reached up to '
              '{:.3g}%; first layer by {}'.format(
                  cpu['first_call_s'], cpu['threads'],
                  cpu['ceiling_words_per_s'] / 1e9,
                  100 * best / cpu['ceiling_words_per_s'],
                  cpu['first_layer']))
    if gpu:
        print('xnor by {}, against float16 and the __popcll kernel'.format(
            result['machine']['xnor_kernel']))
        print('{:>17s} {:>10s} {:>9s} {:>10s}'.format(
            'M x K x N', 'popcll', 'vs f16', 'vs popcll'))
        for r in result['product']:
            print('{:>17s} {:10.2f} {:8.2f}x {:9.2f}x'.format(
                '{m}x{k}x{n}'.format(**r), r['popcll_s'] * 1e3,
                r['float16_s'] / r['xnor_s'], r['popcll_s'] / r['xnor_s']))
    print()
    print('inference, whole test set (ms)')
    print('{:>10s} {:>6s} {:>10s} {:>10s} {:>9s} {:>6s}'.format(
        'net', 'batch', 'chainer', 'packed', 'speedup', 'agree'))
    for r in result['inference']:
        print('{:>10s} {:6d} {:10.1f} {:10.1f} {:8.2f}x {:6d}'.format(
            '{hidden}x{units}'.format(**r), r['batch'], r['chainer_s'] * 1e3,
            r['packed_s'] * 1e3, r['chainer_s'] / r['packed_s'],
            r['agree']))
    print()
    t = result['training']
    print('training, s per epoch of 60,000 images ({} units, from {} '
          'iterations)'.format(t['units'], t['iterations']))
    print('  BinaryNet {:.2f}  float {:.2f}  ratio {:.2f}x'.format(
        t['binary_s_per_epoch'], t['float_s_per_epoch'], t['ratio']))


def main(argv=None):
    parser = cli.OneLineParser(prog=PROG, description=__doc__.split('\n')[0])
    cli.add_gpu_flag(parser)
    parser.add_argument('--quick', action='store_true',
                        help='Tiny sizes: checks that every path runs, and '
                        'measures nothing')
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    try:
        device = cli.get_device(args.gpu)
        train, test = mnist.get_mnist()
    except (cli.UsageError, mnist.MnistError) as e:
        print('{}: error: {}'.format(PROG, e), file=sys.stderr)
        return 1
    compat.use_device(device)
    x, _ = convert.concat_examples(test)
    if args.quick:
        x = x[:1000]
    pixels = device.send(numpy.rint(x * 255).astype(numpy.uint8))
    x = device.send(x)
    result = {'machine': machine(device), 'compiled': None}
    if device.xp is numpy:
        result['compiled'] = bench_compiled()
    result['product'] = bench_product(device.xp, sizes['product'])
    result['inference'] = bench_inference(
        device, sizes['nets'], sizes['batchsizes'], x, pixels)
    result['training'] = bench_training(
        device, sizes['train_units'], sizes['train_iterations'], train)
    if args.quick:
        print('--quick: sizes that check that every path runs; its times '
              'and ratios measure nothing')
    result['steps'] = bench_steps(device, sizes['steps'], train)
    torch_peer, skipped = load_torch_peer(device)
    result['torch'] = None if torch_peer is None else bench_torch(
        torch_peer, sizes['torch'], train, sizes['torch_pause'])
    print_tables(result)
    print_steps(result['steps'])
    if skipped:
        print()
        print(skipped)
    else:
        print_torch(result['torch'])
    print(json.dumps(result))
    return 0


if __name__ == '__main__':
    sys.exit(main())
