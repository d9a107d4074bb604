"""Network definitions: load, validate and expose networks/*.toml.

One TOML file describes one network (networks.md): the sharechain constants at
the top level and the parent chain's under a `[parent]` table, with the
daemon sanity check under `[parent.RPC_CHECK]`. Keys are spelled exactly as the
spec names the constants, and the loaded objects use the same names as
attributes (`net.SHARE_PERIOD`, `net.PARENT.P2P_PREFIX`, ...).

Value conventions in the files:

* targets (MIN_TARGET, MAX_TARGET, SANE_TARGET_RANGE) are either a TOML
  integer (small values such as 0) or a string "0x" followed by exactly 64 hex
  digits: the display form of the 256-bit integer (README.md "Hex display");
* block hashes (GENESIS_HASH, RPC_CHECK.KNOWN_BLOCKS) are 64 hex digits in
  display form without "0x", as bitcoind and block explorers print them; they
  load as integers like every hash in the spec;
* byte strings (IDENTIFIER, PREFIX, P2P_PREFIX) are hex in wire order and load
  as bytes;
* SUBSIDY_FUNC is written declaratively as INITIAL_SUBSIDY and
  HALVING_INTERVAL (ParentNetwork.subsidy);
* VERSION_CHECK is the minimum getnetworkinfo().version (0 accepts every
  daemon) with VERSION_CHECK_MESSAGE as the refusal text (Network.version_check);
* parent.CHAIN is bitcoind's chain name ("main", "test", "regtest"): it selects
  the bitcoin.conf section and cookie folder, and RPC_CHECK.CHECK_CHAIN says
  whether getblockchaininfo().chain must equal it;
* "not defined" in the spec is written as SEGWIT_ACTIVATION_VERSION = 0, an
  empty string (ANNOUNCE_CHANNEL, RPC_CHECK.HELP_CONTAINS) or an omitted
  ADDRESS_P2SH_VERSION / HUMAN_READABLE_PART, the only optional keys.

Every other key is required; unknown keys, wrong types and out-of-range values
are refused. All failures raise NetworkConfigError naming the file and the key.
"""
import dataclasses
import difflib
import os
import platform
import re
import tomllib

from p2pool.app import resources
from p2pool.bitcoin.hashes import POW_FUNCTIONS, pow_hashes

# The fixed P2PK donation output present in every P2Pool block
# (serialization.md §6.6); identical on every network.
DONATION_SCRIPT = bytes.fromhex(
    '4104ffd03de44a6e11b9917f3a29f9443283d9871c9d743ef30d5eddcd37094b64d1b3'
    'd8090496b53256786bf5c82932ec23c3b74d9f05a6f95a8b5529352656664bac')

# Parents whose addresses are Base58 + cashaddr rather than Base58 + bech32.
CASH_SYMBOLS = frozenset({'BCH', 'tBCH', 'BSV', 'tBSV'})

# Share-format lineages this node implements (README.md: one per network).
LINEAGES = ('jt',)

_TOP_TARGET = 2**256 - 1
_NAME_PATTERN = re.compile(r'[A-Za-z0-9_][A-Za-z0-9_.-]*')
_TARGET_PATTERN = re.compile(r'0x[0-9A-Fa-f]{64}')
_HASH_PATTERN = re.compile(r'[0-9A-Fa-f]{64}')
_ADDR_PATTERN = re.compile(r'(?P<host>[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::(?P<port>[0-9]{1,5}))?')
_TOML_TYPE_NAMES = {str: 'string', bool: 'boolean', int: 'integer', float: 'float',
                    list: 'array', dict: 'table'}


class NetworkConfigError(ValueError):
    """A network definition is missing, unreadable or invalid.

    `path` is the file concerned (None if no file was found) and `field` the
    dotted key at fault (None for whole-file problems); both also appear in
    the message.
    """

    def __init__(self, message, path=None, field=None):
        super().__init__(message)
        self.path = path
        self.field = field


class _Invalid(Exception):
    """A value failed its check; the loader adds the file and the key."""


def _type_name(value):
    return _TOML_TYPE_NAMES.get(type(value), 'date/time')


