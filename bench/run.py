#!/usr/bin/env python3
"""Run the benchmarks and print one line per figure: `NAME VALUE UNIT`.

    python bench/run.py                 # every benchmark
    python bench/run.py NAME [NAME...]  # only these figures
    python bench/run.py --list          # the figure names
    python bench/run.py --help          # this text

Each bench/bench_*.py module exposes BENCHMARKS = {name: fn}, where fn() returns
(value, unit). Every figure runs in a fresh Python process so that memory and
cold-start figures are not skewed by what ran before.
"""
import glob
import importlib.util
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [HERE, os.path.dirname(HERE)]


def load_modules():
    for path in sorted(glob.glob(os.path.join(HERE, 'bench_*.py'))):
        name = os.path.splitext(os.path.basename(path))[0]
        spec = importlib.util.spec_from_file_location(name, path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        yield module


def all_benchmarks():
    found = {}
    for module in load_modules():
        for name, fn in getattr(module, 'BENCHMARKS', {}).items():
            found[name] = fn
    return found


def run_one(name):
    value, unit = all_benchmarks()[name]()
    print('%s %s %s' % (name, ('%.6g' % value) if isinstance(value, float) else value, unit), flush=True)


def main(argv):
    if argv[:1] == ['--one']:
        run_one(argv[1])
        return 0
    if argv[:1] in (['-h'], ['--help']):
        print(__doc__.strip())
        return 0
    names = sorted(all_benchmarks())
    if argv[:1] == ['--list']:
        print('\n'.join(names))
        return 0
    unknown = [n for n in argv if n not in names]
    if unknown:
        print('unknown benchmark(s): %s (see --list)' % ', '.join(unknown), file=sys.stderr)
        return 2
    failures = 0
    for name in argv or names:
        result = subprocess.run([sys.executable, os.path.abspath(__file__), '--one', name])
        if result.returncode:
            print('%s FAILED -' % name, flush=True)
            failures += 1
    return 1 if failures else 0


if __name__ == '__main__':
    sys.exit(main(sys.argv[1:]))
