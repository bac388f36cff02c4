"""PaddleClas's image operators, by PaddleClas's names and arguments, in the plugin's own code.

The plugin's trainer (no clone) reads ``DataLoader.*.dataset.transform_ops`` with these; a clone's
Engine builds its own. Images are HWC numpy arrays (uint8 until ``NormalizeImage``, float32
after); the dataset transposes to CHW at the end, as PaddleClas's ``CommonDataset`` does.

=====================  ======================================================================
operator               arguments (PaddleClas's)
=====================  ======================================================================
DecodeImage            to_np, to_rgb, channel_first, backend ('cv2' / 'pil')
ResizeImage            size | resize_short, interpolation, backend, return_numpy
CropImage              size (center crop)
RandCropImage          size, scale, ratio, interpolation (use_log_aspect, backend,
                       progress_size accepted)
RandFlipImage          flip_code (1 horizontal, 0 vertical, -1 both), with probability 1/2
NormalizeImage         scale ('1.0/255.0' allowed), mean, std, order, output_fp16, channel_num
ToCHWImage             -
ColorJitter            brightness, contrast, saturation, hue, prob
RandomErasing          EPSILON, sl, sh, r1, mean, attempt, use_log_aspect, mode
Cutout                 n_holes, length, fill_value ('none': a random colour per hole)
AutoAugment, RandAugment, TimmAutoAugment: :mod:`.autoaugment`
=====================  ======================================================================
"""
import math
import random
from fractions import Fraction

import cv2
import numpy as np
from PIL import Image

from ...core.errors import PruneConfigError

CV2_INTERPOLATION = {'nearest': cv2.INTER_NEAREST, 'bilinear': cv2.INTER_LINEAR,
                     'area': cv2.INTER_AREA, 'bicubic': cv2.INTER_CUBIC,
                     'lanczos': cv2.INTER_LANCZOS4, 'random': (cv2.INTER_LINEAR, cv2.INTER_CUBIC)}
PIL_INTERPOLATION = {'nearest': Image.NEAREST, 'bilinear': Image.BILINEAR,
                     'bicubic': Image.BICUBIC, 'box': Image.BOX, 'lanczos': Image.LANCZOS,
                     'hamming': Image.HAMMING, 'random': (Image.BILINEAR, Image.BICUBIC)}


def number(key, value):
    """``'1.0/255.0'`` (PaddleClas writes fractions as strings) or a plain number, as float.

    Raises:
        PruneConfigError: anything else (no ``eval`` of config strings).
    """
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):
        try:
            if '/' in value:
                num, den = value.split('/', 1)
                return float(Fraction(num.strip()) / Fraction(den.strip()))
            return float(value)
        except (ValueError, ZeroDivisionError):
            pass
    raise PruneConfigError(key, value, "a number or a fraction such as 1.0/255.0")


class Resizer:
    """Resize an HWC array to ``(width, height)`` with cv2 or PIL and a named interpolation."""

    def __init__(self, interpolation=None, backend='cv2'):
        self.backend = 'pil' if str(backend).lower() == 'pil' else 'cv2'
        table = PIL_INTERPOLATION if self.backend == 'pil' else CV2_INTERPOLATION
        if interpolation is not None and str(interpolation).lower() not in table:
            raise PruneConfigError('interpolation', interpolation, f"one of {sorted(table)}")
        default = Image.BILINEAR if self.backend == 'pil' else cv2.INTER_LINEAR
        self.method = table[str(interpolation).lower()] if interpolation else default

    def __call__(self, img, size):
        method = random.choice(self.method) if isinstance(self.method, tuple) else self.method
        if self.backend == 'pil':
            return np.asarray(Image.fromarray(img).resize(tuple(size), method))
        return cv2.resize(img, tuple(int(s) for s in size), interpolation=method)


class DecodeImage:
    """Read an image file into an HWC uint8 array (RGB when ``to_rgb``, else BGR)."""

    def __init__(self, to_np=True, to_rgb=True, channel_first=False, backend='cv2'):
        self.to_rgb = bool(to_rgb)
        self.channel_first = bool(channel_first)
        self.backend = 'pil' if str(backend).lower() == 'pil' else 'cv2'

    def __call__(self, path):
        if self.backend == 'pil':
            with Image.open(path) as image:
                img = np.asarray(image.convert('RGB'))[:, :, ::-1]
        else:
            img = cv2.imread(path, cv2.IMREAD_COLOR)
        if img is None:
            raise FileNotFoundError(f"cannot read image {path}")
        if self.to_rgb:
            img = img[:, :, ::-1]
        img = np.ascontiguousarray(img)
        return img.transpose((2, 0, 1)) if self.channel_first else img


