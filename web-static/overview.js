/* The overview page: pool and local figures, miners, blocks, payouts, peers. */
'use strict';

(function () {
  var symbol = '';
  var MAX_PAYOUT_BLOCKS = 20;     // newest blocks listed in the Payouts panel; the totals cover all

  function sum(object) {
    return Object.keys(object || {}).reduce(function (total, key) { return total + object[key]; }, 0);
  }

  function ratio(numerator, denominator) {
    return denominator > 0 && numerator !== null && numerator !== undefined ? numerator / denominator : null;
  }

  function showHeader(version, currency, uptime, fee, payoutAddr) {
    symbol = currency.symbol;
    P2.show('symbol', currency.symbol);
    P2.show('version', version);
    P2.show('uptime', uptime, P2.duration(uptime));
    P2.show('fee', fee, fee + '%');
    P2.show('payout-addr', payoutAddr, payoutAddr || 'none');
    document.title = 'P2Pool ' + currency.symbol;
    P2.el('regtest-note').hidden = currency.chain !== 'regtest';
  }

  function showSync(progress) {
    P2.show('sync-downloaded', progress.downloaded);
    P2.show('sync-verified', progress.verified);
    P2.show('sync-needed', progress.needed);
    P2.el('sync-bar').style.width = (100 * progress.verified / progress.needed).toFixed(1) + '%';
    P2.el('sync-box').hidden = progress.synced;
  }

  function showPool(global, local) {
    global = global || {};
    local = local || {};
    P2.show('pool-rate', global.pool_hash_rate, P2.rate(global.pool_hash_rate));
    P2.show('pool-stale', global.pool_stale_prop, P2.percent(global.pool_stale_prop));
    P2.show('share-difficulty', global.min_difficulty, P2.siNumber(global.min_difficulty, 3));
    P2.show('network-difficulty', global.network_block_difficulty, P2.siNumber(global.network_block_difficulty, 3));
    P2.show('network-rate', global.network_hashrate, P2.rate(global.network_hashrate));
    var poolTime = ratio(local.attempts_to_block, global.pool_hash_rate);
    P2.show('pool-time-to-block', poolTime, P2.duration(poolTime));
    P2.show('block-value', local.block_value, P2.coins(local.block_value, symbol));
  }

  function showLocal(local, payouts, payoutAddr) {
    var known = local !== null;
    local = local || {};
    var shares = local.shares || {};
    var peers = local.peers || {};
    var localRate = known ? sum(local.miner_hash_rates) : null;
    var deadRate = known ? sum(local.miner_dead_hash_rates) : null;
    P2.show('local-rate', localRate, P2.rate(localRate));
    P2.show('local-dead-rate', deadRate, P2.rate(deadRate));
    P2.show('shares-total', shares.total, known ? String(shares.total) : '?');
    P2.show('shares-orphan', shares.orphan, known ? String(shares.orphan) : '?');
    P2.show('shares-dead', shares.dead, known ? String(shares.dead) : '?');
    P2.show('efficiency', local.efficiency, P2.percent(local.efficiency));
    var payout = payoutAddr && payouts[payoutAddr] !== undefined ? payouts[payoutAddr] : null;
    P2.show('expected-payout', payout, P2.coins(payout, symbol));
    var toShare = ratio(local.attempts_to_share, localRate);
    var toBlock = ratio(local.attempts_to_block, localRate);
    P2.show('time-to-share', toShare, P2.duration(toShare));
    P2.show('time-to-block', toBlock, P2.duration(toBlock));
    P2.show('peers-out', peers.outgoing, known ? String(peers.outgoing) : '?');
    P2.show('peers-in', peers.incoming, known ? String(peers.incoming) : '?');
    var warnings = local.warnings || [];
    P2.el('warnings-box').hidden = warnings.length === 0;
    var list = P2.clear(P2.el('warnings'));
    warnings.forEach(function (text) { list.appendChild(P2.make('li', {text: text})); });
    P2.record('warnings', warnings);

    var rates = local.miner_hash_rates || {};
    var rows = Object.keys(rates).sort(function (a, b) { return rates[b] - rates[a]; }).map(function (miner) {
      var dead = (local.miner_dead_hash_rates || {})[miner] || 0;
      var difficulty = (local.miner_last_difficulties || {})[miner];
      return [P2.make('span', {'class': 'address', text: miner}), P2.rate(rates[miner]),
              P2.percent(rates[miner] ? dead / rates[miner] : 0),
              difficulty === undefined ? '' : P2.siNumber(difficulty, 3)];
    });
    P2.fillTable('miners', rows, 'no miners in the last 10 minutes', 4);
    P2.record('miners', Object.keys(rates).length);
    P2.record('miner-difficulties', Object.keys(rates).reduce(function (shown, miner) {
      var difficulty = (local.miner_last_difficulties || {})[miner];
      shown[miner] = difficulty === undefined ? null : difficulty;
      return shown;
    }, {}));
  }

  function when(seconds) { return new Date(seconds * 1000).toISOString().replace('T', ' ').slice(0, 19); }

  function blockLink(hash, currency) {
    return currency.block_explorer_url_prefix
      ? P2.make('a', {href: currency.block_explorer_url_prefix + hash, 'class': 'hash', rel: 'noreferrer',
                      text: hash.slice(0, 24) + '…'})
      : P2.make('span', {'class': 'hash', text: hash.slice(0, 24) + '…'});
  }

  function showBlocks(blocks, currency) {
    var rows = blocks.map(function (block) {
      return {'class': block.state === 'orphaned' ? 'orphaned' : '',
              cells: [when(block.ts), block.number === null ? '?' : String(block.number),
                      blockLink(block.hash, currency), P2.shareLink(block.share),
                      P2.make('span', {'class': 'state', text: block.state || '?'})]};
    });
    P2.fillTable('blocks', rows, 'no blocks in the current chain', 5);
    P2.record('blocks', blocks.length);
    P2.record('orphaned-blocks', blocks.filter(function (block) { return block.state === 'orphaned'; })
      .map(function (block) { return block.hash; }));
  }

  function showPayoutHistory(history, currency) {
    var rows = [];
    var totals = {};
    history.forEach(function (block) { totals[block.state] = (totals[block.state] || 0) + block.total; });
    var newest = history.slice(0, MAX_PAYOUT_BLOCKS);
    newest.forEach(function (block) {
      Object.keys(block.payouts).forEach(function (address) {
        rows.push({'class': block.state === 'orphaned' ? 'orphaned' : '',
                   cells: [when(block.time), String(block.height), blockLink(block.hash, currency),
                           P2.make('span', {'class': 'address', text: address}),
                           P2.coins(block.payouts[address], symbol), String(block.confirmations),
                           P2.make('span', {'class': 'state', text: block.state})]});
      });
    });
    P2.fillTable('payout-history', rows, 'no block of the pool has paid this node\'s payees yet', 7);
    var states = Object.keys(totals).sort();
    P2.show('payout-totals', totals, states.length ? states.map(function (state) {
      return state + ' ' + P2.coins(totals[state], symbol);
    }).join(', ') : 'none yet');
    P2.show('payout-count', history.length);
    P2.record('payout-blocks', newest.map(function (block) { return block.hash; }));
  }

  function showPayouts(payouts) {
    var total = sum(payouts);
    var addresses = Object.keys(payouts).sort(function (a, b) { return payouts[b] - payouts[a]; });
    var rows = addresses.map(function (address) {
      return [P2.make('span', {'class': 'address', text: address}), P2.coins(payouts[address], symbol),
              P2.percent(total ? payouts[address] / total : 0, 2)];
    });
    P2.fillTable('payouts', rows, 'no payouts known yet', 3);
    P2.record('payouts', addresses.length);
    P2.record('payouts_total', total);
  }

  function showPeers(versions, pings) {
    var rows = Object.keys(versions).sort().map(function (peer) {
      var ping = pings[peer];
      return [peer, versions[peer], ping === null || ping === undefined ? '?' : ping.toFixed(1) + ' ms'];
    });
    P2.fillTable('peers', rows, 'no peers connected', 3);
    P2.record('peer_count', rows.length);
  }

  function showChain(best, heads, verifiedHeads, mine) {
    var bestCell = P2.clear(P2.el('best-share'));
    bestCell.setAttribute('data-raw', JSON.stringify(best));
    bestCell.appendChild(best ? P2.shareLink(best) : document.createTextNode('none yet'));
    P2.record('best-share', best);
    P2.show('heads', heads.length);
    P2.show('verified-heads', verifiedHeads.length);
    P2.show('my-share-count', mine.length);
  }

  function showBitcoinds(daemons) {
    P2.fillTable('bitcoinds', (daemons || []).map(function (d) {
      var state = d.status + (d.last_error && !d.healthy ? ' (' + d.last_error + ')' : '');
      return [d.name + ' ' + d.endpoint, state, d.tip_height === null ? '?' : String(d.tip_height),
              d.template_age === null ? '?' : P2.duration(d.template_age)];
    }), 'none', 4);
  }

  function load() {
    return Promise.all([
      P2.api('web/version'), P2.api('web/currency_info'), P2.api('uptime'), P2.api('fee'), P2.api('payout_addr'),
      P2.api('web/sync_progress'), P2.api('global_stats'), P2.api('local_stats'), P2.apiOr('current_payouts', {}),
      P2.api('recent_blocks'), P2.api('peer_versions'), P2.api('pings'), P2.api('web/best_share_hash'),
      P2.api('web/heads'), P2.api('web/verified_heads'), P2.api('web/my_share_hashes'),
      P2.apiOr('web/payouts', []),
      P2.apiOr('web/bitcoinds', [])
    ]).then(function (r) {
      showHeader(r[0], r[1], r[2], r[3], r[4]);
      showSync(r[5]);
      showPool(r[6], r[7]);
      showLocal(r[7], r[8], r[4]);
      showBlocks(r[9], r[1]);
      showPayouts(r[8]);
      showPeers(r[10], r[11]);
      showChain(r[12], r[13], r[14], r[15]);
      showPayoutHistory(r[16], r[1]);
      showBitcoinds(r[17]);
    });
  }

  P2.run(load, 30);
}());