def _expect(value, kind, kind_name):
    # type() rather than isinstance(): TOML booleans must not pass as integers.
    if type(value) is not kind:
        raise _Invalid('must be %s, not %s %r' % (kind_name, _type_name(value), value))
    return value


def _integer(low, high=None):
    def parse(value):
        _expect(value, int, 'an integer')
        if value < low or (high is not None and value > high):
            bounds = '%d..%d' % (low, high) if high is not None else '>= %d' % low
            raise _Invalid('%d is out of range (%s)' % (value, bounds))
        return value
    return parse


_port = _integer(1, 65535)


def _boolean(value):
    return _expect(value, bool, 'a boolean (true/false)')


def _string(pattern=None, description=None, allow_empty=True):
    def parse(value):
        _expect(value, str, 'a string')
        if not value and not allow_empty:
            raise _Invalid('must not be empty')
        if value and pattern is not None and not pattern.fullmatch(value):
            raise _Invalid('%r is not %s' % (value, description))
        return value
    return parse


def _target(value):
    if type(value) is int:
        if not 0 <= value <= _TOP_TARGET:
            raise _Invalid('%d is out of range (0..2**256-1)' % value)
        return value
    if type(value) is str:
        if not _TARGET_PATTERN.fullmatch(value):
            raise _Invalid('%r is not "0x" followed by 64 hex digits' % value)
        return int(value, 16)
    raise _Invalid('must be an integer or a "0x..." hex string, not %s %r'
                   % (_type_name(value), value))


def _hex_bytes(size):
    pattern = re.compile('[0-9A-Fa-f]{%d}' % (2 * size))

    def parse(value):
        _expect(value, str, 'a hex string')
        if not pattern.fullmatch(value):
            raise _Invalid('%r is not %d bytes of hex (%d digits)' % (value, size, 2 * size))
        return bytes.fromhex(value)
    return parse


def _block_hash(value):
    _expect(value, str, 'a hex string')
    if not _HASH_PATTERN.fullmatch(value):
        raise _Invalid('%r is not a block hash (64 hex digits, display order)' % value)
    return int(value, 16)


def _list_of(item_parse, unique=False):
    def parse(value):
        _expect(value, list, 'an array')
        items = []
        for index, item in enumerate(value):
            try:
                items.append(item_parse(item))
            except _Invalid as problem:
                raise _Invalid('item %d: %s' % (index, problem)) from None
        if unique and len(set(items)) != len(items):
            raise _Invalid('contains duplicates')
        return tuple(items)
    return parse


def _bootstrap_addr(value):
    _expect(value, str, 'a string')
    match = _ADDR_PATTERN.fullmatch(value)
    if match is None:
        raise _Invalid('%r is not "host" or "host:port"' % value)
    if match.group('port') is not None:
        _port(int(match.group('port')))
    return value


def _softforks(value):
    return frozenset(_list_of(_string(allow_empty=False), unique=True)(value))


def _sane_target_range(value):
    bounds = _list_of(_target)(value)
    if len(bounds) != 2:
        raise _Invalid('must be [low, high], got %d items' % len(bounds))
    if bounds[0] > bounds[1]:
        raise _Invalid('low bound is above the high bound')
    return bounds


def _pow_func(value):
    _expect(value, str, 'a string')
    if value not in POW_FUNCTIONS:
        raise _Invalid('%r is not one of %s' % (value, ', '.join(sorted(POW_FUNCTIONS))))
    return value


def _lineage(value):
    _expect(value, str, 'a string')
    if value not in LINEAGES:
        raise _Invalid('%r is not implemented (supported: %s)' % (value, ', '.join(LINEAGES)))
    return value


def _key(parse, optional=False):
    """A dataclass field read from the TOML key of the same name."""
    return dataclasses.field(metadata={'parse': parse, 'optional': optional})


def _table(cls, toml_key=None):
    """A dataclass field read from a sub-table (default: same name as the field)."""
    return dataclasses.field(metadata={'table': cls, 'toml_key': toml_key})


