"""PaddleClas adapter: real training on the digits data (MobileNetV1_x0_25, 5 steps/epoch)."""
import io
import os
from contextlib import redirect_stdout

import numpy as np
import paddle
import pytest

from prune_plugin.adapters.ppcls import main as ppcls
from prune_plugin.adapters.ppcls.config import load_config, validate_config
from prune_plugin.adapters.ppcls.trainer import setup_runtime, train
from prune_plugin.core.selection import is_conv1x1_shape
from prune_plugin.demo_data.ppcls_data import ensure_digits

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEMO = os.path.join(REPO, 'configs', 'ppcls', 'mobilenetv1_prune_demo.yml')
STEPS_PER_EPOCH = 5  # 320 training images, batch 64
NO_AUGMENT = ("[{DecodeImage: {to_rgb: true}}, {NormalizeImage: {scale: 1.0/255.0, "
              "mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}}]")
GMP_75 = ['UnstructuredPrune.gmp={stable_iterations: 0, pruning_iterations: 10, '
          'tunning_iterations: 5, pruning_steps: 5, initial_ratio: 0.15}']


@pytest.fixture(scope='module')
def lists(tmp_path_factory):
    """A 320-image train list and a 256-image val list over the generated digits data."""
    folder = ensure_digits()
    out = tmp_path_factory.mktemp('lists')
    for split, count in (('train', 320), ('val', 256)):
        with open(os.path.join(folder, f"{split}_list.txt")) as f:
            lines = f.readlines()[:count]
        with open(out / f"{split}.txt", 'w') as f:
            f.writelines(lines)
    return folder, out


def overrides_for(lists, out_dir, epochs, extra=()):
    folder, list_dir = lists
    return [f"Global.output_dir={out_dir}", f"Global.epochs={epochs}",
            'Global.compare_dense=False', 'Global.save_interval=1', 'Global.eval_interval=100',
            'Arch.name=MobileNetV1_x0_25',
            f"DataLoader.Train.dataset.image_root={folder}",
            f"DataLoader.Train.dataset.cls_label_path={list_dir / 'train.txt'}",
            f"DataLoader.Train.dataset.transform_ops={NO_AUGMENT}",
            'DataLoader.Train.sampler.shuffle=False',
            f"DataLoader.Eval.dataset.image_root={folder}",
            f"DataLoader.Eval.dataset.cls_label_path={list_dir / 'val.txt'}", *extra]


def run_training(overrides):
    """Train in this process as a fresh process would (parameter names restart)."""
    cfg = load_config(DEMO, overrides)
    spec = validate_config(cfg)
    setup_runtime(cfg)
    with paddle.utils.unique_name.guard():
        return train(cfg, spec), cfg


def plain_ppcls_model(prefix):
    """The checkpoint in a MobileNetV1_x0_25 built by paddleclas alone (no prune_plugin)."""
    from paddleclas.ppcls.arch import build_model

    model = build_model({'Arch': {'name': 'MobileNetV1_x0_25', 'class_num': 10}})
    missing, unexpected = model.set_state_dict(paddle.load(f"{prefix}.pdparams")) or ([], [])
    assert not missing and not unexpected
    return model


def array_digests(arrays):
    """Sorted (shape, sha1 of the bytes) of ``arrays``: equal lists = the same tensors."""
    import hashlib
    return sorted((tuple(a.shape), hashlib.sha1(np.ascontiguousarray(a).tobytes()).hexdigest())
                  for a in arrays)


def conv1x1_zeros(model):
    weights = [p for n, p in model.named_parameters() if is_conv1x1_shape(p.shape)]
    total = sum(int(np.prod(p.shape)) for p in weights)
    return sum(int((p.numpy() == 0).sum()) for p in weights), total


@pytest.fixture(scope='module')
def gmp_run(lists, tmp_path_factory):
    out = tmp_path_factory.mktemp('gmp')
    result, cfg = run_training(overrides_for(lists, out, 3, GMP_75))
    return result, cfg, out


def test_gmp_checkpoints_follow_schedule_and_load_without_plugin(gmp_run):
    result, _, _ = gmp_run
    pruner = result['pruner']
    assert pruner.iteration == 3 * STEPS_PER_EPOCH
    ckpt_dir = result['output_dir']
    for epoch in (1, 2, 3):
        prefix = os.path.join(ckpt_dir, f"epoch_{epoch}")
        zeros, total = conv1x1_zeros(plain_ppcls_model(prefix))
        ratio = pruner.ratio_at(epoch * STEPS_PER_EPOCH - 1)  # after the epoch's last update
        assert zeros == round(ratio * total), (epoch, ratio)
        with open(f"{prefix}.pdprune") as f:
            assert f.read().strip() == '{"iteration": %d}' % (epoch * STEPS_PER_EPOCH)
    assert pruner.ratio_at(4) == pytest.approx(0.15 + 0.6 * (1 - 0.6 ** 3))  # pruning step 2 of 5
    assert pruner.ratio_at(14) == 0.75
    assert result['total_sparse_conv1x1'] == pytest.approx(0.75, abs=1e-6)


