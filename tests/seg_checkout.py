"""A PaddleSeg user's checkout, written in PaddleSeg's own style, for the tests to train from.

Nothing here is copied from PaddleSeg: the layout and the YAML idioms are the ones its clones
use (``configs/_base_`` files pulled in by ``_base_``, a model folder per architecture, dataset
paths relative to where the user runs, ``MixedLoss`` with nested losses, its usual
augmentations), and ``tools/train.py`` is a short script shaped like PaddleSeg's, with the
plugin's hook line. No folder is named after the suite::

    <root>/configs/_base_/portrait_tiny.yml              data, augmentations, optimizer, lr
    <root>/configs/pp_humanseg_lite/humanseg_lite_mixed.yml          model + MixedLoss(CE, Lovasz)
    <root>/configs/pp_humanseg_lite/humanseg_lite_mixed_sparse75.yml + slim block (GMP, 6 iters)
    <root>/configs/pp_humanseg_lite/humanseg_lite_dice_sparse75.yml  MixedLoss(CE, Dice) variant
    <root>/tools/train.py                                PaddleSeg-style script + attach_pruner
    <root>/data/portrait_tiny/{images,labels,train.txt,val.txt}      8 train / 4 val, 64x64
"""
import os
import textwrap

from prune_plugin.demo_data import ppseg_data

MIXED = 'configs/pp_humanseg_lite/humanseg_lite_mixed.yml'
MIXED_SPARSE = 'configs/pp_humanseg_lite/humanseg_lite_mixed_sparse75.yml'
DICE_SPARSE = 'configs/pp_humanseg_lite/humanseg_lite_dice_sparse75.yml'
# PP-HumanSeg-Lite: 40 1x1 conv weights, 195384 values (conv1x1_only prunes exactly these)
CONV1X1_PARAMS, CONV1X1_WEIGHTS = 40, 195384

FILES = {
    'configs/_base_/portrait_tiny.yml': """\
        batch_size: 2
        iters: 1000

        train_dataset:
          type: Dataset
          dataset_root: data/portrait_tiny
          train_path: data/portrait_tiny/train.txt
          num_classes: 2
          mode: train
          transforms:
            - type: ResizeStepScaling
              min_scale_factor: 0.75
              max_scale_factor: 1.25
              scale_step_size: 0.25
            - type: RandomPaddingCrop
              crop_size: [64, 64]
            - type: RandomHorizontalFlip
            - type: RandomDistort
              brightness_range: 0.4
              contrast_range: 0.4
              saturation_range: 0.4
            - type: Normalize

        val_dataset:
          type: Dataset
          dataset_root: data/portrait_tiny
          val_path: data/portrait_tiny/val.txt
          num_classes: 2
          mode: val
          transforms:
            - type: Normalize

        optimizer:
          type: sgd
          momentum: 0.9
          weight_decay: 0.0005

        lr_scheduler:
          type: PolynomialDecay
          learning_rate: 0.05
          end_lr: 0
          power: 0.9
        """,
    MIXED: """\
        _base_: '../_base_/portrait_tiny.yml'

        model:
          type: PPHumanSegLite
          align_corners: False
          num_classes: 2

        loss:
          types:
            - type: MixedLoss
              losses:
                - type: CrossEntropyLoss
                - type: LovaszSoftmaxLoss
              coef: [0.8, 0.2]
          coef: [1]
        """,
    MIXED_SPARSE: """\
        _base_: humanseg_lite_mixed.yml

        iters: 6

        # GMP: 15% at the first update, 67.5% at iteration 2, 75% from iteration 4 on
        slim: UnstructuredPrune
        UnstructuredPrune:
          mode: ratio
          ratio: 0.75
          prune_params_type: conv1x1_only
          gmp:
            stable_iterations: 0
            pruning_iterations: 4
            tunning_iterations: 2
            pruning_steps: 2
            initial_ratio: 0.15
        """,
    DICE_SPARSE: """\
        _base_: humanseg_lite_mixed_sparse75.yml

        loss:
          types:
            - type: MixedLoss
              losses:
                - type: CrossEntropyLoss
                  avg_non_ignore: False
                - type: DiceLoss
              coef: [1, 1]
          coef: [1]
        """,
    'tools/train.py': '''\
        """Train a segmentation model (PaddleSeg style), pruned by prune_plugin's hook line."""
        import argparse

        from paddleseg.core import train
        from paddleseg.cvlibs import Config, SegBuilder
        from paddleseg.utils import utils

        from prune_plugin.ppseg import attach_pruner


        def parse_args():
            parser = argparse.ArgumentParser(description='Model training')
            parser.add_argument('--config', type=str)
            parser.add_argument('--device', default='gpu', type=str)
            parser.add_argument('--save_dir', default='./output', type=str)
            parser.add_argument('--iters', type=int)
            parser.add_argument('--batch_size', type=int)
            parser.add_argument('--save_interval', default=1000, type=int)
            parser.add_argument('--log_iters', default=10, type=int)
            parser.add_argument('--resume_model', type=str)
            parser.add_argument('--do_eval', action='store_true')
            parser.add_argument('--use_ema', action='store_true')
            parser.add_argument('--seed', type=int)
            parser.add_argument('--opts', nargs='+')
            return parser.parse_args()


        def main(args):
            cfg = Config(args.config, iters=args.iters, batch_size=args.batch_size,
                         opts=args.opts)
            builder = SegBuilder(cfg)
            utils.set_seed(args.seed)
            utils.set_device(args.device)
            model = utils.convert_sync_batchnorm(builder.model, args.device)
            train_dataset = builder.train_dataset
            val_dataset = builder.val_dataset if args.do_eval else None
            optimizer = builder.optimizer
            attach_pruner(builder, model, optimizer, save_dir=args.save_dir,
                          resume_model=args.resume_model)
            loss = builder.loss
            train(model, train_dataset, val_dataset=val_dataset, optimizer=optimizer,
                  save_dir=args.save_dir, iters=cfg.iters, batch_size=cfg.batch_size,
                  resume_model=args.resume_model, save_interval=args.save_interval,
                  log_iters=args.log_iters, use_ema=args.use_ema, losses=loss,
                  test_config=cfg.test_config)


        if __name__ == '__main__':
            main(parse_args())
        ''',
}


def write_checkout(root, with_data=True):
    """Write the checkout under ``root`` (and its tiny dataset); returns ``root``."""
    for relative, text in FILES.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, 'w') as f:
            f.write(textwrap.dedent(text))
    if with_data:
        ppseg_data.ensure_portrait_dataset(os.path.join(root, 'data', 'portrait_tiny'),
                                           num_train=8, num_val=4, size=64)
    return root
