import os

os.environ.setdefault('OMP_NUM_THREADS', '2')

# The longest test files run first: with two workers (scripts/test.sh) each worker takes the
# next file in this order, so the long ones overlap instead of ending the run alone. Seconds
# measured in a clean-clone CI run on 2 cores (2026-11-30, --durations).
LONGEST_FIRST = (
    'test_ppcls_demo.py',                    # ~370 s: the README's demo, dense + sparse
    'test_fault_injection.py',               # ~115 s: real kills in each suite
    'test_benchmark_accuracy_smoke.py',      # ~80 s
    'test_entry_bad_config.py',              # ~80 s: 1,170 configs through prune-train
    'test_onnx_export.py',                   # ~75 s
    'test_ppdet_train.py',                   # ~60 s
    'test_benchmark_suites_paired_smoke.py',  # ~50 s
)


def pytest_collection_modifyitems(items):
    """Stable reorder: the files of LONGEST_FIRST first, in its order; the rest as collected."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(item.path.name, len(rank)))
