"""The running node's application: command line, wiring of the rooms, logging, data directory, console status.

main.NodeRunner wires bitcoin/, sharechain/, store/, p2p/, work/ and web/ together and owns the reactor's start and
shutdown; the other modules here are what a process needs around that (cli, logsetup, datadir_lock, resources,
payout-address choice, the console status lines, and the views that work/ and web/ see of the node).
"""
