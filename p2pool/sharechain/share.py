"""Share formats of the [jt] lineage: wire wrapper, layouts, constructor checks (shares.md §1-§10).

A Share is one decoded share with every derived value computed once at
construction and stored as a plain attribute (hash, pow_hash, gentx_hash,
target, work, payout_address, ...): the node loads ~17,000 of them at start-up
and reads these attributes on every hot path.

Layouts are declared with p2pool.bitcoin.serialize, one description per
(VERSION, segwit layout) pair, built by `layout_for(version, net)`.

Errors (all ValueError):
    ShareDecodeError   bytes that do not form an acceptable share -> disconnect the peer
    ShareMisbehaviour  a share a peer should never send (bad PoW, target, check) -> ban
    ShareObsolete      wire type below 17 (a ShareMisbehaviour)
    ShareInvalid       failed full validation (verify.check_share; a ShareMisbehaviour)
"""
import struct
from typing import Any, NamedTuple

from p2pool.bitcoin import address as bitcoin_address
from p2pool.bitcoin import serialize as s
from p2pool.bitcoin.data import bits_to_target, target_to_average_attempts
from p2pool.bitcoin.hashes import hash256, sha256, sha256_from_state, sha256_state_after
from p2pool.sharechain.tracker import Tracker

# --- errors -----------------------------------------------------------------


class ShareDecodeError(ValueError):
    """Malformed share or failed constructor check 1-6 (shares.md §10): disconnect the peer."""


class ShareMisbehaviour(ShareDecodeError):
    """A share no honest peer sends (target/PoW invalid, failed check): ban the peer."""


class ShareObsolete(ShareMisbehaviour):
    """Wire type below the lowest supported version (17)."""


class ShareInvalid(ShareMisbehaviour):
    """The share failed full validation (shares.md §12)."""


# --- version table (shares.md §1, [jt] lineage) -------------------------------

#: a config.Network (or a test's stand-in); the sharechain reads its upper-case attributes only
Net = Any
#: the dict-shaped records of the share layouts (keys as in the Struct declarations below)
Record = dict[str, Any]


class ShareVersion(NamedTuple):
    VERSION: int
    NAME: str
    VOTING_VERSION: int
    SUCCESSOR: int | None
    MINIMUM_PROTOCOL_VERSION: int

SHARE_VERSIONS = {
    17: ShareVersion(17, 'Share', 17, 35, 1400),
    32: ShareVersion(32, 'PreSegwitShare', 32, 35, 1400),
    33: ShareVersion(33, 'NewShare', 33, 35, 3300),
    34: ShareVersion(34, 'SegwitMiningShare', 34, 35, 3300),
    35: ShareVersion(35, 'PaddingBugfixShare', 35, None, 3500),
}
SUPPORTED_VERSIONS = tuple(sorted(SHARE_VERSIONS))
LOWEST_SUPPORTED_VERSION = SUPPORTED_VERSIONS[0]
INITIAL_VERSION = 17          # a new chain starts with this version
FIRST_ADDRESS_VERSION = 34    # from here on: payee as address text, no transaction lists


def voting_version(version: int) -> int:
    """The desired_version a share of `version` votes for: (SUCCESSOR or own).VOTING_VERSION."""
    info = SHARE_VERSIONS[version]
    return SHARE_VERSIONS[info.SUCCESSOR or info.VERSION].VOTING_VERSION


def is_segwit_layout(version: int, net: Net) -> bool:
    """Whether shares of `version` carry segwit_data on `net` (shares.md §1)."""
    activation: int = getattr(net, 'SEGWIT_ACTIVATION_VERSION', 0) or 0
    return 0 < activation <= version


def padding_for_version(version: int) -> bool:
    """Address -> script padding rule (serialization.md §6.4): ON iff VERSION >= 35."""
    return version >= 35


# --- wire types (shares.md §3, §4) --------------------------------------------

