"""Sparsity of a static program's weights, read from the scope (no pruner needed).

The same numbers as :mod:`prune_plugin.core.stats` gives for a dygraph model holding the same
weights: every parameter (norm statistics included) for :func:`total_sparse`, the 4-D 1x1
weights outside normalization operators for :func:`total_sparse_conv1x1`.
"""
import paddle

from ..core.stats import sparsity_of_params
from .program import program_params, underlying_program
from .scope_tensors import host_array
from .selection import conv1x1_param_names


def total_sparse(program, scope=None):
    """Fraction of exact zeros over all parameters of ``program``.

    Args:
        program: A ``Program`` (PIR or legacy) or ``CompiledProgram``.
        scope: The scope holding the weights (default ``paddle.static.global_scope()``).

    Returns:
        float in [0, 1].

    Example:
        >>> UnstructuredPruner.total_sparse(paddle.static.default_main_program())
        0.55
    """
    program = underlying_program(program)
    scope = scope or paddle.static.global_scope()
    return sparsity_of_params([host_array(scope, p.name) for p in program_params(program)])


def total_sparse_conv1x1(program, scope=None):
    """Fraction of exact zeros over the 1x1 conv weights of ``program`` (norm inputs excluded)."""
    program = underlying_program(program)
    scope = scope or paddle.static.global_scope()
    return sparsity_of_params([host_array(scope, name) for name in
                               sorted(conv1x1_param_names(program))])
