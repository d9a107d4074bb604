"""Test doubles for the daemons p2pool talks to; used by the test suite and benchmarks only.

Nothing here is used by a running node:

* jsonrpc_server.JsonRpcTestServer - a tiny HTTP JSON-RPC server on loopback with
  Basic authentication and fault injection (per-method delays, malformed answers),
  standing in for bitcoind or another daemon where a real one cannot be had;
* fake_merged_daemon.FakeMergedDaemon - a TEST DOUBLE of a merged-mining daemon
  (Namecoin's getauxblock / createauxblock / submitauxblock contract) that checks
  every auxpow it receives strictly. No real merged-mining chain is involved;
* block_builder - coinbase, block and nonce search from a Template (tests, benchmarks);
* bridge.BitcoindBridge - RPC client, Bitcoin P2P, TemplateSource, ParentHeights and
  BlockSubmitter wired together against one bitcoind, as a node wires them.
"""
