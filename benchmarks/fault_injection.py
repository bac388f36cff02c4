"""Kill-and-resume fault injection: SIGKILL a sparse training run, resume it, compare.

For each suite's demo (tiny: a few iterations, a checkpoint every 1-2 of them, GMP so the
schedule matters), one uninterrupted reference run; then, N times: the same run in a fresh
folder is SIGKILLed at

* ``random``: a random delay into the run (start-up included);
* ``step``: right after a random optimizer step (the test hook ``prune_plugin/fault_hook.py``
  pauses the process there, then it is killed);
* ``eval``: as an evaluation starts;
* ``during_weights``: a checkpoint's ``.pdparams`` is written and cut to half its size (a
  save cut short);
* ``after_weights``: a checkpoint's weights are written, its ``.pdprune`` state is not yet;

then resumed as a user would, from the newest checkpoint the suite offers (ppdet ``-r
<save_dir>/<config>/<newest epoch or model_final>``, paddleseg ``--resume_model
<save_dir>/iter_<largest N>``, PaddleClas ``--resume <output>/latest``; the same command again
when no checkpoint exists yet), run to the end and compared with the reference: the zero
positions of every 1x1 conv weight (the pruned parameters) in the final weights identical, and
the final ``.pdprune`` iteration and sparsity equal. Each kill is

* ``resumed exactly``: the resumed run ends with the reference's masks and schedule;
* ``refused clearly``: the resume stopped with exit code 2 and one ``error:`` line naming a
  file of the checkpoint, no traceback;
* ``lost``: anything else (a traceback, other masks, another iteration, a missing state).

    python benchmarks/fault_injection.py                       # 30 kills per suite
    python benchmarks/fault_injection.py --suites ppseg --kills 5 --seed 1
    python benchmarks/fault_injection.py --quick               # 3 kills per suite

The table goes to ``benchmarks/results/fault_injection.md`` (``--out`` to change it).
Runs are sequential (one training at a time).
"""
import argparse
import glob
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if REPO not in sys.path:
    sys.path.insert(0, REPO)

RESULTS = os.path.join(REPO, 'benchmarks', 'results', 'fault_injection.md')
KINDS = ('random', 'step', 'eval', 'during_weights', 'after_weights')
OUTCOMES = ('resumed exactly', 'refused clearly', 'lost')
TIMEOUT = 600


# ----- the three demos ------------------------------------------------------------------------
class Demo:
    """One suite's tiny run: its command, where its checkpoints are, how to resume one."""
    name = None

    def __init__(self, data_dir):
        self.data_dir = data_dir

    def prepare(self, workdir):
        """Files every run of this demo shares (lists), made once."""

    def command(self, out, resume=None):
        raise NotImplementedError

    def newest_checkpoint(self, out):
        raise NotImplementedError

    def final_files(self, out):
        """(final weights, final .pdprune) of a finished run in ``out``."""
        raise NotImplementedError


def _train(*args):
    return [sys.executable, '-m', 'prune_plugin', 'train', *args]


class SegDemo(Demo):
    """paddleseg: 12 iterations, a checkpoint (and an evaluation) every 2; one image per batch
    repeated (paddleseg restarts the epoch's data order on resume)."""
    name = 'ppseg'
    ITERS = 12

    def prepare(self, workdir):
        from prune_plugin.demo_data import ppseg_data
        root = ppseg_data.ensure_portrait_dataset()
        with open(os.path.join(root, 'train.txt')) as f:
            first = f.readline()
        self.train_list = os.path.join(workdir, 'seg_same_image.txt')
        with open(self.train_list, 'w') as f:
            f.write(first * 2)

    def command(self, out, resume=None):
        args = ['-c', os.path.join(REPO, 'configs', 'ppseg', 'pphumanseg_lite_prune_demo.yml'),
                '--seed', '3', '--batch_size', '2', '--log_iters', '4', '--save_dir', out,
                '--iters', str(self.ITERS), '--save_interval', '2', '--do_eval',
                '--keep_checkpoint_max', '100']
        if resume:
            args += ['--resume_model', resume]
        return _train(*args, '-o', 'UnstructuredPrune.gmp.stable_iterations=0',
                      'UnstructuredPrune.gmp.pruning_iterations=8',
                      'UnstructuredPrune.gmp.tunning_iterations=4',
                      'UnstructuredPrune.gmp.pruning_steps=4',
                      f'train_dataset.train_path={self.train_list}',
                      "train_dataset.transforms=[{'type':'Normalize'}]")

    def newest_checkpoint(self, out):
        found = [(int(m.group(1)), path) for path in glob.glob(os.path.join(out, 'iter_*'))
                 for m in [re.fullmatch(r'iter_(\d+)', os.path.basename(path))] if m]
        return max(found)[1] if found else None

    def final_files(self, out):
        folder = os.path.join(out, f'iter_{self.ITERS}')
        return os.path.join(folder, 'model.pdparams'), os.path.join(folder, 'model.pdprune')


