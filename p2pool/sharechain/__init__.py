"""The sharechain: share formats, generation, validation, the share forest and its persistence.

Pure consensus logic: nothing here opens sockets, runs the reactor or reads the
clock (callers pass `now`). Submodules are imported explicitly by their users:
share (formats), generate (gentx/share_info), pplns (payout weights), verify
(full validation, version voting), tracker/chooser/stats/store, testchain.
"""
