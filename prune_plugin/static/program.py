"""Reading a static program the same way on both IRs: PIR (Paddle 3's default) and the legacy
``ProgramDesc`` IR (``FLAGS_enable_pir_api=0``).

Only inspection: the operators (type and named inputs) and the parameters, in program order.
PaddleSlim 2.6 reads ``op.type``, which PIR operations do not have; here an operator is reduced
to a :class:`ProgramOp` first, whatever the IR.
"""
from dataclasses import dataclass

import paddle

from ..core.errors import PruneConfigError

FLOAT_DTYPES = ('float32', 'float16', 'bfloat16', 'float64')
OPTIMIZER_OPS = frozenset(['sgd', 'momentum', 'lars_momentum', 'dgc_momentum', 'adam', 'adamw',
                           'adamax', 'lamb', 'rmsprop', 'adagrad', 'decayed_adagrad', 'adadelta',
                           'ftrl', 'nadam', 'radam', 'asgd', 'rprop', 'merged_momentum',
                           'merged_adam'])


@dataclass(frozen=True)
class ProgramOp:
    """One operator of the global block.

    Attributes:
        type: The op type without PIR's dialect prefix and in-place suffix
            (``pd_op.batch_norm_`` -> ``batch_norm``), as the legacy IR spells it.
        inputs: Names of the inputs that have one (parameters, data, accumulators), in order.
    """
    type: str
    inputs: tuple


@dataclass(frozen=True)
class ProgramParam:
    """One parameter of a program: name (its variable in the scope), shape, dtype name,
    trainable flag."""
    name: str
    shape: tuple
    dtype: str
    trainable: bool


def underlying_program(program):
    """The ``Program`` (legacy) or ``pir.Program`` behind ``program``.

    Accepts a ``paddle.static.CompiledProgram`` (its ``_program``).

    Raises:
        PruneConfigError: anything else.
    """
    inner = getattr(program, '_program', None)
    if isinstance(program, paddle.static.CompiledProgram) and inner is not None:
        program = inner
    if is_pir_program(program) or isinstance(program, paddle.static.Program):
        return program
    raise PruneConfigError("program", type(program).__name__,
                           "a paddle.static.Program (PIR or legacy) or a CompiledProgram")


def is_pir_program(program):
    """True for a PIR program (``paddle.pir.Program``)."""
    pir_program = getattr(getattr(paddle, 'pir', None), 'Program', None)
    return pir_program is not None and isinstance(program, pir_program)


def _value_name(value):
    """Name of a PIR value (parameters, data, accumulators), None for intermediate values."""
    try:
        return value.name
    except Exception:  # PIR raises ValueError for unnamed values; a null operand has no name
        return None


def _op_type(op_name):
    if '.' in op_name:
        op_name = op_name.split('.', 1)[1]
    return op_name[:-1] if op_name.endswith('_') and not op_name.endswith('__') else op_name


def program_ops(program):
    """The global block's operators as :class:`ProgramOp`, in program order."""
    block = program.global_block()
    if is_pir_program(program):
        ops = []
        for op in block.ops:
            names = (_value_name(v) for v in op.operands_source())
            ops.append(ProgramOp(_op_type(op.name()), tuple(n for n in names if n)))
        return ops
    return [ProgramOp(op.type, tuple(op.input_arg_names)) for op in block.ops]


def _dtype_name(dtype):
    return str(dtype).rsplit('.', 1)[-1].lower()


def program_params(program):
    """The model's parameters in program order: the order operators first read them (forward
    ops come first), then any parameter no operator reads. PaddleSlim's legacy-IR order
    (``program.all_parameters()``, creation order) is the same for layers built in forward order.

    A PIR program with a learning-rate scheduler holds the learning rate as a parameter; a
    parameter that only optimizer operators read is the optimizer's, not the model's, and is
    left out.
    """
    params = {}
    for value in program.global_block().all_parameters():
        params[value.name] = ProgramParam(value.name, tuple(int(d) for d in value.shape),
                                          _dtype_name(value.dtype),
                                          bool(getattr(value, 'trainable', True)))
    ordered, readers = [], {}
    for op in program_ops(program):
        for name in op.inputs:
            if name in params:
                readers.setdefault(name, set()).add(op.type)
                if params[name] not in ordered:
                    ordered.append(params[name])
    optimizer_only = {name for name, types in readers.items() if types <= OPTIMIZER_OPS}
    return [p for p in ordered + [p for p in params.values() if p not in ordered]
            if p.name not in optimizer_only]
