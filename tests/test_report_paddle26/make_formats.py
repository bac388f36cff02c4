"""Write the other pickles Paddle 2.6 writes into formats/ (run once with paddlepaddle 2.6.2, not in CI).

    python make_formats.py tests/test_report_paddle26/formats

Optimizer state with an LR scheduler (.pdopt), a state dict under protocol 2, a Tensor and a
DenseTensor nested outside a state dict (paddle.save's tuple / eval forms), numpy scalars as ppcls
writes them (.pdstates) and EMA weights (.pdema): tests/test_report_safe_formats.py reads each
without running code and compares with paddle.load.
"""
import os, sys
import numpy as np
import paddle

out = sys.argv[1]
os.makedirs(out, exist_ok=True)
paddle.seed(2)
net = paddle.nn.Sequential(paddle.nn.Conv2D(2, 4, 1), paddle.nn.BatchNorm2D(4), paddle.nn.Flatten(),
                           paddle.nn.Linear(4 * 3 * 3, 2))
opt = paddle.optimizer.AdamW(learning_rate=paddle.optimizer.lr.CosineAnnealingDecay(0.1, 10),
                             parameters=net.parameters())
net(paddle.randn([2, 2, 3, 3])).mean().backward()
opt.step()
opt.clear_grad()
opt._learning_rate.step()
paddle.save(opt.state_dict(), os.path.join(out, 'adamw.pdopt'))
paddle.save(net.state_dict(), os.path.join(out, 'protocol2.pdparams'), protocol=2)
paddle.save({k: v * 0.5 for k, v in net.state_dict().items()}, os.path.join(out, 'model.pdema'))
dense = net[0].weight.value().get_tensor()
paddle.save({'model': net.state_dict(), 'tensor': paddle.to_tensor([0.0, 1.0]), 'dense': [dense]},
            os.path.join(out, 'nested.pdparams'))
paddle.save({'epoch': 3, 'metric': np.float64(0.5)}, os.path.join(out, 'metric.pdstates'))
print(paddle.__version__, sorted(os.listdir(out)))
