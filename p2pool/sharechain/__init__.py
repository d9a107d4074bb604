"""The sharechain: share formats, generation, validation, the share forest and the running node's chain.

Pure consensus logic: nothing here opens sockets, runs the reactor or reads the
clock (callers pass `now` or inject a clock). Submodules are imported explicitly by
their users: share (formats), generate (gentx/share_info), pplns (payout weights),
verify (full validation, version voting), tracker/chooser/stats, and chain (the
running node's ShareChain: tracker + verification + events, over an injected store).
Persistence lives in p2pool.store; test chains in p2pool.testing.testchain.
"""