GENTX_BEFORE_REFHASH = (s.VarStr.pack(bitcoin_address.DONATION_SCRIPT) + b'\x00' * 8
                        + bytes.fromhex('2a6a28'))
NONE_SEGWIT = {'txid_merkle_link': {'branch': [], 'index': 0}, 'wtxid_merkle_root': 2**256 - 1}
STALE_INFO: dict[int, str | None] = {0: None, 253: 'orphan', 254: 'doa'}
STALE_INFO.update((k, 'unk%d' % k) for k in range(1, 253))
STALE_INFO[255] = 'unk255'

share_merkle_link_type = s.Struct('share_merkle_link', [('branch', s.List(s.u256)), ('index', s.Zero)])
min_header_type = s.Struct('min_header', [
    ('version', s.VarInt),
    ('previous_block', s.PossiblyNone(0, s.u256)),
    ('timestamp', s.u32),
    ('bits', s.Bits),
    ('nonce', s.u32),
])
segwit_data_type = s.PossiblyNone(NONE_SEGWIT, s.Struct('segwit_data', [
    ('txid_merkle_link', share_merkle_link_type),
    ('wtxid_merkle_root', s.u256),
]))
hash_link_type = s.Struct('hash_link', [
    ('state', s.FixedStr(32)),
    ('extra_data', s.FixedStr(0)),
    ('length', s.VarInt),
])

class Layout(NamedTuple):
    version: int
    segwit: bool
    share_data_type: s.Struct
    share_info_type: s.Struct
    contents_type: s.Struct


_layouts: dict[tuple[int, bool], Layout] = {}


def _build_layout(version: int, segwit: bool) -> Layout:
    payee: list[tuple[str, s.Type[Any]]] = (
        [('address', s.VarStr)] if version >= FIRST_ADDRESS_VERSION else [('pubkey_hash', s.u160)])
    head: list[tuple[str, s.Type[Any]]] = [
        ('previous_share_hash', s.PossiblyNone(0, s.u256)),
        ('coinbase', s.VarStr),
        ('nonce', s.u32),
    ]
    share_data_type = s.Struct('share_data', head + payee + [
        ('subsidy', s.u64),
        ('donation', s.u16),
        ('stale_info', s.Enum(s.u8, STALE_INFO)),
        ('desired_version', s.VarInt),
    ])
    info_fields: list[tuple[str, s.Type[Any]]] = [('share_data', share_data_type)]
    if segwit:
        info_fields.append(('segwit_data', segwit_data_type))
    if version < FIRST_ADDRESS_VERSION:
        info_fields += [('new_transaction_hashes', s.List(s.u256)),
                        ('transaction_hash_refs', s.List(s.VarInt, 2))]
    info_fields += [
        ('far_share_hash', s.PossiblyNone(0, s.u256)),
        ('max_bits', s.Bits),
        ('bits', s.Bits),
        ('timestamp', s.u32),
        ('absheight', s.u32),
        ('abswork', s.u128),
    ]
    share_info_type = s.Struct('share_info', info_fields)
    contents_type = s.Struct('share_v%d%s' % (version, '_segwit' if segwit else ''), [
        ('min_header', min_header_type),
        ('share_info', share_info_type),
        ('ref_merkle_link', share_merkle_link_type),
        ('last_txout_nonce', s.u64),
        ('hash_link', hash_link_type),
        ('merkle_link', share_merkle_link_type),
    ])
    return Layout(version, segwit, share_data_type, share_info_type, contents_type)


def layout_for(version: int, net: Net) -> Layout:
    """The Layout of share `version` on `net` (ShareDecodeError for unsupported versions)."""
    if version not in SHARE_VERSIONS:
        raise ShareDecodeError('unsupported share version %r' % (version,))
    key = (version, is_segwit_layout(version, net))
    layout = _layouts.get(key)
    if layout is None:
        layout = _layouts[key] = _build_layout(*key)
    return layout


_READ_ERRORS = (s.DecodeError, IndexError, ValueError, KeyError, TypeError, OverflowError, struct.error)


