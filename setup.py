"""Package metadata for p2pool.

Network definitions (networks/*.toml) and the dashboard (web-static/) live at the
top of the checkout. They are installed as data files under
<prefix>/share/p2pool/ so that p2pool.app.resources finds them both from a checkout
and from an installed package.
"""
import os

from setuptools import Extension, find_packages, setup


def data_tree(top):
    """(install_dir, [files]) pairs for every folder below `top`."""
    pairs = []
    for folder, _dirs, files in os.walk(top):
        if files:
            pairs.append((os.path.join('share', 'p2pool', folder),
                          [os.path.join(folder, name) for name in sorted(files)]))
    return pairs


# The scrypt proof of work in C (p2pool/bitcoin/hashes.py uses it when it is importable). Optional: where it
# cannot be compiled (no compiler, no Python headers) the install goes on and hashlib.scrypt does the work.
SCRYPT_ACCELERATOR = Extension(
    'p2pool.bitcoin._scrypt', ['p2pool/bitcoin/_scrypt.c'], optional=True,
    extra_compile_args=[] if os.name == 'nt' else ['-O3'])
# The per-payee amounts of check_share's gentx outputs in C (p2pool/sharechain/outputs.py falls back to its
# Python code when it is missing, or answers None for values that do not fit its 128-bit arithmetic).
OUTPUTS_ACCELERATOR = Extension(
    'p2pool.sharechain._outputs', ['p2pool/sharechain/_outputs.c'], optional=True,
    extra_compile_args=[] if os.name == 'nt' else ['-O3'])
# The simulator's virtual clock in C (p2pool/sim/clock.py falls back to its Python classes). No fused
# multiply-add: its times must be the same doubles as the Python clock's.
CLOCK_ACCELERATOR = Extension(
    'p2pool.sim._clock', ['p2pool/sim/_clock.c', 'p2pool/sim/_links.c'], optional=True,
    depends=['p2pool/sim/_clock.h'],
    extra_compile_args=[] if os.name == 'nt' else ['-O3', '-ffp-contract=off'])


setup(
    name='p2pool',
    version='0.1.0',
    description='Decentralized Bitcoin mining pool node (P2Pool protocol 3501)',
    long_description=open('README.md', encoding='utf-8').read(),
    long_description_content_type='text/markdown',
    author='The p2pool maintainers',
    author_email='maintainers@users.noreply.h-seed-0c0ddaf7.example',
    license='GPL-3.0-or-later',
    license_files=['LICENSE'],
    classifiers=[
        'License :: OSI Approved :: GNU General Public License v3 or later (GPLv3+)',
        'Programming Language :: Python :: 3',
        'Framework :: Twisted',
        'Topic :: System :: Distributed Computing',
    ],
    python_requires='>=3.11',
    packages=find_packages(include=['p2pool', 'p2pool.*']),
    ext_modules=[SCRYPT_ACCELERATOR, OUTPUTS_ACCELERATOR, CLOCK_ACCELERATOR],
    install_requires=[
        'Twisted>=22.10',
        'python-bitcoinrpc>=1.0',
        'miniupnpc>=2.0',
        'prometheus_client>=0.16',
    ],
    extras_require={
        'test': ['pytest>=7', 'hypothesis>=6', 'pytest-timeout>=2.1', 'ruff>=0.6,<1', 'mypy>=1.10,<3'],
        'plot': ['matplotlib>=3.5'],    # p2pool simulate --plot
    },
    data_files=data_tree('networks') + data_tree('web-static'),
    entry_points={'console_scripts': ['p2pool = p2pool.app.main:console_main']},
)