class DetDemo(Demo):
    """ppdet PicoDet: 3 epochs of 2 steps, a checkpoint and an evaluation every epoch."""
    name = 'ppdet'
    CONFIG = 'picodet_m_prune_demo'

    def command(self, out, resume=None):
        args = ['-c', os.path.join(REPO, 'configs', 'ppdet', f'{self.CONFIG}.yml'),
                '--seed', '0', '--eval']
        if resume:
            args += ['-r', resume]
        return _train(*args, '-o', 'TrainDataset.sample_num=8', 'EvalDataset.sample_num=4',
                      'TrainReader.shuffle=false', 'UnstructuredPrune.gmp.pruning_epochs=2',
                      'UnstructuredPrune.gmp.tunning_epochs=1',
                      'UnstructuredPrune.gmp.pruning_steps=2', 'snapshot_epoch=1', 'epoch=3',
                      f'save_dir={out}')

    def _folder(self, out):
        return os.path.join(out, self.CONFIG)

    def newest_checkpoint(self, out):
        folder = self._folder(out)
        if glob.glob(os.path.join(folder, 'model_final.*')):
            return os.path.join(folder, 'model_final')
        found = [(int(m.group(1)), os.path.join(folder, m.group(1)))
                 for path in glob.glob(os.path.join(folder, '*.*'))
                 for m in [re.fullmatch(r'(\d+)\.pd\w+', os.path.basename(path))] if m]
        return max(found)[1] if found else None

    def final_files(self, out):
        prefix = os.path.join(self._folder(out), 'model_final')
        return prefix + '.pdparams', prefix + '.pdprune'


class ClsDemo(Demo):
    """PaddleClas MobileNetV1_x0_25 on 320 digits: 3 epochs of 5 steps, a checkpoint and an
    evaluation (64 images) every epoch."""
    name = 'ppcls'
    ARCH = 'MobileNetV1_x0_25'

    def prepare(self, workdir):
        from prune_plugin.demo_data.ppcls_data import ensure_digits
        self.folder = ensure_digits()
        self.lists = {}
        for split, count in (('train', 320), ('val', 64)):
            with open(os.path.join(self.folder, f"{split}_list.txt")) as f:
                lines = f.readlines()[:count]
            self.lists[split] = os.path.join(workdir, f'cls_{split}.txt')
            with open(self.lists[split], 'w') as f:
                f.writelines(lines)

    def command(self, out, resume=None):
        no_augment = ("[{DecodeImage: {to_rgb: true}}, {NormalizeImage: {scale: 1.0/255.0, "
                      "mean: [0.5, 0.5, 0.5], std: [0.5, 0.5, 0.5]}}]")
        args = ['-c', os.path.join(REPO, 'configs', 'ppcls', 'mobilenetv1_prune_demo.yml')]
        if resume:
            args += ['--resume', resume]
        return _train(*args, '-o', f'Global.output_dir={out}', 'Global.epochs=3',
                      'Global.compare_dense=False', 'Global.save_interval=1',
                      'Global.eval_interval=1', f'Arch.name={self.ARCH}',
                      f'DataLoader.Train.dataset.image_root={self.folder}',
                      f"DataLoader.Train.dataset.cls_label_path={self.lists['train']}",
                      f'DataLoader.Train.dataset.transform_ops={no_augment}',
                      'DataLoader.Train.sampler.shuffle=False',
                      f'DataLoader.Eval.dataset.image_root={self.folder}',
                      f"DataLoader.Eval.dataset.cls_label_path={self.lists['val']}",
                      'UnstructuredPrune.gmp={stable_iterations: 0, pruning_iterations: 10, '
                      'tunning_iterations: 5, pruning_steps: 5, initial_ratio: 0.15}')

    def newest_checkpoint(self, out):
        folder = os.path.join(out, self.ARCH)
        if glob.glob(os.path.join(folder, 'latest.*')):
            return os.path.join(folder, 'latest')
        found = [(int(m.group(1)), os.path.join(folder, f'epoch_{m.group(1)}'))
                 for path in glob.glob(os.path.join(folder, 'epoch_*'))
                 for m in [re.fullmatch(r'epoch_(\d+)\.pd\w+', os.path.basename(path))] if m]
        return max(found)[1] if found else None

    def final_files(self, out):
        prefix = os.path.join(out, self.ARCH, 'latest')
        return prefix + '.pdparams', prefix + '.pdprune'


