"""``python -m prune_plugin.static_demo evaluate --pruned_model DIR``: top-1 / top-5 and the
sparsity of a model saved by ``train`` (the reference's evaluate.py)."""
import paddle

from .checkpoint import load_params
from .data import load_dataset
from .network import build_eval
from .train import _log, evaluate


def run(args):
    """Evaluate; returns 0."""
    from prune_plugin.static import UnstructuredPruner
    dataset = load_dataset(args)
    paddle.enable_static()
    place = paddle.CPUPlace()
    val = build_eval(args, dataset)
    exe = paddle.static.Executor(place)
    exe.run(val.startup)
    loaded = load_params(args.pruned_model, val.main)
    sparsity = UnstructuredPruner.total_sparse(val.main)
    top1, top5 = evaluate(exe, val, dataset.val, args.batch_size_for_validation)
    _log(f"{args.pruned_model}: {loaded} parameters, total sparsity {sparsity * 100:.2f}%, "
         f"top-1 {top1 * 100:.2f}%, top-5 {top5 * 100:.2f}%")
    return 0
