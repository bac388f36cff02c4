"""The README and docs/: generated tables up to date, links that lead somewhere, a short README."""
import os
import re
import subprocess
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(REPO, 'scripts'))

import render_docs  # noqa: E402


def test_quoted_tables_equal_the_results_files():
    result = subprocess.run([sys.executable, os.path.join(REPO, 'scripts', 'render_docs.py'),
                             '--check'], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_every_include_block_is_filled_from_its_file():
    blocks = 0
    for page in render_docs.pages():
        with open(page, encoding='utf-8') as f:
            text = f.read()
        for match in render_docs.BLOCK.finditer(text):
            blocks += 1
            assert match.group('body') == render_docs.render(match.group('spec')), page
    assert blocks >= 4


def test_relative_links_resolve():
    broken = []
    for page in render_docs.pages():
        with open(page, encoding='utf-8') as f:
            text = f.read()
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            if not os.path.exists(os.path.join(os.path.dirname(page), target)):
                broken.append(f"{os.path.relpath(page, REPO)} -> {target}")
    assert not broken


def test_readme_is_short_and_opens_with_the_two_commands():
    with open(os.path.join(REPO, 'README.md'), encoding='utf-8') as f:
        text = f.read()
    assert len(text.encode()) < 12_000
    first_block = text[text.index('```bash'):]
    assert first_block.splitlines()[1].startswith('bash scripts/demo.sh')
    assert first_block.splitlines()[2].startswith('bash scripts/test.sh')
