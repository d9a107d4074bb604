"""Where the data files shipped with p2pool are: networks/ and web-static/.

From a checkout (also `pip install -e .`) they sit beside the p2pool package;
from an installed package setup.py puts them under <prefix>/share/p2pool/.
"""
import os
import sys
import sysconfig

# p2pool/app/resources.py -> the checkout is three levels up.
_CHECKOUT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _candidates(name):
    yield os.path.join(_CHECKOUT, name)
    seen = set()
    for prefix in (sysconfig.get_path('data'), sys.prefix, sys.base_prefix,
                   os.path.expanduser('~/.local')):
        if prefix and prefix not in seen:
            seen.add(prefix)
            yield os.path.join(prefix, 'share', 'p2pool', name)


def data_dir(name) -> str:
    """Absolute path of the shipped folder `name` ('networks' or 'web-static')."""
    for path in _candidates(name):
        if os.path.isdir(path):
            return path
    raise FileNotFoundError('p2pool data folder %r not found (is p2pool installed?)' % name)


def networks_dir() -> str:
    return data_dir('networks')


def web_static_dir() -> str:
    return data_dir('web-static')
