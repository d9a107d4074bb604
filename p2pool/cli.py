"""Command line of the node (placeholder until the node exists)."""
import argparse


def build_parser():
    parser = argparse.ArgumentParser(prog='p2pool', description='P2Pool node (protocol 3501)')
    parser.add_argument('--net', default='bitcoin', help='network name or path to a network TOML file')
    return parser


def main(argv):
    build_parser().parse_args(argv)
    return 0
