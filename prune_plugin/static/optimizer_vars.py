"""The optimizer variables of a static parameter: moments (zeroed where pruned at prune events)
and an fp32 master copy (zeroed with the weight every step).

Found from the program's optimizer operators (every named input shaped like the parameter), and
otherwise from the scope by Paddle's accumulator naming (``<param>_<accumulator>_<n>``).
"""
import re

from .program import OPTIMIZER_OPS, program_ops

ACCUMULATOR_SUFFIX = re.compile(
    r'_(velocity|moment\d?|mean_square|mean_grad|inf_norm|squared|linear|avg_squared_grad|'
    r'avg_squared_update)_\d+$')
MASTER_MARK = '_fp32_master'


def _param_first(inputs, param_names):
    """Optimizer ops list Param first in PIR but not in the legacy IR: find it by name."""
    return next((n for n in inputs if n in param_names), None)


def optimizer_vars(program, param_names, scope):
    """``{param_name: (moment names, master name or None)}`` for ``param_names``.

    Moments are the optimizer inputs shaped like the parameter (velocity, Adam's moment1/2; not
    the beta powers); with no optimizer operator for a parameter, scope variables named
    ``<param>_<accumulator>_<n>`` and shaped like it.
    """
    param_names = list(param_names)
    wanted = set(param_names)
    from_ops = {}
    for op in program_ops(program):
        if op.type not in OPTIMIZER_OPS:
            continue
        param = _param_first(op.inputs, wanted)
        if param is not None:
            from_ops.setdefault(param, []).extend(n for n in op.inputs if n != param)
    scope_names = None
    result = {}
    for name in param_names:
        shape = _shape_in(scope, name)
        candidates = from_ops.get(name)
        if candidates is None:
            if scope_names is None:
                scope_names = list(scope.local_var_names())
            candidates = [n for n in scope_names if n.startswith(name + '_')
                          and (ACCUMULATOR_SUFFIX.search(n[len(name):]) or MASTER_MARK in n)]
        same = [n for n in dict.fromkeys(candidates)
                if n not in wanted and '@GRAD' not in n and _shape_in(scope, n) == shape]
        master = next((n for n in same if MASTER_MARK in n), None)
        result[name] = ([n for n in same if n != master], master)
    return result


def _shape_in(scope, name):
    var = scope.find_var(name)
    if var is None:
        return None
    try:
        tensor = var.get_tensor()
    except Exception:  # not a dense tensor (a reader, a list)
        return None
    return tuple(tensor.shape()) if tensor._is_initialized() else None
