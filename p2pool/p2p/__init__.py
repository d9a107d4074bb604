"""The P2Pool peer network (p2p.md): message framing, one connection's protocol, the peer set.

* messages.py  -- framing, prefix resynchronisation and the 13 messages as declarative types
* protocol.py  -- one connection: handshake, timeouts, per-peer limits, misbehaviour reports
* node.py      -- the peer set: listening, outgoing connections, advertising, bans
* sharesync.py -- relay of the best chain, serving sharereq, the download loop
* txrelay.py   -- transaction forwarding for share versions below 34
* addrstore.py -- the address store and the ban list, persisted in the node's SQLite store
* upnp.py      -- mapping the P2P port with miniupnpc
"""
