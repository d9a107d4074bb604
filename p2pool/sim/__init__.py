"""`p2pool simulate`: many nodes of the node's own code on one virtual clock.

clock.py (the event queue), links.py (in-memory TCP with latency, bandwidth and
loss), caches.py (what is computed once for all nodes; the in-memory store),
node.py (one node: real ShareChain and P2PNode plus a miner), adversary.py,
world.py (the network, parent chain, churn), metrics.py (the figures), cli.py
(the command), plot.py (charts, needs matplotlib: the `[plot]` extra).
"""
