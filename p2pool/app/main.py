"""Entry point of the `p2pool` command: wires the rooms together and runs the reactor.

    p2pool [options] [RPCUSER [RPCPASS]]     the node (options: p2pool/app/cli.py)
    p2pool inspect ...                       decode chain data (p2pool/commands/inspector.py)
    p2pool demo                              a local regtest pool (p2pool/commands/demo.py)
    p2pool import-shares DIR                 bring the original P2Pool's shares.N files along
    p2pool ctl COMMAND                       ask the running node (p2pool/commands/ctl.py)
    p2pool simulate ...                      a whole network on virtual time (p2pool/sim/)

Start-up problems (a bad option, an unreachable bitcoind, a wrong password, a
port in use, an invalid payout address) end with one line and a non-zero exit.
"""
import dataclasses
import logging
import os
import sys
import time
from collections.abc import Generator
from typing import Any

from twisted.internet import defer, error as tw_error, task

from p2pool import config
from p2pool.app import cli

log = logging.getLogger('p2pool')

PRUNE_INTERVAL = 5.0
SESSION_FLUSH_INTERVAL = 10.0
NETWORKINFO_INTERVAL = 20 * 60.0
PAYOUT_REFRESH_INTERVAL = 10.0
STORE_NAME = 'p2pool.sqlite3'
READY_FLAG = 'ready_flag'


class StartupError(Exception):
    """A problem that stops the node from starting; the message is one line for the operator."""


def console_main(argv=None) -> int | str | None:
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ['inspect']:
        from p2pool.commands import inspector as inspect
        return inspect.main(argv[1:])
    if argv[:1] == ['demo']:
        from p2pool.commands import demo
        return demo.main(argv[1:])
    if argv[:1] == ['ctl']:
        from p2pool.commands import ctl
        return ctl.main(argv[1:])
    if argv[:1] == ['import-shares']:
        from p2pool.commands import import_shares as import_command
        return import_command.main(argv[1:])
    if argv[:1] == ['simulate']:
        from p2pool.sim import cli as simulate
        return simulate.main(argv[1:], exiting=True)
    try:
        args = cli.parse_args(argv)
    except SystemExit as e:
        return e.code
    return run_node(args)


def data_directory(args, net) -> str:
    root = args.datadir or cli.DEFAULT_DATADIR
    path = config.datadir_for(root, net)
    os.makedirs(path, exist_ok=True)
    return path


def run_node(args, reactor=None) -> int:
    """Run a node until SIGINT/SIGTERM; returns the process exit status."""
    if reactor is None:
        from twisted.internet import reactor
    try:
        net = config.load_network(args.net)
    except config.NetworkConfigError as e:
        print('p2pool: %s' % e, file=sys.stderr)
        return 2
    try:
        datadir = data_directory(args, net)
    except OSError as e:
        print('p2pool: cannot create the data directory: %s' % e, file=sys.stderr)
        return 1
    from p2pool.app.datadir_lock import DataDirInUse, lock_datadir
    takeover_client = datadir_lock = None
    if getattr(args, 'takeover', False):
        # the running node holds the lock; it comes with its sockets (p2pool/app/takeover.py)
        from p2pool.app.takeover import TakeoverClient, TakeoverError
        takeover_client = TakeoverClient(datadir)
        try:
            takeover_client.connect()
        except TakeoverError as e:
            print('p2pool: takeover failed: %s' % e, file=sys.stderr)
            return 1
    else:
        try:
            datadir_lock = lock_datadir(datadir)
        except DataDirInUse as e:
            print('p2pool: %s' % e, file=sys.stderr)
            return 1
    from p2pool.app.logsetup import setup_logging
    try:
        setup_logging(args.logfile or os.path.join(datadir, 'log'), args.debug)
    except OSError as e:
        print('p2pool: cannot open the log file: %s' % e, file=sys.stderr)
        if datadir_lock is not None:
            datadir_lock.close()
        return 1
    runner = NodeRunner(args, net, datadir, reactor)
    runner.datadir_lock, runner.takeover_client = datadir_lock, takeover_client
    exit_status = []

    @defer.inlineCallbacks
    def start():
        try:
            yield runner.start()
        except Exception as e:
            if isinstance(e, StartupError):
                log.error('p2pool: %s', e)
            else:
                log.exception('p2pool: unexpected error while starting')
            exit_status.append(1)
            yield runner.stop()
            reactor.stop()

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger('before', 'shutdown', runner.stop)
    try:
        reactor.run()
    finally:
        if runner.datadir_lock is not None:
            runner.datadir_lock.close()
        if runner.takeover_client is not None:
            runner.takeover_client.close()
    return exit_status[0] if exit_status else 0


