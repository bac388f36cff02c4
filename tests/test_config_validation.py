"""Every field of the prune blocks crossed with every kind of bad value: one PruneConfigError
naming the full key, the value and what is allowed, raised when the config is read.

Blocks: ``UnstructuredPrune`` (10 fields), its ``gmp`` sub-block (8) and ppdet's built-in
``UnstructuredPruner`` (7); bad values: text, list, dict, null, bool, negative, float where an
int belongs, NaN, inf, huge. Pairs where the value is valid for the field (null for an optional
field, a bool for ``local_sparsity``...) are listed in ``VALID`` and checked to be accepted.
The same matrix runs through config inheritance: a base block with ``gmp`` and a child changing
one field, merged by ppdet's ``dict_merge`` and paddleseg's ``merge_config_dicts``; and the
issue's case through each suite's YAML loader.
"""
import copy
import math

import pytest

from prune_plugin.config import spec_from_config
from prune_plugin.core.errors import PruneConfigError
from prune_plugin.core.validation import MAX_INT

BAD = {
    'text': 'high',
    'list': [0.5],
    'dict': {'a': 1},
    'null': None,
    'bool': True,
    'negative': -1,
    'float where int': 2.5,
    'nan': math.nan,
    'inf': math.inf,
    'huge': 2**63,
}
GMP = {'stable_epochs': 0, 'pruning_epochs': 2, 'tunning_epochs': 2, 'pruning_steps': 4,
       'initial_ratio': 0.15}
BLOCK = {'mode': 'ratio', 'ratio': 0.75, 'threshold': 0.01, 'prune_params_type': 'conv1x1_only',
         'local_sparsity': True, 'sparse_block': [1, 1], 'sparse_pattern': None,
         'prune_params': ['conv'], 'skip_params': ['fc'], 'gmp': GMP}
PPDET = {'stable_epochs': 0, 'pruning_epochs': 2, 'tunning_epochs': 2, 'pruning_steps': 4,
         'ratio': 0.75, 'initial_ratio': 0.15, 'prune_params_type': 'conv1x1_only'}
GMP_FIELDS = ('stable_epochs', 'stable_iterations', 'pruning_epochs', 'pruning_iterations',
              'tunning_epochs', 'tunning_iterations', 'pruning_steps', 'initial_ratio')
FIELDS = ([('UnstructuredPrune', f) for f in BLOCK]
          + [('UnstructuredPrune.gmp', f) for f in GMP_FIELDS]
          + [('UnstructuredPruner', f) for f in PPDET])
VALID_VALUE = dict(BLOCK, **GMP, stable_iterations=0, pruning_iterations=20,
                   tunning_iterations=20)  # ppdet's keys have the same valid values
# (block, field) -> the kinds of BAD that are valid values for it
VALID = {
    ('UnstructuredPrune', 'threshold'): {'float where int', 'huge'},  # any finite float >= 0
    ('UnstructuredPrune', 'prune_params_type'): {'null'},
    ('UnstructuredPrune', 'local_sparsity'): {'bool'},
    ('UnstructuredPrune', 'sparse_pattern'): {'null'},
    ('UnstructuredPrune', 'prune_params'): {'null'},
    ('UnstructuredPrune', 'skip_params'): {'null'},
    ('UnstructuredPrune', 'gmp'): {'null'},
    ('UnstructuredPruner', 'prune_params_type'): {'null'},
}
# a dict under gmp is read key by key: its unknown key is what the error names
KEY_NAMED = {('UnstructuredPrune', 'gmp', 'dict'): ('UnstructuredPrune.gmp.a', 1)}
CASES = [(block, field, kind) for block, field in FIELDS for kind in BAD
         if kind not in VALID.get((block, field), ())]
ACCEPTED = [(block, field, kind) for (block, field), kinds in VALID.items()
            for kind in sorted(kinds)]  # (sorted: every test worker collects one order)


def expected_key_and_value(block, field, kind):
    return KEY_NAMED.get((block, field, kind), (f"{block}.{field}", BAD[kind]))


def config_with(block, field, value):
    """A whole config whose ``block.field`` is ``value`` (the rest valid)."""
    if block == 'UnstructuredPruner':
        return {'slim': 'UnstructuredPruner', 'UnstructuredPruner': dict(PPDET, **{field: value})}
    prune = copy.deepcopy(BLOCK)
    if block == 'UnstructuredPrune.gmp':
        gmp = prune['gmp']
        if field.endswith('_iterations'):  # one of epochs / iterations per phase
            del gmp[field.replace('_iterations', '_epochs')]
        gmp[field] = value
    else:
        prune[field] = value
    return {'slim': 'UnstructuredPrune', 'UnstructuredPrune': prune}


