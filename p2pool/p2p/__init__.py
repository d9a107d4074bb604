"""The P2Pool peer network (p2p.md): message framing, one connection's protocol, the node.

* messages.py  -- framing, prefix resynchronisation and the 13 messages as declarative types
* protocol.py  -- one connection: handshake, timeouts, per-peer limits, misbehaviour reports
* ratelimit.py -- the token bucket behind the per-peer limits
"""