# --- hash_link (shares.md §8) ------------------------------------------------

class HashLinkError(ValueError):
    """A hash_link that cannot describe the given data."""


def prefix_to_hash_link(prefix: bytes, const_ending: bytes = b'') -> Record:
    """hash_link committing to `prefix`; the unhashed tail that `const_ending` covers is not kept."""
    prefix = bytes(prefix)
    if not prefix.endswith(const_ending):
        raise HashLinkError('prefix does not end with the constant ending')
    remainder = len(prefix) % 64
    unhashed = prefix[len(prefix) - remainder:]
    extra = unhashed[:max(0, len(unhashed) - len(const_ending))]
    return {'state': sha256_state_after(prefix), 'extra_data': extra, 'length': len(prefix)}


def check_hash_link(hash_link: Record, data: bytes, const_ending: bytes = b'') -> int:
    """hash256 (as an integer) of the hashed prefix followed by `data`."""
    length: int = hash_link['length']
    if length + len(data) >= 1 << 61:   # SHA-256 pads with the bit length as a u64
        raise HashLinkError('hash_link length %d is too large' % length)
    remainder = length % 64
    known: bytes = hash_link['extra_data'] + const_ending
    if remainder > len(known):
        raise HashLinkError('hash_link needs %d unhashed bytes, only %d known' % (remainder, len(known)))
    tail = known[len(known) - remainder:] if remainder else b''
    digest = sha256_from_state(hash_link['state'], length - remainder, tail + data)
    return int.from_bytes(sha256(digest), 'little')


# --- cached payee conversions -------------------------------------------------

_script_cache: dict[tuple[Any, ...], bytes] = {}
_address_cache: dict[tuple[int, int], str] = {}
_CACHE_LIMIT = 200000


def _parent_key(parent: Any) -> tuple[Any, ...]:
    return (parent.ADDRESS_VERSION, getattr(parent, 'ADDRESS_P2SH_VERSION', None),
            getattr(parent, 'HUMAN_READABLE_PART', None), getattr(parent, 'SYMBOL', None))


def payout_script_for(address: str, parent: Any, padding: bool) -> bytes:
    """address_to_script with a cache (AddressError for unusable addresses)."""
    key = (address, padding) + _parent_key(parent)
    script = _script_cache.get(key)
    if script is None:
        script = bitcoin_address.address_to_script(address, parent, padding=padding)
        if len(_script_cache) >= _CACHE_LIMIT:
            _script_cache.clear()
        _script_cache[key] = script
    return script


def address_for_pubkey_hash(pubkey_hash: int, address_version: int) -> str:
    """Base58 P2PKH address of a pubkey_hash (cached)."""
    key = (pubkey_hash, address_version)
    address = _address_cache.get(key)
    if address is None:
        address = bitcoin_address.pubkey_hash_to_address(pubkey_hash, address_version)
        if len(_address_cache) >= _CACHE_LIMIT:
            _address_cache.clear()
        _address_cache[key] = address
    return address


def p2pkh_script_for(pubkey_hash: int) -> bytes:
    return b'\x76\xa9\x14' + pubkey_hash.to_bytes(20, 'little') + b'\x88\xac'


# --- the share ----------------------------------------------------------------

_HEADER = struct.Struct('<I32s32sIII')
_HARDFORK_NETWORK, _HARDFORK_ABSHEIGHT = 'bitcoin', 3927800


#: known_pow_hash of a share whose PoW the caller hashes afterwards and gives to Share.accept_pow_hash
POW_HASHED_LATER = -1