DEMOS = {demo.name: demo for demo in (DetDemo, SegDemo, ClsDemo)}  # the report's order


# ----- running and killing ------------------------------------------------------------------
def _env(data_dir, pause=None, mark=None):
    env = {**os.environ, 'OMP_NUM_THREADS': '1', 'PRUNE_PLUGIN_DATA': data_dir,
           'PYTHONPATH': REPO + os.pathsep + os.environ.get('PYTHONPATH', '')}
    for key in ('PRUNE_PLUGIN_FAULT_PAUSE', 'PRUNE_PLUGIN_FAULT_MARK'):
        env.pop(key, None)
    if pause:
        env['PRUNE_PLUGIN_FAULT_PAUSE'] = pause
        env['PRUNE_PLUGIN_FAULT_MARK'] = mark
    return env


def run(command, cwd, env):
    """Run to the end: ``(returncode, stdout, stderr, seconds)``."""
    start = time.time()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True,
                            timeout=TIMEOUT)
    return result.returncode, result.stdout, result.stderr, time.time() - start


def start_and_kill(command, cwd, env, mark=None, delay=None):
    """Start ``command``; SIGKILL its process group after ``delay`` seconds or once the hook
    wrote ``mark``. Returns True if it was killed, False if it ended first."""
    with open(os.path.join(cwd, 'killed_run.log'), 'w') as log:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=log, stderr=log,
                                   start_new_session=True)
        deadline = time.time() + (delay if delay is not None else TIMEOUT)
        while time.time() < deadline and process.poll() is None:
            if mark and os.path.exists(mark) and os.path.getsize(mark):
                break
            time.sleep(0.02)
        if process.poll() is not None:
            return False
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        return True


# ----- comparing ----------------------------------------------------------------------------
def load_weights(path):
    """Arrays of a ``.pdparams`` (read without running code in it)."""
    from prune_plugin.report.safe_pickle import load_numpy
    return {k: v for k, v in load_numpy(path).items() if hasattr(v, 'shape')}


def masks(weights):
    """Zero positions of every 1x1 conv weight (the parameters the demos prune)."""
    return {k: v == 0 for k, v in weights.items()
            if getattr(v, 'ndim', 0) == 4 and tuple(v.shape[2:]) == (1, 1)}


def final_result(demo, out):
    """``{'masks', 'zeros', 'state'}`` of the finished run in ``out``; raises if incomplete."""
    weights, state_file = demo.final_files(out)
    with open(state_file) as f:
        state = json.load(f)
    found = masks(load_weights(weights))
    return {'masks': found, 'zeros': sum(int(m.sum()) for m in found.values()),
            'size': sum(m.size for m in found.values()),
            'state': {k: state.get(k) for k in ('iteration', 'sparsity')}}


def differences(reference, result):
    """Why ``result`` is not ``reference`` (empty: identical masks and schedule)."""
    problems = []
    if result['state'] != reference['state']:
        problems.append(f"state {result['state']} != {reference['state']}")
    if result['masks'].keys() != reference['masks'].keys():
        problems.append('other parameters')
    else:
        changed = [k for k in reference['masks']
                   if not (result['masks'][k] == reference['masks'][k]).all()]
        if changed:
            problems.append(f"masks differ in {len(changed)} parameters ({changed[0]})")
    return problems


def refused_clearly(returncode, stderr, checkpoint):
    """Exit 2, one ``error:`` line naming a file of the checkpoint, no traceback."""
    errors = [line for line in stderr.splitlines() if line.startswith('error:')]
    names_it = bool(errors) and checkpoint is not None and (
        os.path.basename(checkpoint) in errors[0] or os.path.dirname(checkpoint) in errors[0])
    return returncode == 2 and len(errors) == 1 and names_it and 'Traceback' not in stderr


# ----- one suite ----------------------------------------------------------------------------
def reference_run(demo, workdir):
    """The uninterrupted run (hook counting every point): ``(result, seconds, hits)``."""
    out = os.path.join(workdir, 'reference')
    mark = os.path.join(workdir, 'reference_points.txt')
    code, _, stderr, seconds = run(demo.command(out), workdir,
                                   _env(demo.data_dir, 'count', mark))
    if code != 0:
        raise RuntimeError(f"{demo.name}: the reference run failed:\n{stderr[-3000:]}")
    hits = {}
    with open(mark) as f:
        for line in f:
            point, n, _ = line.split()
            hits[point] = max(hits.get(point, 0), int(n))
    result = final_result(demo, out)
    if result['zeros'] == 0:
        raise RuntimeError(f"{demo.name}: the reference run pruned nothing")
    return result, seconds, hits


