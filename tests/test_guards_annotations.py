"""Every public function and method of p2pool says what it returns.

mypy checks sharechain/ and bitcoin/ strictly (setup.cfg); elsewhere it runs in basic mode, which
does not ask for annotations, so this test does: a public function (name without a leading
underscore, at module level or in a public class) of any module of p2pool needs a return
annotation. Nested functions and private helpers are free.
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'p2pool')
#: the rooms (sub-packages) and '' for the loose modules at the top of p2pool/
ROOMS = sorted(['', *(name for name in os.listdir(PACKAGE)
                      if os.path.isfile(os.path.join(PACKAGE, name, '__init__.py')))])


def _room_files(room):
    if not room:
        yield from (os.path.join(PACKAGE, name) for name in sorted(os.listdir(PACKAGE)) if name.endswith('.py'))
        return
    for folder, _dirs, files in os.walk(os.path.join(PACKAGE, room)):
        for name in sorted(files):
            if name.endswith('.py'):
                yield os.path.join(folder, name)


def _unannotated(path):
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    found = []

    def visit(node, scope):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                if not child.name.startswith('_') and child.returns is None:
                    found.append('%s:%d %s%s' % (os.path.relpath(path, ROOT), child.lineno, scope, child.name))
            elif isinstance(child, ast.ClassDef) and not child.name.startswith('_'):
                visit(child, scope + child.name + '.')

    visit(tree, '')
    return found


@pytest.mark.parametrize('room', ROOMS, ids=[room or 'top' for room in ROOMS])
def test_public_functions_have_return_annotations(room):
    missing = [entry for path in _room_files(room) for entry in _unannotated(path)]
    assert missing == []
