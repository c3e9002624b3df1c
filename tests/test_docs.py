"""The documentation's links resolve, and so do the code's pointers into it.

* every relative link ``[text](path)``, ``[text](path#anchor)`` and ``[text](#anchor)`` in README.md and
  docs/**/*.md names a file or folder of the repository, and an anchor names a heading of that file
  (GitHub's anchors: lowercase, spaces to '-', punctuation dropped, '-1', '-2' for repeated headings);
* every ``docs/<page>.md#<anchor>`` and ``README.md#<anchor>`` written in the code (``.py`` files under
  esrgan_plugin/, scripts/ and tests/, the shipped option files, the shell scripts) resolves the same way;
* the code has no pointer of the form ``(README, "Section")``, which nothing can check: it points at
  ``README.md#<anchor>`` or ``docs/<page>.md#<anchor>`` instead;
* every file or folder of the repository named in the package's comments and docstrings (``tests/...``,
  ``docs/...``, ``esrgan_plugin/...``, ``scripts/...``, ``options/...``, ``.ci/...``) exists.

A pointer in the code must stand on one line.
"""
from __future__ import annotations

import ast
import functools
import io
import re
import tokenize
import urllib.parse
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIS_FILE = Path(__file__).resolve()

FENCE = re.compile(r'^ {0,3}(`{3,}|~{3,})')
ATX_HEADING = re.compile(r'^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$')
SETEXT_UNDERLINE = re.compile(r'^ {0,3}(=+|-+)[ \t]*$')
HTML_ANCHOR = re.compile(r'<a\s+(?:[^>]*\s)?(?:name|id)\s*=\s*["\']([^"\']+)["\']', re.IGNORECASE)
CODE_SPAN = re.compile(r'(`+)(.+?)\1')
INLINE_LINK = re.compile(r'!?\[((?:[^\[\]]|\[[^\[\]]*\])*)\]\(\s*<?([^)\s>]*)>?(?:\s+"[^"]*")?\s*\)')
REFERENCE_DEFINITION = re.compile(r'^ {0,3}\[[^\]]+\]:\s*<?(\S+?)>?(?:\s+.*)?$')
SCHEME = re.compile(r'^[A-Za-z][A-Za-z0-9+.-]*:|^//')

# A pointer from the code into the docs: a path from the repository root, an optional anchor.
CODE_POINTER = re.compile(r'(?<![\w./-])((?:docs/[\w./-]*?\.md|README\.md)(?:#[\w-]*)?)')
# A file or folder of the repository named in prose: from a top-level folder, up to where the path ends. A name
# with a placeholder (docs/<page>.md, tests/test_*.py) is a pattern, not a path, and is left out.
REPO_PATH = re.compile(r'(?<![\w./-])((?:esrgan_plugin|tests|docs|scripts|options|\.ci)/[\w./-]*\w)/?'
                       r'(?![\w*<>{}-]|[./]\w)')
# Pointers by section title, which no test can follow: (README, "Data preparation"), README's "Tiling",
# see README for ..., (..., README).
OLD_POINTER = re.compile(r'README, "|\(README, |README\'s "|\bsee README\b(?!\.md)|, README\)')


def markdown_files() -> list[Path]:
    return [ROOT / 'README.md'] + sorted((ROOT / 'docs').rglob('*.md'))


def code_files() -> list[Path]:
    files = []
    for folder in ('esrgan_plugin', 'scripts', 'tests'):
        files += sorted((ROOT / folder).rglob('*.py'))
    files += sorted((ROOT / 'scripts').rglob('*.sh')) + sorted((ROOT / 'options').rglob('*.yml'))
    return [f for f in files if f.resolve() != THIS_FILE and '__pycache__' not in f.parts]


def rel(path: Path) -> str:
    return path.resolve().relative_to(ROOT).as_posix()


# ----------------------------------------------------------------------------- reading markdown
def prose_lines(text: str) -> list[tuple[int, str]]:
    """(line number, line) of the lines outside fenced code blocks."""
    lines, fence = [], None
    for number, line in enumerate(text.splitlines(), 1):
        match = FENCE.match(line)
        if fence is None and match:
            fence = match.group(1)
        elif fence is not None and match and match.group(1)[0] == fence[0] and len(match.group(1)) >= len(fence) \
                and not line.strip()[len(match.group(1)):].strip():
            fence = None
        elif fence is None:
            lines.append((number, line))
    return lines


def heading_text(markdown: str) -> str:
    """The text GitHub renders for a heading's markdown: code spans, links, images and tags reduced to text."""
    text = CODE_SPAN.sub(lambda m: m.group(2).strip(), markdown)
    text = re.sub(r'!?\[([^\]]*)\]\([^)]*\)', r'\1', text)
    text = re.sub(r'<[^>]+>', '', text)
    return text


def slug(text: str) -> str:
    """GitHub's anchor of a heading's text: lowercase; what is not a letter, digit, '_', '-' or space dropped;
    each space a '-'."""
    text = heading_text(text).strip().lower()
    text = ''.join(c for c in text if c.isalnum() or c in '_- ')
    return text.replace(' ', '-')


