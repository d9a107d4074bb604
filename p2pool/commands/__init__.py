"""Subcommands of `p2pool` other than running a node: inspect, import-shares, demo."""
