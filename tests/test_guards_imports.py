"""Import contracts: the seams of docs/ARCHITECTURE.md, checked on the source of every module.

Every `import` counts, also one inside a function: a lazy import hides a dependency, it does not remove it.
- no import cycles between the modules of p2pool;
- `p2pool.sharechain` and the pure parts of `p2pool.bitcoin` never import Twisted (directly or through p2pool);
- `p2pool.bitcoin` imports nothing of p2pool outside itself (it knows nothing of shares);
- `p2pool.sharechain` imports only the standard library, `p2pool.bitcoin`, `p2pool.events` and itself;
- `p2pool.p2p`, `p2pool.work` and `p2pool.web` never import one another.
"""
import ast
import os

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PACKAGE = os.path.join(ROOT, 'p2pool')

# The modules of bitcoin/ that talk to bitcoind over the network: the only ones allowed Twisted.
BITCOIN_NETWORK_MODULES = {'p2pool.bitcoin.rpc', 'p2pool.bitcoin.p2p', 'p2pool.bitcoin.template',
                           'p2pool.bitcoin.blocks', 'p2pool.bitcoin.daemon', 'p2pool.bitcoin.failover'}
ROOMS_APART = ('p2pool.p2p', 'p2pool.work', 'p2pool.web')


def _module_name(path):
    relative = os.path.relpath(path, ROOT)[:-len('.py')].split(os.sep)
    if relative[-1] == '__init__':
        relative = relative[:-1]
    return '.'.join(relative)


def _modules():
    found = {}
    for folder, _dirs, files in os.walk(PACKAGE):
        for name in files:
            if name.endswith('.py'):
                path = os.path.join(folder, name)
                found[_module_name(path)] = path
    return found


MODULES = _modules()


def _imports(module, path):
    """Every module named by an import statement of `module` (absolute names; from-imports of submodules too)."""
    tree = ast.parse(open(path, encoding='utf-8').read(), path)
    package = module if path.endswith('__init__.py') else module.rpartition('.')[0]
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ''
            if node.level:
                parts = package.split('.')
                parts = parts[:len(parts) - (node.level - 1)]
                base = '.'.join(parts + ([base] if base else []))
            names.add(base)
            names.update('%s.%s' % (base, alias.name) for alias in node.names)
    return names


def _internal(name):
    """The p2pool module `name` refers to (a from-import of a function names its module), or None."""
    while name and name not in MODULES:
        name = name.rpartition('.')[0]
    return name or None


IMPORTS = {module: _imports(module, path) for module, path in MODULES.items()}
GRAPH = {module: {target for target in map(_internal, names) if target and target != module}
         for module, names in IMPORTS.items()}
# A package's __init__ is imported by every import of its modules; an edge into it is not a dependency on the
# package's other modules, so cycles through an empty-ish __init__ are not counted.
for module in GRAPH:
    GRAPH[module] = {t for t in GRAPH[module] if not (t in MODULES and MODULES[t].endswith('__init__.py')
                                                      and module.startswith(t + '.'))}


def _cycles():
    index, low, stack, on_stack, found = {}, {}, [], set(), []
    counter = [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for target in sorted(GRAPH.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(GRAPH):
        if node not in index:
            visit(node)
    return found


def _reachable(start):
    seen, todo = set(), [start]
    while todo:
        for target in GRAPH.get(todo.pop(), ()):
            if target not in seen:
                seen.add(target)
                todo.append(target)
    return seen


def test_no_import_cycles():
    assert _cycles() == []


def _in(module, package):
    return module == package or module.startswith(package + '.')


def _pure(module):
    return _in(module, 'p2pool.sharechain') or (_in(module, 'p2pool.bitcoin')
                                                 and module not in BITCOIN_NETWORK_MODULES)


@pytest.mark.parametrize('module', sorted(m for m in MODULES if _pure(m)))
def test_pure_modules_never_import_twisted(module):
    for reached in {module} | _reachable(module):
        twisted = sorted(name for name in IMPORTS[reached] if name.split('.')[0] == 'twisted')
        assert not twisted, '%s reaches Twisted through %s (%s)' % (module, reached, twisted)


@pytest.mark.parametrize('module', sorted(m for m in MODULES if _in(m, 'p2pool.bitcoin')))
def test_bitcoin_knows_nothing_of_p2pool_outside_itself(module):
    outside = sorted(t for t in GRAPH[module] if not _in(t, 'p2pool.bitcoin') and t != 'p2pool')
    assert outside == []


@pytest.mark.parametrize('module', sorted(m for m in MODULES if _in(m, 'p2pool.sharechain')))
def test_sharechain_imports_only_bitcoin_and_events(module):
    allowed = ('p2pool.sharechain', 'p2pool.bitcoin', 'p2pool.events')
    outside = sorted(t for t in GRAPH[module] if t != 'p2pool' and not any(_in(t, a) for a in allowed))
    assert outside == []


@pytest.mark.parametrize('room', ROOMS_APART)
def test_p2p_work_and_web_never_import_one_another(room):
    others = [r for r in ROOMS_APART if r != room]
    crossing = sorted((m, t) for m in MODULES if _in(m, room) for t in GRAPH[m] if any(_in(t, o) for o in others))
    assert crossing == []
