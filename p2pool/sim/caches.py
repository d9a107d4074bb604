"""What the simulator computes once for all nodes, and the in-memory share store.

Every node of a run parses and verifies the same shares. Both are pure
functions of data every node agrees on, so the simulator computes them once:

* parsing: a Share is a function of (net, type, contents bytes); only its
  bookkeeping (time_seen, peer_addr, naughty) is per node. `ShareCache.parse`
  decodes once and hands each node its own shallow copy with its own
  bookkeeping (decode errors are remembered and raised again);
* full validation (sharechain.verify.check_share): a share's hash commits to its
  whole ancestry, so regenerating its share_info and gentx gives the same answer
  on every node that holds that ancestry. `ShareCache.check` runs the real check
  the first time and replays its outcome afterwards, but only when the node meets
  the check's own preconditions (parent known, timestamp not in the future on
  this node's clock, enough history below the parent); otherwise the real check
  runs on that node. Shares of VERSION < 34 (their validity depends on the
  node's transactions) are never cached.

* frames: the checksum of a payload and its decoded fields are functions of the
  payload bytes. A share relayed by every node reaches every node once per
  connection in the same payload, so `WireCache` checks and decodes each distinct
  payload once (every node's PeerSettings carry its `checksum` and
  `decode_payload`; the handlers only read decoded fields). Gossip forwards an
  address record from node to node, each time in an `addrs` message of its own:
  `addrs_frames` encodes the message of a record once for all the hops.

Every node still runs its own tracker, chooser, verified set, PPLNS windows,
stale accounting, relay and download loop on its own copies, and every message
still goes through each receiving node's framing, rate limits and handlers.

MemoryShareStore is the simulator's stand-in for p2pool/store/sharestore.py
(SQLite): the same `pending` / `flush` / `load_shares` contract the ShareChain
uses, kept in memory so that a node restarted after churn loads its chain back.
"""
from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

from p2pool.p2p import messages
from p2pool.sharechain import verify
from p2pool.sharechain.share import FIRST_ADDRESS_VERSION, Share, ShareDecodeError, share_from_type_and_contents

K = TypeVar('K')
V = TypeVar('V')

_SLOTS = tuple(name for name in Share.__slots__ if name not in ('__weakref__', 'time_seen', 'peer_addr', 'naughty'))


def _make_cloner() -> Any:
    """clone(share, time_seen, peer_addr): one attribute copy per slot, generated once (a loop
    over setattr costs several times more, and every node copies every share)."""
    lines = ['def clone(share, time_seen, peer_addr):', '    copy = new(Share)']
    lines += ['    copy.%s = share.%s' % (name, name) for name in _SLOTS]
    lines += ['    copy.time_seen = time_seen', '    copy.peer_addr = peer_addr', '    copy.naughty = 0',
              '    return copy']
    namespace: dict[str, Any] = {'new': Share.__new__, 'Share': Share}
    exec('\n'.join(lines), namespace)
    return namespace['clone']


#: a copy of a share with its own bookkeeping (the decoded parts are shared, never mutated)
clone_share = _make_cloner()


class ShareCache:
    """Parse and check results shared by every node of one simulation (module docstring)."""

    def __init__(self) -> None:
        self._parsed: dict[tuple[int, bytes], Share | ShareDecodeError] = {}
        self._checked: dict[int, tuple[Any, int, ShareDecodeError | None]] = {}
        self.parse_hits = self.parse_misses = self.check_hits = self.check_misses = 0

    def parse(self, net: Any, share_type: int, contents: bytes, time_seen: float, peer_addr: Any,
              known: dict[int, Share] | None = None) -> Share:
        """The share of a wire record, as the node's parser gives it; a share the node holds already
        (in `known`, its tracker's items) comes back as its own copy, which the chain then skips."""
        key = (share_type, contents)
        template = self._parsed.get(key)
        if template is None:
            self.parse_misses += 1
            try:
                template = share_from_type_and_contents(net, share_type, contents)
            except ShareDecodeError as e:
                template = e
            self._parsed[key] = template
        else:
            self.parse_hits += 1
        if isinstance(template, ShareDecodeError):
            raise template
        if known is not None:
            own = known.get(template.hash)
            if own is not None:
                return own
        return clone_share(template, time_seen, peer_addr)

    def parse_records(self, net: Any, wrappers: Any, time_seen: float, peer_addr: Any,
                      known: dict[int, Share], parse_other: Callable[[Any, Any], Share]) -> list[Share]:
        """parse() of every {'type', 'contents'} record of a message in one call (other wrappers go
        to `parse_other(wrapper, peer_addr)`): every node parses every relayed message, and most of them bring only
        shares it holds already, so the per-record call is worth saving."""
        parsed = self._parsed
        shares: list[Share] = []
        for wrapper in wrappers:
            if type(wrapper) is not dict:
                shares.append(parse_other(wrapper, peer_addr))
                continue
            contents = wrapper['contents']
            if type(contents) is not bytes:   # decoded messages hold bytes already: no copy call
                contents = bytes(contents)
            template = parsed.get((wrapper['type'], contents))
            if template is None:
                shares.append(self.parse(net, wrapper['type'], contents, time_seen, peer_addr, known))
                continue
            self.parse_hits += 1
            if isinstance(template, ShareDecodeError):
                raise template
            own = known.get(template.hash)
            shares.append(own if own is not None else clone_share(template, time_seen, peer_addr))
        return shares

    def remember(self, share: Share) -> None:
        """A share built locally: other nodes parse its wire form from here."""
        self._parsed.setdefault((share.VERSION, share.contents_bytes), share)

    def check(self, tracker: Any, share: Share, now: float, fee_cache: Any = None,
              block_height: Any = None) -> Any:
        """verify.check_share with its outcome replayed across nodes (module docstring)."""
        def real() -> Any:
            return verify.check_share(tracker, share, now, fee_cache=fee_cache, block_height=block_height)
        if share.VERSION < FIRST_ADDRESS_VERSION or share.timestamp > now + verify.MAX_FUTURE_SECONDS:
            return real()
        if share.previous_hash is not None:
            if share.previous_hash not in tracker.items:
                return real()
            height, last = tracker.get_height_and_last(share.previous_hash)
            if last is not None and height < share.net.REAL_CHAIN_LENGTH:
                return real()
        entry = self._checked.get(share.hash)
        if entry is None:
            self.check_misses += 1
            try:
                gentx = real()
            except ShareDecodeError as e:
                self._checked[share.hash] = (None, 0, e)
                raise
            self._checked[share.hash] = (gentx, share.naughty, None)
            return gentx
        self.check_hits += 1
        gentx, naughty, failure = entry
        if failure is not None:
            raise failure
        share.naughty = naughty
        return gentx