class ResizeImage:
    """Resize to ``size`` (int or [w, h]) or so that the short side is ``resize_short``."""

    def __init__(self, size=None, resize_short=None, interpolation=None, backend='cv2',
                 return_numpy=True):
        if resize_short is not None and resize_short > 0:
            self.resize_short, self.size = int(resize_short), None
        elif size is not None:
            self.resize_short = None
            self.size = (size, size) if isinstance(size, int) else tuple(size)
        else:
            raise PruneConfigError('ResizeImage', None, "size or resize_short")
        self.resize = Resizer(interpolation, backend)

    def __call__(self, img):
        if self.size is not None:
            return self.resize(img, self.size)
        h, w = img.shape[:2]
        scale = self.resize_short / min(h, w)
        return self.resize(img, (int(round(w * scale)), int(round(h * scale))))


class CropImage:
    """Center crop to ``size`` (int or [w, h])."""

    def __init__(self, size):
        self.size = (size, size) if isinstance(size, int) else tuple(size)

    def __call__(self, img):
        w, h = self.size
        top, left = (img.shape[0] - h) // 2, (img.shape[1] - w) // 2
        return img[top:top + h, left:left + w]


class RandCropImage:
    """Random area / aspect crop resized to ``size`` (the Inception crop), PaddleClas's arguments.

    Sampled by ``paddle.vision.transforms.RandomResizedCrop`` (area uniform in ``scale``, aspect
    log-uniform in ``ratio``, 10 tries, then a centre crop): the plugin's demo is measured with
    it. PaddleClas samples the aspect uniformly unless ``use_log_aspect``; the crops have the
    same ranges. ``progress_size`` (progressive resizing) is not used.
    """

    def __init__(self, size, progress_size=None, scale=None, ratio=None, interpolation=None,
                 use_log_aspect=False, backend='cv2'):
        from paddle.vision.transforms import RandomResizedCrop

        size = (size, size) if isinstance(size, int) else tuple(size)
        method = str(interpolation or 'bilinear').lower()
        if method not in CV2_INTERPOLATION:
            raise PruneConfigError('RandCropImage.interpolation', interpolation,
                                   f"one of {sorted(CV2_INTERPOLATION)}")
        self.crop = RandomResizedCrop(size[::-1], scale=tuple(scale or (0.08, 1.0)),
                                      ratio=tuple(ratio or (3. / 4., 4. / 3.)),
                                      interpolation='bilinear' if method == 'random' else method)

    def __call__(self, img):
        return self.crop(img)


class RandFlipImage:
    """Flip with probability 1/2 (``flip_code`` as cv2.flip: 1, 0 or -1)."""

    def __init__(self, flip_code=1):
        if flip_code not in (-1, 0, 1):
            raise PruneConfigError('RandFlipImage.flip_code', flip_code, "one of [-1, 0, 1]")
        self.flip_code = flip_code

    def __call__(self, img):
        return cv2.flip(img, self.flip_code) if random.randint(0, 1) == 1 else img


class NormalizeImage:
    """``(img * scale - mean) / std`` as float32 (``order: 'chw'`` for CHW input).

    PaddleClas's default order is ``'chw'`` while its images are HWC at this point (stock
    configs say ``order: ''``); an HWC image given ``'chw'`` is normalized as HWC here instead
    of failing on the broadcast.
    """

    def __init__(self, scale=None, mean=None, std=None, order='chw', output_fp16=False,
                 channel_num=3):
        if channel_num not in (3, 4):
            raise PruneConfigError('NormalizeImage.channel_num', channel_num, "3 or 4")
        self.scale = np.float32(number('NormalizeImage.scale', scale)
                                if scale is not None else 1.0 / 255.0)
        shape = (3, 1, 1) if order == 'chw' else (1, 1, 3)
        self.order = order
        self.mean = np.array(mean if mean is not None else [0.485, 0.456, 0.406],
                             dtype='float32').reshape(shape)
        self.std = np.array(std if std is not None else [0.229, 0.224, 0.225],
                            dtype='float32').reshape(shape)
        self.channel_num = channel_num
        self.dtype = 'float16' if output_fp16 else 'float32'

    def __call__(self, img):
        img = np.asarray(img).astype('float32')
        channels = self.mean.size
        hwc = img.ndim == 3 and img.shape[-1] == channels and img.shape[0] != channels
        mean, std = ((self.mean.reshape(1, 1, -1), self.std.reshape(1, 1, -1)) if hwc
                     else (self.mean, self.std))
        img = (img * self.scale - mean) / std
        if self.channel_num == 4:
            axis = 0 if self.order == 'chw' else 2
            pad_shape = list(img.shape)
            pad_shape[axis] = 1
            img = np.concatenate([img, np.zeros(pad_shape, 'float32')], axis=axis)
        return img.astype(self.dtype)


