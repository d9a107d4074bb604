"""Mining ahead of bitcoind on a peer's newer block (worker.md §1.3, p2p.md §4.9).

Peers announce their best parent-chain header with `bestblock`. When a valid
header extends bitcoind's tip, the node does not wait for its own bitcoind to
receive that block: it mines an **empty block on top of the header** until
bitcoind catches up, so its miners do not spend that time on a stale parent.

CombinedWorkSource wraps the bitcoind TemplateSource and is what the work
bridge reads: `current` is bitcoind's template, or the empty-block template on
top of the adopted header. `best_header_changed` fires when the node's best
header changes; the node sends it to its peers as `bestblock`. With `get_header`
(block hash -> Deferred header, bitcoind's P2P getheaders) the header of each new
bitcoind tip is asked for and offered too, so that peers hear of our new blocks.
"""
import dataclasses
import logging
import time
from typing import Any

from twisted.internet import defer

from p2pool.bitcoin import data
from p2pool.events import Event

log = logging.getLogger(__name__)


class CombinedWorkSource:
    def __init__(self, source, net, clock=time.time, get_header=None) -> None:
        self.source, self.net, self.clock = source, net, clock
        self.get_header = get_header
        self._asked_tip = None           # the bitcoind tip whose header was asked for last
        self.best_header = None          # the adopted header (a header dict), or None
        self.changed = Event('combined work')
        self.best_header_changed = Event('best block header')
        source.changed.watch(self._template_changed)

    # --- what the work bridge reads -------------------------------------------------------

    @property
    def current(self) -> Any:
        template = self.source.current
        header = self.best_header
        if template is None or header is None or header['previous_block'] != template.previous_block:
            return template
        if getattr(template, 'mweb', None) is not None:
            return template     # an MWEB block needs bitcoind's HogEx: no empty block on a peer's header
        header_hash = data.header_hash(header)
        return dataclasses.replace(
            template, version=header['version'], previous_block=header_hash, bits=header['bits'],
            height=template.height + 1, time=max(int(self.clock() + 0.5), header['timestamp'] + 1),
            subsidy=self.net.PARENT.subsidy(template.height), coinbaseflags=b'', transactions=[],
            transaction_keys=[], transaction_fees=[], raw_transactions=[], default_witness_commitment=None)

    @property
    def legacy(self) -> bool:
        return getattr(self.source, 'legacy', False)

    def __getattr__(self, name):   # contact, is_stale, last_latency ... of the bitcoind source
        return getattr(self.source, name)

    # --- headers -------------------------------------------------------------------------

    def offer_header(self, header) -> bool:
        """A header from a peer (PoW already checked) or bitcoind's own tip: adopt it if the
        rules of p2p.md §4.9 say so. Returns True when it was adopted."""
        template = self.source.current
        if template is None or self.net.PARENT.pow_hash(data.header_type.pack(header)) > template.block_target:
            return False
        header_hash = data.header_hash(header)
        tip = template.previous_block
        best = self.best_header
        best_is_tip = best is not None and data.header_hash(best) == tip
        best_extends_tip = best is not None and best['previous_block'] == tip
        if best is None or (header['previous_block'] == tip and best_is_tip) or (
                header_hash == tip and not best_extends_tip):
            if best is not None and data.header_hash(best) == header_hash:
                return False
            self.best_header = header
            if header['previous_block'] == tip:
                log.info('Skipping from block %064x to block %064x!', tip, header_hash)
            self.best_header_changed.happened(header)
            self.changed.happened(self.current)
            return True
        return False

    def _template_changed(self, template) -> None:
        # bitcoind caught up (or moved elsewhere): an adopted header that no longer extends its
        # tip is dropped; the node offers bitcoind's own tip header again after each new block
        if self.best_header is not None and self.best_header['previous_block'] != template.previous_block \
                and data.header_hash(self.best_header) != template.previous_block:
            self.best_header = None
        self.changed.happened(self.current)
        if template is not None:
            self._offer_tip_header(template.previous_block)

    def _offer_tip_header(self, block_hash) -> None:
        """Ask bitcoind for its new tip's header and offer it (p2p.md §4.9); a timeout or a
        lost P2P connection is forgotten: the next template asks again."""
        if self.get_header is None or block_hash == self._asked_tip:
            return
        self._asked_tip = block_hash

        def got(header) -> None:
            if self._asked_tip == block_hash:
                self.offer_header(header)

        def failed(failure) -> None:
            log.debug('no header for bestblock %064x: %s', block_hash, failure.getErrorMessage())
            if self._asked_tip == block_hash:
                self._asked_tip = None
        d = defer.maybeDeferred(self.get_header, block_hash)
        d.addCallbacks(got, failed)
        d.addErrback(lambda failure: log.error('offering the header of block %064x failed: %s',
                                               block_hash, failure.getErrorMessage()))