def headings(text: str) -> list[str]:
    """The headings' texts, in order (ATX and setext headings outside code blocks)."""
    found, previous = [], None
    for _, line in prose_lines(text):
        atx = ATX_HEADING.match(line)
        if atx:
            found.append(atx.group(2) or '')
            previous = None
            continue
        if previous is not None and previous.strip() and SETEXT_UNDERLINE.match(line) \
                and not previous.lstrip().startswith(('|', '-', '*', '+', '>')):
            found.append(previous.strip())
            previous = None
            continue
        previous = line
    return found


def anchors_of_headings(titles: list[str]) -> set[str]:
    """GitHub's anchors: a repeated slug gets -1, -2, ... in order of appearance."""
    anchors, counts = set(), {}
    for title in titles:
        base = slug(title)
        n = counts.get(base, 0)
        anchor = base if n == 0 else f'{base}-{n}'
        while anchor in anchors:  # a heading whose own text ends in -1
            n += 1
            anchor = f'{base}-{n}'
        counts[base] = n + 1
        anchors.add(anchor)
    return anchors


@functools.lru_cache(maxsize=None)
def anchors(path: Path) -> frozenset[str]:
    text = path.read_text(encoding='utf-8')
    return frozenset(anchors_of_headings(headings(text)) | set(HTML_ANCHOR.findall(text)))


def links(path: Path) -> list[tuple[int, str]]:
    """(line number, target) of the inline links, images and reference definitions outside code."""
    found = []
    for number, line in prose_lines(path.read_text(encoding='utf-8')):
        definition = REFERENCE_DEFINITION.match(line)
        if definition:
            found.append((number, definition.group(1)))
            continue
        without_code = CODE_SPAN.sub(lambda m: ' ' * len(m.group(0)), line)
        found += [(number, m.group(2)) for m in INLINE_LINK.finditer(without_code)]
    return found


# ----------------------------------------------------------------------------- resolving
def problem_with(target: str, base: Path, source: Path) -> str | None:
    """Why ``target`` (a path with an optional #anchor, relative to the folder ``base``) does not resolve,
    or None when it does."""
    path_part, _, anchor = target.partition('#')
    path_part = urllib.parse.unquote(path_part)
    resolved = (base / path_part).resolve() if path_part else source.resolve()
    if not resolved.is_relative_to(ROOT):
        return f'{target}: points outside the repository'
    if not resolved.exists():
        return f'{target}: {rel(resolved) if resolved.is_relative_to(ROOT) else resolved} does not exist'
    if anchor:
        anchor = urllib.parse.unquote(anchor)
        if resolved.suffix != '.md' or not resolved.is_file():
            return f'{target}: an anchor in {rel(resolved)}, which has no headings'
        if anchor not in anchors(resolved):
            return f'{target}: {rel(resolved)} has no heading with the anchor #{anchor}'
    return None


def relative_links() -> list:
    cases = []
    for md in markdown_files():
        for number, target in links(md):
            if target and not SCHEME.match(target):
                cases.append(pytest.param(md, target, id=f'{rel(md)}:{number}:{target}'))
    return cases


def code_pointers() -> list:
    cases = []
    for file in code_files():
        for number, line in enumerate(file.read_text(encoding='utf-8').splitlines(), 1):
            for match in CODE_POINTER.finditer(line):
                cases.append(pytest.param(file, match.group(1), id=f'{rel(file)}:{number}:{match.group(1)}'))
    return cases


def comments_and_docstrings(source: str) -> list[tuple[int, str]]:
    """(line number, text) of every comment and every docstring (module, class, function) of Python ``source``."""
    texts = [(token.start[0], token.string) for token in tokenize.generate_tokens(io.StringIO(source).readline)
             if token.type == tokenize.COMMENT]
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)) and node.body:
            first = node.body[0]
            if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and \
                    isinstance(first.value.value, str):
                texts.append((first.lineno, first.value.value))
    return sorted(texts)


def paths_named(source: str) -> list[tuple[int, str]]:
    """(line number, path) of the repository paths named in the comments and docstrings of ``source``."""
    return [(number, match.group(1)) for number, text in comments_and_docstrings(source)
            for match in REPO_PATH.finditer(text)]


def package_paths() -> list:
    cases = []
    for file in sorted((ROOT / 'esrgan_plugin').rglob('*.py')):
        for number, path in paths_named(file.read_text(encoding='utf-8')):
            cases.append(pytest.param(file, path, id=f'{rel(file)}:{number}:{path}'))
    return cases


# ----------------------------------------------------------------------------- the tests
def test_the_docs_exist():
    assert (ROOT / 'README.md').is_file()
    assert len(markdown_files()) > 1, 'docs/ holds the reference pages'


