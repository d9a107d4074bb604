"""docs/ARCHITECTURE.md matches the code: every `path.py::Name.attr` it cites exists, and each of the
two walks has at most 15 hops, each naming at least one function, as many as its heading says."""
import importlib
import os
import re

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DOC = os.path.join(ROOT, 'docs', 'ARCHITECTURE.md')
REFERENCE = re.compile(r'`((?:p2pool|tests)/[\w/]+\.py)::([A-Za-z_][\w.]*)`')
MAX_HOPS = 15


def _text():
    with open(DOC, encoding='utf-8') as f:
        return f.read()


def _resolve(path, dotted):
    module = importlib.import_module(path[:-len('.py')].replace('/', '.'))
    target = module
    for name in dotted.split('.'):
        target = getattr(target, name)
    return target


def test_every_reference_resolves_to_a_real_attribute():
    references = REFERENCE.findall(_text())
    assert len(references) >= 40
    missing = []
    for path, dotted in sorted(set(references)):
        assert os.path.exists(os.path.join(ROOT, path)), path
        try:
            _resolve(path, dotted)
        except AttributeError as e:
            missing.append('%s::%s (%s)' % (path, dotted, e))
    assert not missing, missing


def _walks():
    walks = re.findall(r'^## (Walk \d[^\n]*?) \((\d+) hops\)\n\n(.*?)(?=\n## |\n### |\Z)', _text(), re.S | re.M)
    assert len(walks) == 2
    return walks


@pytest.mark.parametrize('index', [0, 1])
def test_each_walk_is_short_and_every_hop_names_code(index):
    title, claimed, body = _walks()[index]
    hops = re.findall(r'^(\d+)\. (.*)$', body, re.M)
    assert [int(number) for number, _ in hops] == list(range(1, len(hops) + 1)), title
    assert len(hops) == int(claimed) <= MAX_HOPS, title
    for number, hop in hops:
        assert hop.startswith('`') and REFERENCE.match(hop), '%s hop %s names no function first' % (title, number)
        function = _resolve(*REFERENCE.match(hop).groups())
        assert callable(function), '%s hop %s: not a function' % (title, number)


def test_node_runner_only_wires():
    """app/main.py only wires: NodeRunner declares its attributes in __init__ and sets no attribute
    of the objects it builds (they take what they need in their constructors); the one exception is
    the clock of a LoopingCall, which Twisted only takes that way."""
    import ast
    with open(os.path.join(ROOT, 'p2pool', 'app', 'main.py'), encoding='utf-8') as f:
        tree = ast.parse(f.read())
    (runner,) = [node for node in tree.body if isinstance(node, ast.ClassDef) and node.name == 'NodeRunner']
    methods = [node for node in runner.body if isinstance(node, ast.FunctionDef)]

    def stores(method):
        return [node for node in ast.walk(method)
                if isinstance(node, ast.Attribute) and isinstance(node.ctx, ast.Store)]

    def on_self(node):
        return isinstance(node.value, ast.Name) and node.value.id == 'self'
    (init,) = [method for method in methods if method.name == '__init__']
    declared = {node.attr for node in stores(init) if on_self(node)}
    wrong = []
    for method in methods:
        for node in stores(method):
            if on_self(node) and node.attr not in declared:
                wrong.append('%s sets self.%s, not declared in __init__' % (method.name, node.attr))
            elif not on_self(node) and ast.unparse(node) != 'loop.clock':
                wrong.append('%s sets %s' % (method.name, ast.unparse(node)))
    assert not wrong, wrong
