"""The ``UnstructuredPrune`` config block, shared by every suite.

One YAML block, same keys and meaning in PaddleDetection, PaddleSeg and PaddleClas configs::

    slim: UnstructuredPrune
    UnstructuredPrune:
      mode: ratio              # or threshold
      ratio: 0.75
      prune_params_type: conv1x1_only
      local_sparsity: true
      sparse_block: [1, 1]     # [2, 1] = semi-structured
      gmp: {stable_epochs: 0, pruning_epochs: 150, tunning_epochs: 150, pruning_steps: 300,
            initial_ratio: 0.15}

The block is validated as a whole when read (:meth:`PruneSpec.from_block`); the pruner is built
with the real steps per epoch once the suite knows it (:meth:`PruneSpec.build`).
"""
import difflib
from dataclasses import dataclass, field, replace

from .errors import PruneConfigError
from .gmp import GMPUnstructuredPruner
from .pruner import UnstructuredPruner
from .validation import check_initial_ratio, check_int, parse_sparse_pattern, validate_pruner_args
from .schedule import GMPSchedule

BLOCK_KEYS = ('mode', 'ratio', 'threshold', 'prune_params_type', 'local_sparsity',
              'sparse_block', 'sparse_pattern', 'prune_params', 'skip_params', 'gmp')
GMP_PHASES = ('stable', 'pruning', 'tunning')
GMP_BLOCK_KEYS = tuple(f"{phase}_{unit}" for phase in GMP_PHASES
                       for unit in ('epochs', 'iterations')) + ('pruning_steps', 'initial_ratio')
_GMP_ALIASES = {'tuning_epochs': 'tunning_epochs', 'tuning_iterations': 'tunning_iterations'}
PPDET_BUILTIN_KEYS = ('stable_epochs', 'pruning_epochs', 'tunning_epochs', 'pruning_steps',
                      'ratio', 'initial_ratio', 'prune_params_type')


def _unknown_key_error(prefix, key, value, valid):
    close = difflib.get_close_matches(key, valid, n=1) if isinstance(key, str) else []
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return PruneConfigError(f"{prefix}.{key}", value, f"one of the keys {list(valid)}{hint}")


def _check_keys(name, block, valid):
    """``block`` as a dict after checking it is a mapping with only ``valid`` keys."""
    if not isinstance(block, dict):
        raise PruneConfigError(name, block, f"a mapping with keys {list(valid)}")
    for key, value in block.items():
        if key not in valid:
            raise _unknown_key_error(name, key, value, valid)
    return dict(block)


