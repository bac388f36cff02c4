"""Static-graph pruning scenarios, run in a subprocess per IR; each prints its figures as JSON.

``python tests/static_scenarios.py`` runs every scenario on the IR the environment selects
(``FLAGS_enable_pir_api=0`` before paddle is imported: the legacy IR; unset: PIR) and prints one
JSON object ``{scenario: figures}``. ``tests/test_static_api.py`` runs it once per IR and asserts
the figures. Real paddle throughout: static programs, an executor, Momentum + L2 decay.
"""
import hashlib
import json
import os
import sys

import numpy as np
import paddle

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from engine_helpers import TinyNet  # noqa: E402

paddle.enable_static()

from prune_plugin import core  # noqa: E402
from prune_plugin.static import (GMPUnstructuredPruner, PruneConfigError,  # noqa: E402
                                 UnstructuredPruner)

PLACE = paddle.CPUPlace()
GMP_CONFIGS = {'stable_iterations': 0, 'pruning_iterations': 6, 'tunning_iterations': 2,
               'pruning_steps': 3, 'initial_ratio': 0.2}


class StaticNet:
    """TinyNet built as a static program with Momentum (0.9) + L2 decay, in its own scope."""

    def __init__(self, seed=0, optimizer='momentum'):
        paddle.seed(seed)
        self.main, self.startup = paddle.static.Program(), paddle.static.Program()
        with paddle.static.program_guard(self.main, self.startup):
            x = paddle.static.data('x', [None, 3, 8, 8], 'float32')
            y = paddle.static.data('y', [None, 1], 'int64')
            self.net = TinyNet()
            self.loss = paddle.nn.functional.cross_entropy(self.net(x), y)
            if optimizer == 'momentum':
                opt = paddle.optimizer.Momentum(0.05, momentum=0.9,
                                                weight_decay=paddle.regularizer.L2Decay(1e-3))
            else:
                opt = paddle.optimizer.Adam(0.01)
            opt.minimize(self.loss)
        self.exe = paddle.static.Executor(PLACE)
        # structured name (as in the dygraph TinyNet) <-> variable name
        self.var_of = {name: p.name for name, p in self.net.named_parameters()}
        self.structured_of = {v: k for k, v in self.var_of.items()}

    def new_scope(self, weights=None):
        scope = paddle.static.Scope()
        with paddle.static.scope_guard(scope):
            self.exe.run(self.startup)
        if weights is not None:
            restore(scope, weights)
        return scope

    def run(self, scope, batch):
        with paddle.static.scope_guard(scope):
            self.exe.run(self.main, feed=batch, fetch_list=[self.loss])


def batches(n, seed=0):
    rng = np.random.RandomState(seed)
    return [{'x': rng.randn(4, 3, 8, 8).astype('float32'),
             'y': rng.randint(0, 10, size=(4, 1)).astype('int64')} for _ in range(n)]


def array(scope, name):
    return np.array(scope.find_var(name).get_tensor())


def snapshot(scope):
    """Every initialized dense tensor of ``scope`` (weights, moments, learning rate)."""
    saved = {}
    for name in scope.local_var_names():
        try:
            tensor = scope.find_var(name).get_tensor()
        except Exception:
            continue
        if tensor._is_initialized():
            saved[name] = np.array(tensor)
    return saved


def restore(scope, saved):
    for name, value in saved.items():
        scope.var(name).get_tensor().set(value, PLACE)


def zeros(values):
    return int(values.size - np.count_nonzero(values))


def masks_digest(pruner):
    return hashlib.sha1(b''.join(pruner.mask_of(p.name).tobytes()
                                 for p in pruner.params)).hexdigest()


# ----- scenarios --------------------------------------------------------------------------------
def selection():
    net = StaticNet()
    scope = net.new_scope()
    names = lambda pruner: [net.structured_of[p.name] for p in pruner.params]  # noqa: E731
    hook = lambda program: {p.name for p in program.global_block().all_parameters()  # noqa: E731
                            if p.name != net.var_of['fc.weight']}
    try:  # Paddle 3.3's CompiledProgram takes legacy programs only
        compiled = paddle.static.CompiledProgram(net.main)
    except TypeError:
        compiled = None
    return {'default': names(UnstructuredPruner(net.main, 'ratio', scope=scope)),
            'conv1x1_only': names(UnstructuredPruner(net.main, 'ratio', scope=scope,
                                                     prune_params_type='conv1x1_only')),
            'skip_params_func': names(UnstructuredPruner(net.main, 'ratio', scope=scope,
                                                         skip_params_func=hook)),
            'compiled': compiled and names(UnstructuredPruner(compiled, 'ratio', scope=scope))}


