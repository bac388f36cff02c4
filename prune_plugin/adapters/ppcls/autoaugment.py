"""Policy augmentations with PaddleClas's names and arguments, in the plugin's own code.

* ``AutoAugment`` (no arguments): the ImageNet policy of AutoAugment (Cubuk et al. 2019, 25
  sub-policies of two operations, each with a probability and a magnitude bin of 10).
* ``RandAugment {num_layers: 2, magnitude: 5, fillcolor}``: ``num_layers`` operations drawn
  uniformly, each at ``magnitude / 10`` of its range (Cubuk et al. 2020, PaddleClas's ranges).
* ``TimmAutoAugment {config_str: 'rand-m9-mstd0.5-inc1', interpolation, img_size, mean, prob}``:
  timm's RandAugment: sections ``m`` (magnitude 0-10), ``n`` (operations per image, default 2),
  ``mstd`` (Gaussian noise on the magnitude), ``inc1`` (the variants whose strength increases
  with the magnitude), ``w0`` (timm's weighted choice); every operation applies with
  probability 0.5. Other config strings (``auto-...``, ``augmix-...``) are refused by name.

All take and return HWC uint8 numpy images (PIL inside).
"""
import random
import re

import numpy as np
from PIL import Image, ImageEnhance, ImageOps

from ...core.errors import PruneConfigError

FILL = (128, 128, 128)
IMAGENET_MEAN = (0.485, 0.456, 0.406)


# ----- operations on PIL images ---------------------------------------------------------------
def _affine(img, matrix, fill, resample=Image.BICUBIC):
    return img.transform(img.size, Image.AFFINE, matrix, resample, fillcolor=fill)


def shear_x(img, v, fill=FILL, resample=Image.BICUBIC):
    return _affine(img, (1, v, 0, 0, 1, 0), fill, resample)


def shear_y(img, v, fill=FILL, resample=Image.BICUBIC):
    return _affine(img, (1, 0, 0, v, 1, 0), fill, resample)


def translate_x(img, pixels, fill=FILL, resample=Image.NEAREST):
    return _affine(img, (1, 0, pixels, 0, 1, 0), fill, resample)


def translate_y(img, pixels, fill=FILL, resample=Image.NEAREST):
    return _affine(img, (1, 0, 0, 0, 1, pixels), fill, resample)


def rotate(img, degrees, fill=FILL, resample=Image.NEAREST):
    return img.rotate(degrees, resample=resample, fillcolor=fill)


def posterize(img, bits):
    """Keep the ``bits`` most significant bits (0: black; Pillow >= 10 refuses 0 itself)."""
    bits = int(bits)
    if bits >= 8:
        return img
    if bits <= 0:
        return Image.new(img.mode, img.size)
    return ImageOps.posterize(img, bits)


def solarize_add(img, add, thresh=128):
    table = [min(255, i + add) if i < thresh else i for i in range(256)]
    return img.point(table * len(img.getbands()))


def enhance(kind):
    return lambda img, factor: getattr(ImageEnhance, kind)(img).enhance(factor)


def _sign():
    return random.choice((-1, 1))


def _as_pil(fn):
    """Wrap an operation on PIL images as one on HWC uint8 numpy images."""
    def call(self, img):
        if isinstance(img, np.ndarray):
            return np.asarray(fn(self, Image.fromarray(np.ascontiguousarray(img))))
        return fn(self, img)
    return call


# ----- AutoAugment and RandAugment (PaddleClas's magnitude ranges) ----------------------------
def _classic_ops(fill):
    """``{name: fn(img, magnitude)}``: magnitudes are absolute (from :data:`_RANGES`)."""
    return {
        'shearX': lambda img, m: shear_x(img, m * _sign(), fill),
        'shearY': lambda img, m: shear_y(img, m * _sign(), fill),
        'translateX': lambda img, m: translate_x(img, m * img.size[0] * _sign(), fill),
        'translateY': lambda img, m: translate_y(img, m * img.size[1] * _sign(), fill),
        'rotate': lambda img, m: rotate(img, m, FILL),
        'color': lambda img, m: enhance('Color')(img, 1 + m * _sign()),
        'posterize': lambda img, m: posterize(img, int(m)),
        'solarize': lambda img, m: ImageOps.solarize(img, m),
        'contrast': lambda img, m: enhance('Contrast')(img, 1 + m * _sign()),
        'sharpness': lambda img, m: enhance('Sharpness')(img, 1 + m * _sign()),
        'brightness': lambda img, m: enhance('Brightness')(img, 1 + m * _sign()),
        'autocontrast': lambda img, m: ImageOps.autocontrast(img),
        'equalize': lambda img, m: ImageOps.equalize(img),
        'invert': lambda img, m: ImageOps.invert(img),
    }