class Share:
    """One decoded share; build with Share.from_wire or share_from_type_and_contents.

    Decoded parts (dicts as the layout reads them): contents, min_header, share_info,
    share_data, ref_merkle_link, hash_link, merkle_link, segwit_data (None without the
    segwit layout); contents_bytes is the wire encoding of contents.
    Derived values: hash (share identity = block hash), previous_hash, header (dict with
    merkle_root), header_bytes, pow_hash, gentx_hash, ref_hash, target, max_target,
    work, min_work, timestamp (share_info's), absheight, abswork, desired_version,
    stale_info, donation, subsidy, new_transaction_hashes, transaction_hash_refs
    ([(share_count, tx_count)]), far_share_hash, payout_address (the [jt] PPLNS key),
    payout_script. Bookkeeping: time_seen, peer_addr, naughty (set by verify.check_share).
    Nothing else changes after construction.
    """

    __slots__ = (
        'VERSION', 'net', 'contents', 'contents_bytes', 'min_header', 'share_info', 'share_data',
        'ref_merkle_link', 'last_txout_nonce', 'hash_link', 'merkle_link', 'segwit_data',
        'hash', 'previous_hash', 'header', 'header_bytes', 'pow_hash', 'gentx_hash', 'ref_hash',
        'target', 'max_target', 'work', 'min_work', 'timestamp', 'absheight', 'abswork',
        'desired_version', 'stale_info', 'donation', 'subsidy', 'new_transaction_hashes',
        'transaction_hash_refs', 'far_share_hash', 'payout_address', 'payout_script',
        'time_seen', 'peer_addr', 'naughty', '__weakref__',
    )

    VERSION: int
    net: Net
    contents: Record
    contents_bytes: bytes
    min_header: Record
    share_info: Record
    share_data: Record
    ref_merkle_link: Record
    last_txout_nonce: int
    hash_link: Record
    merkle_link: Record
    segwit_data: Record | None
    hash: int
    previous_hash: int | None
    header: Record
    header_bytes: bytes
    pow_hash: int
    gentx_hash: int
    ref_hash: int
    target: int
    max_target: int
    work: int
    min_work: int
    timestamp: int
    absheight: int
    abswork: int
    desired_version: int
    stale_info: str | None
    donation: int
    subsidy: int
    new_transaction_hashes: list[int]
    transaction_hash_refs: list[tuple[int, int]]
    far_share_hash: int | None
    payout_address: str
    payout_script: bytes
    time_seen: float
    peer_addr: Any
    naughty: int

    def __init__(self, net: Net, version: int, contents_bytes: bytes, time_seen: float = 0,
                 peer_addr: Any = None, known_pow_hash: int | None = None) -> None:
        layout = layout_for(version, net)
        contents, info_start, info_end = _decode_contents(layout, contents_bytes)
        self.VERSION = version
        self.net = net
        self.contents = contents
        self.contents_bytes = contents_bytes
        self.time_seen = time_seen
        self.peer_addr = peer_addr
        self.naughty = 0
        min_header = self.min_header = contents['min_header']
        info = self.share_info = contents['share_info']
        data = self.share_data = info['share_data']
        self.ref_merkle_link = contents['ref_merkle_link']
        self.last_txout_nonce = contents['last_txout_nonce']
        self.hash_link = contents['hash_link']
        self.merkle_link = contents['merkle_link']
        self.segwit_data = info.get('segwit_data')
        self.previous_hash = data['previous_share_hash']
        self.timestamp = info['timestamp']
        self.absheight = info['absheight']
        self.abswork = info['abswork']
        self.desired_version = data['desired_version']
        self.stale_info = data['stale_info']
        self.donation = data['donation']
        self.subsidy = data['subsidy']
        self.far_share_hash = info['far_share_hash']
        if min_header['version'] >= 1 << 32:
            raise ShareDecodeError('header version %d does not fit in 32 bits' % min_header['version'])

        # Constructor checks in the order of shares.md §10.
        if not 2 <= len(data['coinbase']) <= 100:
            raise ShareDecodeError('bad coinbase size! %d bytes' % len(data['coinbase']))
        if version >= FIRST_ADDRESS_VERSION:
            try:
                address = data['address'].decode('ascii')
                script = payout_script_for(address, net.PARENT, padding_for_version(version))
            except (UnicodeDecodeError, bitcoin_address.AddressError) as e:
                raise ShareDecodeError('invalid payout address: %s' % e) from None
            self.payout_address, self.payout_script = address, script
        else:
            pubkey_hash = data['pubkey_hash']
            self.payout_address = address_for_pubkey_hash(pubkey_hash, net.PARENT.ADDRESS_VERSION)
            self.payout_script = p2pkh_script_for(pubkey_hash)
        if (getattr(net, 'NAME', None) == _HARDFORK_NETWORK and self.absheight > _HARDFORK_ABSHEIGHT
                and self.desired_version == 16):
            raise ShareDecodeError('not a hardfork-supporting share')
        if version < FIRST_ADDRESS_VERSION:
            new_hashes = self.new_transaction_hashes = info['new_transaction_hashes']
            flat = info['transaction_hash_refs']
            refs = self.transaction_hash_refs = list(zip(flat[0::2], flat[1::2]))
            own: set[int] = set()
            for share_count, tx_count in refs:
                if share_count >= 110:
                    raise ShareDecodeError('transaction reference to a share too far back')
                if share_count == 0:
                    own.add(tx_count)
            if own != set(range(len(new_hashes))):
                raise ShareDecodeError('invalid transaction references to this share')
        else:
            self.new_transaction_hashes = []
            self.transaction_hash_refs = []
        if layout.segwit and self.segwit_data is None:
            raise ShareDecodeError('segwit-layout share without segwit_data')

        # gentx hash from the hash_link, then the header it commits to (§5, §8, §9).
        ref_hash = hash256(net.IDENTIFIER + contents_bytes[info_start:info_end])
        for sibling in self.ref_merkle_link['branch']:
            ref_hash = hash256(ref_hash.to_bytes(32, 'little') + sibling.to_bytes(32, 'little'))
        self.ref_hash = ref_hash
        try:
            gentx_hash = check_hash_link(
                self.hash_link,
                ref_hash.to_bytes(32, 'little') + struct.pack('<QI', self.last_txout_nonce, 0),
                GENTX_BEFORE_REFHASH)
        except HashLinkError as e:
            raise ShareDecodeError(str(e)) from None
        self.gentx_hash = gentx_hash
        segwit_data = self.segwit_data
        link = segwit_data['txid_merkle_link'] if layout.segwit and segwit_data is not None else self.merkle_link
        merkle_root = gentx_hash
        for sibling in link['branch']:
            merkle_root = hash256(merkle_root.to_bytes(32, 'little') + sibling.to_bytes(32, 'little'))
        previous_block = min_header['previous_block']
        header_bytes = self.header_bytes = _HEADER.pack(
            min_header['version'], (previous_block or 0).to_bytes(32, 'little'),
            merkle_root.to_bytes(32, 'little'), min_header['timestamp'], min_header['bits'],
            min_header['nonce'])
        self.header = {'version': min_header['version'], 'previous_block': previous_block,
                       'merkle_root': merkle_root, 'timestamp': min_header['timestamp'],
                       'bits': min_header['bits'], 'nonce': min_header['nonce']}
        self.hash = hash256(header_bytes)

        target = self.target = bits_to_target(info['bits'])
        self.max_target = bits_to_target(info['max_bits'])
        self.work = target_to_average_attempts(target)
        self.min_work = target_to_average_attempts(self.max_target)
        if target > net.MAX_TARGET:
            raise ShareMisbehaviour('share target invalid')
        if known_pow_hash != POW_HASHED_LATER:
            # known_pow_hash: this node's own record of the PoW of this very header (its store), so that
            # a restart on a scrypt network does not hash every share again
            self.accept_pow_hash(net.PARENT.pow_hash(header_bytes) if known_pow_hash is None else known_pow_hash)

    def accept_pow_hash(self, pow_hash: int) -> None:
        """Set the proof-of-work hash of header_bytes; ShareMisbehaviour if it misses the share target.
        Only for a share built with known_pow_hash=POW_HASHED_LATER (the batch parser hashes the
        headers of a whole batch together)."""
        self.pow_hash = pow_hash
        if pow_hash > self.target:
            raise ShareMisbehaviour('share PoW invalid')

    # --- serialization ----------------------------------------------------

    def to_wire(self) -> bytes:
        """VarInt type || VarStr contents (shares.md §2)."""
        return s.VarInt.pack(self.VERSION) + s.VarStr.pack(self.contents_bytes)

    @classmethod
    def from_wire(cls, net: Net, data: bytes, time_seen: float = 0, peer_addr: Any = None,
                  known_pow_hash: int | None = None) -> 'Share':
        """Decode one wrapped share; the bytes must be consumed exactly. `known_pow_hash`: the PoW
        hash this node computed for the share before (from its own store only)."""
        try:
            version, pos = s.VarInt.read(data, 0)
            contents_bytes, pos = s.VarStr.read(data, pos)
        except _READ_ERRORS as e:
            raise ShareDecodeError('malformed share wrapper: %s' % e) from None
        if pos != len(data):
            raise ShareDecodeError('%d trailing bytes after the share' % (len(data) - pos))
        return share_from_type_and_contents(net, version, bytes(contents_bytes), time_seen, peer_addr,
                                            known_pow_hash)

    def __repr__(self) -> str:
        return '<Share v%d %064x>' % (self.VERSION, self.hash)


