"""The cost of binary_stats.BinaryStats on the fast path, as RESULTS.md
gives it: PYTHONPATH=. python results/binary_stats_cost.py PRESET UNITS
STEPS STEPS_AN_EPOCH.

Medians, robust to the preemptions of a shared machine: training steps with
and without the hook registered, alternating step by step, in wall and CPU
time; the time inside its per-step method; its once-an-epoch work (the
signs at the start, ratios() at the end), against an epoch of steps.
"""
import sys
import time

import compat  # noqa: F401

import chainer
import numpy

from binary_stats import BinaryStats
from bst import BinaryStraightThrough
from fast.flat_adam import FlatAdam
import recipes

preset, unit, steps, epoch_steps = sys.argv[1], *map(int, sys.argv[2:])
recipe = recipes.PRESETS[preset]
numpy.random.seed(0)
model = recipe.model(unit)
optimizer = recipe.optimizer(model, recipe.clip)
adam = FlatAdam(optimizer, recipes.clipped_params(model, recipe.clip),
                recipe.clip_timing)
rng = numpy.random.RandomState(0)
x = rng.uniform(-1, 1, (100 * steps, 784)).astype(numpy.float32)
t = rng.randint(10, size=100 * steps).astype(numpy.int32)
inside = []


class Timed(BinaryStats):
    def forward_postprocess(self, function, in_data):
        start = time.perf_counter()
        BinaryStats.forward_postprocess(self, function, in_data)
        inside.append((isinstance(function, BinaryStraightThrough),
                       time.perf_counter() - start))


stats = Timed(model.predictor)
stats.__enter__()
stats.__exit__()
off, on = [], []
for i in range(2 * steps):
    hooked = i % 2 == 1
    part = slice(100 * (i // 2), 100 * (i // 2) + 100)
    if hooked:
        # Registered alone: the signs are taken once an epoch (below).
        chainer.FunctionHook.__enter__(stats)
    start, cpu = time.perf_counter(), time.process_time()
    adam.update(model, x[part], t[part])
    (on if hooked else off).append((time.perf_counter() - start,
                                    time.process_time() - cpu))
    if hooked:
        chainer.FunctionHook.__exit__(stats)
# Per step: the bst calls (one a hidden layer) and the rest, each at its
# median.
per_step = sum(
    numpy.median([dt for is_bst, dt in inside if is_bst == kind]) *
    sum(is_bst == kind for is_bst, _ in inside) / steps
    for kind in (True, False))


def once_an_epoch():
    start = time.perf_counter()
    stats.__enter__()
    stats.__exit__()
    stats.ratios()
    return time.perf_counter() - start


fixed = numpy.median([once_an_epoch() for _ in range(7)])
off, on = numpy.array(off[2:]), numpy.array(on[2:])
for column, clock in enumerate(('wall', 'CPU')):
    print('{} --unit {}: {} steps each way; a step {:.1f} ms {} without the '
          'hook, {:.1f} ms with it (medians): {:+.2%}'.format(
              preset, unit, steps, 1e3 * numpy.median(off[:, column]), clock,
              1e3 * numpy.median(on[:, column]),
              numpy.median(on[:, column]) / numpy.median(off[:, column]) - 1))
# Against the step's CPU time: its wall time holds the preemptions.
step = numpy.median(off[:, 1])
print('  inside the hook: {:.0f} calls a step, {:.3f} ms a step ({:.3%})'
      .format(len(inside) / steps, 1e3 * per_step, per_step / step))
print('  once an epoch: {:.1f} ms = {:.3%} of {} steps'.format(
    1e3 * fixed, fixed / (epoch_steps * step), epoch_steps))
print('  share of an epoch, inside the hook and once an epoch: {:.3%}'.format(
    (fixed + epoch_steps * per_step) / (epoch_steps * step)))