class ToCHWImage:
    """HWC -> CHW."""

    def __call__(self, img):
        return np.asarray(img).transpose((2, 0, 1))


class ColorJitter:
    """Paddle's ``ColorJitter(brightness, contrast, saturation, hue)`` with probability ``prob``."""

    def __init__(self, prob=2, brightness=0, contrast=0, saturation=0, hue=0):
        from paddle.vision.transforms import ColorJitter as PaddleColorJitter

        self.prob = prob
        self.jitter = PaddleColorJitter(brightness, contrast, saturation, hue)

    def __call__(self, img):
        if np.random.random() < self.prob:
            img = np.asarray(self.jitter(Image.fromarray(np.ascontiguousarray(img))))
        return img


class RandomErasing:
    """Erase a random rectangle with probability ``EPSILON`` (Zhong et al. 2017).

    Area in ``[sl, sh]`` of the image, aspect in ``[r1, 1/r1]`` (log-uniform with
    ``use_log_aspect``), up to ``attempt`` tries; filled with ``mean`` (``mode: const``), one
    random colour (``rand``) or per-pixel noise (``pixel``).
    """

    def __init__(self, EPSILON=0.5, sl=0.02, sh=0.4, r1=0.3, mean=(0., 0., 0.), attempt=100,
                 use_log_aspect=False, mode='const'):
        if mode not in ('const', 'rand', 'pixel'):
            raise PruneConfigError('RandomErasing.mode', mode, "one of ['const', 'rand', 'pixel']")
        self.probability = number('RandomErasing.EPSILON', EPSILON)
        self.sl, self.sh = number('RandomErasing.sl', sl), number('RandomErasing.sh', sh)
        r1 = number('RandomErasing.r1', r1)
        self.use_log_aspect = bool(use_log_aspect)
        self.aspect = (math.log(r1), math.log(1 / r1)) if use_log_aspect else (r1, 1 / r1)
        self.attempt = int(attempt)
        self.mean = np.asarray(mean, dtype='float32')
        self.mode = mode

    def _fill(self, h, w, c):
        if self.mode == 'rand':
            return np.random.normal(size=(1, 1, c))
        if self.mode == 'pixel':
            return np.random.normal(size=(h, w, c))
        return self.mean[:c].reshape(1, 1, -1)

    def __call__(self, img):
        if random.random() > self.probability:
            return img
        img_h, img_w, channels = img.shape
        for _ in range(self.attempt):
            area = random.uniform(self.sl, self.sh) * img_h * img_w
            aspect = random.uniform(*self.aspect)
            aspect = math.exp(aspect) if self.use_log_aspect else aspect
            h, w = int(round(math.sqrt(area * aspect))), int(round(math.sqrt(area / aspect)))
            if w < img_w and h < img_h:
                top, left = random.randint(0, img_h - h), random.randint(0, img_w - w)
                img = np.array(img)
                img[top:top + h, left:left + w, :] = self._fill(h, w, channels)
                return img
        return img


class Cutout:
    """``n_holes`` squares of side ``length`` (clipped at the borders) set to ``fill_value``.

    ``fill_value: none`` (stock configs) fills each hole with a random colour, as PaddleClas.
    """

    def __init__(self, n_holes=1, length=112, fill_value=(0, 0, 0)):
        self.n_holes, self.length = int(n_holes), int(length)
        self.fill_value = None if fill_value in (None, 'none') else fill_value

    def __call__(self, img):
        img = np.array(img)
        h, w = img.shape[:2]
        for _ in range(self.n_holes):
            y, x = np.random.randint(h), np.random.randint(w)
            y1, y2 = np.clip([y - self.length // 2, y + self.length // 2], 0, h)
            x1, x2 = np.clip([x - self.length // 2, x + self.length // 2], 0, w)
            fill = self.fill_value
            if fill is None:
                fill = [random.randint(0, 255) for _ in range(img.shape[2] if img.ndim == 3
                                                              else 1)]
            img[y1:y2, x1:x2] = fill
        return img


def basic_operators():
    """``{PaddleClas name: class}`` of the operators in this module."""
    return {cls.__name__: cls for cls in (DecodeImage, ResizeImage, CropImage, RandCropImage,
                                          RandFlipImage, NormalizeImage, ToCHWImage,
                                          ColorJitter, RandomErasing, Cutout)}