_RANGES = {  # magnitude at level 10 (AutoAugment bins are linspace(0, this, 10))
    'shearX': 0.3, 'shearY': 0.3, 'translateX': 150 / 331, 'translateY': 150 / 331,
    'rotate': 30, 'color': 0.9, 'contrast': 0.9, 'sharpness': 0.9, 'brightness': 0.9,
    'autocontrast': 0, 'equalize': 0, 'invert': 0,
}

# AutoAugment's ImageNet policy: (p1, op1, bin1, p2, op2, bin2)
IMAGENET_POLICY = (
    (0.4, 'posterize', 8, 0.6, 'rotate', 9), (0.6, 'solarize', 5, 0.6, 'autocontrast', 5),
    (0.8, 'equalize', 8, 0.6, 'equalize', 3), (0.6, 'posterize', 7, 0.6, 'posterize', 6),
    (0.4, 'equalize', 7, 0.2, 'solarize', 4), (0.4, 'equalize', 4, 0.8, 'rotate', 8),
    (0.6, 'solarize', 3, 0.6, 'equalize', 7), (0.8, 'posterize', 5, 1.0, 'equalize', 2),
    (0.2, 'rotate', 3, 0.6, 'solarize', 8), (0.6, 'equalize', 8, 0.4, 'posterize', 6),
    (0.8, 'rotate', 8, 0.4, 'color', 0), (0.4, 'rotate', 9, 0.6, 'equalize', 2),
    (0.0, 'equalize', 7, 0.8, 'equalize', 8), (0.6, 'invert', 4, 1.0, 'equalize', 8),
    (0.6, 'color', 4, 1.0, 'contrast', 8), (0.8, 'rotate', 8, 1.0, 'color', 2),
    (0.8, 'color', 8, 0.8, 'solarize', 7), (0.4, 'sharpness', 7, 0.6, 'invert', 8),
    (0.6, 'shearX', 5, 1.0, 'equalize', 9), (0.4, 'color', 0, 0.6, 'equalize', 3),
    (0.4, 'equalize', 7, 0.2, 'solarize', 4), (0.6, 'solarize', 5, 0.6, 'autocontrast', 5),
    (0.6, 'invert', 4, 1.0, 'equalize', 8), (0.6, 'color', 4, 1.0, 'contrast', 8),
    (0.8, 'equalize', 8, 0.6, 'equalize', 3),
)


def _bin_magnitude(op, index):
    """Bin ``index`` (0-9) of ``op``'s range, as AutoAugment's tables."""
    if op == 'posterize':
        return int(np.round(np.linspace(8, 4, 10))[index])
    if op == 'solarize':
        return float(np.linspace(256, 0, 10)[index])
    return float(np.linspace(0, _RANGES[op], 10)[index])


class AutoAugment:
    """AutoAugment's ImageNet policy: one of the 25 sub-policies, drawn per image."""

    def __init__(self, fillcolor=FILL):
        ops = _classic_ops(tuple(fillcolor))
        self.policies = [((p1, ops[o1], _bin_magnitude(o1, b1)), (p2, ops[o2],
                                                                  _bin_magnitude(o2, b2)))
                         for p1, o1, b1, p2, o2, b2 in IMAGENET_POLICY]

    @_as_pil
    def __call__(self, img):
        for probability, op, magnitude in random.choice(self.policies):
            if random.random() < probability:
                img = op(img, magnitude)
        return img


