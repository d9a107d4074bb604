"""Every protocol reference in the code and tests resolves to a section of docs/protocol/.

Code comments and docstrings cite the project's protocol reference as `<file>.md §<N>` or `<file>.md §<N>.<M>`
(and the known-answer vectors as `vectors.md A6` or `vectors.md §B`). This test scans `p2pool/`, `tests/` and
`bench/` for such citations and checks that each names a file in `docs/protocol/` that has a heading with that
section number, so a reference can never point nowhere after a section is renumbered or a file renamed.
"""
import os
import re
from collections import defaultdict

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOCS = os.path.join(ROOT, 'docs', 'protocol')
SCANNED_DIRS = ('p2pool', 'tests', 'bench')
SKIPPED_DIRS = {'__pycache__', '.pytest_cache', '.mypy_cache', '.ruff_cache'}
TEXT_SUFFIXES = ('.py', '.md', '.txt', '.json', '.toml', '.cfg', '.ini', '.yml', '.yaml', '.html', '.js', '.sh')

#: `shares.md §11.4`, `p2p.md § 4.7`, `vectors.md §B`: a lower-case file name, then a section number.
SECTION_REFERENCE = re.compile(r'\b([a-z][a-z0-9_]*\.md)\s*§\s*([A-Z]?\d+(?:\.\d+)*|[A-Z])(?![\w.]*\w)')
#: further sections of the same file right after one: `p2p.md §3, §4`, `shares.md §11.1-§11.8`, `§9/§12`.
FOLLOWING_SECTION = re.compile(r'\s*(?:,|-|–|/|and|or)\s*§\s*([A-Z]?\d+(?:\.\d+)*|[A-Z])(?![\w.]*\w)')
#: the vector groups are also cited without the sign: `vectors.md A6`, `vectors.md B`.
VECTOR_REFERENCE = re.compile(r'\b(vectors\.md)\s+([A-B]\d*)\b')
#: `## 4. Messages`, `### 4.12 remember_tx`, `## A6. getwork`, `## B. Constants`.
SECTION_HEADING = re.compile(r'^#{1,6}\s+([A-Z]?\d+(?:\.\d+)*|[A-Z])\.?\s', re.M)


def section_numbers(path):
    with open(path, encoding='utf-8') as f:
        return set(SECTION_HEADING.findall(f.read()))


def documented_sections():
    """{file name: set of section numbers} for every file of docs/protocol/."""
    return {name: section_numbers(os.path.join(DOCS, name)) for name in sorted(os.listdir(DOCS))
            if name.endswith('.md')}


def scanned_files():
    for top in SCANNED_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, top)):
            dirnames[:] = [d for d in dirnames if d not in SKIPPED_DIRS]
            for name in sorted(filenames):
                if name.endswith(TEXT_SUFFIXES):
                    yield os.path.join(dirpath, name)


def references():
    """{(file name, section): ['relative/path:line', ...]} for every citation in the scanned trees."""
    found = defaultdict(list)
    for path in scanned_files():
        if os.path.abspath(path) == os.path.abspath(__file__):
            continue                        # this file's own pattern examples are not references
        with open(path, encoding='utf-8', errors='replace') as f:
            for number, line in enumerate(f, 1):
                place = '%s:%d' % (os.path.relpath(path, ROOT), number)
                for name, section in cited_sections(line):
                    found[(name, section)].append(place)
    return found


def cited_sections(text):
    """[(file name, section)] cited in `text`, including the sections listed after a first one."""
    cited = VECTOR_REFERENCE.findall(text)
    for match in SECTION_REFERENCE.finditer(text):
        name = match.group(1)
        cited.append((name, match.group(2)))
        end = match.end()
        while following := FOLLOWING_SECTION.match(text, end):
            cited.append((name, following.group(1)))
            end = following.end()
    return cited


def test_the_reference_has_every_file_the_code_cites():
    expected = {'README.md', 'serialization.md', 'shares.md', 'sharechain.md', 'p2p.md', 'worker.md', 'web.md',
                'networks.md', 'vectors.md'}
    assert expected <= set(documented_sections())


def test_every_reference_names_an_existing_section():
    sections = documented_sections()
    found = references()
    assert sum(map(len, found.values())) > 200, 'the scan found almost no references; has the code moved?'
    dangling = ['%s §%s (%s)' % (name, section, ', '.join(places[:3]))
                for (name, section), places in sorted(found.items())
                if section not in sections.get(name, ())]
    assert not dangling, 'references to sections that docs/protocol/ does not have:\n' + '\n'.join(dangling)


@pytest.mark.parametrize('text, expected', [
    ('see shares.md §11.4 for the window', [('shares.md', '11.4')]),
    ('(p2p.md §4.7)', [('p2p.md', '4.7')]),
    ('web.md §2.4.', [('web.md', '2.4')]),
    ('serialization.md § 6.6, then', [('serialization.md', '6.6')]),
    ('vectors.md §B', [('vectors.md', 'B')]),
    ('sharechain.md §2–§5', [('sharechain.md', '2'), ('sharechain.md', '5')]),
    ('p2p.md §3, §4, §9 and more', [('p2p.md', '3'), ('p2p.md', '4'), ('p2p.md', '9')]),
    ('shares.md §11.1-§11.8: share_info', [('shares.md', '11.1'), ('shares.md', '11.8')]),
    ('shares.md §9/§12; vectors.md A6', [('vectors.md', 'A6'), ('shares.md', '9'), ('shares.md', '12')]),
    ('web.md §2.1, §3).', [('web.md', '2.1'), ('web.md', '3')]),
])
def test_reference_pattern(text, expected):
    assert cited_sections(text) == expected


def test_heading_pattern():
    text = '# Title\n## 1. Framing\n### 4.12 `remember_tx`\n## A6. getwork\n## B. Constants\n'
    assert SECTION_HEADING.findall(text) == ['1', '4.12', 'A6', 'B']


def test_tests_do_not_read_the_machine_local_spec():
    """The spec under /work/shared exists only on the development machine; tests use tests/vectors/."""
    offenders = []
    for path in scanned_files():
        if os.path.abspath(path) == os.path.abspath(__file__):
            continue
        with open(path, encoding='utf-8', errors='replace') as f:
            text = f.read()
        if 'shared/spec' in text or '../shared' in text:
            offenders.append(os.path.relpath(path, ROOT))
    assert not offenders, offenders