def assert_names_key_and_value(err, key, value):
    assert type(err) is PruneConfigError and err.key == key
    assert str(err).startswith(f"{key}={value!r} is not allowed: expected ")
    assert '\n' not in str(err)


def test_the_matrix_covers_every_field_and_kind():
    assert (len(FIELDS), len(BAD), len(CASES), len(ACCEPTED)) == (25, 10, 241, 9)
    assert len(CASES) + len(ACCEPTED) == len(FIELDS) * len(BAD)


@pytest.mark.parametrize('block,field,kind', CASES)
def test_a_bad_value_names_the_full_key(block, field, kind):
    with pytest.raises(PruneConfigError) as err:
        spec_from_config(config_with(block, field, BAD[kind]))
    assert_names_key_and_value(err.value, *expected_key_and_value(block, field, kind))


@pytest.mark.parametrize('block,field,kind', ACCEPTED)
def test_values_that_are_valid_for_the_field_are_accepted(block, field, kind):
    spec = spec_from_config(config_with(block, field, BAD[kind]))
    assert getattr(spec, field) == BAD[kind]


# ----- inheritance: a base with the whole block, a child that changes one field --------------
def _ppdet_merge(base, child):
    from ppdet.core.workspace import dict_merge
    return dict_merge(copy.deepcopy(base), copy.deepcopy(child))


def _paddleseg_merge(base, child):
    from paddleseg.cvlibs.config import merge_config_dicts
    return merge_config_dicts(copy.deepcopy(child), copy.deepcopy(base))


MERGES = {'ppdet dict_merge': _ppdet_merge, 'paddleseg merge_config_dicts': _paddleseg_merge}


def child_changing(block, field, value):
    """The child config: only ``block.field`` (nested where the field is)."""
    if block == 'UnstructuredPruner':
        return {'UnstructuredPruner': {field: value}}
    if block == 'UnstructuredPrune.gmp':
        return {'UnstructuredPrune': {'gmp': {field: value}}}
    return {'UnstructuredPrune': {field: value}}


# paddleseg's merge_config_dicts fails itself (AttributeError) on a mapping over a plain value,
# before any plugin code sees the config: those pairs cannot reach the plugin through it
INHERITED = [(merge, *case) for merge in sorted(MERGES) for case in CASES
             if not (merge.startswith('paddleseg') and case[2] == 'dict'
                     and case[1] != 'gmp')]


def test_the_inheritance_matrix_size():
    assert len(INHERITED) == 2 * len(CASES) - 24  # 24 fields take no mapping


@pytest.mark.parametrize('merge,block,field,kind', INHERITED)
def test_a_child_config_with_one_bad_field_names_it(merge, block, field, kind):
    base = config_with(block, field, VALID_VALUE[field])
    merged = MERGES[merge](base, child_changing(block, field, BAD[kind]))
    if block == 'UnstructuredPrune.gmp':  # the rest of the base's gmp block is still there
        others = [{k: v for k, v in cfg['UnstructuredPrune']['gmp'].items() if k != field}
                  for cfg in (merged, base)]
        assert others[0] == others[1] and len(others[0]) == 4
    with pytest.raises(PruneConfigError) as err:
        spec_from_config(merged)
    assert_names_key_and_value(err.value, *expected_key_and_value(block, field, kind))


def test_the_issue_case_through_each_suite_yaml_loader(tmp_path):
    """Base with gmp, child with ``ratio: high``: ppdet's and paddleseg's own loaders."""
    (tmp_path / 'base.yml').write_text(
        "slim: UnstructuredPrune\nUnstructuredPrune:\n  mode: ratio\n  ratio: 0.75\n"
        "  gmp: {pruning_epochs: 2, tunning_epochs: 2, pruning_steps: 4, initial_ratio: 0.15}\n")
    (tmp_path / 'ppdet.yml').write_text("_BASE_: [base.yml]\nUnstructuredPrune: {ratio: high}\n")
    (tmp_path / 'seg.yml').write_text("_base_: base.yml\nUnstructuredPrune: {threshold: 1e-3}\n")
    from paddleseg.cvlibs.config import parse_from_yaml
    from ppdet.core import workspace
    before = set(workspace.global_config)
    try:  # ppdet merges the first base into its global config: take the keys out again
        loaded = workspace._load_config_with_base(str(tmp_path / 'ppdet.yml'))
        ppdet_cfg = {key: copy.deepcopy(loaded[key]) for key in ('slim', 'UnstructuredPrune')}
    finally:
        for key in set(workspace.global_config) - before:
            del workspace.global_config[key]
    assert ppdet_cfg['UnstructuredPrune']['gmp']['pruning_steps'] == 4  # merged, not replaced
    with pytest.raises(PruneConfigError) as err:
        spec_from_config(ppdet_cfg)
    assert str(err.value) == "UnstructuredPrune.ratio='high' is not allowed: expected a float " \
                             "in [0, 1)"
    with pytest.raises(PruneConfigError) as err:
        spec_from_config(parse_from_yaml(str(tmp_path / 'seg.yml')))
    assert str(err.value) == (
        "UnstructuredPrune.threshold='1e-3' is not allowed: expected a float >= 0 (a number, "
        "not text: PyYAML reads 1e-3 as text; write 1.0e-3)")


