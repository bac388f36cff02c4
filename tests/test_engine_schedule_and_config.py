"""The GMP schedule equals PaddleSlim's; the YAML block and registry validate up front."""
import paddleslim  # installed by scripts/install.sh
import pytest

from engine_helpers import make_model
from prune_plugin import GMPSchedule, GMPUnstructuredPruner, PruneConfigError, UnstructuredPruner
from prune_plugin import gmp_ratio_at
from prune_plugin.config import spec_from_config
from prune_plugin.registry import RegistryError


@pytest.mark.parametrize('configs', [
    {'stable_iterations': 0, 'pruning_iterations': 110, 'tunning_iterations': 40,
     'pruning_steps': 10, 'initial_ratio': 0.15, 'resume_iteration': 0},
    {'stable_iterations': 33, 'pruning_iterations': 120, 'tunning_iterations': 60,
     'pruning_steps': 8, 'initial_ratio': 0.0, 'resume_iteration': 0},
])
def test_gmp_ratio_at_every_iteration_equals_paddleslim(configs):
    model = make_model()
    slim = paddleslim.GMPUnstructuredPruner(model, ratio=0.75, configs=dict(configs))
    stack = list(slim.ratios_stack)  # reversed: pop() gives the next ratio
    schedule = GMPSchedule.from_configs(0.75, configs)
    ratio = 0.0
    for it in range(configs['stable_iterations'] + configs['pruning_iterations']
                    + configs['tunning_iterations'] + 20):
        if it % slim.ratio_increment_period == 0:  # PaddleSlim's own step() logic
            ratio = stack.pop() if stack else 0.75
        assert gmp_ratio_at(it, schedule) == pytest.approx(ratio, abs=1e-12), it


def test_gmp_cubic_values():
    s = GMPSchedule(0.75, 0.15, 0, 1000, 0, 10)
    assert gmp_ratio_at(0, s) == 0.15
    assert gmp_ratio_at(99, s) == 0.15
    assert gmp_ratio_at(500, s) == pytest.approx(0.15 + 0.6 * (1 - 0.5 ** 3))
    assert gmp_ratio_at(1000, s) == 0.75


BLOCK = {'mode': 'ratio', 'ratio': 0.75, 'prune_params_type': 'conv1x1_only',
         'local_sparsity': True, 'sparse_block': [2, 1],
         'gmp': {'stable_epochs': 0, 'pruning_epochs': 3, 'tunning_epochs': 1,
                 'pruning_steps': 6, 'initial_ratio': 0.15}}


def test_block_builds_a_gmp_pruner_with_epochs_converted():
    spec = spec_from_config({'slim': 'UnstructuredPrune', 'UnstructuredPrune': BLOCK})
    pruner = spec.build(make_model(), steps_per_epoch=10)
    assert isinstance(pruner, GMPUnstructuredPruner)
    assert pruner.schedule.pruning_iterations == 30 and pruner.schedule.period == 5
    assert pruner.schedule.tunning_iterations == 10
    assert pruner.sparse_block == (2, 1) and pruner.local_sparsity
    assert [p.name for p in pruner.params] == ['pw1.weight', 'pw2.weight']


def test_iteration_fields_and_plain_ratio_and_threshold_blocks():
    spec = spec_from_config({'slim': 'UnstructuredPrune', 'UnstructuredPrune': {
        'ratio': 0.5, 'gmp': {'pruning_iterations': 20, 'tunning_iterations': 5,
                              'pruning_steps': 4}}})
    assert spec.build(make_model()).schedule.pruning_iterations == 20
    spec = spec_from_config({'slim': 'UnstructuredPrune',
                             'UnstructuredPrune': {'mode': 'threshold', 'threshold': 0.01}})
    pruner = spec.build(make_model())
    assert type(pruner) is UnstructuredPruner and pruner.mode == 'threshold'


def test_ppdet_builtin_block_runs_through_the_plugin():
    block = {'stable_epochs': 0, 'pruning_epochs': 2, 'tunning_epochs': 2, 'pruning_steps': 4,
             'ratio': 0.75, 'initial_ratio': 0.15, 'prune_params_type': 'conv1x1_only'}
    spec = spec_from_config({'slim': 'UnstructuredPruner', 'UnstructuredPruner': block})
    pruner = spec.build(make_model(), steps_per_epoch=6)
    assert isinstance(pruner, GMPUnstructuredPruner) and pruner.local_sparsity  # as ppdet's
    assert pruner.schedule.pruning_iterations == 12 and pruner.target_ratio == 0.75


BAD_BLOCKS = [
    ({'rato': 0.5}, 'UnstructuredPrune.rato', "did you mean 'ratio'?"),
    ({'ratio': 1.5}, 'UnstructuredPrune.ratio', 'a float in [0, 1)'),
    ({'mode': 'l1'}, 'UnstructuredPrune.mode', "one of ['ratio', 'threshold']"),
    ({'sparse_block': [0, 1]}, 'UnstructuredPrune.sparse_block', 'two positive ints'),
    ({'gmp': {'pruning_epochs': 3, 'tunning_epochs': 1, 'pruning_step': 4}},
     'UnstructuredPrune.gmp.pruning_step', "did you mean 'pruning_steps'?"),
    ({'gmp': {'pruning_epochs': 3, 'pruning_iterations': 3, 'tunning_epochs': 1,
              'pruning_steps': 1}}, 'UnstructuredPrune.gmp.pruning_iterations', 'already set'),
    ({'gmp': {'tunning_epochs': 1, 'pruning_steps': 1}}, 'UnstructuredPrune.gmp.pruning_epochs',
     'pruning_epochs or pruning_iterations'),
    ({'mode': 'threshold', 'gmp': {'pruning_epochs': 1, 'tunning_epochs': 1,
                                   'pruning_steps': 1}}, 'UnstructuredPrune.mode', "'ratio'"),
]


@pytest.mark.parametrize('block,key,message', BAD_BLOCKS)
def test_bad_blocks_fail_with_the_key_named(block, key, message):
    with pytest.raises(PruneConfigError) as err:
        spec_from_config({'slim': 'UnstructuredPrune', 'UnstructuredPrune': block})
    assert err.value.key == key
    assert message in str(err.value)


def test_unknown_slim_name_and_missing_block():
    with pytest.raises(RegistryError, match="did you mean 'UnstructuredPrune'"):
        spec_from_config({'slim': 'UnstructuredPrun'})
    with pytest.raises(PruneConfigError, match="'UnstructuredPrune:' block"):
        spec_from_config({'slim': 'UnstructuredPrune'})
    assert spec_from_config({'architecture': 'YOLOv3'}) is None


def test_gmp_schedule_inconsistent_with_real_steps_per_epoch_fails_at_build():
    spec = spec_from_config({'slim': 'UnstructuredPrune', 'UnstructuredPrune': {
        'ratio': 0.5, 'gmp': {'pruning_epochs': 1, 'tunning_epochs': 1, 'pruning_steps': 50}}})
    with pytest.raises(PruneConfigError) as err:
        spec.build(make_model(), steps_per_epoch=10)  # 10 iterations cannot hold 50 steps
    assert err.value.key == 'UnstructuredPrune.gmp.pruning_epochs'  # the key the user wrote
    assert err.value.value == 1
    assert '10 steps/epoch' in str(err.value)