class RandAugment:
    """``num_layers`` operations, each drawn uniformly, at ``magnitude / 10`` of its range."""

    def __init__(self, num_layers=2, magnitude=5, fillcolor=FILL):
        level = magnitude / 10
        self.num_layers = int(num_layers)
        self.ops = _classic_ops(tuple(fillcolor))
        self.levels = {op: top * level for op, top in _RANGES.items()}
        self.levels.update(posterize=int(4.0 * level), solarize=256.0 * level)

    @_as_pil
    def __call__(self, img):
        for _ in range(self.num_layers):
            name = np.random.choice(list(self.levels))
            img = self.ops[name](img, self.levels[name])
        return img


# ----- timm's RandAugment (TimmAutoAugment) -----------------------------------------------------
def _timm_op_table():
    """``{name: (fn(img, arg, fill, resample), level -> arg)}``; level in [0, 10]."""
    def signed(scale):
        return lambda level, hp: level / 10 * scale * _sign()

    def factor(level, hp):
        return level / 10 * 1.8 + 0.1

    def factor_increasing(level, hp):
        return 1.0 + level / 10 * 0.9 * _sign()

    def keep(fn):
        return lambda img, arg, fill, resample: fn(img, arg)
    table = {
        'AutoContrast': (lambda img, arg, f, r: ImageOps.autocontrast(img), None),
        'Equalize': (lambda img, arg, f, r: ImageOps.equalize(img), None),
        'Invert': (lambda img, arg, f, r: ImageOps.invert(img), None),
        'Rotate': (rotate, signed(30.0)),
        'Posterize': (keep(posterize), lambda level, hp: int(level / 10 * 4)),
        'PosterizeIncreasing': (keep(posterize), lambda level, hp: 4 - int(level / 10 * 4)),
        'Solarize': (keep(ImageOps.solarize), lambda level, hp: int(level / 10 * 256)),
        'SolarizeIncreasing': (keep(ImageOps.solarize),
                               lambda level, hp: 256 - int(level / 10 * 256)),
        'SolarizeAdd': (keep(solarize_add), lambda level, hp: int(level / 10 * 110)),
        'ShearX': (shear_x, signed(0.3)), 'ShearY': (shear_y, signed(0.3)),
        'TranslateXRel': (lambda img, pct, f, r: translate_x(img, pct * img.size[0], f, r),
                          lambda level, hp: level / 10 * hp['translate_pct'] * _sign()),
        'TranslateYRel': (lambda img, pct, f, r: translate_y(img, pct * img.size[1], f, r),
                          lambda level, hp: level / 10 * hp['translate_pct'] * _sign()),
    }
    for kind in ('Color', 'Contrast', 'Brightness', 'Sharpness'):
        table[kind] = (keep(enhance(kind)), factor)
        table[f"{kind}Increasing"] = (keep(enhance(kind)), factor_increasing)
    return table


TIMM_OPS = _timm_op_table()
TIMM_RAND_OPS = ('AutoContrast', 'Equalize', 'Invert', 'Rotate', 'Posterize', 'Solarize',
                 'SolarizeAdd', 'Color', 'Contrast', 'Brightness', 'Sharpness', 'ShearX',
                 'ShearY', 'TranslateXRel', 'TranslateYRel')
TIMM_RAND_INCREASING_OPS = ('AutoContrast', 'Equalize', 'Invert', 'Rotate',
                            'PosterizeIncreasing', 'SolarizeIncreasing', 'SolarizeAdd',
                            'ColorIncreasing', 'ContrastIncreasing', 'BrightnessIncreasing',
                            'SharpnessIncreasing', 'ShearX', 'ShearY', 'TranslateXRel',
                            'TranslateYRel')
TIMM_CHOICE_WEIGHTS = {'Rotate': 0.3, 'ShearX': 0.2, 'ShearY': 0.2, 'TranslateXRel': 0.1,
                       'TranslateYRel': 0.1, 'Color': .025, 'Sharpness': 0.025,
                       'AutoContrast': 0.025, 'Solarize': .005, 'SolarizeAdd': .005,
                       'Contrast': .005, 'Brightness': .005, 'Equalize': .005, 'Posterize': 0,
                       'Invert': 0}