@pytest.mark.parametrize('md, target', relative_links())
def test_relative_link_resolves(md: Path, target: str):
    problem = problem_with(target, md.parent, md)
    assert problem is None, f'{rel(md)}: {problem}'


@pytest.mark.parametrize('file, pointer', code_pointers())
def test_pointer_in_the_code_resolves(file: Path, pointer: str):
    problem = problem_with(pointer, ROOT, file)
    assert problem is None, f'{rel(file)}: {problem}'


# Folders that exist only in the installed package, each with the package name setup.py gives it.
INSTALLED_ONLY = {'esrgan_plugin/option_files': "'esrgan_plugin.option_files': 'options'"}


@pytest.mark.parametrize('file, path', package_paths())
def test_a_path_named_in_the_package_exists(file: Path, path: str):
    if path in INSTALLED_ONLY:
        assert INSTALLED_ONLY[path] in (ROOT / 'setup.py').read_text(encoding='utf-8'), f'setup.py makes no {path}'
        return
    assert (ROOT / path).exists(), f'{rel(file)} names {path}, which is not in the repository'


def test_the_readme_asks_for_the_oldest_python_setup_py_accepts():
    required = re.search(r"python_requires='>=(3\.\d+)'", (ROOT / 'setup.py').read_text(encoding='utf-8'))
    assert required, 'setup.py declares python_requires'
    install = (ROOT / 'README.md').read_text(encoding='utf-8').split('## Install', 1)[1]
    assert re.match(rf'\s*Python {re.escape(required.group(1))}\b', install), \
        f'README.md#install names another oldest Python than setup.py ({required.group(1)})'


def test_the_code_points_at_sections_by_anchor():
    old = []
    for file in code_files():
        for number, line in enumerate(file.read_text(encoding='utf-8').splitlines(), 1):
            if OLD_POINTER.search(line):
                old.append(f'{rel(file)}:{number}: {line.strip()}')
    assert not old, ('point at docs/<page>.md#<anchor> or README.md#<anchor> (a pointer this test can check), '
                     'not at a section by its title:\n' + '\n'.join(old))


# ----------------------------------------------------------------------------- the rules themselves
@pytest.mark.parametrize('title, expected', [
    ('Compatibility with basicsr 1.4.2', 'compatibility-with-basicsr-142'),
    ('Mixed precision, channels_last, compilation', 'mixed-precision-channels_last-compilation'),
    ("The GAN stage's perceptual loss", 'the-gan-stages-perceptual-loss'),
    ('The GAN stage compared with basicsr\'s `ESRGANModel`', 'the-gan-stage-compared-with-basicsrs-esrganmodel'),
    ('Try it: the whole method in one command', 'try-it-the-whole-method-in-one-command'),
    ('Speed -- CPU', 'speed----cpu'),
    ('The perception–distortion sweep', 'the-perceptiondistortion-sweep'),  # an en dash is punctuation
    ('The perception-distortion sweep', 'the-perception-distortion-sweep'),
    ('[Linked](x.md) *title*', 'linked-title'),
])
def test_slug_follows_github(title: str, expected: str):
    assert slug(title) == expected


def test_repeated_headings_get_numbered_anchors():
    text = '# A\n## Speed\ntext\n## Speed\n```\n## Speed\n```\nSpeed\n-----\n'
    assert headings(text) == ['A', 'Speed', 'Speed', 'Speed']
    assert anchors_of_headings(headings(text)) == {'a', 'speed', 'speed-1', 'speed-2'}


def test_pointer_patterns():
    assert CODE_POINTER.findall('see docs/training.md#exact-resume.') == ['docs/training.md#exact-resume']
    assert not OLD_POINTER.search('(docs/data.md#preparing-data)')
    assert OLD_POINTER.search('prepare the data (README, "Data preparation")')


def test_paths_are_read_from_comments_and_docstrings():
    source = ('"""Checked in tests/inference/test_tiling.py. See docs/<page>.md and tests/test_*.py."""\n'
              'import os  # tests/test_made_up.py, and the folder esrgan_plugin/config/.\n'
              'def f():\n'
              '    """Written by esrgan_plugin/data/preparation.py."""\n'
              "    return 'tests/in_a_string_only.py'\n")
    assert paths_named(source) == [(1, 'tests/inference/test_tiling.py'), (2, 'tests/test_made_up.py'),
                                   (2, 'esrgan_plugin/config'), (4, 'esrgan_plugin/data/preparation.py')]
    assert [(ROOT / path).exists() for _, path in paths_named(source)] == [True, False, True, True]


def test_a_pointer_resolves_only_to_an_existing_heading():
    source = ROOT / 'esrgan_plugin' / '__init__.py'
    assert problem_with('docs/data.md#preparing-data', ROOT, source) is None
    assert problem_with('README.md#install', ROOT, source) is None
    assert 'no heading' in problem_with('docs/data.md#data-preparation', ROOT, source)
    assert 'does not exist' in problem_with('docs/no-such-page.md#install', ROOT, source)
    assert 'outside the repository' in problem_with('../README.md', ROOT, source)