def one_kill(demo, workdir, index, kind, rng, reference, seconds, hits):
    """Kill one run at ``kind``, resume, classify. Returns a dict, or None (not killed)."""
    folder = os.path.join(workdir, f'kill_{index:03d}_{kind}')
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    out = os.path.join(folder, 'out')
    mark = os.path.join(folder, 'paused_at.txt')
    if kind == 'random':
        where = round(rng.uniform(0.3, seconds), 2)
        killed = start_and_kill(demo.command(out), folder, _env(demo.data_dir), delay=where)
        where = f"{where} s"
    else:
        n = rng.randint(1, hits[kind])
        where = f"{kind} #{n} of {hits[kind]}"
        killed = start_and_kill(demo.command(out), folder,
                                _env(demo.data_dir, f"{kind}:{n}", mark), mark=mark)
    if not killed:
        return None
    checkpoint = demo.newest_checkpoint(out)
    code, _, stderr, _ = run(demo.command(out, resume=checkpoint), folder, _env(demo.data_dir))
    row = {'suite': demo.name, 'kind': kind, 'where': where,
           'checkpoint': os.path.relpath(checkpoint, out) if checkpoint else None}
    if code == 0:
        try:
            problems = differences(reference, final_result(demo, out))
        except Exception as err:  # noqa: BLE001 - an unreadable end state is a lost run
            problems = [f"{type(err).__name__}: {err}"]
        row['outcome'] = 'lost' if problems else 'resumed exactly'
        row['detail'] = '; '.join(problems)
    elif refused_clearly(code, stderr, checkpoint):
        row['outcome'] = 'refused clearly'
        row['detail'] = next(line for line in stderr.splitlines() if line.startswith('error:'))
    else:
        row['outcome'] = 'lost'
        row['detail'] = f"exit {code}: " + ' | '.join(stderr.strip().splitlines()[-3:])
    if row['outcome'] != 'lost':
        shutil.rmtree(folder, ignore_errors=True)
    return row


def kill_plan(kills, kinds=KINDS):
    """``kills`` kinds in turn (``after_weights`` first: the point the brief names)."""
    order = ['after_weights'] + [k for k in kinds if k != 'after_weights']
    order = [k for k in order if k in kinds]
    return [order[i % len(order)] for i in range(kills)]


def run_suite(name, kills, seed, workdir, data_dir, kinds=KINDS, log=None):
    """Reference run, then ``kills`` kill-and-resume trials. Returns ``(rows, reference)``."""
    log = log or (lambda line: print(line, flush=True))
    demo = DEMOS[name](data_dir)
    suite_dir = os.path.join(workdir, name)
    os.makedirs(suite_dir, exist_ok=True)
    demo.prepare(suite_dir)
    reference, seconds, hits = reference_run(demo, suite_dir)
    log(f"{name}: reference {seconds:.1f} s, {reference['zeros']} of {reference['size']} 1x1 "
        f"weights zero, state {reference['state']}, points {hits}")
    kinds = [k for k in kinds if k == 'random' or hits.get(k)]  # points this run reaches
    rng = random.Random(f"{seed}-{name}")
    rows = []
    for index, kind in enumerate(kill_plan(kills, kinds)):
        row = None
        for _ in range(5):   # a random delay past the end of the run is not a kill: draw again
            row = one_kill(demo, suite_dir, index, kind, rng, reference, seconds, hits)
            if row is not None:
                break
        if row is None:
            log(f"{name} #{index} {kind}: the run ended before every kill attempt")
            continue
        rows.append(row)
        log(f"{name} #{index} {kind} ({row['where']}) -> resume {row['checkpoint']}: "
            f"{row['outcome']} {row['detail']}")
    return rows, reference


# ----- report -------------------------------------------------------------------------------
def table(rows, suites):
    lines = ['| suite | kills tried | resumed exactly | refused clearly | lost |',
             '|---|---|---|---|---|']
    for suite in suites:
        mine = [r for r in rows if r['suite'] == suite]
        counts = [sum(r['outcome'] == o for r in mine) for o in OUTCOMES]
        lines.append(f"| {suite} | {len(mine)} | " + ' | '.join(map(str, counts)) + ' |')
    return lines


def by_point(rows, suites):
    lines = ['| suite | kill point | kills | resumed exactly | refused clearly | lost |',
             '|---|---|---|---|---|---|']
    for suite in suites:
        for kind in KINDS:
            mine = [r for r in rows if r['suite'] == suite and r['kind'] == kind]
            if mine:
                counts = [sum(r['outcome'] == o for r in mine) for o in OUTCOMES]
                lines.append(f"| {suite} | {kind} | {len(mine)} | "
                             + ' | '.join(map(str, counts)) + ' |')
    return lines


