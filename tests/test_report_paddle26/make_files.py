"""Write the Paddle 2.6 files of this folder (run once with paddlepaddle 2.6.2, not in CI).

    python make_files.py tests/test_report_paddle26
"""
import json, os, sys
import numpy as np
import paddle

out = sys.argv[1]
os.makedirs(out, exist_ok=True)


class Tiny(paddle.nn.Layer):
    def __init__(self):
        super().__init__()
        self.stem = paddle.nn.Conv2D(4, 8, 3, padding=1)
        self.bn = paddle.nn.BatchNorm2D(8)
        self.dw = paddle.nn.Conv2D(8, 8, 3, padding=1, groups=8)
        self.pw = paddle.nn.Conv2D(8, 16, 1)
        self.up = paddle.nn.Conv2DTranspose(16, 8, 2, stride=2)
        self.fc = paddle.nn.Linear(8, 4)

    def forward(self, x):
        x = self.pw(self.dw(paddle.nn.functional.relu(self.bn(self.stem(x)))))
        x = self.up(x).mean(axis=[2, 3])
        return self.fc(x)


paddle.seed(1)
model = Tiny()
model.eval()
expected = {}
with paddle.no_grad():
    for name, p in model.named_parameters():
        w = p.numpy().copy()
        if w.ndim > 1:
            w.reshape(-1)[::3] = 0  # a third of every weight (rounded up)
        p.set_value(w)
        expected[name] = {'shape': list(w.shape), 'zeros': int(w.size - np.count_nonzero(w))}
paddle.save(model.state_dict(), os.path.join(out, 'tiny.pdparams'))
spec = [paddle.static.InputSpec([None, 4, 8, 8], 'float32', name='x')]
paddle.jit.save(model, os.path.join(out, 'export', 'model'), input_spec=spec)
json.dump({'paddle': paddle.__version__, 'params': expected}, open(os.path.join(out, 'expected.json'), 'w'),
          indent=1, sort_keys=True)
print(paddle.__version__, sorted(os.listdir(out)), sorted(os.listdir(os.path.join(out, 'export'))))
