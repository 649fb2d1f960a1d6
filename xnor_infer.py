#!/usr/bin/env python3
"""Evaluates a trained MnistMLP on the MNIST test set with packed XNOR bits.

Folds the model saved by train_mnist.py, which names its recipe, into
packed.PackedMLP, prints its summary, then classifies the 10,000 test images
with the packed engine and with Chainer's float path, and prints both
accuracies, their agreement and their times.
"""
import os
import sys
import time

import compat

import numpy

import chainer
from chainer.dataset import convert

import mnist
import packed
import recipes
from utils import cli
from utils import safe_npz

PROG = os.path.basename(sys.argv[0]) or 'xnor_infer.py'


def parse_args(argv=None):
    parser = cli.OneLineParser(
        prog=PROG, description='BinaryNet: packed XNOR inference on MNIST')
    parser.add_argument('--model', '-m', required=True,
                        help='Model file saved by train_mnist.py')
    cli.add_gpu_flag(parser)
    parser.add_argument('--batchsize', '-b', type=cli.positive_int,
                        default=10000, help='Images classified at once')
    parser.add_argument('--dataset-dir', default=None,
                        help='Folder holding the four MNIST IDX files; '
                        'default: the copy in data/mnist')
    parser.add_argument('--save', default='',
                        help='Also write the packed model to this npz file')
    return parser.parse_args(argv)


def saved_recipe(arrays, path):
    """The recipe, --unit and --bn that train_mnist.py saved with the
    model (--bn exact in files saved before it was named)."""
    saved = safe_npz.recipe_of(arrays, path) or {}
    recipe = recipes.PRESETS.get(saved.get('preset'))
    unit = saved.get('unit')
    bn = saved.get('bn', 'exact')
    if (recipe is None or not isinstance(unit, int) or unit < 1 or
            bn not in recipes.BN):
        raise safe_npz.LoadError('{} names no recipe: it was not saved by '
                                 'this train_mnist.py'.format(path))
    return recipe, unit, bn


def timed(run, xp):
    """run()'s result and its wall time, waiting for the GPU to finish."""
    start = time.perf_counter()
    result = run()
    cli.synchronize(xp)
    return result, time.perf_counter() - start


def chainer_logits(model, x, batchsize):
    with chainer.using_config('train', False), chainer.no_backprop_mode():
        return model.xp.concatenate([
            model(x[i:i + batchsize]).array
            for i in range(0, len(x), batchsize)])


def infer(args):
    device = cli.get_device(args.gpu)
    arrays = safe_npz.read(args.model)
    recipe, n_units, bn = saved_recipe(arrays, args.model)
    classifier = recipe.model(n_units, bn)
    safe_npz.load_arrays(arrays, classifier, args.model)
    model = classifier.predictor
    engine = packed.PackedMLP.from_chain(
        model, recipe.input_affine(args.dataset_dir))
    print('model: {} (--preset {}, {} hidden layers of {} units)'.format(
        args.model, recipe.name, model.n_hidden, n_units))
    print(engine.summary())
    if args.save:
        engine.save(args.save)
        print('packed model saved to', args.save)

    x, t = convert.concat_examples(recipe.data(args.dataset_dir)[2])
    _, test = mnist.get_mnist(args.dataset_dir)
    pixels = numpy.rint(convert.concat_examples(test)[0] * 255).astype(
        numpy.uint8)
    compat.use_device(device)
    model.to_device(device)
    engine.to_device(device.xp)
    x, pixels = device.send(x), device.send(pixels)

    # The first call of each path compiles kernels and fills caches; the
    # clocks start once the GPU has done that.
    engine.logits(pixels[:args.batchsize], args.batchsize)
    chainer_logits(model, x[:args.batchsize], args.batchsize)
    cli.synchronize(device.xp)
    ours, packed_time = timed(
        lambda: engine.logits(pixels, args.batchsize), device.xp)
    theirs, chainer_time = timed(
        lambda: chainer_logits(model, x, args.batchsize), device.xp)
    ours, theirs = (chainer.backend.CpuDevice().send(a)
                    for a in (ours, theirs))
    where = 'GPU {}'.format(args.gpu) if args.gpu >= 0 else 'CPU'
    print('{} test images, batch {}, on the {}'.format(
        len(t), args.batchsize, where))
    for name, logits, seconds in (('packed XNOR', ours, packed_time),
                                  ('Chainer float', theirs, chainer_time)):
        print('{:13s}  accuracy {:.4f}  {:8.1f} ms'.format(
            name, (logits.argmax(axis=1) == t).mean(), seconds * 1000))
    print('agreement: {}/{} predicted classes equal, logits within {:.2g}; '
          'packed is {:.2f}x as fast'.format(
              (ours.argmax(axis=1) == theirs.argmax(axis=1)).sum(), len(t),
              abs(ours - theirs).max(), chainer_time / packed_time))
    return 0


def main(argv=None):
    args = parse_args(argv)
    # A reader that closes the pipe (| head) ends the output, not in error.
    with cli.console_may_close():
        try:
            return infer(args)
        except (cli.UsageError, mnist.MnistError, safe_npz.LoadError,
                packed.PackedError) as e:
            message = str(e)
        except OSError as e:
            message = 'cannot write {}: {}'.format(args.save, e.strerror or e)
        print('{}: error: {}'.format(PROG, message), file=sys.stderr)
        return 1


if __name__ == '__main__':
    sys.exit(main())
