"""SQLite persistence of a node: shares and verified marks, peers, bans, graph history (sharestore, tables, schema),
and the importer of the original P2Pool's shares.N files. The sharechain stays pure logic; the node's ShareChain is
handed a store object."""