class NodeRunner:
    """Builds and connects the rooms of one node, and takes them down again."""

    def __init__(self, args, net, datadir, reactor):
        self.args, self.net, self.datadir, self.reactor = args, net, datadir, reactor
        self.store = self.chain = self.bitcoind = self.p2p_node = self.work_bridge = None
        self.worker_port = self.merged = self.web_service = self.status = None
        self.work_source = self.web_view = self.sessions = None
        self.stratum = self.payout_history = self.control_port = self.console = None
        self.loops = []
        self.dynamic_payouts = None
        self.max_miner_conns = self.max_miner_conns_per_address = None
        self.early_payout_address = None  # legacy stand-in for a bech32/P2SH -a on version-17 chains
        self.control_run = self.web_root = None
        # takeover (p2pool/app/takeover*.py): the lock file, the client of a --takeover start, what it
        # received, the server a later process takes this one over through, and whether it did
        self.datadir_lock = self.takeover_client = self.handover = self.takeover_server = None
        self.handed_over = False
        self.stopped = False

    @defer.inlineCallbacks
    def start(self) -> Generator[defer.Deferred[Any], Any, None]:
        from p2pool.bitcoin import conf, hashes
        from p2pool.app.bitcoinds import bitcoind_group
        from p2pool.bitcoin.rpc import BitcoindCheckError, check_bitcoind
        from p2pool.sharechain.chain import ShareChain
        from p2pool.app.payout import (
            DynamicPayoutPool, PayoutAddressError, resolve_payout_address, resolve_v17_fallback)
        from p2pool.store.sharestore import ShareStore, StoreError

        args, net = self.args, self.net
        log.info('p2pool %s starting on %s, data in %s', _version(), net.NAME, self.datadir)
        self._raise_file_limit()
        if net.PARENT.POW_FUNC == 'scrypt' and hashes.SCRYPT_IMPLEMENTATION == 'hashlib':
            log.warning('scrypt proof of work by hashlib: the C accelerator (p2pool/bitcoin/_scrypt.c) was not built; '
                        'reinstall with a C compiler and the Python headers (Debian: build-essential python3-dev) '
                        'to hash the proof of work of shares several times faster')
        if net.PARENT.CHAIN == 'regtest':
            log.info('regtest: blocks need about 2 hashes, so nearly every share is a block and work changes '
                     'with every share; high stale and dead rates and a near-zero network hash rate are '
                     'expected here')
        try:
            access = conf.resolve_access(
                net.PARENT, args.bitcoind_address, args.bitcoind_rpc_port, args.bitcoind_p2p_port,
                args.bitcoind_rpc_username, args.bitcoind_rpc_password, args.bitcoind_config_path)
        except conf.ConfError as e:
            raise StartupError(str(e)) from None
        log.info('bitcoind: RPC %s:%d (credentials from %s), P2P port %d', access.host, access.rpc_port,
                 access.credentials_source, access.p2p_port)
        try:
            self.bitcoind = bitcoind_group(args, net, access, reactor=self.reactor)
        except ValueError as e:
            raise StartupError('bad --bitcoind-fallback URL: %s' % e) from None
        try:
            yield check_bitcoind(self.bitcoind.rpc, net, allow_obsolete=args.allow_obsolete_bitcoind)
        except BitcoindCheckError as e:
            raise StartupError(str(e)) from None
        try:
            if args.address == 'dynamic':
                self.dynamic_payouts = DynamicPayoutPool(self.bitcoind.rpc, net, args.numaddresses,
                                                         args.timeaddresses)
                addresses = yield self.dynamic_payouts.fill()
                self.dynamic_payouts.start(self.reactor)
                payout_address = addresses[0]
                log.info('Dynamic payout addresses: %s', ', '.join(addresses))
            else:
                payout_address = yield resolve_payout_address(self.bitcoind.rpc, net, self.datadir, args.address)
                log.info('Payout address: %s', payout_address)
                self.early_payout_address = yield resolve_v17_fallback(self.bitcoind.rpc, net, payout_address)
        except PayoutAddressError as e:
            raise StartupError(str(e)) from None

        try:
            self.store = ShareStore(os.path.join(self.datadir, STORE_NAME))
        except StoreError as e:
            raise StartupError('cannot open the share store: %s' % e) from None
        self.chain = ShareChain(net, self.store, clock=time.time,
                                rel_height=self.bitcoind.heights.rel_height,
                                block_height=self.bitcoind.heights.known)
        self.chain.load()

        try:
            template = yield self.bitcoind.start(
                lambda rpc: check_bitcoind(rpc, net, allow_obsolete=args.allow_obsolete_bitcoind))
        except BitcoindCheckError as e:
            raise StartupError(str(e)) from None
        if template is None:
            log.warning('bitcoind did not give a block template yet; miners wait until it does')
        # bitcoind's transactions become known ones; its new block moves the parent heights
        # the best-chain score uses (the chain thinks again)
        source = self.bitcoind.source
        source.changed.watch(self.chain.known_txs.follow_template)
        self.chain.known_txs.follow_template(source.current)
        self.chain.think()
        # a peer's share that is a block also goes to bitcoind from here (assembled from our template)
        self.chain.block_found_by_peer.watch(self._peer_found_block)

        self._start_p2p()
        source.changed.watch(self.p2p_node.template_changed)
        source.changed.watch(lambda template: self.chain.think())
        self._start_work(payout_address)
        self._start_web(payout_address)
        from p2pool.app.takeover import TakeoverError
        from p2pool.app.takeover_node import start_takeover_server, take_over
        if self.takeover_client is not None:
            try:     # everything is built: the miners wait only for the sockets to move
                take_over(self)
            except TakeoverError as e:
                raise StartupError('takeover failed: %s' % e) from None
        self.takeover_server = start_takeover_server(self)
        self._every(self.chain.prune, PRUNE_INTERVAL)
        log.info('Node ready: P2Pool peers on port %d, miners and web on port %d',
                 self.p2p_node.listening_port or 0, self.worker_port.getHost().port)
        log.info('Dashboard: %s', dashboard_url(self.args.worker_endpoint, self.worker_port.getHost().port))

    # --- rooms ---------------------------------------------------------------------------

    def _peer_found_block(self, share):
        """A peer's share that is a block: assembled from this node's own template (its
        transactions, HogEx and MWEB data) and submitted when the share's merkle root says the
        peer mined exactly those transactions; otherwise the peer's own node submits it."""
        from p2pool.bitcoin.blocks import block_from_template
        from p2pool.sharechain.verify import check_share
        template = self.bitcoind.source.current
        if template is None or template.previous_block != share.header['previous_block']:
            return
        try:
            gentx = check_share(self.chain.tracker, share, self.chain.clock()).tx()
        except Exception as e:  # verified a moment ago; a failure here only means no assembly
            log.debug('cannot regenerate the gentx of share %064x: %s', share.hash, e)
            return
        if self.net.is_segwit_version(share.VERSION):
            from p2pool.bitcoin.data import P2POOL_WITNESS_RESERVED_VALUE
            gentx = dict(gentx, marker=0, flag=1, witness=[[P2POOL_WITNESS_RESERVED_VALUE]])
        block = block_from_template(share.header, gentx, template)
        if block is None:
            log.info('block %064x from a peer has other transactions than our template; its node submits it',
                     share.hash)
            return
        self.bitcoind.submit_block(block, template.segwit)

    def _start_p2p(self):
        from p2pool.p2p.nodeconfig import config_from_args
        from p2pool.p2p.peerset import P2PNode
        # bitcoind's tip, for the relay rule of block solutions (p2p.md §6.2)
        config = config_from_args(self.args, self.net)
        if self.takeover_client is not None:       # the running node's listening socket comes later
            config = dataclasses.replace(config, port=None)
        self.p2p_node = P2PNode(self.chain, self.store, config, reactor=self.reactor, parent_tip=self.bitcoind.tip)
        try:
            self.p2p_node.start()
        except tw_error.CannotListenError as e:
            raise StartupError('cannot listen for P2Pool peers on port %s: %s'
                               % (e.port, _socket_reason(e))) from None

    def _start_work(self, payout_address):
        from p2pool.app.views import WorkNodeView
        from p2pool.work.bestblock import CombinedWorkSource
        from p2pool.work.bridge import WorkBridge
        from p2pool.work.merged import MergedDaemon, MergedMining
        from p2pool.work.username import PayeeResolver
        args, net = self.args, self.net
        if args.merged_urls:
            try:
                self.merged = MergedMining([MergedDaemon(url) for url in args.merged_urls])
            except ValueError as e:
                raise StartupError('bad --merged URL: %s' % e) from None
            self.merged.start()
        # mine on peers' newer blocks before bitcoind has them (worker.md §1.3); bitcoind's
        # new tips go to peers as bestblock (p2p.md §4.9)
        self.work_source = CombinedWorkSource(self.bitcoind.source, net, get_header=self.bitcoind.p2p.get_header)
        self.work_source.best_header_changed.watch(self.p2p_node.send_bestblock)
        self.p2p_node.bestblock_received.watch(lambda header, peer_addr: self.work_source.offer_header(header))
        self.work_bridge = WorkBridge(
            net, self.work_source, self.chain.tracker, WorkNodeView(self.chain, self.p2p_node),
            PayeeResolver(net.PARENT, self.dynamic_payouts.choose if self.dynamic_payouts else payout_address,
                          args.worker_fee, early_address=self.early_payout_address),
            on_share=self.chain.add_local_share, on_block=self.bitcoind.submit_block, merged=self.merged,
            donation_percentage=args.donation_percentage, coinbtext=args.coinbtext,
            stale_accounting=self.chain.stale)

    def _start_web(self, payout_address):
        from p2pool.app import resources
        from p2pool.app.status import StatusPrinter
        from p2pool.app.views import WebNodeView
        from p2pool.web.server import build_web_root
        from p2pool.web.service import WebService
        from p2pool.work.getwork import GetworkServer, attach_getwork
        from p2pool.work.stratum import StratumFactory
        from p2pool.work.switch import listen_worker_port
        from p2pool.app.payout_history import PayoutHistory
        args, net = self.args, self.net
        self.payout_history = PayoutHistory(net, self.chain.tracker, self.bitcoind.rpc, self.store,
                                            self._payees, time.time)
        view = self.web_view = WebNodeView(net, self.chain, self.p2p_node, self.bitcoind, self.work_bridge,
                                           payout_address, args.worker_fee, args.donation_percentage, self.store,
                                           dynamic_payouts=self.dynamic_payouts, payouts=self.payout_history)
        self.web_service = WebService(view)
        self.web_service.load()
        self.work_bridge.pseudoshare_received.watch(self.web_service.on_pseudoshare)
        self.p2p_node.traffic.watch(self.web_service.on_traffic)
        self.work_bridge.share_found.watch(self.web_service.on_local_share)
        self.web_service.start(self.reactor)
        static_dir = args.web_static or resources.web_static_dir()
        root = build_web_root(view, static_dir, self.web_service)
        attach_getwork(root, GetworkServer(self.work_bridge))
        from p2pool.work.sessions import SessionBook
        self.sessions = SessionBook(self.store)
        self.sessions.load()
        self._every(self.sessions.flush, SESSION_FLUSH_INTERVAL)
        stratum = self.stratum = StratumFactory(self.work_bridge, net, share_rate=args.share_rate,
                                                reactor=self.reactor, sessions=self.sessions)
        interface, port = args.worker_endpoint or ('', net.WORKER_PORT)
        self.web_root = root
        if self.takeover_client is None:        # else the running node's socket comes later
            try:
                self.worker_port = listen_worker_port(root, stratum, port, interface=interface, reactor=self.reactor,
                                                      max_connections=self.max_miner_conns,
                                                      max_per_address=self.max_miner_conns_per_address)
            except tw_error.CannotListenError as e:
                raise StartupError('cannot listen for miners on port %s: %s' % (e.port, _socket_reason(e))) from None
            self.write_ready_flag()
        # through the log, so that the status lines reach the log file as well as the console;
        # one log line each, as the log keeps every message on one line
        status_log = logging.getLogger('p2pool.status')
        self.status = StatusPrinter(view, write=lambda text: [status_log.info('%s', line) for line in text.split('\n')])
        self.status.start(self.reactor)
        self._every(view.poll_networkinfo, NETWORKINFO_INTERVAL, now=True)
        self._start_payouts_and_control()

    def _start_payouts_and_control(self):
        """The payout history (refreshed on every new template) and `p2pool ctl` with the console."""
        from p2pool.app.control import ConsoleReader
        from p2pool.app.control_commands import ControlCommands
        self.bitcoind.source.changed.watch(lambda template: self.payout_history.refresh())
        self._every(self.payout_history.refresh, PAYOUT_REFRESH_INTERVAL, now=True)
        commands = ControlCommands(self)
        self.control_run = commands.run
        if self.takeover_client is None:      # else after the running node has let go of its socket
            self.listen_control()
        if ConsoleReader.wanted():
            self.console = ConsoleReader(commands.run, self.reactor)
            self.console.start()

    def _payees(self):
        """The addresses the payout history follows: the node's own and its miners'."""
        miners = {user.split('.', 1)[0] for user in self.work_bridge.last_share_difficulties}
        return set(self.web_view.payout_addresses) | miners

    def listen_control(self) -> None:
        from p2pool.app.control import listen_control
        try:
            self.control_port = listen_control(self.datadir, self.control_run, self.reactor)
        except (OSError, tw_error.CannotListenError) as e:
            log.warning('no control socket for p2pool ctl: %s', e)

    def _raise_file_limit(self):
        """Soft descriptor limit up to the hard one; the worker port's caps below it (app/fdlimit.py)."""
        from p2pool.app import fdlimit
        args = self.args
        before, limit = fdlimit.raise_file_limit()
        self.max_miner_conns = args.max_miner_conns or fdlimit.default_max_miner_conns(
            limit, args.max_conns, args.outgoing_conns)
        self.max_miner_conns_per_address = (args.max_miner_conns_per_address
                                            or fdlimit.default_per_address(self.max_miner_conns))
        reserved = fdlimit.reserved_descriptors(args.max_conns, args.outgoing_conns)
        log.info('File descriptor limit %d%s: up to %d Stratum connections (%d per address); %d kept for '
                 'bitcoind, peers, the store and the web', limit,
                 ' (raised from %d)' % before if limit != before else '', self.max_miner_conns,
                 self.max_miner_conns_per_address, reserved)
        if self.max_miner_conns + reserved > limit:
            log.warning('--max-miner-conns %d leaves fewer than %d of the %d file descriptors for bitcoind, '
                        'peers, the store and the web', self.max_miner_conns, reserved, limit)

    def write_ready_flag(self) -> None:
        """DATADIR/NET/ready_flag: the worker port is listening (web.md §3), for supervisors;
        removed again at a clean shutdown."""
        try:
            open(os.path.join(self.datadir, READY_FLAG), 'w').close()
        except OSError as e:
            log.warning('cannot write %s: %s', READY_FLAG, e)

    def _every(self, job, interval, now=False):
        loop = task.LoopingCall(job)
        loop.clock = self.reactor
        loop.start(interval, now=now)
        self.loops.append(loop)

    # --- shutdown -------------------------------------------------------------------------

    @defer.inlineCallbacks
    def stop(self) -> Generator[defer.Deferred[Any], Any, None]:
        """Flush the store, disconnect miners and peers; bitcoind is left alone."""
        if self.stopped:
            return
        self.stopped = True
        if self.takeover_server is not None:
            _quietly(self.takeover_server.stop)
        if self.handover is not None:
            _quietly(self.handover.close)
        for loop in self.loops:
            if loop.running:
                loop.stop()
        if self.console is not None:
            _quietly(lambda: self.reactor.removeReader(self.console))
        if self.control_port is not None:
            yield _quietly_deferred(self.control_port.stopListening)
        for part in (self.status, self.web_service, self.merged, self.dynamic_payouts):
            if part is not None:
                _quietly(part.stop)
        if self.worker_port is not None:
            yield defer.maybeDeferred(self.worker_port.stopListening)
            factory = getattr(self.worker_port, 'factory', None)
            _quietly(getattr(factory, 'disconnect_all', lambda: None))
        if self.p2p_node is not None:
            yield _quietly_deferred(self.p2p_node.stop)
        if self.bitcoind is not None:
            _quietly(self.bitcoind.stop)
        if self.web_service is not None and not self.handed_over:     # else saved before the hand-over
            _quietly(self.web_service.save)
        if self.sessions is not None:
            _quietly(self.sessions.flush)
        if self.worker_port is not None and not self.handed_over:     # the new process's flag now
            _quietly(lambda: os.remove(os.path.join(self.datadir, READY_FLAG)))
        if self.chain is not None:
            _quietly(self.chain.close)
        elif self.store is not None:
            _quietly(self.store.close)
        log.info('p2pool stopped')


def _quietly(fn):
    try:
        return fn()
    except Exception:
        log.exception('error while shutting down')


def _quietly_deferred(fn):
    d = defer.maybeDeferred(fn)
    d.addErrback(lambda failure: log.error('error while shutting down: %s', failure.getErrorMessage()))
    return d


def dashboard_url(worker_endpoint, port) -> str:
    """The dashboard's address for the operator: loopback unless -w names one interface."""
    interface = worker_endpoint[0] if worker_endpoint else ''
    host = interface if interface not in ('', '0.0.0.0', '::') else '127.0.0.1'
    if ':' in host:
        host = '[%s]' % host
    return 'http://%s:%d/static/' % (host, port)


def _socket_reason(error):
    reason = getattr(error, 'socketError', None)
    text = getattr(reason, 'strerror', None) or str(reason or error)
    return text


def _version():
    import p2pool
    return p2pool.__version__


if __name__ == '__main__':
    sys.exit(console_main())
