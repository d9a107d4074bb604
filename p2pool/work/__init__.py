"""The worker interface: from bitcoind templates and the best share to miners' work and back.

bridge (work records and solution handling), stratum and getwork (miner
protocols), merged (merged-mining daemons, aux tree and auxpow) and switch
(one port for Stratum and HTTP). Nothing here imports p2pool.p2p or p2pool.web;
they meet through objects that p2pool.app.main passes in.
"""
