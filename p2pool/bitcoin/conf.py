"""Where bitcoind's RPC credentials and ports come from (worker.md §10, §12).

Order of precedence, per setting:

1. the command line (--bitcoind-rpc-port, --bitcoind-p2p-port, positional user/pass);
2. bitcoin.conf (or litecoin.conf ...): `rpcuser`, `rpcpassword`, `rpcport`, `port`,
   `datadir`, read from the top of the file and from the chain's section
   (`[main]`, `[test]`, `[regtest]`), the section winning. As in bitcoind, the
   network-specific options (`rpcport`, `port`) written above any section only
   apply to the main chain;
3. the `.cookie` file bitcoind writes in its data directory (`<datadir>/.cookie`,
   `<datadir>/testnet3/.cookie`, `<datadir>/regtest/.cookie`);
4. the parent network's defaults (RPC_PORT, P2P_PORT).

Malformed input raises ConfError (a ValueError) with a one-line message.
"""
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any


class ConfError(ValueError):
    """A configuration file or cookie that cannot be used."""


#: options that bitcoind only honours in the top part of the file for the main chain
NETWORK_ONLY_OPTIONS = frozenset({'rpcport', 'port', 'rpcbind', 'bind', 'connect', 'addnode', 'wallet'})

#: data-directory subfolder where each chain keeps its .cookie
CHAIN_SUBDIRS = {'main': '', 'test': 'testnet3', 'regtest': 'regtest', 'testnet4': 'testnet4',
                 'signet': 'signet'}


@dataclass
class BitcoindAccess:
    host: str
    rpc_port: int
    p2p_port: int
    user: str
    password: str
    #: where the credentials came from: 'command line', a conf file path, or a cookie path
    credentials_source: str


def parse_conf(text: str, chain: str = 'main') -> dict[str, str]:
    """Settings of `chain` from bitcoin.conf text: top-level values overridden by [chain]."""
    top: dict[str, str] = {}
    sections: dict[str, dict[str, str]] = {}
    section: str | None = None
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.split('#', 1)[0].strip()
        if not line:
            continue
        if line.startswith('['):
            if not line.endswith(']') or len(line) < 3:
                raise ConfError('line %d: malformed section header %r' % (number, raw.strip()))
            section = line[1:-1].strip()
            sections.setdefault(section, {})
            continue
        if '=' not in line:
            # bitcoind accepts a bare option name as "name=1"
            key, value = line, '1'
        else:
            key, value = (part.strip() for part in line.split('=', 1))
        if not key:
            raise ConfError('line %d: option without a name' % number)
        if '.' in key and section is None:
            # "regtest.rpcport=..." is bitcoind's inline form of a section
            section_name, key = key.split('.', 1)
            sections.setdefault(section_name, {})[key] = value
            continue
        (top if section is None else sections[section])[key] = value
    settings = {key: value for key, value in top.items()
                if chain == 'main' or key not in NETWORK_ONLY_OPTIONS}
    settings.update(sections.get(chain, {}))
    return settings


def default_datadir(conf_name: str = 'bitcoin.conf', platform: str | None = None,
                    environ: Mapping[str, str] | None = None, home: str | None = None) -> str:
    """bitcoind's default data directory for a coin whose config file is `conf_name`."""
    platform = platform or sys.platform
    environ = os.environ if environ is None else environ
    home = home or os.path.expanduser('~')
    coin = conf_name.rsplit('.', 1)[0]  # 'bitcoin', 'litecoin', ...
    if platform.startswith('win'):
        return os.path.join(environ.get('APPDATA', home), coin.capitalize())
    if platform == 'darwin':
        return os.path.join(home, 'Library', 'Application Support', coin.capitalize())
    return os.path.join(home, '.' + coin)


def chain_of(parent: object) -> str:
    """'main', 'test' or 'regtest' for a parent network (from CHAIN or its name/symbol)."""
    chain: str | None = getattr(parent, 'CHAIN', None)
    if chain:
        return chain
    name = (getattr(parent, 'NAME', '') or '').lower()
    symbol = getattr(parent, 'SYMBOL', '') or ''
    if 'regtest' in name or symbol.startswith('r'):
        return 'regtest'
    if 'test' in name or symbol.startswith('t'):
        return 'test'
    return 'main'


def read_cookie(datadir: str, chain: str = 'main') -> tuple[str, str, str] | None:
    """(user, password, cookie_path) from bitcoind's .cookie, or None when there is none."""
    path = os.path.join(datadir, CHAIN_SUBDIRS.get(chain, chain), '.cookie')
    try:
        with open(path, encoding='utf-8') as f:
            content = f.read().strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfError('cannot read the bitcoind cookie %s: %s' % (path, e)) from None
    user, sep, password = content.partition(':')
    if not sep or not user:
        raise ConfError('the bitcoind cookie %s is not of the form user:password' % path)
    return user, password, path


def _int_setting(settings: Mapping[str, str], key: str, source: str) -> int:
    try:
        return int(settings[key])
    except ValueError:
        raise ConfError('%s: %s=%r is not a number' % (source, key, settings[key])) from None


def resolve_access(parent: Any, host: str = '127.0.0.1', rpc_port: int | None = None, p2p_port: int | None = None,
                   user: str | None = None, password: str | None = None, conf_path: str | None = None,
                   conf_name: str = 'bitcoin.conf', datadir: str | None = None) -> BitcoindAccess:
    """Combine command line, config file and cookie into a BitcoindAccess (raises ConfError).

    `conf_path` given explicitly must exist; the default path may be absent.
    """
    chain = chain_of(parent)
    explicit_conf = conf_path is not None
    conf_name = getattr(parent, 'CONF_FILE_NAME', None) or conf_name
    if datadir is None and hasattr(parent, 'conf_file_path'):
        datadir = os.path.dirname(parent.conf_file_path())
    datadir = datadir or default_datadir(conf_name)
    conf_path = conf_path or os.path.join(datadir, conf_name)
    settings: dict[str, str] = {}
    try:
        with open(conf_path, encoding='utf-8') as f:
            settings = parse_conf(f.read(), chain)
    except FileNotFoundError:
        if explicit_conf:
            raise ConfError('bitcoind config file %s does not exist' % conf_path) from None
    except (OSError, UnicodeDecodeError) as e:
        raise ConfError('cannot read bitcoind config file %s: %s' % (conf_path, e)) from None
    except ConfError as e:
        raise ConfError('%s: %s' % (conf_path, e)) from None

    if rpc_port is None:
        rpc_port = _int_setting(settings, 'rpcport', conf_path) if 'rpcport' in settings else parent.RPC_PORT
    if p2p_port is None:
        p2p_port = _int_setting(settings, 'port', conf_path) if 'port' in settings else parent.P2P_PORT

    if password is not None:
        # a lone positional argument is the password; the user then comes from the conf file
        user = user if user is not None else settings.get('rpcuser', '')
        source = 'command line'
    elif 'rpcpassword' in settings:
        user = user if user is not None else settings.get('rpcuser', '')
        password, source = settings['rpcpassword'], conf_path
    else:
        cookie = read_cookie(settings.get('datadir') or datadir, chain)
        if cookie is None:
            raise ConfError('no bitcoind RPC credentials: give user and password on the command line, set '
                            'rpcuser/rpcpassword in %s, or let bitcoind write its .cookie in %s'
                            % (conf_path, settings.get('datadir') or datadir))
        user, password, source = cookie
    return BitcoindAccess(host=host, rpc_port=int(rpc_port), p2p_port=int(p2p_port), user=user,
                          password=password, credentials_source=source)