# ----- messages of the checks behind the matrix ----------------------------------------------
@pytest.mark.parametrize('block,key,message', [
    ({'ratio': 'high', 'gmp': GMP}, 'UnstructuredPrune.ratio',
     "UnstructuredPrune.ratio='high' is not allowed: expected a float in [0, 1)"),
    ({'gmp': dict(GMP, pruning_steps=2**31)}, 'UnstructuredPrune.gmp.pruning_steps',
     f"UnstructuredPrune.gmp.pruning_steps=2147483648 is not allowed: expected an int in "
     f"[1, {MAX_INT}]"),
    ({'gmp': dict(GMP, initial_ratio=0.9), 'ratio': 0.75}, 'UnstructuredPrune.gmp.initial_ratio',
     "UnstructuredPrune.gmp.initial_ratio=0.9 is not allowed: expected a float in "
     "[0, ratio=0.75]"),
    ({'prune_params': 'conv'}, 'UnstructuredPrune.prune_params',  # not 4 patterns c, o, n, v
     "UnstructuredPrune.prune_params='conv' is not allowed: expected a list of regular "
     "expressions (strings)"),
    ({'sparse_block': 5}, 'UnstructuredPrune.sparse_block',
     f"UnstructuredPrune.sparse_block=5 is not allowed: expected two positive ints [m, n] (at "
     f"most {MAX_INT}), e.g. [1, 1] or [2, 1]"),
    ({'threshold': 10**400, 'mode': 'threshold'}, 'UnstructuredPrune.threshold', None),
    ({'sparse_pattern': '\u00b2:4'}, 'UnstructuredPrune.sparse_pattern',
     f"UnstructuredPrune.sparse_pattern='\u00b2:4' is not allowed: expected a string 'n:m' with "
     f"ints 0 < n < m <= {MAX_INT}, e.g. '2:4'"),
    ({'ratio': 'nan'}, 'UnstructuredPrune.ratio',  # no PyYAML hint: text, but no number
     "UnstructuredPrune.ratio='nan' is not allowed: expected a float in [0, 1)"),
    ({7: 1}, 'UnstructuredPrune.7', None),
    ({'gmp': dict(GMP, tuning_epochs=2, tunning_epochs=None)}, None, None),
])
def test_messages(block, key, message):
    if key is None:  # the alias and the real key both set: 'already set'
        with pytest.raises(PruneConfigError, match='tunning_epochs is already set'):
            spec_from_config({'slim': 'UnstructuredPrune', 'UnstructuredPrune': block})
        return
    with pytest.raises(PruneConfigError) as err:
        spec_from_config({'slim': 'UnstructuredPrune', 'UnstructuredPrune': block})
    assert err.value.key == key
    if message is not None:
        assert str(err.value) == message


def test_ppdet_builtin_block_errors_name_ppdet_keys_at_build_too():
    spec = spec_from_config({'slim': 'UnstructuredPruner',
                             'UnstructuredPruner': dict(PPDET, pruning_epochs=1,
                                                        pruning_steps=50)})
    from engine_helpers import make_model
    with pytest.raises(PruneConfigError) as err:
        spec.build(make_model(), steps_per_epoch=10)  # 10 iterations cannot hold 50 steps
    assert err.value.key == 'UnstructuredPruner.pruning_epochs'
    with pytest.raises(PruneConfigError) as err:
        spec_from_config({'slim': 'UnstructuredPruner',
                          'UnstructuredPruner': dict(PPDET, pruning_epochs=2**30)}).build(
            make_model(), steps_per_epoch=10)  # 2**30 epochs x 10 steps > 2**31 - 1 iterations
    assert (err.value.key, err.value.value) == ('UnstructuredPruner.pruning_epochs', 2**30)