def ratio_counts():
    net = StaticNet()
    figures = {}
    for local in (False, True):
        scope = net.new_scope()
        pruner = UnstructuredPruner(net.main, 'ratio', ratio=0.55, scope=scope,
                                    local_sparsity=local)
        net.run(scope, batches(1)[0])
        pruner.step()
        counts = [(zeros(array(scope, p.name)), int(np.prod(p.shape))) for p in pruner.params]
        figures['local' if local else 'global'] = counts
    return figures


def threshold_mode():
    net = StaticNet()
    scope = net.new_scope()
    pruner = UnstructuredPruner(net.main, 'threshold', threshold=0.1, scope=scope)
    net.run(scope, batches(1)[0])
    before = {p.name: array(scope, p.name) for p in pruner.params}
    pruner.step()
    return {'mask_mismatches': sum(int((pruner.mask_of(n) != (np.abs(w) >= 0.1)).sum())
                                   for n, w in before.items()),
            'zeros': sum(zeros(array(scope, n)) for n in before),
            'below_threshold': sum(int((np.abs(w) < 0.1).sum()) for w in before.values())}


def zeros_every_step():
    """Momentum + L2 decay move pruned weights every update; after each step() they are 0."""
    figures = {}
    for mode in ('ratio', 'threshold', 'gmp'):
        net = StaticNet()
        scope = net.new_scope()
        if mode == 'gmp':
            pruner = GMPUnstructuredPruner(net.main, ratio=0.6, scope=scope,
                                           configs=GMP_CONFIGS)
        else:
            pruner = UnstructuredPruner(net.main, mode, ratio=0.55, threshold=0.05, scope=scope)
        steps = []
        for i, batch in enumerate(batches(6)):
            net.run(scope, batch)
            moved = sum(int(np.count_nonzero(array(scope, p.name)[~pruner.mask_of(p.name)]))
                        for p in pruner.params)
            pruner.step()
            pruned = sum(int((~pruner.mask_of(p.name)).sum()) for p in pruner.params)
            nonzero_pruned = sum(
                int(np.count_nonzero(array(scope, p.name)[~pruner.mask_of(p.name)]))
                for p in pruner.params)
            velocity = sum(int(np.count_nonzero(
                array(scope, m)[~pruner.mask_of(p.name)]))
                for p in pruner.params for m in pruner.optimizer_variables()[p.name][0])
            steps.append({'pruned': pruned, 'nonzero_pruned': nonzero_pruned,
                          'moved_by_optimizer': moved, 'velocity_nonzero_at_pruned': velocity,
                          'event': pruner.mask_updates})
        total = sum(int(np.prod(p.shape)) for p in pruner.params)
        figures[mode] = {'steps': steps, 'total': total,
                         'moments': {net.structured_of[k]: v[0]
                                     for k, v in pruner.optimizer_variables().items()}}
    return figures


def resume():
    """GMP: 8 steps in one go == 3 steps, snapshot, a new scope and pruner, 5 more steps."""
    net = StaticNet()
    initial = snapshot(net.new_scope())
    data = batches(8, seed=3)
    scope = net.new_scope(initial)
    whole = GMPUnstructuredPruner(net.main, ratio=0.6, scope=scope, configs=GMP_CONFIGS)
    for batch in data:
        net.run(scope, batch)
        whole.step()
    first = net.new_scope(initial)
    pruner = GMPUnstructuredPruner(net.main, ratio=0.6, scope=first, configs=GMP_CONFIGS)
    for batch in data[:3]:
        net.run(first, batch)
        pruner.step()
    saved, state, saved_sparsity = snapshot(first), pruner.state_dict(), pruner.sparsity()
    second = net.new_scope()
    resumed = GMPUnstructuredPruner(net.main, ratio=0.6, scope=second, configs=GMP_CONFIGS)
    resumed.set_state_dict(state)  # before the weights are loaded, as the demo's order allows
    restore(second, saved)
    resumed.update_params()  # reads the masks back from the loaded zeros, before any update
    recovered = resumed.sparsity()
    for batch in data[3:]:
        net.run(second, batch)
        resumed.step()
    # the reference's spelling of a resume: configs['resume_iteration']
    third = net.new_scope(saved)
    by_config = GMPUnstructuredPruner(net.main, ratio=0.6, scope=third,
                                      configs=dict(GMP_CONFIGS, resume_iteration=3))
    by_config.update_params()
    for batch in data[3:]:
        net.run(third, batch)
        by_config.step()
    names = [p.name for p in whole.params]
    return {'state': state, 'recovered_sparsity': recovered, 'saved_sparsity': saved_sparsity,
            'masks': [masks_digest(whole), masks_digest(resumed), masks_digest(by_config)],
            'max_weight_difference': max(
                float(np.abs(array(scope, n) - array(s, n)).max())
                for n in names for s in (second, third)),
            'sparsity': [whole.sparsity(), resumed.sparsity(), by_config.sparsity()]}


