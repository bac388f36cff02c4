"""Run a training launcher and record where it started and in which order it saw the data.

Used by ``python -m benchmarks.suites.paired``; not a user command. Wraps ``launcher.py`` or
``ppdet_builtin.py`` in the same process::

    python benchmarks/suites/provenance.py --record-out r.json --order-seed S LAUNCHER ARGS...

Before the launcher runs, two things are patched in this process only:

- ``paddle.load``: every file it reads is recorded with its SHA-256, so the paired benchmark can
  check that a fine-tune loaded its parent (ppdet's ``pretrain_weights`` and PaddleSeg's
  ``model.pretrained`` both go through it);
- ``paddle.io.DistributedBatchSampler`` (the train sampler of ppdet and PaddleSeg): its shuffle is
  ``np.random.RandomState(self.epoch)`` with ``epoch`` counting from 0 in every run, whatever
  the ``--seed``, so all seeds would see one order. ``--order-seed S`` starts the count at
  ``S * ORDER_SEED_STRIDE`` (seed 0: the suites' own order), and every batch it yields is hashed
  into ``order_digest``: rows with the same digest saw the same samples in the same order.

The record is ``{"loaded": [{"path", "sha256"}], "order_digest", "batches"}``.
"""
import argparse
import hashlib
import json
import runpy
import sys

ORDER_SEED_STRIDE = 100_000   # epochs per seed: no run comes near it, RandomState takes < 2**32


def file_sha256(path):
    """SHA-256 hex digest of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, 'rb') as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b''):
            digest.update(chunk)
    return digest.hexdigest()


class Provenance:
    """What one training process loaded and the batches its samplers yielded."""

    def __init__(self, order_seed):
        self.order_seed = order_seed
        self.loaded = []
        self.batches = 0
        self._order = hashlib.sha256()

    def record_batch(self, indices):
        self._order.update(json.dumps([int(i) for i in indices]).encode())
        self.batches += 1

    def as_dict(self):
        return {'loaded': self.loaded, 'order_digest': self._order.hexdigest()[:16],
                'batches': self.batches, 'order_seed': self.order_seed}

    def install(self):
        """Patch ``paddle.load`` and ``DistributedBatchSampler`` (see the module docstring)."""
        import paddle
        from paddle.io import DistributedBatchSampler

        load = paddle.load

        def recording_load(path, *args, **kwargs):
            if isinstance(path, str):
                self.loaded.append({'path': path, 'sha256': file_sha256(path)})
            return load(path, *args, **kwargs)
        paddle.load = recording_load

        init, iterate = DistributedBatchSampler.__init__, DistributedBatchSampler.__iter__
        offset = self.order_seed * ORDER_SEED_STRIDE

        def seeded_init(sampler, *args, **kwargs):
            init(sampler, *args, **kwargs)
            sampler.epoch += offset

        def recording_iter(sampler):
            for indices in iterate(sampler):
                self.record_batch(indices)
                yield indices
        DistributedBatchSampler.__init__ = seeded_init
        DistributedBatchSampler.__iter__ = recording_iter


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--record-out', required=True)
    parser.add_argument('--order-seed', type=int, default=0)
    parser.add_argument('launcher')
    parser.add_argument('launcher_args', nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    provenance = Provenance(args.order_seed)
    provenance.install()
    sys.argv = [args.launcher] + args.launcher_args
    code = 0
    try:
        runpy.run_path(args.launcher, run_name='__main__')
    except SystemExit as stop:
        code = stop.code if isinstance(stop.code, int) else (0 if stop.code is None else 1)
    with open(args.record_out, 'w') as handle:
        json.dump(provenance.as_dict(), handle, indent=1)
    return code


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