_RESAMPLE = {'bicubic': Image.BICUBIC, 'lanczos': Image.LANCZOS, 'hamming': Image.HAMMING}


def parse_rand_config(config_str):
    """``'rand-m9-mstd0.5-inc1'`` -> ``{'magnitude', 'num_layers', 'magnitude_std', 'ops',
    'weights'}``.

    Raises:
        PruneConfigError: not a ``rand-...`` string or an unknown section.
    """
    key = 'TimmAutoAugment.config_str'
    parts = str(config_str).split('-')
    if parts[0] != 'rand':
        raise PruneConfigError(key, config_str, "a RandAugment string 'rand-m<0-10>[-n<layers>]"
                                                "[-mstd<std>][-inc1][-w0]' (the plugin's "
                                                "trainer; a clone's Engine also builds "
                                                "'auto-...' and 'augmix-...')")
    out = {'magnitude': 10.0, 'num_layers': 2, 'magnitude_std': 0.0, 'ops': TIMM_RAND_OPS,
           'weights': None}
    for part in parts[1:]:
        match = re.fullmatch(r'([a-z]+)(\d.*)', part)
        if match is None:
            raise PruneConfigError(key, config_str, f"sections m, n, mstd, inc, w (got {part!r})")
        name, value = match.groups()
        try:
            if name == 'm':
                out['magnitude'] = float(int(value))
            elif name == 'n':
                out['num_layers'] = int(value)
            elif name == 'mstd':
                out['magnitude_std'] = float(value)
            elif name == 'inc':
                out['ops'] = TIMM_RAND_INCREASING_OPS if int(value) else TIMM_RAND_OPS
            elif name == 'w' and int(value) == 0:
                out['weights'] = TIMM_CHOICE_WEIGHTS
            else:
                raise ValueError(part)
        except ValueError:
            raise PruneConfigError(key, config_str, f"sections m<int>, n<int>, mstd<float>, "
                                                    f"inc<0|1>, w0 (got {part!r})") from None
    return out


class TimmAutoAugment:
    """timm's RandAugment as PaddleClas's ``TimmAutoAugment`` operator (applied with ``prob``)."""

    def __init__(self, prob=1.0, config_str='rand-m9-mstd0.5-inc1', interpolation='bicubic',
                 img_size=224, mean=IMAGENET_MEAN):
        parsed = parse_rand_config(config_str)
        size = min(img_size) if isinstance(img_size, (list, tuple)) else img_size
        self.prob = float(prob)
        self.hparams = {'translate_const': int(size * 0.45), 'translate_pct': 0.45}
        self.fill = tuple(min(255, round(255 * x)) for x in mean)
        self.resample = (_RESAMPLE.get(interpolation, Image.BILINEAR)
                         if interpolation and interpolation != 'random'
                         else (Image.BILINEAR, Image.BICUBIC))
        self.magnitude, self.magnitude_std = parsed['magnitude'], parsed['magnitude_std']
        self.num_layers = parsed['num_layers']
        self.ops = list(parsed['ops'])
        weights = parsed['weights']
        self.weights = (np.array([weights[o] for o in self.ops]) / sum(
            weights[o] for o in self.ops)) if weights else None

    def _apply(self, img, name):
        if random.random() > 0.5:
            return img
        fn, level_to_arg = TIMM_OPS[name]
        level = self.magnitude
        if self.magnitude_std > 0:
            level = random.gauss(level, self.magnitude_std)
        level = min(10.0, max(0.0, level))
        resample = (random.choice(self.resample) if isinstance(self.resample, tuple)
                    else self.resample)
        arg = level_to_arg(level, self.hparams) if level_to_arg else None
        return fn(img, arg, self.fill, resample)

    @_as_pil
    def __call__(self, img):
        if random.random() >= self.prob:
            return img
        chosen = np.random.choice(self.ops, self.num_layers, replace=self.weights is None,
                                  p=self.weights)
        for name in chosen:
            img = self._apply(img, name)
        return img


def policy_operators():
    """``{PaddleClas name: class}`` of the operators in this module."""
    return {'AutoAugment': AutoAugment, 'RandAugment': RandAugment,
            'TimmAutoAugment': TimmAutoAugment}