def bad_arguments():
    """Each bad argument: PruneConfigError, and no weight changed."""
    net = StaticNet()
    scope = net.new_scope()
    before = snapshot(scope)
    cases = {
        'ratio': lambda: UnstructuredPruner(net.main, 'ratio', ratio=1.5, scope=scope),
        'mode': lambda: UnstructuredPruner(net.main, 'magnitude', scope=scope),
        'sparse_block': lambda: UnstructuredPruner(net.main, 'ratio', scope=scope,
                                                   sparse_block=[0, 1]),
        'program': lambda: UnstructuredPruner(net.net, 'ratio', scope=scope),
        'place': lambda: UnstructuredPruner(net.main, 'ratio', scope=scope, place='tpu:9'),
        'configs': lambda: GMPUnstructuredPruner(net.main, 0.5, scope=scope,
                                                 configs={'pruning_steps': 3}),
        'initial_ratio': lambda: GMPUnstructuredPruner(
            net.main, 0.5, scope=scope, configs=dict(GMP_CONFIGS, initial_ratio=0.9)),
    }
    raised = {}
    for key, build in cases.items():
        try:
            build()
            raised[key] = None
        except PruneConfigError as err:
            raised[key] = err.key
    unstarted = StaticNet()
    pruner = UnstructuredPruner(unstarted.main, 'ratio', scope=paddle.static.Scope())
    try:
        pruner.step()
        raised['startup_not_run'] = None
    except PruneConfigError as err:
        raised['startup_not_run'] = err.key
    after = snapshot(scope)
    return {'raised': raised,
            'weights_changed': sorted(n for n in before if not np.array_equal(before[n],
                                                                                after[n]))}


def paddleslim_reference():
    """PaddleSlim 2.6's static pruner on the same weights (it runs on the legacy IR only)."""
    from paddleslim.prune.unstructured_pruner import UnstructuredPruner as SlimPruner
    net = StaticNet()
    scope = net.new_scope()
    with paddle.static.scope_guard(scope):
        net.run(scope, batches(1)[0])
        try:
            probe = SlimPruner(net.main.clone(), 'ratio', ratio=0.55, place=PLACE)
        except AttributeError as err:
            return {'error': f"AttributeError: {err}"}
        figures = {}
        ours = UnstructuredPruner(net.main, 'ratio', ratio=0.55, scope=scope)
        ours.update_masks()
        probe.update_threshold()
        names = [p.name for p in ours.params]
        figures['same_selection'] = sorted(names) == sorted(
            n for n in probe.masks if probe._should_prune_param(n))
        differing, extra_at_threshold = 0, 0
        for name in names:
            w = array(scope, name)
            reference_keep = np.abs(w) >= probe.threshold
            ours_keep = ours.mask_of(name)
            differing += int((ours_keep != reference_keep).sum())
            extra = reference_keep & ~ours_keep
            extra_at_threshold += int((np.abs(w[extra]) == probe.threshold).sum())
            figures.setdefault('reference_prunes_more', 0)
            figures['reference_prunes_more'] += int((~reference_keep & ours_keep).sum())
        figures.update(ratio_differing=differing, ratio_extra_at_threshold=extra_at_threshold)
        # threshold mode: PaddleSlim's masks (its mask variables in the scope) are ours
        slim_t = SlimPruner(net.main.clone(), 'threshold', threshold=0.1, place=PLACE)
        slim_t._update_masks()
        ours_t = UnstructuredPruner(net.main, 'threshold', threshold=0.1, scope=scope)
        ours_t.update_masks()
        figures['threshold_differing'] = sum(
            int(((array(scope, slim_t.masks[n]) != 0) != ours_t.mask_of(n)).sum())
            for n in names)
    return figures