def write_report(rows, suites, path, seed, seconds, notes=()):
    """The markdown table (and ``<path>.json``: the rows, to merge later runs with)."""
    kills = max([sum(r['suite'] == s for r in rows) for s in suites] or [0])
    refusals = sorted({re.sub(r'/\S*/', '.../', r['detail'])[:160] for r in rows
                       if r['outcome'] == 'refused clearly'})
    lost = [f"- {r['suite']} {r['kind']} ({r['where']}, resumed from {r['checkpoint']}): "
            f"{r['detail'][:300]}" for r in rows if r['outcome'] == 'lost']
    text = ['# Kill-and-resume fault injection', '',
            f"`python benchmarks/fault_injection.py --suites {','.join(suites)} --kills "
            f"{kills} --seed {seed}` ({time.strftime('%Y-%m-%d')}, {seconds / 60:.0f} min on a "
            "shared 2-core CPU): each run SIGKILLed once, resumed from the newest checkpoint the "
            "suite offers, compared with an uninterrupted run (1x1-conv zero masks, final "
            "`.pdprune` iteration and sparsity).", '', *table(rows, suites), '',
            *[f"{note}" for note in notes], *([''] if notes else []),
            '## By kill point', '', *by_point(rows, suites), '',
            '## Refusals (one line each, exit 2)', '',
            *[f"- `{line}`" for line in refusals], '']
    if lost:
        text += ['## Lost', '', *lost, '']
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, 'w') as f:
        f.write('\n'.join(text))
    with open(os.path.splitext(path)[0] + '.json', 'w') as f:
        json.dump({'seed': seed, 'minutes': round(seconds / 60), 'notes': list(notes),
                   'rows': rows}, f, indent=1)


def earlier_rows(path, suites):
    """Rows of ``<path>.json`` for the suites not run now (``--merge``), and its notes."""
    try:
        with open(os.path.splitext(path)[0] + '.json') as f:
            saved = json.load(f)
    except (OSError, ValueError):
        return [], 0, []
    return ([r for r in saved['rows'] if r['suite'] not in suites], saved.get('minutes', 0),
            saved.get('notes', []))


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    parser.add_argument('--suites', default='ppdet,ppseg,ppcls')
    parser.add_argument('--kills', type=int, default=30, help='kills per suite')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--quick', action='store_true', help='3 kills per suite, no report file '
                        'unless --out is given')
    parser.add_argument('--out', default=None, help=f'report file (default {RESULTS})')
    parser.add_argument('--workdir', default=None, help='keep the runs here (default: a temp dir)')
    parser.add_argument('--merge', action='store_true', help="keep the report's rows of the "
                        "suites not run now (from its .json)")
    parser.add_argument('--note', action='append', default=[], help='a line under the table')
    args = parser.parse_args(argv)
    suites = [s.strip() for s in args.suites.split(',') if s.strip()]
    unknown = [s for s in suites if s not in DEMOS]
    if unknown:
        parser.error(f"--suites: unknown {unknown}; expected some of {sorted(DEMOS)}")
    if args.kills < 1:
        parser.error("--kills: expected an int >= 1")
    kills = 3 if args.quick else args.kills
    out = args.out or (None if args.quick else RESULTS)
    workdir = args.workdir or tempfile.mkdtemp(prefix='fault_injection_')
    data_dir = os.path.join(workdir, 'data')
    os.environ['PRUNE_PLUGIN_DATA'] = data_dir   # the demo data is generated there, once
    start = time.time()
    kept, minutes, notes = earlier_rows(out, suites) if (args.merge and out) else ([], 0, [])
    notes = notes + args.note
    everything = [s for s in DEMOS if s in suites or any(r['suite'] == s for r in kept)]
    rows = []
    for suite in suites:
        suite_rows, _ = run_suite(suite, kills, args.seed, workdir, data_dir)
        rows += suite_rows
        if out:   # written after every suite: a long run keeps what it measured
            done = [s for s in everything
                    if s not in suites or s in suites[:suites.index(suite) + 1]]
            write_report(sorted(kept + rows, key=lambda r: everything.index(r['suite'])), done,
                         out, args.seed, minutes * 60 + time.time() - start, notes)
    print('\n'.join(table(rows, suites)))
    return 1 if any(r['outcome'] == 'lost' for r in rows) else 0


if __name__ == '__main__':
    sys.exit(main())
