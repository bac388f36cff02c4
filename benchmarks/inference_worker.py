"""Timing worker of benchmarks/inference.py: one runtime, one batch size, one thread count.

Runs under any Python with numpy and the runtime (the DeepSparse one has no paddle and no
prune_plugin), so it imports neither. Reads a JSON job on stdin, prints one JSON result line:

    {"runtime": "onnxruntime" | "deepsparse", "batch": 8, "threads": 1, "runs": 100,
     "warmup": 10, "models": [{"key": "...", "onnx": "m.onnx", "shape": [3, 224, 224],
                               "reference": "ref.npz"}, ...]}

Every model is compiled / loaded first; then each of ``runs`` rounds runs every model once, in
an order rotated by one each round, so that noise (other processes, frequency changes) hits all
models alike. Latency: ``time.perf_counter`` around one call; the median of the rounds is
reported with the 10th / 90th percentiles. The outputs for the reference input (the first
``reference`` batch, repeated to the batch size) are compared with Paddle's (max abs diff).
"""
import json
import os
import sys
import time

import numpy as np


def _onnxruntime(path, batch, threads, shape):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.log_severity_level = 3
    session = ort.InferenceSession(path, options, providers=['CPUExecutionProvider'])
    name = session.get_inputs()[0].name
    return lambda x: session.run(None, {name: x})


def _deepsparse(path, batch, threads, shape):
    # DeepSparse 1.8.0 writes the batch / input shapes it overrides into the .onnx file it is
    # given (the export would then accept only that batch size): it compiles a private copy.
    import shutil
    import tempfile

    from deepsparse import compile_model
    folder = tempfile.mkdtemp(prefix='deepsparse-')
    _SCRATCH.append(folder)
    copy = os.path.join(folder, os.path.basename(path))
    shutil.copyfile(path, copy)
    engine = compile_model(copy, batch_size=batch, num_cores=threads,
                           input_shapes=[[batch] + list(shape)])
    return lambda x: engine.run([x])


_SCRATCH = []   # private copies, removed when the worker ends
RUNTIMES = {'onnxruntime': _onnxruntime, 'deepsparse': _deepsparse}


def _version(runtime):
    module = __import__(runtime)
    return getattr(module, '__version__', '?')


def _max_abs_diff(outputs, reference):
    """Max abs diff of the first sample of every output against Paddle's (float outputs)."""
    worst = 0.0
    for i, out in enumerate(outputs):
        key = f'out{i}'
        if key not in reference.files:
            break
        ref = reference[key]
        got = np.asarray(out)
        if got.shape[1:] == ref.shape[1:]:
            got = got[:ref.shape[0]]
        elif got.size % ref.size == 0:   # batch folded into another axis (PicoDet's head):
            got = got.reshape(-1)[:ref.size].reshape(ref.shape)   # sample 0 comes first
        else:
            return float('nan')
        worst = max(worst, float(np.abs(got.astype(np.float64) - ref.astype(np.float64)).max()))
    return worst


def run(job):
    runtime, batch, threads = job['runtime'], job['batch'], job['threads']
    make = RUNTIMES[runtime]
    models, calls, inputs, diffs, compile_s = job['models'], [], [], [], []
    for model in models:
        start = time.perf_counter()
        call = make(model['onnx'], batch, threads, model['shape'])
        compile_s.append(time.perf_counter() - start)
        reference = np.load(model['reference'])
        x = reference['input']
        x = np.ascontiguousarray(np.concatenate([x] * (batch // x.shape[0] + 1))[:batch])
        diffs.append(_max_abs_diff(call(x), reference))
        calls.append(call)
        inputs.append(x)
    for _ in range(job.get('warmup', 10)):
        for call, x in zip(calls, inputs):
            call(x)
    times = [[] for _ in models]
    n = len(models)
    for r in range(job['runs']):
        for k in range(n):
            i = (r + k) % n
            start = time.perf_counter()
            calls[i](inputs[i])
            times[i].append(time.perf_counter() - start)
    results = []
    for model, samples, diff, took in zip(models, times, diffs, compile_s):
        ms = np.array(samples) * 1000.0
        results.append({'key': model['key'], 'median_ms': float(np.median(ms)),
                        'p10_ms': float(np.percentile(ms, 10)),
                        'p90_ms': float(np.percentile(ms, 90)), 'runs': len(samples),
                        'max_abs_diff': diff, 'load_s': took})
    return {'runtime': runtime, 'version': _version(runtime), 'batch': batch,
            'threads': threads, 'results': results}


def main():
    os.environ.setdefault('NM_DISABLE_ANALYTICS', '1')   # DeepSparse: no usage reporting
    job = json.loads(sys.stdin.read())
    try:
        print(json.dumps(run(job)), flush=True)
    finally:
        import shutil
        for folder in _SCRATCH:
            shutil.rmtree(folder, ignore_errors=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