def same_as_dygraph():
    """The static pruner and the dygraph engine on the same weights: the same masks, and
    total_sparse(program) == total_sparse(model)."""
    net = StaticNet()
    scope = net.new_scope()
    for batch in batches(2, seed=5):
        net.run(scope, batch)
    weights = {name: array(scope, var) for name, var in net.var_of.items()}
    cases = {'global': {'ratio': 0.55}, 'local': {'ratio': 0.55, 'local_sparsity': True},
             'block_2x1': {'ratio': 0.5, 'sparse_block': [2, 1]},
             'conv1x1_only': {'ratio': 0.7, 'prune_params_type': 'conv1x1_only'}}
    static_masks, static_sparse = {}, {}
    for case, kwargs in cases.items():
        case_scope = net.new_scope(snapshot(scope))
        pruner = UnstructuredPruner(net.main, 'ratio', scope=case_scope, **kwargs)
        pruner.step()
        static_masks[case] = {net.structured_of[p.name]: pruner.mask_of(p.name)
                              for p in pruner.params}
        static_sparse[case] = (UnstructuredPruner.total_sparse(net.main, case_scope),
                               UnstructuredPruner.total_sparse_conv1x1(net.main, case_scope))
    paddle.disable_static()
    try:
        figures = {}
        for case, kwargs in cases.items():
            model = TinyNet()
            model.set_state_dict({k: paddle.to_tensor(v) for k, v in weights.items()})
            pruner = core.UnstructuredPruner(model, 'ratio', **kwargs)
            pruner.step()
            figures[case] = {
                'names_equal': sorted(static_masks[case]) == sorted(p.name for p in pruner.params),
                'differing': sum(int((pruner.mask_of(n) != m).sum())
                                 for n, m in static_masks[case].items()),
                'total_sparse': [static_sparse[case][0], core.total_sparse(model)],
                'total_sparse_conv1x1': [static_sparse[case][1],
                                         core.total_sparse_conv1x1(model)]}
    finally:
        paddle.enable_static()
    return figures


def fleet_program():
    """A program minimized through ``fleet.distributed_optimizer`` (one process: a CPU build of
    Paddle 3.3 has no static collective communicator for two). PIR: fleet's own ``minimize``
    fails in Paddle, which is recorded."""
    from paddle.distributed import fleet
    fleet.init(is_collective=True)
    main, startup = paddle.static.Program(), paddle.static.Program()
    try:
        with paddle.static.program_guard(main, startup):
            x = paddle.static.data('x', [None, 3, 8, 8], 'float32')
            y = paddle.static.data('y', [None, 1], 'int64')
            loss = paddle.nn.functional.cross_entropy(TinyNet()(x), y)
            optimizer = fleet.distributed_optimizer(
                paddle.optimizer.Momentum(0.05, momentum=0.9), fleet.DistributedStrategy())
            optimizer.minimize(loss)
    except TypeError as err:
        return {'error': f"TypeError: {str(err).splitlines()[0]}"}
    scope = paddle.static.Scope()
    exe = paddle.static.Executor(PLACE)
    with paddle.static.scope_guard(scope):
        exe.run(startup)
        pruner = UnstructuredPruner(main, 'ratio', ratio=0.55, scope=scope)
        for batch in batches(2):
            exe.run(main, feed=batch)
            pruner.step()
    total = sum(int(np.prod(p.shape)) for p in pruner.params)
    return {'zeros': sum(zeros(array(scope, p.name)) for p in pruner.params), 'total': total,
            'moments': sum(len(v[0]) for v in pruner.optimizer_variables().values())}


SCENARIOS = [selection, ratio_counts, threshold_mode, zeros_every_step, resume, bad_arguments,
             paddleslim_reference, same_as_dygraph, fleet_program]

if __name__ == '__main__':
    results = {'ir': 'legacy' if os.environ.get('FLAGS_enable_pir_api') == '0' else 'pir'}
    for scenario in SCENARIOS:
        results[scenario.__name__] = scenario()
    print('FIGURES ' + json.dumps(results))