def _decode_contents(layout: Layout, data: bytes) -> tuple[Record, int, int]:
    """Decode share contents; also return where share_info's bytes lie (for ref_hash)."""
    contents: Record = {}
    pos = info_start = info_end = 0
    try:
        for name, field_type in layout.contents_type.fields:
            start = pos
            contents[name], pos = field_type.read(data, pos)
            if name == 'share_info':
                info_start, info_end = start, pos
    except _READ_ERRORS as e:
        raise ShareDecodeError('malformed v%d share: %s' % (layout.version, e)) from None
    if pos != len(data):
        raise ShareDecodeError('%d trailing bytes after the share contents' % (len(data) - pos))
    return contents, info_start, info_end


def share_from_type_and_contents(net: Net, share_type: int, contents_bytes: bytes, time_seen: float = 0,
                                 peer_addr: Any = None, known_pow_hash: int | None = None) -> Share:
    """Build a Share from its wire type and contents bytes ([jt] loading rules, shares.md §2)."""
    if not isinstance(share_type, int) or share_type < LOWEST_SUPPORTED_VERSION:
        raise ShareObsolete('obsolete share (type %r)' % (share_type,))
    if share_type not in SHARE_VERSIONS:
        raise ShareDecodeError('unknown share type %d' % share_type)
    return Share(net, share_type, bytes(contents_bytes), time_seen, peer_addr, known_pow_hash)


def share_from_contents(net: Net, version: int, contents: Record, time_seen: float = 0,
                        peer_addr: Any = None) -> Share:
    """Build a Share from a contents dict (packed with the version's layout first)."""
    try:
        contents_bytes = layout_for(version, net).contents_type.pack(contents)
    except s.EncodeError as e:
        raise ShareDecodeError('cannot encode share contents: %s' % e) from None
    return Share(net, version, contents_bytes, time_seen, peer_addr)


def pack_share_info(share_info: Record, version: int, net: Net) -> bytes:
    """Serialized share_info (the bytes hashed into ref_hash)."""
    return layout_for(version, net).share_info_type.pack(share_info)


def ref_hash_of(share_info: Record, ref_merkle_link: Record, version: int, net: Net) -> int:
    """ref_hash (shares.md §5) of a share_info dict."""
    ref_hash = hash256(net.IDENTIFIER + pack_share_info(share_info, version, net))
    for sibling in ref_merkle_link['branch']:
        ref_hash = hash256(ref_hash.to_bytes(32, 'little') + sibling.to_bytes(32, 'little'))
    return ref_hash


#: the forest of decoded shares (the full tracker and its verified subset)
ShareTracker = Tracker[Share]