def test_resume_continues_exactly(lists, gmp_run, tmp_path):
    straight, _, _ = gmp_run
    resume_from = os.path.join(straight['output_dir'], 'epoch_1')
    resumed, _ = run_training(overrides_for(lists, tmp_path, 3, GMP_75 + [
        f"Global.checkpoints={resume_from}"]))
    a, b = straight['pruner'], resumed['pruner']
    assert b.iteration == a.iteration == 3 * STEPS_PER_EPOCH
    for p in a.params:
        np.testing.assert_array_equal(a.mask_of(p.name), b.mask_of(p.name))
    wa = paddle.load(os.path.join(straight['output_dir'], 'epoch_3.pdparams'))
    wb = paddle.load(os.path.join(resumed['output_dir'], 'epoch_3.pdparams'))
    assert not os.path.exists(os.path.join(resumed['output_dir'], 'epoch_1.pdparams'))
    for name in wa:
        np.testing.assert_allclose(wa[name].numpy(), wb[name].numpy(), rtol=1e-4, atol=1e-5,
                                   err_msg=name)


def test_eval_and_export_cli_report_the_sparse_checkpoint(gmp_run, lists, tmp_path):
    result, _, _ = gmp_run
    prefix = os.path.join(result['output_dir'], 'latest')
    base = overrides_for(lists, tmp_path, 3, GMP_75)
    buf = io.StringIO()
    with redirect_stdout(buf), paddle.utils.unique_name.guard():
        assert ppcls.eval_main(['-c', DEMO, '-o', *base, f"Global.pretrained_model={prefix}"]) == 0
    line = buf.getvalue().strip().splitlines()[-1]
    assert f"top1 {result['top1']:.4f}" in line
    assert "total_sparse_conv1x1 0.7500" in line

    from prune_plugin.adapters.ppcls.export import export
    cfg = load_config(DEMO, base + [f"Global.pretrained_model={prefix}",
                                    f"Global.save_inference_dir={tmp_path / 'infer'}"])
    validate_config(cfg, 'export')
    with paddle.utils.unique_name.guard():
        exported = export(cfg)
    assert os.path.isfile(f"{exported['path']}.pdiparams")
    # the exported model itself, read back: every tensor is bit-identical to one of the
    # checkpoint's (one to one), so its zeros are the checkpoint's, position for position
    with paddle.utils.unique_name.guard():
        inference = paddle.jit.load(exported['path'])
    checkpoint = paddle.load(f"{prefix}.pdparams")
    assert array_digests(p.numpy() for p in inference.parameters()) == \
        array_digests(v.numpy() for v in checkpoint.values())
    exported_1x1 = [p.numpy() for p in inference.parameters() if is_conv1x1_shape(p.shape)]
    zeros = sum(int((w == 0).sum()) for w in exported_1x1)
    assert zeros == round(0.75 * sum(w.size for w in exported_1x1)) > 0


@pytest.mark.parametrize('mode', ['ratio', 'threshold'])
def test_ratio_and_threshold_modes_give_promised_sparsity(lists, tmp_path, mode):
    block = ('UnstructuredPrune={mode: ratio, ratio: 0.55}' if mode == 'ratio'
             else 'UnstructuredPrune={mode: threshold, threshold: 0.01}')
    result, _ = run_training(overrides_for(lists, tmp_path, 1,
                                           [block, 'Global.use_visualdl=True']))
    assert os.listdir(os.path.join(result['output_dir'], 'vdl'))  # hapi's VisualDL callback wrote
    pruner = result['pruner']
    state = paddle.load(os.path.join(result['output_dir'], 'epoch_1.pdparams'))
    weights = [state[p.name].numpy() for p in pruner.params]
    total = sum(w.size for w in weights)
    zeros = sum(int((w == 0).sum()) for w in weights)
    if mode == 'ratio':
        assert zeros == round(0.55 * total)
    else:
        nonzero = np.concatenate([np.abs(w[w != 0]) for w in weights])
        assert nonzero.min() >= 0.01
        assert zeros == sum(int((np.abs(w) < 0.01).sum()) for w in weights) > 0


def test_bad_config_fails_before_training_with_one_line(capsys):
    from prune_plugin.cli import run

    code = run('train', ['-c', DEMO, '-o', 'UnstructuredPrune.ratio=1.5'])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.count('\n') == 0
    assert 'UnstructuredPrune.ratio=1.5' in err and '[0, 1)' in err
    code = run('train', ['-c', DEMO, '-o', 'Optimizer.lr.name=Cosin'])
    assert code == 2 and "Optimizer.lr.name='Cosin'" in capsys.readouterr().err
    code = run('train', ['-c', DEMO, '-o', 'UnstructuredPrune.gmp.pruning_epoch=3'])
    assert code == 2 and "did you mean 'pruning_epochs'" in capsys.readouterr().err