@dataclass(frozen=True)
class PruneSpec:
    """A validated ``UnstructuredPrune`` block.

    Attributes mirror the YAML keys; ``gmp`` is None (no schedule) or a dict of the GMP keys
    with ``*_epochs`` and/or ``*_iterations`` per phase.
    """
    mode: str = 'ratio'
    ratio: float = 0.55
    threshold: float = 0.01
    prune_params_type: str = None
    local_sparsity: bool = False
    sparse_block: tuple = (1, 1)
    sparse_pattern: str = None
    prune_params: tuple = None
    skip_params: tuple = None
    gmp: dict = field(default=None, compare=False)
    name: str = 'UnstructuredPrune'
    gmp_key: str = field(default=None, compare=False)  # how errors name the GMP fields

    @property
    def _gmp_prefix(self):
        return self.gmp_key or f"{self.name}.gmp"

    @classmethod
    def from_block(cls, block, name='UnstructuredPrune', gmp_key=None):
        """Validate a config block (a dict) and return a spec.

        Every value is type-checked before it is compared with anything, the plain fields
        before the ``gmp`` sub-block (whose ``initial_ratio`` is bounded by ``ratio``).

        Args:
            block: The mapping under ``UnstructuredPrune:`` (None: all defaults).
            name: The key the block sits under, for messages.
            gmp_key: How messages name the GMP fields (default ``<name>.gmp``).

        Raises:
            PruneConfigError: a missing block, an unknown key (with the closest valid one) or
                a bad value, naming the full key (``UnstructuredPrune.gmp.initial_ratio``).

        Example:
            >>> PruneSpec.from_block({'ratio': 0.75, 'prune_params_type': 'conv1x1_only'}).ratio
            0.75
        """
        values = _check_keys(name, {} if block is None else block, BLOCK_KEYS)
        gmp = values.pop('gmp', None)
        spec = cls(name=name, gmp_key=gmp_key, **values)
        spec.check()  # the raw values, so messages show what the user wrote
        spec = replace(spec, **{key: tuple(values[key]) for key in
                                ('sparse_block', 'prune_params', 'skip_params')
                                if isinstance(values.get(key), list)})
        return replace(spec, gmp=spec._validate_gmp(gmp))

    @classmethod
    def from_ppdet_block(cls, block, name='UnstructuredPruner'):
        """Read PaddleDetection's built-in ``UnstructuredPruner`` block (always GMP, local).

        Errors name the key as ppdet spells it: ``UnstructuredPruner.pruning_steps``.
        """
        block = _check_keys(name, block, PPDET_BUILTIN_KEYS)
        missing = [k for k in PPDET_BUILTIN_KEYS if k not in block and k != 'prune_params_type']
        if missing:
            raise PruneConfigError(f"{name}.{missing[0]}", None, "a value (it is required)")
        gmp = {k: block[k] for k in ('stable_epochs', 'pruning_epochs', 'tunning_epochs',
                                     'pruning_steps', 'initial_ratio')}
        return cls.from_block({'mode': 'ratio', 'ratio': block['ratio'], 'local_sparsity': True,
                               'prune_params_type': block.get('prune_params_type'),
                               'gmp': gmp}, name=name, gmp_key=name)

    def _validate_gmp(self, gmp):
        if gmp is None:
            return None
        prefix = self._gmp_prefix
        if not isinstance(gmp, dict):
            raise PruneConfigError(prefix, gmp, f"a mapping with keys {list(GMP_BLOCK_KEYS)}")
        out = {}
        for written, value in gmp.items():
            key = _GMP_ALIASES.get(written, written) if isinstance(written, str) else written
            if key not in GMP_BLOCK_KEYS:
                raise _unknown_key_error(prefix, key, value, GMP_BLOCK_KEYS)
            if key in out:  # tuning_epochs and tunning_epochs both given
                raise PruneConfigError(f"{prefix}.{written}", value,
                                       f"no value: {key} is already set (use one)")
            out[key] = value
        if self.mode != 'ratio':
            raise PruneConfigError(f"{self.name}.mode", self.mode, "'ratio' when gmp is set")
        if self.sparse_pattern is not None:
            raise PruneConfigError(f"{self.name}.sparse_pattern", self.sparse_pattern,
                                   "null when gmp is set (an n:m pattern fixes the ratio)")
        for phase in GMP_PHASES:
            given = [f"{phase}_{u}" for u in ('epochs', 'iterations') if f"{phase}_{u}" in out]
            if len(given) == 2:
                raise PruneConfigError(f"{prefix}.{given[1]}", out[given[1]],
                                       f"no value: {given[0]} is already set (use one)")
            if not given:
                if phase == 'stable':
                    out['stable_iterations'] = 0
                    continue
                raise PruneConfigError(f"{prefix}.{phase}_epochs", None,
                                       f"a value ({phase}_epochs or {phase}_iterations)")
            check_int(f"{prefix}.{given[0]}", out[given[0]])
        if 'pruning_steps' not in out:
            raise PruneConfigError(f"{prefix}.pruning_steps", None, "an int >= 1 (it is required)")
        check_int(f"{prefix}.pruning_steps", out['pruning_steps'], minimum=1)
        out['initial_ratio'] = check_initial_ratio(f"{prefix}.initial_ratio",
                                                   out.get('initial_ratio', 0.0), self.ratio)
        return out

    def check(self):
        """Validate the values that do not need a model (the pruner re-checks the rest)."""
        prefix = self.name
        try:
            validate_pruner_args(self.mode, self.threshold, self.ratio, self.prune_params_type,
                                 None, self.local_sparsity, self.sparse_block,
                                 self.prune_params, self.skip_params)
            parse_sparse_pattern(self.sparse_pattern)
        except PruneConfigError as err:
            raise PruneConfigError(f"{prefix}.{err.key}", err.value, err.allowed) from None
        if self.sparse_pattern is not None and tuple(self.sparse_block) != (1, 1):
            raise PruneConfigError(f"{prefix}.sparse_block", list(self.sparse_block),
                                   "[1, 1] when sparse_pattern is set")

    def gmp_configs(self, steps_per_epoch=None):
        """The GMP ``configs`` dict in iterations, epochs converted with ``steps_per_epoch``.

        Raises:
            PruneConfigError: epoch fields without a known ``steps_per_epoch``, or an
                inconsistent schedule.
        """
        if self.gmp is None:
            return None
        configs = {'pruning_steps': self.gmp['pruning_steps'],
                   'initial_ratio': float(self.gmp['initial_ratio'])}
        for phase in GMP_PHASES:
            if f"{phase}_iterations" in self.gmp:
                configs[f"{phase}_iterations"] = self.gmp[f"{phase}_iterations"]
                continue
            if steps_per_epoch is None or steps_per_epoch < 1:
                raise PruneConfigError(f"{self._gmp_prefix}.{phase}_epochs",
                                       self.gmp[f"{phase}_epochs"],
                                       "iterations instead: the steps per epoch are unknown here")
            configs[f"{phase}_iterations"] = self.gmp[f"{phase}_epochs"] * int(steps_per_epoch)
        try:
            GMPSchedule.from_configs(self.ratio, configs)
        except PruneConfigError as err:
            key, value = err.key.split('.')[-1], err.value
            epochs_key = key.replace('_iterations', '_epochs')
            if key.endswith('_iterations') and epochs_key in self.gmp:
                key, value = epochs_key, self.gmp[epochs_key]  # name what the user wrote
            raise PruneConfigError(f"{self._gmp_prefix}.{key}", value,
                                   f"{err.allowed} (in iterations, {steps_per_epoch} steps/epoch)")
        return configs

    def build(self, model, steps_per_epoch=None, optimizer=None, skip_params_func=None):
        """Create the pruner for ``model``.

        Args:
            model: The ``paddle.nn.Layer``.
            steps_per_epoch: Iterations per epoch, to convert ``*_epochs`` GMP fields.
            optimizer: Its moments and master weights are masked too.
            skip_params_func: Optional user hook ``fn(model) -> set`` of names to skip.

        Returns:
            UnstructuredPruner or GMPUnstructuredPruner.
        """
        common = dict(prune_params_type=self.prune_params_type, skip_params_func=skip_params_func,
                      local_sparsity=self.local_sparsity, sparse_block=list(self.sparse_block),
                      prune_params=self.prune_params and list(self.prune_params),
                      skip_params=self.skip_params and list(self.skip_params),
                      optimizer=optimizer)
        if self.gmp is not None:
            return GMPUnstructuredPruner(model, ratio=self.ratio,
                                         configs=self.gmp_configs(steps_per_epoch), **common)
        return UnstructuredPruner(model, mode=self.mode, threshold=self.threshold,
                                  ratio=self.ratio, sparse_pattern=self.sparse_pattern, **common)
