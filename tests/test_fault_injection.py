"""The short CI variant of benchmarks/fault_injection.py: per suite, an uninterrupted demo run,
then 2 real SIGKILLs (between the weights and the ``.pdprune`` state of a checkpoint, and in the
middle of writing a ``.pdparams``), a resume from the newest checkpoint, and the comparison.
No kill may be lost: each resume either ends with the reference's masks and schedule or stops
with exit 2 and one line naming the checkpoint's file."""
import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchmarks.fault_injection import (DEMOS, differences, kill_plan, load_weights, masks,
                                        run_suite)
from prune_plugin.checkpoint_guard import TornCheckpointError, check_checkpoint, write_state_file
from prune_plugin.demo_data import data_root

# ppdet prunes each 1x1 conv to round(0.75 n) (local_sparsity); paddleseg and PaddleClas prune
# round(0.75 N) of all 1x1 weights together.
LOCAL = {'ppdet': True, 'ppseg': False, 'ppcls': False}
FINAL_ITERATION = {'ppdet': 6, 'ppseg': 12, 'ppcls': 15}


@pytest.mark.parametrize('suite', ['ppdet', 'ppseg', 'ppcls'])
def test_kills_between_weights_and_state_and_mid_write_are_never_lost(suite, tmp_path):
    rows, reference = run_suite(suite, 2, 0, str(tmp_path), data_root(),
                                kinds=('after_weights', 'during_weights'), log=lambda line: None)
    # the reference run: exact sparsity at the end of the schedule
    assert reference['state']['iteration'] == FINAL_ITERATION[suite]
    if LOCAL[suite]:
        assert reference['zeros'] == sum(round(0.75 * m.size) for m in reference['masks'].values())
    else:
        assert reference['zeros'] == round(0.75 * reference['size'])
    assert [r['kind'] for r in rows] == ['after_weights', 'during_weights']
    assert [r for r in rows if r['outcome'] == 'lost'] == []
    for row in rows:
        if row['outcome'] == 'refused clearly':
            assert row['detail'].startswith('error: ') and '\n' not in row['detail']
            assert row['checkpoint'].split('/')[-1] in row['detail']


def test_the_plan_starts_between_weights_and_state():
    assert kill_plan(3) == ['after_weights', 'random', 'step']
    assert kill_plan(2, ('after_weights', 'during_weights')) == ['after_weights', 'during_weights']


def test_differences_name_a_changed_mask_and_a_wrong_schedule():
    import numpy as np
    a = {'masks': {'w': np.array([True, False])}, 'state': {'iteration': 6, 'sparsity': 0.75}}
    b = {'masks': {'w': np.array([False, False])}, 'state': {'iteration': 4, 'sparsity': 0.75}}
    assert differences(a, a) == []
    assert differences(a, b) == ["state {'iteration': 4, 'sparsity': 0.75} != "
                                 "{'iteration': 6, 'sparsity': 0.75}",
                                 'masks differ in 1 parameters (w)']


def _checkpoint(tmp_path):
    import paddle
    prefix = str(tmp_path / 'epoch_1')
    paddle.save({'conv.w': paddle.to_tensor([[0.0, 1.0]])}, prefix + '.pdparams')
    paddle.save({'m': paddle.to_tensor([1.0])}, prefix + '.pdopt')
    write_state_file(prefix + '.pdprune', {'iteration': 5}, [prefix + '.pdparams',
                                                              prefix + '.pdopt'])
    return prefix


def test_a_complete_checkpoint_passes_and_its_state_keeps_the_iteration(tmp_path):
    prefix = _checkpoint(tmp_path)
    state = check_checkpoint(prefix + '.pdprune', [prefix + '.pdparams', prefix + '.pdopt'])
    assert state['iteration'] == 5 and sorted(state['files']) == ['.pdopt', '.pdparams']
    assert masks(load_weights(prefix + '.pdparams')) == {}      # 2-D: not a 1x1 conv
    assert sorted(os.listdir(tmp_path)) == ['epoch_1.pdopt', 'epoch_1.pdparams',
                                            'epoch_1.pdprune']  # no temporary file left


@pytest.mark.parametrize('damage, named, says', [
    ('truncate', 'epoch_1.pdparams', 'is not the file epoch_1.pdprune was written with'),
    ('rewrite', 'epoch_1.pdopt', 'is not the file epoch_1.pdprune was written with'),
    ('remove', 'epoch_1.pdopt', 'missing beside epoch_1.pdparams, epoch_1.pdprune'),
    ('no_state_truncated', 'epoch_1.pdparams', 'not a complete file (UnpicklingError'),
    ('no_state_json_cut', 'epoch_1.pdstates', 'not a complete file (JSONDecodeError'),
    ('no_state', 'epoch_1.pdprune', 'missing: the pruner state (iteration)'),
])
def test_a_torn_checkpoint_is_refused_in_one_line_naming_the_file(tmp_path, damage, named, says):
    import paddle
    prefix = _checkpoint(tmp_path)
    if damage in ('truncate', 'no_state_truncated'):
        with open(prefix + '.pdparams', 'r+b') as f:
            f.truncate(os.path.getsize(prefix + '.pdparams') // 2)
    if damage == 'rewrite':
        paddle.save({'m': paddle.to_tensor([2.0])}, prefix + '.pdopt')
    if damage == 'remove':
        os.remove(prefix + '.pdopt')
    if damage == 'no_state_json_cut':
        (tmp_path / 'epoch_1.pdstates').write_text('{"epoch": 1, "best_')
    if damage.startswith('no_state'):
        os.remove(prefix + '.pdprune')
    with pytest.raises(TornCheckpointError) as err:
        check_checkpoint(prefix + '.pdprune', [prefix + '.pdparams', prefix + '.pdopt'],
                         [prefix + '.pdstates'], need_state=True)
    message = str(err.value)
    assert message.startswith(os.path.join(str(tmp_path), named) + ': ')
    assert says in message and '\n' not in message
    assert message.endswith('resume from the checkpoint before it')


def test_a_checkpoint_renamed_as_a_whole_still_matches_its_state(tmp_path):
    prefix = _checkpoint(tmp_path)
    for ext in ('pdparams', 'pdopt', 'pdprune'):
        os.rename(f"{prefix}.{ext}", tmp_path / f"0.{ext}")
    renamed = str(tmp_path / '0')
    assert check_checkpoint(renamed + '.pdprune', [renamed + '.pdparams', renamed + '.pdopt'],
                            need_state=True)['iteration'] == 5


def test_a_state_of_an_older_version_without_fingerprints_is_accepted(tmp_path):
    prefix = _checkpoint(tmp_path)
    with open(prefix + '.pdprune', 'w') as f:
        json.dump({'iteration': 5}, f)
    (tmp_path / 'epoch_1.pdstates').write_text('{"epoch": 1, "best_top1": 0.5}')  # JSON
    assert check_checkpoint(prefix + '.pdprune', [prefix + '.pdparams'],
                            [prefix + '.pdopt', prefix + '.pdstates']) == {'iteration': 5}


def test_every_demo_is_known():
    assert sorted(DEMOS) == ['ppcls', 'ppdet', 'ppseg']