@dataclasses.dataclass(frozen=True, kw_only=True)
class RpcCheck:
    """Sanity check of the connected daemon at start-up (networks.md §3).

    All given conditions must hold: `getblockheader` succeeds for each of
    KNOWN_BLOCKS, `getblockchaininfo().chain == PARENT.CHAIN` if CHECK_CHAIN,
    and the `help()` text contains HELP_CONTAINS (not checked when empty).
    """
    KNOWN_BLOCKS: tuple = _key(_list_of(_block_hash, unique=True))
    CHECK_CHAIN: bool = _key(_boolean)
    HELP_CONTAINS: str = _key(_string())


@dataclasses.dataclass(frozen=True, kw_only=True)
class ParentNetwork:
    """The coin being mined (networks.md §2)."""
    SYMBOL: str = _key(_string(allow_empty=False))
    CHAIN: str = _key(_string(re.compile(r'[a-z0-9]+'), 'a bitcoind chain name such as "main"',
                              allow_empty=False))
    P2P_PREFIX: bytes = _key(_hex_bytes(4))
    P2P_PORT: int = _key(_port)
    RPC_PORT: int = _key(_port)
    ADDRESS_VERSION: int = _key(_integer(0, 255))
    ADDRESS_P2SH_VERSION: int = _key(_integer(0, 255), optional=True)
    HUMAN_READABLE_PART: str = _key(_string(re.compile(r'[a-z0-9]{1,83}'),
                                            'a lower-case bech32/cashaddr prefix',
                                            allow_empty=False), optional=True)
    POW_FUNC: str = _key(_pow_func)
    BLOCK_PERIOD: int = _key(_integer(1))
    INITIAL_SUBSIDY: int = _key(_integer(0))
    HALVING_INTERVAL: int = _key(_integer(1))
    DUMB_SCRYPT_DIFF: int = _key(_integer(1))
    DUST_THRESHOLD: int = _key(_integer(0))
    SANE_TARGET_RANGE: tuple = _key(_sane_target_range)
    GENESIS_HASH: int = _key(_block_hash)
    CONF_FOLDER: str = _key(_string(re.compile(r'[^/\\]+'), 'a single folder name', allow_empty=False))
    CONF_FILE_NAME: str = _key(_string(re.compile(r'[^/\\]+'), 'a file name', allow_empty=False))
    BLOCK_EXPLORER_URL_PREFIX: str = _key(_string())
    ADDRESS_EXPLORER_URL_PREFIX: str = _key(_string())
    TX_EXPLORER_URL_PREFIX: str = _key(_string())
    RPC_CHECK: RpcCheck = _table(RpcCheck)

    @property
    def is_cash(self) -> bool:
        """True for BCH/BSV-style parents (cashaddr addresses, never segwit)."""
        return self.SYMBOL in CASH_SYMBOLS

    def subsidy(self, height) -> int:
        """SUBSIDY_FUNC(height) in satoshis, with the spec's one-block-early halving.

        networks.md §4: INITIAL_SUBSIDY >> ((height + 1) // HALVING_INTERVAL), so
        on Bitcoin subsidy(209999) is already 25 BTC. Raises ValueError for a
        negative height.
        """
        if type(height) is not int or height < 0:
            raise ValueError('height must be a non-negative integer, not %r' % (height,))
        return self.INITIAL_SUBSIDY >> ((height + 1) // self.HALVING_INTERVAL)

    def pow_hash(self, header) -> int:
        """Proof-of-work hash of a serialized 80-byte header, as an integer."""
        return POW_FUNCTIONS[self.POW_FUNC](header)

    def pow_hashes(self, headers) -> list[int]:
        """pow_hash of each header, in order; a batch of scrypt headers is hashed on several threads."""
        return pow_hashes(self.POW_FUNC, headers)

    def conf_file_path(self, system=None, environ=None, home=None) -> str:
        """Default location of the daemon's config file (the original's CONF_FILE_FUNC).

        `system` is platform.system() ('Windows', 'Darwin', other), `environ`
        supplies APPDATA on Windows and `home` the user's home folder; all
        default to the running machine.
        """
        system = platform.system() if system is None else system
        environ = os.environ if environ is None else environ
        home = os.path.expanduser('~') if home is None else home
        if system == 'Windows':
            folder = os.path.join(environ.get('APPDATA', home), self.CONF_FOLDER)
        elif system == 'Darwin':
            folder = os.path.join(home, 'Library', 'Application Support', self.CONF_FOLDER)
        else:
            folder = os.path.join(home, '.' + self.CONF_FOLDER.lower())
        return os.path.join(folder, self.CONF_FILE_NAME)


@dataclasses.dataclass(frozen=True, kw_only=True)
class Network:
    """A sharechain network and its parent (networks.md §1); build with load_network."""
    NAME: str            # the file stem: `--net NAME`, the data sub-directory
    PATH: str            # the file it was loaded from
    LINEAGE: str = _key(_lineage)
    SHARE_PERIOD: int = _key(_integer(1))
    CHAIN_LENGTH: int = _key(_integer(1))
    REAL_CHAIN_LENGTH: int = _key(_integer(1))
    TARGET_LOOKBEHIND: int = _key(_integer(2))
    SPREAD: int = _key(_integer(1))
    IDENTIFIER: bytes = _key(_hex_bytes(8))
    PREFIX: bytes = _key(_hex_bytes(8))
    P2P_PORT: int = _key(_port)
    WORKER_PORT: int = _key(_port)
    MIN_TARGET: int = _key(_target)
    MAX_TARGET: int = _key(_target)
    PERSIST: bool = _key(_boolean)
    MINIMUM_PROTOCOL_VERSION: int = _key(_integer(0))
    SEGWIT_ACTIVATION_VERSION: int = _key(_integer(0))
    SOFTFORKS_REQUIRED: frozenset = _key(_softforks)
    BLOCK_MAX_SIZE: int = _key(_integer(1))
    BLOCK_MAX_WEIGHT: int = _key(_integer(1))
    VERSION_CHECK: int = _key(_integer(0))
    VERSION_CHECK_MESSAGE: str = _key(_string())
    ANNOUNCE_CHANNEL: str = _key(_string())
    BOOTSTRAP_ADDRS: tuple = _key(_list_of(_bootstrap_addr, unique=True))
    PARENT: ParentNetwork = _table(ParentNetwork, toml_key='parent')

    def version_check(self, daemon_version) -> str | None:
        """VERSION_CHECK: None if getnetworkinfo().version is acceptable, else the reason."""
        if daemon_version >= self.VERSION_CHECK:
            return None
        return self.VERSION_CHECK_MESSAGE or 'daemon version %d is older than %d' % (
            daemon_version, self.VERSION_CHECK)

    def is_segwit_version(self, share_version) -> bool:
        """Whether shares of this VERSION have the segwit layout (shares.md §1)."""
        return 0 < self.SEGWIT_ACTIVATION_VERSION <= share_version

    def bootstrap_endpoints(self) -> tuple[tuple[str, int], ...]:
        """BOOTSTRAP_ADDRS as (host, port) pairs; entries without a port use P2P_PORT."""
        endpoints = []
        for addr in self.BOOTSTRAP_ADDRS:
            match = _ADDR_PATTERN.fullmatch(addr)
            assert match is not None, 'BOOTSTRAP_ADDRS are checked when the network is loaded'
            port = match.group('port')
            endpoints.append((match.group('host').strip('[]'), int(port) if port else self.P2P_PORT))
        return tuple(endpoints)


def _file_fields(cls):
    """{TOML key: dataclass field} of the keys a file must/may hold for cls."""
    keys = {}
    for field in dataclasses.fields(cls):
        if 'parse' in field.metadata:
            keys[field.name] = field
        elif 'table' in field.metadata:
            keys[field.metadata['toml_key'] or field.name] = field
    return keys


def _build(cls, table, path, prefix=''):
    """Parse one TOML table into keyword arguments for cls, strictly."""
    keys = _file_fields(cls)
    for key in table:
        if key not in keys:
            close = difflib.get_close_matches(key, keys, n=1)
            hint = ' (did you mean %r?)' % close[0] if close else ''
            raise NetworkConfigError('%s: %s: unknown key%s' % (path, prefix + key, hint),
                                     path, prefix + key)
    values = {}
    for key, field in keys.items():
        dotted = prefix + key
        if key not in table:
            if field.metadata.get('optional'):
                values[field.name] = None
                continue
            raise NetworkConfigError('%s: %s: missing required key' % (path, dotted), path, dotted)
        raw = table[key]
        if 'table' in field.metadata:
            if type(raw) is not dict:
                raise NetworkConfigError('%s: %s: must be a table, not %s'
                                         % (path, dotted, _type_name(raw)), path, dotted)
            sub_cls = field.metadata['table']
            values[field.name] = sub_cls(**_build(sub_cls, raw, path, dotted + '.'))
            continue
        try:
            values[field.name] = field.metadata['parse'](raw)
        except _Invalid as problem:
            raise NetworkConfigError('%s: %s: %s' % (path, dotted, problem), path, dotted) from None
    return values


def _check_consistency(values, path):
    """Rules that relate several keys; each names the key it blames."""
    parent = values['PARENT']
    rules = [
        ('REAL_CHAIN_LENGTH', values['REAL_CHAIN_LENGTH'] <= values['CHAIN_LENGTH'],
         'must not exceed CHAIN_LENGTH (the payout window lies inside the kept chain)'),
        ('TARGET_LOOKBEHIND', values['TARGET_LOOKBEHIND'] <= values['CHAIN_LENGTH'],
         'must not exceed CHAIN_LENGTH (the retarget reads that many ancestors)'),
        ('MAX_TARGET', values['MAX_TARGET'] > 0, 'must be above 0'),
        ('MIN_TARGET', values['MIN_TARGET'] <= values['MAX_TARGET'], 'must not exceed MAX_TARGET'),
        ('WORKER_PORT', values['WORKER_PORT'] != values['P2P_PORT'], 'must differ from P2P_PORT'),
        ('SEGWIT_ACTIVATION_VERSION', not (parent.is_cash and values['SEGWIT_ACTIVATION_VERSION']),
         'must be 0 on a cash parent (%s never has segwit)' % parent.SYMBOL),
    ]
    for key, holds, problem in rules:
        if not holds:
            raise NetworkConfigError('%s: %s: %s' % (path, key, problem), path, key)


def _resolve(name_or_path):
    """The file behind a network name (networks_dir()/NAME.toml) or an explicit path."""
    try:
        text = os.fspath(name_or_path)
    except TypeError:
        raise NetworkConfigError('a network is a name or a path, not %r' % (name_or_path,)) from None
    if isinstance(text, bytes):
        text = os.fsdecode(text)
    separators = [sep for sep in (os.sep, os.altsep) if sep]
    if text.endswith('.toml') or any(sep in text for sep in separators):
        return text
    if not _NAME_PATTERN.fullmatch(text):
        raise NetworkConfigError('invalid network name %r' % text)
    path = os.path.join(_networks_dir(), text + '.toml')
    if not os.path.isfile(path):
        raise NetworkConfigError('unknown network %r: no file %s (available: %s)'
                                 % (text, path, ', '.join(list_networks()) or 'none'), path)
    return path


def _networks_dir():
    try:
        return resources.networks_dir()
    except FileNotFoundError as problem:
        raise NetworkConfigError(str(problem)) from None


def load_network(name_or_path) -> Network:
    """Load and validate a network by name ('bitcoin') or path ('x/y.toml') -> Network."""
    path = _resolve(name_or_path)
    try:
        with open(path, 'rb') as file:
            document = tomllib.load(file)
    except OSError as problem:
        raise NetworkConfigError('%s: cannot read: %s' % (path, problem.strerror or problem), path) from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as problem:
        raise NetworkConfigError('%s: malformed TOML: %s' % (path, problem), path) from None
    values = _build(Network, document, path)
    _check_consistency(values, path)
    name = os.path.splitext(os.path.basename(path))[0]
    return Network(NAME=name, PATH=os.path.abspath(path), **values)


def list_networks() -> list[str]:
    """Names of the shipped networks (the stems of networks_dir()/*.toml), sorted."""
    directory = _networks_dir()
    return sorted(entry[:-len('.toml')] for entry in os.listdir(directory)
                  if entry.endswith('.toml') and os.path.isfile(os.path.join(directory, entry)))


def datadir_for(datadir, net) -> str:
    """The per-network data directory `<datadir>/<network name>` (web.md §3)."""
    return os.path.join(datadir, net.NAME)