class WireCache:
    """Frame checksums and decoded payloads shared by every connection of one simulation
    (module docstring); the oldest entries go first beyond MAX_ENTRIES."""

    MAX_ENTRIES = 4096
    MAX_PAYLOAD = 256 * 1024    # larger payloads (long sharereplies) are rare: never remembered

    def __init__(self) -> None:
        self._checksums: FifoMemo[bytes, bytes] = FifoMemo(self.MAX_ENTRIES)
        self._decoded: FifoMemo[tuple[str, bytes], dict[str, Any]] = FifoMemo(self.MAX_ENTRIES)
        self._addrs_frames: FifoMemo[tuple[Any, ...], list[bytes]] = FifoMemo(self.MAX_ENTRIES)
        #: the frames of relayed `shares` messages (ShareSync.relay_frames): each node relays a share
        #: in the same bytes, so they are encoded once for all
        self.relay_frames: FifoMemo[Any, list[bytes]] = FifoMemo(self.MAX_ENTRIES)
        self.hits = self.misses = 0

    def checksum(self, payload: bytes) -> bytes:
        found = self._checksums.get(payload)
        if found is None:
            found = messages.checksum(payload)
            if len(payload) <= self.MAX_PAYLOAD:
                self._checksums[payload] = found
        return found

    def decode_payload(self, command: str, payload: bytes) -> dict[str, Any]:
        key = (command, payload)
        found = self._decoded.get(key)
        if found is not None:
            self.hits += 1
            return found
        self.misses += 1
        found = messages.decode_payload(command, payload)   # a DecodeError is raised, not remembered
        if len(payload) <= self.MAX_PAYLOAD:
            self._decoded[key] = found
        return found

    def addrs_frames(self, key: tuple[Any, ...], encode: Callable[[], list[bytes]]) -> list[bytes]:
        """The frames of the `addrs` message forwarding the record `key` (PeerSettings.addrs_frames)."""
        found = self._addrs_frames.get(key)
        if found is None:
            found = self._addrs_frames[key] = encode()
        return found


class FifoMemo(dict[K, V]):
    """A dict that forgets its oldest keys beyond `limit` entries (the memos of this module).

    The keys' order is kept in a deque: a dict whose first keys keep being deleted finds its new
    first key only after skipping the holes they left, a deque pops it at once."""

    def __init__(self, limit: int) -> None:
        super().__init__()
        self.limit = limit
        self._order: deque[K] = deque()

    def __setitem__(self, key: K, value: V) -> None:
        if key not in self:
            if len(self) >= self.limit:
                del self[self._order.popleft()]
            self._order.append(key)
        super().__setitem__(key, value)


class _Pending:
    """The `store.pending` batch interface, applied to the store at once."""

    def __init__(self, store: MemoryShareStore) -> None:
        self.store = store

    def add_shares(self, shares: list[Share], added_at: float = 0.0) -> None:
        for share in shares:
            self.store.shares.setdefault(share.hash, share)

    def mark_verified(self, hashes: list[int]) -> None:
        self.store.verified.update(hashes)

    def forget_shares(self, hashes: list[int]) -> None:
        for share_hash in hashes:
            self.store.shares.pop(share_hash, None)
            self.store.verified.discard(share_hash)


class MemoryShareStore:
    """In-memory stand-in for ShareStore (module docstring): shares and verified marks."""

    def __init__(self) -> None:
        self.shares: dict[int, Share] = {}
        self.verified: set[int] = set()
        self.pending = _Pending(self)
        self.last_load_report = None
        self.on_reset: list[Any] = []   # ShareStore's damaged-database hook; memory is never damaged

    def flush(self) -> int:
        return 0

    def close(self) -> None:
        pass

    def load_shares(self, net: Any, parse_fn: Any, forget_unparsable: bool = True,
                    with_pow: bool = False) -> Iterator[tuple[Share, bool]]:
        """(share, verified) in storage order; fresh copies with time_seen 0, as from disk."""
        for share_hash, share in list(self.shares.items()):
            yield clone_share(share, 0, None), share_hash in self.verified
