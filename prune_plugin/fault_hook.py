"""TEST HOOK (not for users): pause a training process at a named point so that
``benchmarks/fault_injection.py`` can SIGKILL it exactly there.

Inactive unless the environment asks for it; a normal run reads one environment variable at
start-up and at each checkpoint save (``after_weights``), and nothing else happens. Two
variables drive it::

    PRUNE_PLUGIN_FAULT_PAUSE=<point>:<n>   pause at the n-th time (1-based) <point> is reached
    PRUNE_PLUGIN_FAULT_PAUSE=count         pause nowhere; record every point reached
    PRUNE_PLUGIN_FAULT_MARK=<file>         a line "<point> <n> <pid>" is appended per hit
                                           (count) or once, when the process pauses
    PRUNE_PLUGIN_FAULT_CONTINUE=<file>     the paused process goes on once this file exists
                                           (to hold a run at a point, e.g. the lock tests)

Points (the same in the three suites):

    step            after the pruner's step (an optimizer update is done and masked)
    eval            right after a model is switched to evaluation mode (an evaluation starts)
    during_weights  a ``.pdparams`` file was written by ``paddle.save`` and is cut to half its
                    size before the pause: a kill there leaves a truncated weights file
    after_weights   the weights of a checkpoint are written, its ``.pdprune`` state is not yet
                    (called by :func:`prune_plugin.checkpoint_guard.write_state_file`)

A paused process sleeps until it is killed (or until the CONTINUE file exists).
"""
import os
import time

PAUSE_ENV = 'PRUNE_PLUGIN_FAULT_PAUSE'
MARK_ENV = 'PRUNE_PLUGIN_FAULT_MARK'
CONTINUE_ENV = 'PRUNE_PLUGIN_FAULT_CONTINUE'
POINTS = ('step', 'eval', 'during_weights', 'after_weights')

_hits = {}
_installed = False


def _wanted():
    spec = os.environ.get(PAUSE_ENV, '')
    if not spec:
        return None
    if spec == 'count':
        return ('count', 0)
    point, _, n = spec.partition(':')
    return (point, int(n) if n.isdigit() else 1)


def _mark(line):
    path = os.environ.get(MARK_ENV)
    if path:
        with open(path, 'a') as f:
            f.write(line + '\n')
            f.flush()
            os.fsync(f.fileno())


def pause_point(point, before_pause=None):
    """Count ``point``; when it is the hit the environment names, pause until killed.

    Args:
        point: One of :data:`POINTS`.
        before_pause: Called once right before pausing (e.g. to truncate a file).
    """
    wanted = _wanted()
    if wanted is None:
        return
    _hits[point] = _hits.get(point, 0) + 1
    if wanted[0] == 'count':
        _mark(f"{point} {_hits[point]} {os.getpid()}")
        return
    if wanted != (point, _hits[point]):
        return
    if before_pause is not None:
        before_pause()
    _mark(f"{point} {_hits[point]} {os.getpid()}")
    go_on = os.environ.get(CONTINUE_ENV)
    while not (go_on and os.path.exists(go_on)):
        time.sleep(0.05 if go_on else 60)


def install():
    """Wrap the step / eval / save points when :data:`PAUSE_ENV` is set (once per process)."""
    global _installed
    if _installed or _wanted() is None:
        return
    _installed = True
    import paddle

    from .core.pruner import UnstructuredPruner

    step = UnstructuredPruner.step

    def paused_step(self):
        step(self)
        pause_point('step')
    UnstructuredPruner.step = paused_step

    layer_eval = paddle.nn.Layer.eval

    def paused_eval(self):
        result = layer_eval(self)
        pause_point('eval')
        return result
    paddle.nn.Layer.eval = paused_eval

    save = paddle.save

    def paused_save(obj, path, *args, **kwargs):
        result = save(obj, path, *args, **kwargs)
        if isinstance(path, str) and path.endswith('.pdparams'):
            def cut():
                size = os.path.getsize(path)
                with open(path, 'r+b') as f:
                    f.truncate(size // 2)
                    os.fsync(f.fileno())
            pause_point('during_weights', cut)
        return result
    paddle.save = paused_save
